//! The recipes' errors: [`Error`], one variant for each way a recipe call or wait can
//! end other than success.

/// Why a recipe operation failed, or why a wait ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client failed: the connection stayed lost past the retries
    /// (ConnectionLoss), the session expired on a client that does not renew
    /// sessions (SessionExpired), authentication failed (AuthFailed), the client was
    /// closed (Closed), or the server refused the operation (a `Keeper` code).
    #[error(transparent)]
    Client(#[from] zk_client::Error),
    /// The recipe's own node disappeared while it waited (its session expired, or
    /// someone deleted it). Trying again makes a new one.
    #[error("our node {0} was deleted")]
    NodeLost(String),
    /// The recipe was closed by its owner while this call waited.
    #[error("the recipe was closed")]
    Closed,
    /// `release` without a matching `acquire`.
    #[error("not held")]
    NotHeld,
    /// A value could not be encoded or decoded (serde through MessagePack or JSON).
    #[error("value format: {0}")]
    Codec(String),
    /// The request would wait for something this holder itself holds.
    #[error("would deadlock: {0}")]
    WouldDeadlock(&'static str),
    /// A read-modify-write ([`crate::Modeled::update`]) gave up: every attempt found
    /// that someone else had written, created or deleted the node in between.
    #[error("gave up updating {path} after {attempts} attempts: other writers kept changing it")]
    TooManyConflicts {
        /// The node.
        path: String,
        /// The attempts made.
        attempts: u32,
    },
}

impl Error {
    /// Whether trying the same call again can succeed: a lost connection, a node that
    /// went with an expired session (a renewing client has a new one), a server that
    /// was not ready. Not for a closed recipe or client, bad input or failed auth.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Client(e) => e.is_retryable(),
            Error::NodeLost(_) => true,
            // Contention: trying again later may well succeed.
            Error::TooManyConflicts { .. } => true,
            Error::Closed | Error::NotHeld | Error::Codec(_) | Error::WouldDeadlock(_) => false,
        }
    }

    /// The ZooKeeper error code, when the server refused the operation.
    pub fn code(&self) -> Option<zk_client::ErrorCode> {
        match self {
            Error::Client(e) => e.code(),
            _ => None,
        }
    }
}

/// A recipe result.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_the_cause() {
        assert!(Error::Client(zk_client::Error::ConnectionLoss).is_retryable());
        assert!(!Error::Client(zk_client::Error::Closed).is_retryable());
        assert!(Error::NodeLost("/l/x".into()).is_retryable());
        assert!(!Error::Closed.is_retryable());
        assert!(!Error::Codec("bad".into()).is_retryable());
    }
}
