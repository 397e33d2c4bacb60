#!/usr/bin/env bash
# The project's test command (README.md): installs what the tests need, checks that the
# golden vectors still match what Apache ZooKeeper's own classes produce, then runs every
# test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

# Golden vectors: regenerate with Apache ZooKeeper's jute classes and require the
# checked-in copies to be identical, so they cannot drift from the reference.
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
zk-proto/golden/generate.sh "$fresh" 2> >(grep -v '^SLF4J' >&2)
if ! diff -r "$fresh" zk-proto/tests/golden; then
  echo "test.sh: golden vectors differ from Apache ZooKeeper's output (above);" \
       "run zk-proto/golden/generate.sh and review the change" >&2
  exit 1
fi
echo "test.sh: golden vectors match Apache ZooKeeper $(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null)"

log=$(mktemp)
trap 'rm -rf "$fresh" "$log"' EXIT
# `--features zk-client/cli` builds the zkcli shell, so its tests (zk-client/tests/zkcli.rs,
# which need the binary) run too.
# --no-fail-fast: every test binary runs even when one fails, so the summary below
# counts them all; a failure (or a build error) still makes this script fail.
status=0
# The SVG writer and write-up behind scripts/bench.sh --curves (and their doctests), in well under a second.
python3 -m unittest -q scripts/test_charts.py || status=1
cargo test --no-fail-fast --workspace --all-targets --features zk-client/cli 2>&1 | tee "$log" || status=1
cargo test --no-fail-fast --workspace --doc --features zk-client/cli 2>&1 | tee -a "$log" || status=1

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }' "$log" || status=1
exit "$status"
