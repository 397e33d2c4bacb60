//! A segmented, append-only log of opaque entries keyed by a contiguous index.
//!
//! # On disk
//!
//! Segment files `log.<first index, 20 digits>` hold records
//! `[payload length: u32][crc32: u32][index: u64][payload]` (big-endian); the CRC
//! covers the index and the payload. A segment is closed once it passes its size limit
//! and a new one begins.
//!
//! # Invariants
//!
//! - [`SegmentedLog::append`] returns only after the records are written **and**
//!   `sync_data` has returned: an acknowledged entry survives a crash. One call is one
//!   fsync however many entries it carries (group commit).
//! - Indices are contiguous: entry `n + 1` follows entry `n` (an empty log accepts any
//!   first index, as after a snapshot install).
//! - Recovery reads every segment; a bad record in the *last* segment is a torn write
//!   from a crash mid-append and is cut off with everything after it (it was never
//!   acknowledged). A bad record anywhere else is corruption of acknowledged data and
//!   opening fails rather than silently losing it.
//! - [`SegmentedLog::truncate`] and [`SegmentedLog::purge`] are durable when they return.
//!   Purge deletes whole segments only; entries it hides inside a surviving segment
//!   reappear on reopen, so the owner persists its purge point and purges again after
//!   opening.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk::DiskFaults;

/// Header bytes before each payload.
const HEADER: usize = 4 + 4 + 8;
/// Default size at which a segment is closed.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Largest payload accepted (far above any request ZooKeeper allows).
const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One segment file and where its records are.
#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    file: File,
    /// (offset of the record, payload length) per entry, in index order.
    records: Vec<(u64, u32)>,
    size: u64,
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
    max_segment_bytes: u64,
    /// Entries below this were purged (they may linger in a shared segment).
    first_visible: u64,
    /// Faults a test injected for this directory ([`DiskFaults`]).
    faults: Option<Arc<DiskFaults>>,
}

impl SegmentedLog {
    /// Opens (creating if needed) the log in `dir`, recovering from a torn tail.
    pub fn open(dir: &Path, max_segment_bytes: u64) -> Result<SegmentedLog, LogError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut firsts: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
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
        // Drop empty trailing segments left by a crash right after a roll (they would
        // pin a first index that may no longer follow).
        while segments.len() > 1 && segments.last().is_some_and(|s| s.records.is_empty()) {
            if let Some(s) = segments.pop() {
                fs::remove_file(&s.path).map_err(io_err(&s.path))?;
            }
        }
        let first_visible = segments.first().map_or(0, |s| s.first_index);
        Ok(SegmentedLog {
            dir: dir.to_path_buf(),
            segments,
            max_segment_bytes,
            first_visible,
            faults: DiskFaults::lookup(dir),
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
        if let Some(seg) = self.segments.last() {
            if let Some(faults) = &self.faults {
                faults.check_fsync().map_err(io_err(&seg.path))?;
            }
            seg.file.sync_data().map_err(io_err(&seg.path))?;
        }
        Ok(())
    }

    fn active_size(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.size)
    }

