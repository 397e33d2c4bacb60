//! `zk-server import`: an Apache ZooKeeper data directory becomes ours.
//!
//! As ZooKeeper restores itself (`FileTxnSnapLog.restore`): the newest complete
//! snapshot, then every logged transaction after its zxid, from the log files that can
//! hold them. Every checksum is checked; a damaged file, or a log cut short, stops the
//! import with its name (ZooKeeper itself would fall back to an older snapshot, or
//! drop a torn last record: the operator decides, see `docs/operations.md`). An
//! incomplete newest snapshot (one ZooKeeper was writing when it stopped) is passed
//! over for the one before it, as ZooKeeper passes over it.
//!
//! The destination must hold no data of ours. The snapshot is written into a
//! temporary directory beside it and renamed into place: an import that fails
//! leaves nothing behind.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::convert::{max_zxid, to_database};
use super::replay::ApacheTree;
use super::snapshot::ApacheSnapshot;
use super::stream::Compression;
use super::txnlog::parse_log_tail;
use super::{first_entry, io_error, zk_files, ApacheDataError};
use crate::config::ServerConfig;
use crate::database::ZkDatabase;
use crate::txn::ZXID_POSITION_BITS;

/// What to import, and where to.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// ZooKeeper's `dataDir` (holding `version-2/`), or its `version-2` itself.
    pub data_dir: PathBuf,
    /// ZooKeeper's `dataLogDir`, when its logs are apart from its snapshots.
    pub data_log_dir: Option<PathBuf>,
    /// Accept a last log file that ends inside a record (a write torn by a crash),
    /// dropping that record as ZooKeeper does when it starts; refused otherwise.
    pub accept_torn_tail: bool,
    /// Our configuration: its dataDir (and dataLogDir) receive the data, its
    /// `server.N` lines are the ensemble the snapshot names.
    pub config: ServerConfig,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The snapshot read (`None`: there was none, the logs were replayed from empty).
    pub snapshot: Option<PathBuf>,
    /// The log files read.
    pub logs: Vec<PathBuf>,
    /// Transactions replayed after the snapshot.
    pub transactions: usize,
    /// Znodes imported.
    pub znodes: usize,
    /// Sessions imported.
    pub sessions: usize,
    /// ZooKeeper's last zxid.
    pub last_zxid: i64,
    /// The log index our server starts after.
    pub log_index: u64,
    /// The snapshot written.
    pub written: PathBuf,
    /// How long reading, converting and writing took.
    pub elapsed: std::time::Duration,
}

/// ZooKeeper's `version-2` directory under `dir` (or `dir` itself if it is one).
fn version2(dir: &Path) -> PathBuf {
    let inner = dir.join("version-2");
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Refuses a destination that holds data of ours.
fn check_empty(config: &ServerConfig) -> Result<(), ApacheDataError> {
    for dir in [config.snapshot_dir(), config.log_store_dir()] {
        if let Some(found) = first_entry(&dir)? {
            return Err(ApacheDataError::NotEmpty {
                dir,
                found,
                hint: "import only into a data directory that holds no data (move it aside \
                       or point dataDir/dataLogDir at empty directories)",
            });
        }
    }
    Ok(())
}

/// Reads the ZooKeeper data `options` names and writes it as our snapshot.
pub fn import(options: &ImportOptions) -> Result<ImportReport, ApacheDataError> {
    let started = Instant::now();
    check_empty(&options.config)?;
    let (db, snapshot, logs, transactions) = read_apache(options)?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "read ZooKeeper's data"
    );
    let last_zxid = db.last_zxid();
    let log_index = ((max_zxid(&db) as u64) >> ZXID_POSITION_BITS) + 1;
    let written = write_ours(&options.config, log_index, &db)?;
    let report = ImportReport {
        snapshot,
        logs,
        transactions,
        znodes: db.tree().node_count(),
        sessions: db.sessions().len(),
        last_zxid,
        log_index,
        written,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        znodes = report.znodes,
        sessions = report.sessions,
        transactions = report.transactions,
        zxid = format_args!("0x{last_zxid:x}"),
        log_index,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "imported Apache ZooKeeper data"
    );
    Ok(report)
}

type Read = (ZkDatabase, Option<PathBuf>, Vec<PathBuf>, usize);

