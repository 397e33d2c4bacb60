"""What the benchmark scripts share: the binaries, Apache ZooKeeper's and our servers
started on loopback (standalone, ensembles, observers) and stopped, one zk-bench run
with the servers' CPU time over its measured window, and BENCHMARKS.md's blocks.

Used by bench.py (the matrix), memory.py, limits.py and curves.py.
"""

import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
if not os.path.isabs(TARGET):
    TARGET = os.path.join(ROOT, TARGET)
ZK_SERVER = os.path.join(TARGET, "release", "zk-server")
ZK_BENCH = os.path.join(TARGET, "release", "zk-bench")
CLASSPATH = ":".join(
    "/usr/share/java/" + j
    for j in ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar"]
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(SystemExit):
    """A run that failed: ends a script that does not catch it, with its message."""


def check_tools():
    for tool in [ZK_SERVER, ZK_BENCH]:
        if not os.path.exists(tool):
            raise SystemExit(f"{tool} missing: run scripts/bench.sh (it builds them)")


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
    """Apache's or ours, standalone (1 member) or an ensemble of `members` voters and
    `observers` observers, in a temporary directory; `extra` zoo.cfg lines for all."""

    def __init__(self, kind, members, observers=0, extra=()):
        self.kind = kind
        self.voters = members
        self.members = members + observers
        self.extra = list(extra)
        self.dir = tempfile.mkdtemp(prefix=f"zkbench-{kind}-")
        self.client_ports = [free_port() for _ in range(self.members)]
        self.peer_ports = [(free_port(), free_port()) for _ in range(self.members)]
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
        ] + self.extra
        if self.members > 1:
            for j in range(self.members):
                q, e = self.peer_ports[j]
                role = ":observer" if j >= self.voters else ""
                lines.append(f"server.{j + 1}=127.0.0.1:{q}:{e}{role}")
            if i >= self.voters:
                lines.append("peerType=observer")
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

    def start(self, timeout=60):
        for i in range(self.members):
            cfg = self.config(i)
            log = open(os.path.join(self.dir, f"m{i + 1}", "server.log"), "w")
            env = dict(os.environ, RUST_LOG="warn")
            self.procs.append(
                subprocess.Popen(self.command(cfg), stdout=log, stderr=log, env=env, cwd=os.path.dirname(cfg))
            )
        deadline = time.time() + timeout
        while time.time() < deadline:
            modes = [four_letter(p, "srvr") for p in self.client_ports]
            if self.members == 1 and "Mode: standalone" in modes[0]:
                return
            if self.members > 1 and any("Mode: leader" in m for m in modes) and all(
                "Mode: " in m for m in modes
            ):
                return
            time.sleep(0.2)
        self.stop(keep=True)
        raise BenchError(f"{self.kind} x{self.members} did not come up; logs in {self.dir}")

    def connect_string(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def cpu(self):
        ticks = [cpu_ticks(p.pid) for p in self.procs]
        return None if None in ticks else sum(ticks)

    def stop(self, keep=False):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.procs = []
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def lines_of(stream):
    """A queue of `stream`'s lines (None at its end), read by a thread of its own, so
    a caller can wait for the next one with a timeout."""
    q = queue.Queue()

    def pump():
        for line in stream:
            q.put(line)
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def run_bench(deployment, args, duration, warmup, common=(), timeout=None):
    """One zk-bench run (`common`, then `args`: later flags win) against `deployment`,
    killed after `timeout` seconds (default: the run's length plus two minutes). Its
    JSON report, plus the servers' CPU seconds over the measured window and per op."""
    cmd = [ZK_BENCH, "--connect", deployment.connect_string(), "--json",
           "--duration", str(duration), "--warmup", str(warmup)] + list(common) + list(args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    limit = timeout if timeout is not None else duration + warmup + 120
    timer = threading.Timer(limit, proc.kill)
    timer.start()
    before = after = None
    errors = []
    try:
        for line in proc.stderr:
            if "zk-bench: measuring" in line:
                before = deployment.cpu()
            elif "zk-bench: measured" in line:
                after = deployment.cpu()
            else:
                errors.append(line)
        out = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
    if proc.returncode != 0:
        raise BenchError(f"zk-bench failed ({proc.returncode}): {' '.join(cmd)}\n{out}{''.join(errors[-5:])}")
    report = json.loads(out)
    # A sample that could not be read (or went backwards) gives no CPU figure.
    ok = before is not None and after is not None and after >= before
    cpu_s = (after - before) / CLK_TCK if ok else None
    report["server_cpu_s"] = cpu_s
    report["cpu_us_per_op"] = cpu_s * 1e6 / report["ops"] if ok and report["ops"] else None
    return report, cmd


def replace_block(path, name, block, heading=None):
    """Puts `block` between `<!-- name:begin -->` and `<!-- name:end -->` of `path`;
    appends it (under `heading`, if given) when the markers are not there yet."""
    begin, end_mark = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    start = text.find(begin)
    end = text.find(end_mark)
    if start < 0 or end < 0:
        text += "\n" + (heading + "\n\n" if heading else "") + block + "\n"
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
