#!/usr/bin/env python3
"""Memory per idle session: N sessions opened 32 at a time and held (zk-bench `hold`),
on ours and/or Apache ZooKeeper 3.8, standalone, as curves.py's "held" dimension
measures it (ours: resident set grown; Apache: JVM heap in use after a full GC grown,
its resident set too), without the get load and the charts.

    scripts/idle_sessions.py [--sessions 10000] [--servers ours,apache]

Needs the release binaries under $CARGO_TARGET_DIR (default target/), as bench.sh builds
them.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import curves  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--servers", default="ours,apache")
    args = ap.parse_args()
    n = args.sessions
    for kind in args.servers.split(","):
        d = curves.Deployment(kind, 1, 0, curves.EXTRA)
        d.start(timeout=120)
        try:
            report, seen = curves.hold(
                d, ["--clients", str(n), "--in-flight", str(curves.CONNECTING), "--pause-on-stdin"],
                lambda phase: curves.server_memory(d))
            (m0, r0), (m1, r1) = seen["zk-bench: connecting sessions"], seen["zk-bench: holding"]
            print(f"{kind}: {n} sessions held: {(m1 - m0) * 1024 / n:,.0f} B per session "
                  f"({'heap' if kind == 'apache' else 'resident set'}), resident set "
                  f"{(r1 - r0) * 1024 / n:,.0f} B per session, connected in {report['connect_s']:.2f} s")
        finally:
            d.stop()


if __name__ == "__main__":
    main()
