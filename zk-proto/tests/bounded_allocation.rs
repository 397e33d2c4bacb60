//! Decoding hostile input never allocates in proportion to a claimed length: a global
//! allocator records the largest single allocation made while decoding, and it must stay
//! within a small multiple of the input's real size (or, for the frame decoder, of its
//! maximum frame).
//!
//! The tests of this file run in parallel threads but measure one at a time: the
//! largest-allocation counter is global, so [`largest_allocation`] holds a lock.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_proto::frame::{self, FrameDecoder};
use zk_proto::{
    AuthPacket, ConnectRequest, ConnectResponse, MultiRequest, MultiResponse, OpCode, Record,
    ReplyHeader, Request, RequestHeader, Response, SetWatches2, WatcherEvent,
};

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.with(Cell::get) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Serialises measurements: only one thread may use `LARGEST` at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// Runs `f` and returns the largest single allocation it made (on this thread; other
/// threads' allocations are not counted, and other measurements wait).
fn largest_allocation(f: impl FnOnce()) -> usize {
    let _one_at_a_time = MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    LARGEST.store(0, Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    LARGEST.load(Ordering::Relaxed)
}

fn decode_everything(input: &Bytes) {
    for op in OpCode::ALL {
        let _ = Request::decode(*op, input.clone());
        let _ = Response::decode(*op, input.clone());
    }
    let _ = ConnectRequest::from_bytes(input.clone());
    let _ = ConnectResponse::from_bytes(input.clone());
    let _ = RequestHeader::from_bytes(input.clone());
    let _ = ReplyHeader::from_bytes(input.clone());
    let _ = WatcherEvent::from_bytes(input.clone());
    let _ = AuthPacket::from_bytes(input.clone());
    let _ = SetWatches2::from_bytes(input.clone());
    let _ = MultiRequest::from_bytes(input.clone());
    let _ = MultiResponse::from_bytes(input.clone());
}

/// Inputs that claim enormous lengths and counts at every field position, and some that
/// claim lengths just above the frame maxima used here, then pseudo-random bytes.
fn hostile_inputs() -> Vec<Bytes> {
    let huge = [0x7f, 0xff, 0xff, 0xff];
    let mut inputs = Vec::new();
    for prefix_len in 0..24 {
        for filler in [0u8, 1, 0x7f, 0xff] {
            let mut v = vec![filler; prefix_len];
            v.extend_from_slice(&huge);
            v.extend_from_slice(&[0; 8]);
            inputs.push(Bytes::from(v));
        }
    }
    for claim in [
        17i32,
        1025,
        64 * 1024 + 1,
        1_048_576,
        i32::MAX,
        -1,
        i32::MIN,
    ] {
        let mut v = claim.to_be_bytes().to_vec();
        v.extend_from_slice(&[0; 12]);
        inputs.push(Bytes::from(v));
    }
    // Pseudo-random inputs (rand's seeded generator, a fixed seed: reproducible).
    let mut rng = StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let mut v = vec![0u8; rng.gen_range(0..96)];
        rng.fill(&mut v[..]);
        inputs.push(Bytes::from(v));
    }
    inputs
}

#[test]
fn decoders_allocate_in_proportion_to_real_input_only() {
    for input in hostile_inputs() {
        let largest = largest_allocation(|| decode_everything(&input));
        let bound = 64 * input.len() + 1024;
        assert!(
            largest <= bound,
            "allocated {largest} bytes decoding {} input bytes ({input:02x?})",
            input.len()
        );
    }
}

#[test]
fn frame_decoder_does_not_reserve_for_a_refused_length() {
    let largest = largest_allocation(|| {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff, 0, 0][..]);
        assert!(FrameDecoder::default().decode(&mut buf).is_err());
    });
    assert!(largest < 4096, "allocated {largest} bytes");
}

/// Runs a connection's worth of input through a frame decoder, whole and then in pieces
/// of every size from 1 to 7 bytes, until it refuses a frame or needs more.
fn decode_frames(max_len: usize, input: &Bytes) {
    for piece in [input.len().max(1), 1, 2, 3, 5, 7] {
        let mut decoder = FrameDecoder::new(max_len);
        let mut buf = BytesMut::new();
        'stream: for chunk in input.chunks(piece) {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(_frame)) => {}
                    Ok(None) => break,
                    Err(_) => break 'stream,
                }
            }
        }
    }
}

#[test]
fn frame_decoder_allocates_within_its_maximum_for_any_input() {
    for max_len in [0, 16, 1024, 64 * 1024] {
        for input in hostile_inputs() {
            let largest = largest_allocation(|| decode_frames(max_len, &input));
            // What a legitimate partial frame may reserve (prefix + the maximum body,
            // doubled by BytesMut's growth), plus room for the input itself.
            let bound = 2 * (frame::LENGTH_PREFIX + max_len) + 4 * input.len() + 1024;
            assert!(
                largest <= bound,
                "max_len {max_len}: allocated {largest} bytes for {} input bytes ({input:02x?})",
                input.len()
            );
        }
    }
}
