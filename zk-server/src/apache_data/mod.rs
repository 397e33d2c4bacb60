//! Apache ZooKeeper's data directory, both ways: `zk-server import` turns a ZooKeeper
//! 3.4–3.8 `dataDir` (and `dataLogDir`) into ours, `zk-server export` writes a
//! snapshot ZooKeeper 3.8 loads. See `docs/operations.md`, "Replacing an Apache
//! ZooKeeper ensemble in place".
//!
//! - [`jute`]: the encoding of ZooKeeper's files, with offsets for error messages.
//! - [`checksum`]: Adler-32, on every snapshot seal and log record.
//! - [`stream`]: a snapshot file's compression (plain, gzip, snappy-java), by name.
//! - [`snapshot`]: the snapshot format (`FileSnap`), read and written.
//! - [`txnlog`]: the transaction log format (`FileTxnLog`), read.
//! - [`replay`]: ZooKeeper's `DataTree` rules for replaying a log onto a snapshot.
//! - [`convert`]: between ZooKeeper's tree and our database.
//! - [`java_random`]: `java.util.Random`, and the session passwords ZooKeeper derives.
//! - [`import`] / [`export`]: the two directions over directories, all-or-nothing.
//!
//! Zxids: ZooKeeper's (`epoch << 32 | counter`) are kept in every Stat as they are.
//! Ours are `log index << 16 | position`; an imported member's log starts past the
//! largest imported zxid (index `(zxid >> 16) + 1`), so every zxid it hands out is
//! larger, and a client that saw ZooKeeper's last zxid is not "ahead" of it.

pub mod checksum;
pub mod convert;
pub mod export;
pub mod import;
pub mod java_random;
pub mod jute;
pub mod replay;
pub mod snapshot;
pub mod stream;
pub mod txnlog;

use std::io;
use std::path::{Path, PathBuf};

pub use export::{export, ExportOptions, ExportReport};
pub use import::{import, ImportOptions, ImportReport};

/// Why an import or export failed. Every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum ApacheDataError {
    /// The file system failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A snapshot that cannot be read (damaged, cut short, not a snapshot).
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A transaction log that cannot be read (damaged, cut short, not a log).
    #[error("transaction log {}: {reason}", path.display())]
    TxnLog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The destination already holds data.
    #[error("{} already holds data ({}): {hint}", dir.display(), found.display())]
    NotEmpty {
        /// The directory that must be empty.
        dir: PathBuf,
        /// A file found in it.
        found: PathBuf,
        /// What to do.
        hint: &'static str,
    },
    /// The source holds no ZooKeeper data.
    #[error("{}: no Apache ZooKeeper data (no snapshot.* or log.* files in it or in its version-2 directory)", path.display())]
    NoData {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The configuration cannot be used for this.
    #[error("configuration: {0}")]
    Config(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ApacheDataError + '_ {
    move |source| ApacheDataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// ZooKeeper's file name `prefix.<hex zxid>[.suffix]`: the zxid.
pub fn zxid_of_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let hex = rest.split('.').next()?;
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// The files `prefix.<hex zxid>…` in `dir`, by zxid.
fn zk_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ApacheDataError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_error(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        if let Some(zxid) = name.to_str().and_then(|n| zxid_of_name(n, prefix)) {
            out.push((zxid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The first entry of `dir` (not a hidden file), if it exists and holds one.
fn first_entry(dir: &Path) -> Result<Option<PathBuf>, ApacheDataError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_their_zxid() {
        assert_eq!(zxid_of_name("snapshot.1a", "snapshot"), Some(0x1a));
        assert_eq!(zxid_of_name("snapshot.1a.gz", "snapshot"), Some(0x1a));
        assert_eq!(zxid_of_name("log.100000001", "log"), Some(0x1_0000_0001));
        assert_eq!(zxid_of_name("log.x", "log"), None);
        assert_eq!(zxid_of_name("logs.1", "log"), None);
    }
}
