//! Target `four_letter_words`: the first bytes of a client connection, as the client
//! port receives them, through the connection's own entry point
//! ([`crate::net::connection::serve_halves`]): it decides from the first four bytes
//! between a four-letter word (answered in plain text, then closed, whatever follows)
//! and a handshake frame (its announced length checked, its body read, a session made,
//! and what follows read as request frames).
//!
//! The input: a selector byte (the whitelist, the server's role, read-only mode, how
//! the stream is cut into reads), then the bytes the client sends, in reads of the
//! sizes the selector chose, then end of stream.
//!
//! Checks: no panic; the connection always finishes (on a paused clock: a stalled
//! connection would show as a timeout); a four-letter word gets exactly one answer,
//! valid UTF-8 and shaped as its command's (`imok`, `key<TAB>value` lines for `mntr`,
//! `key=value` lines for `conf`, the whitelist refusal for a disabled word), and
//! nothing of what follows the word is read as a request; anything else gets either
//! nothing or whole frames: a `ConnectResponse` first, then replies and notifications
//! that decode. With [`zk_proto::fuzzing::TrackingAllocator`] installed (the fuzz
//! target and the corpus replay), no single allocation may exceed a small multiple of
//! the input: an announced handshake length is not reserved before it arrives.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zk_proto::frame::{FrameDecoder, FrameError};
use zk_proto::{ConnectResponse, Reader, Record, ReplyHeader};

use super::chunked::ChunkedReader;
use super::{apply_loop, QueueReplicator, EPOCH_MS};
use crate::config::{FourLetterWhitelist, ServerConfig};
use crate::core::ServerCore;
use crate::database::ZkDatabase;
use crate::net::{connection as client, four_letter};
use crate::role::{QuorumView, Role};

/// Every word ZooKeeper 3.8 knows (a whitelist is drawn from these).
const WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// Runs one input (see the module documentation); panics on a finding.
pub fn four_letter_words(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return;
    };
    let core = server(selector, stream);
    // Only the connection is measured (not the server's own set-up).
    let largest = zk_proto::fuzzing::largest_allocation(|| {
        runtime.block_on(connection(core, selector, stream));
    });
    let bound = 64 * data.len() + 2 * zk_proto::frame::READ_AHEAD + 4096;
    assert!(
        largest <= bound,
        "allocated {largest} bytes for {} input bytes",
        data.len()
    );
}

/// The server the connection reaches: its whitelist, read-only mode, frame limit and
/// role from the selector.
fn server(selector: u8, stream: &[u8]) -> Arc<ServerCore> {
    let whitelist = match selector & 3 {
        0 => FourLetterWhitelist::All,
        1 => FourLetterWhitelist::Only(Default::default()),
        // A whitelist of some words, picked by the first byte of the stream.
        _ => FourLetterWhitelist::Only(
            WORDS
                .iter()
                .enumerate()
                .filter(|(i, _)| stream.first().is_some_and(|b| (b >> (i % 8)) & 1 == 1))
                .map(|(_, w)| w.to_string())
                .collect(),
        ),
    };
    let config = ServerConfig {
        four_letter_whitelist: whitelist,
        read_only_mode: selector & 4 != 0,
        jute_max_buffer: if selector & 8 != 0 {
            256
        } else {
            zk_proto::frame::DEFAULT_MAX_BUFFER
        },
        ..ServerConfig::default()
    };
    let core = ServerCore::new(config, 1, ZkDatabase::new());
    let mut view = QuorumView::standalone();
    view.role = match (selector >> 4) & 3 {
        0 => Role::Standalone,
        1 => Role::Leader,
        2 => Role::Follower,
        _ => Role::Looking,
    };
    core.set_quorum(view);
    core
}

