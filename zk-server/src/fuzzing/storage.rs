//! Target `storage_files`: the readers of what the server finds on disk, fed damaged
//! files. The first byte picks what is damaged:
//!
//! - **0, the segmented log** ([`SegmentedLog`]): a valid log is written by the real
//!   writer (entries, payload sizes, append batches and segment/padding sizes from the
//!   input, on tmpfs), then damaged as the input says (files truncated, bits flipped,
//!   ranges and tails zeroed) and opened again. Recovery must give the entries written,
//!   as a prefix: every entry of a segment before the last kept intact (damage there is
//!   an error, never silent loss), the last segment's torn tail cut. Damage to the last
//!   segment only must open. A log that opened takes appends after its last entry and
//!   reopens with them.
//! - **1, a snapshot file**: a database built from the input and written as the server
//!   writes a snapshot file (sealed with its checksum, or unsealed as before checksums),
//!   then damaged likewise and read back ([`read_snapshot_file`]). A sealed file gives
//!   the database written or an error; an unsealed one a database whose tree is
//!   consistent, or an error.
//! - **2, raw bytes as a snapshot file** (the seed corpus holds valid files of both
//!   versions and of the database encodings): an error, or a database whose tree is
//!   consistent and survives a snapshot round trip.
//! - **3, raw bytes as Apache ZooKeeper's data files**: a snapshot
//!   ([`ApacheSnapshot::parse`]; what parses re-encodes to a snapshot that parses back
//!   equal, and converts to a database whose tree is consistent) and a transaction log
//!   ([`parse_log_tail`]).
//!
//! Every mode checks that no single allocation exceeds a small multiple of the bytes
//! read (with [`zk_proto::fuzzing::TrackingAllocator`] installed): a claimed length or
//! count is never allocated before it is checked against what is there.

use std::path::{Path, PathBuf};

use arbitrary::Unstructured;
use bytes::Bytes;
use openraft::{CommittedLeaderId, LogId, SnapshotMeta, StoredMembership};
use zk_proto::{Acl, CreateRequest, OpCode};

use crate::apache_data::snapshot::ApacheSnapshot;
use crate::apache_data::txnlog::parse_log_tail;
use crate::apache_data::txnlog::samples::{header, log_file};
use crate::database::ZkDatabase;
use crate::replication::state_machine::{read_snapshot_file, seal, SnapshotFile};
use crate::storage::log::{LogSizing, SegmentedLog};
use crate::txn::{Origin, Txn, TxnOp};

/// What serde may preallocate from a claimed length: 1 MiB of elements
/// (`serde::__private::size_hint::cautious`), which for a hash map (a version-1 tree)
/// becomes a table of power-of-two buckets kept 7/8 full, plus a control byte each:
/// up to about 2.3 MiB, whatever the claim.
const SERDE_PREALLOCATION: usize = 3 * 1024 * 1024;

/// Runs one input (see the module documentation); panics on a finding.
pub fn storage_files(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => segmented_log(rest),
        1 => damaged_snapshot(rest),
        2 => raw_snapshot(rest),
        _ => apache_files(rest),
    }
}

/// A scratch directory, on tmpfs where there is one (the log syncs every append).
fn scratch() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("zk-fuzz-").tempdir_in(shm) {
            return Some(dir);
        }
    }
    tempfile::tempdir().ok()
}

/// Asserts that `f` allocated no more than `bound` bytes at once.
fn bounded<R>(what: &str, bound: usize, f: impl FnOnce() -> R) -> R {
    let mut out = None;
    let largest = zk_proto::fuzzing::largest_allocation(|| out = Some(f()));
    assert!(
        largest <= bound,
        "{what}: allocated {largest} bytes at once (bound {bound})"
    );
    match out {
        Some(out) => out,
        None => unreachable!("the closure ran"),
    }
}

/// One way to damage a file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Cut the file at this offset.
    Truncate(usize),
    /// Flip one bit.
    Flip(usize, u8),
    /// Zero `len` bytes from the offset.
    Zero(usize, usize),
    /// Zero everything from the offset.
    ZeroTail(usize),
}

impl Damage {
    fn draw(u: &mut Unstructured<'_>) -> arbitrary::Result<Damage> {
        let at = usize::from(u.arbitrary::<u16>()?);
        Ok(match u.int_in_range(0..=3u8)? {
            0 => Damage::Truncate(at),
            1 => Damage::Flip(at, u.int_in_range(0..=7)?),
            2 => Damage::Zero(at, usize::from(u.int_in_range(1..=64u8)?)),
            _ => Damage::ZeroTail(at),
        })
    }

