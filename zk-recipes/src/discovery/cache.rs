//! [`ServiceCache`]: the instances of one service mirrored in memory (Curator's
//! `ServiceCache`). One persistent recursive watch on `<basePath>/<name>`; the
//! instances are read once in full, then each change the watch reports is read again
//! (the node's data, one round trip, several changes read together), so a new
//! instance shows up one watch round trip after its node is made. After a
//! reconnection (changes made meanwhile sent no event) and after a session expiry on a
//! client that renews sessions (the watch went with the session) everything is read
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{AddWatchMode, Client, SessionState, StateChanges};
use zk_proto::{ErrorCode, EventType};

use super::instance::{JsonInstanceSerializer, Payload, ServiceInstance};
use crate::error::Result;
use crate::lease::client_is_over;

/// A change of a [`ServiceCache`].
#[derive(Debug, Clone, PartialEq)]
pub enum CacheEvent<T = Value> {
    /// A new instance.
    Added(ServiceInstance<T>),
    /// An instance's data changed (or its node was made again): the new one.
    Updated(ServiceInstance<T>),
    /// An instance went (unregistered, or its session ended): the last one seen.
    Removed(ServiceInstance<T>),
}

impl<T> CacheEvent<T> {
    /// The instance it is about.
    pub fn instance(&self) -> &ServiceInstance<T> {
        match self {
            CacheEvent::Added(i) | CacheEvent::Updated(i) | CacheEvent::Removed(i) => i,
        }
    }
}

/// One instance as read, with the data it was read from.
#[derive(Debug, Clone)]
pub(crate) struct Cached<T> {
    pub(crate) instance: ServiceInstance<T>,
    data: Arc<[u8]>,
}

impl<T> Cached<T> {
    /// Whether both hold the same instance. (The same data written again, as a
    /// keeper of a registration may do, is no change.)
    fn same(&self, other: &Cached<T>) -> bool {
        self.data == other.data
    }
}

/// The cache's view: instances by node name.
#[derive(Debug)]
pub(crate) struct Snapshot<T> {
    /// Whether the service has been read once.
    pub(crate) loaded: bool,
    pub(crate) instances: BTreeMap<String, Cached<T>>,
}

type Instances<T> = BTreeMap<String, Cached<T>>;

/// The instances of one service, kept current by a watch, until closed.
///
/// If its client ends for good (closed, or expired without renewal), the cache keeps
/// what it saw last and its change stream ends.
#[derive(Debug)]
pub struct ServiceCache<T = Value> {
    name: String,
    view: watch::Receiver<Arc<Snapshot<T>>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl<T: Payload> ServiceCache<T> {
    /// Starts mirroring the instances of service `name` under `base_path`.
    pub fn start(client: &Client, base_path: &str, name: &str) -> ServiceCache<T> {
        let dir = format!("{}/{name}", base_path.trim_end_matches('/'));
        let (view_tx, view) = watch::channel(Arc::new(Snapshot {
            loaded: false,
            instances: BTreeMap::new(),
        }));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep(client.clone(), dir, view_tx, stopped));
        ServiceCache {
            name: name.to_string(),
            view,
            stop,
            task: Some(task),
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the service has been read once.
    pub fn is_ready(&self) -> bool {
        self.view.borrow().loaded
    }

    /// Waits until the service has been read once; its instances then.
    pub async fn ready(&self) -> Vec<ServiceInstance<T>> {
        let mut view = self.view.clone();
        let _ = view.wait_for(|s| s.loaded).await;
        self.instances()
    }

    /// The instances as last seen, by id.
    pub fn instances(&self) -> Vec<ServiceInstance<T>> {
        self.snapshot()
            .instances
            .values()
            .map(|c| c.instance.clone())
            .collect()
    }

    /// The instance `id`, if last seen.
    pub fn instance(&self, id: &str) -> Option<ServiceInstance<T>> {
        self.snapshot()
            .instances
            .values()
            .find(|c| c.instance.id == id)
            .map(|c| c.instance.clone())
    }

    /// The changes from now on (between two looks, the net change); the first look,
    /// if not made yet, comes as additions. Ends if the client ends for good.
    pub fn changes(&self) -> BoxStream<'static, CacheEvent<T>> {
        let mut view = self.view.clone();
        let start = view.borrow_and_update().clone();
        futures::stream::unfold((view, start), |(mut view, before)| async move {
            view.changed().await.ok()?;
            let now = view.borrow_and_update().clone();
            let events = diff(&before.instances, &now.instances);
            Some((futures::stream::iter(events), (view, now)))
        })
        .flatten()
        .boxed()
    }

    /// Stops watching.
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot<T>> {
        self.view.borrow().clone()
    }
}

impl<T> Drop for ServiceCache<T> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The events that take `before` to `now`.
fn diff<T: Clone>(before: &Instances<T>, now: &Instances<T>) -> Vec<CacheEvent<T>> {
    let mut events = Vec::new();
    for (name, cached) in now {
        match before.get(name) {
            None => events.push(CacheEvent::Added(cached.instance.clone())),
            Some(old) if !old.same(cached) => {
                events.push(CacheEvent::Updated(cached.instance.clone()))
            }
            Some(_) => {}
        }
    }
    for (name, cached) in before {
        if !now.contains_key(name) {
            events.push(CacheEvent::Removed(cached.instance.clone()));
        }
    }
    events
}

/// How waiting for the connection ended.
enum Wait {
    Connected,
    Over,
}

/// Waits until the client is connected, it can never be again, or the cache stops.
async fn connected(
    client: &Client,
    states: &mut StateChanges,
    stopped: &mut watch::Receiver<bool>,
) -> Wait {
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => Wait::Over,
        s = states.wait_for(|s| s == SessionState::Connected || client_is_over(client, s)) => {
            match s {
                Some(SessionState::Connected) => Wait::Connected,
                _ => Wait::Over,
            }
        }
    }
}

