//! [`DistributedAtomicLong`]: a counter shared by every process (Curator's
//! `DistributedAtomicLong`): a signed 64-bit value stored as 8 bytes big-endian at one
//! path (a missing node reads as 0), changed by optimistic compare-and-set — read the
//! value and its version, write the new value only if the version is unchanged, and
//! on contention try again under a [`RetryPolicy`] (optionally then under a lock,
//! Curator's [`PromotedToLock`]). Every operation answers with an [`AtomicValue`]:
//! whether it succeeded, the value before and the value after.
//!
//! # Lost answers
//!
//! A versioned setData whose answer is lost to a connection loss may or may not have
//! been applied, and re-reading cannot tell: the value may have moved by our write or
//! by someone else's. Curator's client sends it again; if the first one applied, the
//! retry fails with BadVersion, the attempt counts as lost to contention, and the next
//! attempt increments a second time. Here each write is a `multi` that also creates a
//! marker node `<path>/_op-<guid>` (a fresh GUID per write; Curator's layout otherwise
//! untouched: a Java `DistributedAtomicLong` reads the same 8 bytes). After a lost
//! answer the same transaction, marker included, is sent again: if the first one
//! applied, the marker exists and the retry fails on it with NodeExists — the write is
//! known to have applied, exactly once; if it fails on the value's version instead,
//! the first one did not apply and never will (one marker, so at most one of the sends
//! can apply; this rests on ZooKeeper applying a session's requests in order, one
//! sent before a reconnection, if at all, before anything sent after it). The marker
//! is deleted once the outcome is known. So:
//!
//! - `succeeded == true`: the write applied exactly once, `post_value` is what it
//!   wrote;
//! - `succeeded == false`: nothing was written (contention outlasted the retry policy,
//!   or a compare-and-set saw another value);
//! - `Err(_)`: the client failed (session gone, or the connection stayed down
//!   past the client's retry policy). Only then, and only if the connection was lost mid-write, is the
//!   outcome unknown; the write applied at most once, and if it did its marker
//!   `<path>/_op-<guid>` is left behind as the evidence.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use std::time::Duration;
//! use zk_client::retry::ExponentialBackoff;
//! use zk_recipes::atomic_long::DistributedAtomicLong;
//!
//! let hits = DistributedAtomicLong::new(
//!     &client,
//!     "/counters/hits",
//!     ExponentialBackoff::new(Duration::from_millis(10), 10),
//! );
//! let result = hits.increment().await?;
//! if result.succeeded {
//!     println!("{} -> {}", result.pre_value, result.post_value);
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use zk_client::retry::RetryPolicy;
use zk_client::{Acl, Client, CreateMode, Error as ClientError, OpResult, Transaction};
use zk_proto::ErrorCode;

use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::protected::ensure_containers;
use crate::retry::{is_transient, with_retries};

/// The name prefix of the marker node a write leaves under the value's node until its
/// outcome is known (`<path>/_op-<guid>`).
pub const OP_MARKER_PREFIX: &str = "_op-";

/// What an operation on a [`DistributedAtomicLong`] came to (Curator's `AtomicValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomicValue<T> {
    /// Whether the operation applied (always true for a read).
    pub succeeded: bool,
    /// The value before: the one the successful write replaced, or the last one read.
    pub pre_value: T,
    /// The value after: what the write stored if it succeeded, else `pre_value`.
    pub post_value: T,
    /// How hard it was.
    pub stats: AtomicStats,
}

/// Attempts and time an operation took (Curator's `AtomicStats`, plus lost answers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtomicStats {
    /// Optimistic attempts (read, then versioned write).
    pub optimistic_tries: u32,
    /// Attempts made holding the promoted lock.
    pub promoted_lock_tries: u32,
    /// Time spent in optimistic attempts.
    pub optimistic_time: Duration,
    /// Time spent waiting for and holding the promoted lock.
    pub promoted_time: Duration,
    /// Sends of the write that applied whose answer was lost to a connection loss
    /// (settled through its marker, see the module docs).
    pub lost_answers: u32,
    /// Writes found to have applied although their answer was lost (a blind retry
    /// would have applied them twice).
    pub recovered_writes: u32,
}

