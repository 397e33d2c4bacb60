//! The shell's watches, kept as ZooKeeper's Java client keeps the watches of its one
//! default watcher (`ZKWatchManager`): one data, exist, child, persistent and
//! persistent-recursive set of paths. A notification is printed once however many
//! of them it fires (Java's watcher set holds the default watcher once), firing
//! removes the one-shot watches the Java client would remove, and `removewatches`
//! removes and reports as Java's `removeWatcher` does.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use zk_client::{EventType, OneshotWatcher, PersistentWatcher, WatchedEvent, WatcherType};

use crate::conn::Conn;

/// Which of the Java client's watch tables a watch is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// getData, or exists on a znode that exists.
    Data,
    /// exists on a znode that does not exist.
    Exist,
    /// getChildren.
    Child,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    Recursive,
}

/// The client's handle of a watch, kept so the client keeps (and re-registers after
/// a reconnection) the watch. Events are read from the session's notification stream,
/// in the order the server sent them, not from the handles.
#[derive(Debug)]
pub enum Slot {
    /// A one-shot watch (held, never read: its event comes through the stream).
    Once { _handle: OneshotWatcher },
    /// A persistent watch (its events are drained: they come through the stream too).
    Stream(PersistentWatcher),
}

impl From<OneshotWatcher> for Slot {
    fn from(w: OneshotWatcher) -> Slot {
        Slot::Once { _handle: w }
    }
}

impl From<PersistentWatcher> for Slot {
    fn from(w: PersistentWatcher) -> Slot {
        Slot::Stream(w)
    }
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    path: String,
    slot: Slot,
}

impl Entry {
    /// Empties a persistent watch's queue (its events come through the stream).
    fn drain(&mut self) {
        if let Slot::Stream(w) = &mut self.slot {
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            while let Poll::Ready(Some(_)) = Pin::new(&mut *w).poll_next(&mut cx) {}
        }
    }
}

/// Whether `ancestor` is `path` or above it.
fn covers(ancestor: &str, path: &str) -> bool {
    ancestor == "/"
        || path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Every watch the shell holds.
#[derive(Debug, Default)]
pub struct WatchTable {
    entries: Vec<Entry>,
    /// Notifications no watch of the table asked for, while a command runs: the watch
    /// it set may not be in the table yet (see [`WatchTable::replay`]).
    unmatched: Vec<WatchedEvent>,
}

/// How many unmatched notifications are kept for a replay.
const UNMATCHED_KEPT: usize = 1024;

impl WatchTable {
    /// Adds a watch; one already held for the same table and path stays instead (Java
    /// keeps the default watcher once per path).
    pub fn add(&mut self, kind: Kind, path: &str, slot: impl Into<Slot>) {
        if !self
            .entries
            .iter()
            .any(|e| e.kind == kind && e.path == path)
        {
            self.entries.push(Entry {
                kind,
                path: path.to_string(),
                slot: slot.into(),
            });
        }
    }

    /// Forgets everything (a new session).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Whether a watch of `kind` is held on `path` (`ZKWatchManager.containsWatcher`:
    /// persistent watches count for `Data` and `Children` too).
    pub fn contains(&self, path: &str, kind: WatcherType) -> bool {
        self.entries.iter().any(|e| {
            e.path == path
                && match kind {
                    WatcherType::Children => {
                        matches!(e.kind, Kind::Child | Kind::Persistent | Kind::Recursive)
                    }
                    WatcherType::Data => matches!(
                        e.kind,
                        Kind::Data | Kind::Exist | Kind::Persistent | Kind::Recursive
                    ),
                    WatcherType::Any => true,
                }
        })
    }

    /// Removes the watches a successful removeWatches of `kind` removes on the Java
    /// client; answers the removal events to report, in order (none: nothing was
    /// removed, which Java reports as NoWatcher).
    pub fn remove(&mut self, path: &str, kind: WatcherType) -> Vec<EventType> {
        let tables: &[(Kind, EventType)] = match kind {
            WatcherType::Children => &[(Kind::Child, EventType::ChildWatchRemoved)],
            WatcherType::Data => &[
                (Kind::Data, EventType::DataWatchRemoved),
                (Kind::Exist, EventType::DataWatchRemoved),
            ],
            WatcherType::Any => &[
                (Kind::Child, EventType::ChildWatchRemoved),
                (Kind::Data, EventType::DataWatchRemoved),
                (Kind::Exist, EventType::DataWatchRemoved),
                (Kind::Persistent, EventType::PersistentWatchRemoved),
                (Kind::Recursive, EventType::PersistentWatchRemoved),
            ],
        };
        let mut events = Vec::new();
        for (table, event) in tables {
            let before = self.entries.len();
            self.entries
                .retain(|e| !(e.kind == *table && e.path == path));
            if self.entries.len() != before && !events.contains(event) {
                events.push(*event);
            }
        }
        events
    }

    /// The next notification the shell prints: the session's notifications in
    /// order, each once, those no watch of the table asked for left out.
    pub fn poll_event(&mut self, conn: &mut Conn, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        loop {
            match conn.poll_notification(cx) {
                Poll::Ready(Some(ev)) => {
                    if self.materialize(&ev) {
                        return Poll::Ready(ev);
                    }
                    if self.unmatched.len() < UNMATCHED_KEPT {
                        self.unmatched.push(ev);
                    }
                }
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next notification if one is there now.
    pub fn try_event(&mut self, conn: &mut Conn) -> Option<WatchedEvent> {
        let waker = futures::task::noop_waker();
        match self.poll_event(conn, &mut Context::from_waker(&waker)) {
            Poll::Ready(ev) => Some(ev),
            Poll::Pending => None,
        }
    }

    /// The notifications that matched no watch while a command ran, matched again now
    /// that its watches are in the table (a watch's first notification can come
    /// before the command that set it has finished): those to print.
    pub fn replay(&mut self) -> Vec<WatchedEvent> {
        let unmatched = std::mem::take(&mut self.unmatched);
        unmatched
            .into_iter()
            .filter(|ev| self.materialize(ev))
            .collect()
    }

    /// Forgets unmatched notifications (a command starts: any left belonged to no
    /// watch).
    pub fn forget_unmatched(&mut self) {
        self.unmatched.clear();
    }

    /// What `ZKWatchManager.materialize` does for `ev`: the one-shot watches it fires
    /// go, persistent ones stay; whether any watch (so the default watcher) fired.
    fn materialize(&mut self, ev: &WatchedEvent) -> bool {
        let fired: &[Kind] = match ev.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => &[Kind::Data, Kind::Exist],
            EventType::NodeDeleted => &[Kind::Data, Kind::Exist, Kind::Child],
            EventType::NodeChildrenChanged => &[Kind::Child],
            _ => &[],
        };
        let before = self.entries.len();
        self.entries
            .retain(|e| !(fired.contains(&e.kind) && e.path == ev.path));
        let mut hit = self.entries.len() != before;
        for e in &mut self.entries {
            let reached = match e.kind {
                Kind::Persistent => e.path == ev.path,
                Kind::Recursive => {
                    ev.event_type != EventType::NodeChildrenChanged && covers(&e.path, &ev.path)
                }
                _ => false,
            };
            hit |= reached;
            e.drain();
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_ancestors_and_itself() {
        assert!(covers("/", "/a"));
        assert!(covers("/a", "/a"));
        assert!(covers("/a", "/a/b"));
        assert!(!covers("/a", "/ab"));
        assert!(!covers("/a/b", "/a"));
    }
}