/// Waits until the cache is told to stop.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Sleeps `pause` unless stopped first: whether stopped.
async fn pause(stopped: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(pause) => false,
    }
}

/// Keeps the view current until stopped (or the client ends).
async fn keep<T: Payload>(
    client: Client,
    dir: String,
    view: watch::Sender<Arc<Snapshot<T>>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut states = client.state_changes();
    'session: loop {
        if let Wait::Over = connected(&client, &mut states, &mut stopped).await {
            break 'session;
        }
        let session = client.session_id();
        let mut events = match client
            .add_watch(&dir, AddWatchMode::PersistentRecursive)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, %dir, "service cache: cannot watch yet");
                if pause(&mut stopped, Duration::from_millis(100)).await {
                    break 'session;
                }
                continue 'session;
            }
        };
        'look: loop {
            let mut current = match read_all(&client, &dir).await {
                Ok(all) => {
                    publish(&view, &all);
                    all
                }
                Err(e) => {
                    tracing::debug!(error = %e, %dir, "service cache: read failed");
                    if pause(&mut stopped, Duration::from_millis(50)).await {
                        break 'session;
                    }
                    if let Wait::Over = connected(&client, &mut states, &mut stopped).await {
                        break 'session;
                    }
                    if client.session_id() != session {
                        continue 'session;
                    }
                    continue 'look;
                }
            };
            loop {
                tokio::select! {
                    _ = stop_requested(&mut stopped) => break 'session,
                    event = events.next() => {
                        // The changed instances, with every event already there.
                        let mut touched = BTreeSet::new();
                        let mut next = Some(event);
                        while let Some(event) = next {
                            match event {
                                Some(e) if e.event_type != EventType::None => {
                                    if let Some(name) = child_of(&dir, &e.path) {
                                        touched.insert(name.to_string());
                                    }
                                }
                                // The watch ended with the session.
                                _ => continue 'session,
                            }
                            next = events.next().now_or_never();
                        }
                        if touched.is_empty() {
                            continue;
                        }
                        match refresh(&client, &dir, touched, &mut current).await {
                            Ok(()) => publish(&view, &current),
                            Err(e) => {
                                tracing::debug!(error = %e, %dir, "service cache: read failed");
                                continue 'look;
                            }
                        }
                    }
                    changed = states.next() => {
                        if changed.is_none() {
                            break 'session;
                        }
                        // Whatever happened, once connected again: the same session
                        // kept its watch but got no event for what changed meanwhile
                        // (look again); a new one needs a new watch.
                        if let Wait::Over = connected(&client, &mut states, &mut stopped).await {
                            break 'session;
                        }
                        if client.session_id() != session {
                            continue 'session;
                        }
                        continue 'look;
                    }
                }
            }
        }
    }
}

