//! A ZooKeeper-compatible server.
//!
//! # Layout
//!
//! - [`apache_data`]: Apache ZooKeeper's data directory (snapshots, transaction logs)
//!   imported into ours and exported back (`zk-server import` / `export`).
//! - [`tree`]: the znode tree and its indices (ephemerals, containers, TTL nodes), with
//!   the primitive mutations and a journal for rolling back a failed multi.
//! - [`txn`]: the replicated log's payload — a write request plus the session, xid,
//!   proposer clock and identities needed to apply it identically everywhere.
//! - [`database`]: the replicated state (tree + sessions); `apply` is a pure function of
//!   (state, zxid, txn) → (state', reply, watch events), and the local reads.
//! - `fuzzing` (feature `fuzzing`): a network-free server driven by structured
//!   input, the body of the `server_requests` fuzz target under `fuzz/` and of its
//!   corpus replay; it calls the connection's own handshake, routing and answering.
//! - [`config`]: zoo.cfg (ZooKeeper's own format and system-property keys) and myid.
//! - [`core`]: one server's shared state (database, watches, connections, replies
//!   owed) and `apply_committed`, where committed transactions come back from the log.
//! - [`net`]: the client port — accept loop, per-connection protocol (handshake,
//!   pipelined writes, ordered replies, watch delivery), four-letter words, and the
//!   operator HTTP endpoints (admin `/commands/…`, `/metrics`).
//! - [`tls`]: rustls configurations from the `ssl.*` / `ssl.quorum.*` settings, for
//!   the secure client port and the peer links alike; a TLS client's `x509` identity.
//! - [`stats`]: counters for the four-letter words.
//! - [`metrics`]: Prometheus metrics (`metricsProvider.httpPort`, `/metrics`).
//! - [`acl`]: permission checks, ACL fix-up, the digest scheme.
//! - [`sasl`]: the SASL credentials (JAAS file) of the client port and peer links.
//! - [`replication`]: openraft (the only module naming its types) — log storage over
//!   the segmented log, the state machine over the database, snapshots; the peer
//!   protocol (`wire`), the links between members (`links`) and the answers to peers
//!   (`peer_service`).
//! - [`role`]: this server's part in its ensemble (standalone, leader, follower,
//!   observer, looking) and the quorum facts the four-letter words report.
//! - [`server`]: starting and stopping — storage, consensus, client port, session
//!   expiry, container/TTL reaping.
//! - [`session_tracker`]: session liveness (deadlines, expiry, fresh timeouts on
//!   leadership) and session-id generation; local, not replicated.
//! - [`storage`]: the segmented, CRC-checked transaction log (group commit, torn-tail
//!   recovery, zero padding ahead of appends) and atomically replaced files (vote,
//!   snapshots).
//! - [`testing`]: `TestingServer` and `TestingCluster`, in-process servers and
//!   ensembles on free ports with temporary data directories (stop, restart, isolate a
//!   member), for this project's tests and users'.
//! - [`watches`]: per-connection watches with ZooKeeper's trigger rules (one-shot,
//!   persistent, persistent-recursive) and setWatches replay.
//!
//! Running an ensemble, and where it differs from ZooKeeper: `docs/ensembles.md`.

pub mod acl;
pub mod apache_data;
pub mod config;
pub mod core;
pub mod database;
pub(crate) mod evaluate;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod metrics;
pub mod net;
pub mod replication;
pub mod role;
pub mod sasl;
pub mod server;
pub mod session_order;
pub mod session_tracker;
pub mod stats;
pub mod storage;
pub mod testing;
pub mod tls;
pub mod tree;
pub mod txn;
pub mod watches;
