//! The data directory read and written with no server running: the first snapshot
//! of a member whose data was imported from Apache ZooKeeper, and the state a stopped
//! member holds (its newest snapshot plus the log after it), for exporting it.
//!
//! An imported member starts from a snapshot alone: openraft finds its log behind
//! the snapshot and records the purge point itself on the first start
//! (`get_initial_state`'s "clean the hole"), so the snapshot file is the only thing
//! written, and writing it is the commit point of an import.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership};
use openraft::{SnapshotMeta, StoredMembership};

use super::ensemble::EnsembleSpec;
use super::state_machine::{newest_snapshot, seal, unseal, SnapshotFile};
use super::{TypeConfig, STANDALONE_NODE_ID};
use crate::config::ServerConfig;
use crate::database::ZkDatabase;
use crate::storage::log::SegmentedLog;
use crate::txn::zxid_of;

/// The voters `config` describes: this standalone server, or zoo.cfg's participants.
fn voters(config: &ServerConfig) -> io::Result<BTreeMap<u64, BasicNode>> {
    if config.peers.is_empty() {
        let mut members = BTreeMap::new();
        members.insert(STANDALONE_NODE_ID, BasicNode::new("standalone"));
        return Ok(members);
    }
    EnsembleSpec::from_config(config)
        .map(|spec| spec.voters)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Writes, into `dir`, the snapshot a member configured by `config` starts from:
/// `db` as applied up to log index `index` (term 0: any election comes after it),
/// with the ensemble's voters as its membership. Returns the file's path.
pub fn write_initial_snapshot(
    dir: &Path,
    index: u64,
    config: &ServerConfig,
    db: &ZkDatabase,
) -> io::Result<PathBuf> {
    let members = voters(config)?;
    let leader = *members.keys().next().unwrap_or(&STANDALONE_NODE_ID);
    let log_id = LogId::new(CommittedLeaderId::new(0, leader), index);
    let ids: BTreeSet<u64> = members.keys().copied().collect();
    let membership = Membership::new(vec![ids], members);
    let file = SnapshotFile {
        meta: SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(Some(log_id), membership),
            snapshot_id: format!("{index}-imported"),
        },
        database: db.to_snapshot().map_err(io::Error::other)?,
    };
    let bytes = rmp_serde::to_vec(&file).map_err(io::Error::other)?;
    let path = dir.join(format!("snapshot.{index:020}"));
    crate::storage::atomic_file::write_atomic(&path, &seal(&bytes))?;
    Ok(path)
}

/// What a stopped member holds: its newest snapshot with every entry of its log
/// after it applied (the whole log, as a restart would apply it once a leader
/// commits it). `None` when the data directory holds neither.
pub fn load_database(config: &ServerConfig) -> io::Result<Option<ZkDatabase>> {
    let snapshot_dir = config.snapshot_dir();
    let mut db = None;
    let mut applied = 0u64;
    if snapshot_dir.is_dir() {
        if let Some((path, _)) = newest_snapshot(&snapshot_dir)? {
            let raw = std::fs::read(&path)?;
            let file: SnapshotFile = rmp_serde::from_slice(unseal(&path, &raw)?).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("snapshot {} cannot be read: {e}", path.display()),
                )
            })?;
            db = Some(ZkDatabase::from_snapshot(&file.database).map_err(io::Error::other)?);
            applied = file.meta.last_log_id.map_or(0, |l| l.index);
        }
    }
    let log_dir = config.log_store_dir();
    if log_dir.is_dir() {
        let log = SegmentedLog::open(&log_dir, config.log_sizing())
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(last) = log.last_index() {
            let db = db.get_or_insert_with(ZkDatabase::new);
            let entries = log
                .read_range(applied + 1, last + 1)
                .map_err(|e| io::Error::other(e.to_string()))?;
            for (index, bytes) in entries {
                let entry: Entry<TypeConfig> = rmp_serde::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "log entry {index} in {} cannot be read: {e}",
                            log_dir.display()
                        ),
                    )
                })?;
                match entry.payload {
                    EntryPayload::Normal(batch) => {
                        for (position, txn) in batch.0.iter().enumerate() {
                            db.apply(zxid_of(index, position), txn);
                        }
                    }
                    EntryPayload::Blank | EntryPayload::Membership(_) => {
                        db.advance_zxid(zxid_of(index, 0))
                    }
                }
            }
        }
    }
    Ok(db)
}
