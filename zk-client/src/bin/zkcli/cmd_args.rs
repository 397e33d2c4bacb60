//! Reading a command's parsed arguments as zkCli.sh's commands read them: int options
//! (`-v version`) and data arguments (text, or our `-b` base64 / `-x` hex).

use crate::cli_error::CliError;
use crate::format;
use crate::java_num::java_int;
use crate::opts::Parsed;

/// An int option zkCli.sh parses without catching the error (its JVM dies with a
/// NumberFormatException): ours reports it as a failed command.
pub fn int_option(p: &Parsed, name: &str) -> Result<Option<i32>, CliError> {
    match p.value(name) {
        None => Ok(None),
        Some(v) => java_int(v).map(Some).ok_or_else(|| {
            CliError::new(format!(
                "java.lang.NumberFormatException: For input string: \"{v}\""
            ))
        }),
    }
}

/// The data argument, as text or (our `-b`/`-x`) base64 or hex.
pub fn data_arg(p: &Parsed, text: &str) -> Result<Vec<u8>, CliError> {
    if p.has("b") {
        format::from_base64(text).map_err(CliError::new)
    } else if p.has("x") {
        format::from_hex(text).map_err(CliError::new)
    } else {
        Ok(text.as_bytes().to_vec())
    }
}
