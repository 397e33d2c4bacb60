//! getACL and setACL.

use crate::jute::jute_record;
use crate::{Acl, Stat};

jute_record! {
    /// getACL.
    pub struct GetAclRequest {
        /// The path.
        pub path: String,
    }
}

jute_record! {
    /// Reply to getACL.
    pub struct GetAclResponse {
        /// The znode's ACL.
        pub acl: Vec<Acl>,
        /// The znode's Stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// setACL.
    pub struct SetAclRequest {
        /// The path.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version (aversion), -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Reply to setACL.
    pub struct SetAclResponse {
        /// The znode's Stat after the change.
        pub stat: Stat,
    }
}
