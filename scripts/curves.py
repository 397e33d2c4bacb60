#!/usr/bin/env python3
"""How cost grows: Apache ZooKeeper 3.8 against ours along one dimension at a time,
with charts.

Same servers, settings and durability as bench.py (forceSync on, fsync before
acknowledging; standalone unless the dimension is the ensemble), plus maxClientCnxns=0
so that hundreds of sessions may come from loopback. Each point runs Apache then ours,
--rounds times (medians), --duration seconds measured after --warmup, zk-bench's JSON
giving ops/s and p99, /proc the servers' CPU per operation. Dimensions (--only):
  sessions   1..256 sessions, in-flight 1 and 8, set and get
  inflight   1..64 requests in flight per session, 8 sessions, set and get
  values     10 B..~1 MB values, set and get
  tree       1k..1M znodes (populated first), get and set on random ones
  ensemble   1, 3, 5, 7 voters, set and get (sessions spread over the members)
  observers  3 voters + 0, 2, 4 observers, get and set (spread)
  held       100..10k sessions held open: connect time, server memory, get meanwhile
  watches    1k..1M exists watches held by 20 other sessions while set runs
Writes docs/bench/*.svg, docs/bench/curves.{csv,json} and the section between the
curves markers of BENCHMARKS.md (--out FILE: that file; --charts DIR: that directory).
Run through scripts/bench.sh --curves (it builds the release binaries first).
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import memory  # noqa: E402
from benchlib import BenchError, Deployment, fmt  # noqa: E402
from curves_report import KINDS, NAMES  # noqa: E402
import curves_report  # noqa: E402

COMMON = ["--clients", "8", "--in-flight", "8", "--value-size", "100", "--keys", "1000"]
EXTRA = ["maxClientCnxns=0"]
# The largest value both servers take in a create and a set, with the replies under
# the client's 1,048,575-byte packet limit (jute.maxbuffer's default): 1 MiB - 1 KiB.
MAX_VALUE = 1_047_552

FULL = {
    "sessions": [1, 4, 16, 64, 256],
    "inflight": [1, 2, 4, 8, 16, 32, 64],
    "values": [10, 100, 1024, 10240, 102400, MAX_VALUE],
    "tree": [1_000, 10_000, 100_000, 1_000_000],
    "ensemble": [1, 3, 5, 7],
    "observers": [0, 2, 4],
    "held": [100, 1_000, 10_000],
    "watches": [1_000, 10_000, 100_000, 1_000_000],
}
QUICK = {
    "sessions": [1, 16],
    "inflight": [1, 8],
    "values": [100, 102400],
    "tree": [1_000, 10_000],
    "ensemble": [1, 3],
    "observers": [0, 2],
    "held": [100, 1_000],
    "watches": [1_000, 10_000],
}
WATCHING_SESSIONS = 20
# Sessions connecting at once in `held`: fewer than the listen backlog of either
# server (Apache: 50), so a connect waits for the server, not for a SYN retry.
CONNECTING = 32


class Curves:
    """The points measured so far, and how to measure one."""

    def __init__(self, a):
        self.a = a
        self.points = []  # one dict per run
        self.failures = []

    def record(self, dim, workload, x, label, kind, r, report=None, error=None, **extra):
        p = {"dim": dim, "workload": workload, "x": x, "series": label, "server": kind, "round": r}
        if report:
            p.update(ops_per_sec=report.get("ops_per_sec"), p50_us=report["latency_us"]["p50"],
                     p99_us=report["latency_us"]["p99"], cpu_us_per_op=report.get("cpu_us_per_op"),
                     errors=report.get("errors"))
        if error:
            p["error"] = error
            self.failures.append(f"{dim} {workload} x={x} {label} {NAMES[kind]}: {error}")
        p.update(extra)
        self.points.append(p)
        shown = (f"{p['ops_per_sec']:10.0f} ops/s  p99 {p['p99_us']:7} us" if report and "ops_per_sec" in p
                 else (error or ""))
        print(f"{dim:9} {workload:4} x={x:<8} {label:12} {kind:6} {shown} "
              f"{' '.join(f'{k}={fmt(v, 2)}' for k, v in extra.items() if isinstance(v, (int, float)))}",
              flush=True)

    def point(self, deps, dim, workload, x, args, label=""):
        """Apache, ours, Apache, ours... for --rounds, zk-bench `args` on top of COMMON."""
        for r in range(self.a.rounds):
            for kind in KINDS:
                try:
                    report, _ = benchlib.run_bench(deps[kind], ["--workload", workload] + args,
                                                   self.a.duration, self.a.warmup, COMMON)
                    self.record(dim, workload, x, label, kind, r, report)
                except BenchError as e:
                    self.record(dim, workload, x, label, kind, r, error=first_line(e))


def first_line(e):
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__


def pair(members=1, observers=0):
    """Apache's and ours, started; stopped by the caller."""
    deps = {k: Deployment(k, members, observers, EXTRA) for k in KINDS}
    try:
        for d in deps.values():
            d.start(timeout=120)
    except BaseException:
        stop(deps)
        raise
    return deps


