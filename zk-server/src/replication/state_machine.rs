//! openraft's state machine: committed entries are applied to the [`ServerCore`]'s
//! database (zxid = log index), and snapshots of it are built, persisted and installed.
//!
//! The database lives in memory; durability comes from the log plus persisted
//! snapshots. On start-up the newest snapshot is loaded, and openraft re-applies the
//! log after it.
//!
//! Snapshot files `snapshot.<last index, 20 digits>` hold one rmp-serde
//! [`SnapshotFile`], written atomically; only the newest is kept. The database inside
//! is in the encoding of `database::snapshot` (version 2 written, version 1 read), as
//! a msgpack `bin` (files sealed `ZKRSSNP2`) or, in files sealed `ZKRSSNP1`, as an
//! array of byte values.

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
    #[serde(with = "database_bytes")]
    pub database: Vec<u8>,
}

/// The database's bytes written as a msgpack `bin`; read from a `bin` or, as version-1
/// snapshots wrote them, an array of byte values.
mod database_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes `bytes` as one `bin`.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    /// Reads a `bin` or an array of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesOrArray)
    }

    struct BytesOrArray;

    impl<'de> Visitor<'de> for BytesOrArray {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("the database's bytes")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(byte) = seq.next_element::<u8>()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
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
            let (file, db) = read_snapshot_file(&path, &raw)?;
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
const SNAPSHOT_MAGIC: &[u8; 8] = b"ZKRSSNP2";

/// The magic of version-1 snapshot files (read, never written): the same seal.
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"ZKRSSNP1";

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
/// file without either magic is from before checksums and is taken as it is.
pub(crate) fn unseal<'a>(path: &Path, raw: &'a [u8]) -> io::Result<&'a [u8]> {
    let Some(rest) = raw
        .strip_prefix(SNAPSHOT_MAGIC.as_slice())
        .or_else(|| raw.strip_prefix(SNAPSHOT_MAGIC_V1.as_slice()))
    else {
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

/// A stored snapshot file's contents, `raw` as read from `path` (named in errors):
/// checked against its checksum ([`unseal`]), decoded, and its database restored.
/// Damage is an `InvalidData` error, never a panic or a database made of it.
pub(crate) fn read_snapshot_file(
    path: &Path,
    raw: &[u8],
) -> io::Result<(SnapshotFile, ZkDatabase)> {
    let bytes = unseal(path, raw)?;
    let file: SnapshotFile = rmp_serde::from_slice(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot {} cannot be read: {e}", path.display()),
        )
    })?;
    let db = ZkDatabase::from_snapshot(&file.database).map_err(io_error)?;
    Ok((file, db))
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

/// Gives the heap pages left free after a snapshot (its encoding, a database
/// replaced) back to the system: glibc keeps them otherwise, and the resident set
/// would count them.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns the allocator's own free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
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

