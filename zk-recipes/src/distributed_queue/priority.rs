//! [`DistributedPriorityQueue`]: Curator's `DistributedPriorityQueue` layout — an
//! item of priority `p` is the node `<dir>/queue-<P><sequence>`, where `P` is `1` then
//! `p` as 8 hex digits for `p >= 0`, `0` then the 8 hex digits of its two's complement
//! for `p < 0`, so that the names sort by priority, lowest first, then by sequence
//! (first in, first out within a priority). Takes look at the queue again each time,
//! so an item put ahead of those already seen is taken first. Exactly once, as
//! [`DistributedQueue`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zk_client::Client;

use super::{
    BytesSerializer, DistributedQueue, JsonSerializer, MsgPackSerializer, QueueSerializer,
    QUEUE_ITEM_NAME,
};
use crate::error::Result;

/// The node name (before the sequence) of an item of `priority` (Curator's
/// `priorityToString` after `queue-`).
pub fn priority_name(priority: i32) -> String {
    let sign = if priority >= 0 { "1" } else { "0" };
    format!("{QUEUE_ITEM_NAME}{sign}{:08X}", priority as u32)
}

/// A queue of `T` taken lowest priority first, first in first out within a priority.
/// Cheap to clone; clones share one consumer state.
pub struct DistributedPriorityQueue<T> {
    queue: DistributedQueue<T>,
}

impl<T> Clone for DistributedPriorityQueue<T> {
    fn clone(&self) -> Self {
        DistributedPriorityQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for DistributedPriorityQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedPriorityQueue")
            .field("queue", &self.queue)
            .finish()
    }
}

impl DistributedPriorityQueue<Vec<u8>> {
    /// A priority queue of byte items at `dir`.
    pub fn new(client: &Client, dir: &str) -> DistributedPriorityQueue<Vec<u8>> {
        DistributedPriorityQueue::with_serializer(client, dir, BytesSerializer)
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> DistributedPriorityQueue<T> {
    /// A priority queue of `T` as JSON at `dir`.
    pub fn json(client: &Client, dir: &str) -> DistributedPriorityQueue<T> {
        DistributedPriorityQueue::with_serializer(client, dir, JsonSerializer)
    }

    /// A priority queue of `T` as MessagePack at `dir`.
    pub fn msgpack(client: &Client, dir: &str) -> DistributedPriorityQueue<T> {
        DistributedPriorityQueue::with_serializer(client, dir, MsgPackSerializer)
    }
}

impl<T: Send + 'static> DistributedPriorityQueue<T> {
    /// A priority queue of `T` at `dir`, items made bytes by `serializer`.
    pub fn with_serializer(
        client: &Client,
        dir: &str,
        serializer: impl QueueSerializer<T> + 'static,
    ) -> DistributedPriorityQueue<T> {
        DistributedPriorityQueue {
            queue: DistributedQueue::build(client, dir, Arc::new(serializer), true),
        }
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        self.queue.path()
    }

    /// Adds `item` with `priority` (lower is taken first), exactly once.
    pub async fn put(&self, item: &T, priority: i32) -> Result<()> {
        self.queue
            .put_named(std::slice::from_ref(item), &priority_name(priority))
            .await
    }

    /// Adds `items`, all of `priority`, in this order, all or none, exactly once.
    pub async fn put_many(&self, items: &[T], priority: i32) -> Result<()> {
        self.queue.put_named(items, &priority_name(priority)).await
    }

    /// Takes the item of lowest priority (the oldest among them), waiting for one.
    pub async fn take(&self) -> Result<T> {
        self.queue.take().await
    }

    /// [`DistributedPriorityQueue::take`], waiting at most `timeout`; `Ok(None)` if
    /// nothing was taken.
    pub async fn try_take(&self, timeout: Duration) -> Result<Option<T>> {
        self.queue.try_take(timeout).await
    }

    /// The items as they are taken; ends after yielding an error.
    pub fn stream(&self) -> BoxStream<'static, Result<T>> {
        self.queue.stream()
    }

    /// What this handle's (and its clones') writes went through so far.
    pub fn stats(&self) -> super::QueueStats {
        self.queue.stats()
    }

    /// The names of the items now in the queue, first first.
    pub async fn item_names(&self) -> Result<Vec<String>> {
        self.queue.item_names().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_named_as_curator_names_them_and_sort_by_value() {
        assert_eq!(priority_name(0), "queue-100000000");
        assert_eq!(priority_name(26), "queue-10000001A");
        assert_eq!(priority_name(-1), "queue-0FFFFFFFF");
        let mut names: Vec<_> = [5, -3, 0, i32::MIN, i32::MAX, -1, 1]
            .iter()
            .map(|p| (priority_name(*p), *p))
            .collect();
        names.sort();
        let order: Vec<i32> = names.into_iter().map(|(_, p)| p).collect();
        assert_eq!(order, vec![i32::MIN, -3, -1, 0, 1, 5, i32::MAX]);
    }
}