/// Curator's `PromotedToLock`: when the optimistic attempts run out, take a lock at
/// `path` (waiting at most `max_lock_time`) and try again under `retry` holding it, so
/// that writers going through the lock no longer contend with each other.
#[derive(Debug, Clone)]
pub struct PromotedToLock {
    /// The lock's path (a [`Lock`], Curator's `InterProcessMutex` layout).
    pub path: String,
    /// How long to wait for the lock; the operation fails (`succeeded == false`) if it
    /// does not come.
    pub max_lock_time: Duration,
    /// The attempts made while holding the lock.
    pub retry: Arc<dyn RetryPolicy>,
}

impl PromotedToLock {
    /// Promotion to the lock at `path`, waited for at most `max_lock_time`, with
    /// `retry` governing the attempts made under it.
    pub fn new(
        path: &str,
        max_lock_time: Duration,
        retry: impl RetryPolicy + 'static,
    ) -> PromotedToLock {
        PromotedToLock {
            path: path.to_string(),
            max_lock_time,
            retry: Arc::new(retry),
        }
    }
}

/// A 64-bit counter at one path, changed by optimistic compare-and-set. Cheap to
/// clone; clones are the same counter.
#[derive(Debug, Clone)]
pub struct DistributedAtomicLong {
    client: Client,
    path: String,
    retry: Arc<dyn RetryPolicy>,
    promoted: Option<PromotedToLock>,
}

/// One optimistic attempt's outcome.
enum Attempt {
    /// Written: the value before and after.
    Done(i64, i64),
    /// Someone else changed the value first (or a compare-and-set saw another value):
    /// the value read.
    Conflict(i64),
}

impl DistributedAtomicLong {
    /// The counter at `path` (created, parents as containers, on the first write);
    /// `retry` bounds the optimistic attempts of one operation under contention.
    pub fn new(client: &Client, path: &str, retry: impl RetryPolicy + 'static) -> Self {
        DistributedAtomicLong {
            client: client.clone(),
            path: path.trim_end_matches('/').to_string(),
            retry: Arc::new(retry),
            promoted: None,
        }
    }

