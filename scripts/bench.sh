#!/usr/bin/env bash
# Side-by-side benchmark of Apache ZooKeeper 3.8 and our server: builds the release
# binaries, then
#   scripts/bench.sh [options]        the fixed matrix and leader failover (scripts/bench.py;
#                                     --rounds N, --duration S, --warmup S, --topologies 1,3,
#                                     --only get,set,failover, --failover-rounds N,
#                                     --clients N --in-flight N: the shape, default 8 × 8)
#   scripts/bench.sh --memory [--keys N]
#                                     memory per znode and recovery time (scripts/memory.py)
#   scripts/bench.sh --limits [--keys N --depth D --sessions S]
#                                     a huge multi, a deep chain, a million watches (scripts/limits.py)
#   scripts/bench.sh --curves [--quick] [--rounds N --duration S --warmup S --only sessions,values,...]
#                                     how cost grows with sessions, in-flight requests, value size,
#                                     tree size, ensemble size, observers, held sessions and watches:
#                                     SVG charts and data in docs/bench/ (scripts/curves.py, about
#                                     25 minutes; --quick: a smoke run of about 3)
# and updates BENCHMARKS.md (each script takes --out FILE to write another file instead).
# The binaries are looked for under $CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /usr/share/java/zookeeper.jar ] || { echo "bench: Apache ZooKeeper missing (scripts/install-test-deps.sh)" >&2; exit 1; }
cargo build --release -p zk-server --bin zk-server -p zk-tests --bin zk-bench
if [ "${1:-}" = "--memory" ]; then
  shift
  exec python3 scripts/memory.py "$@"
fi
if [ "${1:-}" = "--limits" ]; then
  shift
  exec python3 scripts/limits.py "$@"
fi
if [ "${1:-}" = "--curves" ]; then
  shift
  exec python3 scripts/curves.py "$@"
fi
exec python3 scripts/bench.py "$@"
