//! Watches on the client side: typed events, one-shot watches as futures, persistent
//! watches as streams, and the registry that dispatches server notifications and
//! re-registers everything (setWatches2) after a reconnect.
//!
//! Dispatch follows ZooKeeper's client (`ZKWatchManager.materialize`):
//! NodeCreated/NodeDataChanged fire data and exist watches; NodeDeleted fires data,
//! exist and child watches; NodeChildrenChanged fires child watches; persistent watches
//! fire for their own path, recursive ones for the path and everything below it
//! (never for NodeChildrenChanged).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use zk_proto::{AddWatchMode, EventType, KeeperState, SetWatches2};

use crate::error::{Error, Result};

/// ZooKeeper's `ClientCnxn.SET_WATCHES_MAX_LENGTH`: the paths of one setWatches
/// message add up to about this many characters (128 K) at most, one path over.
pub(crate) const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;

/// A change a watch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The session's state when it happened.
    pub state: KeeperState,
    /// The znode (relative to the client's chroot); empty for state events.
    pub path: String,
}

/// A one-shot watch: resolves with the first change, or with the reason there will be
/// none:
///
/// - [`Error::WatchNotRegistered`]: the read that was to leave the watch failed (its own
///   result says why: no node, connection loss...), so no watch was ever set;
/// - [`Error::WatchRemoved`]: [`crate::Client::remove_watches`] removed it;
/// - [`Error::SessionExpired`], [`Error::AuthFailed`], [`Error::Closed`]: the session
///   ended first (expired, authentication failed, the client was closed).
///
/// A watch survives disconnections: the client sets it again on the next server, and
/// a change made meanwhile fires it once reconnected.
#[derive(Debug)]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<Result<WatchedEvent>>,
}

impl Future for OneshotWatcher {
    type Output = Result<WatchedEvent>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every path of the session task answers explicitly; a sender gone without a
        // word means the session task itself is gone.
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

/// The session's side of a one-shot watch. Dropped without firing (the request that
/// was to register it failed, or never went out), it tells the watcher so.
#[derive(Debug)]
pub(crate) struct WatchSender(Option<oneshot::Sender<Result<WatchedEvent>>>);

impl WatchSender {
    fn fire(mut self, outcome: Result<WatchedEvent>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(outcome);
        }
    }

    fn is_closed(&self) -> bool {
        self.0.as_ref().is_none_or(|tx| tx.is_closed())
    }
}

impl Drop for WatchSender {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(Err(Error::WatchNotRegistered));
        }
    }
}

/// A persistent watch (addWatch): every change until dropped; ends when the session does
/// (after a last event of type `None` with the session's final state). It is set again
/// after every reconnection; as in ZooKeeper, changes made while disconnected are not
/// replayed to it (only one-shot watches catch up).
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = zk_server::testing::TestingServer::start().await?;
/// # let zk = zk_client::Client::connect(&server.connect_string()).await?;
/// use futures::StreamExt;
/// use zk_client::{AddWatchMode, EventType};
/// let mut changes = zk.add_watch("/services", AddWatchMode::PersistentRecursive).await?;
/// # zk.create("/services/api").parents(true).await?;
/// while let Some(event) = changes.next().await {
///     match event.event_type {
///         EventType::NodeCreated => println!("registered: {}", event.path),
///         EventType::NodeDeleted => println!("gone: {}", event.path),
///         EventType::None => break, // the session ended
///         _ => {}
///     }
/// #   if event.path == "/services/api" { break; }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PersistentWatcher {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl Stream for PersistentWatcher {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Every watch notification a client receives, in the order the server sent them,
/// each once however many of the client's watches it fires: what the Java client's
/// default watcher sees. From [`crate::Client::notifications`]; it ends when the
/// client and its session are gone. Events queue until read: read it, or drop it.
#[derive(Debug)]
pub struct Notifications {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl Stream for Notifications {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// The senders of every [`Notifications`] stream of one client, shared by the client
/// (which adds) and its session task (which sends, and forgets dropped streams).
#[derive(Debug, Clone, Default)]
pub(crate) struct NotificationTaps {
    taps: std::sync::Arc<std::sync::Mutex<Vec<mpsc::UnboundedSender<WatchedEvent>>>>,
}

impl NotificationTaps {
    /// A new stream of the notifications from now on.
    pub(crate) fn subscribe(&self) -> Notifications {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut taps) = self.taps.lock() {
            taps.push(tx);
        }
        Notifications { rx }
    }

