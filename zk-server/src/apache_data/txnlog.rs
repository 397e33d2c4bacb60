//! ZooKeeper's transaction log file (`FileTxnLog`): read.
//!
//! ```text
//! FileHeader   magic "ZKLG" (int), version 2 (int), dbid (long)
//! record       Adler-32 of the entry (long), entry (buffer), 'B' (byte)
//! entry        TxnHeader (clientId long, cxid int, zxid long, time long, type int),
//!              the transaction's record, then (3.6+) a TxnDigest ZooKeeper needs not
//! padding      zeros up to the preallocated size: a record of length 0 ends the log
//! ```
//!
//! A file that ends inside a record was cut short; ZooKeeper drops such a last
//! record as a write torn by a crash, the importer refuses it (see `import`).

use bytes::Bytes;
use zk_proto::Acl;

use super::checksum::adler32;
use super::jute::{JuteError, JuteReader};

/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG" as a big-endian int.
pub const TXNLOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");

/// ZooKeeper's opcodes that appear in the log.
pub mod op {
    /// A failed operation (in a multi, or a whole failed request).
    pub const ERROR: i32 = -1;
    /// create.
    pub const CREATE: i32 = 1;
    /// delete.
    pub const DELETE: i32 = 2;
    /// setData.
    pub const SET_DATA: i32 = 5;
    /// setACL.
    pub const SET_ACL: i32 = 7;
    /// check (in a multi).
    pub const CHECK: i32 = 13;
    /// multi.
    pub const MULTI: i32 = 14;
    /// create2.
    pub const CREATE2: i32 = 15;
    /// reconfig (a setData of /zookeeper/config).
    pub const RECONFIG: i32 = 16;
    /// createContainer.
    pub const CREATE_CONTAINER: i32 = 19;
    /// deleteContainer (the container reaper's delete).
    pub const DELETE_CONTAINER: i32 = 20;
    /// createTTL.
    pub const CREATE_TTL: i32 = 21;
    /// createSession.
    pub const CREATE_SESSION: i32 = -10;
    /// closeSession.
    pub const CLOSE_SESSION: i32 = -11;
}

/// `TxnHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    /// The session.
    pub client_id: i64,
    /// The request's xid.
    pub cxid: i32,
    /// The transaction's zxid.
    pub zxid: i64,
    /// The leader's clock when it was proposed (ms).
    pub time: i64,
    /// The opcode.
    pub op: i32,
}

/// A transaction's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    /// `CreateSessionTxn`.
    CreateSession {
        /// Timeout (ms).
        timeout: i32,
    },
    /// closeSession: `CloseSessionTxn`'s paths, or `None` before 3.6.
    CloseSession {
        /// The ephemerals to delete, as the leader listed them.
        paths: Option<Vec<String>>,
    },
    /// create / create2 / createContainer / createTTL.
    Create {
        /// Which of the four it was logged as (replay treats `create` apart).
        op: i32,
        /// The path.
        path: String,
        /// The data.
        data: Option<Bytes>,
        /// The ACL.
        acl: Vec<Acl>,
        /// The new node's `ephemeralOwner` (session, container or TTL mark, or 0).
        owner: i64,
        /// The parent's cversion after the create (-1: one more than now).
        parent_cversion: i32,
    },
    /// delete / deleteContainer.
    Delete {
        /// The path.
        path: String,
    },
    /// setData / reconfig.
    SetData {
        /// The path.
        path: String,
        /// The data.
        data: Option<Bytes>,
        /// The node's new version.
        version: i32,
    },
    /// setACL.
    SetAcl {
        /// The path.
        path: String,
        /// The ACL.
        acl: Vec<Acl>,
        /// The node's new aversion.
        version: i32,
    },
    /// check (no effect).
    Check,
    /// A failed operation (no effect).
    Error {
        /// The error code.
        err: i32,
    },
    /// multi: its operations in order.
    Multi(Vec<TxnBody>),
}

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    /// The header.
    pub header: TxnHeader,
    /// The transaction.
    pub body: TxnBody,
}

