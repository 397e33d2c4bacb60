//! A failed command (`CliError`, Java's `CliException`) and the two ways commands make
//! one from a client-side failure: a path Java refuses before sending (`check_path`)
//! and a failed request (`keeper`).

use zk_client::Error;

use crate::format;
use crate::opts;

/// A failed command: its message (for stderr) and exit code (`CliException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What zkCli.sh prints.
    pub message: String,
    /// The exit code a one-shot run ends with.
    pub code: i32,
}

impl CliError {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<opts::ParseError> for CliError {
    fn from(e: opts::ParseError) -> CliError {
        CliError::new(e.to_string())
    }
}

/// `MalformedPathException` for a path Java's client refuses before sending anything.
pub fn check_path(path: &str) -> Result<(), CliError> {
    zk_proto::path::validate_path(path).map_err(|e| CliError::new(e.0))
}

/// `CliWrapperException` for a failed request on `path`.
pub fn keeper(e: &Error, path: &str) -> CliError {
    CliError::new(format::error(e, path))
}
