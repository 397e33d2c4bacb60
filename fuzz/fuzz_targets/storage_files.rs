//! Damaged files through the log, snapshot and Apache data readers: a valid segmented
//! log or snapshot written by the real writers then damaged, or raw bytes as a
//! snapshot or an Apache snapshot/transaction log. Body:
//! `zk_server::fuzzing::storage::storage_files` (replayed on stable by
//! zk-server/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::fuzzing::TrackingAllocator;

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::storage::storage_files(data));