    /// Sends `event` to every stream still read.
    pub(crate) fn send(&self, event: &WatchedEvent) {
        if let Ok(mut taps) = self.taps.lock() {
            taps.retain(|tx| tx.send(event.clone()).is_ok());
        }
    }
}

/// What a request asks to be watched, registered when its answer allows it.
#[derive(Debug)]
pub(crate) enum Registration {
    /// getData: a data watch if the node exists.
    Data(String, WatchSender),
    /// exists: a data watch if it exists, an exist watch if not.
    Exists(String, WatchSender),
    /// getChildren: a child watch if the node exists.
    Child(String, WatchSender),
    /// addWatch.
    Persistent(String, AddWatchMode, mpsc::UnboundedSender<WatchedEvent>),
}

/// Creates the pair for a one-shot watch.
pub(crate) fn oneshot_pair() -> (WatchSender, OneshotWatcher) {
    let (tx, rx) = oneshot::channel();
    (WatchSender(Some(tx)), OneshotWatcher { rx })
}

/// Creates the pair for a persistent watch.
pub(crate) fn persistent_pair() -> (mpsc::UnboundedSender<WatchedEvent>, PersistentWatcher) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, PersistentWatcher { rx })
}

type Oneshots = HashMap<String, Vec<WatchSender>>;
type Streams = HashMap<String, Vec<mpsc::UnboundedSender<WatchedEvent>>>;

/// Every watch this client holds, by server path.
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    data: Oneshots,
    exist: Oneshots,
    child: Oneshots,
    persistent: Streams,
    recursive: Streams,
}

impl WatchRegistry {
    /// Registers what a successful (or, for exists, NoNode) answer allows.
    pub(crate) fn register(&mut self, registration: Registration, node_exists: bool) {
        match registration {
            Registration::Data(p, tx) if node_exists => self.data.entry(p).or_default().push(tx),
            Registration::Exists(p, tx) if node_exists => self.data.entry(p).or_default().push(tx),
            Registration::Exists(p, tx) => self.exist.entry(p).or_default().push(tx),
            Registration::Child(p, tx) if node_exists => self.child.entry(p).or_default().push(tx),
            Registration::Persistent(p, AddWatchMode::Persistent, tx) => {
                self.persistent.entry(p).or_default().push(tx)
            }
            Registration::Persistent(p, AddWatchMode::PersistentRecursive, tx) => {
                self.recursive.entry(p).or_default().push(tx)
            }
            _ => {}
        }
    }

