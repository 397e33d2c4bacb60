#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and nothing when it is
# already there: a JDK and Apache ZooKeeper 3.8 (Debian package `zookeeper`: its jute
# classes produce zk-proto's golden vectors, its zkCli.sh is an interop client), Apache
# Curator 5.4 (Debian packages libcurator-recipes-java and libcurator-framework-java,
# with guava, slf4j and ZooKeeper's client jars: zk-recipes/tests/curator_interop.rs
# runs its InterProcessMutex and LeaderLatch against ours), Curator's service discovery
# (libcurator-discovery-java, with the Jackson jars it needs:
# zk-recipes/tests/discovery_curator.rs), Python's kazoo and what its own test suite
# needs (PyPI, pinned, in .venv/: interop client, and zk-server/tests/kazoo_suite.rs),
# tmux (zk-client/tests/zkcli.rs drives the interactive zkcli in it), iproute2
# (network namespaces for tests/tests/nemesis.rs) and Apache ZooKeeper's C client
# (zookeeper-bin's cli_mt and load_gen, in /usr/lib/zookeeper/bin, not on PATH;
# Debian builds no single-threaded cli_st; and libzookeeper-mt-dev's headers and
# library, with gcc, for a C program compiled at test time: tests/tests/c_client.rs;
# not python3-zookeeper, whose module bookworm ships unimportable, "undefined symbol:
# PyIOBase_Type").
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
# ZooKeeper writing snappy snapshots (zookeeper.snapshot.compression.method=snappy) in
# tests/tests/apache_data.rs.
[ -f /usr/share/java/snappy-java.jar ] || need_apt+=(libsnappy-java)
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
# Debian's own Python (a minimal install has none): the venv below and the chart
# tests of scripts/test.sh.
# pyjks needs twofish, which PyPI has only as C source: building it takes Python's
# headers (python3-dev) and gcc (below).
if command -v python3 >/dev/null 2>&1; then
  py_include=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$py_include/Python.h" ] || need_apt+=(python3-dev)
else
  need_apt+=(python3 python3-venv python3-dev)
fi
# iproute2's `ip`: tests/tests/nemesis.rs puts each server in its own network namespace.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# The C client: zookeeper-bin's shell and load generator, libzookeeper-mt's headers
# and shared library, gcc to compile against it.
c_client_bins=(/usr/lib/zookeeper/bin/cli_mt /usr/lib/zookeeper/bin/load_gen)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)

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

# Apache ZooKeeper 3.8 is the reference every comparison is made against: the server
# and jute jars (`zookeeper`, `libzookeeper-java`), the C client (`zookeeper-bin`,
# `libzookeeper-mt2`, `libzookeeper-mt-dev`), all at one 3.8 version. Debian 12 ships
# 3.8; Debian 13 ships 3.9, so there the 3.8 packages come from Debian 12's archive,
# added pinned at priority 100 so that nothing else is taken from it.
zk_packages=(zookeeper libzookeeper-java zookeeper-bin libzookeeper-mt2 libzookeeper-mt-dev)
zk_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
zk_ready=1
for p in "${zk_packages[@]}"; do [[ "$(zk_version "$p")" == 3.8.* ]] || zk_ready=0; done
for f in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar "${c_client_bins[@]}" /usr/include/zookeeper/zookeeper.h; do
  [ -e "$f" ] || zk_ready=0
