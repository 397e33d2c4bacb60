//! One client connection's I/O: the handshake frame read, then two loops — the reader
//! decodes frames and hands each to the connection's dispatch ([`super::dispatch`]),
//! which never makes it wait for an answer; the writer writes what the connection's
//! outbox holds, answers and notifications, in the outbox's order
//! ([`crate::session_order`]), batching them into few socket writes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument};
use zk_proto::frame::{write_frame, FrameDecoder};
use zk_proto::{xid, ErrorCode, Id, OpCode, Record, ReplyHeader, Response, WatcherEvent};

use super::dispatch::Dispatcher;
use super::four_letter;
use super::handshake::{handshake, Accepted};
use crate::core::{notification_bytes, ConnCounters, ServerCore};
use crate::session_order::{Answer, Outgoing, Ticket};

/// Requests a connection may have read and not yet answered before its reader stops
/// reading (backpressure to the client instead of unbounded memory).
const PENDING_QUEUE: usize = 1024;

/// Output buffered before a flush is forced.
const FLUSH_AT: usize = 64 * 1024;

/// A connection's read buffer starts this small (an idle connection holds little)
/// and grows with the frames that arrive.
const READ_START: usize = 1024;

/// An emptied read buffer with more room than this (after a large request) is given
/// back for a new one of [`READ_START`]; so is one with less than [`READ_MIN_ROOM`]
/// left (the tail of a block whose frames are still in use).
const READ_KEEP: usize = 16 * 1024;

/// See [`READ_KEEP`].
const READ_MIN_ROOM: usize = 128;

/// An output buffer that grew past this (a large reply, a burst) is given back once
/// written; the output starts empty and grows with what it holds.
const WRITE_KEEP: usize = 4 * 1024;

/// Serves one accepted plain connection until it closes.
pub async fn serve(
    core: Arc<ServerCore>,
    stream: TcpStream,
    remote: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    serve_halves(core, rd, wr, remote, Vec::new(), shutdown).await;
}

/// Serves one connection, given as the two halves of its byte stream (a TCP socket's,
/// or a TLS session's once its handshake is done), until it closes. `identities` are
/// the connection's own besides its `ip` one (a TLS client's `x509` identity).
pub async fn serve_halves<R, W>(
    core: Arc<ServerCore>,
    mut rd: R,
    wr: W,
    remote: SocketAddr,
    identities: Vec<Id>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 4];
    if rd.read_exact(&mut first).await.is_err() {
        return;
    }
    if let Some(cmd) = four_letter::command(first) {
        four_letter::serve(&core, cmd, remote, wr).await;
        return;
    }
    let len = i32::from_be_bytes(first);
    let max = core.config.jute_max_buffer;
    let Ok(len) = usize::try_from(len) else {
        debug!(%remote, len, "negative length before handshake; closing");
        return;
    };
    if len == 0 || len > max {
        debug!(%remote, len, "implausible handshake length; closing");
        return;
    }
    let mut body = Vec::new();
    if !read_handshake_body(&mut rd, len, &mut body).await {
        debug!(%remote, len, "closed before its handshake arrived");
        return;
    }
    let Some(accepted) = handshake(&core, remote, identities, &shutdown, Bytes::from(body)).await
    else {
        return;
    };
    let Accepted {
        conn,
        session_id,
        read_only,
        auth,
        close,
        counters,
        outbox: outbox_rx,
        outbox_tx,
        response,
    } = accepted;
    let mut wr = wr;
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| response.write(w));
    if wr.write_all(&out).await.is_err() || session_id == 0 {
        core.unregister_connection(conn);
        return;
    }
    core.stats.record_sent();
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let span =
        tracing::info_span!("connection", session = format_args!("0x{session_id:x}"), %remote);
    debug!(parent: &span, "session established");

    let writer = tokio::spawn(
        write_loop(core.clone(), wr, outbox_rx, close.clone(), counters.clone())
            .instrument(span.clone()),
    );
    let mut dispatch = Dispatcher::new(
        core.clone(),
        conn,
        session_id,
        read_only,
        auth,
        close,
        counters,
        outbox_tx,
    );
    read_loop(&mut dispatch, rd).instrument(span.clone()).await;
    // The reader is done (client closed, protocol error, or told to close): the writer
    // finishes what was read, then the connection is forgotten. The session lives on
    // until it expires or is closed.
    dispatch.end();
    drop(dispatch);
    let _ = writer.await;
    core.unregister_connection(conn);
    debug!(parent: &span, "connection closed");
}