    /// Applies the damage to `bytes` (offsets beyond the end wrap around it).
    fn apply(self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let len = bytes.len();
        match self {
            Damage::Truncate(at) => bytes.truncate(at % len),
            Damage::Flip(at, bit) => bytes[at % len] ^= 1 << bit,
            Damage::Zero(at, n) => {
                let from = at % len;
                let to = (from + n).min(len);
                bytes[from..to].fill(0);
            }
            Damage::ZeroTail(at) => bytes[at % len..].fill(0),
        }
    }
}

/// At most this many bit flips in a file: CRC-32 detects every error of three bits or
/// fewer in a record or a snapshot of this size (its Hamming distance is at least 4).
const MAX_FLIPS: usize = 3;

/// Draws the damage to apply: at most `max` steps, at most [`MAX_FLIPS`] flips.
fn draw_damage(u: &mut Unstructured<'_>, max: usize) -> Vec<(u8, Damage)> {
    let mut damage = Vec::new();
    let mut flips = 0;
    while damage.len() < max {
        let (Ok(file), Ok(d)) = (u.arbitrary::<u8>(), Damage::draw(u)) else {
            break;
        };
        if matches!(d, Damage::Flip(..)) {
            if flips == MAX_FLIPS {
                continue;
            }
            flips += 1;
        }
        damage.push((file, d));
    }
    damage
}

/// The payload of entry `index`: `len` bytes that differ from every other entry's.
fn payload(index: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (index as u8).wrapping_mul(31).wrapping_add(i as u8) ^ (index >> 8) as u8)
        .collect()
}

/// The segment files of a log directory, in index order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name();
                    let first = name.to_str()?.strip_prefix("log.")?.parse().ok()?;
                    Some((first, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|(_, path)| path).collect()
}

fn segmented_log(input: &[u8]) {
    let mut u = Unstructured::new(input);
    let Ok(params) = <[u8; 4]>::try_from(u.bytes(4).unwrap_or_default()) else {
        return;
    };
    let sizing = LogSizing {
        segment_bytes: [64, 128, 256, 1024][usize::from(params[0] % 4)],
        preallocate_bytes: [0, 32, 64, 256][usize::from(params[1] % 4)],
    };
    let count = u64::from(params[2] % 48);
    let first: u64 = if params[3] & 1 == 0 { 1 } else { 1_000 };
    let lens: Vec<usize> = (0..count)
        .map(|_| usize::from(u.arbitrary::<u8>().unwrap_or(0) % 48))
        .collect();
    let damage = draw_damage(&mut u, 6);
    let Some(tmp) = scratch() else {
        return;
    };
    let dir = tmp.path().join("log");
    let entries: Vec<(u64, Vec<u8>)> = lens
        .iter()
        .enumerate()
        .map(|(i, len)| (first + i as u64, payload(first + i as u64, *len)))
        .collect();

    // The real writer, in batches of one to four entries.
    {
        let Ok(mut log) = SegmentedLog::open(&dir, sizing) else {
            return;
        };
        let batch = usize::from(params[3] >> 1) % 4 + 1;
        for chunk in entries.chunks(batch) {
            log.append(chunk).expect("appending to a healthy log");
        }
    }
    let files = segments(&dir);
    if files.is_empty() {
        assert!(entries.is_empty(), "entries written and no segment");
        return;
    }
    // The first index of the last segment: every entry before it is acknowledged
    // data in a closed segment.
    let last_first: u64 = files
        .last()
        .and_then(|p| p.file_name()?.to_str()?.strip_prefix("log.")?.parse().ok())
        .unwrap_or(first);
    let mut largest_file = 0usize;
    for (file, d) in &damage {
        let path = &files[usize::from(*file) % files.len()];
        let mut bytes = std::fs::read(path).unwrap_or_default();
        d.apply(&mut bytes);
        std::fs::write(path, &bytes).expect("writing the damage");
    }
    for path in &files {
        let len = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
        largest_file = largest_file.max(len);
    }
    let opened = bounded("opening the log", 2 * largest_file + 64 * 1024, || {
        SegmentedLog::open(&dir, sizing)
    });
    let log = match opened {
        Ok(log) => log,
        Err(e) => {
            let only_last = damage
                .iter()
                .all(|(f, _)| usize::from(*f) % files.len() == files.len() - 1);
            assert!(
                !only_last,
                "damage to the last segment only must open (torn tail): {e}"
            );
            assert!(
                matches!(e, crate::storage::log::LogError::Corrupt { .. }),
                "damage is reported as corruption: {e}"
            );
            return;
        }
    };
    let last = check_prefix(&log, &entries, first, last_first);
    // Appends continue after what was recovered, and survive a reopen.
    let next = last.map_or(first, |l| l + 1);
    let more: Vec<(u64, Vec<u8>)> = (next..next + 3).map(|i| (i, payload(i, 5))).collect();
    let mut log = log;
    log.append(&more).expect("appending after recovery");
    drop(log);
    let log = SegmentedLog::open(&dir, sizing).expect("reopening after recovery");
    let mut all: Vec<(u64, Vec<u8>)> = entries.iter().filter(|(i, _)| *i < next).cloned().collect();
    all.extend(more);
    let again = check_prefix(&log, &all, first, next);
    assert_eq!(again, Some(next + 2), "the appended entries are there");
}

