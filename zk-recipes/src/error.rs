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
}

/// A recipe result.
pub type Result<T> = std::result::Result<T, Error>;
