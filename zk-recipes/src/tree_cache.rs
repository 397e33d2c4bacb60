//! [`TreeCache`]: an in-memory mirror of a subtree (Curator's `TreeCache`), kept
//! current with one persistent recursive watch where the server has them (ZooKeeper
//! 3.6+) and with one-shot data and child watches on every node where it does not.
//!
//! Every change to the mirror is published as an event ([`TreeEvent`]): after the
//! initial load, `Initialized`; then `Added`, `Updated` (with old and new data) and
//! `Removed`, parents added before their children and children removed before their
//! parents. Replaying the events over the snapshot they were subscribed with
//! ([`TreeCache::subscribe`]) gives the mirror exactly.
//!
//! The mirror is re-read from the server — and the differences published as ordinary
//! events — after every reconnection (a persistent watch misses what changed while
//! disconnected), followed by `Reconnected`; after a session expiry on a client that
//! renews sessions, followed by `Resynced`. A cache whose client can never connect
//! again publishes `Lost` and stops.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use futures::StreamExt;
//! let cache = zk_recipes::TreeCache::builder(&client, "/config").build();
//! cache.start();
//! let (snapshot, mut events) = cache.subscribe();
//! while let Some(event) = events.next().await {
//!     println!("{event:?}");
//! #   break; // (Initialized)
//! }
//! # let _ = snapshot; Ok(()) }
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use zk_client::{
    AddWatchMode, Client, ErrorCode, EventType, SessionState, Stat, StateChanges, WatchedEvent,
};

use crate::lease::client_is_over;
use crate::task::Background;

/// One mirrored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildData {
    /// Its path (relative to the client's chroot).
    pub path: String,
    /// Its data.
    pub data: Vec<u8>,
    /// Its Stat as last read.
    pub stat: Stat,
}

/// The mirror: path → node.
pub type Tree = BTreeMap<String, ChildData>;

/// A change of the mirror, or of the cache's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// The initial load is complete.
    Initialized,
    /// A node appeared.
    Added(ChildData),
    /// A node's data changed (its `mzxid` moved).
    Updated {
        /// As it was.
        old: ChildData,
        /// As it is.
        new: ChildData,
    },
    /// A node went.
    Removed(ChildData),
    /// The connection is lost; the mirror may be stale until `Reconnected`.
    Suspended,
    /// Connected again with the same session; the mirror was re-read (differences
    /// published before this event).
    Reconnected,
    /// The session expired and a new one began; the mirror was fully re-read
    /// (differences published before this event).
    Resynced,
    /// The client can never connect again: the cache stopped.
    Lost,
}

/// Which watches keep the cache current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStrategy {
    /// A persistent recursive watch where the server has them, else one-shot watches.
    Auto,
    /// One-shot data and child watches on every node (any ZooKeeper version).
    OneShot,
}

/// Configures a [`TreeCache`].
#[derive(Debug)]
pub struct TreeCacheBuilder {
    client: Client,
    root: String,
    max_depth: usize,
    strategy: WatchStrategy,
}

