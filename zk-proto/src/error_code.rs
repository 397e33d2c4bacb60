//! ZooKeeper's error codes (`KeeperException.Code`), as carried in [`crate::ReplyHeader::err`].

use crate::int_enum::int_enum;

int_enum! {
    /// An error code of the protocol. `Ok` (0) is success.
    pub enum ErrorCode ("error code") {
        /// Success.
        Ok = 0,
        /// A server-side error of no more specific kind.
        SystemError = -1,
        /// A runtime inconsistency; also the code of the ops after the failed one in a multi.
        RuntimeInconsistency = -2,
        /// A data inconsistency was found.
        DataInconsistency = -3,
        /// The connection to the server was lost (client side).
        ConnectionLoss = -4,
        /// A record could not be (de)serialised.
        MarshallingError = -5,
        /// The operation is not implemented by this server.
        Unimplemented = -6,
        /// The operation timed out (client side).
        OperationTimeout = -7,
        /// Invalid arguments (bad path, bad flags, data too large, …).
        BadArguments = -8,
        /// The session is unknown to the server.
        UnknownSession = -12,
        /// A reconfiguration's new config has no quorum.
        NewConfigNoQuorum = -13,
        /// Another reconfiguration is in progress.
        ReconfigInProgress = -14,
        /// Base of the API errors; never returned itself.
        ApiError = -100,
        /// The znode does not exist.
        NoNode = -101,
        /// The session lacks the permission the op needs.
        NoAuth = -102,
        /// The expected version does not match the znode's.
        BadVersion = -103,
        /// Ephemeral znodes may not have children.
        NoChildrenForEphemerals = -108,
        /// The znode already exists.
        NodeExists = -110,
        /// The znode has children.
        NotEmpty = -111,
        /// The session has expired.
        SessionExpired = -112,
        /// Invalid callback (client side).
        InvalidCallback = -113,
        /// The ACL is invalid (empty, unknown scheme, bad id).
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// The session has moved to another server.
        SessionMoved = -118,
        /// A write was sent to a read-only server.
        NotReadOnly = -119,
        /// An ephemeral was requested on a local session.
        EphemeralOnLocalSession = -120,
        /// The watch to check or remove does not exist.
        NoWatcher = -121,
        /// The request timed out.
        RequestTimeout = -122,
        /// Dynamic reconfiguration is disabled.
        ReconfigDisabled = -123,
        /// The session was closed because SASL authentication failed.
        SessionClosedRequireSaslAuth = -124,
        /// A hard quota was exceeded.
        QuotaExceeded = -125,
        /// The op was throttled because the server is overloaded.
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// The text Apache ZooKeeper's `KeeperException` gives this code (what follows
    /// `KeeperErrorCode = ` in its messages).
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::SystemError => "SystemError",
            ErrorCode::RuntimeInconsistency => "RuntimeInconsistency",
            ErrorCode::DataInconsistency => "DataInconsistency",
            ErrorCode::ConnectionLoss => "ConnectionLoss",
            ErrorCode::MarshallingError => "MarshallingError",
            ErrorCode::Unimplemented => "Unimplemented",
            ErrorCode::OperationTimeout => "OperationTimeout",
            ErrorCode::BadArguments => "BadArguments",
            ErrorCode::UnknownSession => "Unknown session",
            ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum",
            ErrorCode::ReconfigInProgress => "ReconfigInProgress",
            ErrorCode::ApiError => "APIError",
            ErrorCode::NoNode => "NoNode",
            ErrorCode::NoAuth => "NoAuth",
            ErrorCode::BadVersion => "BadVersion",
            ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals",
            ErrorCode::NodeExists => "NodeExists",
            ErrorCode::NotEmpty => "Directory not empty",
            ErrorCode::SessionExpired => "Session expired",
            ErrorCode::InvalidCallback => "Invalid callback",
            ErrorCode::InvalidAcl => "InvalidACL",
            ErrorCode::AuthFailed => "AuthFailed",
            ErrorCode::SessionMoved => "Session moved",
            ErrorCode::NotReadOnly => "Not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
            ErrorCode::NoWatcher => "No such watcher",
            ErrorCode::RequestTimeout => "Unknown error REQUESTTIMEOUT",
            ErrorCode::ReconfigDisabled => "Reconfig is disabled",
            ErrorCode::SessionClosedRequireSaslAuth => {
                "Session closed because client failed to authenticate"
            }
            ErrorCode::QuotaExceeded => "Quota has exceeded",
            ErrorCode::ThrottledOp => "Op throttled due to high load",
        }
    }

    /// Whether this code is one of the API errors (below -100), as opposed to a
    /// system/connection error.
    pub const fn is_api_error(self) -> bool {
        self.code() <= ErrorCode::ApiError.code()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeeperErrorCode = {}", self.message())
    }
}
