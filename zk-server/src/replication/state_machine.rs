//! openraft's state machine: committed entries are applied to the [`ServerCore`]'s
//! database (zxid = log index), and snapshots of it are built, persisted and installed.
//!
//! The database lives in memory; durability comes from the log plus persisted
//! snapshots. On start-up the newest snapshot is loaded, and openraft re-applies the
//! log after it.
//!
//! Snapshot files `snapshot.<last index, 20 digits>` hold one rmp-serde
//! [`SnapshotFile`], written atomically; only the newest is kept.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::TypeConfig;
use crate::core::ServerCore;
use crate::database::ZkDatabase;
use crate::storage::atomic_file::write_atomic;
use crate::txn::zxid_of;

type NodeId = u64;
type Node = openraft::BasicNode;

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
pub struct SnapshotFile {
    /// openraft's metadata (last included log id, membership).
    pub meta: SnapshotMeta<NodeId, Node>,
    /// The database, serialised by [`ZkDatabase::to_snapshot`].
    pub database: Vec<u8>,
}

/// The state machine.
pub struct StateMachine {
    core: Arc<ServerCore>,
    dir: PathBuf,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
}

fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl StateMachine {
    /// Opens the state machine in `dir`, loading the newest snapshot into `core`.
    pub fn open(core: Arc<ServerCore>, dir: &Path) -> io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let mut sm = StateMachine {
            core,
            dir: dir.to_path_buf(),
            last_applied: None,
            membership: StoredMembership::default(),
        };
        if let Some((path, _)) = newest_snapshot(dir)? {
            let raw = std::fs::read(&path)?;
            let bytes = unseal(&path, &raw)?;
            let file: SnapshotFile = rmp_serde::from_slice(bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("snapshot {} cannot be read: {e}", path.display()),
                )
            })?;
            let db = ZkDatabase::from_snapshot(&file.database).map_err(io_error)?;
            tracing::info!(
                snapshot = %path.display(),
                zxid = format_args!("0x{:x}", db.last_zxid()),
                znodes = db.tree().node_count(),
                "loaded snapshot"
            );
            sm.core.install_database(db);
            sm.last_applied = file.meta.last_log_id;
            sm.membership = file.meta.last_membership;
        }
        Ok(sm)
    }
}

/// What a snapshot file begins with, before the CRC-32 of the rest.
const SNAPSHOT_MAGIC: &[u8; 8] = b"ZKRSSNP1";

/// A snapshot's bytes as stored: the magic, the CRC-32 (big-endian) of `bytes`, `bytes`.
pub(crate) fn seal(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&crc32fast::hash(bytes).to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The snapshot inside a stored file, checked: a file whose checksum does not match is
/// refused (the server will not start on it) rather than loaded with wrong data. A
/// file without the magic is from before checksums and is taken as it is.
pub(crate) fn unseal<'a>(path: &Path, raw: &'a [u8]) -> io::Result<&'a [u8]> {
    let Some(rest) = raw.strip_prefix(SNAPSHOT_MAGIC.as_slice()) else {
        return Ok(raw);
    };
    let corrupt = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "snapshot {} is corrupt (checksum mismatch); not starting on it: restore the \
                 data directory from a backup (in an ensemble, empty this member's data \
                 directory and the leader sends it a snapshot)",
                path.display()
            ),
        )
    };
    let (crc, bytes) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
    if crc32fast::hash(bytes) != u32::from_be_bytes(*crc) {
        return Err(corrupt());
    }
    Ok(bytes)
}

/// The newest `snapshot.*` file and its index.
pub(crate) fn newest_snapshot(dir: &Path) -> io::Result<Option<(PathBuf, u64)>> {
    let mut newest: Option<(PathBuf, u64)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix("snapshot."))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if newest.as_ref().is_none_or(|(_, i)| index > *i) {
            newest = Some((entry.path(), index));
        }
    }
    Ok(newest)
}

/// Writes a snapshot file atomically and deletes every older one.
fn persist_snapshot(dir: &Path, index: u64, bytes: &[u8]) -> io::Result<()> {
    let path = dir.join(format!("snapshot.{index:020}"));
    write_atomic(&path, &seal(bytes))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let older = name
            .to_str()
            .and_then(|n| n.strip_prefix("snapshot."))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|i| i < index);
        if older {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Builds a snapshot from a copy of the database taken when it was asked for.
pub struct SnapshotBuilder {
    /// How long writing it took goes here (`zk_snapshot_seconds`).
    timer: metrics::Histogram,
    dir: PathBuf,
    db: ZkDatabase,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    /// Told if writing the snapshot fails (the member then stops).
    core: Arc<ServerCore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let started = std::time::Instant::now();
        let database = self
            .db
            .to_snapshot()
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let index = self.last_applied.map_or(0, |l| l.index);
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{index}-{}", uuid::Uuid::new_v4()),
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            database,
        };
        let bytes =
            rmp_serde::to_vec(&file).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let dir = self.dir.clone();
        let to_write = bytes.clone();
        let written = tokio::task::spawn_blocking(move || persist_snapshot(&dir, index, &to_write))
            .await
            .map_err(io_error)
            .and_then(|r| r);
        if let Err(e) = written {
            self.core.storage_failure("snapshot write", &e);
            return Err(StorageIOError::write_snapshot(None, &e).into());
        }
        self.timer.record(started.elapsed().as_secs_f64());
        tracing::info!(index, bytes = bytes.len(), "snapshot written");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            match &entry.payload {
                EntryPayload::Normal(batch) => {
                    for (position, txn) in batch.0.iter().enumerate() {
                        self.core.apply_committed(zxid_of(index, position), txn);
                    }
                }
                EntryPayload::Blank => self.core.advance_zxid(zxid_of(index, 0)),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    self.core.advance_zxid(zxid_of(index, 0));
                }
            }
            self.last_applied = Some(entry.log_id);
            replies.push(());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            timer: self.core.metrics.snapshot.clone(),
            dir: self.dir.clone(),
            db: self.core.db().clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            core: self.core.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = rmp_serde::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let db = ZkDatabase::from_snapshot(&file.database)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let index = meta.last_log_id.map_or(0, |l| l.index);
        tracing::info!(
            zxid = format_args!("0x{index:x}"),
            bytes = bytes.len(),
            "installing a snapshot from the leader"
        );
        if let Err(e) = persist_snapshot(&self.dir, index, &bytes) {
            self.core.storage_failure("snapshot install", &e);
            return Err(StorageIOError::write_snapshot(Some(meta.signature()), &e).into());
        }
        self.core.install_database(db);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let Some((path, _)) =
            newest_snapshot(&self.dir).map_err(|e| StorageIOError::read_snapshot(None, &e))?
        else {
            return Ok(None);
        };
        let raw = std::fs::read(&path).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let bytes = unseal(&path, &raw)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
            .to_vec();
        let file: SnapshotFile =
            rmp_serde::from_slice(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
