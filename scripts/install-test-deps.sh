#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and nothing when it is
# already there: a JDK and Apache ZooKeeper 3.8 (Debian package `zookeeper`: its jute
# classes produce zk-proto's golden vectors, its zkCli.sh is an interop client), Apache
# Curator 5.4 (Debian packages libcurator-recipes-java and libcurator-framework-java,
# with guava, slf4j and ZooKeeper's client jars: zk-recipes/tests/curator_interop.rs
# runs its InterProcessMutex and LeaderLatch against ours), Curator's service discovery
# (libcurator-discovery-java, with the Jackson jars it needs:
# zk-recipes/tests/discovery_curator.rs), Python's kazoo (PyPI; another interop
# client), tmux (zk-client/tests/zkcli.rs drives the interactive zkcli in it) and
# iproute2 (network namespaces for tests/tests/nemesis.rs).
set -euo pipefail

need_apt=()
[ -f /usr/share/java/zookeeper.jar ] && [ -f /usr/share/java/zookeeper-jute.jar ] || need_apt+=(zookeeper)
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
# Curator and what its jars need at run time (see JARS in curator_interop.rs).
curator_jars=(curator-recipes curator-framework curator-client guava zookeeper zookeeper-jute slf4j-api slf4j-simple)
[ -f /usr/share/java/curator-recipes.jar ] || need_apt+=(libcurator-recipes-java)
[ -f /usr/share/java/curator-framework.jar ] && [ -f /usr/share/java/curator-client.jar ] || need_apt+=(libcurator-framework-java)
[ -f /usr/share/java/guava.jar ] || need_apt+=(libguava-java)
[ -f /usr/share/java/slf4j-api.jar ] && [ -f /usr/share/java/slf4j-simple.jar ] || need_apt+=(libslf4j-java)
# curator-x-discovery and the Jackson jars it needs (see JARS in discovery_curator.rs).
discovery_jars=(curator-x-discovery jackson-databind jackson-core jackson-annotations)
[ -f /usr/share/java/curator-x-discovery.jar ] || need_apt+=(libcurator-discovery-java)
[ -f /usr/share/java/jackson-databind.jar ] || need_apt+=(libjackson2-databind-java)
[ -f /usr/share/java/jackson-core.jar ] || need_apt+=(libjackson2-core-java)
[ -f /usr/share/java/jackson-annotations.jar ] || need_apt+=(libjackson2-annotations-java)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
# iproute2's `ip`: tests/tests/nemesis.rs puts each server in its own network namespace.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)

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
for j in "${curator_jars[@]}" "${discovery_jars[@]}"; do
  [ -f "/usr/share/java/$j.jar" ] || { echo "install-test-deps: /usr/share/java/$j.jar missing after install" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "install-test-deps: javac missing after install" >&2; exit 1; }
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || { echo "install-test-deps: zkCli.sh missing after install" >&2; exit 1; }
python3 -c 'import kazoo' || { echo "install-test-deps: kazoo missing after install" >&2; exit 1; }
command -v tmux >/dev/null || { echo "install-test-deps: tmux missing after install" >&2; exit 1; }
echo "install-test-deps: ok ($(dpkg-query -W -f='zookeeper ${Version}' zookeeper 2>/dev/null || echo zookeeper), $(dpkg-query -W -f='curator ${Version}' libcurator-recipes-java 2>/dev/null || echo curator), $(dpkg-query -W -f='curator-x-discovery ${Version}' libcurator-discovery-java 2>/dev/null || echo curator-x-discovery), $(dpkg-query -W -f='jackson-databind ${Version}' libjackson2-databind-java 2>/dev/null || echo jackson-databind), $(javac -version 2>&1), kazoo $(python3 -c 'import kazoo; print(kazoo.__version__)'), $(tmux -V))"
