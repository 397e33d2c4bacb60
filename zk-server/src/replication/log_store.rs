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
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftLogId, StorageError, StorageIOError, Vote,
};

use super::TypeConfig;
use crate::storage::atomic_file::{read_if_exists, write_atomic};
use crate::storage::log::{LogSizing, PendingSync, SegmentedLog};

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
    /// Where failures and sync times are reported (shared with the flusher).
    hooks: Arc<Hooks>,
    /// The flusher thread's queue ([`flush_loop`]).
    flusher: std::sync::mpsc::Sender<Flush>,
}

/// What the appends and the flusher report to.
struct Hooks {
    /// Told of every failed write: the member must stop ([`LogStore::on_failure`]).
    on_failure: Mutex<Option<FailureHook>>,
    /// How long each sync of appended entries took (`zk_fsync_seconds`).
    fsync_timer: Mutex<Option<metrics::Histogram>>,
    /// Syncs of appended entries made so far.
    syncs: std::sync::atomic::AtomicU64,
    /// The member whose own writes are reported durable ([`LogStore::watch_own_writes`]).
    writer: std::sync::OnceLock<u64>,
    /// The highest sequence number among `writer`'s writes synced so far.
    own_writes_synced: tokio::sync::watch::Sender<u64>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            on_failure: Mutex::new(None),
            fsync_timer: Mutex::new(None),
            syncs: std::sync::atomic::AtomicU64::new(0),
            writer: std::sync::OnceLock::new(),
            own_writes_synced: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Hooks {
    fn fail(&self, what: &str, error: &str) {
        let hook = self.on_failure.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hook) = hook.as_ref() {
            hook(what, error);
        }
    }
}

/// Work for the flusher thread, in append order.
enum Flush {
    /// Entries written; durable once `sync` has run, then `callback` is told.
    Appended {
        sync: Option<PendingSync>,
        done: Box<dyn FnOnce(io::Result<()>) + Send>,
    },
    /// Told once everything queued before it is synced and reported.
    Barrier(std::sync::mpsc::SyncSender<()>),
}