/// What is wrong with a log file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnLogError {
    /// Not a transaction log.
    #[error("not a ZooKeeper transaction log: magic 0x{0:08x}, expected 0x{TXNLOG_MAGIC:08x} (\"ZKLG\")")]
    Magic(i32),
    /// The file ends inside a record.
    #[error(
        "cut short inside the record at byte {offset} (zxid after 0x{after_zxid:x}): {detail}"
    )]
    Truncated {
        /// Where the record starts.
        offset: usize,
        /// The last complete record's zxid.
        after_zxid: i64,
        /// What was missing.
        detail: String,
    },
    /// A record whose checksum does not match.
    #[error("checksum mismatch in the record at byte {offset}: stored 0x{stored:x}, computed 0x{computed:x} (the log is damaged)")]
    Checksum {
        /// Where the record starts.
        offset: usize,
        /// The value in the file.
        stored: i64,
        /// The value of its bytes.
        computed: u32,
    },
    /// A record that checks out but cannot be decoded.
    #[error("the record at byte {offset} is malformed: {detail}")]
    Malformed {
        /// Where the record starts.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
    /// The header itself is cut short or bad.
    #[error("bad file header: {0}")]
    Header(JuteError),
}

/// A log file's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLog {
    /// The complete records, in order.
    pub entries: Vec<TxnEntry>,
    /// Set when the file ends inside a record (a [`TxnLogError::Truncated`]): the
    /// records before it are in `entries`.
    pub torn: Option<TxnLogError>,
}

/// Reads every record of a log file, checking each checksum; a file cut short is an
/// error (see [`parse_log_tail`] for the records before the cut).
pub fn parse_log(bytes: &[u8]) -> Result<Vec<TxnEntry>, TxnLogError> {
    let parsed = parse_log_tail(bytes)?;
    match parsed.torn {
        Some(e) => Err(e),
        None => Ok(parsed.entries),
    }
}

/// Reads every record of a log file, checking each checksum. A file that ends
/// inside a record gives the records before it and the cut in `torn`; any other
/// damage is an error.
pub fn parse_log_tail(bytes: &[u8]) -> Result<ParsedLog, TxnLogError> {
    let mut r = JuteReader::new(bytes);
    let magic = r.i32().map_err(TxnLogError::Header)?;
    if magic != TXNLOG_MAGIC {
        return Err(TxnLogError::Magic(magic));
    }
    r.i32().map_err(TxnLogError::Header)?;
    r.i64().map_err(TxnLogError::Header)?;
    let mut entries = Vec::new();
    loop {
        let offset = r.position();
        let after_zxid = entries.last().map_or(0, |e: &TxnEntry| e.header.zxid);
        let truncated = |detail: String| TxnLogError::Truncated {
            offset,
            after_zxid,
            detail,
        };
        if r.remaining() == 0 {
            break;
        }
        // The preallocated tail is zeros: a zero length (or zeros to the end) ends it.
        let rest = &bytes[offset..];
        if rest.len() < 12 {
            if rest.iter().all(|b| *b == 0) {
                break;
            }
            return Err(truncated(format!(
                "{} bytes of a record header",
                rest.len()
            )));
        }
        let (Ok(stored), Ok(len)) = (r.i64(), r.i32()) else {
            return Ok(torn(entries, truncated("a record header".into())));
        };
        if len == 0 {
            break;
        }
        let len = usize::try_from(len).map_err(|_| TxnLogError::Malformed {
            offset,
            detail: format!("record length {len}"),
        })?;
        let entry = match r.take(len) {
            Ok(entry) => entry,
            Err(e) => return Ok(torn(entries, truncated(e.to_string()))),
        };
        let Ok(eor) = r.byte() else {
            return Ok(torn(entries, truncated("no end-of-record byte".into())));
        };
        let computed = adler32(entry);
        if stored != i64::from(computed) {
            return Err(TxnLogError::Checksum {
                offset,
                stored,
                computed,
            });
        }
        if eor != b'B' {
            return Err(TxnLogError::Malformed {
                offset,
                detail: format!("end-of-record byte 0x{eor:02x}, expected 'B'"),
            });
        }
        let parsed = parse_entry(entry).map_err(|e| TxnLogError::Malformed {
            offset,
            detail: e.to_string(),
        })?;
        entries.push(parsed);
    }
    Ok(ParsedLog {
        entries,
        torn: None,
    })
}

fn torn(entries: Vec<TxnEntry>, cut: TxnLogError) -> ParsedLog {
    ParsedLog {
        entries,
        torn: Some(cut),
    }
}

