//! An async ZooKeeper client: ordered, resilient, typed. It speaks Apache ZooKeeper's
//! wire protocol and works against ZooKeeper 3.5+ and zk-server alike.
//!
//! # Layout
//!
//! - [`blocking`]: the same client for programs without an async runtime.
//! - [`client`]: [`Client`], the clonable handle with every operation, and
//!   [`ClientBuilder`].
//! - [`create`]: [`Create`], the builder behind [`Client::create`] (mode, TTL, ACL,
//!   Stat, parents).
//! - `reply`: [`Reply`], the named future every request method returns.
//! - `recursive`: [`Client::delete_recursive`], a subtree deleted children first.
//! - [`paths`]: Curator's `ZKPaths` helpers (join, split, parent, name, sequence).
//! - `queue`: the handle's side of the request queue (call order, even when full).
//! - `session`: the one task that owns the socket — connect, resume, re-send auth and
//!   watches, ordered requests, pings, reconnection with backoff.
//! - `sasl`: SASL DIGEST-MD5 right after each connection's handshake
//!   ([`ClientBuilder::sasl_digest`]).
//! - [`watch`]: typed events; one-shot watches as futures, persistent ones as streams.
//! - [`multi`]: [`Transaction`], all-or-nothing writes, and their [`OpResult`]s.
//! - [`retry`]: retry policies in the spirit of Curator's, and `retry(policy, op)`.
//! - [`state`]: [`SessionState`] and [`StateChanges`], how it changes.
//! - [`error`]: [`Error`], keeping ZooKeeper's codes.
//! - [`connect_string`]: parsing `host:port,…/chroot`.
//! - [`ensemble`]: the ensemble's dynamic configuration (`/zookeeper/config`) and
//!   following it ([`ClientBuilder::follow_ensemble`], Curator's `EnsembleTracker`).
//! - `rebalance`: ZooKeeper's rule for moving clients when the server list changes
//!   ([`Client::update_server_list`]).
//! - [`tls`] (feature `tls`, on by default): [`TlsConfig`], TLS to a secure client
//!   port (`secureClientPort`), on every connection and reconnection.
//!
//! # States and retries
//!
//! A client is `Connecting`, then `Connected` (`ConnectedReadOnly` on a server cut off
//! from its quorum, when [`ClientBuilder::read_only`] allows it; the client moves to a
//! read-write server by itself once one answers). If the connection drops it becomes
//! `Disconnected` and reconnects by itself, to any server of the connect string,
//! keeping its session, ephemerals, credentials and watches; changes made while it was
//! away fire the watches on return. Requests made while disconnected wait for the
//! reconnection; requests *in flight* when the connection dropped fail with
//! [`Error::ConnectionLoss`], because the server may or may not have applied them.
//!
//! `Disconnected` is Curator's SUSPENDED: the session may still be alive, but nothing
//! that depends on it (a lock, leadership) is guaranteed until `Connected` again. If
//! the server expired the session meanwhile, the client becomes `Expired` (Curator's
//! LOST): its ephemerals and watches are gone. What follows depends on
//! [`ClientBuilder::renew_expired_sessions`]: by default `Expired` is final, every call
//! fails with [`Error::SessionExpired`] and you build a new client; with renewal on
//! (Curator's behaviour), the same handle goes on to `Connecting` and a *new* session
//! ([`Client::session_id`] changes), and calls made meanwhile wait for it.
//! `AuthFailed` and `Closed` are final. Read the state with [`Client::state`]; follow
//! it with [`Client::state_changes`]. Dropping the last clone of a client closes its
//! session.
//!
//! Retrying is the caller's decision, since only the caller knows whether an operation
//! is idempotent. [`Error::is_retryable`] says whether trying again can help;
//! [`Client::retry`] retries an idempotent operation under the builder's
//! [`retry`] policy (Curator's exponential, bounded, n-times, until-elapsed, forever).
//! A create that failed with ConnectionLoss may have happened: check before creating
//! again, and never blindly retry a sequential create (the recipes crate adds Curator's
//! protection for that).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let connect_string = server.connect_string(); // e.g. "10.0.0.1:2181,10.0.0.2:2181"
//! use zk_client::Client;
//! let zk = Client::connect(&connect_string).await?;
//! zk.create("/app").data(b"config").await?;
//! let (read, changed) = zk.get_data_and_watch("/app");
//! let (data, stat) = read.await?;
//! zk.set_data("/app", b"new", Some(stat.version)).await?;
//! # let other = Client::connect(&connect_string).await?;
//! # other.set_data("/app", b"newer", None).await?;
//! let event = changed.await?;
//! # let _ = (data, event);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod blocking;
pub mod client;
pub mod connect_string;
pub mod create;
pub mod ensemble;
pub mod error;
pub mod multi;
pub mod paths;
mod queue;
mod rebalance;
mod recursive;
mod reply;
pub mod retry;
mod sasl;
mod session;
pub mod state;
#[cfg(feature = "tls")]
pub mod tls;
pub mod watch;

pub use client::{Client, ClientBuilder, ReadOp, ReadResult};
pub use create::Create;
pub use error::{Error, Result};
pub use multi::{OpResult, Transaction};
pub use reply::Reply;
pub use state::{SessionState, StateChanges};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use watch::{Notifications, OneshotWatcher, PersistentWatcher, WatchedEvent};
pub use zk_proto::{
    Acl, AddWatchMode, CreateMode, ErrorCode, EventType, Id, KeeperState, Perms, Stat, WatcherType,
};
