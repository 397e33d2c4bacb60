//! Requests and responses of the znode operations: create, delete, exists, data,
//! children, sync, check, ephemerals.

use bytes::Bytes;

use crate::jute::jute_record;
use crate::{Acl, CreateMode, DecodeResult, Stat};

jute_record! {
    /// create / create2 / createContainer (they differ by opcode only).
    pub struct CreateRequest {
        /// The path (for sequential modes, the prefix the counter is appended to).
        pub path: String,
        /// The data; `None` is kept apart from empty, as ZooKeeper does.
        pub data: Option<Bytes>,
        /// The ACL of the new znode (non-empty).
        pub acl: Vec<Acl>,
        /// The [`CreateMode`] flag, raw.
        pub flags: i32,
    }
}

jute_record! {
    /// createTTL: a create with a time to live in milliseconds.
    pub struct CreateTtlRequest {
        /// The path.
        pub path: String,
        /// The data.
        pub data: Option<Bytes>,
        /// The ACL.
        pub acl: Vec<Acl>,
        /// The [`CreateMode`] flag, raw (a TTL mode).
        pub flags: i32,
        /// Time to live in milliseconds.
        pub ttl: i64,
    }
}

impl CreateRequest {
    /// The create mode, if `flags` names one.
    pub fn create_mode(&self) -> DecodeResult<CreateMode> {
        CreateMode::try_from(self.flags)
    }
}

impl CreateTtlRequest {
    /// The create mode, if `flags` names one.
    pub fn create_mode(&self) -> DecodeResult<CreateMode> {
        CreateMode::try_from(self.flags)
    }
}

jute_record! {
    /// Reply to create: the path as created (with its sequence suffix).
    pub struct CreateResponse {
        /// The created path.
        pub path: String,
    }
}

jute_record! {
    /// Reply to create2 / createContainer / createTTL: path and Stat.
    pub struct Create2Response {
        /// The created path.
        pub path: String,
        /// The new znode's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// delete (and deleteContainer).
    pub struct DeleteRequest {
        /// The path.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// exists.
    pub struct ExistsRequest {
        /// The path.
        pub path: String,
        /// Leave an exists watch (a data watch if the znode exists).
        pub watch: bool,
    }
}

jute_record! {
    /// Reply to exists (only when the znode exists; else NoNode with no body).
    pub struct ExistsResponse {
        /// The znode's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// getData.
    pub struct GetDataRequest {
        /// The path.
        pub path: String,
        /// Leave a data watch.
        pub watch: bool,
    }
}

jute_record! {
    /// Reply to getData (and to reconfig and to the getConfig read of /zookeeper/config).
    pub struct GetDataResponse {
        /// The data (`None` for a znode created with null data).
        pub data: Option<Bytes>,
        /// The znode's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// setData.
    pub struct SetDataRequest {
        /// The path.
        pub path: String,
        /// The new data.
        pub data: Option<Bytes>,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Reply to setData (and to a standalone check).
    pub struct SetDataResponse {
        /// The znode's Stat after the change.
        pub stat: Stat,
    }
}

jute_record! {
    /// getChildren.
    pub struct GetChildrenRequest {
        /// The path.
        pub path: String,
        /// Leave a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// Reply to getChildren.
    pub struct GetChildrenResponse {
        /// Child names (not paths), in no particular order.
        pub children: Vec<String>,
    }
}

jute_record! {
    /// getChildren2: getChildren plus the parent's Stat.
    pub struct GetChildren2Request {
        /// The path.
        pub path: String,
        /// Leave a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// Reply to getChildren2.
    pub struct GetChildren2Response {
        /// Child names.
        pub children: Vec<String>,
        /// The parent's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// sync.
    pub struct SyncRequest {
        /// The path (only echoed back).
        pub path: String,
    }
}

jute_record! {
    /// Reply to sync.
    pub struct SyncResponse {
        /// The path of the request.
        pub path: String,
    }
}

jute_record! {
    /// check: the znode must exist at this version (-1 for any).
    pub struct CheckVersionRequest {
        /// The path.
        pub path: String,
        /// Expected version.
        pub version: i32,
    }
}

jute_record! {
    /// getEphemerals.
    pub struct GetEphemeralsRequest {
        /// Only ephemerals whose path starts with this prefix ("/" for all).
        pub prefix_path: String,
    }
}

jute_record! {
    /// Reply to getEphemerals.
    pub struct GetEphemeralsResponse {
        /// Full paths of the session's ephemeral znodes.
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    /// getAllChildrenNumber.
    pub struct GetAllChildrenNumberRequest {
        /// The path.
        pub path: String,
    }
}

jute_record! {
    /// Reply to getAllChildrenNumber.
    pub struct GetAllChildrenNumberResponse {
        /// The number of descendants of the znode.
        pub total_number: i32,
    }
}
