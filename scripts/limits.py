#!/usr/bin/env python3
"""At the limits, Apache ZooKeeper 3.8 against ours: one multi as large as a request
may be, a chain of znodes thousands of levels deep, and a million watches.

For each server, standalone with default settings, zk-bench's `scale` workload:
- a multi of --keys creates, at most 10,000 (and first one as large whose last op
  fails: nothing created), timed;
- a chain --depth levels deep (created fifty levels per multi), and a read of
  its bottom;
- --sessions sessions each setting an exists watch on every znode of the multi
  (sessions x keys watches), then all fired by setData multis and timed until every
  event arrived. The server's memory is measured before and after the watches are set:
  ours as the process's resident set, Apache's as JVM heap in use after a full GC
  (jcmd), as scripts/memory.py does.
Run through scripts/bench.sh --limits (it builds the release binaries first). Writes
a table between the limits markers of BENCHMARKS.md.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bench  # noqa: E402
import memory  # noqa: E402


def scale(kind):
    d = bench.Deployment(kind, 1)
    try:
        d.start()
        pid = d.procs[0].pid
        heap = memory.jvm_heap_used_kib if kind == "apache" else None
        cmd = [bench.ZK_BENCH, "--connect", d.connect_string(), "--json", "--workload", "scale",
               "--keys", str(ARGS.keys), "--depth", str(ARGS.depth),
               "--clients", str(ARGS.sessions), "--pause-on-stdin"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        marks = {}
        for line in proc.stderr:
            line = line.strip()
            if line in ("zk-bench: setting watches", "zk-bench: watches set"):
                marks[line] = (memory.rss_kib(pid), heap(pid) if heap else None)
                proc.stdin.write("\n")
                proc.stdin.flush()
            elif line:
                print(f"  {kind}: {line}", file=sys.stderr)
            if len(marks) == 2:
                break
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"zk-bench scale failed on {kind}: {out}{err}")
        result = json.loads(out)
        (rss0, heap0), (rss1, heap1) = marks["zk-bench: setting watches"], marks["zk-bench: watches set"]
        grown = (heap1 - heap0) if heap else (rss1 - rss0)
        result["server"] = kind
        result["bytes_per_watch"] = grown * 1024 / result["watches"]
        result["rss_grown_mib"] = (rss1 - rss0) / 1024
        print(json.dumps(result), flush=True)
        return result
    finally:
        d.stop()


def row(name, r):
    return (
        f"| {name} | {r['multi_ms']:,.0f} ms ({r['multi_failed_ms']:,.0f} ms failing) | "
        f"{r['deep_create_ms']:,.0f} ms; bottom read {r['deep_get_us']:,.0f} µs | "
        f"{r['watch_set_ms'] / 1000:,.1f} s | {r['watch_fire_ms'] / 1000:,.1f} s "
        f"({r['watches_delivered']:,} delivered) | {r['bytes_per_watch']:,.0f} B |"
    )


def main():
    results = {kind: scale(kind) for kind in ["apache", "ours"]}
    a, o = results["apache"], results["ours"]
    lines = [
        f"| server | multi of {a['multi_ops']:,} creates | chain {ARGS.depth:,} deep (create) | "
        f"set {a['watches']:,} watches | fire them all | memory per watch |",
        "|---|---:|---:|---:|---:|---:|",
        row("Apache ZooKeeper 3.8", a),
        row("ours", o),
    ]
    block = (
        "<!-- limits:begin -->\n"
        f"Produced by `scripts/bench.sh --limits {' '.join(sys.argv[1:]).strip()}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: standalone, default settings, "
        f"zk-bench `scale` ({ARGS.sessions} sessions x {ARGS.keys:,} exists watches, fired by "
        "setData multis of 1,000). Memory per watch: ours, resident set; Apache, JVM heap in use "
        "after a full GC.\n\n"
        + "\n".join(lines) + "\n<!-- limits:end -->"
    )
    bench.replace_block(ARGS.out, "limits", block)
    print("\n".join(lines))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--depth", type=int, default=5_000)
    # Both servers allow 60 connections from one address by default (maxClientCnxns).
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "BENCHMARKS.md"))
    ARGS = ap.parse_args()
    main()
