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

cargo test --workspace --all-targets
cargo test --workspace --doc
