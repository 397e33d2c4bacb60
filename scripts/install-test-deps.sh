#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and nothing when it is
# already there: a JDK and Apache ZooKeeper 3.8 (Debian package `zookeeper`: its jute
# classes produce zk-proto's golden vectors, its zkCli.sh is an interop client) and
# Python's kazoo (PyPI; another interop client).
set -euo pipefail

need_apt=()
[ -f /usr/share/java/zookeeper.jar ] && [ -f /usr/share/java/zookeeper-jute.jar ] || need_apt+=(zookeeper)
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: need root to apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import kazoo' >/dev/null 2>&1; then
  echo "install-test-deps: installing kazoo"
  python3 -m pip install --quiet kazoo
fi

# Fail loudly if anything is still missing.
for f in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar; do
  [ -f "$f" ] || { echo "install-test-deps: $f missing after install" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "install-test-deps: javac missing after install" >&2; exit 1; }
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || { echo "install-test-deps: zkCli.sh missing after install" >&2; exit 1; }
python3 -c 'import kazoo' || { echo "install-test-deps: kazoo missing after install" >&2; exit 1; }
echo "install-test-deps: ok ($(dpkg-query -W -f='zookeeper ${Version}' zookeeper 2>/dev/null || echo zookeeper), $(javac -version 2>&1), kazoo $(python3 -c 'import kazoo; print(kazoo.__version__)'))"
