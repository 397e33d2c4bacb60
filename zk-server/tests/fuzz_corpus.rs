//! Replays the checked-in corpora of the server-side fuzz targets (`fuzz/corpus/<target>`)
//! through the functions the cargo-fuzz targets call (`zk_server::fuzzing`), on the
//! stable toolchain: `server_requests` (every input against a fresh in-process server,
//! the invariants checked after each step), `four_letter_words`, `zoo_cfg`,
//! `peer_frames` and `storage_files` (with the same allocation bounds as the targets:
//! this test installs the tracking allocator). Every crash the fuzzer once found stays
//! fixed. A missing or empty corpus fails the test.

use std::path::{Path, PathBuf};

use zk_proto::fuzzing::TrackingAllocator;
use zk_server::fuzzing;

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    for path in corpus(target) {
        let data = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn checked_in_corpus_replays_with_every_invariant_holding() {
    replay("server_requests", fuzzing::server_requests);
}

/// One test for the targets that measure allocations: the largest allocation is
/// process-wide state, so their replays must not run concurrently.
#[test]
fn checked_in_corpora_of_the_bounded_targets_replay() {
    replay("four_letter_words", fuzzing::four_letter::four_letter_words);
    replay("peer_frames", fuzzing::peer::peer_frames);
    replay("storage_files", fuzzing::storage::storage_files);
    // The hand-made seeds as `examples/write_fuzz_seeds.rs` writes them today.
    for (name, seed) in fuzzing::peer::seeds() {
        let outcome = std::panic::catch_unwind(|| fuzzing::peer::peer_frames(&seed));
        assert!(outcome.is_ok(), "peer_frames: seed {name} fails");
    }
    for (name, seed) in fuzzing::storage::seeds() {
        let outcome = std::panic::catch_unwind(|| fuzzing::storage::storage_files(&seed));
        assert!(outcome.is_ok(), "storage_files: seed {name} fails");
    }
}

#[test]
fn checked_in_corpus_of_zoo_cfg_replays() {
    replay("zoo_cfg", fuzzing::config::zoo_cfg);
}
