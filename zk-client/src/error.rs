//! The client's one error type: ZooKeeper's codes kept, plus what only a client sees.

use zk_proto::ErrorCode;

/// An operation's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with this ZooKeeper error code.
    #[error("{code} for {path}")]
    Keeper {
        /// The code.
        code: ErrorCode,
        /// The path the request was about (empty when it had none).
        path: String,
    },
    /// The connection was lost before the answer came; the request may or may not
    /// have been applied. The client is reconnecting.
    #[error("KeeperErrorCode = ConnectionLoss")]
    ConnectionLoss,
    /// The session expired; this client can do nothing more (make a new one).
    #[error("KeeperErrorCode = Session expired")]
    SessionExpired,
    /// Authentication failed; the session is unusable.
    #[error("KeeperErrorCode = AuthFailed")]
    AuthFailed,
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A path the client refuses to send (ZooKeeper's path rules).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// An argument the client refuses to send.
    #[error("bad argument: {0}")]
    BadArguments(String),
    /// No server in the connect string could be reached in time.
    #[error("could not connect: {0}")]
    ConnectFailed(String),
    /// A one-shot watch that will never fire: [`crate::Client::remove_watches`]
    /// removed it.
    #[error("the watch was removed")]
    WatchRemoved,
    /// A one-shot watch that was never set: the read that was to leave it failed (its
    /// own result says why).
    #[error("the watch was not registered (its read failed)")]
    WatchNotRegistered,
    /// The server sent something this client cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The TLS settings cannot be used (a CA, certificate or key that does not load).
    /// A server whose certificate is not trusted shows as [`Error::ConnectFailed`].
    #[error("TLS: {0}")]
    Tls(String),
}

impl Error {
    pub(crate) fn keeper(code: ErrorCode, path: &str) -> Error {
        match code {
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::AuthFailed => Error::AuthFailed,
            _ => Error::Keeper {
                code,
                path: path.to_string(),
            },
        }
    }

    /// The ZooKeeper error code this error stands for, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Keeper { code, .. } => Some(*code),
            Error::ConnectionLoss => Some(ErrorCode::ConnectionLoss),
            Error::SessionExpired => Some(ErrorCode::SessionExpired),
            Error::AuthFailed => Some(ErrorCode::AuthFailed),
            Error::InvalidPath(_) | Error::BadArguments(_) => Some(ErrorCode::BadArguments),
            _ => None,
        }
    }

    /// Whether retrying the same operation may succeed, as Curator's
    /// `RetryLoop.shouldRetry` judges: the connection was lost or could not be made,
    /// the operation timed out or was throttled, the session moved to another server
    /// (the old connection answers SessionMoved; the client is already on the new one),
    /// or a reconfiguration found no quorum yet. For non-idempotent writes, check first
    /// whether the failed attempt was applied. (Curator also retries SessionExpired,
    /// because its client makes a new session; ours does that only with
    /// [`crate::ClientBuilder::renew_expired_sessions`], so it is not retryable here.)
    ///
    /// ```
    /// use zk_client::{Error, ErrorCode};
    /// assert!(Error::ConnectionLoss.is_retryable());
    /// let moved = Error::Keeper { code: ErrorCode::SessionMoved, path: "/a".into() };
    /// assert!(moved.is_retryable());
    /// let missing = Error::Keeper { code: ErrorCode::NoNode, path: "/a".into() };
    /// assert!(!missing.is_retryable());
    /// assert!(!Error::SessionExpired.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::ConnectFailed(_))
            || matches!(
                self,
                Error::Keeper {
                    code: ErrorCode::OperationTimeout
                        | ErrorCode::ThrottledOp
                        | ErrorCode::SessionMoved
                        | ErrorCode::NewConfigNoQuorum,
                    ..
                }
            )
    }

    /// Whether the session is gone for good.
    pub fn is_session_lost(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired | Error::AuthFailed | Error::Closed
        )
    }
}

/// Result of a client operation.
pub type Result<T> = std::result::Result<T, Error>;
