//! A segmented, append-only log of opaque entries keyed by a contiguous index.
//!
//! # On disk
//!
//! Segment files `log.<first index, 20 digits>` hold records
//! `[payload length: u32][crc32: u32][index: u64][payload]` (big-endian); the CRC
//! covers the index and the payload. A segment is closed once it passes its size limit
//! and a new one begins.
//!
//! The active segment is padded with zeros ahead of its appends, in steps of
//! [`LogSizing::preallocate_bytes`] (ZooKeeper's `preAllocSize`): an append then
//! overwrites blocks that already exist, so its `sync_data` flushes data only instead
//! of journaling the file's growth each time. The zeros are written, not merely
//! `fallocate`d, as ext4 also journals the conversion of unwritten extents. An
//! all-zero header never parses as a record (the CRC of index 0 with no payload is not
//! zero), so the log ends at the first record that does not parse when everything
//! after it is zero; anything else there is a torn write (or corruption).
//!
//! Padding a whole segment takes tens of milliseconds, too long for the append that
//! rolls over to wait for. So once the active segment is half full, a background
//! thread prepares the next one: it writes the zeros to a file named
//! `log.next-<pid>-<n>` (not a number after `log.`, so never read as a segment), a
//! megabyte at a time, each written back before the next (an append's fsync waits
//! for whatever is in flight; it must not find 64 MiB there), then syncs the file and
//! the directory. The append that rolls renames that file to
//! the new segment's name, which costs a directory sync, as creating the file did
//! before. If the file is not ready yet, the roll creates and pads the segment inline
//! as before (it never waits for the thread), and the file serves the next roll.
//! Opening the log deletes leftover prepared files: they never hold entries.
//!
//! # Invariants
//!
//! - [`SegmentedLog::append`] returns only after the records are written **and**
//!   `sync_data` has returned: an acknowledged entry survives a crash. One call is one
//!   fsync however many entries it carries (group commit).
//! - Indices are contiguous: entry `n + 1` follows entry `n` (an empty log accepts any
//!   first index, as after a snapshot install).
//! - Every byte of a segment file past its last record is zero (the padding); an
//!   append writes its records at the logical end, overwriting zeros. A prepared file
//!   is all zeros and is complete and synced before it is renamed to a segment's name.
//! - Recovery reads every segment; a bad record followed by nothing but zeros is the
//!   end of the segment. Otherwise a bad record in the *last* segment is a torn write
//!   from a crash mid-append and is cut off with everything after it (it was never
//!   acknowledged); a bad record anywhere else is corruption of acknowledged data and
//!   opening fails rather than silently losing it.
//! - [`SegmentedLog::truncate`] and [`SegmentedLog::purge`] are durable when they return.
//!   Purge deletes whole segments only; entries it hides inside a surviving segment
//!   reappear on reopen, so the owner persists its purge point and purges again after
//!   opening.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::disk::DiskFaults;

/// Header bytes before each payload.
const HEADER: usize = 4 + 4 + 8;
/// Default size at which a segment is closed.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default step of the zero padding ahead of the appends: ZooKeeper's `preAllocSize`
/// (64 MiB).
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest single write of zeros (padding, truncation).
const ZERO_CHUNK: u64 = 1024 * 1024;
/// Largest payload accepted (far above any request ZooKeeper allows).
const MAX_PAYLOAD: usize = 256 * 1024 * 1024;
/// Start of the name of a file prepared as the next segment. After `log.` comes
/// something that is not a number, so the file never reads as a segment.
const PREPARED_PREFIX: &str = "log.next-";
/// The next segment is prepared once the active one holds this fraction (1/n) of its
/// limit.
const PREPARE_WHEN_FULL_BY: u64 = 2;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file system failed.
    #[error("log I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Acknowledged data is damaged; the log refuses to open.
    #[error("log corrupted in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An append that would leave a gap or rewrite history.
    #[error("entry {got} does not follow the last entry {last}")]
    NotContiguous {
        /// The index given.
        got: u64,
        /// The last index in the log.
        last: u64,
    },
}

/// How large the segment files grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSizing {
    /// Size at which a segment is closed and the next one begins.
    pub segment_bytes: u64,
    /// The active segment is zero-filled ahead of the appends in steps of this many
    /// bytes (never past `segment_bytes`, so closed segments carry little padding);
    /// 0 grows the file with each append.
    pub preallocate_bytes: u64,
}

impl Default for LogSizing {
    /// 64 MiB segments, padded 64 MiB at a time (that is, once).
    fn default() -> Self {
        LogSizing {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        }
    }
}

