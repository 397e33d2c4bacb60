//! [`ServiceCache`]: the instances of one service mirrored in memory (Curator's
//! `ServiceCache`): a [`TreeCache`] of `<basePath>/<name>` one level deep (one
//! persistent recursive watch where the server has them; everything read again after
//! a reconnection and after a session expiry on a renewing client), each instance
//! node's JSON parsed when its data changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use zk_client::Client;

use super::instance::{JsonInstanceSerializer, Payload, ServiceInstance};
use crate::task::Background;
use crate::tree_cache::{children, follow, Tree, TreeCache};

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

/// The instances of one service, kept current by a watch once started, until closed.
///
/// If its client ends for good (closed, or expired without renewal), the cache keeps
/// what it saw last and its change stream ends.
#[derive(Debug)]
pub struct ServiceCache<T = Value> {
    name: String,
    view: watch::Receiver<Arc<Snapshot<T>>>,
    /// The service's directory, mirrored one level deep.
    mirror: TreeCache,
    /// Turns the mirror's events into instances.
    task: Background,
}

impl<T: Payload> ServiceCache<T> {
    /// A cache of the instances of service `name` under `base_path`, mirroring once
    /// [`ServiceCache::start`]ed.
    pub fn new(client: &Client, base_path: &str, name: &str) -> ServiceCache<T> {
        let dir = format!("{}/{name}", base_path.trim_end_matches('/'));
        let (view_tx, view) = watch::channel(Arc::new(Snapshot {
            loaded: false,
            instances: BTreeMap::new(),
        }));
        let mirror = TreeCache::builder(client, &dir).max_depth(1).build();
        let mut current: Instances<T> = BTreeMap::new();
        // Ends (and the change streams with it) if the client can never connect
        // again: the last view stays.
        let task = follow(&mirror, move |tree| {
            current = instances_in(tree, &dir, std::mem::take(&mut current));
            publish(&view_tx, &current);
        });
        ServiceCache {
            name: name.to_string(),
            view,
            mirror,
            task,
        }
    }

    /// Starts mirroring in the background (again: nothing).
    pub fn start(&self) {
        self.task.start();
        self.mirror.start();
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

    /// Stops watching and waits until it has; dropping stops it without waiting.
    pub async fn close(self) {
        self.task.close().await;
        self.mirror.close().await;
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot<T>> {
        self.view.borrow().clone()
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

/// The instances under `dir` in `tree` (mirrored one level deep), by node name;
/// instances already parsed from the same data are taken from `before`.
fn instances_in<T: Payload>(tree: &Tree, dir: &str, mut before: Instances<T>) -> Instances<T> {
    let mut now = Instances::new();
    for (name, node) in children(tree, dir) {
        let cached = match before.remove(name) {
            Some(old) if *old.data == *node.data => Some(old),
            _ => parse(&node.path, node.data.clone()),
        };
        if let Some(cached) = cached {
            now.insert(name.to_string(), cached);
        }
    }
    now
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
}
