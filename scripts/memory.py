#!/usr/bin/env python3
"""Memory per znode and recovery time, Apache ZooKeeper 3.8 against ours.

For each server, standalone with default settings (forceSync on, snapCount 100000):
load --keys znodes of --value-size bytes (zk-bench populate), then measure
- memory: ours, the process's resident set (VmRSS) after the load minus before it;
  Apache, the JVM heap in use after a full GC (jcmd GC.run, GC.heap_info) after minus
  before (its resident set too, for reference);
- recovery: kill -9, start again on the same data directory, and time until `srvr`
  reports the whole tree (Node count) — the snapshot read and the log replayed.
Run through scripts/bench.sh --memory (it builds the release binaries first). Writes a
table between the memory markers of BENCHMARKS.md.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bench  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def jvm_heap_used_kib(pid):
    for _ in range(2):
        subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, timeout=120)
    out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True,
                         timeout=60).stdout
    m = re.search(r"used (\d+)K", out)
    if not m:
        raise SystemExit(f"cannot read the JVM heap of {pid}:\n{out}")
    return int(m.group(1))


def node_count(port):
    m = re.search(r"Node count: (\d+)", bench.four_letter(port, "srvr", timeout=0.5))
    return int(m.group(1)) if m else -1


def memory(kind):
    d = bench.Deployment(kind, 1)
    pid = None
    try:
        d.start()
        pid = d.procs[0].pid
        port = d.client_ports[0]
        heap = jvm_heap_used_kib if kind == "apache" else None
        before_rss = rss_kib(pid)
        before_heap = heap(pid) if heap else None
        cmd = [bench.ZK_BENCH, "--connect", d.connect_string(), "--json", "--workload", "populate",
               "--keys", str(ARGS.keys), "--value-size", str(ARGS.value_size),
               "--clients", "8", "--in-flight", "8"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if out.returncode != 0:
            raise SystemExit(f"populate failed: {out.stdout}{out.stderr}")
        load = json.loads(out.stdout)
        nodes = node_count(port)
        after_rss = rss_kib(pid)
        after_heap = heap(pid) if heap else None
        disk = int(subprocess.run(["du", "-sk", d.dir], capture_output=True, text=True).stdout.split()[0])
        # Recovery: a crash, then a start on the same data.
        proc = d.procs[0]
        proc.kill()
        proc.wait()
        cfg = os.path.join(d.dir, "m1", "zoo.cfg")
        log = open(os.path.join(d.dir, "m1", "server-restart.log"), "w")
        started = time.time()
        d.procs[0] = subprocess.Popen(d.command(cfg), stdout=log, stderr=log,
                                      env=dict(os.environ, RUST_LOG="warn"), cwd=os.path.dirname(cfg))
        recovered = None
        while time.time() - started < 600:
            if node_count(port) >= nodes > 0:
                recovered = time.time() - started
                break
            time.sleep(0.02)
        after_restart_rss = rss_kib(d.procs[0].pid)
        result = {
            "server": kind,
            "keys": ARGS.keys,
            "value_size": ARGS.value_size,
            "node_count": nodes,
            "populate_ops_per_sec": load["ops_per_sec"],
            "rss_before_kib": before_rss,
            "rss_after_kib": after_rss,
            "rss_after_restart_kib": after_restart_rss,
            "heap_before_kib": before_heap,
            "heap_after_kib": after_heap,
            "disk_kib": disk,
            "recovery_s": recovered,
        }
        grown = (after_heap - before_heap) if heap else (after_rss - before_rss)
        result["bytes_per_znode"] = grown * 1024 / ARGS.keys
        print(json.dumps(result), flush=True)
        return result
    finally:
        d.stop()


def main():
    results = {}
    for kind in ["apache", "ours"]:
        results[kind] = memory(kind)
    a, o = results["apache"], results["ours"]
    lines = [
        "| server | bytes per znode | measured as | recovery after kill -9 | data on disk | load rate |",
        "|---|---:|---|---:|---:|---:|",
        f"| Apache ZooKeeper 3.8 | {a['bytes_per_znode']:,.0f} | JVM heap in use after full GC "
        f"(resident set grew {(a['rss_after_kib'] - a['rss_before_kib']) * 1024 / ARGS.keys:,.0f} B/znode) | "
        f"{bench.fmt(a['recovery_s'], 2)} s | {a['disk_kib'] / 1024:,.0f} MiB | {a['populate_ops_per_sec']:,.0f}/s |",
        f"| ours | {o['bytes_per_znode']:,.0f} | resident set (VmRSS) | {bench.fmt(o['recovery_s'], 2)} s | "
        f"{o['disk_kib'] / 1024:,.0f} MiB | {o['populate_ops_per_sec']:,.0f}/s |",
    ]
    ratio = o["bytes_per_znode"] / a["bytes_per_znode"] if a["bytes_per_znode"] else None
    block = (
        "<!-- memory:begin -->\n"
        f"Produced by `scripts/bench.sh --memory {' '.join(sys.argv[1:]).strip()}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: standalone, default settings, "
        f"{ARGS.keys:,} znodes of {ARGS.value_size} bytes created by zk-bench populate "
        "(8 sessions × 8 in flight); memory is what the load added; recovery is from SIGKILL to "
        f"`srvr` reporting the whole tree. Ours uses {bench.fmt(ratio, 2)}× Apache's memory per znode.\n\n"
        + "\n".join(lines) + "\n<!-- memory:end -->"
    )
    bench.replace_block(ARGS.out, "memory", block)
    print("\n".join(lines))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "BENCHMARKS.md"))
    ARGS = ap.parse_args()
    main()