/// Decodes one entry (`SerializeUtils.deserializeTxn`); trailing bytes (a
/// `TxnDigest`) are ignored.
pub fn parse_entry(bytes: &[u8]) -> Result<TxnEntry, JuteError> {
    let mut r = JuteReader::new(bytes);
    let header = TxnHeader {
        client_id: r.i64()?,
        cxid: r.i32()?,
        zxid: r.i64()?,
        time: r.i64()?,
        op: r.i32()?,
    };
    let body = match header.op {
        op::CREATE_SESSION => TxnBody::CreateSession { timeout: r.i32()? },
        op::CLOSE_SESSION => {
            // CloseSessionTxn (3.6+, zookeeper.closeSessionTxn.enabled); absent before.
            let mut attempt = r.clone();
            // Without one, a 3.6+ record may hold a TxnDigest there instead: paths
            // that are not absolute mean it was not a CloseSessionTxn.
            match read_strings(&mut attempt) {
                Ok(paths) if paths.iter().all(|p| p.starts_with('/')) => {
                    TxnBody::CloseSession { paths: Some(paths) }
                }
                _ => TxnBody::CloseSession { paths: None },
            }
        }
        op::MULTI => {
            let n = r.vector_len(8)?.unwrap_or(0);
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                let sub_op = r.i32()?;
                let at = r.position();
                let data = r.buffer()?.unwrap_or_default();
                let mut sub = JuteReader::new(data);
                let body = parse_body(sub_op, header.client_id, &mut sub).map_err(|e| {
                    JuteError::Invalid {
                        offset: at,
                        reason: format!("in a multi's operation: {e}"),
                    }
                })?;
                ops.push(body);
            }
            TxnBody::Multi(ops)
        }
        other => parse_body(other, header.client_id, &mut r)?,
    };
    Ok(TxnEntry { header, body })
}

fn read_strings(r: &mut JuteReader<'_>) -> Result<Vec<String>, JuteError> {
    let n = r.vector_len(4)?.unwrap_or(0);
    (0..n).map(|_| r.string()).collect()
}

/// The record of a single (non-multi) operation.
fn parse_body(op: i32, session: i64, r: &mut JuteReader<'_>) -> Result<TxnBody, JuteError> {
    Ok(match op {
        op::CREATE | op::CREATE2 => {
            let path = r.string()?;
            let data = r.bytes()?;
            let acl = r.acl_list()?;
            let ephemeral = r.bool()?;
            // CreateTxnV0 (before 3.3) had no parentCVersion: -1 means "one more".
            let parent_cversion = if r.remaining() >= 4 { r.i32()? } else { -1 };
            TxnBody::Create {
                op,
                path,
                data,
                acl,
                owner: if ephemeral { session } else { 0 },
                parent_cversion,
            }
        }
        op::CREATE_CONTAINER => TxnBody::Create {
            op,
            path: r.string()?,
            data: r.bytes()?,
            acl: r.acl_list()?,
            owner: crate::tree::CONTAINER_OWNER,
            parent_cversion: r.i32()?,
        },
        op::CREATE_TTL => {
            let path = r.string()?;
            let data = r.bytes()?;
            let acl = r.acl_list()?;
            let parent_cversion = r.i32()?;
            let ttl = r.i64()?;
            TxnBody::Create {
                op,
                path,
                data,
                acl,
                owner: crate::tree::ttl_owner(ttl),
                parent_cversion,
            }
        }
        op::DELETE | op::DELETE_CONTAINER => TxnBody::Delete { path: r.string()? },
        op::SET_DATA | op::RECONFIG => TxnBody::SetData {
            path: r.string()?,
            data: r.bytes()?,
            version: r.i32()?,
        },
        op::SET_ACL => TxnBody::SetAcl {
            path: r.string()?,
            acl: r.acl_list()?,
            version: r.i32()?,
        },
        op::CHECK => {
            r.string()?;
            r.i32()?;
            TxnBody::Check
        }
        op::ERROR => TxnBody::Error { err: r.i32()? },
        other => {
            return Err(JuteError::Invalid {
                offset: 0,
                reason: format!("unsupported transaction type {other}"),
            })
        }
    })
}