/// Serves one connection whose client sends `stream` and closes, and checks what the
/// server wrote back.
async fn connection(core: Arc<ServerCore>, selector: u8, stream: &[u8]) {
    let (tx, rx) = mpsc::unbounded_channel();
    let submitted = Arc::new(AtomicU64::new(0));
    let applied = Arc::new(AtomicU64::new(0));
    let last_zxid = Arc::new(AtomicI64::new(0));
    core.set_replicator(Arc::new(QueueReplicator {
        queue: tx,
        submitted,
        last_zxid: last_zxid.clone(),
    }));
    let applier = tokio::spawn(apply_loop(
        core.clone(),
        rx,
        Arc::new(AtomicI64::new(EPOCH_MS)),
        applied,
        last_zxid,
    ));

    // Every other read pending, starting with the second.
    let reads = ChunkedReader::alternating(stream, usize::from(selector >> 6) * 3 + 1, false);
    let written = Arc::new(Mutex::new(Vec::new()));
    let writer = Written(written.clone());
    let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 40_000);
    let shutdown = CancellationToken::new();
    let served = client::serve_halves(
        core.clone(),
        reads,
        writer,
        remote,
        Vec::new(),
        shutdown.clone(),
    );
    // The clock is paused and advances only when every task is idle: a connection that
    // never finishes on a stream that has ended is a finding, found at once.
    let finished = tokio::time::timeout(Duration::from_secs(3600), served).await;
    shutdown.cancel();
    applier.abort();
    assert!(
        finished.is_ok(),
        "the connection did not finish after its stream ended"
    );
    let out = written.lock().map(|o| o.clone()).unwrap_or_default();
    let first: Option<[u8; 4]> = stream.get(..4).and_then(|f| f.try_into().ok());
    match first.and_then(four_letter::command) {
        Some(cmd) => check_answer(&core, cmd, &out),
        None => check_frames(&out),
    }
}

/// A four-letter word's answer: one plain-text answer, shaped as its command's.
fn check_answer(core: &ServerCore, cmd: &str, out: &[u8]) {
    let text = std::str::from_utf8(out).expect("a four-letter answer is UTF-8");
    if !core.config.four_letter_enabled(cmd) {
        assert_eq!(
            text,
            format!("{cmd} is not executed because it is not in the whitelist.\n")
        );
        return;
    }
    let serving = core.role().serving() || core.config.read_only_mode;
    if !serving && matches!(cmd, "srvr" | "stat" | "mntr" | "conf" | "cons" | "dump") {
        assert_eq!(
            text,
            "This ZooKeeper instance is not currently serving requests\n"
        );
        return;
    }
    match cmd {
        "ruok" => assert_eq!(text, "imok"),
        "isro" => assert!(matches!(text, "ro" | "rw" | "null"), "isro: {text:?}"),
        "gtmk" | "stmk" | "hash" => assert_eq!(text, ""),
        "mntr" => {
            for line in text.lines() {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 2, "mntr line {line:?}");
                assert!(fields[0].starts_with("zk_"), "mntr key {line:?}");
            }
            assert!(text.ends_with('\n'));
        }
        "conf" | "dirs" => {
            for line in text.lines() {
                assert!(line.contains(['=', ':']), "{cmd} line {line:?}");
            }
        }
        "srvr" | "stat" => {
            assert!(text.starts_with("Zookeeper version: "), "{text:?}");
            assert!(text.contains("\nMode: "), "{text:?}");
        }
        _ => assert!(text.is_empty() || text.ends_with('\n'), "{cmd}: {text:?}"),
    }
}

/// What a connection that did not start with a word got: nothing, or whole frames, a
/// `ConnectResponse` first and then replies (or notifications) that decode.
fn check_frames(out: &[u8]) {
    let mut buf = BytesMut::from(out);
    // The server writes frames of any size it likes; only a client's limit applies.
    let mut decoder = FrameDecoder::new(usize::MAX >> 1);
    let mut frames = 0usize;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                if frames == 0 {
                    let response = ConnectResponse::from_bytes(frame.clone())
                        .expect("the first frame is a ConnectResponse");
                    assert_eq!(response.to_bytes(), frame, "ConnectResponse re-encodes");
                } else {
                    reply(frame);
                }
                frames += 1;
            }
            Ok(None) => break,
            Err(e @ (FrameError::TooLarge { .. } | FrameError::NegativeLength(_))) => {
                panic!("the server wrote a bad frame: {e}")
            }
            Err(FrameError::Io(e)) => panic!("the frame decoder does no I/O: {e}"),
        }
    }
    assert!(buf.is_empty(), "{} bytes of a frame cut off", buf.len());
}

/// A frame after the handshake: a reply header (its body depends on the request).
fn reply(frame: Bytes) {
    let mut r = Reader::new(frame);
    ReplyHeader::read(&mut r).expect("every later frame starts with a reply header");
}

/// Collects what the server writes.
struct Written(Arc<Mutex<Vec<u8>>>);

impl AsyncWrite for Written {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.lock() {
            Ok(mut out) => {
                out.extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
            Err(_) => Poll::Ready(Err(io::Error::other("poisoned"))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
