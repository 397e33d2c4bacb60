//! Between ZooKeeper's tree and ours: every znode with its data, Stat and ACL as they
//! are; sessions with their timeouts, and the passwords ZooKeeper derives for them.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use zk_proto::Acl;

use super::java_random::session_password;
use super::replay::ApacheTree;
use super::snapshot::{ApacheSnapshot, SnapshotNode, ZxidDigest};
use crate::database::{SessionEntry, ZkDatabase};
use crate::tree::{child_path, DataTree};

/// Our database holding `tree` (the nodes reachable from its root) and its sessions.
pub fn to_database(mut tree: ApacheTree) -> ZkDatabase {
    let unreachable = tree.drop_unreachable();
    if unreachable > 0 {
        tracing::warn!(
            unreachable,
            "znodes without a parent in ZooKeeper's data are left out"
        );
    }
    let nodes = std::mem::take(&mut tree.nodes);
    let data_tree = DataTree::from_nodes(nodes);
    let sessions: BTreeMap<i64, SessionEntry> = tree
        .sessions
        .iter()
        .map(|(id, timeout)| {
            let entry = SessionEntry {
                timeout: *timeout,
                passwd: Bytes::copy_from_slice(&session_password(*id)),
            };
            (*id, entry)
        })
        .collect();
    for (session, paths) in data_tree.all_ephemerals() {
        if !sessions.contains_key(session) {
            tracing::warn!(
                session = format_args!("0x{session:x}"),
                ?paths,
                "ephemeral znodes of a session that is not open (ZooKeeper keeps them too)"
            );
        }
    }
    ZkDatabase::from_parts(data_tree, sessions, tree.last_zxid)
}

/// The largest zxid anywhere in `db`: its last zxid and every znode's czxid, mzxid and
/// pzxid.
pub fn max_zxid(db: &ZkDatabase) -> i64 {
    db.tree()
        .nodes()
        .map(|n| {
            let s = n.stored_stat();
            s.czxid.max(s.mzxid).max(s.pzxid)
        })
        .fold(db.last_zxid(), i64::max)
}

