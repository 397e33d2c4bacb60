//! The replicated state: the znode tree plus the session table, and the two ways in:
//! [`ZkDatabase::apply`] for committed transactions (every server, same order, same
//! result) and the read operations a server answers from its own copy.
//!
//! `apply` is a pure function of (state, zxid, transaction) → (state', outcome, watch
//! events): no clock, no randomness, no configuration of the applying server.
//!
//! It applies each transaction once. A member numbers the writes it submits in
//! increasing order (`Origin::seq`) and may submit a write again when it cannot tell
//! whether a leader that went away appended it (see `replication::propose`); the state
//! keeps the highest number applied from each member, and a transaction numbered at or
//! below it is a copy and changes nothing ([`ZkDatabase::apply`]).

mod read;
mod snapshot;
mod write;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zk_proto::{Acl, ErrorCode, EventType, Response};

use crate::tree::DataTree;

pub use snapshot::SnapshotError;

/// A session as every server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// Negotiated timeout in milliseconds.
    pub timeout: i32,
    /// The password a resuming client must present.
    pub passwd: Bytes,
}

/// A change that fires watches: `event_type` happened at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The znode concerned.
    pub path: String,
    /// What happened to it.
    pub event_type: EventType,
    /// The znode's ACL (before deletion, for NodeDeleted): ZooKeeper delivers an event
    /// only to connections with READ permission on it.
    pub acl: std::sync::Arc<[Acl]>,
}

/// What applying one transaction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The reply body for the client that asked, or its error.
    pub result: Result<Response, ErrorCode>,
    /// The watch events the change fires, in order.
    pub events: Vec<WatchEvent>,
}

impl Applied {
    /// The outcome of a transaction applied before (a copy submitted again): no
    /// change, no events. Nobody waits for it: its first application was answered.
    pub fn duplicate() -> Applied {
        Applied {
            result: Err(ErrorCode::RuntimeInconsistency),
            events: Vec::new(),
        }
    }
}

/// The znode tree and the sessions (in a snapshot: see `snapshot`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZkDatabase {
    tree: DataTree,
    sessions: BTreeMap<i64, SessionEntry>,
    last_zxid: i64,
    /// The highest `Origin::seq` applied from each member (by member id). Snapshots
    /// written before it existed read it as empty.
    applied_seqs: BTreeMap<u64, u64>,
}

impl ZkDatabase {
    /// An empty database: the initial tree, no sessions, zxid 0.
    pub fn new() -> ZkDatabase {
        ZkDatabase::default()
    }

    /// A database of this tree and these sessions, last changed at `last_zxid` (the
    /// data of another ZooKeeper, imported).
    pub fn from_parts(
        tree: DataTree,
        sessions: BTreeMap<i64, SessionEntry>,
        last_zxid: i64,
    ) -> ZkDatabase {
        ZkDatabase {
            tree,
            sessions,
            last_zxid,
            applied_seqs: BTreeMap::new(),
        }
    }

    /// The tree.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The zxid of the last applied transaction.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Records that the log advanced to `zxid` without a transaction of ours
    /// (consensus-internal entries), so zxids stay monotonic.
    pub fn advance_zxid(&mut self, zxid: i64) {
        self.last_zxid = self.last_zxid.max(zxid);
    }

    /// Sets the data of `/zookeeper/config` (the ensemble's membership, which each
    /// member writes from its own configuration; not a transaction).
    pub fn set_config_data(&mut self, data: bytes::Bytes, time: i64) {
        self.tree
            .set_data(crate::tree::CONFIG_PATH, Some(data), -1, 0, time);
    }

    /// The session `id`, if it is open.
    pub fn session(&self, id: i64) -> Option<&SessionEntry> {
        self.sessions.get(&id)
    }

    /// Every open session.
    pub fn sessions(&self) -> &BTreeMap<i64, SessionEntry> {
        &self.sessions
    }

    /// The highest write number (`Origin::seq`) applied from member `server`.
    pub fn last_seq(&self, server: u64) -> Option<u64> {
        self.applied_seqs.get(&server).copied()
    }

    /// Checks the tree's invariants ([`DataTree::check_consistency`]) and that every
    /// ephemeral znode belongs to an open session (for tests and fuzzing).
    pub fn check_consistency(&self) -> Result<(), String> {
        self.tree.check_consistency()?;
        for (session, paths) in self.tree.all_ephemerals() {
            if !self.sessions.contains_key(session) {
                return Err(format!(
                    "ephemerals {paths:?} belong to session 0x{session:x}, which is not open"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
