//! Distributed queues with every item delivered exactly once: [`DistributedQueue`]
//! (FIFO) and [`DistributedPriorityQueue`] (lowest priority first), with the node
//! layout of Curator's `DistributedQueue` / `DistributedPriorityQueue`: each item is a
//! persistent-sequential node `<dir>/queue-<sequence>` (priority queue:
//! `<dir>/queue-<priority as 9 hex digits><sequence>`), taken in the order of the
//! names, its data Curator's item envelope around the bytes a [`QueueSerializer`]
//! makes (see [`serializer`]). Java producers and consumers can share the queue (a
//! Curator consumer logs our two bookkeeping directories as foreign nodes and skips
//! them).
//!
//! # Exactly once
//!
//! Both ends of a queue write, and a write whose answer is lost to a connection loss
//! or a failover may or may not have been applied. A put retried blindly can put an
//! item twice; a take that deletes the item and loses the answer cannot tell whether
//! it deleted it or another consumer did (Curator's queue may lose the item then, or,
//! with lock safety, hand it over twice). So each write is a `multi` that also creates
//! a marker node, unique to the write:
//!
//! - **put**: `[create <dir>/_put/<guid>, create <dir>/queue-…]` (`put_many`: all the
//!   items in the one transaction);
//! - **take**: having read the first item and its version,
//!   `[create <dir>/_taken/<item>-<guid>, delete <dir>/<item> at that version]`.
//!
//! After a lost answer the same transaction is sent again once reconnected. If the
//! earlier one applied, the marker exists and the retry fails on it (NodeExists): the
//! write happened, exactly once. Any other refusal means it did not, and never will
//! (with the marker created first, at most one of the attempts can apply): the put is
//! made again; the take moves on (another consumer had the item). Once the outcome is
//! known the marker is deleted and the item handed over. Markers are persistent, so
//! they settle the outcome through a session expiry too (on a client that renews
//! sessions).
//!
//! What is left: a process that dies between a take and handing the item over takes
//! the item with it (its marker stays under `_taken`), as an item handed over and then
//! lost by the application is; and a write given up past the client's retry policy without a
//! connection returns an error with its outcome unknown (its marker, if present, says
//! it applied). A take whose future is dropped mid-write leaves the item with the
//! queue handle: the next take (or the stream) of the same handle delivers it (if the
//! handle is dropped too, the item goes with it, as with a process that dies).
//!
//! These guarantees rest on ZooKeeper's: requests of a session are applied in order,
//! and one sent on a connection that was lost is applied, if at all, before anything
//! the session sends after reconnecting (a request reaching the leader from a server
//! the session has left is refused: SessionMoved).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use futures::StreamExt;
//! use zk_recipes::distributed_queue::DistributedQueue;
//!
//! let jobs = DistributedQueue::<String>::json(&client, "/queues/jobs");
//! jobs.put(&"resize img-1".to_string()).await?;
//! let job = jobs.take().await?; // waits for an item
//! assert_eq!(job, "resize img-1");
//! // Or take them as they come.
//! jobs.put(&"resize img-2".to_string()).await?;
//! let mut next = jobs.stream();
//! while let Some(job) = next.next().await {
//!     println!("{}", job?);
//! #   break;
//! }
//! # Ok(()) }
//! ```

mod priority;
pub mod serializer;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zk_client::{Acl, Client, CreateMode, Error as ClientError, Transaction};
use zk_proto::ErrorCode;

pub use priority::{priority_name, DistributedPriorityQueue};
pub use serializer::{
    BytesSerializer, CodecError, JsonSerializer, MsgPackSerializer, QueueSerializer,
};

use crate::atomic_long::{commit_once, MarkerAt, Once};
use crate::error::{Error, Result};
use crate::protected::ensure_containers;
use crate::retry::{is_transient, with_retries};

/// The name every item node starts with (Curator's `QUEUE_ITEM_NAME`).
pub const QUEUE_ITEM_NAME: &str = "queue-";
/// The directory under the queue where takes leave their markers.
pub const TAKEN_DIR: &str = "_taken";
/// The directory under the queue where puts leave their markers.
pub const PUT_DIR: &str = "_put";

/// A FIFO queue of `T` at one path. Cheap to clone; clones share one consumer state
/// (what one take left, the next take of any clone delivers). For consumers that take
/// in parallel, make one queue per consumer.
pub struct DistributedQueue<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    client: Client,
    dir: String,
    serializer: Arc<dyn QueueSerializer<T>>,
    /// Look at the queue again before each take (items may have come in ahead of the
    /// ones seen): the priority queue.
    relist: bool,
    consumer: tokio::sync::Mutex<Consumer<T>>,
    counters: Arc<Counters>,
}

