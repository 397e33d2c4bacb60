#!/usr/bin/env bash
# Side-by-side benchmark of Apache ZooKeeper 3.8 and our server (see scripts/bench.py):
# builds the release binaries, then runs the fixed matrix and updates BENCHMARKS.md.
# Options are passed to bench.py (--rounds N, --duration S, --warmup S,
# --topologies 1,3, --only get,set).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /usr/share/java/zookeeper.jar ] || { echo "bench: Apache ZooKeeper missing (scripts/install-test-deps.sh)" >&2; exit 1; }
cargo build --release -p zk-server --bin zk-server -p zk-tests --bin zk-bench
exec python3 scripts/bench.py "$@"
