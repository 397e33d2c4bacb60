//! openraft's log storage over the segmented log, plus the vote, the purge point and
//! the committed pointer in small files.
//!
//! Invariants (openraft `RaftLogStorage`):
//! - `append` returns with the entries readable and calls back only after `sync_data`:
//!   an entry openraft counts as persisted is on disk.
//! - `save_vote` is durable (temp + fsync + rename) before it returns.
//! - `purge` records the purge point durably *before* deleting segments, so a crash
//!   in between never leaves a hole that the purge point does not explain.
//! - The committed pointer is a hint written without fsync: losing it only means fewer
//!   entries are re-applied at start-up (the rest are applied once a leader commits);
//!   a torn or garbled file reads as absent. It is rewritten in place (a length byte,
//!   then the encoding) through a file kept open: truncating and closing a file on
//!   every commit makes ext4 flush it (its `auto_da_alloc`), which the profile of a
//!   write load showed as a tenth of the server's time.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogId, StorageError, StorageIOError, Vote};

use super::TypeConfig;
use crate::storage::atomic_file::{read_if_exists, write_atomic};
use crate::storage::log::{LogSizing, SegmentedLog};

type NodeId = u64;

/// The log store; clones share the same log (openraft reads through a clone).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    dir: PathBuf,
    log: SegmentedLog,
    last_log_id: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    /// `raft-committed`, open for rewriting in place.
    committed_file: Option<std::fs::File>,
    /// How long each append (write and fsync) took goes here (`zk_fsync_seconds`).
    fsync_timer: Option<metrics::Histogram>,
    /// Told of every failed write: the member must stop ([`LogStore::on_failure`]).
    on_failure: Option<FailureHook>,
}

/// Called with what failed and why.
pub type FailureHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

impl Inner {
    /// Reports a failed write to the hook and hands the error on.
    fn fail(&self, what: &str, e: StorageIOError<NodeId>) -> StorageIOError<NodeId> {
        if let Some(hook) = &self.on_failure {
            hook(what, &e.to_string());
        }
        e
    }
}

