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

    /// Whether retrying the same operation may succeed: the connection was lost (for
    /// non-idempotent writes, check first whether it was applied).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::ConnectFailed(_))
            || matches!(
                self,
                Error::Keeper {
                    code: ErrorCode::OperationTimeout | ErrorCode::ThrottledOp,
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