/// How much of a handshake's announced length is reserved before any of it arrives.
const HANDSHAKE_RESERVE: usize = 4096;

/// Reads the `len` bytes of the handshake frame's body into `body`; `false` when the
/// stream ends (or fails) first. The buffer grows as bytes arrive, not by the length
/// the client announced: a connection that announces `jute.maxbuffer` and sends four
/// bytes costs four bytes, not a megabyte.
async fn read_handshake_body<R: AsyncRead + Unpin>(
    rd: &mut R,
    len: usize,
    body: &mut Vec<u8>,
) -> bool {
    body.clear();
    body.reserve(len.min(HANDSHAKE_RESERVE));
    let read = (&mut *rd).take(len as u64).read_to_end(body).await;
    matches!(read, Ok(n) if n == len)
}

/// Reads and decodes requests and hands each to the dispatch, until the client closes,
/// a frame is bad, a request closes the connection or the connection is told to close.
async fn read_loop<R: AsyncRead + Unpin>(dispatch: &mut Dispatcher, mut rd: R) {
    let core = dispatch.core.clone();
    let close = dispatch.close.clone();
    let counters = dispatch.counters.clone();
    let queue = Arc::new(Semaphore::new(PENDING_QUEUE));
    let mut decoder = FrameDecoder::new(core.config.jute_max_buffer);
    let mut buf = BytesMut::with_capacity(READ_START);
    loop {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                refresh_read_buffer(&mut buf);
                tokio::select! {
                    _ = close.cancelled() => return,
                    n = rd.read_buf(&mut buf) => match n {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    },
                }
            }
            Err(e) => {
                info!(error = %e, "closing connection: bad frame");
                return;
            }
        };
        // Held until the request is answered: a connection with PENDING_QUEUE requests
        // unanswered reads nothing more until some are.
        let connection = tokio::select! {
            _ = close.cancelled() => return,
            permit = queue.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        // With `globalOutstandingLimit` requests outstanding, a connection that has
        // requests of its own outstanding waits here; one with none goes on, as in
        // ZooKeeper, so a client that stopped reading its replies cannot stall
        // everyone else.
        let global = if counters.outstanding.load(Ordering::SeqCst) == 0 {
            core.try_outstanding_permit()
        } else {
            tokio::select! {
                _ = close.cancelled() => return,
                permit = core.outstanding_permit() => match permit {
                    Some(p) => Some(p),
                    None => return,
                },
            }
        };
        counters.outstanding.fetch_add(1, Ordering::SeqCst);
        let mut ticket = Ticket::new();
        ticket.global = global;
        ticket.connection = Some(connection);
        if !dispatch.frame(frame, ticket) {
            return;
        }
    }
}

/// Swaps an emptied read buffer for a small new one when it holds a large block (a
/// large request's, so a connection does not keep it while idle) or has almost no room
/// left (its block is still shared with frames in use, and a read would have to take
/// a new one anyway).
fn refresh_read_buffer(buf: &mut BytesMut) {
    if buf.is_empty() && !(READ_MIN_ROOM..=READ_KEEP).contains(&buf.capacity()) {
        *buf = BytesMut::with_capacity(READ_START);
    }
}

/// Writes the connection's outbox, in order, until an answer closes the connection,
/// the reader is done and everything is written, or the connection is told to close.
async fn write_loop<W: AsyncWrite + Unpin>(
    core: Arc<ServerCore>,
    mut wr: W,
    mut outbox: mpsc::UnboundedReceiver<Outgoing>,
    close: CancellationToken,
    counters: Arc<ConnCounters>,
) {
    let mut out = Output::new(core, counters);
    loop {
        let next = tokio::select! {
            biased;
            _ = close.cancelled() => break,
            next = outbox.recv() => next,
        };
        let Some(mut outgoing) = next else {
            break;
        };
        // Everything queued goes out in one write (FLUSH_AT at most).
        let mut stop = false;
        loop {
            if !out.write(outgoing) {
                stop = true;
                break;
            }
            if out.buf.len() >= FLUSH_AT {
                break;
            }
            match outbox.try_recv() {
                Ok(more) => outgoing = more,
                Err(_) => break,
            }
        }
        // A client that stopped reading blocks this write; it ends when the connection
        // is closed (its session expired, or it fell too far behind).
        let written = tokio::select! {
            r = wr.write_all(&out.buf) => r.is_ok(),
            _ = close.cancelled() => false,
        };
        out.buf.clear();
        if out.buf.capacity() > WRITE_KEEP {
            out.buf = BytesMut::new();
        }
        if !written || stop {
            break;
        }
    }
    if !out.buf.is_empty() {
        let _ = wr.write_all(&out.buf).await;
    }
    let _ = wr.shutdown().await;
    close.cancel();
}