/// The name of `path` if it is a direct child of `dir`.
fn child_of<'a>(dir: &str, path: &'a str) -> Option<&'a str> {
    let name = path.strip_prefix(dir)?.strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Publishes `current` if it differs from what readers have.
fn publish<T: Payload>(view: &watch::Sender<Arc<Snapshot<T>>>, current: &Instances<T>) {
    view.send_if_modified(|snapshot| {
        let same = snapshot.loaded
            && snapshot.instances.len() == current.len()
            && snapshot
                .instances
                .iter()
                .zip(current)
                .all(|((a, x), (b, y))| a == b && x.same(y));
        if !same {
            *snapshot = Arc::new(Snapshot {
                loaded: true,
                instances: current.clone(),
            });
        }
        !same
    });
}

/// An instance's node read, if it holds an instance.
fn parse<T: Payload>(path: &str, data: Vec<u8>) -> Option<Cached<T>> {
    match JsonInstanceSerializer::new().deserialize(&data) {
        Ok(instance) => Some(Cached {
            instance,
            data: data.into(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, %path, "service cache: skipping an unreadable instance");
            None
        }
    }
}

/// Every instance under `dir` (none if it does not exist).
async fn read_all<T: Payload>(client: &Client, dir: &str) -> Result<Instances<T>> {
    let names = match client.get_children(dir).await {
        Ok(c) => c,
        Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    let mut all = BTreeMap::new();
    refresh(client, dir, names.into_iter().collect(), &mut all).await?;
    Ok(all)
}

/// Reads the instances `names` again (all at once) into `current`.
async fn refresh<T: Payload>(
    client: &Client,
    dir: &str,
    names: BTreeSet<String>,
    current: &mut Instances<T>,
) -> Result<()> {
    let reads: Vec<_> = names
        .iter()
        .map(|name| client.get_data(&format!("{dir}/{name}")))
        .collect();
    let results = futures::future::join_all(reads).await;
    for (name, result) in names.into_iter().zip(results) {
        match result {
            Ok((data, _)) => match parse(&format!("{dir}/{name}"), data) {
                Some(cached) => {
                    current.insert(name, cached);
                }
                None => {
                    current.remove(&name);
                }
            },
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                current.remove(&name);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(id: &str, version: i32) -> Cached<Value> {
        Cached {
            instance: ServiceInstance::new("svc", id),
            data: format!("{id}{version}").into_bytes().into(),
        }
    }

    #[test]
    fn the_diff_names_additions_updates_and_removals() {
        let before: Instances<Value> =
            [("a".into(), cached("a", 0)), ("b".into(), cached("b", 0))].into();
        let now: Instances<Value> =
            [("b".into(), cached("b", 1)), ("c".into(), cached("c", 0))].into();
        let events: Vec<(&str, String)> = diff(&before, &now)
            .iter()
            .map(|e| match e {
                CacheEvent::Added(i) => ("added", i.id.clone()),
                CacheEvent::Updated(i) => ("updated", i.id.clone()),
                CacheEvent::Removed(i) => ("removed", i.id.clone()),
            })
            .collect();
        assert_eq!(
            events,
            [
                ("updated", "b".to_string()),
                ("added", "c".to_string()),
                ("removed", "a".to_string())
            ]
        );
    }

    #[test]
    fn only_direct_children_are_instances() {
        assert_eq!(child_of("/s/api", "/s/api/i1"), Some("i1"));
        assert_eq!(child_of("/s/api", "/s/api"), None);
        assert_eq!(child_of("/s/api", "/s/api/i1/deeper"), None);
        assert_eq!(child_of("/s/api", "/s/apix/i1"), None);
    }
}
