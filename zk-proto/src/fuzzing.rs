//! Fuzzing entry points (feature `fuzzing`): the bodies of the `decode_frame` and
//! `decode_records` targets under `fuzz/`, kept here so that the cargo-fuzz targets and
//! the stable replay of their corpus (`tests/fuzz_corpus.rs`) run the same code.
//!
//! Each body feeds arbitrary bytes to decoders and checks, where decoding succeeds, that
//! the value survives a round trip: `decode(encode(v)) == v` and
//! `encode(decode(encode(v))) == encode(v)`. A panic is a finding. [`bounded`] adds the
//! allocation check: no single allocation may be much larger than the input, whatever
//! lengths or counts the input claims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};

use crate::frame::{FrameDecoder, DEFAULT_MAX_BUFFER};
use crate::jute::{Reader, Record};
use crate::path::{basename, parent, validate_create_path, validate_path};
use crate::*;

/// Asserts that a decoded value round-trips through its encoding.
fn round_trip<T: Record + PartialEq + Debug>(value: &T) {
    let bytes = value.to_bytes();
    match T::from_bytes(bytes.clone()) {
        Ok(again) => {
            assert_eq!(&again, value, "decode(encode(v)) != v");
            assert_eq!(again.to_bytes(), bytes, "encode is not stable");
        }
        Err(e) => panic!("re-encoded {value:?} does not decode: {e}"),
    }
}

/// Decodes `T` from the whole of `input` and, on success, checks its round trip.
fn record<T: Record + PartialEq + Debug>(input: &Bytes) {
    if let Ok(value) = T::from_bytes(input.clone()) {
        round_trip(&value);
    }
    // Read as a prefix too (trailing bytes allowed), as the server reads headers.
    let mut r = Reader::new(input.clone());
    if let Ok(value) = T::read(&mut r) {
        round_trip(&value);
    }
}

/// Every record decoder of the protocol, client and server side.
fn every_record(input: &Bytes) {
    record::<ConnectRequest>(input);
    record::<ConnectResponse>(input);
    record::<RequestHeader>(input);
    record::<ReplyHeader>(input);
    record::<ErrorResponse>(input);
    record::<Stat>(input);
    record::<Id>(input);
    record::<Acl>(input);
    record::<CreateRequest>(input);
    record::<CreateTtlRequest>(input);
    record::<CreateResponse>(input);
    record::<Create2Response>(input);
    record::<DeleteRequest>(input);
    record::<ExistsRequest>(input);
    record::<ExistsResponse>(input);
    record::<GetDataRequest>(input);
    record::<GetDataResponse>(input);
    record::<SetDataRequest>(input);
    record::<SetDataResponse>(input);
    record::<GetAclRequest>(input);
    record::<GetAclResponse>(input);
    record::<SetAclRequest>(input);
    record::<SetAclResponse>(input);
    record::<GetChildrenRequest>(input);
    record::<GetChildrenResponse>(input);
    record::<GetChildren2Request>(input);
    record::<GetChildren2Response>(input);
    record::<SyncRequest>(input);
    record::<SyncResponse>(input);
    record::<CheckVersionRequest>(input);
    record::<GetEphemeralsRequest>(input);
    record::<GetEphemeralsResponse>(input);
    record::<GetAllChildrenNumberRequest>(input);
    record::<GetAllChildrenNumberResponse>(input);
    record::<MultiHeader>(input);
    record::<MultiRequest>(input);
    record::<MultiResponse>(input);
    record::<ReconfigRequest>(input);
    record::<WatcherEvent>(input);
    record::<SetWatches>(input);
    record::<SetWatches2>(input);
    record::<CheckWatchesRequest>(input);
    record::<RemoveWatchesRequest>(input);
    record::<AddWatchRequest>(input);
    record::<AuthPacket>(input);
    record::<GetSaslRequest>(input);
    record::<SetSaslResponse>(input);
    record::<ClientInfo>(input);
    record::<WhoAmIResponse>(input);
}

/// A request body decoded for `op` round-trips through `write_body`.
fn request_body(op: OpCode, body: &Bytes) {
    let Ok(request) = Request::decode(op, body.clone()) else {
        return;
    };
    assert_eq!(request.opcode(), op, "opcode of {request:?}");
    let mut w = BytesMut::new();
    request.write_body(&mut w);
    let encoded = w.freeze();
    match Request::decode(op, encoded.clone()) {
        Ok(again) => {
            assert_eq!(again, request, "request decode(encode(v)) != v");
            let mut w = BytesMut::new();
            again.write_body(&mut w);
            assert_eq!(w.freeze(), encoded, "request encoding is not stable");
        }
        Err(e) => panic!("re-encoded {request:?} does not decode: {e}"),
    }
    // The paths a server will validate: validation never panics.
    if let Request::Multi(m) | Request::MultiRead(m) = &request {
        for op in &m.ops {
            path_rules(op.path());
        }
    }
}