fn io_error(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Calls `hook` whenever a write of the log, the vote or the committed hint fails.
    /// openraft stops at such an error; the hook stops the rest of the member.
    pub fn on_failure(&self, hook: FailureHook) {
        self.lock().on_failure = Some(hook);
    }

    /// Records how long each append (write and fsync) takes into `timer`.
    pub fn time_appends(&self, timer: metrics::Histogram) {
        self.lock().fsync_timer = Some(timer);
    }

    /// Opens the log in `dir` with segments of `sizing`, re-applying the recorded
    /// purge point.
    pub fn open(dir: &Path, sizing: LogSizing) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let mut log = SegmentedLog::open(dir, sizing).map_err(io_error)?;
        let vote = read_if_exists(&dir.join("raft-vote"))?
            .map(|b| rmp_serde::from_slice::<Vote<NodeId>>(&b))
            .transpose()
            .map_err(io_error)?;
        let last_purged = read_if_exists(&dir.join("raft-purged"))?
            .map(|b| rmp_serde::from_slice::<LogId<NodeId>>(&b))
            .transpose()
            .map_err(io_error)?;
        if let Some(purged) = last_purged {
            if log.first_index().is_some_and(|f| f <= purged.index) {
                log.purge(purged.index).map_err(io_error)?;
            }
        }
        let last_log_id = match log.last_index() {
            Some(index) => {
                let bytes = log
                    .read(index)
                    .map_err(io_error)?
                    .ok_or_else(|| io::Error::other("last log entry vanished"))?;
                let entry: Entry<TypeConfig> = rmp_serde::from_slice(&bytes).map_err(io_error)?;
                Some(entry.log_id)
            }
            None => last_purged,
        };
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                log,
                last_log_id,
                committed_file: None,
                fsync_timer: None,
                on_failure: None,
                last_purged,
                vote,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Index of the last entry (or the purge point), for start-up catch-up.
    pub fn last_index(&self) -> Option<u64> {
        self.lock().last_log_id.map(|l| l.index)
    }

    /// The id of the last entry in the log.
    pub fn last_log_id(&self) -> Option<openraft::LogId<NodeId>> {
        self.lock().last_log_id
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    // StorageError is openraft's type; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        let inner = self.lock();
        let raw = inner
            .log
            .read_range(start, end)
            .map_err(|e| StorageIOError::read_logs(&e))?;
        raw.into_iter()
            .map(|(_, bytes)| {
                rmp_serde::from_slice::<Entry<TypeConfig>>(&bytes)
                    .map_err(|e| StorageIOError::read_logs(&e).into())
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: inner.last_log_id.or(inner.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let bytes = rmp_serde::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_atomic(&inner.dir.join("raft-vote"), &bytes)
            .map_err(|e| inner.fail("vote write", StorageIOError::write_vote(&e)))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        use std::os::unix::fs::FileExt;
        let mut inner = self.lock();
        let bytes = rmp_serde::to_vec(&committed).map_err(|e| StorageIOError::write_logs(&e))?;
        let Ok(len) = u8::try_from(bytes.len()) else {
            return Ok(()); // Cannot happen for a log id; the hint is only skipped.
        };
        if inner.committed_file.is_none() {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(inner.dir.join("raft-committed"))
                .map_err(|e| inner.fail("commit hint", StorageIOError::write_logs(&e)))?;
            inner.committed_file = Some(file);
        }
        let mut record = Vec::with_capacity(bytes.len() + 1);
        record.push(len);
        record.extend_from_slice(&bytes);
        if let Some(file) = inner.committed_file.as_ref() {
            // A hint: no fsync (see the module docs).
            file.write_all_at(&record, 0)
                .map_err(|e| inner.fail("commit hint", StorageIOError::write_logs(&e)))?;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let inner = self.lock();
        let Ok(Some(bytes)) = read_if_exists(&inner.dir.join("raft-committed")) else {
            return Ok(None);
        };
        let committed: Option<LogId<NodeId>> = match bytes.split_first() {
            Some((&len, rest)) if usize::from(len) <= rest.len() => {
                rmp_serde::from_slice(&rest[..usize::from(len)]).unwrap_or(None)
            }
            _ => None,
        };
        // Never claim more than the log holds.
        Ok(committed.filter(|c| inner.last_log_id.is_some_and(|l| l.index >= c.index)))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Vec::new();
        let mut last = None;
        for entry in entries {
            let bytes = rmp_serde::to_vec(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            last = Some(*entry.get_log_id());
            batch.push((entry.log_id.index, bytes));
        }
        let mut inner = self.lock();
        // One write and one fsync for the whole batch (group commit).
        let started = std::time::Instant::now();
        let result = inner.log.append(&batch);
        if let Some(timer) = &inner.fsync_timer {
            timer.record(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(()) => {
                if last.is_some() {
                    inner.last_log_id = last;
                }
                drop(inner);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let io = io::Error::other(e.to_string());
                let error = inner.fail("log append", StorageIOError::write_logs(&e));
                drop(inner);
                callback.log_io_completed(Err(io));
                Err(error.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let truncated = inner.log.truncate(log_id.index);
        truncated.map_err(|e| inner.fail("log truncate", StorageIOError::write_logs(&e)))?;
        let last = match inner.log.last_index() {
            Some(index) => {
                let bytes = inner
                    .log
                    .read(index)
                    .map_err(|e| StorageIOError::read_logs(&e))?
                    .ok_or_else(|| {
                        StorageIOError::read_logs(&io::Error::other("entry vanished"))
                    })?;
                let entry: Entry<TypeConfig> =
                    rmp_serde::from_slice(&bytes).map_err(|e| StorageIOError::read_logs(&e))?;
                Some(entry.log_id)
            }
            None => inner.last_purged,
        };
        inner.last_log_id = last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let bytes = rmp_serde::to_vec(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        write_atomic(&inner.dir.join("raft-purged"), &bytes)
            .map_err(|e| inner.fail("log purge", StorageIOError::write_logs(&e)))?;
        inner.last_purged = Some(log_id);
        let purged = inner.log.purge(log_id.index);
        purged.map_err(|e| inner.fail("log purge", StorageIOError::write_logs(&e)))?;
        if inner.last_log_id.is_none_or(|l| l.index < log_id.index) {
            inner.last_log_id = Some(log_id);
        }
        Ok(())
    }
}
