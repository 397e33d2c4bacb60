//! A byte stream as a connection receives it, through the frame decoder and every
//! request, reply and handshake decoder; round trips checked. Body:
//! `zk_proto::fuzzing::decode_frame` (replayed on stable by zk-proto/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::fuzzing::{bounded, decode_frame, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fuzz_target!(|data: &[u8]| bounded(data, decode_frame));