/// The flusher: takes everything appended since its last sync, syncs each segment file
/// written to once, and reports those appends flushed to openraft (group commit: the
/// appends that arrive while a sync runs share the next one, as ZooKeeper's
/// `SyncRequestProcessor` batches its fsyncs). Runs until the log store is dropped.
fn flush_loop(queue: std::sync::mpsc::Receiver<Flush>, hooks: Arc<Hooks>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while let Ok(more) = queue.try_recv() {
            batch.push(more);
        }
        let started = std::time::Instant::now();
        let mut failed: Option<String> = None;
        let mut synced: Vec<PathBuf> = Vec::new();
        // The newest append to each file first: one sync covers all appends before it.
        for item in batch.iter().rev() {
            if let Flush::Appended {
                sync: Some(sync), ..
            } = item
            {
                if !synced.iter().any(|p| p == sync.path()) {
                    if let Err(e) = sync.sync() {
                        failed.get_or_insert(e.to_string());
                    }
                    hooks
                        .syncs
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    synced.push(sync.path().to_path_buf());
                }
            }
        }
        if !synced.is_empty() {
            let timer = hooks.fsync_timer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(timer) = timer.as_ref() {
                timer.record(started.elapsed().as_secs_f64());
            }
        }
        if let Some(error) = &failed {
            hooks.fail("log append", error);
        }
        for item in batch {
            match item {
                Flush::Appended { done, .. } => {
                    let outcome = match &failed {
                        None => Ok(()),
                        Some(error) => Err(io::Error::other(error.clone())),
                    };
                    done(outcome);
                }
                Flush::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// Called with what failed and why.
pub type FailureHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

impl Inner {
    /// Reports a failed write to the hook and hands the error on.
    fn fail(&self, what: &str, e: StorageIOError<NodeId>) -> StorageIOError<NodeId> {
        self.hooks.fail(what, &e.to_string());
        e
    }

    /// Waits until every append queued for the flusher is synced and reported (before
    /// the log is cut: an append is reported before anything can remove it).
    fn wait_flushed(&self) {
        let (done, flushed) = std::sync::mpsc::sync_channel(1);
        if self.flusher.send(Flush::Barrier(done)).is_ok() {
            let _ = flushed.recv();
        }
    }
}

fn io_error(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Calls `hook` whenever a write of the log, the vote or the committed hint fails.
    /// openraft stops at such an error; the hook stops the rest of the member.
    pub fn on_failure(&self, hook: FailureHook) {
        let hooks = self.lock().hooks.clone();
        *hooks.on_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Reports, from now on, the highest sequence number (`Origin::seq`) among the
    /// writes of member `writer` (this member) that are written and synced: the write
    /// path sends its next batch once the last one is there (see
    /// `write_path::ENTRIES_IN_FLIGHT`).
    pub fn watch_own_writes(&self, writer: u64) -> tokio::sync::watch::Receiver<u64> {
        let hooks = self.lock().hooks.clone();
        let _ = hooks.writer.set(writer); // A member's id does not change.
        hooks.own_writes_synced.subscribe()
    }

    /// Records how long each append (write and fsync) takes into `timer`.
    pub fn time_appends(&self, timer: metrics::Histogram) {
        let hooks = self.lock().hooks.clone();
        *hooks.fsync_timer.lock().unwrap_or_else(|e| e.into_inner()) = Some(timer);
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
        let hooks = Arc::new(Hooks::default());
        let (flusher, queue) = std::sync::mpsc::channel();
        let flushing = hooks.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || flush_loop(queue, flushing))?;
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                log,
                last_log_id,
                committed_file: None,
                hooks,
                flusher,
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
        // The last write of each member in these entries; this member's is reported
        // synced once they are (numbers rise within each member's writes).
        let mut written: Vec<crate::txn::Origin> = Vec::new();
        for entry in entries {
            if let EntryPayload::Normal(txns) = &entry.payload {
                for txn in txns.0.iter() {
                    match written.iter_mut().find(|o| o.server == txn.origin.server) {
                        Some(o) => o.seq = o.seq.max(txn.origin.seq),
                        None => written.push(txn.origin),
                    }
                }
            }
            let bytes = rmp_serde::to_vec(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            last = Some(*entry.get_log_id());
            batch.push((entry.log_id.index, bytes));
        }
        let mut inner = self.lock();
        // Written now; synced by the flusher, which reports it flushed (group commit:
        // one sync for every append that gathered meanwhile).
        match inner.log.append_unsynced(&batch) {
            Ok(sync) => {
                if last.is_some() {
                    inner.last_log_id = last;
                }
                let hooks = inner.hooks.clone();
                let own_last = hooks
                    .writer
                    .get()
                    .and_then(|me| written.iter().find(|o| o.server == *me))
                    .map(|o| o.seq);
                let done: Box<dyn FnOnce(io::Result<()>) + Send> = Box::new(move |outcome| {
                    if let (Ok(()), Some(seq)) = (&outcome, own_last) {
                        hooks.own_writes_synced.send_if_modified(|synced| {
                            let newer = seq > *synced;
                            *synced = (*synced).max(seq);
                            newer
                        });
                    }
                    callback.log_io_completed(outcome)
                });
                if let Err(std::sync::mpsc::SendError(Flush::Appended { sync, done })) =
                    inner.flusher.send(Flush::Appended { sync, done })
                {
                    // No flusher (it cannot stop while the store lives): sync here.
                    let outcome = sync.map_or(Ok(()), |s| s.sync());
                    done(outcome.map_err(io::Error::other));
                }
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
        inner.wait_flushed();
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
        inner.wait_flushed();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Appends queued while the flusher was busy share one sync, and each is reported
    /// in append order; a barrier is answered after them.
    #[test]
    fn appends_gathered_during_a_sync_share_the_next_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = SegmentedLog::open(dir.path(), LogSizing::default()).expect("open");
        let (queue, flushing) = std::sync::mpsc::channel();
        let reported = Arc::new(Mutex::new(Vec::new()));
        for index in 1..=5u64 {
            let sync = log
                .append_unsynced(&[(index, vec![7; 10])])
                .expect("append");
            let reported = reported.clone();
            let done: Box<dyn FnOnce(io::Result<()>) + Send> = Box::new(move |outcome| {
                reported
                    .lock()
                    .expect("lock")
                    .push((index, outcome.is_ok()));
            });
            queue.send(Flush::Appended { sync, done }).expect("queued");
        }
        let (barrier, passed) = std::sync::mpsc::sync_channel(1);
        queue.send(Flush::Barrier(barrier)).expect("queued");
        drop(queue);
        let hooks = Arc::new(Hooks::default());
        // Everything was queued before the flusher started: one batch.
        flush_loop(flushing, hooks.clone());
        assert_eq!(
            hooks.syncs.load(Ordering::Relaxed),
            1,
            "one sync for five appends"
        );
        assert_eq!(
            *reported.lock().expect("lock"),
            (1..=5).map(|i| (i, true)).collect::<Vec<_>>()
        );
        assert!(passed.try_recv().is_ok(), "the barrier was answered");
        drop(log);
        // And what was reported flushed is there on reopening.
        let reopened = SegmentedLog::open(dir.path(), LogSizing::default()).expect("reopen");
        assert_eq!(reopened.last_index(), Some(5));
    }
}