def stop(deps):
    for d in deps.values():
        d.stop()


def standalone(c, xs):
    deps = pair()
    try:
        for n in xs["sessions"]:
            for inflight in [1, 8]:
                for wl in ["set", "get"]:
                    c.point(deps, "sessions", wl, n, ["--clients", str(n), "--in-flight", str(inflight)],
                            f"in-flight {inflight}")
        for n in xs["inflight"]:
            for wl in ["set", "get"]:
                c.point(deps, "inflight", wl, n, ["--in-flight", str(n)])
    finally:
        stop(deps)


def values(c, xs):
    deps = pair()
    try:
        for size in xs["values"]:
            # At most 16 MiB of values per run (each run creates its own keys).
            keys = max(16, min(1000, (16 << 20) // size))
            for wl in ["set", "get"]:
                c.point(deps, "values", wl, size, ["--value-size", str(size), "--keys", str(keys)])
    finally:
        stop(deps)


def tree(c, xs):
    deps = pair()
    try:
        for n in xs["tree"]:
            for kind in KINDS:  # the tree grown to n znodes (the first ones exist already)
                started = time.time()
                try:
                    benchlib.run_bench(deps[kind], ["--workload", "populate", "--keys", str(n)],
                                       0, 0, COMMON, timeout=1800)
                    print(f"tree      populated {n:,} on {kind} in {time.time() - started:.1f} s", flush=True)
                except BenchError as e:
                    c.failures.append(f"tree populate {n} {NAMES[kind]}: {first_line(e)}")
            for wl in ["get", "set"]:
                c.point(deps, "tree", wl, n, ["--populated", "--keys", str(n)])
    finally:
        stop(deps)


def ensembles(c, xs):
    for m in xs["ensemble"]:
        try:
            deps = pair(m)
        except BenchError as e:
            c.failures.append(f"ensemble {m}: {first_line(e)}")
            continue
        try:
            for wl in ["set", "get"]:
                c.point(deps, "ensemble", wl, m, ["--spread"])
        finally:
            stop(deps)
    for o in xs["observers"]:
        try:
            deps = pair(3, o)
        except BenchError as e:
            c.failures.append(f"observers 3+{o}: {first_line(e)}")
            continue
        try:
            for wl in ["get", "set"]:
                c.point(deps, "observers", wl, o, ["--spread"])
        finally:
            stop(deps)


def server_memory(d):
    """(ours: resident set; Apache: JVM heap in use after a full GC), resident set: KiB."""
    pid = d.procs[0].pid
    rss = memory.rss_kib(pid)
    return (memory.jvm_heap_used_kib(pid) if d.kind == "apache" else rss), rss


def hold(d, args, while_held, timeout=900):
    """A zk-bench `hold` run: `while_held(phase)` at each stop ("connecting sessions"
    with --pause-on-stdin, then "holding"); its JSON, and what while_held returned."""
    cmd = [benchlib.ZK_BENCH, "--connect", d.connect_string(), "--json", "--workload", "hold",
           "--duration", str(timeout)] + args
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = benchlib.lines_of(proc.stderr)
    seen = {}
    stops = ["zk-bench: holding"] + (["zk-bench: connecting sessions"] if "--pause-on-stdin" in args else [])
    deadline = time.time() + timeout
    try:
        while "zk-bench: holding" not in seen:
            try:
                line = lines.get(timeout=max(1, deadline - time.time()))
            except queue.Empty:
                raise BenchError(f"hold: no answer within {timeout} s")
            if line is None:
                raise BenchError(f"hold: zk-bench ended: {proc.stdout.read()[:300]}")
            phase = line.strip()
            if phase in stops:
                seen[phase] = while_held(phase)
                try:
                    proc.stdin.write("\n")
                    proc.stdin.flush()
                except BrokenPipeError:
                    raise BenchError(f"hold: zk-bench ended early: {proc.stdout.read()[:300]}")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise BenchError(f"hold failed ({proc.returncode}): {out[:300]}")
    return json.loads(out), seen


def held(c, xs):
    deps = pair()
    try:
        for n, r, kind in [(n, r, k) for n in xs["held"] for r in range(c.a.rounds) for k in KINDS]:
            d = deps[kind]
            loaded = {}

            def at(phase):
                if phase == "zk-bench: holding":
                    loaded["mem"] = server_memory(d)
                    loaded["get"] = benchlib.run_bench(d, ["--workload", "get"], c.a.duration,
                                                       c.a.warmup, COMMON)[0]
                    return loaded["mem"]
                return server_memory(d)

            try:
                report, seen = hold(d, ["--clients", str(n), "--in-flight", str(CONNECTING), "--pause-on-stdin"], at)
                (m0, r0), (m1, r1) = seen["zk-bench: connecting sessions"], seen["zk-bench: holding"]
                c.record("held", "get", n, "", kind, r, loaded["get"], connect_s=report["connect_s"],
                         connect_p99_us=report["connect_us"]["p99"], memory_mib=(m1 - m0) / 1024,
                         rss_mib=(r1 - r0) / 1024, bytes_per_session=(m1 - m0) * 1024 / n)
            except BenchError as e:
                c.record("held", "get", n, "", kind, r, error=first_line(e))
    finally:
        stop(deps)


def watches(c, xs):
    deps = pair()
    try:
        for w in xs["watches"]:
            keys = max(1, w // WATCHING_SESSIONS)
            for r in range(c.a.rounds):
                for kind in KINDS:
                    d = deps[kind]
                    got = {}

                    def at(phase):
                        got["set"] = benchlib.run_bench(d, ["--workload", "set"], c.a.duration,
                                                        c.a.warmup, COMMON)[0]

                    try:
                        report, _ = hold(d, ["--clients", str(WATCHING_SESSIONS), "--in-flight",
                                             str(WATCHING_SESSIONS), "--watch-keys", str(keys)], at)
                        c.record("watches", "set", report["watches"], "", kind, r, got["set"],
                                 watch_set_s=report["watch_set_s"])
                    except BenchError as e:
                        c.record("watches", "set", w, "", kind, r, error=first_line(e))
    finally:
        stop(deps)


NOTES = {
    "sessions": "N sessions with 1 or 8 requests in flight each, on 1,000 znodes of 100 B.",
    "inflight": "8 sessions with N requests in flight each.",
    "values": "8 sessions × 8 in flight; each run creates its own min(1,000, 16 MiB / size) znodes "
              f"(at least 16) of that size. The largest, {MAX_VALUE:,} B (1 MiB − 1 KiB), leaves room for "
              "the path and headers under jute.maxbuffer's default of 1,048,575 bytes on both servers "
              "and in the client.",
    "tree": "zk-bench `populate` grows the tree to N znodes of 100 B under one parent, then get and "
            "set pick random ones (`--populated`).",
    "ensemble": "N voting members; session c connects to member c mod N (`--spread`); writes go "
                "through the leader, reads are served by the member a session is on.",
    "observers": "3 voters plus N observers (`server.N=…:observer`, `peerType=observer`), the 8 sessions "
                 "spread over all members.",
    "held": f"N idle sessions opened {CONNECTING} at a time and held (zk-bench `hold`). Memory is what "
            "they added: ours, the resident set; Apache, the JVM heap in use after a full GC (jcmd), as "
            "in the memory section. The get throughput is 8 other sessions × 8 in flight meanwhile.",
    "watches": f"{WATCHING_SESSIONS} sessions each hold an exists watch on each of N/{WATCHING_SESSIONS} "
               "znodes (zk-bench `hold --watch-keys`) while 8 other sessions set other znodes, so no "
               "watch fires: what a large watch table costs writes.",
}


def command():
    return ("scripts/bench.sh --curves " + " ".join(sys.argv[1:])).strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds per point")
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--quick", action="store_true", help="a tiny subset, 1 s points: a smoke test")
    ap.add_argument("--only", default="", help="comma-separated dimensions (default: all)")
    ap.add_argument("--out", default=os.path.join(benchlib.ROOT, "BENCHMARKS.md"))
    ap.add_argument("--charts", default=os.path.join(benchlib.ROOT, "docs", "bench"))
    a = ap.parse_args()
    if a.quick:
        a.duration, a.warmup = min(a.duration, 1), min(a.warmup, 0.5)
    benchlib.check_tools()
    xs = QUICK if a.quick else FULL
    steps = [("sessions,inflight", standalone), ("values", values), ("tree", tree),
             ("ensemble,observers", ensembles), ("held", held), ("watches", watches)]
    only = {o for o in a.only.split(",") if o}
    unknown = only - set(FULL)
    if unknown:
        raise SystemExit(f"unknown dimension(s) {sorted(unknown)}; known: {sorted(FULL)}")
    c = Curves(a)
    started = time.time()
    for dims, run in steps:
        chosen = {k: (v if not only or k in only else []) for k, v in xs.items()}
        if any(chosen[d] for d in dims.split(",")):
            run(c, chosen)
    took = time.time() - started
    commit = subprocess.run(["git", "-C", benchlib.ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    smoke = ("**Smoke run (`--quick`): a tiny subset with very short points, to show the charts work; "
             "these numbers are not measurements to quote.**\n\n" if a.quick else "")
    intro = (
        f"{smoke}Produced by `{command()}` at commit {commit} on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {took / 60:.0f} minutes: "
        f"{a.rounds} round(s) per point (Apache then ours), {a.duration:g} s measured after {a.warmup:g} s "
        f"warm-up, zk-bench `{' '.join(COMMON)}` unless the dimension changes one of them; servers "
        "standalone unless the dimension is the ensemble, with default settings (forceSync on) and "
        "`maxClientCnxns=0`; red lines are ours, blue ones Apache's, dashed ones the second series "
        "(in-flight 8).")
    curves_report.write(c.points, c.failures, a.out, a.charts, intro, NOTES, CONNECTING, command())


if __name__ == "__main__":
    main()