    /// The same counter, trying under a lock once the optimistic attempts run out.
    pub fn promoted_to_lock(mut self, promoted: PromotedToLock) -> Self {
        self.promoted = Some(promoted);
        self
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value (0 if the node does not exist); always `succeeded`.
    pub async fn get(&self) -> Result<AtomicValue<i64>> {
        let (value, _) = read_long(&self.client, &self.path).await?;
        Ok(AtomicValue {
            succeeded: true,
            pre_value: value,
            post_value: value,
            stats: AtomicStats::default(),
        })
    }

    /// Adds 1.
    pub async fn increment(&self) -> Result<AtomicValue<i64>> {
        self.add(1).await
    }

    /// Subtracts 1.
    pub async fn decrement(&self) -> Result<AtomicValue<i64>> {
        self.add(-1).await
    }

    /// Adds `delta` (wrapping, as Java's `long`).
    pub async fn add(&self, delta: i64) -> Result<AtomicValue<i64>> {
        self.apply(move |v| v.wrapping_add(delta)).await
    }

    /// Subtracts `delta` (wrapping).
    pub async fn subtract(&self, delta: i64) -> Result<AtomicValue<i64>> {
        self.apply(move |v| v.wrapping_sub(delta)).await
    }

    /// Sets the value to `new`, whatever it was, through the optimistic attempts
    /// (Curator's `trySet`): `pre_value` says what it replaced.
    pub async fn try_set(&self, new: i64) -> Result<AtomicValue<i64>> {
        self.apply(move |_| new).await
    }

    /// Sets the value to `new` only if it is `expected` (a missing node counts as 0),
    /// in one attempt: `succeeded == false` if it was not (`pre_value` then says what
    /// it was) or if it changed between the read and the write. (Curator never
    /// succeeds on a missing node; here it is 0 as everywhere else.)
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<AtomicValue<i64>> {
        let mut stats = AtomicStats {
            optimistic_tries: 1,
            ..AtomicStats::default()
        };
        let started = Instant::now();
        let attempt = self
            .attempt(&mut stats, &|v| (v == expected).then_some(new))
            .await?;
        stats.optimistic_time = started.elapsed();
        Ok(outcome(attempt, stats))
    }

    /// Writes `new` unconditionally, creating the node if needed (Curator's
    /// `forceSet`; repeating it after a lost answer writes the same value again).
    pub async fn force_set(&self, new: i64) -> Result<()> {
        let data = new.to_be_bytes();
        let mut schedule = self.client.retry_policy().start();
        loop {
            let set = self.client.set_data(&self.path, &data, None).await;
            let err = match set {
                Ok(_) => return Ok(()),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                    match create_with_parents(&self.client, &self.path, &data).await {
                        Ok(()) => return Ok(()),
                        // Created meanwhile (perhaps by our lost create): set it.
                        Err(e) if e.code() == Some(ErrorCode::NodeExists) => continue,
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if !is_transient(&self.client, &err) {
                return Err(err.into());
            }
            match schedule.next_delay() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(err.into()),
            }
        }
    }

    /// Creates the node with `value` if it does not exist; `false` if it did.
    pub async fn initialize(&self, value: i64) -> Result<bool> {
        let data = value.to_be_bytes();
        loop {
            let marker = op_marker(&self.path);
            let path = self.path.clone();
            let create = move |t: Transaction| {
                t.create(&path, &data, &Acl::open_unsafe(), CreateMode::Persistent)
            };
            match commit_once(&self.client, &marker, MarkerAt::Last, &create).await? {
                Once::Applied { .. } => return Ok(true),
                Once::Refused(e) if e.code() == Some(ErrorCode::NodeExists) => return Ok(false),
                Once::Refused(e) if e.code() == Some(ErrorCode::NoNode) => {
                    ensure_parent(&self.client, &self.path).await?;
                }
                Once::Refused(e) => return Err(e.into()),
            }
        }
    }

    /// Applies `make` to the current value until a write succeeds or the retry
    /// policies give up (Curator's `trySet(MakeValue)`).
    async fn apply(&self, make: impl Fn(i64) -> i64 + Send + Sync) -> Result<AtomicValue<i64>> {
        let make = |v| Some(make(v));
        let mut stats = AtomicStats::default();
        let started = Instant::now();
        let mut schedule = self.retry.start();
        let mut last = loop {
            stats.optimistic_tries += 1;
            match self.attempt(&mut stats, &make).await? {
                Attempt::Done(pre, post) => {
                    stats.optimistic_time = started.elapsed();
                    return Ok(outcome(Attempt::Done(pre, post), stats));
                }
                conflict => match schedule.next_delay() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => break conflict,
                },
            }
        };
        stats.optimistic_time = started.elapsed();
        if let Some(promoted) = &self.promoted {
            let started = Instant::now();
            let mut lock = Lock::new(&self.client, &promoted.path);
            if let Some(guard) = lock.try_acquire(promoted.max_lock_time).await? {
                let mut schedule = promoted.retry.start();
                let tried = loop {
                    stats.promoted_lock_tries += 1;
                    match self.attempt(&mut stats, &make).await {
                        Ok(Attempt::Done(pre, post)) => break Ok(Attempt::Done(pre, post)),
                        Ok(conflict) => match schedule.next_delay() {
                            Some(delay) => tokio::time::sleep(delay).await,
                            None => break Ok(conflict),
                        },
                        Err(e) => break Err(e),
                    }
                };
                let released = guard.release().await;
                last = tried?;
                if let Err(e) = released {
                    tracing::debug!(error = %e, path = %promoted.path, "atomic long: lock release failed");
                }
            }
            stats.promoted_time = started.elapsed();
        }
        Ok(outcome(last, stats))
    }

    /// One optimistic attempt: read, compute (`None`: do not write), write with the
    /// version read (or create), exactly once.
    async fn attempt(
        &self,
        stats: &mut AtomicStats,
        make: &(dyn Fn(i64) -> Option<i64> + Sync),
    ) -> Result<Attempt> {
        loop {
            let (pre, version) = read_long(&self.client, &self.path).await?;
            let Some(post) = make(pre) else {
                return Ok(Attempt::Conflict(pre));
            };
            let data = post.to_be_bytes();
            let marker = op_marker(&self.path);
            let path = self.path.clone();
            let once = match version {
                Some(version) => {
                    let set = move |t: Transaction| t.set_data(&path, &data, Some(version));
                    commit_once(&self.client, &marker, MarkerAt::First, &set).await?
                }
                None => {
                    let create = move |t: Transaction| {
                        t.create(&path, &data, &Acl::open_unsafe(), CreateMode::Persistent)
                    };
                    commit_once(&self.client, &marker, MarkerAt::Last, &create).await?
                }
            };
            match once {
                Once::Applied {
                    results,
                    lost_answers,
                } => {
                    stats.lost_answers += lost_answers;
                    stats.recovered_writes += u32::from(results.is_none());
                    return Ok(Attempt::Done(pre, post));
                }
                Once::Refused(e) => match (e.code(), version) {
                    // The parent is missing: make it, then this is no conflict.
                    (Some(ErrorCode::NoNode), None) => {
                        ensure_parent(&self.client, &self.path).await?;
                    }
                    (
                        Some(ErrorCode::NodeExists | ErrorCode::BadVersion | ErrorCode::NoNode),
                        _,
                    ) => return Ok(Attempt::Conflict(pre)),
                    _ => return Err(e.into()),
                },
            }
        }
    }
}

fn outcome(attempt: Attempt, stats: AtomicStats) -> AtomicValue<i64> {
    match attempt {
        Attempt::Done(pre, post) => AtomicValue {
            succeeded: true,
            pre_value: pre,
            post_value: post,
            stats,
        },
        Attempt::Conflict(pre) => AtomicValue {
            succeeded: false,
            pre_value: pre,
            post_value: pre,
            stats,
        },
    }
}

/// The value at `path` and its version (`(0, None)` if the node does not exist).
async fn read_long(client: &Client, path: &str) -> Result<(i64, Option<i32>)> {
    match with_retries(client, || client.get_data(path)).await {
        Ok((data, stat)) => Ok((long_from_bytes(path, &data)?, Some(stat.version))),
        Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok((0, None)),
        Err(e) => Err(e.into()),
    }
}

/// Curator's reading of the 8 bytes: big-endian, empty is 0, shorter is corrupt
/// (longer: the first 8 bytes, as Java's `ByteBuffer.getLong`).
fn long_from_bytes(path: &str, data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    match data.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
        Some(bytes) => Ok(i64::from_be_bytes(bytes)),
        None => Err(Error::Codec(format!(
            "corrupted data for node {path}: {data:02x?}"
        ))),
    }
}