/// Transaction log files made by hand, for tests and the `storage_files` fuzz target's
/// seeds.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod samples {
    use super::*;
    use crate::apache_data::jute::JuteWriter;

    /// A log file holding `entries` (header and record bytes), padded with zeros.
    pub(crate) fn log_file(entries: &[(TxnHeader, Vec<u8>)], padding: usize) -> Vec<u8> {
        let mut w = JuteWriter::new();
        w.i32(TXNLOG_MAGIC);
        w.i32(2);
        w.i64(0);
        for (h, body) in entries {
            let mut e = JuteWriter::new();
            e.i64(h.client_id);
            e.i32(h.cxid);
            e.i64(h.zxid);
            e.i64(h.time);
            e.i32(h.op);
            e.buf.extend_from_slice(body);
            w.i64(i64::from(adler32(&e.buf)));
            w.buffer(Some(&e.buf));
            w.byte(b'B');
        }
        w.buf.extend(std::iter::repeat_n(0u8, padding));
        w.buf
    }

    /// The header of a record of session 0x100_0000_0000_0001's request 1, at 5000 ms.
    pub(crate) fn header(zxid: i64, op: i32) -> TxnHeader {
        TxnHeader {
            client_id: 0x100_0000_0000_0001,
            cxid: 1,
            zxid,
            time: 5000,
            op,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::samples::{header, log_file};
    use super::*;
    use crate::apache_data::jute::JuteWriter;

    pub(crate) fn create_body(path: &str, ephemeral: bool, parent_cversion: i32) -> Vec<u8> {
        let mut w = JuteWriter::new();
        w.string(path);
        w.buffer(Some(b"x"));
        w.acl_list(&Acl::open_unsafe());
        w.bool(ephemeral);
        w.i32(parent_cversion);
        w.buf
    }

    #[test]
    fn records_decode_up_to_the_zero_padding() {
        let file = log_file(
            &[
                (
                    header(0x1_0000_0001, op::CREATE_SESSION),
                    30_000i32.to_be_bytes().to_vec(),
                ),
                (
                    header(0x1_0000_0002, op::CREATE),
                    create_body("/e", true, 1),
                ),
            ],
            1000,
        );
        let entries = parse_log(&file).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].body, TxnBody::CreateSession { timeout: 30_000 });
        match &entries[1].body {
            TxnBody::Create {
                path,
                owner,
                parent_cversion,
                ..
            } => {
                assert_eq!(path, "/e");
                assert_eq!(*owner, 0x100_0000_0000_0001);
                assert_eq!(*parent_cversion, 1);
            }
            other => panic!("{other:?}"),
        }
        // Without padding too.
        assert_eq!(parse_log(&file[..file.len() - 1000]).unwrap().len(), 2);
    }

    #[test]
    fn close_session_records_of_every_version_decode() {
        let entry = |body: Vec<u8>| {
            let file = log_file(&[(header(0x1_0000_0009, op::CLOSE_SESSION), body)], 0);
            parse_log(&file).unwrap().remove(0).body
        };
        // 3.6+: the ephemerals to delete.
        let mut w = JuteWriter::new();
        w.i32(1);
        w.string("/e");
        assert_eq!(
            entry(w.buf),
            TxnBody::CloseSession {
                paths: Some(vec!["/e".into()])
            }
        );
        // 3.4 and 3.5: nothing after the header.
        assert_eq!(entry(Vec::new()), TxnBody::CloseSession { paths: None });
        // 3.6+ with zookeeper.closeSessionTxn.enabled=false: only a TxnDigest.
        let mut w = JuteWriter::new();
        w.i32(2);
        w.i64(0x0000_0003_2f61_6263);
        assert_eq!(entry(w.buf), TxnBody::CloseSession { paths: None });
    }

    #[test]
    fn a_flipped_byte_or_a_cut_record_is_an_error() {
        let file = log_file(
            &[(
                header(0x1_0000_0002, op::CREATE),
                create_body("/p", false, 1),
            )],
            100,
        );
        let end = file.len() - 100;
        for i in 16..end {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            assert!(parse_log(&bad).is_err(), "flipped byte {i} accepted");
        }
        // A cut inside the checksum's high bytes (always zero) reads as padding, as
        // in ZooKeeper; from there on a cut is an error.
        for cut in 28..end {
            let err = parse_log(&file[..cut]).unwrap_err();
            assert!(
                matches!(err, TxnLogError::Truncated { offset: 16, .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }
}