    fn needs_roll(&self, batched: usize) -> bool {
        self.active_size() + batched as u64 >= self.max_segment_bytes
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
        // Positional: the segment's logical size is the truth, not the file cursor
        // (a truncate moves the end but not the cursor).
        seg.file
            .write_all_at(batch, seg.size)
            .map_err(io_err(&seg.path))?;
        seg.size += batch.len() as u64;
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
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
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
                seg.records.truncate(keep);
                seg.file.set_len(cut).map_err(io_err(&seg.path))?;
                seg.size = cut;
                seg.file.sync_all().map_err(io_err(&seg.path))?;
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

fn encode_record(out: &mut Vec<u8>, index: u64, payload: &[u8]) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_be_bytes());
    hasher.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(payload);
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
    }
    Ok(Segment {
        first_index,
        path,
        file,
        records,
        size: offset as u64,
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

    #[test]
    fn appended_entries_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(log.last_index(), None);
        log.append(&entries(1..4)).unwrap();
        log.append(&entries(4..6)).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!((log.first_index(), log.last_index()), (Some(1), Some(5)));
        assert_eq!(log.read(3).unwrap(), Some(b"entry-3".to_vec()));
        assert_eq!(log.read(9).unwrap(), None);
    }

    #[test]
    fn gaps_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        log.append(&entries(1..3)).unwrap();
        assert!(matches!(
            log.append(&entries(5..6)),
            Err(LogError::NotContiguous { got: 5, last: 2 })
        ));
    }

    #[test]
    fn segments_roll_and_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), 64).unwrap();
        for i in 1..20 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert!(files > 3, "only {files} segments");
        drop(log);
        let log = SegmentedLog::open(dir.path(), 64).unwrap();
        assert_eq!(indices(&log), (1..20).collect::<Vec<_>>());
    }

    #[test]
    fn torn_tail_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).unwrap();
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
        let mut log = SegmentedLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(log.last_index(), Some(4));
        log.append(&entries(5..7)).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn flipped_bit_in_the_tail_record_is_cut_but_in_an_older_segment_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), 64).unwrap();
        for i in 1..8 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        let first_seg = log.segments[0].path.clone();
        let last_seg = log.segments.last().unwrap().path.clone();
        drop(log);
        flip_last_byte(&last_seg);
        let log = SegmentedLog::open(dir.path(), 64).unwrap();
        assert_eq!(log.last_index(), Some(6));
        drop(log);
        flip_last_byte(&first_seg);
        assert!(matches!(
            SegmentedLog::open(dir.path(), 64),
            Err(LogError::Corrupt { .. })
        ));
    }

    fn flip_last_byte(path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x40;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn truncate_removes_a_suffix_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), 64).unwrap();
        for i in 1..12 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        log.truncate(5).unwrap();
        assert_eq!(log.last_index(), Some(4));
        log.append(&[(5, b"new-5".to_vec())]).unwrap();
        drop(log);
        let log = SegmentedLog::open(dir.path(), 64).unwrap();
        assert_eq!(indices(&log), vec![1, 2, 3, 4, 5]);
        assert_eq!(log.read(5).unwrap(), Some(b"new-5".to_vec()));
    }

    #[test]
    fn purge_drops_old_segments_and_hides_purged_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentedLog::open(dir.path(), 64).unwrap();
        for i in 1..12 {
            log.append(&entries(i..i + 1)).unwrap();
        }
        let before = fs::read_dir(dir.path()).unwrap().count();
        log.purge(6).unwrap();
        assert!(fs::read_dir(dir.path()).unwrap().count() < before);
        assert_eq!(log.first_index(), Some(7));
        assert_eq!(log.read(6).unwrap(), None);
        assert_eq!(indices(&log), (7..12).collect::<Vec<_>>());
        // Purging everything leaves an empty log that accepts the next index.
        log.purge(11).unwrap();
        assert_eq!(log.last_index(), None);
        log.append(&entries(12..14)).unwrap();
        assert_eq!(indices(&log), vec![12, 13]);
    }

    #[derive(Debug, Clone)]
    enum Step {
        Append(u8),
        Truncate(u8),
        Purge(u8),
        Reopen,
    }

    fn any_step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (1u8..6).prop_map(Step::Append),
            1 => any::<u8>().prop_map(Step::Truncate),
            1 => any::<u8>().prop_map(Step::Purge),
            1 => Just(Step::Reopen),
        ]
    }

    proptest::proptest! {
        /// The log always holds exactly what a simple model says it should, across
        /// appends, truncations, purges and reopenings (small segments force rolls).
        #[test]
        fn log_matches_a_model(steps in proptest::collection::vec(any_step(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let mut log = SegmentedLog::open(dir.path(), 80).unwrap();
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
                    Step::Reopen => {
                        drop(log);
                        log = SegmentedLog::open(dir.path(), 80).unwrap();
                        // The owner re-applies its purge point after opening.
                        if purged_upto > 0 && log.last_index().is_some() {
                            log.purge(purged_upto).unwrap();
                        }
                    }
                }
                let held: Vec<(u64, Vec<u8>)> = log.read_range(0, u64::MAX).unwrap();
                let expected: Vec<(u64, Vec<u8>)> = model.clone().into_iter().collect();
                proptest::prop_assert_eq!(held, expected);
            }
        }
    }
}