impl TreeCacheBuilder {
    /// Mirror at most `depth` levels below the root (0 = the root alone).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Which watches to use (default [`WatchStrategy::Auto`]).
    pub fn strategy(mut self, strategy: WatchStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The cache, not running yet: [`TreeCache::start`] it.
    pub fn build(self) -> TreeCache {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (initialized_tx, initialized) = watch::channel(false);
        let mirror = Mirror {
            client: self.client.clone(),
            root: self.root,
            max_depth: self.max_depth,
            strategy: self.strategy,
            shared: shared.clone(),
            oneshots: FuturesUnordered::new(),
            outstanding: HashSet::new(),
            use_oneshots: false,
        };
        TreeCache {
            shared,
            initialized,
            task: Background::new(move |stopped| mirror.run(initialized_tx, stopped)),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    tree: Tree,
    subscribers: Vec<mpsc::UnboundedSender<TreeEvent>>,
    /// Whether `Initialized` was published (a later subscriber's snapshot is whole).
    initialized: bool,
}

impl Shared {
    fn publish(&mut self, event: TreeEvent) {
        if matches!(event, TreeEvent::Initialized) {
            self.initialized = true;
        }
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
    }
}

/// A mirror of a subtree, kept current in the background until closed.
#[derive(Debug)]
pub struct TreeCache {
    shared: Arc<Mutex<Shared>>,
    initialized: watch::Receiver<bool>,
    task: Background,
}

impl TreeCache {
    /// A cache of `root` and everything below it.
    pub fn builder(client: &Client, root: &str) -> TreeCacheBuilder {
        let root = match root.trim_end_matches('/') {
            "" => "/".to_string(),
            r => r.to_string(),
        };
        TreeCacheBuilder {
            client: client.clone(),
            root,
            max_depth: usize::MAX,
            strategy: WatchStrategy::Auto,
        }
    }

    /// Waits until the initial load is complete.
    pub async fn initialized(&self) {
        let mut initialized = self.initialized.clone();
        let _ = initialized.wait_for(|i| *i).await;
    }

    /// The mirror now.
    pub fn snapshot(&self) -> Tree {
        self.shared
            .lock()
            .map(|s| s.tree.clone())
            .unwrap_or_default()
    }

    /// One node of the mirror.
    pub fn get(&self, path: &str) -> Option<ChildData> {
        self.shared
            .lock()
            .ok()
            .and_then(|s| s.tree.get(path).cloned())
    }

    /// The names of `path`'s children in the mirror, sorted.
    pub fn children(&self, path: &str) -> Vec<String> {
        let Ok(shared) = self.shared.lock() else {
            return Vec::new();
        };
        children_in(&shared.tree, path)
            .into_iter()
            .filter_map(|p| p.rsplit('/').next().map(str::to_string))
            .collect()
    }

    /// The mirror now and every event after it, taken together: replaying the
    /// events over the snapshot gives the mirror at each point.
    pub fn subscribe(&self) -> (Tree, BoxStream<'static, TreeEvent>) {
        let (tree, _, events) = self.subscribe_from_start();
        (tree, events)
    }

    /// [`TreeCache::subscribe`], also telling whether the snapshot is the whole
    /// initial load (`Initialized` was published before it, so it will not be seen
    /// in the events).
    pub(crate) fn subscribe_from_start(&self) -> (Tree, bool, BoxStream<'static, TreeEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (tree, initialized) = match self.shared.lock() {
            Ok(mut shared) => {
                shared.subscribers.push(tx);
                (shared.tree.clone(), shared.initialized)
            }
            Err(_) => (Tree::new(), false),
        };
        let events =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
        (tree, initialized, events.boxed())
    }

    /// Every event from now on.
    pub fn events(&self) -> BoxStream<'static, TreeEvent> {
        self.subscribe().1
    }

    /// Starts mirroring in the background (again: nothing).
    pub fn start(&self) {
        self.task.start();
    }

    /// Stops the cache and waits until its task has ended (its watches are dropped).
    /// Dropping a cache stops it too, without waiting.
    pub async fn close(self) {
        self.task.close().await
    }
}

/// A view kept from a cache's mirror, the part the group view, the service cache and
/// the config cache share: `on_change` sees the mirror once it is loaded and after
/// every change, in a background task started with the returned [`Background`]
/// (subscribed now, so nothing is missed before it starts). It ends, dropping
/// `on_change` (and whatever it publishes to), when stopped or when the cache's client
/// can never connect again.
pub(crate) fn follow<F>(cache: &TreeCache, mut on_change: F) -> Background
where
    F: FnMut(&Tree) + Send + 'static,
{
    let (snapshot, loaded, mut events) = cache.subscribe_from_start();
    Background::new(move |mut stopped| async move {
        let mut tree = snapshot;
        let mut ready = loaded;
        if ready {
            on_change(&tree);
        }
        loop {
            let event = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                event = events.next() => match event {
                    Some(event) => event,
                    None => break,
                },
            };
            apply_event(&mut tree, &event);
            match event {
                TreeEvent::Initialized => ready = true,
                TreeEvent::Lost => break,
                _ => {}
            }
            if ready {
                on_change(&tree);
            }
        }
    })
}

