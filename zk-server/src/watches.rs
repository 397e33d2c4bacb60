//! Watches: per server, per connection, never replicated. Mirrors ZooKeeper's pair of
//! `WatchManager`s (data and child tables) and its trigger rules:
//!
//! - NodeCreated / NodeDataChanged fire the data table at the path (getData/exists
//!   watches, persistent watches) and recursive watches on the path or any ancestor;
//! - NodeDeleted fires the data table, then the child table (a connection is told once);
//! - NodeChildrenChanged fires the child table at the path only (never recursive
//!   watches);
//! - one-shot watches are removed when they fire; persistent ones stay until removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zk_proto::{AddWatchMode, EventType, KeeperState, WatcherEvent, WatcherType};

use crate::database::WatchEvent;
use crate::tree::DataTree;

/// Identifies a client connection on this server.
pub type ConnId = u64;

/// How a watch behaves when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Fires once, then is gone (getData, exists, getChildren).
    Standard,
    /// Fires for the path until removed (addWatch PERSISTENT).
    Persistent,
    /// Fires for the path and every descendant until removed (addWatch
    /// PERSISTENT_RECURSIVE); never for NodeChildrenChanged.
    PersistentRecursive,
}

impl From<AddWatchMode> for WatchMode {
    fn from(mode: AddWatchMode) -> Self {
        match mode {
            AddWatchMode::Persistent => WatchMode::Persistent,
            AddWatchMode::PersistentRecursive => WatchMode::PersistentRecursive,
        }
    }
}

/// The kinds of watch one connection holds on one path of one table. They coexist: a
/// getData watch on a path with a persistent watch fires once and leaves the persistent
/// one in place (ZooKeeper 3.8 would downgrade the persistent watch, ZOOKEEPER-4466;
/// 3.9 keeps both, as here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Modes {
    standard: bool,
    persistent: bool,
    recursive: bool,
}

impl Modes {
    fn set(&mut self, mode: WatchMode) {
        match mode {
            WatchMode::Standard => self.standard = true,
            WatchMode::Persistent => self.persistent = true,
            WatchMode::PersistentRecursive => self.recursive = true,
        }
    }

    fn is_empty(&self) -> bool {
        !(self.standard || self.persistent || self.recursive)
    }
}

/// One table: path → connection → modes.
#[derive(Debug, Default)]
struct Table {
    by_path: HashMap<String, HashMap<ConnId, Modes>>,
    /// (path, connection) pairs holding a recursive watch; ancestors are walked only
    /// when there are any.
    recursive: usize,
}

impl Table {
    fn add(&mut self, path: &str, conn: ConnId, mode: WatchMode) {
        let modes = self
            .by_path
            .entry(path.to_string())
            .or_default()
            .entry(conn)
            .or_default();
        let had_recursive = modes.recursive;
        modes.set(mode);
        if modes.recursive && !had_recursive {
            self.recursive += 1;
        }
    }

    fn remove(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(entry) = self.by_path.get_mut(path) else {
            return false;
        };
        let removed = entry.remove(&conn);
        if removed.is_some_and(|m| m.recursive) {
            self.recursive -= 1;
        }
        if entry.is_empty() {
            self.by_path.remove(path);
        }
        removed.is_some()
    }

