//! Arbitrary text as zoo.cfg, JVMFLAGS, `-D` arguments and a JAAS file; members
//! rendered back parse equal. Body: `zk_server::fuzzing::config::zoo_cfg` (replayed on
//! stable by zk-server/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| zk_server::fuzzing::config::zoo_cfg(data));
