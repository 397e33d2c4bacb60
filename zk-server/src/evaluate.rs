//! Read evaluation and watch registration: one read request answered against the
//! database, with the watches it asks for registered under ZooKeeper's rules. Called
//! under the database lock, by a connection's reader (nothing of its session pending)
//! or by the apply of the write a read was waiting for ([`crate::session_order`]).

use zk_proto::{
    xid, ClientInfo, ErrorCode, ErrorResponse, Id, Request, Response, SyncResponse, WhoAmIResponse,
};

use crate::database::ZkDatabase;
use crate::watches::{ConnId, Notification, WatchManager};

/// A read's answer: the reply xid, the result, and the events the read itself fired
/// (setWatches catching up on changes the client missed).
pub(crate) type ReadOutcome = (i32, Result<Response, ErrorCode>, Vec<Notification>);

/// Runs a read and registers the watches it asks for, with ZooKeeper's rules: exists
/// always leaves its watch (a missing node is watched for creation), getData and
/// getChildren only when they succeed.
pub(crate) fn run_read(
    db: &ZkDatabase,
    watches: &mut WatchManager,
    conn: ConnId,
    session_id: i64,
    xid: i32,
    request: &Request,
    auth: &[Id],
) -> ReadOutcome {
    let none = Vec::new();
    match request {
        Request::Ping => (xid::PING, Ok(Response::Empty), none),
        Request::Sync(r) => (
            xid,
            Ok(Response::Sync(SyncResponse {
                path: r.path.clone(),
            })),
            none,
        ),
        Request::WhoAmI => (xid, Ok(Response::WhoAmI(who_am_i(auth))), none),
        Request::SetWatches2(s) => {
            let fired = watches.set_watches(
                db.tree(),
                conn,
                s.relative_zxid,
                &s.data_watches,
                &s.exist_watches,
                &s.child_watches,
                &s.persistent_watches,
                &s.persistent_recursive_watches,
            );
            (xid::SET_WATCHES, Ok(Response::Empty), fired)
        }
        Request::AddWatch(r) => match r.mode() {
            Ok(mode) => {
                watches.add_persistent_watch(&r.path, conn, mode);
                (xid, Ok(Response::AddWatch(ErrorResponse { err: 0 })), none)
            }
            Err(_) => (xid, Err(ErrorCode::MarshallingError), none),
        },
        Request::CheckWatches(r) => {
            let result = match r.watcher_type() {
                Ok(kind) if watches.contains(&r.path, conn, kind) => Ok(Response::Empty),
                Ok(_) => Err(ErrorCode::NoWatcher),
                Err(_) => Err(ErrorCode::MarshallingError),
            };
            (xid, result, none)
        }
        Request::RemoveWatches(r) => {
            let result = match r.watcher_type() {
                Ok(kind) if watches.remove(&r.path, conn, kind) => Ok(Response::Empty),
                Ok(_) => Err(ErrorCode::NoWatcher),
                Err(_) => Err(ErrorCode::MarshallingError),
            };
            (xid, result, none)
        }
        _ => {
            let result = db.read(session_id, auth, request);
            match request {
                Request::Exists(r)
                    if r.watch && matches!(result, Ok(_) | Err(ErrorCode::NoNode)) =>
                {
                    watches.add_data_watch(&r.path, conn)
                }
                Request::GetData(r) if r.watch && result.is_ok() => {
                    watches.add_data_watch(&r.path, conn)
                }
                Request::GetChildren(r) if r.watch && result.is_ok() => {
                    watches.add_child_watch(&r.path, conn)
                }
                Request::GetChildren2(r) if r.watch && result.is_ok() => {
                    watches.add_child_watch(&r.path, conn)
                }
                _ => {}
            }
            (xid, result, none)
        }
    }
}

/// whoAmI: the connection's identities in the order ZooKeeper 3.8 lists them. Its
/// `ServerCnxn.authInfo` is a set over a `ConcurrentHashMap`, so they come in the map's
/// bucket order (by the jute `Id.hashCode`), and in the order added within a bucket:
/// `digest:bob` before `ip:127.0.0.1` before `sasl:jaasuser` (observed on 3.8.0).
fn who_am_i(auth: &[Id]) -> WhoAmIResponse {
    let info = |id: &Id| ClientInfo {
        auth_scheme: id.scheme.clone(),
        user: match id.scheme.as_str() {
            "digest" => id.id.split(':').next().unwrap_or("").to_string(),
            _ => id.id.clone(),
        },
    };
    // The table doubles from 16 buckets once it holds three quarters of them.
    let mut buckets = 16usize;
    while auth.len() >= buckets * 3 / 4 {
        buckets *= 2;
    }
    let mut ordered: Vec<&Id> = auth.iter().collect();
    ordered.sort_by_key(|id| java_bucket(id, buckets));
    WhoAmIResponse {
        client_info: ordered.into_iter().map(info).collect(),
    }
}

/// The `ConcurrentHashMap` bucket of `id` in a table of `buckets` (a power of two).
fn java_bucket(id: &Id, buckets: usize) -> usize {
    let java_string_hash = |s: &str| {
        s.encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
    };
    // jute's generated Id.hashCode.
    let h = 17i32
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.scheme))
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.id));
    // ConcurrentHashMap.spread.
    let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
    spread as usize & (buckets - 1)
}

#[cfg(test)]
mod who_am_i_tests {
    use super::*;

    #[test]
    fn identities_come_in_zookeepers_set_order() {
        let names = |auth: &[Id]| -> Vec<String> {
            who_am_i(auth)
                .client_info
                .into_iter()
                .map(|i| i.auth_scheme)
                .collect()
        };
        let ip = Id::new("ip", "127.0.0.1");
        // As Apache ZooKeeper 3.8.0 answers zkCli.sh's whoami.
        assert_eq!(
            names(&[ip.clone(), Id::new("sasl", "jaasuser")]),
            ["ip", "sasl"]
        );
        assert_eq!(
            names(&[ip, Id::new("digest", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=")]),
            ["digest", "ip"]
        );
    }
}
