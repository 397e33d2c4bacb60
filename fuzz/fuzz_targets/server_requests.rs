//! An in-process server (the real handshake, request routing, write path through a
//! queue standing in for consensus, apply, watches and reply encoding; no network)
//! fed a structured sequence of connections, requests and raw frames, with the tree's
//! invariants checked after every step. Body: `zk_server::fuzzing::server_requests`
//! (replayed on stable by zk-server/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::server_requests(data));
