//! `zk-server export`: our data as an Apache ZooKeeper 3.8 snapshot, for the way
//! back. A stopped member's state (its newest snapshot and its log after it) is
//! written as `version-2/snapshot.<zxid>` under ZooKeeper's dataDir, which must hold
//! no ZooKeeper data yet; ZooKeeper creates its epoch files and logs itself.

use std::path::PathBuf;

use super::convert::to_snapshot;
use super::stream::Compression;
use super::{first_entry, io_error, ApacheDataError};
use crate::config::ServerConfig;

/// What to export, and where to.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Our configuration (its dataDir and dataLogDir hold the data).
    pub config: ServerConfig,
    /// ZooKeeper's dataDir: the snapshot goes into its `version-2/`.
    pub data_dir: PathBuf,
    /// How to compress the snapshot (ZooKeeper reads each from its file name).
    pub compression: Compression,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The snapshot written.
    pub written: PathBuf,
    /// Znodes exported.
    pub znodes: usize,
    /// Sessions exported.
    pub sessions: usize,
    /// The snapshot's zxid (our last).
    pub zxid: i64,
}

/// Writes our state as ZooKeeper's snapshot.
pub fn export(options: &ExportOptions) -> Result<ExportReport, ApacheDataError> {
    let target = options.data_dir.join("version-2");
    if let Some(found) = first_entry(&target)? {
        return Err(ApacheDataError::NotEmpty {
            dir: target,
            found,
            hint: "export only into an Apache ZooKeeper dataDir with no data",
        });
    }
    let config = &options.config;
    let db = crate::replication::offline::load_database(config)
        .map_err(io_error(&config.data_dir))?
        .ok_or_else(|| ApacheDataError::NoData {
            path: config.data_dir.clone(),
        })?;
    let snap = to_snapshot(&db);
    let bytes = options
        .compression
        .encode(&snap.to_bytes())
        .map_err(|e| ApacheDataError::Config(format!("compressing the snapshot: {e}")))?;
    std::fs::create_dir_all(&target).map_err(io_error(&target))?;
    let zxid = db.last_zxid();
    let path = target.join(format!(
        "snapshot.{:x}{}",
        zxid,
        options.compression.suffix()
    ));
    crate::storage::atomic_file::write_atomic(&path, &bytes).map_err(io_error(&path))?;
    tracing::info!(
        snapshot = %path.display(),
        znodes = db.tree().node_count(),
        sessions = db.sessions().len(),
        "exported for Apache ZooKeeper"
    );
    Ok(ExportReport {
        written: path,
        znodes: db.tree().node_count(),
        sessions: db.sessions().len(),
        zxid,
    })
}
