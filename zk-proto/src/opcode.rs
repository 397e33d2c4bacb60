//! Request opcodes (`ZooDefs.OpCode`) and the special xids of the client protocol.

use crate::int_enum::int_enum;

int_enum! {
    /// The type of a request, as carried in [`crate::RequestHeader::opcode`].
    pub enum OpCode ("opcode") {
        /// Used only in the server's internal bookkeeping of watch notifications.
        Notification = 0,
        /// Create a znode; the reply carries its path.
        Create = 1,
        /// Delete a znode.
        Delete = 2,
        /// Stat a znode, optionally leaving an exists watch.
        Exists = 3,
        /// Read a znode's data and Stat, optionally leaving a data watch.
        GetData = 4,
        /// Replace a znode's data.
        SetData = 5,
        /// Read a znode's ACL.
        GetAcl = 6,
        /// Replace a znode's ACL.
        SetAcl = 7,
        /// List a znode's children, optionally leaving a child watch.
        GetChildren = 8,
        /// Bring the server the client is on up to date with the leader.
        Sync = 9,
        /// Keep the session alive (xid -2).
        Ping = 11,
        /// List children and return the parent's Stat.
        GetChildren2 = 12,
        /// Version check, used inside multi (and accepted on its own).
        Check = 13,
        /// An atomic transaction of create/delete/setData/check ops.
        Multi = 14,
        /// Create a znode; the reply carries its path and Stat.
        Create2 = 15,
        /// Dynamic reconfiguration of the ensemble.
        Reconfig = 16,
        /// Ask whether a watch is registered.
        CheckWatches = 17,
        /// Remove watches.
        RemoveWatches = 18,
        /// Create a container znode.
        CreateContainer = 19,
        /// Server-internal delete of an empty container.
        DeleteContainer = 20,
        /// Create a znode with a time to live.
        CreateTtl = 21,
        /// A batch of reads (getChildren/getData), each answered on its own.
        MultiRead = 22,
        /// Add authentication (xid -4).
        Auth = 100,
        /// Re-register watches after a reconnect (xid -8).
        SetWatches = 101,
        /// SASL authentication.
        Sasl = 102,
        /// List the session's ephemeral znodes under a prefix.
        GetEphemerals = 103,
        /// Count all descendants of a znode.
        GetAllChildrenNumber = 104,
        /// Re-register watches, persistent ones included, after a reconnect (xid -8).
        SetWatches2 = 105,
        /// Add a persistent or persistent-recursive watch.
        AddWatch = 106,
        /// Ask the server which identities the session holds.
        WhoAmI = 107,
        /// Server-internal session creation (the handshake is not a request).
        CreateSession = -10,
        /// End the session.
        CloseSession = -11,
        /// Marks a failed op in a multi response.
        Error = -1,
    }
}

impl OpCode {
    /// Whether the op changes server state (and so goes through the write path).
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }
}

/// The xids with a fixed meaning in replies and requests (`ClientCnxn`).
pub mod xid {
    /// A reply with this xid is a watch notification ([`crate::WatcherEvent`] body).
    pub const NOTIFICATION: i32 = -1;
    /// Pings and their replies.
    pub const PING: i32 = -2;
    /// Auth packets and their replies.
    pub const AUTH: i32 = -4;
    /// setWatches / setWatches2 and their replies.
    pub const SET_WATCHES: i32 = -8;
}