/// ZooKeeper's state as it would restore it: newest snapshot plus the logs after it.
pub fn read_apache(options: &ImportOptions) -> Result<Read, ApacheDataError> {
    let snap_dir = version2(&options.data_dir);
    let log_dir = options
        .data_log_dir
        .as_deref()
        .map_or_else(|| snap_dir.clone(), version2);
    let snapshots = zk_files(&snap_dir, "snapshot")?;
    let log_files = zk_files(&log_dir, "log")?;
    if snapshots.is_empty() && log_files.is_empty() {
        return Err(ApacheDataError::NoData { path: snap_dir });
    }
    let started = Instant::now();
    let (mut tree, snapshot) = match newest_valid_snapshot(&snapshots)? {
        Some((tree, path)) => (tree, Some(path)),
        None => {
            tracing::warn!(dir = %snap_dir.display(), "no snapshot: replaying the logs from an empty tree");
            let empty = super::convert::to_snapshot(&ZkDatabase::new());
            let tree = ApacheTree::from_snapshot(empty, 0).map_err(|reason| {
                ApacheDataError::Snapshot {
                    path: snap_dir.clone(),
                    reason,
                }
            })?;
            (tree, None)
        }
    };
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "read the snapshot"
    );
    let from = tree.last_zxid + 1;
    // Within an epoch zxids are consecutive: a first log starting past `from` means
    // the logs since the snapshot are gone (a new epoch may start anywhere).
    if let Some((start, path)) = log_files.first() {
        if *start > from && start >> 32 == from >> 32 {
            return Err(ApacheDataError::TxnLog {
                path: path.clone(),
                reason: format!(
                    "the logs from zxid 0x{from:x} (after the snapshot) to 0x{start:x} are missing"
                ),
            });
        }
    }
    // FileTxnIterator: every log starting at or after `from`, and the last one
    // starting before it (which may hold it).
    let first = log_files
        .iter()
        .rposition(|(start, _)| *start < from)
        .unwrap_or(0);
    let mut used = Vec::new();
    let mut transactions = 0;
    let replayed = &log_files[first..];
    for (i, (_, path)) in replayed.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        let bad = |reason: String| ApacheDataError::TxnLog {
            path: path.clone(),
            reason,
        };
        let parsed = parse_log_tail(&bytes).map_err(|e| bad(e.to_string()))?;
        if let Some(cut) = parsed.torn {
            let last = i + 1 == replayed.len();
            if !(last && options.accept_torn_tail) {
                return Err(bad(if last {
                    format!(
                        "{cut}; if ZooKeeper crashed while writing it, this last record was \
                         never acknowledged and ZooKeeper drops it when it starts: import with \
                         --accept-torn-log-tail to do the same"
                    )
                } else {
                    format!("{cut}; later log files follow it, so this is damage, not a crash")
                }));
            }
            tracing::warn!(log = %path.display(), %cut, "dropping the torn last record, as ZooKeeper does");
        }
        let entries = parsed.entries;
        used.push(path.clone());
        for entry in entries.iter().filter(|e| e.header.zxid >= from) {
            if entry.header.zxid <= tree.last_zxid {
                tracing::warn!(
                    log = %path.display(),
                    zxid = format_args!("0x{:x}", entry.header.zxid),
                    "a transaction older than the one before it (ZooKeeper replays it too)"
                );
            }
            tree.apply(entry);
            transactions += 1;
        }
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        transactions,
        "replayed the logs"
    );
    let db = to_database(tree);
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "converted"
    );
    Ok((db, snapshot, used, transactions))
}

/// The newest snapshot ZooKeeper would load, read. As ZooKeeper's
/// `findNValidSnapshots`, a snapshot that is incomplete — its stream does not end with
/// the "/" marker, as one being written when ZooKeeper stopped — is passed over for
/// the one before it (with a warning). A complete one that is damaged (a checksum that
/// does not match) stops the import. No snapshot files at all: `None`.
fn newest_valid_snapshot(
    snapshots: &[(i64, PathBuf)],
) -> Result<Option<(ApacheTree, PathBuf)>, ApacheDataError> {
    let mut first_incomplete: Option<ApacheDataError> = None;
    for (zxid, path) in snapshots.iter().rev() {
        let started = Instant::now();
        let raw = std::fs::read(path).map_err(io_error(path))?;
        let bad = |reason: String| ApacheDataError::Snapshot {
            path: path.to_path_buf(),
            reason,
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let plain = match Compression::of_file_name(name).decode(raw) {
            Ok(plain) if plain.ends_with(&[0, 0, 0, 1, b'/']) => plain,
            outcome => {
                let reason = match outcome {
                    Err(e) => e,
                    Ok(_) => "cut short: it does not end with the \"/\" marker".into(),
                };
                tracing::warn!(
                    snapshot = %path.display(),
                    reason,
                    "passing over an incomplete snapshot (ZooKeeper stopped while writing \
                     it?) for the one before it, as ZooKeeper does"
                );
                first_incomplete.get_or_insert(bad(format!(
                    "{reason}, and no complete snapshot precedes it"
                )));
                continue;
            }
        };
        let snap = ApacheSnapshot::parse(&plain).map_err(|e| {
            bad(format!(
                "{e}; ZooKeeper would try the snapshot before it: to import that \
                 instead, move this file aside"
            ))
        })?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "parsed the snapshot"
        );
        let tree = ApacheTree::from_snapshot(snap, *zxid).map_err(bad)?;
        return Ok(Some((tree, path.clone())));
    }
    match first_incomplete {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Writes our snapshot for `db` into `config`'s data directory, all or nothing.
fn write_ours(
    config: &ServerConfig,
    log_index: u64,
    db: &ZkDatabase,
) -> Result<PathBuf, ApacheDataError> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let target = config.snapshot_dir();
    let tmp = data_dir.join(format!(".import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = (|| {
        std::fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
        let file = crate::replication::offline::write_initial_snapshot(&tmp, log_index, config, db)
            .map_err(io_error(&tmp))?;
        // An empty snapshots directory (a server started once, before any snapshot)
        // gives way; one with files was refused before anything was read.
        if target.is_dir() {
            std::fs::remove_dir(&target).map_err(io_error(&target))?;
        }
        std::fs::rename(&tmp, &target).map_err(io_error(&target))?;
        std::fs::File::open(data_dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(data_dir))?;
        Ok(target.join(file.file_name().unwrap_or_default()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}