/// Checks that `log` holds a prefix of `entries` (the first at `first`) that reaches
/// at least `keep_before - 1`; returns its last index.
fn check_prefix(
    log: &SegmentedLog,
    entries: &[(u64, Vec<u8>)],
    first: u64,
    keep_before: u64,
) -> Option<u64> {
    let last = log.last_index();
    let Some(l) = last else {
        assert!(
            keep_before <= first,
            "entries of a closed segment were lost (the log opened empty)"
        );
        return None;
    };
    assert_eq!(log.first_index(), Some(first), "the log starts elsewhere");
    assert!(
        l + 1 >= keep_before,
        "entries of a closed segment were lost: the log ends at {l}, the last segment \
         starts at {keep_before}"
    );
    let written_last = entries.last().map_or(0, |(i, _)| *i);
    assert!(l <= written_last, "entry {l} was never written");
    for (index, payload) in entries.iter().filter(|(i, _)| *i <= l) {
        let read = log.read(*index).expect("reading a recovered entry");
        assert_eq!(read.as_ref(), Some(payload), "entry {index} changed");
    }
    Some(l)
}

/// Names drawn for the znodes of a database.
const NAMES: &[&str] = &["a", "b", "c", "zookeeper", "quota", "x"];

/// A database made by the real write path from a few input bytes.
fn database(u: &mut Unstructured<'_>) -> ZkDatabase {
    let mut db = ZkDatabase::new();
    let mut zxid = 0i64;
    let mut run = |db: &mut ZkDatabase, session_id: i64, op: TxnOp| {
        zxid += 1;
        let origin = Origin {
            server: 0,
            seq: zxid as u64,
        };
        let txn = Txn::for_test(origin, session_id, 1, 1_700_000_000_000 + zxid, op);
        let _ = db.apply(zxid, &txn);
    };
    let session = 0x100_0000_0000_0001;
    run(
        &mut db,
        session,
        TxnOp::CreateSession {
            timeout: 10_000,
            passwd: Bytes::from_static(&[3; 16]),
        },
    );
    let count = u.int_in_range(0..=12u8).unwrap_or(0);
    for _ in 0..count {
        let depth = u.int_in_range(1..=3u8).unwrap_or(1);
        let mut path = String::new();
        for _ in 0..depth {
            path.push('/');
            path.push_str(NAMES[usize::from(u.arbitrary::<u8>().unwrap_or(0)) % NAMES.len()]);
        }
        let len = usize::from(u.arbitrary::<u8>().unwrap_or(0) % 40);
        let data = u.bytes(len).map(Bytes::copy_from_slice).ok();
        // Persistent, ephemeral or sequential.
        let flags = i32::from(u.arbitrary::<u8>().unwrap_or(0) % 3);
        run(
            &mut db,
            session,
            TxnOp::Create {
                opcode: OpCode::Create,
                request: CreateRequest {
                    path,
                    data,
                    acl: Acl::open_unsafe(),
                    flags,
                },
            },
        );
    }
    db
}

/// A snapshot file as the server writes one (see `SnapshotBuilder::build_snapshot`
/// and `persist_snapshot`): the database and openraft's metadata, sealed or not.
pub(crate) fn snapshot_file(db: &ZkDatabase, index: u64, sealed: bool) -> Vec<u8> {
    let file = SnapshotFile {
        meta: SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("{index}-fuzz"),
        },
        database: db.to_snapshot().expect("a database encodes"),
    };
    let bytes = rmp_serde::to_vec(&file).expect("a snapshot file encodes");
    if sealed {
        seal(&bytes)
    } else {
        bytes
    }
}

