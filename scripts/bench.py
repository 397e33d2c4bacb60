#!/usr/bin/env python3
"""Side-by-side benchmark: Apache ZooKeeper 3.8 (Debian package, default settings,
forceSync on) against our zk-server (fsync before acknowledging), standalone and as
3-member ensembles on loopback, driven by the same client tool (zk-bench, on our
client). Each cell of the matrix runs ALTERNATING Apache/ours/Apache/ours...; the
median of each side's runs is reported with the ratio, plus the servers' CPU time per
operation (utime+stime from /proc over the measured window).

Run through scripts/bench.sh (it builds the release binaries first). Writes the
markdown table to BENCHMARKS.md (between the markers) and the raw runs as JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    ROOT, TARGET, ZK_BENCH, Deployment, check_tools, four_letter, fmt, median, replace_block,
)
import benchlib  # noqa: E402

# The fixed matrix: (name, zk-bench arguments).
MATRIX = [
    ("get", ["--workload", "get"]),
    ("set", ["--workload", "set"]),
    ("create", ["--workload", "create"]),
    ("mixed 90% reads", ["--workload", "mixed", "--read-ratio", "0.9"]),
    ("mixed 50% reads", ["--workload", "mixed", "--read-ratio", "0.5"]),
    ("ephemeral churn", ["--workload", "churn"]),
    ("watch delivery", ["--workload", "watch", "--clients", "4"]),
    ("lock (4 contenders)", ["--workload", "lock", "--contenders", "4"]),
]
COMMON = ["--clients", "8", "--in-flight", "8", "--value-size", "100", "--keys", "1000"]


def run_bench(deployment, args, duration, warmup):
    return benchlib.run_bench(deployment, args, duration, warmup, COMMON)


def leader_index(deployment):
    for i, port in enumerate(deployment.client_ports):
        if "Mode: leader" in four_letter(port, "srvr"):
            return i
    return None


def run_failover(kind, rounds, warmup):
    """Leader failover: a 3-member ensemble, 8 sessions writing, the leader killed
    with SIGKILL; how long until the first write sent after the kill is acknowledged,
    and until every session writes again. A fresh ensemble each round."""
    results = []
    for r in range(rounds):
        d = Deployment(kind, 3)
        try:
            d.start()
            i = None
            deadline = time.time() + 30
            while i is None and time.time() < deadline:
                i = leader_index(d)
                time.sleep(0.1)
            if i is None:
                raise SystemExit(f"{kind}: no leader")
            cmd = [ZK_BENCH, "--connect", d.connect_string(), "--json", "--workload", "failover",
                   "--clients", "8", "--warmup", str(warmup), "--duration", "20",
                   "--kill-pid", str(d.procs[i].pid)]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise SystemExit(f"zk-bench failover failed: {' '.join(cmd)}\n{out.stdout}{out.stderr}")
            report = json.loads(out.stdout)
            report["server"] = kind
            report["round"] = r
            results.append(report)
            print(f"3x failover {kind:6} first write after {report['failover_ms']:.1f} ms, "
                  f"every session after {fmt(report['all_clients_ms'], 1)} ms", flush=True)
        finally:
            d.stop()
    return results


def write_failover(a, runs):
    lines = [
        "| server | rounds | first write accepted after the kill, median (min–max) ms | every session writing again, median ms |",
        "|---|---:|---:|---:|",
    ]
    for kind, name in [("apache", "Apache ZooKeeper 3.8"), ("ours", "ours")]:
        firsts = [x["failover_ms"] for x in runs[kind]]
        alls = [x["all_clients_ms"] for x in runs[kind]]
        lines.append(
            f"| {name} | {len(firsts)} | {fmt(median(firsts), 1)} ({fmt(min(firsts), 1)}–{fmt(max(firsts), 1)}) | "
            f"{fmt(median(alls), 1)} |"
        )
    block = (
        "<!-- failover:begin -->\n"
        f"Produced by `scripts/bench.sh {' '.join(sys.argv[1:]).strip()}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: 3-member ensembles with default "
        "settings (tickTime=2000), 8 sessions across the members each writing one after another, "
        "the leader's process killed with SIGKILL after 2 s; a fresh ensemble each round, "
        "Apache and ours alternating.\n\n" + "\n".join(lines) + "\n<!-- failover:end -->"
    )
    replace_block(a.out, "failover", block)
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per cell")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--topologies", default="1,3")
    ap.add_argument("--only", default="", help="comma-separated workload names to run")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--clients", type=int, default=8, help="sessions per run")
    ap.add_argument("--in-flight", type=int, default=8, help="requests in flight per session")
    ap.add_argument("--failover-rounds", type=int, default=3,
                    help="leader-kill rounds per server (0: none); `--only failover` runs only these")
    a = ap.parse_args()
    check_tools()
    # The matrix's shape (8 sessions × 8 in flight unless asked otherwise).
    COMMON[1], COMMON[3] = str(a.clients), str(a.in_flight)
    only = [o for o in a.only.split(",") if o]
    if a.failover_rounds > 0 and (not only or "failover" in only):
        runs = {"apache": [], "ours": []}
        for r in range(a.failover_rounds):
            for kind in ["apache", "ours"]:
                runs[kind] += run_failover(kind, 1, a.warmup)
        write_failover(a, runs)
    matrix = [m for m in MATRIX if not only or m[0] in only]
    if not matrix:
        return
    rows = []
    raw = []
    for members in [int(t) for t in a.topologies.split(",")]:
        deployments = {k: Deployment(k, members) for k in ["apache", "ours"]}
        try:
            for d in deployments.values():
                d.start()
            for name, args in matrix:
                runs = {"apache": [], "ours": []}
                for r in range(a.rounds):
                    for kind in ["apache", "ours"]:  # A/B/A/B
                        report, cmd = run_bench(deployments[kind], args, a.duration, a.warmup)
                        report["server"] = kind
                        report["members"] = members
                        report["round"] = r
                        runs[kind].append(report)
                        raw.append(report)
                        print(f"{members}x {name:22} {kind:6} {report['ops_per_sec']:10.0f} ops/s  "
                              f"p99 {report['latency_us']['p99']:7} us  cpu/op {fmt(report['cpu_us_per_op'], 1)} us",
                              flush=True)
                med = {
                    k: {
                        "ops": median([x["ops_per_sec"] for x in v]),
                        "p50": median([x["latency_us"]["p50"] for x in v]),
                        "p99": median([x["latency_us"]["p99"] for x in v]),
                        "cpu": median([x["cpu_us_per_op"] for x in v]),
                    }
                    for k, v in runs.items()
                }
                rows.append((members, name, med))
        finally:
            for d in deployments.values():
                d.stop()
    write(a, rows, raw)


def write(a, rows, raw):
    lines = [
        "| topology | workload | Apache ops/s | ours ops/s | ratio | Apache p50/p99 µs | ours p50/p99 µs | Apache CPU µs/op | ours CPU µs/op | CPU ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for members, name, med in rows:
        ap, us = med["apache"], med["ours"]
        ratio = us["ops"] / ap["ops"] if ap["ops"] else None
        cpu_ratio = us["cpu"] / ap["cpu"] if ap["cpu"] and us["cpu"] else None
        topo = "standalone" if members == 1 else f"{members}-member"
        lines.append(
            f"| {topo} | {name} | {fmt(ap['ops'])} | {fmt(us['ops'])} | {fmt(ratio, 2)}× | "
            f"{fmt(ap['p50'])}/{fmt(ap['p99'])} | {fmt(us['p50'])}/{fmt(us['p99'])} | "
            f"{fmt(ap['cpu'], 1)} | {fmt(us['cpu'], 1)} | {fmt(cpu_ratio, 2)}× |"
        )
    table = "\n".join(lines)
    command = "scripts/bench.sh " + " ".join(sys.argv[1:])
    block = (
        "<!-- bench:begin -->\n"
        f"Produced by `{command.strip()}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{a.rounds} alternating rounds per cell (Apache, ours, Apache, ours, …), medians shown; "
        f"{a.duration:g} s measured after {a.warmup:g} s warm-up; zk-bench `{' '.join(COMMON)}`.\n\n"
        + table
        + "\n<!-- bench:end -->"
    )
    replace_block(a.out, "bench", block)
    os.makedirs(TARGET, exist_ok=True)
    with open(os.path.join(TARGET, "bench-runs.json"), "w") as f:
        json.dump(raw, f, indent=1)
    print(table)


if __name__ == "__main__":
    main()