    fn contains(&self, path: &str, conn: ConnId) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|e| e.contains_key(&conn))
    }

    fn remove_conn(&mut self, conn: ConnId) {
        let mut recursive_removed = 0;
        self.by_path.retain(|_, e| {
            if e.remove(&conn).is_some_and(|m| m.recursive) {
                recursive_removed += 1;
            }
            !e.is_empty()
        });
        self.recursive -= recursive_removed;
    }

    /// `WatchManager.triggerWatch`: the connections to notify, minus `suppress`.
    fn trigger(
        &mut self,
        path: &str,
        event: EventType,
        suppress: &BTreeSet<ConnId>,
    ) -> BTreeSet<ConnId> {
        let mut fired = BTreeSet::new();
        let mut at = Some(path);
        let mut exact = true;
        while let Some(p) = at {
            if let Some(entry) = self.by_path.get_mut(p) {
                entry.retain(|conn, modes| {
                    if modes.recursive && event != EventType::NodeChildrenChanged {
                        fired.insert(*conn);
                    }
                    if exact && modes.persistent {
                        fired.insert(*conn);
                    }
                    if exact && modes.standard {
                        fired.insert(*conn);
                        modes.standard = false;
                    }
                    !modes.is_empty()
                });
                if entry.is_empty() {
                    self.by_path.remove(p);
                }
            }
            // Ancestors matter only to recursive watches.
            if self.recursive == 0 {
                break;
            }
            at = (p != "/").then(|| zk_proto::path::parent(p));
            exact = false;
        }
        fired.retain(|c| !suppress.contains(c));
        fired
    }

    fn count(&self) -> usize {
        self.by_path.values().map(HashMap::len).sum()
    }
}

/// Every watch held on this server.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
}

/// A notification to deliver on a connection.
pub type Notification = (ConnId, WatcherEvent);

fn notification(conn: ConnId, event: EventType, path: &str) -> Notification {
    (
        conn,
        WatcherEvent {
            event_type: event.code(),
            state: KeeperState::SyncConnected.code(),
            path: path.to_string(),
        },
    )
}

impl WatchManager {
    /// An empty manager.
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// A one-shot data watch (getData on an existing node, or exists on any path).
    pub fn add_data_watch(&mut self, path: &str, conn: ConnId) {
        self.data.add(path, conn, WatchMode::Standard);
    }

    /// A one-shot child watch (getChildren on an existing node).
    pub fn add_child_watch(&mut self, path: &str, conn: ConnId) {
        self.child.add(path, conn, WatchMode::Standard);
    }

    /// addWatch: a persistent watch is in both tables; a recursive one in the data
    /// table only.
    pub fn add_persistent_watch(&mut self, path: &str, conn: ConnId, mode: AddWatchMode) {
        let mode = WatchMode::from(mode);
        self.data.add(path, conn, mode);
        if mode == WatchMode::Persistent {
            self.child.add(path, conn, mode);
        }
    }

    /// removeWatches: whether anything was removed (else the caller answers NoWatcher).
    pub fn remove(&mut self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        match kind {
            WatcherType::Children => self.child.remove(path, conn),
            WatcherType::Data => self.data.remove(path, conn),
            WatcherType::Any => {
                let c = self.child.remove(path, conn);
                let d = self.data.remove(path, conn);
                c || d
            }
        }
    }

    /// checkWatches: whether the connection holds a watch of `kind` at `path`.
    pub fn contains(&self, path: &str, conn: ConnId, kind: WatcherType) -> bool {
        match kind {
            WatcherType::Children => self.child.contains(path, conn),
            WatcherType::Data => self.data.contains(path, conn),
            WatcherType::Any => self.child.contains(path, conn) || self.data.contains(path, conn),
        }
    }