impl LogSizing {
    /// How long a segment file should be for its records to end at `end`: the next
    /// step of padding, not past the segment limit.
    fn padded_length(&self, end: u64) -> u64 {
        if self.preallocate_bytes == 0 {
            return end;
        }
        let stepped = end.div_ceil(self.preallocate_bytes) * self.preallocate_bytes;
        stepped.min(end.max(self.segment_bytes))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One segment file and where its records are.
/// The sync that makes appends to one segment durable ([`SegmentedLog::append_unsynced`]).
#[derive(Debug)]
pub struct PendingSync {
    file: File,
    path: PathBuf,
    faults: Option<Arc<DiskFaults>>,
}

impl PendingSync {
    /// Syncs the segment's data: everything appended to it so far is durable.
    pub fn sync(&self) -> Result<(), LogError> {
        if let Some(faults) = &self.faults {
            faults.check_fsync().map_err(io_err(&self.path))?;
        }
        self.file.sync_data().map_err(io_err(&self.path))
    }

    /// The segment file it syncs.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    file: File,
    /// (offset of the record, payload length) per entry, in index order.
    records: Vec<(u64, u32)>,
    /// Where the last record ends (the logical end).
    size: u64,
    /// Length of the file: `size` plus the zero padding after it.
    allocated: u64,
}

impl Segment {
    fn last_index(&self) -> Option<u64> {
        (!self.records.is_empty()).then(|| self.first_index + self.records.len() as u64 - 1)
    }
}

/// The log.
#[derive(Debug)]
pub struct SegmentedLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    sizing: LogSizing,
    /// Entries below this were purged (they may linger in a shared segment).
    first_visible: u64,
    /// Faults a test injected for this directory ([`DiskFaults`]).
    faults: Option<Arc<DiskFaults>>,
    /// The next segment file, being prepared or ready.
    prepared: Option<Prepared>,
    /// How many times an append padded the file itself (padding not prepared ahead).
    inline_pads: u64,
}

/// A file being zero-filled in the background to become the next segment.
#[derive(Debug)]
struct Prepared {
    path: PathBuf,
    /// Set when the log is dropped: the thread stops after its current chunk.
    cancel: Arc<AtomicBool>,
    /// The file and its length once it is filled and synced. The thread deletes the
    /// file itself when it fails or is cancelled.
    thread: JoinHandle<io::Result<(File, u64)>>,
}

impl SegmentedLog {
    /// Opens (creating if needed) the log in `dir`, recovering from a torn tail.
    pub fn open(dir: &Path, sizing: LogSizing) -> Result<SegmentedLog, LogError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut firsts: Vec<(u64, PathBuf)> = Vec::new();
        let mut removed = false;
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.starts_with(PREPARED_PREFIX))
            {
                // Zeros prepared for a roll that never came (a crash, or a log
                // dropped mid-preparation).
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err(&path))?;
                removed = true;
                continue;
            }
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_prefix("log."))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            firsts.push((first, entry.path()));
        }
        firsts.sort();
        let count = firsts.len();
        let mut segments: Vec<Segment> = Vec::with_capacity(count);
        for (i, (first, path)) in firsts.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let segment = recover_segment(first, path, is_last)?;
            if let Some(prev) = segments.last() {
                let expected = prev.last_index().map_or(prev.first_index, |l| l + 1);
                if segment.first_index != expected {
                    return Err(LogError::Corrupt {
                        path: segment.path.clone(),
                        offset: 0,
                        reason: format!(
                            "segment starts at {} but {expected} was expected",
                            segment.first_index
                        ),
                    });
                }
            }
            segments.push(segment);
        }
        // Drop empty trailing segments left by a crash right after a roll, the only
        // segment included: they would pin a first index that the next append may
        // not follow (its entries would then read as misplaced on reopen).
        while segments.last().is_some_and(|s| s.records.is_empty()) {
            if let Some(s) = segments.pop() {
                fs::remove_file(&s.path).map_err(io_err(&s.path))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        let first_visible = segments.first().map_or(0, |s| s.first_index);
        Ok(SegmentedLog {
            dir: dir.to_path_buf(),
            segments,
            sizing,
            first_visible,
            faults: DiskFaults::lookup(dir),
            prepared: None,
            inline_pads: 0,
        })
    }

    /// Index of the first entry held, if any.
    pub fn first_index(&self) -> Option<u64> {
        self.last_index()?;
        Some(self.first_visible)
    }

    /// Index of the last entry held, if any.
    pub fn last_index(&self) -> Option<u64> {
        let last = self.segments.iter().rev().find_map(Segment::last_index)?;
        (last >= self.first_visible).then_some(last)
    }

    /// Appends entries `(index, payload)` and makes them durable before returning.
    pub fn append(&mut self, entries: &[(u64, Vec<u8>)]) -> Result<(), LogError> {
        match self.append_unsynced(entries)? {
            Some(pending) => pending.sync(),
            None => Ok(()),
        }
    }

    /// Appends entries `(index, payload)` without waiting for them to be durable: they
    /// are once the returned [`PendingSync`] has synced (earlier segments, closed by a
    /// roll, are synced here). Whoever syncs one file covers every append to it before
    /// the sync, so many appends may share one sync (group commit).
    pub fn append_unsynced(
        &mut self,
        entries: &[(u64, Vec<u8>)],
    ) -> Result<Option<PendingSync>, LogError> {
        let mut expected = self.last_index().map(|l| l + 1);
        let mut batch: Vec<u8> = Vec::new();
        let mut pending: Vec<(u64, u32)> = Vec::new();
        for (index, payload) in entries {
            if let Some(exp) = expected {
                if *index != exp {
                    return Err(LogError::NotContiguous {
                        got: *index,
                        last: exp - 1,
                    });
                }
            }
            if self.segments.is_empty() || self.needs_roll(batch.len()) {
                self.flush_batch(&mut batch, &mut pending)?;
                self.start_segment(*index)?;
            }
            let offset = self.active_size() + batch.len() as u64;
            encode_record(&mut batch, *index, payload);
            pending.push((offset, payload.len() as u32));
            expected = Some(index + 1);
        }
        self.flush_batch(&mut batch, &mut pending)?;
        let pending = match self.segments.last() {
            Some(seg) => Some(PendingSync {
                file: seg.file.try_clone().map_err(io_err(&seg.path))?,
                path: seg.path.clone(),
                faults: self.faults.clone(),
            }),
            None => None,
        };
        self.prepare_next_if_due();
        Ok(pending)
    }

    /// Length of a prepared segment file: the first step of padding a segment gets.
    fn prepared_length(&self) -> u64 {
        self.sizing.preallocate_bytes.min(self.sizing.segment_bytes)
    }

    /// Starts preparing the next segment file once the active segment is half full
    /// and none is prepared or under way.
    fn prepare_next_if_due(&mut self) {
        let len = self.prepared_length();
        if len == 0
            || self.prepared.is_some()
            || self.active_size() < self.sizing.segment_bytes / PREPARE_WHEN_FULL_BY
        {
            return;
        }
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{PREPARED_PREFIX}{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        let cancel = Arc::new(AtomicBool::new(false));
        let job = {
            let (path, dir, cancel) = (path.clone(), self.dir.clone(), cancel.clone());
            let faults = self.faults.clone();
            move || prepare_file(&path, &dir, len, &cancel, faults.as_deref()).map(|f| (f, len))
        };
        match std::thread::Builder::new()
            .name("log-prepare".into())
            .spawn(job)
        {
            Ok(thread) => {
                self.prepared = Some(Prepared {
                    path,
                    cancel,
                    thread,
                })
            }
            // The rolls pad inline, as without preparation.
            Err(e) => tracing::warn!(error = %e, "cannot start preparing the next log segment"),
        }
    }

    /// The prepared file renamed to `path`, with its length, if it is ready; `None`
    /// (nothing waited for, nothing renamed) if it is not.
    fn take_prepared(&mut self, path: &Path) -> Option<(File, u64)> {
        if !self.prepared.as_ref()?.thread.is_finished() {
            return None;
        }
        let prepared = self.prepared.take()?;
        let (file, len) = match prepared.thread.join() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "preparing the next log segment failed; padding inline");
                return None;
            }
            Err(_) => {
                tracing::warn!("the thread preparing the next log segment panicked");
                let _ = fs::remove_file(&prepared.path);
                return None;
            }
        };
        match fs::rename(&prepared.path, path) {
            Ok(()) => Some((file, len)),
            Err(e) => {
                tracing::warn!(
                    path = %prepared.path.display(),
                    error = %e,
                    "cannot use the prepared log segment; padding inline"
                );
                let _ = fs::remove_file(&prepared.path);
                None
            }
        }
    }

    fn active_size(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.size)
    }

    fn needs_roll(&self, batched: usize) -> bool {
        self.active_size() + batched as u64 >= self.sizing.segment_bytes
    }

    /// Writes the buffered records to the active segment (no fsync; callers sync).
    fn flush_batch(
        &mut self,
        batch: &mut Vec<u8>,
        pending: &mut Vec<(u64, u32)>,
    ) -> Result<(), LogError> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        if let Some(faults) = &self.faults {
            faults.check_write().map_err(io_err(&seg.path))?;
        }
        let end = seg.size + batch.len() as u64;
        let padded = self.sizing.padded_length(end);
        if padded > seg.allocated && padded > end {
            // Pad the next step first; the records below fill in up to `end`.
            let from = seg.allocated.max(end);
            write_zeros(&seg.file, from, padded).map_err(io_err(&seg.path))?;
            self.inline_pads += 1;
        }
        // Positional: the segment's logical size is the truth, not the file cursor.
        seg.file
            .write_all_at(batch, seg.size)
            .map_err(io_err(&seg.path))?;
        seg.size = end;
        seg.allocated = seg.allocated.max(padded).max(end);
        seg.records.append(pending);
        batch.clear();
        Ok(())
    }

    /// Closes the active segment (durably) and starts a new one at `first_index`.
    fn start_segment(&mut self, first_index: u64) -> Result<(), LogError> {
        if let Some(seg) = self.segments.last() {
            seg.file.sync_data().map_err(io_err(&seg.path))?;
        }
        let path = self.dir.join(format!("log.{first_index:020}"));
        if let Some(faults) = &self.faults {
            faults.check_write().map_err(io_err(&path))?;
        }
        let (file, allocated) = match self.take_prepared(&path) {
            Some(prepared) => prepared,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                (file, 0)
            }
        };
        // The new name (created or renamed) is durable before any entry in it is
        // acknowledged.
        sync_dir(&self.dir)?;
        if self.segments.is_empty() {
            self.first_visible = first_index;
        }
        self.segments.push(Segment {
            first_index,
            path,
            file,
            records: Vec::new(),
            size: 0,
            allocated,
        });
        Ok(())
    }

    /// The payload of entry `index`, if held.
    pub fn read(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        if index < self.first_visible {
            return Ok(None);
        }
        let Some(seg) = self
            .segments
            .iter()
            .rev()
            .find(|s| s.first_index <= index && s.last_index().is_some_and(|l| l >= index))
        else {
            return Ok(None);
        };
        let (offset, len) = seg.records[(index - seg.first_index) as usize];
        let mut payload = vec![0u8; len as usize];
        seg.file
            .read_exact_at(&mut payload, offset + HEADER as u64)
            .map_err(io_err(&seg.path))?;
        Ok(Some(payload))
    }

    /// Payloads of the entries in `start..end` that are held, in order.
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let mut out = Vec::new();
        let (Some(first), Some(last)) = (self.first_index(), self.last_index()) else {
            return Ok(out);
        };
        for index in start.max(first)..end.min(last + 1) {
            if let Some(p) = self.read(index)? {
                out.push((index, p));
            }
        }
        Ok(out)
    }

    /// Removes every entry with index `>= from` (a conflicting suffix).
    pub fn truncate(&mut self, from: u64) -> Result<(), LogError> {
        while let Some(seg) = self.segments.last_mut() {
            if seg.first_index >= from {
                let path = seg.path.clone();
                self.segments.pop();
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            if seg.last_index().is_some_and(|l| l >= from) {
                let keep = (from - seg.first_index) as usize;
                let cut = seg.records[keep].0;
                // Zeroed rather than cut off: the padding stays, and the next append
                // finds written blocks.
                write_zeros(&seg.file, cut, seg.size).map_err(io_err(&seg.path))?;
                seg.file.sync_data().map_err(io_err(&seg.path))?;
                seg.records.truncate(keep);
                seg.size = cut;
            }
            break;
        }
        sync_dir(&self.dir)?;
        if self.segments.is_empty() {
            self.first_visible = from;
        }
        Ok(())
    }

    /// Forgets every entry with index `<= upto`; whole segments below it are deleted.
    pub fn purge(&mut self, upto: u64) -> Result<(), LogError> {
        self.first_visible = self.first_visible.max(upto + 1);
        while self.segments.len() > 1 && self.segments[0].last_index().is_some_and(|l| l <= upto) {
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        if self.segments.len() == 1 && self.segments[0].last_index().is_some_and(|l| l <= upto) {
            // Everything is purged: start afresh at the next index.
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        sync_dir(&self.dir)
    }
}

impl Drop for SegmentedLog {
    /// Stops a preparation under way (within one chunk of zeros) and deletes the
    /// prepared file: nothing is left behind for the next open to clean up.
    fn drop(&mut self) {
        if let Some(prepared) = self.prepared.take() {
            prepared.cancel.store(true, Ordering::SeqCst);
            let _ = prepared.thread.join();
            let _ = fs::remove_file(&prepared.path);
        }
    }
}

/// Creates `path` holding `len` zeros, synced with its directory entry (run on the
/// preparing thread). Stops early with `Interrupted` once `cancel` is set; deletes
/// the file it created when it fails.
fn prepare_file(
    path: &Path,
    dir: &Path,
    len: u64,
    cancel: &AtomicBool,
    faults: Option<&DiskFaults>,
) -> io::Result<File> {
    if let Some(faults) = faults {
        faults.check_write()?;
    }
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(path)?;
    let filled = (|| {
        let mut at = 0;
        while at < len {
            if cancel.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "log dropped"));
            }
            let to = (at + ZERO_CHUNK).min(len);
            write_zeros(&file, at, to)?;
            write_back(&file, at, to - at)?;
            at = to;
        }
        if let Some(faults) = faults {
            faults.check_fsync()?;
        }
        file.sync_data()?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = filled {
        // Best effort: a leftover is deleted at the next open anyway.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// Writes the dirty pages of `offset..offset + len` of `file` to the device and waits
/// for them, without the cache flush (nor journal commit) of an fsync. The preparing
/// thread sends its zeros a chunk at a time this way: an append's fsync must wait
/// for every write in flight, and one fsync of the whole file at the end made the
/// appends next to it wait for tens of megabytes (about 15 ms each, measured).
#[cfg(target_os = "linux")]
fn write_back(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: an open descriptor; the call reads and writes no memory of ours.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere: an fdatasync per chunk does the same, at the price of a cache flush each.
#[cfg(not(target_os = "linux"))]
fn write_back(file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    file.sync_data()
}

fn encode_record(out: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_be_bytes());
    hasher.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Writes zeros over `from..to` of `file`, extending it when `to` is past its end.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let chunk = vec![0u8; (to.saturating_sub(from)).min(ZERO_CHUNK) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZERO_CHUNK) as usize;
        file.write_all_at(&chunk[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Whether `bytes` are all zero (compared a page at a time: a padded segment's tail
/// is megabytes long).
fn all_zero(bytes: &[u8]) -> bool {
    const PAGE: [u8; 4096] = [0; 4096];
    bytes.chunks(PAGE.len()).all(|c| c == &PAGE[..c.len()])
}

/// Reads a segment's records; cuts a torn tail off the last segment.
fn recover_segment(first_index: u64, path: PathBuf, is_last: bool) -> Result<Segment, LogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let bytes = fs::read(&path).map_err(io_err(&path))?;
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut bad: Option<String> = None;
    while offset < bytes.len() {
        let expected_index = first_index + records.len() as u64;
        match parse_record(&bytes[offset..], expected_index) {
            Ok(len) => {
                records.push((offset as u64, len as u32));
                offset += HEADER + len;
            }
            Err(reason) => {
                bad = Some(reason);
                break;
            }
        }
    }
    let padding = bad.is_some() && all_zero(&bytes[offset..]);
    if padding {
        bad = None;
    }
    let mut allocated = bytes.len() as u64;
    if let Some(reason) = bad {
        if !is_last {
            return Err(LogError::Corrupt {
                path,
                offset: offset as u64,
                reason,
            });
        }
        tracing::warn!(
            path = %path.display(),
            offset,
            dropped_bytes = bytes.len() - offset,
            reason,
            "truncating torn tail of the log (unacknowledged writes from a crash)"
        );
        file.set_len(offset as u64).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        allocated = offset as u64;
    }
    Ok(Segment {
        first_index,
        path,
        file,
        records,
        size: offset as u64,
        allocated,
    })
}

/// Validates the record at the front of `buf`; returns its payload length.
fn parse_record(buf: &[u8], expected_index: u64) -> Result<usize, String> {
    if buf.len() < HEADER {
        return Err(format!("{} bytes, shorter than a record header", buf.len()));
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let mut idx = [0u8; 8];
    idx.copy_from_slice(&buf[8..16]);
    let index = u64::from_be_bytes(idx);
    if len > MAX_PAYLOAD {
        return Err(format!("payload length {len} is implausible"));
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Err(format!("record of {len} bytes is cut short"));
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&idx);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err("CRC mismatch".into());
    }
    if index != expected_index {
        return Err(format!("index {index} where {expected_index} was expected"));
    }
    Ok(len)
}

/// Makes directory changes (new, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large segments, padded a little at a time.
    const BIG: LogSizing = LogSizing {
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        preallocate_bytes: 256,
    };
    /// Small segments (many rolls), padded a little at a time.
    const SMALL: LogSizing = LogSizing {
        segment_bytes: 64,
        preallocate_bytes: 32,
    };
    /// Segments that roll after a few entries, padded in steps of several entries.
    const PADDED: LogSizing = LogSizing {
        segment_bytes: 256,
        preallocate_bytes: 64,
    };

    fn entries(range: std::ops::Range<u64>) -> Vec<(u64, Vec<u8>)> {
        range
            .map(|i| (i, format!("entry-{i}").into_bytes()))
            .collect()
    }

    fn indices(log: &SegmentedLog) -> Vec<u64> {
        log.read_range(0, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).unwrap().len()
    }

    /// Overwrites `bytes` at `offset` of the file at `path`.
    fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .write_all_at(bytes, offset)
            .unwrap();
    }

    #[test]
    fn an_all_zero_header_never_parses_as_a_record() {
        // The padding reads as the end of the log only because of this: the CRC of
        // index 0 with an empty payload is not 0.
        assert_ne!(crc32fast::hash(&0u64.to_be_bytes()), 0);
        let zeros = [0u8; 64];
        for len in 0..zeros.len() {
            assert!(parse_record(&zeros[..len], 0).is_err());
        }
    }

    #[test]
    fn zero_tails_are_told_from_garbage_past_the_first_page() {
        let mut bytes = vec![0u8; 10_000];
        assert!(all_zero(&bytes) && all_zero(&[]));
        bytes[9_999] = 1;
        assert!(!all_zero(&bytes));
        assert!(all_zero(&bytes[..9_999]));
    }

    #[test]
    fn appended_entries_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(log.last_index(), None);
        log.append(&entries(1..4)).unwrap();
        log.append(&entries(4..6)).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(5)));
        assert_eq!(log.read(3).unwrap(), Some(b"entry-3".to_vec()));
        assert_eq!(log.read(9).unwrap(), None);
    }

    #[test]
    fn gaps_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..3)).unwrap();
        assert!(matches!(
            log.append(&entries(5..6)),
            Err(LogError::NotContiguous { got: 5, last: 2 })
        ));
    }

    #[test]
    fn the_active_segment_is_padded_ahead_in_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..2)).unwrap();
        let seg = log.segments[0].path.clone();
        assert_eq!(file_len(&seg), 256, "one step of padding");
        log.append(&entries(2..20)).unwrap();
        let size = log.segments[0].size;
        assert!(size > 256);
        assert_eq!(file_len(&seg), size.div_ceil(256) * 256);
        // Everything after the last record is zero.
        let bytes = fs::read(&seg).unwrap();
        assert!(bytes[size as usize..].iter().all(|b| *b == 0));
    }

    #[test]
    fn padding_is_off_with_a_zero_step() {
        let dir = tempfile::tempdir().unwrap();
        let sizing = LogSizing {
            preallocate_bytes: 0,
            ..BIG
        };
        let mut log = SegmentedLog::open(dir.path(), sizing).unwrap();
        log.append(&entries(1..4)).unwrap();
        assert_eq!(file_len(&log.segments[0].path), log.segments[0].size);
    }

    #[test]
    fn a_padded_segment_reopens_with_its_entries_and_appends_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..8)).unwrap();
        let seg = log.segments[0].path.clone();
        let (size, padded) = (log.segments[0].size, file_len(&seg));
        assert!(padded > size);
        drop(log);
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(indices(&log), (1..8).collect::<Vec<_>>());
        assert_eq!(log.segments[0].size, size, "the zeros are not entries");
        assert_eq!(file_len(&seg), padded, "reopening keeps the padding");
        // The next entry goes right after the last one, over the zeros.
        log.append(&entries(8..9)).unwrap();
        let record = log.segments[0].records[7];
        assert_eq!(record.0, size);
        drop(log);
        let log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(indices(&log), (1..9).collect::<Vec<_>>());
        assert_eq!(log.read(8).unwrap(), Some(b"entry-8".to_vec()));
    }

    #[test]
    fn a_log_dropped_without_closing_reopens_whole() {
        // A crash: the log is dropped mid-life (no close exists; every append was
        // synced), the file keeps its padding, and a new process opens it.
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        for i in 1..40 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        std::mem::forget(log);
        let mut log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        assert_eq!(indices(&log), (1..40).collect::<Vec<_>>());
        log.append(&entries(40..45)).unwrap();
        std::mem::forget(log);
        let log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        assert_eq!(indices(&log), (1..45).collect::<Vec<_>>());
    }

    #[test]
    fn segments_roll_and_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        for i in 1..20 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert!(files > 3, "only {files} segments");
        drop(log);
        let log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        assert_eq!(indices(&log), (1..20).collect::<Vec<_>>());
    }

    #[test]
    fn segments_roll_with_padding_and_closed_ones_carry_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        for i in (1..60).step_by(3) {
            log.append(&entries(i..i + 3)).unwrap();
        }
        assert!(log.segments.len() > 3, "{} segments", log.segments.len());
        let (closed, active) = log.segments.split_at(log.segments.len() - 1);
        for seg in closed {
            assert!(seg.size >= PADDED.segment_bytes);
            assert_eq!(file_len(&seg.path), seg.size, "padding stops at the limit");
        }
        assert_eq!(file_len(&active[0].path), active[0].allocated);
        drop(log);
        let mut log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        assert_eq!(indices(&log), (1..61).collect::<Vec<_>>());
        log.append(&entries(61..62)).unwrap();
        assert_eq!(log.last_index(), Some(61));
    }

    #[test]
    fn a_padded_segment_that_is_no_longer_the_last_ends_at_its_last_entry() {
        // Padded with one sizing, then rolled over with a smaller segment limit: the
        // zeros sit in a closed segment, where a bad record would be fatal.
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..4)).unwrap();
        assert!(file_len(&log.segments[0].path) > log.segments[0].size);
        drop(log);
        let mut log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        log.append(&entries(4..8)).unwrap();
        assert!(log.segments.len() > 1);
        drop(log);
        let log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        assert_eq!(indices(&log), (1..8).collect::<Vec<_>>());
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        // Without padding: the file ends inside the last record.
        let dir = tempfile::tempdir().unwrap();
        let sizing = LogSizing {
            preallocate_bytes: 0,
            ..BIG
        };
        let mut log = SegmentedLog::open(dir.path(), sizing).unwrap();
        log.append(&entries(1..6)).unwrap();
        let seg = log.segments[0].path.clone();
        drop(log);
        // A crash mid-append: the last record is half written.
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut log = SegmentedLog::open(dir.path(), sizing).unwrap();
        assert_eq!(log.last_index(), Some(4));
        log.append(&entries(5..7)).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), sizing).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_torn_entry_inside_the_padding_is_cut_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..6)).unwrap();
        let seg = log.segments[0].path.clone();
        let (offset, _) = log.segments[0].records[4];
        let end = log.segments[0].size;
        assert!(file_len(&seg) > end, "entry 5 is followed by padding");
        drop(log);
        // A crash mid-append: the end of entry 5 never reached the disk.
        overwrite(&seg, end - 3, &[0, 0, 0]);
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(log.last_index(), Some(4));
        assert_eq!(log.segments[0].size, offset);
        log.append(&[(5, b"new-5".to_vec()), (6, b"new-6".to_vec())])
            .unwrap();
        assert_eq!(
            log.segments[0].records[4].0, offset,
            "written over the torn one"
        );
        drop(log);
        let log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(log.read(5).unwrap(), Some(b"new-5".to_vec()));
    }

    #[test]
    fn a_header_alone_in_the_padding_is_torn() {
        // Only the header of entry 6 reached the disk; its payload reads as zeros.
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..6)).unwrap();
        let seg = log.segments[0].path.clone();
        let end = log.segments[0].size;
        drop(log);
        let mut header = Vec::new();
        encode_record(&mut header, 6, b"entry-6");
        overwrite(&seg, end, &header[..HEADER]);
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(log.last_index(), Some(5));
        log.append(&entries(6..7)).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(indices(&log), (1..7).collect::<Vec<_>>());
    }

    #[test]
    fn a_later_record_after_a_hole_of_zeros_is_torn_not_kept() {
        // The pages of a batch reached the disk out of order: entry 7 did, entry 6
        // did not. Neither was acknowledged; both go.
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..8)).unwrap();
        let seg = log.segments[0].path.clone();
        let (offset6, _) = log.segments[0].records[5];
        let (offset7, _) = log.segments[0].records[6];
        drop(log);
        overwrite(&seg, offset6, &vec![0u8; (offset7 - offset6) as usize]);
        let log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(log.last_index(), Some(5));
        let bytes = fs::read(&seg).unwrap();
        assert!(bytes[offset6 as usize..].iter().all(|b| *b == 0));
    }

    #[test]
    fn flipped_bit_in_the_tail_record_is_cut_but_in_an_older_segment_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        for i in 1..8 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        let first = &log.segments[0];
        let first_seg = (first.path.clone(), first.size);
        let last = log.segments.last().unwrap();
        let last_seg = (last.path.clone(), last.size);
        drop(log);
        flip_byte(&last_seg.0, last_seg.1 - 1);
        let log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        assert_eq!(log.last_index(), Some(6));
        drop(log);
        flip_byte(&first_seg.0, first_seg.1 - 1);
        assert!(matches!(
            SegmentedLog::open(dir.path(), SMALL),
            Err(LogError::Corrupt { .. })
        ));
    }

    #[test]
    fn garbage_in_the_padding_of_an_older_segment_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..4)).unwrap();
        let seg = log.segments[0].path.clone();
        let len = file_len(&seg);
        drop(log);
        let mut log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        log.append(&entries(4..8)).unwrap();
        drop(log);
        overwrite(&seg, len - 1, &[7]);
        assert!(matches!(
            SegmentedLog::open(dir.path(), SMALL),
            Err(LogError::Corrupt { .. })
        ));
    }

    fn flip_byte(path: &Path, at: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[at as usize] ^= 0x40;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn truncate_removes_a_suffix_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        for i in 1..12 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        log.truncate(5).unwrap();
        assert_eq!(log.last_index(), Some(4));
        log.append(&[(5, b"new-5".to_vec())]).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), SMALL).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3, 4, 5]);
        assert_eq!(log.read(5).unwrap(), Some(b"new-5".to_vec()));
    }

    #[test]
    fn truncate_inside_a_padded_segment_zeroes_the_suffix_and_keeps_the_padding() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        log.append(&entries(1..10)).unwrap();
        let seg = log.segments[0].path.clone();
        let padded = file_len(&seg);
        log.truncate(4).unwrap();
        assert_eq!(log.last_index(), Some(3));
        assert_eq!(file_len(&seg), padded);
        let bytes = fs::read(&seg).unwrap();
        assert!(bytes[log.segments[0].size as usize..]
            .iter()
            .all(|b| *b == 0));
        // Reopened before anything else is written: the suffix stays gone.
        drop(log);
        let mut log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3]);
        log.append(&[(4, b"new-4".to_vec())]).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), BIG).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3, 4]);
        assert_eq!(log.read(4).unwrap(), Some(b"new-4".to_vec()));
    }

    #[test]
    fn purge_drops_old_segments_and_hides_purged_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        for i in 1..40 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        let before = fs::read_dir(dir.path()).unwrap().count();
        log.purge(20).unwrap();
        assert!(fs::read_dir(dir.path()).unwrap().count() < before);
        assert_eq!(log.first_index(), Some(21));
        assert_eq!(log.read(20).unwrap(), None);
        assert_eq!(indices(&log), (21..40).collect::<Vec<_>>());
        // Purging everything leaves an empty log that accepts the next index.
        log.purge(39).unwrap();
        assert_eq!(log.last_index(), None);
        log.append(&entries(40..42)).unwrap();
        assert_eq!(indices(&log), vec![40, 41]);
        drop(log);
        let log = SegmentedLog::open(dir.path(), PADDED).unwrap();
        assert_eq!(indices(&log), vec![40, 41]);
    }

    /// Segments of 4 KiB, each padded in full: the next one is prepared at 2 KiB.
    const PREPARING: LogSizing = LogSizing {
        segment_bytes: 4096,
        preallocate_bytes: 4096,
    };

    /// Waits until the preparation under way, if any, has finished.
    fn wait_prepared(log: &SegmentedLog) {
        if let Some(prepared) = &log.prepared {
            while !prepared.thread.is_finished() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }

    /// Names of the prepared (not yet segment) files in `dir`.
    fn prepared_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(PREPARED_PREFIX))
            .collect()
    }

    /// Appends one entry at a time from `next` until the log has `segments` segments;
    /// returns the next index.
    fn fill_until(log: &mut SegmentedLog, mut next: u64, segments: usize) -> u64 {
        while log.segments.len() < segments {
            log.append(&entries(next..next + 1)).unwrap();
            next += 1;
        }
        next
    }

    #[test]
    fn the_roll_renames_the_prepared_file_and_pads_nothing_inline() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        log.append(&entries(1..2)).unwrap();
        assert_eq!(log.inline_pads, 1, "the first segment is padded inline");
        assert!(log.prepared.is_none(), "nothing prepared before half full");
        let mut next = 2;
        while log.active_size() < 2048 {
            log.append(&entries(next..next + 1)).unwrap();
            next += 1;
        }
        assert!(
            log.prepared.is_some(),
            "half full: the next one is prepared"
        );
        wait_prepared(&log);
        assert_eq!(prepared_files(dir.path()).len(), 1);
        let next = fill_until(&mut log, next, 2);
        assert_eq!(log.inline_pads, 1, "the roll padded nothing");
        let new = &log.segments[1];
        assert_eq!(new.allocated, 4096);
        assert_eq!(
            file_len(&new.path),
            4096,
            "the rolling append did not extend it"
        );
        assert!(prepared_files(dir.path()).is_empty(), "renamed, not copied");
        let bytes = fs::read(&new.path).unwrap();
        assert!(bytes[new.size as usize..].iter().all(|b| *b == 0));
        drop(log);
        let log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert_eq!(indices(&log), (1..next).collect::<Vec<_>>());
    }

    /// A preparation that finishes only when `release` is sent to, with `outcome`.
    fn held_preparation(
        log: &mut SegmentedLog,
        outcome: io::Result<()>,
    ) -> std::sync::mpsc::Sender<()> {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let path = log.dir.join(format!("{PREPARED_PREFIX}held"));
        let cancel = Arc::new(AtomicBool::new(false));
        let (p, c, dir) = (path.clone(), cancel.clone(), log.dir.clone());
        let thread = std::thread::spawn(move || {
            let _ = wait.recv();
            outcome?;
            prepare_file(&p, &dir, 4096, &c, None).map(|f| (f, 4096))
        });
        log.prepared = Some(Prepared {
            path,
            cancel,
            thread,
        });
        release
    }

    #[test]
    fn a_roll_does_not_wait_for_an_unfinished_preparation_and_the_next_roll_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        let release = held_preparation(&mut log, Ok(()));
        let next = fill_until(&mut log, 1, 2);
        assert_eq!(log.inline_pads, 2, "both segments padded inline");
        assert!(
            log.prepared.is_some(),
            "still under way, kept for the next roll"
        );
        release.send(()).unwrap();
        wait_prepared(&log);
        let next = fill_until(&mut log, next, 3);
        assert_eq!(log.inline_pads, 2, "the third one was prepared");
        drop(log);
        let log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert_eq!(indices(&log), (1..next).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_preparation_falls_back_to_padding_inline() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        let release = held_preparation(&mut log, Err(io::Error::other("disk full")));
        log.append(&entries(1..2)).unwrap();
        release.send(()).unwrap();
        wait_prepared(&log);
        let next = fill_until(&mut log, 2, 2);
        assert_eq!(log.inline_pads, 2);
        assert_eq!(file_len(&log.segments[1].path), 4096);
        drop(log);
        let log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert_eq!(indices(&log), (1..next).collect::<Vec<_>>());
    }

    #[test]
    fn a_crash_between_prepare_and_roll_leaves_a_file_the_next_open_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        let mut next = 1;
        while log.prepared.is_none() {
            log.append(&entries(next..next + 1)).unwrap();
            next += 1;
        }
        wait_prepared(&log);
        // A crash: no drop, the prepared file stays.
        std::mem::forget(log);
        assert_eq!(prepared_files(dir.path()).len(), 1);
        // And one that was cut short mid-preparation, with something in it.
        fs::write(dir.path().join(format!("{PREPARED_PREFIX}9-9")), b"partial").unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert!(prepared_files(dir.path()).is_empty());
        assert_eq!(log.segments.len(), 1);
        assert_eq!(indices(&log), (1..next).collect::<Vec<_>>());
        // Appends go on and roll over (preparing afresh).
        let next = fill_until(&mut log, next, 3);
        std::mem::forget(log);
        let log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert_eq!(indices(&log), (1..next).collect::<Vec<_>>());
    }

    #[test]
    fn a_crash_right_after_the_rename_leaves_an_empty_segment_that_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        let next = fill_until(&mut log, 1, 2);
        drop(log);
        // Renamed, the directory synced, and no entry written: a segment of zeros.
        let renamed = dir.path().join(format!("log.{next:020}"));
        fs::write(&renamed, vec![0u8; 4096]).unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert!(!renamed.exists());
        assert_eq!(indices(&log), (1..next).collect::<Vec<_>>());
        log.append(&entries(next..next + 1)).unwrap();
        assert_eq!(log.last_index(), Some(next));
    }

    #[test]
    fn an_empty_only_segment_is_dropped_so_any_first_index_can_follow() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("log.{:020}", 5)), vec![0u8; 4096]).unwrap();
        let mut log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert_eq!(log.last_index(), None);
        log.append(&entries(9..12)).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), PREPARING).unwrap();
        assert_eq!(indices(&log), vec![9, 10, 11]);
    }

    #[test]
    fn dropping_the_log_mid_preparation_leaves_no_prepared_file() {
        let dir = tempfile::tempdir().unwrap();
        let sizing = LogSizing {
            segment_bytes: 16 * 1024 * 1024,
            preallocate_bytes: 16 * 1024 * 1024,
        };
        let mut log = SegmentedLog::open(dir.path(), sizing).unwrap();
        log.append(&[(1, vec![1u8; 9 * 1024 * 1024])]).unwrap();
        assert!(log.prepared.is_some());
        drop(log);
        assert!(prepared_files(dir.path()).is_empty());
    }

    #[derive(Debug, Clone)]
    enum Step {
        Append(u8),
        Truncate(u8),
        Purge(u8),
        Reopen,
        /// Reopen without dropping (as after a crash).
        Crash,
        /// Let the preparation of the next segment finish.
        Prepared,
    }

    fn any_step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (1u8..6).prop_map(Step::Append),
            1 => any::<u8>().prop_map(Step::Truncate),
            1 => any::<u8>().prop_map(Step::Purge),
            1 => Just(Step::Reopen),
            1 => Just(Step::Crash),
            1 => Just(Step::Prepared),
        ]
    }

    fn any_sizing() -> impl proptest::strategy::Strategy<Value = LogSizing> {
        use proptest::prelude::*;
        (
            prop_oneof![Just(80u64), Just(300)],
            prop_oneof![Just(0u64), Just(24), Just(100)],
        )
            .prop_map(|(segment_bytes, preallocate_bytes)| LogSizing {
                segment_bytes,
                preallocate_bytes,
            })
    }

    proptest::proptest! {
        /// The log always holds exactly what a simple model says it should, across
        /// appends, truncations, purges, reopenings and crashes (small segments force
        /// rolls; with and without padding; onto prepared files or not).
        #[test]
        fn log_matches_a_model(
            sizing in any_sizing(),
            steps in proptest::collection::vec(any_step(), 1..40),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut log = SegmentedLog::open(dir.path(), sizing).unwrap();
            let mut model: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
            let mut next = 1u64;
            let mut purged_upto = 0u64;
            for step in steps {
                match step {
                    Step::Append(n) => {
                        let batch: Vec<(u64, Vec<u8>)> = (next..next + n as u64)
                            .map(|i| (i, format!("v{i}-{}", i * 7).into_bytes()))
                            .collect();
                        log.append(&batch).unwrap();
                        model.extend(batch);
                        next += n as u64;
                    }
                    Step::Truncate(k) => {
                        let Some(&last) = model.keys().last() else { continue };
                        let first = *model.keys().next().unwrap();
                        let from = first + (k as u64 % (last - first + 1)) + 1;
                        log.truncate(from).unwrap();
                        model.retain(|i, _| *i < from);
                        next = from;
                    }
                    Step::Purge(k) => {
                        let Some(&last) = model.keys().last() else { continue };
                        let first = *model.keys().next().unwrap();
                        let upto = first + (k as u64 % (last - first + 1));
                        log.purge(upto).unwrap();
                        model.retain(|i, _| *i > upto);
                        purged_upto = purged_upto.max(upto);
                    }
                    Step::Reopen | Step::Crash => {
                        if matches!(step, Step::Crash) {
                            std::mem::forget(log);
                        } else {
                            drop(log);
                        }
                        log = SegmentedLog::open(dir.path(), sizing).unwrap();
                        // The owner re-applies its purge point after opening.
                        if purged_upto > 0 && log.last_index().is_some() {
                            log.purge(purged_upto).unwrap();
                        }
                    }
                    Step::Prepared => wait_prepared(&log),
                }
                let held: Vec<(u64, Vec<u8>)> = log.read_range(0, u64::MAX).unwrap();
                let expected: Vec<(u64, Vec<u8>)> = model.clone().into_iter().collect();
                proptest::prop_assert_eq!(held, expected);
            }
        }
    }
}
