//! Framing: every message after the TCP connect is a 4-byte big-endian length followed
//! by that many bytes.
//!
//! [`FrameDecoder`] splits frames off a receive buffer and refuses a length above its
//! maximum *before* reading (or allocating for) the body, so a hostile length prefix
//! costs nothing. It tells "need more bytes" (`Ok(None)`) from "invalid" (`Err`).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Apache ZooKeeper's default `jute.maxbuffer` (`BinaryInputArchive.maxBuffer`): the
/// largest frame its server accepts (`NIOServerCnxn`/`NettyServerCnxn` refuse a length
/// prefix `< 0 || > maxBuffer` and close the connection), and so the largest request a
/// client can send. The default of [`FrameDecoder`].
///
/// There is no extra allowance at frame level. ZooKeeper's
/// `zookeeper.jute.maxbuffer.extrasize` (default `maxBuffer`, at least 1024) is added
/// per *field* when `BinaryInputArchive` checks one buffer or string length, never to
/// the frame limit.
pub const DEFAULT_MAX_BUFFER: usize = 1_048_575;

/// Apache ZooKeeper's client default for the largest reply frame it reads
/// (`ZKClientConfig.CLIENT_MAX_PACKET_LENGTH_DEFAULT`, the client's `jute.maxbuffer`):
/// `ClientCnxnSocket.readLength` refuses a length `< 0 || > packetLen` and drops the
/// connection. Equal to [`DEFAULT_MAX_BUFFER`].
///
/// A consequence ZooKeeper shares: a znode holding close to 1 MB of data can be
/// written (the request fits in 1,048,575 bytes) but a default client cannot read it
/// back (the reply adds its header and the Stat); the Java client needs a larger
/// `jute.maxbuffer` for that.
pub const CLIENT_MAX_PACKET_LENGTH: usize = 1_048_575;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Most room [`FrameDecoder::decode`] reserves beyond the bytes already received for a
/// frame still arriving: a peer that announces a large frame and sends it slowly (or
/// never) costs what it sent plus this, not the announced length.
pub const READ_AHEAD: usize = 64 * 1024;

/// Why a frame was refused. Either way the connection cannot continue: the stream is
/// no longer at a frame boundary that can be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the configured maximum.
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The advertised length.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The length prefix is negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// Reading or writing the transport failed (only from the tokio codec).
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits length-prefixed frames off a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_len: usize,
}

impl Default for FrameDecoder {
    /// [`DEFAULT_MAX_BUFFER`] (1,048,575 bytes), the limit of Apache ZooKeeper's server
    /// and client with default settings.
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_BUFFER)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_len` bytes (after the prefix); a
    /// frame of exactly `max_len` bytes is accepted, as in ZooKeeper.
    pub fn new(max_len: usize) -> Self {
        FrameDecoder { max_len }
    }

    /// The largest frame accepted.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes the next whole frame's payload off the front of `buf`, or `Ok(None)` when
    /// more bytes are needed. An invalid length is an error as soon as its 4 bytes are in.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(len).map_err(|_| FrameError::NegativeLength(len))?;
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let total = LENGTH_PREFIX + len;
        if buf.len() < total {
            // Room for the rest of the frame, but never more than READ_AHEAD ahead of
            // what arrived: the buffer grows with the data, not with the claim.
            buf.reserve((total - buf.len()).min(READ_AHEAD));
            return Ok(None);
        }
        buf.advance(LENGTH_PREFIX);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Appends one frame to `dst`: a length prefix, then whatever `body` writes.
pub fn write_frame(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = dst.len();
    dst.put_i32(0);
    body(dst);
    let len = dst.len() - start - LENGTH_PREFIX;
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    dst[start..start + LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
}

#[cfg(feature = "tokio-codec")]
mod codec {
    use super::*;

    impl tokio_util::codec::Decoder for FrameDecoder {
        type Item = Bytes;
        type Error = FrameError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
            FrameDecoder::decode(self, src)
        }
    }

    impl tokio_util::codec::Encoder<Bytes> for FrameDecoder {
        type Error = FrameError;

        fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
            if payload.len() > self.max_len {
                return Err(FrameError::TooLarge {
                    len: payload.len(),
                    max: self.max_len,
                });
            }
            write_frame(dst, |w| w.put_slice(&payload));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_partial_ones() {
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |w| w.put_slice(b"hello"));
        write_frame(&mut buf, |w| w.put_slice(b"!"));
        let whole = buf.clone();
        let mut dec = FrameDecoder::default();
        assert_eq!(
            dec.decode(&mut buf).unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(dec.decode(&mut buf).unwrap().as_deref(), Some(&b"!"[..]));
        assert_eq!(dec.decode(&mut buf).unwrap(), None);

        // Byte by byte: nothing until the frame is complete.
        let mut partial = BytesMut::new();
        for (i, b) in whole[..9].iter().enumerate() {
            partial.put_u8(*b);
            let got = dec.decode(&mut partial).unwrap();
            assert_eq!(got.is_some(), i == 8, "after {} bytes", i + 1);
        }
    }

    #[test]
    fn oversize_length_is_refused_before_the_body_arrives() {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_BUFFER);
        let mut buf = BytesMut::from(&(DEFAULT_MAX_BUFFER as i32 + 1).to_be_bytes()[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::TooLarge { len, max }) if len == DEFAULT_MAX_BUFFER + 1 && max == DEFAULT_MAX_BUFFER
        ));
        // Nothing was reserved for the refused body.
        assert!(buf.capacity() < 1024);
    }

    /// An announced length within the maximum used to reserve the whole frame (up to
    /// `jute.maxbuffer`) before any of it arrived; the fuzz targets' allocation bound
    /// (`fuzzing::bounded`) refuses that.
    #[test]
    fn an_announced_length_reserves_at_most_the_read_ahead() {
        let mut dec = FrameDecoder::new(DEFAULT_MAX_BUFFER);
        let mut buf = BytesMut::from(&(DEFAULT_MAX_BUFFER as i32).to_be_bytes()[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 2 * READ_AHEAD, "{}", buf.capacity());
        // The frame still completes as its bytes arrive.
        let body = vec![7u8; DEFAULT_MAX_BUFFER];
        for chunk in body.chunks(100_000) {
            assert_eq!(dec.decode(&mut buf).unwrap(), None);
            buf.extend_from_slice(chunk);
        }
        let frame = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.len(), DEFAULT_MAX_BUFFER);
        assert!(buf.is_empty());
    }

    #[test]
    fn exactly_max_is_accepted() {
        let mut dec = FrameDecoder::new(8);
        let mut buf = BytesMut::new();
        write_frame(&mut buf, |w| w.put_slice(&[7; 8]));
        assert_eq!(dec.decode(&mut buf).unwrap().map(|b| b.len()), Some(8));
    }

    #[test]
    fn default_limit_is_apache_zookeepers_with_no_allowance() {
        let mut dec = FrameDecoder::default();
        assert_eq!(dec.max_len(), 1_048_575);
        let mut at_limit = BytesMut::new();
        write_frame(&mut at_limit, |w| w.put_slice(&vec![1; 1_048_575]));
        assert_eq!(
            dec.decode(&mut at_limit).unwrap().map(|b| b.len()),
            Some(1_048_575)
        );
        let mut one_over = BytesMut::from(&1_048_576i32.to_be_bytes()[..]);
        assert!(matches!(
            dec.decode(&mut one_over),
            Err(FrameError::TooLarge {
                len: 1_048_576,
                max: 1_048_575
            })
        ));
    }

    #[test]
    fn negative_length_is_refused() {
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(FrameError::NegativeLength(-5))
        ));
    }
}
