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
//! - [`rw_lock`]: [`ReadWriteLock`], readers share and writers exclude (Curator's
//!   `InterProcessReadWriteLock` layout), with a downgrade that lets no writer in.
//! - [`semaphore`]: [`Semaphore`], at most `n` leases at once (Curator's
//!   `InterProcessSemaphoreV2` layout).
//! - [`multi_lock`]: [`MultiLock`], several locks as one, all or none.
//! - [`leader_selector`]: [`LeaderSelector`], runs a task while leading and takes
//!   leadership away from it (drops it) when the session is in doubt; auto-requeue.
//! - [`barrier`]: [`Barrier`], a gate held closed by one node.
//! - [`double_barrier`]: [`DoubleBarrier`], `n` members enter and leave together.
//! - [`group_member`]: [`GroupMember`], membership kept through expiry, the group
//!   mirrored as a map and a stream of changes.
//! - [`discovery`]: [`ServiceDiscovery`], [`ServiceCache`], [`ServiceProvider`] with
//!   curator-x-discovery's JSON instances, re-registered after expiry.
//! - [`shared_count`]: [`SharedCount`], a shared integer (Curator's layout).
//! - [`atomic_long`]: [`DistributedAtomicLong`], optimistic compare-and-set counter.
//! - [`distributed_queue`]: FIFO and priority queues with exactly-once takes.
//! - [`tree_cache`]: [`TreeCache`], an in-memory mirror of a subtree with typed
//!   change events, re-synced after reconnection and expiry.
//! - [`node_cache`]: [`NodeCache`] (one node) and [`ConfigCache`] (one node decoded
//!   as the app's own type through serde).
//! - [`modeled`]: [`Modeled`], a typed znode (the app's own type through serde, JSON
//!   or MessagePack): validated reads, exactly-once creates and versioned writes, and
//!   a read-modify-write `update` retried through contention.
//! - [`lease`]: [`Lease`], what a holder may assume while its session is connected,
//!   in doubt (Disconnected) or gone (Expired).
//! - `contention` (private): the line of sequential nodes every lock waits in.
//! - `kept_node` (private): a node kept in place (recreated after deletion,
//!   reconnection and expiry), under `PersistentNode`, discovery registrations and
//!   group membership.
//! - `held` (private): what a reentrant recipe holds and the guards handing it out,
//!   released explicitly or, when dropped, in the background.
//! - [`persistent_node`]: [`PersistentNode`], a node kept in place (recreated after
//!   deletion, reconnection and expiry) until closed.
//! - `protected` (private): protected ephemeral-sequential creation (`_c_<guid>-`
//!   names), container parents, sequence ordering.
//! - `task` (private): the background recipes' one lifecycle: built, `start()`ed,
//!   `close().await`d (or dropped: stopped, cleaning up on its own).
//! - `retry` (private): the one retry driver, under the client's retry policy.
//! - [`error`]: what can go wrong in a recipe ([`Error`]).
//! - [`guide`]: the user guide (`docs/guide.md`): the client and the recipes in runnable,
//!   doc-tested snippets.

pub mod atomic_long;
pub mod barrier;
mod contention;
pub mod discovery;
pub mod distributed_queue;
pub mod double_barrier;
pub mod error;
#[doc = include_str!("../../docs/guide.md")]
pub mod guide {}
pub mod group_member;
mod held;
mod kept_node;
pub mod leader_latch;
pub mod leader_selector;
pub mod lease;
pub mod lock;
pub mod modeled;
pub mod multi_lock;
pub mod node_cache;
pub mod persistent_node;
mod protected;
mod retry;
pub mod rw_lock;
pub mod semaphore;
pub mod shared_count;
mod task;
pub mod tree_cache;

pub use atomic_long::{AtomicStats, AtomicValue, DistributedAtomicLong, PromotedToLock};
pub use barrier::Barrier;
pub use discovery::{ServiceCache, ServiceDiscovery, ServiceInstance, ServiceProvider};
pub use distributed_queue::{
    DistributedPriorityQueue, DistributedQueue, QueueSerializer, QueueStats,
};
pub use double_barrier::DoubleBarrier;
pub use error::{Error, Result};
pub use group_member::{GroupMember, MemberEvent, Members};
pub use leader_latch::{CloseMode, LatchLeadership, LeaderLatch};
pub use leader_selector::{LeaderSelector, Leadership, Participant};
pub use lease::{Lease, LeaseState};
pub use lock::{FencingToken, Lock, LockGuard};
pub use modeled::{Modeled, Versioned};
pub use multi_lock::{MultiLock, MultiLockGuard};
pub use node_cache::{ConfigCache, Format, NodeCache};
pub use persistent_node::{NodeMode, PersistentNode};
pub use rw_lock::{Downgrade, ReadGuard, ReadWriteLock, WriteGuard};
pub use semaphore::{Semaphore, SemaphoreLease};
pub use shared_count::{SharedCount, VersionedValue};
pub use tree_cache::{ChildData, Tree, TreeCache, TreeEvent, WatchStrategy};
