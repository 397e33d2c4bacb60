//! ZooKeeper's snapshot file (`FileSnap`), uncompressed, read and written.
//!
//! ```text
//! FileHeader      magic "ZKSN" (int), version 2 (int), dbid (long)
//! sessions        count (int), then (id: long, timeout: int) each
//! ACL cache       count (int), then (key: long, vector<ACL>) each
//! nodes           (path: ustring, data: buffer, acl key: long, StatPersisted) each,
//!                 parents before children, the root's path "" first
//! "/"             the end of the nodes (a ustring)
//! seal            Adler-32 of every byte before it (long), then "/" (ustring)
//! digest (3.6+)   zxid (long), digest version (int), digest (long), then a seal
//!                 whose Adler-32 covers everything before it, the first seal included
//! ```
//!
//! A node's ACL key -1 is `OPEN_ACL_UNSAFE` without a cache entry (what ZooKeeper
//! gives its own system nodes).

use bytes::Bytes;
use zk_proto::Acl;

use super::checksum::Adler32;
use super::jute::{JuteError, JuteReader, JuteWriter};
use crate::tree::StoredStat;

/// `FileSnap.SNAP_MAGIC`: "ZKSN" as a big-endian int.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// The only snapshot format version (`FileSnap.VERSION`).
pub const SNAP_VERSION: i32 = 2;
/// The ACL key of `OPEN_ACL_UNSAFE` outside the cache.
pub const OPEN_UNSAFE_ACL_KEY: i64 = -1;

/// One znode as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Its path (`""` for the root).
    pub path: String,
    /// Its data (`None`: null).
    pub data: Option<Bytes>,
    /// Its key in the ACL cache.
    pub acl: i64,
    /// Its persisted Stat.
    pub stat: StoredStat,
}

/// The tree digest a 3.6+ snapshot carries after its first seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    /// The zxid the digest is of (0: none).
    pub zxid: i64,
    /// The digest algorithm's version.
    pub version: i32,
    /// The digest.
    pub digest: i64,
}

/// A snapshot's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApacheSnapshot {
    /// The header's dbid (-1 as ZooKeeper writes it).
    pub dbid: i64,
    /// Open sessions: id and timeout (ms).
    pub sessions: Vec<(i64, i32)>,
    /// The ACL cache: key and ACL.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// The znodes, parents first.
    pub nodes: Vec<SnapshotNode>,
    /// The digest section, if the snapshot has one.
    pub digest: Option<ZxidDigest>,
}

/// What is wrong with a snapshot's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Bytes missing or malformed.
    #[error(transparent)]
    Jute(#[from] JuteError),
    /// The header is not a snapshot's.
    #[error("not a ZooKeeper snapshot: magic 0x{0:08x}, expected 0x{SNAP_MAGIC:08x} (\"ZKSN\")")]
    Magic(i32),
    /// An Adler-32 seal does not match the bytes before it.
    #[error("checksum mismatch at byte {offset}: stored 0x{stored:x}, computed 0x{computed:x} (the snapshot is damaged)")]
    Checksum {
        /// Where the seal is.
        offset: usize,
        /// The value in the file.
        stored: i64,
        /// The value of the bytes read.
        computed: u32,
    },
    /// A seal without its "/" marker.
    #[error("at byte {0}: a checksum seal without its \"/\" marker")]
    Seal(usize),
}

/// Checks a seal at the reader's position: `sum` covers the bytes up to `summed`.
fn check_seal(
    r: &mut JuteReader<'_>,
    sum: &mut Adler32,
    summed: &mut usize,
) -> Result<(), SnapshotError> {
    let offset = r.position();
    sum.update(&r.consumed()[*summed..offset]);
    *summed = offset;
    let stored = r.i64()?;
    let computed = sum.value();
    if stored != i64::from(computed) {
        return Err(SnapshotError::Checksum {
            offset,
            stored,
            computed,
        });
    }
    if r.string()? != "/" {
        return Err(SnapshotError::Seal(offset));
    }
    Ok(())
}

