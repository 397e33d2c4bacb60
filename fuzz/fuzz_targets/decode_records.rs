//! Arbitrary bytes through every record decoder and every request/reply body decoder
//! (each opcode); round trips checked. Body: `zk_proto::fuzzing::decode_records`
//! (replayed on stable by zk-proto/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::fuzzing::{bounded, decode_records, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fuzz_target!(|data: &[u8]| bounded(data, decode_records));
