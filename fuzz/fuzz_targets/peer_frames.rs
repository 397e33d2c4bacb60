//! A byte stream as the peer (quorum) port receives it, split into reads, through the
//! peer frame reader and every peer message decoder; round trips checked, allocations
//! bounded. Body: `zk_server::fuzzing::peer::peer_frames` (replayed on stable by
//! zk-server/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::fuzzing::TrackingAllocator;

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::peer::peer_frames(data));
