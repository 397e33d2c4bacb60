//! Dynamic reconfiguration (opcode 16): the members a request asks for, computed from
//! `/zookeeper/config` (which reconfig keeps current on every member), then carried
//! out on the leader as openraft membership changes — new members join as learners
//! and catch up before they vote — and published as a `SetConfig` transaction, whose
//! zxid becomes the configuration's version.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, Raft};
use zk_proto::{ErrorCode, ReconfigRequest};

use super::links::{PeerFaults, PeerLink};
use super::wire::PeerRequest;
use super::TypeConfig;
use crate::config::{parse_peer, PeerRole, PeerSpec};
use crate::core::ServerCore;
use crate::tree::CONFIG_PATH;
use crate::txn::TxnOp;

/// How long a joining member may take to catch up, and a membership change to commit.
const CHANGE_WITHIN: Duration = Duration::from_secs(15);

/// The members listed in `/zookeeper/config` data and its version (0 when static).
pub fn parse_config_data(data: &[u8]) -> (BTreeMap<u64, PeerSpec>, i64) {
    let text = String::from_utf8_lossy(data);
    let mut peers = BTreeMap::new();
    let mut version = 0;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key == "version" {
            version = i64::from_str_radix(value.trim(), 16).unwrap_or(0);
        } else if let Some(id) = key.strip_prefix("server.") {
            if let (Ok(id), Ok(peer)) = (id.parse(), parse_peer(key, value)) {
                peers.insert(id, peer);
            }
        }
    }
    (peers, version)
}

/// The `server.N` lines of a membership, newline separated.
pub fn lines(peers: &BTreeMap<u64, PeerSpec>) -> String {
    peers
        .iter()
        .map(|(id, p)| p.to_line(*id))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_servers(list: &str) -> Result<BTreeMap<u64, PeerSpec>, ErrorCode> {
    let mut peers = BTreeMap::new();
    for entry in list
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (key, value) = entry.split_once('=').ok_or(ErrorCode::BadArguments)?;
        let id = key
            .trim()
            .strip_prefix("server.")
            .and_then(|id| id.parse().ok())
            .ok_or(ErrorCode::BadArguments)?;
        let peer = parse_peer(key, value.trim()).map_err(|_| ErrorCode::BadArguments)?;
        peers.insert(id, peer);
    }
    Ok(peers)
}

/// The membership `request` asks for, from the `current` one at `version`.
pub fn next_membership(
    current: &BTreeMap<u64, PeerSpec>,
    version: i64,
    request: &ReconfigRequest,
) -> Result<BTreeMap<u64, PeerSpec>, ErrorCode> {
    if request.cur_config_id != -1 && request.cur_config_id != version {
        return Err(ErrorCode::BadVersion);
    }
    let next = match &request.new_members {
        Some(members) if !members.trim().is_empty() => parse_servers(members)?,
        _ => {
            let joining = request.joining_servers.as_deref().unwrap_or("");
            let leaving = request.leaving_servers.as_deref().unwrap_or("");
            if joining.trim().is_empty() && leaving.trim().is_empty() {
                return Err(ErrorCode::BadArguments);
            }
            let mut next = current.clone();
            for id in leaving.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let id: u64 = id.parse().map_err(|_| ErrorCode::BadArguments)?;
                next.remove(&id);
            }
            next.extend(parse_servers(joining)?);
            next
        }
    };
    if !next.values().any(|p| p.role == PeerRole::Participant) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(next)
}