/// Applies `event` to `tree` (what a subscriber does to replay the stream).
pub fn apply_event(tree: &mut Tree, event: &TreeEvent) {
    match event {
        TreeEvent::Added(node) | TreeEvent::Updated { new: node, .. } => {
            tree.insert(node.path.clone(), node.clone());
        }
        TreeEvent::Removed(node) => {
            tree.remove(&node.path);
        }
        _ => {}
    }
}

/// The paths of `path`'s direct children in `tree`.
fn children_in(tree: &Tree, path: &str) -> Vec<String> {
    children(tree, path)
        .map(|(_, node)| node.path.clone())
        .collect()
}

/// The direct children of `path` in `tree`: their names and nodes, in name order.
pub(crate) fn children<'t>(
    tree: &'t Tree,
    path: &str,
) -> impl Iterator<Item = (&'t str, &'t ChildData)> {
    let prefix = child_prefix(path);
    let skip = prefix.len();
    tree.range(prefix.clone()..)
        .take_while(move |(p, _)| p.starts_with(&prefix))
        .filter_map(move |(p, node)| {
            let name = &p[skip..];
            (!name.is_empty() && !name.contains('/')).then_some((name, node))
        })
}

fn child_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    }
}

fn child_path(parent: &str, name: &str) -> String {
    format!("{}{name}", child_prefix(parent))
}

/// How much of a node to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Its data.
    Data,
    /// Its data and children; children new to the mirror are read whole.
    Children,
    /// Its data, children, and every child whole (a full re-sync).
    Everything,
}

/// A one-shot watch the cache holds: the node and which kind.
type Outstanding = (String, bool);

struct Mirror {
    client: Client,
    root: String,
    max_depth: usize,
    strategy: WatchStrategy,
    shared: Arc<Mutex<Shared>>,
    oneshots: FuturesUnordered<BoxFuture<'static, (Outstanding, zk_client::Result<WatchedEvent>)>>,
    outstanding: HashSet<Outstanding>,
    /// No persistent watch covers the tree this round: read with one-shot watches.
    use_oneshots: bool,
}

/// Why a watching round ended.
enum Ended {
    Stopped,
    /// The connection changed or a read failed: wait for it, then re-read all.
    Reconnect,
}

