//! Watch-related constants: event types, keeper states, watcher types, addWatch modes.

use crate::int_enum::int_enum;

int_enum! {
    /// What happened to a watched znode (`Watcher.Event.EventType`).
    pub enum EventType ("event type") {
        /// A connection state change, not a znode event.
        None = -1,
        /// The znode was created.
        NodeCreated = 1,
        /// The znode was deleted.
        NodeDeleted = 2,
        /// The znode's data changed.
        NodeDataChanged = 3,
        /// The znode's children changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed.
        DataWatchRemoved = 5,
        /// A child watch was removed.
        ChildWatchRemoved = 6,
        /// A persistent watch was removed.
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// The connection state a watch event reports (`Watcher.Event.KeeperState`).
    pub enum KeeperState ("keeper state") {
        /// Unused; kept for compatibility.
        Unknown = -1,
        /// Disconnected from the ensemble.
        Disconnected = 0,
        /// Unused; kept for compatibility.
        NoSyncConnected = 1,
        /// Connected to a read-write server.
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded.
        SaslAuthenticated = 6,
        /// The session expired.
        Expired = -112,
        /// The client was closed.
        Closed = 7,
    }
}

int_enum! {
    /// Which watches checkWatches/removeWatches address (`Watcher.WatcherType`).
    pub enum WatcherType ("watcher type") {
        /// Child watches.
        Children = 1,
        /// Data and exists watches.
        Data = 2,
        /// Every kind of watch.
        Any = 3,
    }
}

int_enum! {
    /// The kind of watch addWatch leaves (`AddWatchMode`).
    pub enum AddWatchMode ("add watch mode") {
        /// Fires for the znode's data changes, creation, deletion and child changes
        /// until removed.
        Persistent = 0,
        /// Fires for the znode and every descendant until removed (no child events).
        PersistentRecursive = 1,
    }
}
