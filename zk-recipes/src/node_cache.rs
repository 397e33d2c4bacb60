//! [`NodeCache`]: a mirror of one node (Curator's `NodeCache`), and [`ConfigCache`]:
//! the same node decoded as the app's own type through serde — MessagePack
//! (rmp-serde) or JSON — so an app can watch a configuration key as a struct. Both
//! are a [`TreeCache`] of depth 0: current after reconnection and expiry as it is.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! #[derive(serde::Deserialize, Debug)]
//! struct Limits { max_connections: u32 }
//! let limits = zk_recipes::ConfigCache::<Limits>::new(&client, "/config/limits", zk_recipes::Format::Json);
//! limits.start();
//! let mut values = limits.watch();
//! # client.create("/config/limits").data(br#"{"max_connections": 8}"#).parents(true).await?;
//! while values.changed().await.is_ok() {
//!     println!("now {:?}", *values.borrow());
//! #   break;
//! }
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::sync::Arc;

use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use zk_client::Client;

use crate::error::{Error, Result};
use crate::task::Background;
use crate::tree_cache::follow;
use crate::tree_cache::{ChildData, TreeCache, TreeEvent};

/// How a typed value is stored in a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// MessagePack (rmp-serde, struct fields by name).
    MsgPack,
    /// JSON (UTF-8).
    Json,
}

impl Format {
    /// The format's name in messages ("JSON", "MessagePack").
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::MsgPack => "MessagePack",
        }
    }

    /// `value` as node data.
    pub fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>> {
        match self {
            Format::MsgPack => {
                rmp_serde::to_vec_named(value).map_err(|e| Error::Codec(e.to_string()))
            }
            Format::Json => serde_json::to_vec(value).map_err(|e| Error::Codec(e.to_string())),
        }
    }

    /// Node data as a `T`.
    pub fn decode<T: DeserializeOwned>(self, data: &[u8]) -> Result<T> {
        match self {
            Format::MsgPack => rmp_serde::from_slice(data).map_err(|e| Error::Codec(e.to_string())),
            Format::Json => serde_json::from_slice(data).map_err(|e| Error::Codec(e.to_string())),
        }
    }
}

/// A mirror of one node.
#[derive(Debug)]
pub struct NodeCache {
    cache: TreeCache,
    path: String,
}

impl NodeCache {
    /// A mirror of `path` (which may not exist yet), not running yet:
    /// [`NodeCache::start`] it.
    pub fn new(client: &Client, path: &str) -> NodeCache {
        let cache = TreeCache::builder(client, path).max_depth(0).build();
        let path = match path.trim_end_matches('/') {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        NodeCache { cache, path }
    }

    /// Waits until the node has been read once.
    pub async fn initialized(&self) {
        self.cache.initialized().await
    }

    /// The node now (`None` while it does not exist).
    pub fn current(&self) -> Option<ChildData> {
        self.cache.get(&self.path)
    }

    /// The node's data as UTF-8 text (lossy), while it exists.
    pub fn current_text(&self) -> Option<String> {
        self.current()
            .map(|n| String::from_utf8_lossy(&n.data).into_owned())
    }

    /// Its changes from now on (`Added`/`Updated`/`Removed` and connection events).
    ///
    /// Changes can merge: a node cache reads the node when a watch fires, so several
    /// writes in quick succession may show as one `Updated` with the latest data (as
    /// with Curator's `NodeCache`). To see every write, put each in a node of its
    /// own (a sequential child, a queue) rather than overwriting one.
    pub fn events(&self) -> BoxStream<'static, TreeEvent> {
        self.cache.events()
    }

    /// Starts mirroring in the background (again: nothing).
    pub fn start(&self) {
        self.cache.start();
    }

    /// Stops mirroring and waits until it has; dropping stops it without waiting.
    pub async fn close(self) {
        self.cache.close().await
    }
}

/// One node decoded as a `T`, kept current.
#[derive(Debug)]
pub struct ConfigCache<T> {
    cache: NodeCache,
    value: watch::Receiver<Option<Arc<T>>>,
    error: watch::Receiver<Option<Error>>,
    /// Set once the value of the initial load is published.
    ready: watch::Receiver<bool>,
    /// Decodes the node cache's events into `value`.
    task: Background,
    _type: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> ConfigCache<T> {
    /// A cache of `path` decoded as `format`, not running yet: [`ConfigCache::start`]
    /// it.
    pub fn new(client: &Client, path: &str, format: Format) -> ConfigCache<T> {
        let cache = NodeCache::new(client, path);
        let (value_tx, value) = watch::channel(None);
        let (error_tx, error) = watch::channel(None);
        // `initialized()` waits for this, not for the tree cache: the value is
        // published by the task below, after the tree cache has its data.
        let (ready_tx, ready) = watch::channel(false);
        let path = cache.path.clone();
        // The node's version last decoded: other changes of the mirror (connection
        // events) decode nothing again.
        let mut decoded: Option<(i64, i32)> = None;
        let task = follow(&cache.cache, move |tree| {
            match tree.get(&path) {
                Some(node) => {
                    let seen = (node.stat.czxid, node.stat.version);
                    if decoded != Some(seen) {
                        decoded = Some(seen);
                        publish(format, node, &value_tx, &error_tx);
                    }
                }
                None => {
                    decoded = None;
                    error_tx.send_replace(None);
                    value_tx.send_if_modified(|v| v.take().is_some());
                }
            }
            ready_tx.send_replace(true);
        });
        ConfigCache {
            cache,
            value,
            error,
            ready,
            task,
            _type: PhantomData,
        }
    }
}

/// Decodes `node` into the value channel; a value that does not decode keeps the
/// last good one and says why.
fn publish<T: DeserializeOwned>(
    format: Format,
    node: &ChildData,
    value: &watch::Sender<Option<Arc<T>>>,
    error: &watch::Sender<Option<Error>>,
) {
    match format.decode::<T>(&node.data) {
        Ok(v) => {
            // The error first: whoever sees the new value sees it cleared.
            error.send_replace(None);
            value.send_replace(Some(Arc::new(v)));
        }
        Err(e) => {
            tracing::warn!(path = %node.path, error = %e, "config value does not decode");
            error.send_replace(Some(e));
        }
    }
}

impl<T> ConfigCache<T> {
    /// Starts watching in the background (again: nothing).
    pub fn start(&self) {
        self.task.start();
        self.cache.start();
    }

    /// Waits until the node has been read once and its value (if it exists and
    /// decodes) is what [`ConfigCache::get`] answers.
    pub async fn initialized(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The latest value that decoded (`None` before the node exists).
    pub fn get(&self) -> Option<Arc<T>> {
        self.value.borrow().clone()
    }

    /// The value as it changes. The receiver starts at the current value
    /// (`borrow()` it; `changed()` waits for the next one); `None` while the node
    /// does not exist.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<T>>> {
        self.value.clone()
    }

    /// Why the node's current data does not decode, if it does not (the last good
    /// value is kept meanwhile).
    pub fn last_error(&self) -> Option<Error> {
        self.error.borrow().clone()
    }

    /// Stops watching and waits until it has; dropping stops it without waiting.
    pub async fn close(self) {
        self.task.close().await;
        self.cache.close().await;
    }
}