    /// Drops every watch of a closed connection.
    pub fn remove_connection(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    /// The notifications one applied change produces, in order.
    pub fn trigger(&mut self, event: &WatchEvent) -> Vec<Notification> {
        let none = BTreeSet::new();
        let path = event.path.as_str();
        let conns: Vec<ConnId> = match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => self
                .data
                .trigger(path, event.event_type, &none)
                .into_iter()
                .collect(),
            EventType::NodeDeleted => {
                let data = self.data.trigger(path, EventType::NodeDeleted, &none);
                let child = self.child.trigger(path, EventType::NodeDeleted, &data);
                data.into_iter().chain(child).collect()
            }
            EventType::NodeChildrenChanged => self
                .child
                .trigger(path, EventType::NodeChildrenChanged, &none)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        conns
            .into_iter()
            .map(|c| notification(c, event.event_type, path))
            .collect()
    }

    /// setWatches / setWatches2 after a reconnect (`DataTree.setWatches`): a watch whose
    /// change the client missed (judged by `relative_zxid`) fires at once; the others
    /// are registered.
    #[allow(clippy::too_many_arguments)]
    pub fn set_watches(
        &mut self,
        tree: &DataTree,
        conn: ConnId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
    ) -> Vec<Notification> {
        let mut fired = Vec::new();
        for path in data {
            match tree.get(path) {
                None => fired.push(notification(conn, EventType::NodeDeleted, path)),
                Some(n) if n.stored_stat().mzxid > relative_zxid => {
                    fired.push(notification(conn, EventType::NodeDataChanged, path))
                }
                Some(_) => self.add_data_watch(path, conn),
            }
        }
        for path in exist {
            match tree.get(path) {
                Some(_) => fired.push(notification(conn, EventType::NodeCreated, path)),
                None => self.add_data_watch(path, conn),
            }
        }
        for path in child {
            match tree.get(path) {
                None => fired.push(notification(conn, EventType::NodeDeleted, path)),
                Some(n) if n.stored_stat().pzxid > relative_zxid => {
                    fired.push(notification(conn, EventType::NodeChildrenChanged, path))
                }
                Some(_) => self.add_child_watch(path, conn),
            }
        }
        for path in persistent {
            self.add_persistent_watch(path, conn, AddWatchMode::Persistent);
        }
        for path in recursive {
            self.add_persistent_watch(path, conn, AddWatchMode::PersistentRecursive);
        }
        fired
    }

    /// Number of watches (a persistent watch counts in each table it is in).
    pub fn watch_count(&self) -> usize {
        self.data.count() + self.child.count()
    }

    /// Paths with at least one watch.
    pub fn watched_path_count(&self) -> usize {
        let mut paths: BTreeSet<&str> = self.data.by_path.keys().map(String::as_str).collect();
        paths.extend(self.child.by_path.keys().map(String::as_str));
        paths.len()
    }

    /// Connection → watched paths (`wchc`).
    pub fn by_connection(&self) -> BTreeMap<ConnId, BTreeSet<String>> {
        let mut out: BTreeMap<ConnId, BTreeSet<String>> = BTreeMap::new();
        for table in [&self.data, &self.child] {
            for (path, conns) in &table.by_path {
                for conn in conns.keys() {
                    out.entry(*conn).or_default().insert(path.clone());
                }
            }
        }
        out
    }

    /// Path → watching connections (`wchp`).
    pub fn by_path(&self) -> BTreeMap<String, BTreeSet<ConnId>> {
        let mut out: BTreeMap<String, BTreeSet<ConnId>> = BTreeMap::new();
        for table in [&self.data, &self.child] {
            for (path, conns) in &table.by_path {
                out.entry(path.clone())
                    .or_default()
                    .extend(conns.keys().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str, event_type: EventType) -> WatchEvent {
        WatchEvent {
            path: path.into(),
            event_type,
            acl: zk_proto::Acl::open_unsafe().into(),
        }
    }

    fn fired(w: &mut WatchManager, path: &str, t: EventType) -> Vec<(ConnId, i32)> {
        w.trigger(&ev(path, t))
            .into_iter()
            .map(|(c, e)| (c, e.event_type))
            .collect()
    }

    const CREATED: i32 = EventType::NodeCreated.code();
    const DELETED: i32 = EventType::NodeDeleted.code();
    const CHANGED: i32 = EventType::NodeDataChanged.code();
    const CHILDREN: i32 = EventType::NodeChildrenChanged.code();

    #[test]
    fn one_shot_watches_fire_once() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        assert_eq!(
            fired(&mut w, "/a", EventType::NodeDataChanged),
            vec![(1, CHANGED)]
        );
        assert_eq!(fired(&mut w, "/a", EventType::NodeDataChanged), vec![]);
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn child_watches_ignore_data_changes_and_fire_on_children() {
        let mut w = WatchManager::new();
        w.add_child_watch("/p", 1);
        assert_eq!(fired(&mut w, "/p", EventType::NodeDataChanged), vec![]);
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeChildrenChanged),
            vec![(1, CHILDREN)]
        );
    }

    #[test]
    fn delete_notifies_a_connection_once_across_both_tables() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 1);
        w.add_child_watch("/a", 2);
        assert_eq!(
            fired(&mut w, "/a", EventType::NodeDeleted),
            vec![(1, DELETED), (2, DELETED)]
        );
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn persistent_watches_stay_and_see_children_of_their_path_only() {
        let mut w = WatchManager::new();
        w.add_persistent_watch("/p", 1, AddWatchMode::Persistent);
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeDataChanged),
            vec![(1, CHANGED)]
        );
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeChildrenChanged),
            vec![(1, CHILDREN)]
        );
        assert_eq!(fired(&mut w, "/p/c", EventType::NodeCreated), vec![]);
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeDataChanged),
            vec![(1, CHANGED)]
        );
    }

    #[test]
    fn recursive_watches_see_the_subtree_but_not_child_list_changes() {
        let mut w = WatchManager::new();
        w.add_persistent_watch("/p", 1, AddWatchMode::PersistentRecursive);
        assert_eq!(
            fired(&mut w, "/p/a/b", EventType::NodeCreated),
            vec![(1, CREATED)]
        );
        assert_eq!(
            fired(&mut w, "/p/a", EventType::NodeChildrenChanged),
            vec![]
        );
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeDataChanged),
            vec![(1, CHANGED)]
        );
        assert_eq!(fired(&mut w, "/other", EventType::NodeCreated), vec![]);
        assert_eq!(
            fired(&mut w, "/p/a/b", EventType::NodeDeleted),
            vec![(1, DELETED)]
        );
        assert!(w.remove("/p", 1, WatcherType::Any));
        assert_eq!(fired(&mut w, "/p/x", EventType::NodeCreated), vec![]);
    }

    #[test]
    fn a_one_shot_watch_beside_a_persistent_one_fires_once_and_leaves_it() {
        let mut w = WatchManager::new();
        w.add_persistent_watch("/p", 1, AddWatchMode::Persistent);
        w.add_data_watch("/p", 1);
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeDataChanged),
            vec![(1, CHANGED)]
        );
        assert_eq!(
            fired(&mut w, "/p", EventType::NodeDataChanged),
            vec![(1, CHANGED)]
        );
    }

    #[test]
    fn recursive_watch_at_root_sees_everything() {
        let mut w = WatchManager::new();
        w.add_persistent_watch("/", 9, AddWatchMode::PersistentRecursive);
        assert_eq!(
            fired(&mut w, "/x/y", EventType::NodeDataChanged),
            vec![(9, CHANGED)]
        );
    }

    #[test]
    fn remove_and_check_by_type() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 1);
        assert!(w.contains("/a", 1, WatcherType::Data));
        assert!(w.remove("/a", 1, WatcherType::Children));
        assert!(!w.contains("/a", 1, WatcherType::Children));
        assert!(!w.remove("/a", 1, WatcherType::Children));
        assert!(w.contains("/a", 1, WatcherType::Any));
        w.remove_connection(1);
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn set_watches_fires_missed_changes_and_registers_the_rest() {
        let mut tree = DataTree::new();
        tree.create_node("/old", None, &zk_proto::Acl::open_unsafe(), 0, 5, 0);
        tree.create_node("/new", None, &zk_proto::Acl::open_unsafe(), 0, 20, 0);
        let mut w = WatchManager::new();
        let data = vec!["/old".to_string(), "/new".to_string(), "/gone".to_string()];
        let exist = vec!["/new".to_string(), "/absent".to_string()];
        let child = vec!["/old".to_string()];
        let out: Vec<(String, i32)> = w
            .set_watches(&tree, 1, 10, &data, &exist, &child, &[], &[])
            .into_iter()
            .map(|(_, e)| (e.path, e.event_type))
            .collect();
        assert_eq!(
            out,
            vec![
                ("/new".to_string(), CHANGED),
                ("/gone".to_string(), DELETED),
                ("/new".to_string(), CREATED),
            ]
        );
        assert!(w.contains("/old", 1, WatcherType::Data));
        assert!(w.contains("/absent", 1, WatcherType::Data));
        assert!(w.contains("/old", 1, WatcherType::Children));
    }
}
