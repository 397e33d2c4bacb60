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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZK_SERVER = os.path.join(ROOT, "target", "release", "zk-server")
ZK_BENCH = os.path.join(ROOT, "target", "release", "zk-bench")
CLASSPATH = ":".join(
    "/usr/share/java/" + j
    for j in ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar"]
)
CLK_TCK = os.sysconf("SC_CLK_TCK")

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return ""


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 (1-based) of the whole line.
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


class Deployment:
    """Apache's or ours, standalone (1) or an ensemble (3), in a temporary directory."""

    def __init__(self, kind, members):
        self.kind = kind
        self.members = members
        self.dir = tempfile.mkdtemp(prefix=f"zkbench-{kind}-")
        self.client_ports = [free_port() for _ in range(members)]
        self.peer_ports = [(free_port(), free_port()) for _ in range(members)]
        self.procs = []

    def config(self, i):
        data = os.path.join(self.dir, f"m{i + 1}", "data")
        os.makedirs(data, exist_ok=True)
        lines = [
            "tickTime=2000",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={data}",
            f"clientPort={self.client_ports[i]}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=*",
        ]
        if self.members > 1:
            for j in range(self.members):
                q, e = self.peer_ports[j]
                lines.append(f"server.{j + 1}=127.0.0.1:{q}:{e}")
            with open(os.path.join(data, "myid"), "w") as f:
                f.write(f"{i + 1}\n")
        path = os.path.join(self.dir, f"m{i + 1}", "zoo.cfg")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def command(self, cfg):
        if self.kind == "apache":
            return ["java", "-cp", CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        return [ZK_SERVER, cfg]

    def start(self):
        for i in range(self.members):
            cfg = self.config(i)
            log = open(os.path.join(self.dir, f"m{i + 1}", "server.log"), "w")
            env = dict(os.environ, RUST_LOG="warn")
            self.procs.append(
                subprocess.Popen(self.command(cfg), stdout=log, stderr=log, env=env, cwd=os.path.dirname(cfg))
            )
        deadline = time.time() + 60
        while time.time() < deadline:
            modes = [four_letter(p, "srvr") for p in self.client_ports]
            if self.members == 1 and "Mode: standalone" in modes[0]:
                return
            if self.members > 1 and any("Mode: leader" in m for m in modes) and all(
                "Mode: " in m for m in modes
            ):
                return
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.kind} x{self.members} did not come up; logs in {self.dir}")

    def connect_string(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def cpu(self):
        ticks = [cpu_ticks(p.pid) for p in self.procs]
        return None if None in ticks else sum(ticks)

    def stop(self):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.procs = []
        shutil.rmtree(self.dir, ignore_errors=True)


def run_bench(deployment, args, duration, warmup):
    cmd = [ZK_BENCH, "--connect", deployment.connect_string(), "--json",
           "--duration", str(duration), "--warmup", str(warmup)] + COMMON + args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = after = None
    for line in proc.stderr:
        if "zk-bench: measuring" in line:
            before = deployment.cpu()
        elif "zk-bench: measured" in line:
            after = deployment.cpu()
    out = proc.stdout.read()
    proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"zk-bench failed: {' '.join(cmd)}\n{out}")
    report = json.loads(out)
    # A sample that could not be read (or went backwards) gives no CPU figure.
    ok = before is not None and after is not None and after >= before
    cpu_s = (after - before) / CLK_TCK if ok else None
    report["server_cpu_s"] = cpu_s
    report["cpu_us_per_op"] = cpu_s * 1e6 / report["ops"] if ok and report["ops"] else None
    return report, cmd


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


def replace_block(path, name, block):
    begin, end_mark = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    start = text.find(begin)
    end = text.find(end_mark)
    if start < 0 or end < 0:
        text += "\n" + block + "\n"
    else:
        text = text[:start] + block + text[end + len(end_mark):]
    with open(path, "w") as f:
        f.write(text)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per cell")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--topologies", default="1,3")
    ap.add_argument("--only", default="", help="comma-separated workload names to run")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--failover-rounds", type=int, default=3,
                    help="leader-kill rounds per server (0: none); `--only failover` runs only these")
    a = ap.parse_args()
    for tool in [ZK_SERVER, ZK_BENCH]:
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} missing: run scripts/bench.sh (it builds them)")
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
    try:
        with open(a.out) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n\n<!-- bench:begin -->\n<!-- bench:end -->\n"
    start = text.find("<!-- bench:begin -->")
    end = text.find("<!-- bench:end -->")
    if start < 0 or end < 0:
        text += "\n" + block + "\n"
    else:
        text = text[:start] + block + text[end + len("<!-- bench:end -->"):]
    with open(a.out, "w") as f:
        f.write(text)
    with open(os.path.join(ROOT, "target", "bench-runs.json"), "w") as f:
        json.dump(raw, f, indent=1)
    print(table)


if __name__ == "__main__":
    main()