pub(crate) struct Output {
    pub(crate) buf: BytesMut,
    core: Arc<ServerCore>,
    counters: Arc<ConnCounters>,
}

impl Output {
    /// An empty output for a connection with these counters.
    pub(crate) fn new(core: Arc<ServerCore>, counters: Arc<ConnCounters>) -> Output {
        Output {
            buf: BytesMut::new(),
            core,
            counters,
        }
    }

    fn count(&self) {
        self.core.stats.record_sent();
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Encodes one item of the outbox; false when the connection stops after it (an
    /// answer that closes it, or the end).
    pub(crate) fn write(&mut self, outgoing: Outgoing) -> bool {
        match outgoing {
            Outgoing::Event(event) => {
                self.notification(&event);
                true
            }
            Outgoing::Answer(answer) => self.answer(answer),
            Outgoing::End => false,
        }
    }

    /// A watch notification taken from the outbox: written, it no longer counts against
    /// the connection's queued output.
    fn notification(&mut self, event: &WatcherEvent) {
        self.event(event);
        self.counters
            .queued_bytes
            .fetch_sub(notification_bytes(event), Ordering::Relaxed);
        self.counters.queued_events.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request's answer; its ticket is given back (its permits released).
    fn answer(&mut self, answer: Answer) -> bool {
        let took = answer.ticket.started.elapsed();
        self.core.stats.request_finished(took.as_micros() as u64);
        let op = answer.ticket.op;
        self.core.metrics.request(op, took);
        if op.is_some_and(OpCode::is_write) {
            debug!(
                xid = answer.header.xid,
                zxid = format_args!("0x{:x}", answer.header.zxid),
                ?op,
                err = answer.header.err,
                took_us = took.as_micros() as u64,
                "write answered"
            );
        }
        self.reply(answer.header, answer.body.as_ref());
        self.counters.outstanding.fetch_sub(1, Ordering::SeqCst);
        !answer.close_after
    }

    /// A watch event: xid -1, zxid -1 (as ZooKeeper 3.8 sends them).
    fn event(&mut self, event: &WatcherEvent) {
        write_frame(&mut self.buf, |w| {
            ReplyHeader::new(xid::NOTIFICATION, -1, ErrorCode::Ok).write(w);
            event.write(w);
        });
        self.count();
    }

    /// A reply; the body goes out only with `err == 0`.
    fn reply(&mut self, header: ReplyHeader, body: Option<&Response>) {
        write_frame(&mut self.buf, |w| {
            header.write(w);
            // ZooKeeper sends a refused sasl request's (null) token too.
            if header.err == 0 || matches!(body, Some(Response::Sasl(_))) {
                if let Some(body) = body {
                    body.write(w);
                }
            }
        });
        self.count();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn an_announced_handshake_reserves_only_what_arrived() {
        // A client announces a handshake of jute.maxbuffer bytes and sends ten: the
        // body read used to allocate the whole announced length up front.
        let len = zk_proto::frame::DEFAULT_MAX_BUFFER;
        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(&[7u8; 10]).await.unwrap();
        let mut body = Vec::new();
        // The client keeps the connection open and sends nothing more.
        let read = read_handshake_body(&mut server, len, &mut body);
        assert!(tokio::time::timeout(Duration::from_millis(50), read)
            .await
            .is_err());
        assert_eq!(body.len(), 10);
        assert!(body.capacity() <= HANDSHAKE_RESERVE, "{}", body.capacity());
        // Then closes it.
        drop(client);
        let mut short = &[7u8; 10][..];
        assert!(!read_handshake_body(&mut short, len, &mut body).await);
        assert!(body.capacity() <= HANDSHAKE_RESERVE, "{}", body.capacity());
    }

    #[tokio::test]
    async fn a_whole_handshake_body_is_read_and_what_follows_is_left() {
        let bytes = [1u8, 2, 3, 4, 5, 6];
        let mut rd = &bytes[..];
        let mut body = Vec::new();
        assert!(read_handshake_body(&mut rd, 4, &mut body).await);
        assert_eq!(body, [1, 2, 3, 4]);
        assert_eq!(rd, &[5, 6]);
    }
}
