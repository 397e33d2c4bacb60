//! The jute encoding of ZooKeeper's files, over a byte slice: big-endian ints and
//! longs, length-prefixed buffers and strings (-1 = null), counted vectors. The
//! reader reports where it stopped (the offset), so an error can say where a file is
//! damaged; the writer appends to a `Vec<u8>`.

use bytes::Bytes;
use zk_proto::{Acl, Id};

use crate::tree::StoredStat;

/// Why bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    /// The bytes end inside a value: the file was cut short.
    #[error("cut short at byte {offset}: {wanted} more bytes needed, {available} left")]
    Short {
        /// Where the value starts.
        offset: usize,
        /// Bytes the value needs.
        wanted: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A value that cannot be right (a negative length, a bad string).
    #[error("at byte {offset}: {reason}")]
    Invalid {
        /// Where the value starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A cursor over jute-encoded bytes.
#[derive(Debug, Clone)]
pub struct JuteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> JuteReader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> JuteReader<'a> {
        JuteReader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes consumed so far.
    pub fn consumed(&self) -> &'a [u8] {
        &self.buf[..self.pos]
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Short {
                offset: self.pos,
                wanted: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A byte.
    pub fn byte(&mut self) -> Result<u8, JuteError> {
        Ok(self.take(1)?[0])
    }

    /// A boolean (one byte, non-zero is true).
    pub fn bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.byte()? != 0)
    }

    /// An int.
    pub fn i32(&mut self) -> Result<i32, JuteError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A long.
    pub fn i64(&mut self) -> Result<i64, JuteError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn length(&mut self) -> Result<Option<usize>, JuteError> {
        let at = self.pos;
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(JuteError::Invalid {
                offset: at,
                reason: format!("negative length {n}"),
            }),
            n => Ok(Some(n as usize)),
        }
    }

    /// A buffer (`None` for null).
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, JuteError> {
        match self.length()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// A string (`None` for null).
    pub fn ustring(&mut self) -> Result<Option<String>, JuteError> {
        let at = self.pos;
        match self.buffer()? {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| JuteError::Invalid {
                    offset: at,
                    reason: "a string that is not UTF-8".into(),
                }),
        }
    }

    /// A string that must not be null.
    pub fn string(&mut self) -> Result<String, JuteError> {
        let at = self.pos;
        self.ustring()?.ok_or(JuteError::Invalid {
            offset: at,
            reason: "a null string".into(),
        })
    }

    /// A vector's count (`None` for null); each element takes at least `min_size`
    /// bytes, so a count the remaining bytes cannot hold is refused before anything is
    /// allocated for it.
    pub fn vector_len(&mut self, min_size: usize) -> Result<Option<usize>, JuteError> {
        let at = self.pos;
        let n = self.length()?;
        if let Some(n) = n {
            let needed = n.saturating_mul(min_size.max(1));
            if needed > self.remaining() {
                return Err(JuteError::Short {
                    offset: at,
                    wanted: needed,
                    available: self.remaining(),
                });
            }
        }
        Ok(n)
    }

    /// An `ACL` record (perms, then the `Id`'s scheme and id).
    pub fn acl(&mut self) -> Result<Acl, JuteError> {
        let perms = self.i32()?;
        let scheme = self.string()?;
        let id = self.string()?;
        Ok(Acl {
            perms,
            id: Id { scheme, id },
        })
    }

    /// A `vector<ACL>` (null reads as empty).
    pub fn acl_list(&mut self) -> Result<Vec<Acl>, JuteError> {
        let n = self.vector_len(12)?.unwrap_or(0);
        (0..n).map(|_| self.acl()).collect()
    }

    /// A `StatPersisted` record.
    pub fn stat_persisted(&mut self) -> Result<StoredStat, JuteError> {
        Ok(StoredStat {
            czxid: self.i64()?,
            mzxid: self.i64()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            pzxid: self.i64()?,
        })
    }

    /// A buffer copied out (`None` for null).
    pub fn bytes(&mut self) -> Result<Option<Bytes>, JuteError> {
        Ok(self.buffer()?.map(Bytes::copy_from_slice))
    }
}

/// Appends jute-encoded values.
#[derive(Debug, Default)]
pub struct JuteWriter {
    /// What has been written.
    pub buf: Vec<u8>,
}

impl JuteWriter {
    /// An empty writer.
    pub fn new() -> JuteWriter {
        JuteWriter::default()
    }

    /// A byte.
    pub fn byte(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A boolean.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// An int.
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A long.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A buffer (`None` for null).
    pub fn buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.buf.extend_from_slice(b);
            }
        }
    }

    /// A string.
    pub fn string(&mut self, v: &str) {
        self.buffer(Some(v.as_bytes()));
    }

    /// An `ACL` record.
    pub fn acl(&mut self, acl: &Acl) {
        self.i32(acl.perms);
        self.string(&acl.id.scheme);
        self.string(&acl.id.id);
    }

    /// A `vector<ACL>`.
    pub fn acl_list(&mut self, acls: &[Acl]) {
        self.i32(acls.len() as i32);
        for acl in acls {
            self.acl(acl);
        }
    }

    /// A `StatPersisted` record.
    pub fn stat_persisted(&mut self, s: &StoredStat) {
        self.i64(s.czxid);
        self.i64(s.mzxid);
        self.i64(s.ctime);
        self.i64(s.mtime);
        self.i32(s.version);
        self.i32(s.cversion);
        self.i32(s.aversion);
        self.i64(s.ephemeral_owner);
        self.i64(s.pzxid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut w = JuteWriter::new();
        w.i32(-7);
        w.i64(0x0102_0304_0506_0708);
        w.buffer(None);
        w.string("/a");
        w.bool(true);
        w.acl_list(&Acl::open_unsafe());
        let stat = StoredStat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            pzxid: 9,
        };
        w.stat_persisted(&stat);
        let mut r = JuteReader::new(&w.buf);
        assert_eq!(r.i32(), Ok(-7));
        assert_eq!(r.i64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(r.buffer(), Ok(None));
        assert_eq!(r.string(), Ok("/a".to_string()));
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.acl_list(), Ok(Acl::open_unsafe()));
        assert_eq!(r.stat_persisted(), Ok(stat));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn short_and_bad_lengths_are_reported_with_their_offset() {
        let mut r = JuteReader::new(&[0, 0, 0, 9, b'x']);
        assert_eq!(
            r.buffer(),
            Err(JuteError::Short {
                offset: 4,
                wanted: 9,
                available: 1
            })
        );
        let mut r = JuteReader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(matches!(
            r.buffer(),
            Err(JuteError::Invalid { offset: 0, .. })
        ));
        // A vector count far beyond the bytes left allocates nothing.
        let mut r = JuteReader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(r.acl_list(), Err(JuteError::Short { .. })));
    }
}