/// Carries `request` out on the leader; returns the zxid of the `SetConfig` entry that
/// published the new configuration.
pub async fn reconfigure(
    raft: &Raft<TypeConfig>,
    core: &ServerCore,
    faults: &PeerFaults,
    request: &ReconfigRequest,
) -> Result<i64, ErrorCode> {
    let (current, version) = {
        let db = core.db();
        let data = db
            .tree()
            .get(CONFIG_PATH)
            .and_then(|n| n.data())
            .unwrap_or_default();
        parse_config_data(&data)
    };
    let next = next_membership(&current, version, request)?;
    tracing::info!(from = %lines(&current), to = %lines(&next), "reconfig");
    let no_quorum = |e: String| {
        tracing::warn!(error = %e, "reconfig failed");
        ErrorCode::NewConfigNoQuorum
    };
    // Every new member first catches up as a learner.
    let known = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .clone();
    for (id, peer) in &next {
        if known.get_node(id).is_none() {
            let added = tokio::time::timeout(
                CHANGE_WITHIN,
                raft.add_learner(*id, BasicNode::new(peer.peer_addr()), true),
            )
            .await;
            match added {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(no_quorum(e.to_string())),
                Err(_) => return Err(no_quorum(format!("member {id} did not catch up"))),
            }
        }
    }
    let voters: BTreeSet<u64> = next
        .iter()
        .filter(|(_, p)| p.role == PeerRole::Participant)
        .map(|(id, _)| *id)
        .collect();
    let changed =
        tokio::time::timeout(CHANGE_WITHIN, raft.change_membership(voters.clone(), true)).await;
    match changed {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(no_quorum(e.to_string())),
        Err(_) => return Err(no_quorum("the membership change did not commit".into())),
    }
    // Members no longer listed at all leave (voters demoted above, and observers).
    let gone: BTreeMap<u64, String> = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .nodes()
        .filter(|(id, _)| !next.contains_key(id))
        .map(|(id, node)| (*id, node.addr.clone()))
        .collect();
    if !gone.is_empty() {
        let removed = tokio::time::timeout(
            CHANGE_WITHIN,
            raft.change_membership(
                ChangeMembers::RemoveNodes(gone.keys().copied().collect()),
                false,
            ),
        )
        .await;
        if !matches!(removed, Ok(Ok(_))) {
            return Err(no_quorum("removing members did not commit".into()));
        }
        // Tell them (the log stops reaching them once they are out): they stop serving
        // and stay out of elections.
        for (id, addr) in gone {
            let link = PeerLink::new(core.server_id, id, addr, faults.clone());
            let _ = link
                .exchange(&PeerRequest::Removed, Duration::from_secs(1))
                .await;
        }
    }
    // Publish; a leader that removed itself hands this to its successor.
    let servers = lines(&next);
    for _ in 0..20 {
        if let Ok(rx) = core.submit(
            0,
            0,
            Vec::new(),
            TxnOp::SetConfig {
                servers: servers.clone(),
            },
        ) {
            if let Ok((zxid, applied)) = rx.await {
                return applied.result.map(|_| zxid);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(no_quorum("the new configuration was not published".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(joining: Option<&str>, leaving: Option<&str>, version: i64) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: joining.map(str::to_string),
            leaving_servers: leaving.map(str::to_string),
            new_members: None,
            cur_config_id: version,
        }
    }

    const THREE: &[u8] = b"server.1=127.0.0.1:1:2:participant\nserver.2=127.0.0.1:3:4:participant\nserver.3=127.0.0.1:5:6:participant;127.0.0.1:2181\nversion=100000004";

    #[test]
    fn config_data_round_trips_through_its_lines() {
        let (peers, version) = parse_config_data(THREE);
        assert_eq!(version, 0x1_0000_0004);
        assert_eq!(peers.len(), 3);
        assert_eq!(
            format!("{}\nversion=100000004", lines(&peers)).as_bytes(),
            THREE
        );
    }

    #[test]
    fn incremental_changes_add_and_remove_members() {
        let (peers, version) = parse_config_data(THREE);
        let next = next_membership(
            &peers,
            version,
            &request(
                Some("server.4=127.0.0.1:7:8:observer;2184,server.5=127.0.0.1:9:10"),
                Some("2"),
                -1,
            ),
        )
        .unwrap();
        assert_eq!(next.keys().copied().collect::<Vec<_>>(), vec![1, 3, 4, 5]);
        assert_eq!(next[&4].role, PeerRole::Observer);
        assert_eq!(next[&5].role, PeerRole::Participant);
    }

    #[test]
    fn bad_requests_are_refused_as_zookeeper_refuses_them() {
        let (peers, version) = parse_config_data(THREE);
        assert_eq!(
            next_membership(&peers, version, &request(None, Some("3"), 7)),
            Err(ErrorCode::BadVersion)
        );
        assert_eq!(
            next_membership(&peers, version, &request(None, None, -1)),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            next_membership(
                &peers,
                version,
                &request(Some("server.x=nonsense"), None, -1)
            ),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(
            next_membership(&peers, version, &request(None, Some("1,2,3"), -1)),
            Err(ErrorCode::BadArguments),
            "no voter left"
        );
        let whole = ReconfigRequest {
            joining_servers: None,
            leaving_servers: None,
            new_members: Some("server.1=127.0.0.1:1:2".into()),
            cur_config_id: version,
        };
        assert_eq!(
            next_membership(&peers, version, &whole)
                .unwrap()
                .keys()
                .count(),
            1
        );
    }
}