fn damaged_snapshot(input: &[u8]) {
    let mut u = Unstructured::new(input);
    let sealed = u.arbitrary::<bool>().unwrap_or(true);
    let db = database(&mut u);
    let original = snapshot_file(&db, 7, sealed);
    let damage = draw_damage(&mut u, 4);
    let mut raw = original.clone();
    for (_, d) in &damage {
        d.apply(&mut raw);
    }
    let path = Path::new("snapshot.00000000000000000007");
    let bound = 64 * raw.len() + SERDE_PREALLOCATION + 4096;
    let read = bounded("reading a snapshot", bound, || {
        read_snapshot_file(path, &raw)
    });
    match read {
        Ok((file, restored)) => {
            if sealed || raw == original {
                assert_eq!(restored, db, "a sealed snapshot read back another database");
                assert_eq!(file.meta.last_log_id.map(|l| l.index), Some(7));
            } else {
                consistent(&restored);
            }
        }
        Err(e) => {
            assert_ne!(raw, original, "an intact snapshot does not read: {e}");
            if sealed && raw.starts_with(b"ZKRSSNP2") {
                assert!(e.to_string().contains("is corrupt"), "{e}");
            } else {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// Tree inconsistencies of content, not structure, that the decoders do not check and
/// an unchecked file (unsealed, or a bare database encoding) can therefore carry: the
/// Stat zxids as stored, and children under a znode marked ephemeral. A sealed file
/// cannot carry them undetected (its checksum covers the database the server wrote).
fn unchecked_content(problem: &str) -> bool {
    problem.contains(" has zxids out of order: ")
        || (problem.starts_with("ephemeral ") && problem.ends_with(" has children"))
}

/// What holds of any database read from a snapshot: its tree is consistent (but for
/// [`unchecked_content`]), and it survives a snapshot round trip.
fn consistent(db: &ZkDatabase) {
    if let Err(e) = db.tree().check_consistency() {
        assert!(
            unchecked_content(&e),
            "a snapshot read as an inconsistent tree: {e}"
        );
    }
    let bytes = db.to_snapshot().expect("a database read encodes");
    let again = ZkDatabase::from_snapshot(&bytes).expect("and decodes");
    assert_eq!(&again, db, "a snapshot round trip changed the database");
}

fn raw_snapshot(input: &[u8]) {
    let bound = 64 * input.len() + SERDE_PREALLOCATION + 4096;
    let path = Path::new("snapshot.00000000000000000001");
    if let Ok((_, db)) = bounded("reading a snapshot file", bound, || {
        read_snapshot_file(path, input)
    }) {
        consistent(&db);
    }
    if let Ok(db) = bounded("decoding a database", bound, || {
        ZkDatabase::from_snapshot(input)
    }) {
        consistent(&db);
    }
}

fn apache_files(input: &[u8]) {
    let bound = 64 * input.len() + SERDE_PREALLOCATION + 4096;
    if let Ok(snapshot) = bounded("parsing an Apache snapshot", bound, || {
        ApacheSnapshot::parse(input)
    }) {
        let bytes = snapshot.to_bytes();
        let again = ApacheSnapshot::parse(&bytes).expect("a parsed snapshot re-encodes");
        assert_eq!(again, snapshot, "an Apache snapshot round trip changed it");
    }
    let _ = bounded("parsing an Apache transaction log", bound, || {
        parse_log_tail(input)
    });
}

/// The seed corpus of valid files (written by `zk-server/examples/write_fuzz_seeds.rs`),
/// as (file name, input): snapshot files of both versions as the server writes them,
/// bare database encodings, an Apache snapshot converted from a database, an Apache
/// transaction log, and a few parameter sets for the damaged log and snapshot modes.
/// The version-1 database encodings hold hash maps: their bytes vary from run to run.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut with = |name: &str, selector: u8, bytes: &[u8]| {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        seeds.push((name.to_string(), seed));
    };
    for (i, params) in [
        &[0u8, 0, 20, 0][..],
        &[1, 2, 30, 2, 5, 40, 3, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10][..],
        &[2, 3, 47, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1][..],
    ]
    .iter()
    .enumerate()
    {
        with(&format!("log-{i}"), 0, params);
    }
    let inputs: [&[u8]; 3] = [
        &[1, 0],
        &[1, 5, 1, 2, 0, 3, 4, 97, 98, 99, 2, 2, 1, 0],
        &[
            0, 8, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ],
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        with(&format!("snapshot-damaged-{i}"), 1, bytes);
        let db = database(&mut Unstructured::new(&bytes[1..]));
        with(
            &format!("snapshot-v2-sealed-{i}"),
            2,
            &snapshot_file(&db, 5, true),
        );
        with(
            &format!("snapshot-v2-unsealed-{i}"),
            2,
            &snapshot_file(&db, 5, false),
        );
        with(
            &format!("database-v2-{i}"),
            2,
            &db.to_snapshot().expect("a database encodes"),
        );
        with(&format!("database-v1-{i}"), 2, &db.to_v1_snapshot());
        let apache = crate::apache_data::convert::to_snapshot(&db);
        with(&format!("apache-snapshot-{i}"), 3, &apache.to_bytes());
    }
    let log = log_file(
        &[
            (header(1, -10), vec![0, 0, 0x27, 0x10]),
            (header(2, -11), vec![]),
        ],
        16,
    );
    with("apache-txnlog", 3, &log);
    seeds
}
