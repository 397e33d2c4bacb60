//! An async ZooKeeper client: ordered, resilient, typed. It speaks Apache ZooKeeper's
//! wire protocol and works against ZooKeeper 3.5+ and zk-server alike.
//!
//! # Layout
//!
//! - [`blocking`]: the same client for programs without an async runtime.
//! - [`client`]: [`Client`], the clonable handle with every operation, and
//!   [`ClientBuilder`].
//! - `queue`: the handle's side of the request queue (call order, even when full).
//! - `session`: the one task that owns the socket — connect, resume, re-send auth and
//!   watches, ordered requests, pings, reconnection with backoff.
//! - `sasl`: SASL DIGEST-MD5 right after each connection's handshake
//!   ([`ClientBuilder::sasl_digest`]).
//! - [`watch`]: typed events; one-shot watches as futures, persistent ones as streams.
//! - [`multi`]: [`Transaction`], all-or-nothing writes.
//! - [`retry`]: retry policies in the spirit of Curator's, and `retry(policy, op)`.
//! - [`state`]: [`SessionState`] and how it changes.
//! - [`error`]: [`Error`], keeping ZooKeeper's codes.
//! - [`connect_string`]: parsing `host:port,…/chroot`.
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
//! the server expired the session meanwhile, the client ends `Expired` (Curator's
//! LOST) and every call fails with [`Error::SessionExpired`]: its ephemerals are gone;
//! build a new client. `AuthFailed` and `Closed` are final too. Watch them with
//! [`Client::state`] (now) or [`Client::state_changes`] (every transition).
//!
//! Retrying is the caller's decision, since only the caller knows whether an operation
//! is idempotent. [`Error::is_retryable`] says whether trying again can help;
//! [`Client::retry`] retries an idempotent operation under the builder's
//! [`retry`] policy (Curator's exponential, bounded, n-times, until-elapsed, forever).
//! A create that failed with ConnectionLoss may have happened: check before creating
//! again, and never blindly retry a sequential create (the recipes crate adds Curator's
//! protection for that).
//!
//! ```no_run
//! # async fn demo() -> zk_client::Result<()> {
//! use zk_client::{Client, CreateMode, Acl};
//! let zk = Client::connect("127.0.0.1:2181").await?;
//! zk.create("/app", b"config", &Acl::open_unsafe(), CreateMode::Persistent).await?;
//! let (read, changed) = zk.get_data_w("/app");
//! let (data, stat) = read.await?;
//! zk.set_data("/app", b"new", Some(stat.version)).await?;
//! let event = changed.await?;
//! # let _ = (data, event);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod blocking;
pub mod client;
pub mod connect_string;
pub mod error;
pub mod multi;
mod queue;
pub mod retry;
mod sasl;
mod session;
pub mod state;
#[cfg(feature = "tls")]
pub mod tls;
pub mod watch;

pub use client::{Client, ClientBuilder, ReadOp, ReadResult};
pub use error::{Error, Result};
pub use multi::Transaction;
pub use state::SessionState;
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use watch::{Notifications, OneshotWatcher, PersistentWatcher, WatchedEvent};
pub use zk_proto::{
    Acl, AddWatchMode, CreateMode, ErrorCode, EventType, Id, KeeperState, OpResult, Perms, Stat,
    WatcherType,
};
