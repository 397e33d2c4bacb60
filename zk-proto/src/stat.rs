//! `Stat`: the metadata ZooKeeper keeps for every znode.

use crate::jute::jute_record;

jute_record! {
    /// A znode's metadata, as returned by exists, getData, setData, create2, ….
    #[derive(Copy)]
    pub struct Stat {
        /// zxid of the change that created the znode.
        pub czxid: i64,
        /// zxid of the change that last modified its data.
        pub mzxid: i64,
        /// Creation time, milliseconds since the epoch (leader's clock).
        pub ctime: i64,
        /// Last data modification time, milliseconds since the epoch.
        pub mtime: i64,
        /// Number of changes to the data.
        pub version: i32,
        /// Number of changes to the children.
        pub cversion: i32,
        /// Number of changes to the ACL.
        pub aversion: i32,
        /// Session id of the owner if ephemeral, else 0.
        pub ephemeral_owner: i64,
        /// Length of the data in bytes.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// zxid of the change that last modified the children.
        pub pzxid: i64,
    }
}