/// What this handle's writes went through (see [`DistributedQueue::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Write attempts (puts and takes) whose answer was lost to a connection loss,
    /// each settled through its marker.
    pub lost_answers: u32,
    /// Puts found to have applied although their answer was lost (a blind retry
    /// would have put the items twice).
    pub recovered_puts: u32,
    /// Takes found to have applied although their answer was lost (without the
    /// marker, the item would have been lost or handed over twice).
    pub recovered_takes: u32,
}

#[derive(Debug, Default)]
struct Counters {
    lost_answers: AtomicU32,
    recovered_puts: AtomicU32,
    recovered_takes: AtomicU32,
}

impl Counters {
    /// Counts a write's lost answers; `recovered` is the counter to bump if it applied
    /// although its answer was lost.
    fn count(&self, once: &Once, recovered: &AtomicU32) {
        if let Once::Applied {
            results,
            lost_answers,
        } = once
        {
            self.lost_answers
                .fetch_add(*lost_answers, Ordering::Relaxed);
            if results.is_none() {
                recovered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What one consumer handle holds between takes.
struct Consumer<T> {
    /// Taken, not yet handed over (a Curator batch, or a take whose future was
    /// dropped).
    ready: VecDeque<T>,
    /// Item names seen in the queue, in order, not yet tried.
    listed: VecDeque<String>,
    /// A take under way: its outcome, and the items it takes.
    claim: Option<(JoinHandle<Result<bool>>, Vec<T>)>,
    /// Items this consumer cannot read (left to others).
    unreadable: HashSet<String>,
}

impl<T> Clone for DistributedQueue<T> {
    fn clone(&self) -> Self {
        DistributedQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for DistributedQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedQueue")
            .field("dir", &self.shared.dir)
            .field("relist", &self.shared.relist)
            .finish_non_exhaustive()
    }
}

impl DistributedQueue<Vec<u8>> {
    /// A queue of byte items at `dir` (created, parents as containers, on first use).
    pub fn new(client: &Client, dir: &str) -> DistributedQueue<Vec<u8>> {
        DistributedQueue::with_serializer(client, dir, BytesSerializer)
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> DistributedQueue<T> {
    /// A queue of `T` as JSON at `dir`.
    pub fn json(client: &Client, dir: &str) -> DistributedQueue<T> {
        DistributedQueue::with_serializer(client, dir, JsonSerializer)
    }

    /// A queue of `T` as MessagePack at `dir`.
    pub fn msgpack(client: &Client, dir: &str) -> DistributedQueue<T> {
        DistributedQueue::with_serializer(client, dir, MsgPackSerializer)
    }
}

impl<T: Send + 'static> DistributedQueue<T> {
    /// A queue of `T` at `dir`, items made bytes by `serializer`.
    pub fn with_serializer(
        client: &Client,
        dir: &str,
        serializer: impl QueueSerializer<T> + 'static,
    ) -> DistributedQueue<T> {
        DistributedQueue::build(client, dir, Arc::new(serializer), false)
    }

    fn build(
        client: &Client,
        dir: &str,
        serializer: Arc<dyn QueueSerializer<T>>,
        relist: bool,
    ) -> DistributedQueue<T> {
        DistributedQueue {
            shared: Arc::new(Shared {
                client: client.clone(),
                dir: dir.trim_end_matches('/').to_string(),
                serializer,
                relist,
                consumer: tokio::sync::Mutex::new(Consumer {
                    ready: VecDeque::new(),
                    listed: VecDeque::new(),
                    claim: None,
                    unreadable: HashSet::new(),
                }),
                counters: Arc::new(Counters::default()),
            }),
        }
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.shared.dir
    }

    /// Adds `item` at the end of the queue, exactly once.
    pub async fn put(&self, item: &T) -> Result<()> {
        self.put_named(std::slice::from_ref(item), QUEUE_ITEM_NAME)
            .await
    }

    /// Adds `items` at the end of the queue in this order, all or none, exactly once
    /// (one node each, in one transaction: keep the batch well under the server's
    /// 1 MB request limit).
    pub async fn put_many(&self, items: &[T]) -> Result<()> {
        self.put_named(items, QUEUE_ITEM_NAME).await
    }

    /// Puts `items` as nodes `<dir>/<name><sequence>`.
    async fn put_named(&self, items: &[T], name: &str) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut nodes = Vec::with_capacity(items.len());
        for item in items {
            let bytes = self
                .shared
                .serializer
                .serialize(item)
                .map_err(|e| Error::Codec(format!("cannot serialize a queue item: {e}")))?;
            nodes.push(serializer::encode_items([bytes.as_slice()]));
        }
        let client = &self.shared.client;
        let dir = &self.shared.dir;
        let marker = format!("{dir}/{PUT_DIR}/{}", uuid::Uuid::new_v4());
        let item_path = format!("{dir}/{name}");
        let create = |t: Transaction| {
            nodes.iter().fold(t, |t, data| {
                t.create(
                    &item_path,
                    data,
                    &Acl::open_unsafe(),
                    CreateMode::PersistentSequential,
                )
            })
        };
        let mut made_dirs = false;
        loop {
            let once = commit_once(client, &marker, MarkerAt::First, &create).await?;
            let counters = &self.shared.counters;
            counters.count(&once, &counters.recovered_puts);
            match once {
                Once::Applied { .. } => return Ok(()),
                // The queue is not there yet: make it, then put (a refused put did
                // not apply, so putting again is no duplicate).
                Once::Refused(e) if e.code() == Some(ErrorCode::NoNode) && !made_dirs => {
                    self.ensure_dirs().await?;
                    made_dirs = true;
                }
                Once::Refused(e) => return Err(e.into()),
            }
        }
    }

    /// Takes the first item, waiting for one. Cancel-safe: if this future is dropped
    /// once the item's take began, the item stays with this handle and its next take
    /// returns it.
    pub async fn take(&self) -> Result<T> {
        loop {
            if let Some(item) = self.take_within(None).await? {
                return Ok(item);
            }
        }
    }

    /// Takes the first item, waiting at most `timeout` for one; `Ok(None)` if none
    /// came. (An item whose take had begun is always waited for: `None` means nothing
    /// was taken.)
    pub async fn try_take(&self, timeout: Duration) -> Result<Option<T>> {
        self.take_within(Some(Instant::now() + timeout)).await
    }

    /// The items, taken one after the other as they come; the stream ends after
    /// yielding an error. Dropping it loses nothing (see [`DistributedQueue::take`]).
    pub fn stream(&self) -> BoxStream<'static, Result<T>> {
        futures::stream::unfold(Some(self.clone()), |queue| async move {
            let queue = queue?;
            match queue.take().await {
                Ok(item) => Some((Ok(item), Some(queue))),
                Err(e) => Some((Err(e), None)),
            }
        })
        .boxed()
    }

    /// What this handle's (and its clones') writes went through so far.
    pub fn stats(&self) -> QueueStats {
        let c = &self.shared.counters;
        QueueStats {
            lost_answers: c.lost_answers.load(Ordering::Relaxed),
            recovered_puts: c.recovered_puts.load(Ordering::Relaxed),
            recovered_takes: c.recovered_takes.load(Ordering::Relaxed),
        }
    }

    /// The names of the items now in the queue, first first.
    pub async fn item_names(&self) -> Result<Vec<String>> {
        let client = &self.shared.client;
        match with_retries(client, || client.get_children(&self.shared.dir)).await {
            Ok(children) => Ok(items_in_order(children)),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn take_within(&self, deadline: Option<Instant>) -> Result<Option<T>> {
        let client = &self.shared.client;
        let dir = &self.shared.dir;
        // One take at a time per handle: what a take leaves is the next one's.
        let mut guard = self.shared.consumer.lock().await;
        let consumer = &mut *guard;
        loop {
            if let Some(item) = consumer.ready.pop_front() {
                return Ok(Some(item));
            }
            // A take under way (perhaps begun by a take whose future was dropped):
            // its outcome first.
            if let Some((task, _)) = &mut consumer.claim {
                let outcome = task.await;
                let Some((_, items)) = consumer.claim.take() else {
                    continue;
                };
                match outcome {
                    Ok(Ok(true)) => consumer.ready.extend(items),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) => {
                        return Err(Error::Client(ClientError::Protocol(format!(
                            "a take's task failed: {e}"
                        ))))
                    }
                }
                continue;
            }
            if self.shared.relist {
                consumer.listed.clear();
            }
            if consumer.listed.is_empty() {
                let (listing, changed) = client.get_children_and_watch(dir);
                let listed = match within(deadline, listing).await {
                    None => return Ok(None),
                    Some(Ok(children)) => children,
                    Some(Err(e)) if e.code() == Some(ErrorCode::NoNode) => {
                        self.ensure_dirs().await?;
                        continue;
                    }
                    Some(Err(e)) if is_transient(client, &e) => {
                        pause(deadline).await;
                        continue;
                    }
                    Some(Err(e)) => return Err(e.into()),
                };
                consumer.listed = items_in_order(listed)
                    .into_iter()
                    .filter(|name| !consumer.unreadable.contains(name))
                    .collect();
                if consumer.listed.is_empty() {
                    // Nothing yet: wait for the queue to change (or the session to
                    // end, or the connection to come back after a change).
                    if let Some(Err(e)) = within(deadline, changed).await {
                        if e.is_session_lost() && !client.renews_expired_sessions() {
                            return Err(e.into());
                        }
                    } else if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                    continue;
                }
            }
            let Some(name) = consumer.listed.pop_front() else {
                continue;
            };
            let path = format!("{dir}/{name}");
            let read = match within(deadline, with_retries(client, || client.get_data(&path))).await
            {
                None => return Ok(None),
                Some(read) => read,
            };
            let (data, stat) = match read {
                Ok(read) => read,
                // Taken by someone else already.
                Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(items) = self.decode(&path, &data) else {
                consumer.unreadable.insert(name);
                continue;
            };
            // The write runs as a task of its own, so that dropping this future
            // cannot leave an item taken and not handed over.
            let task = tokio::spawn(claim(
                client.clone(),
                dir.clone(),
                name,
                stat.version,
                self.shared.counters.clone(),
            ));
            consumer.claim = Some((task, items));
        }
    }

    /// The items in an item node's data, or `None` (logged) if this consumer cannot
    /// read them: they are left in the queue.
    fn decode(&self, path: &str, data: &[u8]) -> Option<Vec<T>> {
        let Some(raw) = serializer::decode_items(data) else {
            tracing::warn!(%path, "queue: not a queue item; left in place");
            return None;
        };
        let mut items = Vec::with_capacity(raw.len());
        for bytes in raw {
            match self.shared.serializer.deserialize(&bytes) {
                Ok(item) => items.push(item),
                Err(e) => {
                    tracing::warn!(%path, error = %e, "queue: cannot deserialize an item; left in place");
                    return None;
                }
            }
        }
        Some(items)
    }

    /// Creates the queue (parents as containers) and its marker directories.
    async fn ensure_dirs(&self) -> Result<()> {
        ensure_dirs(&self.shared.client, &self.shared.dir).await
    }
}

/// Creates the queue at `dir` (persistent, as Curator does; parents as containers)
/// and its marker directories, where missing.
async fn ensure_dirs(client: &Client, dir: &str) -> Result<()> {
    let parent = zk_proto::path::parent(dir);
    if parent != "/" {
        with_retries(client, || async {
            ensure_containers(client, parent)
                .await
                .map_err(|e| match e {
                    Error::Client(c) => c,
                    other => ClientError::Protocol(other.to_string()),
                })
        })
        .await?;
    }
    for path in [
        dir.to_string(),
        format!("{dir}/{PUT_DIR}"),
        format!("{dir}/{TAKEN_DIR}"),
    ] {
        let made = with_retries(client, || client.create(&path)).await;
        match made {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Takes the item `name` read at `version`, exactly once: `true` if we took it,
/// `false` if someone else did (or it changed).
async fn claim(
    client: Client,
    dir: String,
    name: String,
    version: i32,
    counters: Arc<Counters>,
) -> Result<bool> {
    let item = format!("{dir}/{name}");
    let marker = format!("{dir}/{TAKEN_DIR}/{name}-{}", uuid::Uuid::new_v4());
    let delete = |t: Transaction| t.delete(&item, Some(version));
    let mut made_dirs = false;
    loop {
        let once = commit_once(&client, &marker, MarkerAt::First, &delete).await?;
        counters.count(&once, &counters.recovered_takes);
        match once {
            Once::Applied { lost_answers, .. } => {
                if lost_answers > 0 {
                    tracing::debug!(%item, lost_answers, "queue: take settled after lost answers");
                }
                return Ok(true);
            }
            Once::Refused(e) => match (&e, e.code()) {
                (ClientError::Keeper { path, .. }, Some(ErrorCode::NoNode))
                    if *path == marker && !made_dirs =>
                {
                    ensure_dirs(&client, &dir).await?;
                    made_dirs = true;
                }
                (_, Some(ErrorCode::NoNode | ErrorCode::BadVersion)) => return Ok(false),
                _ => return Err(e.into()),
            },
        }
    }
}

/// The item names among `children`, in the order they are taken (Curator sorts the
/// names: the sequence, or the priority then the sequence).
fn items_in_order(children: Vec<String>) -> Vec<String> {
    let mut items: Vec<String> = children
        .into_iter()
        .filter(|c| c.starts_with(QUEUE_ITEM_NAME))
        .collect();
    items.sort();
    items
}

/// `fut`'s output, or `None` if `deadline` came first.
async fn within<F: std::future::Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// A short wait before looking again (never past `deadline`).
async fn pause(deadline: Option<Instant>) {
    let wake = Instant::now() + Duration::from_millis(50);
    let wake = deadline.map_or(wake, |d| d.min(wake));
    tokio::time::sleep_until(wake).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_taken_in_name_order_and_bookkeeping_is_skipped() {
        let children = vec![
            "queue-0000000010".to_string(),
            PUT_DIR.to_string(),
            "queue-0000000002".to_string(),
            TAKEN_DIR.to_string(),
            "foreign".to_string(),
        ];
        assert_eq!(
            items_in_order(children),
            vec!["queue-0000000002", "queue-0000000010"]
        );
    }
}