/// A fresh marker path for one write to `path`.
pub(crate) fn op_marker(path: &str) -> String {
    zk_client::paths::join(path, &format!("{OP_MARKER_PREFIX}{}", uuid::Uuid::new_v4()))
}

/// Creates the parent of `path` (and its ancestors) as containers.
async fn ensure_parent(client: &Client, path: &str) -> Result<()> {
    let parent = zk_proto::path::parent(path);
    if parent == "/" {
        return Ok(());
    }
    let made = with_retries(client, || async {
        ensure_containers(client, parent)
            .await
            .map_err(|e| match e {
                Error::Client(c) => c,
                other => ClientError::Protocol(other.to_string()),
            })
    })
    .await;
    made.map_err(Error::from)
}

/// Creates `path` persistent with `data`, creating missing parents as containers.
pub(crate) async fn create_with_parents(
    client: &Client,
    path: &str,
    data: &[u8],
) -> std::result::Result<(), ClientError> {
    let open = Acl::open_unsafe();
    match client.create(path).data(data).acl(&open).await {
        Err(e) if e.code() == Some(ErrorCode::NoNode) => {
            ensure_parent(client, path).await.map_err(|e| match e {
                Error::Client(c) => c,
                other => ClientError::Protocol(other.to_string()),
            })?;
            client.create(path).data(data).acl(&open).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Where [`commit_once`] puts the marker's create in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerAt {
    /// Before the other ops: a retry of an applied transaction fails on the marker
    /// itself (NodeExists), which settles it. Needs the marker's parent to exist.
    First,
    /// After them (the marker's parent is created by the transaction): a retry of an
    /// applied transaction fails on an earlier op, and the marker is looked up.
    Last,
}

/// What a transaction run by [`commit_once`] came to.
#[derive(Debug)]
pub(crate) enum Once {
    /// It applied, exactly once.
    Applied {
        /// Its results; `None` when it was an attempt whose answer was lost that
        /// applied.
        results: Option<Vec<OpResult>>,
        /// Attempts whose answer was lost.
        lost_answers: u32,
    },
    /// It did not apply and never will: the error of the op that failed.
    Refused(ClientError),
}

/// Commits the transaction `build` makes, plus the creation of the persistent node
/// `marker` (unique to this call), exactly once, telling for sure whether it applied
/// even when answers are lost: after a lost answer the same transaction is sent again
/// (reconnected; the marker allows at most one attempt to apply), and a failure caused
/// by an earlier attempt's success shows as the marker existing. Once applied, the
/// marker is deleted. `Err` only when the client failed for good or the connection
/// stayed down past the client's retry policy (the outcome is then unknown if an answer was lost:
/// the marker says, if it exists, that it applied).
pub(crate) async fn commit_once(
    client: &Client,
    marker: &str,
    at: MarkerAt,
    build: &(dyn Fn(Transaction) -> Transaction + Sync),
) -> Result<Once> {
    let mut schedule = client.retry_policy().start();
    let mut lost_answers = 0;
    let open = Acl::open_unsafe();
    let outcome = loop {
        let txn = match at {
            MarkerAt::First => build(client.transaction().create(
                marker,
                b"",
                &open,
                CreateMode::Persistent,
            )),
            MarkerAt::Last => {
                build(client.transaction()).create(marker, b"", &open, CreateMode::Persistent)
            }
        };
        match txn.commit().await {
            Ok(results) => {
                break Once::Applied {
                    results: Some(results),
                    lost_answers,
                }
            }
            Err(ClientError::Keeper {
                code: ErrorCode::NodeExists,
                path,
            }) if path == marker => {
                // Only an earlier attempt of ours can have made it.
                break Once::Applied {
                    results: None,
                    lost_answers,
                };
            }
            Err(e) if is_transient(client, &e) => {
                lost_answers += 1;
                let Some(delay) = schedule.next_delay() else {
                    tracing::warn!(%marker, error = %e, "the outcome of a write is unknown: gave up reconnecting");
                    return Err(e.into());
                };
                tracing::debug!(%marker, error = %e, "answer lost; sending the same transaction again");
                tokio::time::sleep(delay).await;
            }
            Err(e) if lost_answers > 0 && at == MarkerAt::Last => {
                // Refused now, perhaps because an earlier attempt applied: its marker
                // says. (Our refused transaction was ordered after any earlier
                // attempt, so a read on the same session sees it.)
                match with_retries(client, || client.exists(marker)).await? {
                    Some(_) => {
                        break Once::Applied {
                            results: None,
                            lost_answers,
                        }
                    }
                    None => return Ok(Once::Refused(e)),
                }
            }
            Err(e) => return Ok(Once::Refused(e)),
        }
    };
    match with_retries(client, || client.delete(marker, None)).await {
        Ok(()) => {}
        Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
        Err(e) => {
            tracing::warn!(%marker, error = %e, "could not delete a write's marker; it stays behind")
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_read_as_curator_reads_them() {
        assert_eq!(long_from_bytes("/c", &[]).ok(), Some(0));
        assert_eq!(long_from_bytes("/c", &(-5i64).to_be_bytes()).ok(), Some(-5));
        assert_eq!(
            long_from_bytes("/c", &[0, 0, 0, 0, 0, 0, 1, 0, 9]).ok(),
            Some(256)
        );
        assert!(long_from_bytes("/c", &[1, 2, 3]).is_err());
        assert!(op_marker("/a/b").starts_with("/a/b/_op-"));
    }
}
