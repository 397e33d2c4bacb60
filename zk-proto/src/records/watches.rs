//! Watch notifications and the requests that manage watches.

use crate::jute::{jute_record, read_non_null_vec};
use crate::{AddWatchMode, DecodeResult, EventType, KeeperState, WatcherType};

jute_record! {
    /// A watch notification (reply xid -1).
    pub struct WatcherEvent {
        /// The [`EventType`], raw.
        pub event_type: i32,
        /// The [`KeeperState`], raw.
        pub state: i32,
        /// The znode the event is about (server paths, without the client's chroot).
        pub path: String,
    }
}

impl WatcherEvent {
    /// The event type, if the protocol defines it.
    pub fn event_type(&self) -> DecodeResult<EventType> {
        EventType::try_from(self.event_type)
    }

    /// The keeper state, if the protocol defines it.
    pub fn state(&self) -> DecodeResult<KeeperState> {
        KeeperState::try_from(self.state)
    }
}

jute_record! {
    /// setWatches: re-register one-shot watches after a reconnect. A null list is
    /// refused on input (ZooKeeper answers it with MarshallingError); empty is fine.
    pub struct SetWatches {
        /// The last zxid the client saw; changes after it fire the watches at once.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String> => read_non_null_vec,
        /// Paths with exists watches.
        pub exist_watches: Vec<String> => read_non_null_vec,
        /// Paths with child watches.
        pub child_watches: Vec<String> => read_non_null_vec,
    }
}

jute_record! {
    /// setWatches2: setWatches plus persistent and persistent-recursive watches. Null
    /// lists are refused on input, as in [`SetWatches`].
    pub struct SetWatches2 {
        /// The last zxid the client saw.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String> => read_non_null_vec,
        /// Paths with exists watches.
        pub exist_watches: Vec<String> => read_non_null_vec,
        /// Paths with child watches.
        pub child_watches: Vec<String> => read_non_null_vec,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String> => read_non_null_vec,
        /// Paths with persistent-recursive watches.
        pub persistent_recursive_watches: Vec<String> => read_non_null_vec,
    }
}

jute_record! {
    /// checkWatches: does the session hold a watch of this type here?
    pub struct CheckWatchesRequest {
        /// The path.
        pub path: String,
        /// The [`WatcherType`], raw.
        pub watcher_type: i32,
    }
}

jute_record! {
    /// removeWatches.
    pub struct RemoveWatchesRequest {
        /// The path.
        pub path: String,
        /// The [`WatcherType`], raw.
        pub watcher_type: i32,
    }
}

jute_record! {
    /// addWatch: a persistent or persistent-recursive watch.
    pub struct AddWatchRequest {
        /// The path.
        pub path: String,
        /// The [`AddWatchMode`], raw.
        pub mode: i32,
    }
}

impl CheckWatchesRequest {
    /// The watcher type, if the protocol defines it.
    pub fn watcher_type(&self) -> DecodeResult<WatcherType> {
        WatcherType::try_from(self.watcher_type)
    }
}

impl RemoveWatchesRequest {
    /// The watcher type, if the protocol defines it.
    pub fn watcher_type(&self) -> DecodeResult<WatcherType> {
        WatcherType::try_from(self.watcher_type)
    }
}

impl AddWatchRequest {
    /// The mode, if the protocol defines it.
    pub fn mode(&self) -> DecodeResult<AddWatchMode> {
        AddWatchMode::try_from(self.mode)
    }
}
