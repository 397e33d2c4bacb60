//! Decoding hostile input never allocates in proportion to a claimed length: a global
//! allocator records the largest single allocation made while decoding, and it must stay
//! within a small multiple of the input's real size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use zk_proto::{
    ConnectRequest, FrameDecoder, MultiResponse, OpCode, Record, Request, Response, WatcherEvent,
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

/// Runs `f` and returns the largest single allocation it made.
fn largest_allocation(f: impl FnOnce()) -> usize {
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
    let _ = WatcherEvent::from_bytes(input.clone());
    let _ = MultiResponse::from_bytes(input.clone());
}

/// Inputs that claim enormous lengths and counts at every field position.
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
    // Pseudo-random inputs (xorshift, fixed seed: reproducible).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let len = (state % 96) as usize;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.push(state as u8);
        }
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
