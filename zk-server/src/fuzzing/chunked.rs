//! [`ChunkedReader`]: a byte stream handed to a decoder a few bytes at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// An [`AsyncRead`] over a slice that hands out at most `step` bytes a read (fewer if
/// the caller's buffer is smaller), and then end of stream, so that a decoder is fed
/// incrementally: lengths and payloads cut at every boundary. Optionally every other
/// read is first [`Poll::Pending`] (its waker woken at once), so that the decoder is
/// also suspended between chunks.
pub struct ChunkedReader<'a> {
    data: &'a [u8],
    at: usize,
    step: usize,
    /// Every other read is pending first.
    alternate: bool,
    /// The next read is pending first (with `alternate`).
    pend_next: bool,
}

impl<'a> ChunkedReader<'a> {
    /// `data`, `step` bytes a read, every read ready at once.
    pub fn new(data: &'a [u8], step: usize) -> Self {
        ChunkedReader {
            data,
            at: 0,
            step,
            alternate: false,
            pend_next: false,
        }
    }

    /// `data`, `step` bytes a read, every other read pending first: the first one
    /// if `pend_first`, else the second.
    pub fn alternating(data: &'a [u8], step: usize, pend_first: bool) -> Self {
        ChunkedReader {
            data,
            at: 0,
            step,
            alternate: true,
            pend_next: pend_first,
        }
    }

    /// How many bytes were handed out.
    pub fn position(&self) -> usize {
        self.at
    }
}

impl AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pend_next {
            this.pend_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.pend_next = this.alternate;
        let end = this
            .data
            .len()
            .min(this.at + this.step)
            .min(this.at + buf.remaining());
        buf.put_slice(&this.data[this.at..end]);
        this.at = end;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each poll gives, up to end of stream: `None` for pending, else the chunk.
    fn polls(mut reader: ChunkedReader<'_>, buf_len: usize) -> Vec<Option<Vec<u8>>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        loop {
            let mut storage = vec![0u8; buf_len];
            let mut buf = ReadBuf::new(&mut storage);
            match Pin::new(&mut reader).poll_read(&mut cx, &mut buf) {
                Poll::Pending => out.push(None),
                Poll::Ready(r) => {
                    r.expect("never an error");
                    if buf.filled().is_empty() {
                        return out;
                    }
                    out.push(Some(buf.filled().to_vec()));
                }
            }
        }
    }

    #[test]
    fn chunks_of_step_bytes_or_of_the_buffer() {
        let data = [1, 2, 3, 4, 5];
        let chunks = polls(ChunkedReader::new(&data, 2), 8);
        assert_eq!(chunks, [Some(vec![1, 2]), Some(vec![3, 4]), Some(vec![5])]);
        let chunks = polls(ChunkedReader::new(&data, 4), 3);
        assert_eq!(chunks, [Some(vec![1, 2, 3]), Some(vec![4, 5])]);
    }

    #[test]
    fn every_other_read_pending_from_the_first_or_the_second() {
        let data = [1, 2, 3];
        let chunks = polls(ChunkedReader::alternating(&data, 2, true), 8);
        assert_eq!(chunks, [None, Some(vec![1, 2]), None, Some(vec![3]), None]);
        let chunks = polls(ChunkedReader::alternating(&data, 2, false), 8);
        assert_eq!(chunks, [Some(vec![1, 2]), None, Some(vec![3]), None]);
    }
}
