#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer), on a nightly toolchain. For
# humans, not CI: CI replays the checked-in corpus on stable instead
# (zk-proto/tests/fuzz_corpus.rs, zk-server/tests/fuzz_corpus.rs).
#
#   scripts/fuzz.sh                        list the targets
#   scripts/fuzz.sh <target> [seconds]     fuzz one target (default 600 s)
#
# Targets (fuzz/fuzz_targets/; bodies in zk_proto::fuzzing and zk_server::fuzzing):
#   decode_frame       client frames: frame decoder + request/reply/handshake decoders
#   decode_records     every record and request/reply body decoder
#   server_requests    an in-process server fed connections, requests and raw frames
#   four_letter_words  the first bytes of a client connection: 4lw or handshake
#   zoo_cfg            zoo.cfg, JVMFLAGS/-D properties and JAAS text
#   peer_frames        the peer (quorum) port's frames and messages
#   storage_files      damaged segmented logs, snapshots and Apache data files
# New inputs go to fuzz/corpus.work/<target> (not checked in), seeded from the
# checked-in corpus fuzz/corpus/<target>; crashes go to fuzz/artifacts/<target>.
# To refresh the checked-in corpus afterwards (keep it small):
#   cd fuzz && cargo +nightly fuzz cmin <target> corpus.work/<target>
#   and copy the result over corpus/<target>.
# The hand-made seeds of peer_frames and storage_files (valid frames and files, named
# for what they hold) come from a tool, not the fuzzer; after changing the encodings,
# write them again into the work corpus and fuzz and minimize as above:
#   cargo run -p zk-server --features fuzzing --example write_fuzz_seeds -- fuzz/corpus.work
# Extra libFuzzer flags can be given in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2").
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

target="${1:-}"
seconds="${2:-600}"
if [ -z "$target" ]; then
    cargo "+$toolchain" fuzz list
    exit 0
fi

export CARGO_INCREMENTAL=0
# server_requests, four_letter_words: the Prometheus recorder frees histogram blocks
# through crossbeam-epoch after an input ends, which LeakSanitizer would report as leaks.
leaks=()
if [ "$target" = server_requests ] || [ "$target" = four_letter_words ]; then
    leaks=(-detect_leaks=0)
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
work="corpus.work/$target"
mkdir -p "$work" "corpus/$target"
# shellcheck disable=SC2086
cargo "+$toolchain" fuzz run "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "${leaks[@]}" ${FUZZ_FLAGS:-}