/// A reply body decoded for `op` round-trips through `write`.
fn response_body(op: OpCode, body: &Bytes) {
    let Ok(response) = Response::decode(op, body.clone()) else {
        return;
    };
    let mut w = BytesMut::new();
    response.write(&mut w);
    let encoded = w.freeze();
    match Response::decode(op, encoded.clone()) {
        Ok(again) => {
            assert_eq!(again, response, "response decode(encode(v)) != v");
            let mut w = BytesMut::new();
            again.write(&mut w);
            assert_eq!(w.freeze(), encoded, "response encoding is not stable");
        }
        Err(e) => panic!("re-encoded {response:?} does not decode: {e}"),
    }
}

/// Path validation never panics, and what it accepts behaves as a path.
fn path_rules(path: &str) {
    let valid = validate_path(path).is_ok();
    let _ = validate_create_path(path, true);
    let _ = validate_create_path(path, false);
    if valid && path != "/" {
        let p = parent(path);
        assert!(validate_path(p).is_ok(), "parent {p:?} of valid {path:?}");
        let name = basename(path);
        assert!(
            !name.is_empty() && !name.contains('/'),
            "basename of {path:?}"
        );
        let rebuilt = if p == "/" {
            format!("/{name}")
        } else {
            format!("{p}/{name}")
        };
        assert_eq!(rebuilt, path);
    }
}

/// One frame payload as the server and the client would read it: a request (header,
/// then the body for its opcode), a reply (header, then the body for every opcode the
/// reply might answer), a notification, a handshake.
fn payload(payload: &Bytes) {
    let mut r = Reader::new(payload.clone());
    if let Ok(header) = RequestHeader::read(&mut r) {
        let body = r.take_rest();
        if let Some(op) = header.op() {
            request_body(op, &body);
        }
    }
    let mut r = Reader::new(payload.clone());
    if let Ok(header) = ReplyHeader::read(&mut r) {
        let body = r.take_rest();
        if header.xid == xid::NOTIFICATION {
            record::<WatcherEvent>(&body);
        } else if header.err == 0 {
            for op in OpCode::ALL {
                response_body(*op, &body);
            }
        }
    }
    record::<ConnectRequest>(payload);
    record::<ConnectResponse>(payload);
}

/// Target `decode_frame`: the input is a byte stream as a connection receives it,
/// split by the frame decoder (maximum from the first byte: a small one, the
/// server's, or the client's), then each payload is decoded as a request, a reply and
/// a handshake. The stream is fed in two parts, as two reads would deliver it.
pub fn decode_frame(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let max = match selector % 3 {
        0 => 64,
        1 => DEFAULT_MAX_BUFFER,
        // A limit configured a little above the default (jute.maxbuffer raised).
        _ => DEFAULT_MAX_BUFFER + 1024,
    };
    let mut decoder = FrameDecoder::new(max);
    assert_eq!(decoder.max_len(), max);
    let split = usize::from(selector / 3).min(rest.len());
    let (first, second) = rest.split_at(split);
    let mut buf = BytesMut::from(first);
    let mut pending = Some(second);
    let mut frames = 0usize;
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                assert!(frame.len() <= max, "frame longer than the maximum");
                frames += 1;
                payload(&frame);
            }
            Ok(None) => match pending.take() {
                Some(more) => buf.extend_from_slice(more),
                None => break,
            },
            Err(FrameError::TooLarge { len, max: m }) => {
                assert!(len > m && m == max);
                break;
            }
            Err(FrameError::NegativeLength(len)) => {
                assert!(len < 0);
                break;
            }
            Err(FrameError::Io(e)) => panic!("the frame decoder does no I/O: {e}"),
        }
    }
    // Each frame consumed at least its 4-byte prefix.
    assert!(frames <= rest.len() / frame::LENGTH_PREFIX);
}

/// Target `decode_records`: the input, whole, through every record decoder and every
/// request and reply body decoder (whatever the opcode), then as a frame payload and
/// as a path.
pub fn decode_records(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    every_record(&input);
    for op in OpCode::ALL {
        request_body(*op, &input);
        response_body(*op, &input);
    }
    payload(&input);
    path_rules(&String::from_utf8_lossy(data));
}

/// Runs `body` on `data` and asserts that no single allocation it made exceeded a small
/// multiple of the input (plus a fixed allowance, and the frame decoder's read-ahead):
/// a claimed length or count is never trusted for an allocation.
///
/// Effective only in a program whose global allocator is [`TrackingAllocator`]; the
/// fuzz targets and the corpus replay test install it.
pub fn bounded(data: &[u8], body: fn(&[u8])) {
    let largest = largest_allocation(|| body(data));
    let bound = 64 * data.len() + 2 * frame::READ_AHEAD + 4096;
    assert!(
        largest <= bound,
        "allocated {largest} bytes for {} input bytes",
        data.len()
    );
}

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// A global allocator (the system's) that records the largest single allocation made
/// by a thread inside [`largest_allocation`].
pub struct TrackingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping
// only reads a thread-local flag and updates an atomic, neither of which allocates.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System`'s shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `alloc`; `ptr` came from this allocator, so from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note(size: usize) {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

/// Runs `f` and returns the largest single allocation it made (0 unless the program's
/// global allocator is [`TrackingAllocator`]).
pub fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    LARGEST.load(Ordering::Relaxed)
}