impl Mirror {
    async fn run(mut self, initialized: watch::Sender<bool>, mut stopped: watch::Receiver<bool>) {
        let mut states = self.client.state_changes();
        let mut session: Option<i64> = None;
        let mut persistent_unavailable = self.strategy == WatchStrategy::OneShot;
        let mut suspended = false;
        loop {
            let connected = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                s = states.wait_for(|s| s == SessionState::Connected || client_is_over(&self.client, s)) => s,
            };
            if !matches!(connected, Some(SessionState::Connected)) {
                self.publish(TreeEvent::Lost);
                return;
            }
            // Fresh watches for this round (old one-shots are let go).
            self.oneshots = FuturesUnordered::new();
            self.outstanding.clear();
            let mut persistent = None;
            if !persistent_unavailable {
                let mode = match self.max_depth {
                    0 => AddWatchMode::Persistent,
                    _ => AddWatchMode::PersistentRecursive,
                };
                match self.client.add_watch(&self.root, mode).await {
                    Ok(w) => persistent = Some(w),
                    Err(e) if e.code() == Some(ErrorCode::Unimplemented) => {
                        tracing::info!(root = %self.root, "no persistent watches on this server: one-shot watches");
                        persistent_unavailable = true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, root = %self.root, "cache: cannot watch yet");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            self.use_oneshots = persistent.is_none();
            if let Err(e) = self.refresh(self.root.clone(), Read::Everything).await {
                tracing::debug!(error = %e, root = %self.root, "cache: re-read failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let now = self.client.session_id();
            match session {
                None => {
                    self.publish(TreeEvent::Initialized);
                    initialized.send_replace(true);
                }
                Some(before) if before != now => self.publish(TreeEvent::Resynced),
                Some(_) if suspended => self.publish(TreeEvent::Reconnected),
                Some(_) => {}
            }
            session = Some(now);
            suspended = false;
            match self.watch(persistent, &mut states, &mut stopped).await {
                Ended::Stopped => return,
                Ended::Reconnect => {
                    if !self.client.state().is_connected() || self.client.session_id() != now {
                        suspended = true;
                        self.publish(TreeEvent::Suspended);
                    }
                }
            }
        }
    }

    /// Follows the watches until the connection changes or the cache is closed.
    async fn watch(
        &mut self,
        mut persistent: Option<zk_client::PersistentWatcher>,
        states: &mut StateChanges,
        stopped: &mut watch::Receiver<bool>,
    ) -> Ended {
        let session = self.client.session_id();
        loop {
            let event = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return Ended::Stopped,
                event = async { persistent.as_mut().expect("guarded").next().await }, if persistent.is_some() => match event {
                    Some(e) if e.event_type != EventType::None => e,
                    // The session's end ends the watch.
                    _ => return Ended::Reconnect,
                },
                fired = self.oneshots.next(), if !self.oneshots.is_empty() => match fired {
                    Some((which, Ok(e))) => {
                        self.outstanding.remove(&which);
                        e
                    }
                    _ => return Ended::Reconnect,
                },
                changed = states.next() => {
                    if changed.is_none() {
                        return Ended::Reconnect;
                    }
                    if states.current() != SessionState::Connected || self.client.session_id() != session {
                        return Ended::Reconnect;
                    }
                    continue;
                }
            };
            let read = match event.event_type {
                EventType::NodeDataChanged => Read::Data,
                EventType::NodeCreated
                | EventType::NodeDeleted
                | EventType::NodeChildrenChanged => Read::Children,
                _ => continue,
            };
            if self.depth(&event.path).is_none_or(|d| d > self.max_depth) {
                continue;
            }
            if let Err(e) = self.refresh(event.path, read).await {
                tracing::debug!(error = %e, "cache: read failed");
                return Ended::Reconnect;
            }
        }
    }

    /// Levels below the root (`None`: not under it).
    fn depth(&self, path: &str) -> Option<usize> {
        if path == self.root {
            return Some(0);
        }
        let rest = path.strip_prefix(&child_prefix(&self.root))?;
        Some(rest.split('/').count())
    }

    fn publish(&self, event: TreeEvent) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.publish(event);
        }
    }

    /// Re-reads `path` (and below, as `read` says) and publishes the differences.
    async fn refresh(&mut self, path: String, read: Read) -> zk_client::Result<()> {
        let mut work = VecDeque::from([(path, read)]);
        while let Some((path, read)) = work.pop_front() {
            let Some((data, stat)) = self.read_data(&path).await? else {
                self.remove_subtree(&path);
                continue;
            };
            self.upsert(ChildData {
                path: path.clone(),
                data,
                stat,
            });
            if read == Read::Data || self.depth(&path).is_none_or(|d| d >= self.max_depth) {
                continue;
            }
            let Some(names) = self.read_children(&path).await? else {
                self.remove_subtree(&path);
                continue;
            };
            let listed: HashSet<String> = names.iter().map(|n| child_path(&path, n)).collect();
            let known = match self.shared.lock() {
                Ok(shared) => children_in(&shared.tree, &path),
                Err(_) => Vec::new(),
            };
            for gone in known.iter().filter(|k| !listed.contains(*k)) {
                self.remove_subtree(gone);
            }
            let known: HashSet<String> = known.into_iter().collect();
            let mut names = names;
            names.sort();
            for name in names {
                let child = child_path(&path, &name);
                if read == Read::Everything || !known.contains(&child) {
                    work.push_back((child, Read::Everything));
                }
            }
        }
        Ok(())
    }

