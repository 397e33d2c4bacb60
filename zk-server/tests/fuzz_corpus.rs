//! Replays the checked-in corpus of the `server_requests` fuzz target
//! (`fuzz/corpus/server_requests`) through the function the target calls
//! (`zk_server::fuzzing::server_requests`), on the stable toolchain: every input runs
//! against a fresh in-process server with the invariants checked after each step. A
//! missing or empty corpus fails the test.

use std::path::Path;

#[test]
fn checked_in_corpus_replays_with_every_invariant_holding() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/server_requests");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<_> = entries
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    for path in files {
        let data = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| zk_server::fuzzing::server_requests(&data));
        assert!(outcome.is_ok(), "{} fails", path.display());
    }
}
