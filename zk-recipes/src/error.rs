//! The recipes' errors.

/// Why a recipe operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The client failed (connection lost past the retries, session expired, ...).
    #[error(transparent)]
    Client(#[from] zk_client::Error),
    /// The recipe's own node disappeared while it waited (its session expired, or
    /// someone deleted it).
    #[error("our node {0} was deleted")]
    NodeLost(String),
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

/// A recipe result.
pub type Result<T> = std::result::Result<T, Error>;
