#!/usr/bin/env bash
# Regenerates zk-proto's golden vectors with Apache ZooKeeper's own jute classes.
# Needs a JDK and the Debian package `zookeeper` (jars in /usr/share/java).
# Usage: zk-proto/golden/generate.sh [out-dir]   (default: zk-proto/tests/golden)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../tests/golden}
jars=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar
for j in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar; do
  [ -f "$j" ] || { echo "golden: $j is missing (apt-get install zookeeper)" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "golden: javac is missing (apt-get install default-jdk-headless)" >&2; exit 1; }
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
javac -nowarn -d "$build" -cp "$jars" "$here/GoldenVectors.java"
mkdir -p "$out"
rm -f "$out"/*.hex "$out"/*.txt
java -cp "$jars:$build" GoldenVectors "$out"
echo "golden: wrote $(ls "$out"/*.hex | wc -l) vectors to $out"