impl ApacheSnapshot {
    /// Reads an uncompressed snapshot, checking every seal.
    pub fn parse(bytes: &[u8]) -> Result<ApacheSnapshot, SnapshotError> {
        let mut r = JuteReader::new(bytes);
        let magic = r.i32()?;
        if magic != SNAP_MAGIC {
            return Err(SnapshotError::Magic(magic));
        }
        let _version = r.i32()?;
        let dbid = r.i64()?;
        let count = r.vector_len(12)?.unwrap_or(0);
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            sessions.push((r.i64()?, r.i32()?));
        }
        let count = r.vector_len(12)?.unwrap_or(0);
        let mut acls = Vec::with_capacity(count);
        for _ in 0..count {
            let key = r.i64()?;
            acls.push((key, r.acl_list()?));
        }
        let mut nodes = Vec::new();
        loop {
            let path = r.string()?;
            if path == "/" {
                break;
            }
            let data = r.bytes()?;
            let acl = r.i64()?;
            let stat = r.stat_persisted()?;
            nodes.push(SnapshotNode {
                path,
                data,
                acl,
                stat,
            });
        }
        let mut sum = Adler32::new();
        let mut summed = 0;
        check_seal(&mut r, &mut sum, &mut summed)?;
        let mut digest = None;
        if r.remaining() > 0 {
            let d = ZxidDigest {
                zxid: r.i64()?,
                version: r.i32()?,
                digest: r.i64()?,
            };
            check_seal(&mut r, &mut sum, &mut summed)?;
            digest = Some(d);
        }
        if r.remaining() > 0 {
            tracing::warn!(
                bytes = r.remaining(),
                "snapshot has sections after its digest that this reader does not know; ignored"
            );
        }
        Ok(ApacheSnapshot {
            dbid,
            sessions,
            acls,
            nodes,
            digest,
        })
    }

    /// The uncompressed file contents, sealed as ZooKeeper 3.8 seals them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        w.i32(SNAP_MAGIC);
        w.i32(SNAP_VERSION);
        w.i64(self.dbid);
        w.i32(self.sessions.len() as i32);
        for (id, timeout) in &self.sessions {
            w.i64(*id);
            w.i32(*timeout);
        }
        w.i32(self.acls.len() as i32);
        for (key, acl) in &self.acls {
            w.i64(*key);
            w.acl_list(acl);
        }
        for node in &self.nodes {
            w.string(&node.path);
            w.buffer(node.data.as_deref());
            w.i64(node.acl);
            w.stat_persisted(&node.stat);
        }
        w.string("/");
        let mut sum = Adler32::new();
        let mut summed = 0;
        seal(&mut w, &mut sum, &mut summed);
        if let Some(d) = self.digest {
            w.i64(d.zxid);
            w.i32(d.version);
            w.i64(d.digest);
            seal(&mut w, &mut sum, &mut summed);
        }
        w.buf
    }
}

fn seal(w: &mut JuteWriter, sum: &mut Adler32, summed: &mut usize) {
    sum.update(&w.buf[*summed..]);
    *summed = w.buf.len();
    w.i64(i64::from(sum.value()));
    w.string("/");
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> ApacheSnapshot {
        let stat = |zxid: i64| StoredStat {
            czxid: zxid,
            mzxid: zxid,
            ctime: 1000,
            mtime: 2000,
            version: 1,
            cversion: 2,
            aversion: 3,
            ephemeral_owner: 0,
            pzxid: zxid,
        };
        ApacheSnapshot {
            dbid: -1,
            sessions: vec![(0x100_0000_0000_0001, 30_000)],
            acls: vec![(1, Acl::open_unsafe()), (2, Acl::read_unsafe())],
            nodes: vec![
                SnapshotNode {
                    path: String::new(),
                    data: Some(Bytes::new()),
                    acl: -1,
                    stat: StoredStat::default(),
                },
                SnapshotNode {
                    path: "/a".into(),
                    data: Some(Bytes::from_static(b"hello")),
                    acl: 1,
                    stat: stat(0x1_0000_0002),
                },
                SnapshotNode {
                    path: "/a/b".into(),
                    data: None,
                    acl: 2,
                    stat: stat(0x1_0000_0003),
                },
            ],
            digest: Some(ZxidDigest {
                zxid: 0,
                version: 2,
                digest: 0,
            }),
        }
    }

    #[test]
    fn a_snapshot_round_trips_and_ends_as_zookeeper_checks() {
        let snap = sample();
        let bytes = snap.to_bytes();
        assert_eq!(&bytes[..4], b"ZKSN");
        // SnapStream.isValidSnapshot: the file ends with the string "/".
        assert_eq!(&bytes[bytes.len() - 5..], &[0, 0, 0, 1, b'/']);
        assert_eq!(ApacheSnapshot::parse(&bytes), Ok(snap.clone()));
        let mut old = snap;
        old.digest = None;
        assert_eq!(ApacheSnapshot::parse(&old.to_bytes()), Ok(old));
    }

    #[test]
    fn any_flipped_byte_or_cut_is_refused() {
        let bytes = sample().to_bytes();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                ApacheSnapshot::parse(&bad).is_err(),
                "flipped byte {i} accepted"
            );
        }
        for len in 0..bytes.len() - 33 {
            assert!(
                ApacheSnapshot::parse(&bytes[..len]).is_err(),
                "cut at {len} accepted"
            );
        }
    }
}