    async fn read_data(&mut self, path: &str) -> zk_client::Result<Option<(Vec<u8>, Stat)>> {
        let key = (path.to_string(), false);
        let result = if self.use_oneshots && !self.outstanding.contains(&key) {
            let (read, watcher) = self.client.get_data_and_watch(path);
            let result = read.await;
            match &result {
                Ok(_) => self.hold(key, watcher),
                Err(e) if e.code() == Some(ErrorCode::NoNode) && path == self.root => {
                    // Watch for the root's creation.
                    let (exists, watcher) = self.client.exists_and_watch(path);
                    if exists.await?.is_none() {
                        self.hold(key, watcher);
                    }
                }
                Err(_) => {}
            }
            result
        } else {
            self.client.get_data(path).await
        };
        match result {
            Ok(read) => Ok(Some(read)),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_children(&mut self, path: &str) -> zk_client::Result<Option<Vec<String>>> {
        let key = (path.to_string(), true);
        let result = if self.use_oneshots && !self.outstanding.contains(&key) {
            let (read, watcher) = self.client.get_children_and_watch(path);
            let result = read.await;
            if result.is_ok() {
                self.hold(key, watcher);
            }
            result
        } else {
            self.client.get_children(path).await
        };
        match result {
            Ok(names) => Ok(Some(names)),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn hold(&mut self, key: Outstanding, watcher: zk_client::OneshotWatcher) {
        self.outstanding.insert(key.clone());
        self.oneshots
            .push(Box::pin(async move { (key, watcher.await) }));
    }

    fn upsert(&self, node: ChildData) {
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        match shared.tree.get(&node.path).cloned() {
            None => {
                shared.tree.insert(node.path.clone(), node.clone());
                shared.publish(TreeEvent::Added(node));
            }
            Some(old) if old.stat.czxid != node.stat.czxid => {
                // Deleted and made again meanwhile: the old one (and what was below
                // it) went first.
                drop(shared);
                self.remove_subtree(&node.path);
                self.upsert(node);
            }
            Some(old) if old.stat.mzxid != node.stat.mzxid => {
                shared.tree.insert(node.path.clone(), node.clone());
                shared.publish(TreeEvent::Updated { old, new: node });
            }
            Some(_) => {
                // Same data; keep the newer Stat (children counts) quietly.
                shared.tree.insert(node.path.clone(), node);
            }
        }
    }

    /// Removes `path` and everything below it, deepest first.
    fn remove_subtree(&self, path: &str) {
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        let prefix = child_prefix(path);
        let mut doomed: Vec<String> = shared
            .tree
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        if !doomed.iter().any(|p| p == path) && shared.tree.contains_key(path) {
            doomed.push(path.to_string());
        }
        // Deepest first.
        let depth = |p: &str| if p == "/" { 0 } else { p.matches('/').count() };
        doomed.sort_by_key(|p| std::cmp::Reverse(depth(p)));
        for p in doomed {
            if let Some(node) = shared.tree.remove(&p) {
                shared.publish(TreeEvent::Removed(node));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> Tree {
        paths
            .iter()
            .map(|p| {
                let node = ChildData {
                    path: p.to_string(),
                    data: p.as_bytes().to_vec(),
                    stat: Stat::default(),
                };
                (p.to_string(), node)
            })
            .collect()
    }

    #[test]
    fn only_direct_children_are_children() {
        let t = tree(&[
            "/s",
            "/s/api",
            "/s/api/i1",
            "/s/api/i1/deeper",
            "/s/api/i2",
            "/s/apix/i3",
        ]);
        let names: Vec<&str> = children(&t, "/s/api").map(|(name, _)| name).collect();
        assert_eq!(names, ["i1", "i2"]);
        let top: Vec<&str> = children(&t, "/").map(|(name, _)| name).collect();
        assert_eq!(top, ["s"]);
        assert_eq!(children(&t, "/s/api/i2").count(), 0);
    }
}