/// ZooKeeper's snapshot of `db`: the ACL cache numbered from 1, the nodes parents
/// first from the root (path ""), the sessions with their timeouts, an empty digest
/// section (ZooKeeper then computes its own).
pub fn to_snapshot(db: &ZkDatabase) -> ApacheSnapshot {
    let tree = db.tree();
    let mut keys: HashMap<&[Acl], i64> = HashMap::new();
    let mut acls: Vec<(i64, Vec<Acl>)> = Vec::new();
    let mut nodes = Vec::with_capacity(tree.node_count());
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let Some(node) = tree.get(&path) else {
            continue;
        };
        let next = acls.len() as i64 + 1;
        let acl = *keys.entry(&node.acl()[..]).or_insert_with(|| {
            acls.push((next, node.acl().to_vec()));
            next
        });
        for child in node.children().rev() {
            stack.push(child_path(&path, child));
        }
        nodes.push(SnapshotNode {
            path: if path == "/" { String::new() } else { path },
            data: node.data(),
            acl,
            stat: node.stored_stat(),
        });
    }
    ApacheSnapshot {
        dbid: -1,
        sessions: db
            .sessions()
            .iter()
            .map(|(id, s)| (*id, s.timeout))
            .collect(),
        acls,
        nodes,
        digest: Some(ZxidDigest {
            zxid: 0,
            version: 2,
            digest: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apache_data::snapshot::OPEN_UNSAFE_ACL_KEY;
    use crate::apache_data::txnlog::{op, TxnBody, TxnEntry, TxnHeader};

    fn entry(zxid: i64, body: TxnBody, opcode: i32) -> TxnEntry {
        TxnEntry {
            header: TxnHeader {
                client_id: 0x100_0000_0000_0007,
                cxid: 1,
                zxid,
                time: 1_700_000_000_000 + zxid,
                op: opcode,
            },
            body,
        }
    }

    fn create(path: &str, owner: i64, parent_cversion: i32) -> TxnBody {
        TxnBody::Create {
            op: op::CREATE,
            path: path.into(),
            data: Some(Bytes::from_static(b"d")),
            acl: Acl::open_unsafe(),
            owner,
            parent_cversion,
        }
    }

    fn base() -> ApacheTree {
        let db = ZkDatabase::new();
        let snap = to_snapshot(&db);
        ApacheTree::from_snapshot(snap, 0).unwrap()
    }

    #[test]
    fn replay_matches_zookeepers_rules_for_a_fuzzy_snapshot() {
        let mut t = base();
        t.apply(&entry(
            0x1_0000_0001,
            TxnBody::CreateSession { timeout: 10_000 },
            op::CREATE_SESSION,
        ));
        t.apply(&entry(0x1_0000_0002, create("/a", 0, 1), op::CREATE));
        t.apply(&entry(
            0x1_0000_0003,
            create("/a/e", 0x100_0000_0000_0007, 1),
            op::CREATE,
        ));
        // Replayed again (the snapshot already had it): NodeExists, and the parent's
        // cversion only rises.
        t.apply(&entry(0x1_0000_0004, create("/a/e", 0, 1), op::CREATE));
        assert_eq!(t.nodes["/a"].stat.cversion, 1);
        assert_eq!(t.nodes["/a"].stat.pzxid, 0x1_0000_0003);
        t.apply(&entry(0x1_0000_0005, create("/a/e", 0, 2), op::CREATE));
        assert_eq!(t.nodes["/a"].stat.cversion, 2);
        assert_eq!(t.nodes["/a"].stat.pzxid, 0x1_0000_0005);
        // A multi with an error changes nothing.
        t.apply(&entry(
            0x1_0000_0006,
            TxnBody::Multi(vec![create("/m", 0, 2), TxnBody::Error { err: -101 }]),
            op::MULTI,
        ));
        assert!(!t.nodes.contains_key("/m"));
        t.apply(&entry(
            0x1_0000_0007,
            TxnBody::SetData {
                path: "/a".into(),
                data: None,
                version: 4,
            },
            op::SET_DATA,
        ));
        assert_eq!(t.nodes["/a"].stat.version, 4);
        assert_eq!(t.nodes["/a"].stat.mzxid, 0x1_0000_0007);
        // Closing the session removes its ephemeral; deleting what is gone still
        // raises the parent's pzxid.
        t.apply(&entry(
            0x1_0000_0008,
            TxnBody::CloseSession { paths: None },
            op::CLOSE_SESSION,
        ));
        assert!(!t.nodes.contains_key("/a/e"));
        assert!(t.sessions.is_empty());
        t.apply(&entry(
            0x1_0000_0009,
            TxnBody::Delete {
                path: "/a/gone".into(),
            },
            op::DELETE,
        ));
        assert_eq!(t.nodes["/a"].stat.pzxid, 0x1_0000_0009);
        assert_eq!(t.last_zxid, 0x1_0000_0009);
    }

    #[test]
    fn our_tree_survives_the_round_trip_through_zookeepers_format() {
        let mut t = base();
        t.apply(&entry(
            0x1_0000_0001,
            TxnBody::CreateSession { timeout: 10_000 },
            op::CREATE_SESSION,
        ));
        t.apply(&entry(0x1_0000_0002, create("/a", 0, 1), op::CREATE));
        t.apply(&entry(
            0x1_0000_0003,
            create("/a/e", 0x100_0000_0000_0007, 1),
            op::CREATE,
        ));
        let db = to_database(t);
        db.check_consistency().unwrap();
        assert_eq!(
            db.session(0x100_0000_0000_0007).map(|s| s.passwd.to_vec()),
            Some(session_password(0x100_0000_0000_0007).to_vec())
        );
        let snap = to_snapshot(&db);
        assert!(snap.nodes.iter().all(|n| n.acl != OPEN_UNSAFE_ACL_KEY));
        let bytes = snap.to_bytes();
        let again = ApacheSnapshot::parse(&bytes).unwrap();
        let back = to_database(ApacheTree::from_snapshot(again, db.last_zxid()).unwrap());
        assert_eq!(back, db);
        assert_eq!(max_zxid(&db), 0x1_0000_0003);
    }
}