    /// Delivers a server notification; `path` is the client-visible path.
    pub(crate) fn dispatch(&mut self, server_path: &str, event: WatchedEvent) {
        let fire_oneshots = |map: &mut Oneshots| {
            for tx in map.remove(server_path).unwrap_or_default() {
                tx.fire(Ok(event.clone()));
            }
        };
        match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                fire_oneshots(&mut self.data);
                fire_oneshots(&mut self.exist);
            }
            EventType::NodeDeleted => {
                fire_oneshots(&mut self.data);
                fire_oneshots(&mut self.exist);
                fire_oneshots(&mut self.child);
            }
            EventType::NodeChildrenChanged => fire_oneshots(&mut self.child),
            _ => {}
        }
        send_streams(&mut self.persistent, server_path, &event);
        if event.event_type != EventType::NodeChildrenChanged {
            let mut at = Some(server_path);
            while let Some(p) = at {
                send_streams(&mut self.recursive, p, &event);
                at = (p != "/").then(|| zk_proto::path::parent(p));
            }
        }
    }

    /// Removes the client side of removeWatches, as ZooKeeper's client does
    /// (`ZKWatchManager.removeWatcher`): `Children` takes child watches, `Data` data
    /// and exist watches, `Any` those and the persistent ones. (A persistent watch
    /// stays after a `Data` or `Children` removal: the server keeps its other half.)
    /// One-shot watches removed resolve with [`Error::WatchRemoved`].
    pub(crate) fn remove(&mut self, server_path: &str, kind: zk_proto::WatcherType) {
        use zk_proto::WatcherType;
        let removed = |map: &mut Oneshots| {
            for tx in map.remove(server_path).unwrap_or_default() {
                tx.fire(Err(Error::WatchRemoved));
            }
        };
        if matches!(kind, WatcherType::Data | WatcherType::Any) {
            removed(&mut self.data);
            removed(&mut self.exist);
        }
        if matches!(kind, WatcherType::Children | WatcherType::Any) {
            removed(&mut self.child);
        }
        if kind == WatcherType::Any {
            self.persistent.remove(server_path);
            self.recursive.remove(server_path);
        }
    }

    /// The re-registrations to send after reconnecting (none if there is nothing to
    /// send), in batches as ZooKeeper's client makes them (`primeConnection`): paths are
    /// taken data, exist, child, persistent, then persistent-recursive, and a batch is
    /// closed once its paths add up to [`SET_WATCHES_MAX_LENGTH`] characters, so no
    /// message comes near the server's `jute.maxbuffer`.
    pub(crate) fn set_watches(&mut self, relative_zxid: i64) -> Vec<SetWatches2> {
        self.prune();
        let keys = |m: &Oneshots| m.keys().cloned().collect::<Vec<_>>();
        let stream_keys = |m: &Streams| m.keys().cloned().collect::<Vec<_>>();
        let mut lists = [
            keys(&self.data).into_iter(),
            keys(&self.exist).into_iter(),
            keys(&self.child).into_iter(),
            stream_keys(&self.persistent).into_iter(),
            stream_keys(&self.recursive).into_iter(),
        ];
        let mut batches = Vec::new();
        loop {
            let mut batch = SetWatches2 {
                relative_zxid,
                data_watches: Vec::new(),
                exist_watches: Vec::new(),
                child_watches: Vec::new(),
                persistent_watches: Vec::new(),
                persistent_recursive_watches: Vec::new(),
            };
            let mut length = 0;
            let mut empty = true;
            while length < SET_WATCHES_MAX_LENGTH {
                let Some((kind, path)) = lists
                    .iter_mut()
                    .enumerate()
                    .find_map(|(kind, list)| list.next().map(|p| (kind, p)))
                else {
                    break;
                };
                // Java counts UTF-16 units; for the ASCII paths of practice, bytes.
                length += path.encode_utf16().count();
                empty = false;
                match kind {
                    0 => batch.data_watches.push(path),
                    1 => batch.exist_watches.push(path),
                    2 => batch.child_watches.push(path),
                    3 => batch.persistent_watches.push(path),
                    _ => batch.persistent_recursive_watches.push(path),
                }
            }
            if empty {
                return batches;
            }
            batches.push(batch);
        }
    }

    /// Forgets watches whose receivers were dropped.
    fn prune(&mut self) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            map.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
        }
        for map in [&mut self.persistent, &mut self.recursive] {
            map.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
        }
    }

    /// The session ended: one-shot watches resolve with `error`, persistent watchers
    /// get a last state event, every watch goes.
    pub(crate) fn end(&mut self, state: KeeperState, error: Error) {
        for map in [&mut self.data, &mut self.exist, &mut self.child] {
            for tx in map.drain().flat_map(|(_, txs)| txs) {
                tx.fire(Err(error.clone()));
            }
        }
        let event = WatchedEvent {
            event_type: EventType::None,
            state,
            path: String::new(),
        };
        for txs in self.persistent.values().chain(self.recursive.values()) {
            for tx in txs {
                let _ = tx.send(event.clone());
            }
        }
        *self = WatchRegistry::default();
    }
}

