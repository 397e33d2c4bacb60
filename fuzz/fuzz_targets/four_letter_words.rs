//! The first bytes of a client connection (a four-letter word and what follows, or a
//! handshake and requests) through the connection's own entry point; answers checked,
//! allocations bounded. Body: `zk_server::fuzzing::four_letter::four_letter_words`
//! (replayed on stable by zk-server/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::fuzzing::TrackingAllocator;

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::four_letter::four_letter_words(data));
