//! Curator-style recipes on [`zk_client`], with Curator's lessons built in: nodes
//! created with a protection GUID so a create retried after connection loss finds its
//! own node, parents created as containers, only the predecessor watched (no herd
//! effect), the session's state turned into a lease signal, and cancel-safe waits
//! (dropping an acquire leaves no node behind). See DESIGN.md, "Recipes".
//!
//! # Modules
//!
//! - [`lock`]: [`Lock`], a reentrant distributed mutex with Curator's
//!   `InterProcessMutex` node layout, try-acquire with timeout, a fencing token and a
//!   lease-loss signal.
//! - [`leader_latch`]: [`LeaderLatch`], leader election with Curator's `LeaderLatch`
//!   layout, giving up leadership while the session is in doubt.
//! - [`lease`]: [`Lease`], what a holder may assume while its session is connected,
//!   in doubt (Disconnected) or gone (Expired).
//! - [`protected`]: protected ephemeral-sequential creation (`_c_<guid>-` names),
//!   container parents, sequence ordering.
//! - [`error`]: what can go wrong in a recipe ([`Error`]).
//!
//! Still to come (see the recipes issues): read-write lock, semaphore, multi-lock,
//! leader selector, barriers, group membership, caches, discovery, counters, queues.

pub mod error;
pub mod leader_latch;
pub mod lease;
pub mod lock;
pub mod protected;

pub use error::{Error, Result};
pub use leader_latch::{CloseMode, LeaderLatch};
pub use lease::{Lease, LeaseState};
pub use lock::{FencingToken, Lock};