fn send_streams(map: &mut Streams, path: &str, event: &WatchedEvent) {
    if let Some(txs) = map.get_mut(path) {
        txs.retain(|tx| tx.send(event.clone()).is_ok());
        if txs.is_empty() {
            map.remove(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: EventType, path: &str) -> WatchedEvent {
        WatchedEvent {
            event_type: t,
            state: KeeperState::SyncConnected,
            path: path.into(),
        }
    }

    #[tokio::test]
    async fn dispatch_follows_zookeepers_client_rules() {
        let mut r = WatchRegistry::default();
        let (tx, data) = oneshot_pair();
        r.register(Registration::Data("/a".into(), tx), true);
        let (tx, exist) = oneshot_pair();
        r.register(Registration::Exists("/b".into(), tx), false);
        let (tx, child) = oneshot_pair();
        r.register(Registration::Child("/a".into(), tx), true);
        let (tx, mut rec) = persistent_pair();
        r.register(
            Registration::Persistent("/a".into(), AddWatchMode::PersistentRecursive, tx),
            true,
        );
        r.dispatch("/a", ev(EventType::NodeChildrenChanged, "/a"));
        assert_eq!(
            child.await.unwrap().event_type,
            EventType::NodeChildrenChanged
        );
        r.dispatch("/b", ev(EventType::NodeCreated, "/b"));
        assert_eq!(exist.await.unwrap().event_type, EventType::NodeCreated);
        r.dispatch("/a/x/y", ev(EventType::NodeDataChanged, "/a/x/y"));
        r.dispatch("/a", ev(EventType::NodeDataChanged, "/a"));
        assert_eq!(data.await.unwrap().path, "/a");
        use futures::StreamExt;
        assert_eq!(rec.next().await.unwrap().path, "/a/x/y");
        assert_eq!(rec.next().await.unwrap().path, "/a");
        let s = r.set_watches(7);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].persistent_recursive_watches, vec!["/a".to_string()]);
        assert!(s[0].data_watches.is_empty());
    }

    /// Many long paths go out in several setWatches2 messages of about 128 K of paths
    /// each (one path over at most), every watch in exactly one, as ZooKeeper's client
    /// batches them.
    #[test]
    fn set_watches_is_split_at_128k_of_paths() {
        let mut r = WatchRegistry::default();
        let mut keep = Vec::new();
        let long = "x".repeat(1000);
        for i in 0..300 {
            let (tx, w) = oneshot_pair();
            r.register(Registration::Data(format!("/{long}/d{i}"), tx), true);
            keep.push(w);
            let (tx, w) = oneshot_pair();
            r.register(Registration::Child(format!("/{long}/c{i}"), tx), true);
            keep.push(w);
        }
        let (tx, _stream) = persistent_pair();
        r.register(
            Registration::Persistent("/p".into(), AddWatchMode::Persistent, tx),
            true,
        );
        let batches = r.set_watches(9);
        assert!(batches.len() >= 4, "{} batches", batches.len());
        let mut all = Vec::new();
        for b in &batches {
            assert_eq!(b.relative_zxid, 9);
            let paths: Vec<&String> = b
                .data_watches
                .iter()
                .chain(&b.exist_watches)
                .chain(&b.child_watches)
                .chain(&b.persistent_watches)
                .chain(&b.persistent_recursive_watches)
                .collect();
            let length: usize = paths.iter().map(|p| p.len()).sum();
            let last = paths.last().map_or(0, |p| p.len());
            assert!(length - last < SET_WATCHES_MAX_LENGTH, "{length}");
            all.extend(paths.into_iter().cloned());
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 601, "every watch once");
        assert!(WatchRegistry::default().set_watches(1).is_empty());
    }
}