/// Builds a snapshot from the database as it was when it was asked for (encoded
/// then, under the read lock: no copy of the tree is made).
pub struct SnapshotBuilder {
    /// How long writing it took goes here (`zk_snapshot_seconds`).
    timer: metrics::Histogram,
    dir: PathBuf,
    /// The database's encoding ([`ZkDatabase::to_snapshot`]), or why it failed.
    database: Result<Vec<u8>, crate::database::SnapshotError>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    /// Told if writing the snapshot fails (the member then stops).
    core: Arc<ServerCore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let started = std::time::Instant::now();
        let database = std::mem::replace(&mut self.database, Ok(Vec::new()))
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
        drop(file);
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            let written = persist_snapshot(&dir, index, &bytes).map(|()| bytes);
            release_free_memory();
            written
        })
        .await
        .map_err(io_error)
        .and_then(|r| r);
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                self.core.storage_failure("snapshot write", &e);
                return Err(StorageIOError::write_snapshot(None, &e).into());
            }
        };
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
            database: self.core.db().to_snapshot(),
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
        drop(bytes);
        release_free_memory();
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use openraft::CommittedLeaderId;
    use zk_proto::{Acl, CreateMode, CreateRequest, OpCode};

    use super::*;
    use crate::config::ServerConfig;
    use crate::txn::{Origin, Txn, TxnOp};

    /// A database with a session and a few znodes.
    fn sample() -> ZkDatabase {
        let mut db = ZkDatabase::new();
        let ops = [
            TxnOp::CreateSession {
                timeout: 30_000,
                passwd: Bytes::from_static(&[1; 16]),
            },
            create("/a", CreateMode::Persistent),
            create("/a/e", CreateMode::Ephemeral),
            create("/a/seq-", CreateMode::PersistentSequential),
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let origin = Origin {
                server: 1,
                seq: i as u64 + 1,
            };
            let txn = Txn::for_test(origin, 0x100_0000_0000_0001, 1, 1_000, op);
            assert!(db.apply(i as i64 + 1, &txn).result.is_ok());
        }
        db
    }

    fn create(path: &str, mode: CreateMode) -> TxnOp {
        TxnOp::Create {
            opcode: OpCode::Create2,
            request: CreateRequest {
                path: path.into(),
                data: Some(Bytes::from_static(b"data")),
                acl: Acl::open_unsafe(),
                flags: mode.code(),
            },
        }
    }

    fn meta(index: u64) -> SnapshotMeta<NodeId, Node> {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("{index}-test"),
        }
    }

    /// A snapshot as version 1 sent it: the database as one rmp-serde value, inside
    /// a file record that wrote its bytes as an array of byte values.
    fn v1_snapshot_file(db: &ZkDatabase, index: u64) -> Vec<u8> {
        #[derive(Serialize)]
        struct V1File {
            meta: SnapshotMeta<NodeId, Node>,
            database: Vec<u8>,
        }
        let file = V1File {
            meta: meta(index),
            database: db.to_v1_snapshot(),
        };
        rmp_serde::to_vec(&file).unwrap()
    }

    #[test]
    fn a_version_1_snapshot_file_loads_at_start_up() {
        let db = sample();
        let dir = tempfile::tempdir().unwrap();
        let bytes = v1_snapshot_file(&db, 4);
        let mut sealed = b"ZKRSSNP1".to_vec();
        sealed.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
        sealed.extend_from_slice(&bytes);
        std::fs::write(dir.path().join(format!("snapshot.{:020}", 4)), sealed).unwrap();
        let core = ServerCore::new(ServerConfig::default(), 0, ZkDatabase::new());
        let sm = StateMachine::open(core.clone(), dir.path()).unwrap();
        assert_eq!(*core.db(), db);
        assert_eq!(sm.last_applied.map(|l| l.index), Some(4));
    }

    #[tokio::test]
    async fn a_snapshot_from_a_leader_installs_in_either_version() {
        let db = sample();
        for (version, bytes) in [
            (1, v1_snapshot_file(&db, 4)),
            (
                2,
                rmp_serde::to_vec(&SnapshotFile {
                    meta: meta(4),
                    database: db.to_snapshot().unwrap(),
                })
                .unwrap(),
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let core = ServerCore::new(ServerConfig::default(), 0, ZkDatabase::new());
            let mut sm = StateMachine::open(core.clone(), dir.path()).unwrap();
            sm.install_snapshot(&meta(4), Box::new(Cursor::new(bytes)))
                .await
                .unwrap();
            assert_eq!(*core.db(), db, "version {version}");
            // What it persisted loads again.
            let again = ServerCore::new(ServerConfig::default(), 0, ZkDatabase::new());
            StateMachine::open(again.clone(), dir.path()).unwrap();
            assert_eq!(*again.db(), db, "version {version}, reloaded");
        }
    }

    #[tokio::test]
    async fn a_built_snapshot_is_sealed_as_version_2_and_loads() {
        let db = sample();
        let dir = tempfile::tempdir().unwrap();
        let core = ServerCore::new(ServerConfig::default(), 0, db.clone());
        let mut sm = StateMachine::open(core.clone(), dir.path()).unwrap();
        sm.last_applied = meta(4).last_log_id;
        let mut builder = sm.get_snapshot_builder().await;
        builder.build_snapshot().await.unwrap();
        let (path, index) = newest_snapshot(dir.path()).unwrap().unwrap();
        assert_eq!(index, 4);
        let raw = std::fs::read(&path).unwrap();
        assert!(raw.starts_with(b"ZKRSSNP2"));
        let file: SnapshotFile = rmp_serde::from_slice(unseal(&path, &raw).unwrap()).unwrap();
        assert!(file.database.starts_with(b"ZKRSDB02"));
        let again = ServerCore::new(ServerConfig::default(), 0, ZkDatabase::new());
        StateMachine::open(again.clone(), dir.path()).unwrap();
        assert_eq!(*again.db(), db);
    }
}