done
if [ "$zk_ready" -eq 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "install-test-deps: need root to apt-get install Apache ZooKeeper 3.8 (${zk_packages[*]})" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  zk38() { apt-cache madison zookeeper | awk -F'|' '{ gsub(/ /, "", $2) } $2 ~ /^3\.8\./ { print $2; exit }'; }
  [ ${#need_apt[@]} -gt 0 ] || apt-get update -qq
  if [ -z "$(zk38)" ]; then
    echo "install-test-deps: this Debian has no ZooKeeper 3.8; adding Debian 12's archive (bookworm), pinned at priority 100, for it"
    echo "deb http://deb.debian.org/debian bookworm main" > /etc/apt/sources.list.d/zk-rs-bookworm.list
    printf 'Package: *\nPin: release n=bookworm\nPin-Priority: 100\n' > /etc/apt/preferences.d/zk-rs-bookworm
    apt-get update -qq
  fi
  version=$(zk38)
  [ -n "$version" ] || { echo "install-test-deps: no Apache ZooKeeper 3.8 package found" >&2; exit 1; }
  echo "install-test-deps: installing Apache ZooKeeper $version (${zk_packages[*]})"
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${zk_packages[@]/%/=$version}" >/dev/null
fi

# Python packages (kazoo and what kazoo's own test suite needs), pinned in
# scripts/python-requirements.txt, go into a virtual environment under the project,
# .venv/ (a stock Debian's python3 refuses pip installs outside one: PEP 668). The
# copy of the requirements inside .venv/ says which pins it was made from.
venv=.venv
if ! cmp -s scripts/python-requirements.txt "$venv/requirements.txt" \
   || ! "$venv/bin/python" -c 'import kazoo, pytest, pytest_timeout, jks, OpenSSL, puresasl, objgraph' >/dev/null 2>&1; then
  echo "install-test-deps: making $venv (scripts/python-requirements.txt)"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv's ensurepip apart, in python3-venv.
    [ "$(id -u)" -eq 0 ] || { echo "install-test-deps: need root to apt-get install python3-venv" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/python-requirements.txt
  cp scripts/python-requirements.txt "$venv/requirements.txt"
fi

# Fail loudly if anything is still missing.
for f in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar; do
  [ -f "$f" ] || { echo "install-test-deps: $f missing after install" >&2; exit 1; }
done
for p in "${zk_packages[@]}"; do
  [[ "$(zk_version "$p")" == 3.8.* ]] || { echo "install-test-deps: $p is not at 3.8 after install ($(zk_version "$p"))" >&2; exit 1; }
done
for j in "${curator_jars[@]}" "${discovery_jars[@]}"; do
  [ -f "/usr/share/java/$j.jar" ] || { echo "install-test-deps: /usr/share/java/$j.jar missing after install" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "install-test-deps: javac missing after install" >&2; exit 1; }
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || { echo "install-test-deps: zkCli.sh missing after install" >&2; exit 1; }
"$venv/bin/python" -c 'import kazoo, pytest, pytest_timeout, jks, OpenSSL, puresasl, objgraph' \
  || { echo "install-test-deps: kazoo or its suite's packages missing from $venv after install" >&2; exit 1; }
command -v tmux >/dev/null || { echo "install-test-deps: tmux missing after install" >&2; exit 1; }
command -v ip >/dev/null || { echo "install-test-deps: ip (iproute2) missing after install" >&2; exit 1; }
for f in "${c_client_bins[@]}"; do
  [ -x "$f" ] || { echo "install-test-deps: $f missing after install" >&2; exit 1; }
done
for f in /usr/include/zookeeper/zookeeper.h "/usr/lib/$(gcc -dumpmachine)/libzookeeper_mt.so"; do
  [ -e "$f" ] || { echo "install-test-deps: $f missing after install" >&2; exit 1; }
done
command -v gcc >/dev/null || { echo "install-test-deps: gcc missing after install" >&2; exit 1; }
echo "install-test-deps: ok ($(dpkg-query -W -f='zookeeper ${Version}' zookeeper 2>/dev/null || echo zookeeper), $(dpkg-query -W -f='curator ${Version}' libcurator-recipes-java 2>/dev/null || echo curator), $(dpkg-query -W -f='curator-x-discovery ${Version}' libcurator-discovery-java 2>/dev/null || echo curator-x-discovery), $(dpkg-query -W -f='jackson-databind ${Version}' libjackson2-databind-java 2>/dev/null || echo jackson-databind), $(dpkg-query -W -f='zookeeper-bin ${Version}' zookeeper-bin 2>/dev/null || echo zookeeper-bin), $(javac -version 2>&1), kazoo $("$venv/bin/python" -c 'import kazoo; print(kazoo.__version__)') in $venv, $(tmux -V))"
