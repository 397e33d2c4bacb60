//! A ZooKeeper-compatible server.
//!
//! # Layout
//!
//! - [`tree`]: the znode tree and its indices (ephemerals, containers, TTL nodes), with
//!   the primitive mutations and a journal for rolling back a failed multi.
//! - [`txn`]: the replicated log's payload — a write request plus the session, xid,
//!   proposer clock and identities needed to apply it identically everywhere.
//! - [`database`]: the replicated state (tree + sessions); `apply` is a pure function of
//!   (state, zxid, txn) → (state', reply, watch events), and the local reads.
//! - [`config`]: zoo.cfg (ZooKeeper's own format and system-property keys) and myid.
//! - [`core`]: one server's shared state (database, watches, connections, replies
//!   owed) and `apply_committed`, where committed transactions come back from the log.
//! - [`stats`]: counters for the four-letter words.
//! - [`acl`]: permission checks, ACL fix-up, the digest scheme.
//! - [`session_tracker`]: session liveness (deadlines, expiry, fresh timeouts on
//!   leadership) and session-id generation; local, not replicated.
//! - [`storage`]: the segmented, CRC-checked transaction log (group commit, torn-tail
//!   recovery) and atomically replaced files (vote, snapshots).
//! - [`watches`]: per-connection watches with ZooKeeper's trigger rules (one-shot,
//!   persistent, persistent-recursive) and setWatches replay.
//!
//! Still to come (see DESIGN.md): replication (openraft), storage, connections,
//! sessions' liveness, watches, four-letter words, zoo.cfg, testing support.

pub mod acl;
pub mod config;
pub mod core;
pub mod database;
pub mod session_tracker;
pub mod stats;
pub mod storage;
pub mod tree;
pub mod txn;
pub mod watches;
