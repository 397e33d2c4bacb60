//! Replays the checked-in fuzz corpus (`fuzz/corpus/decode_frame`,
//! `fuzz/corpus/decode_records`) through the same functions the cargo-fuzz targets call
//! (`zk_proto::fuzzing`), on the stable toolchain, with the same allocation bound. Every
//! crash the fuzzer once found stays fixed, and the corpus keeps exercising the
//! decoders in CI. A missing or empty corpus fails the test.

use std::path::{Path, PathBuf};

use zk_proto::fuzzing::{self, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    files
}

/// One test for both targets: the allocation bound is measured with process-wide
/// state, so the replays must not run concurrently.
#[test]
fn checked_in_corpus_replays_without_panics_or_outsized_allocations() {
    for (target, body) in [
        ("decode_frame", fuzzing::decode_frame as fn(&[u8])),
        ("decode_records", fuzzing::decode_records as fn(&[u8])),
    ] {
        for (path, data) in corpus(target) {
            let outcome = std::panic::catch_unwind(|| fuzzing::bounded(&data, body));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        }
    }
}
