"""pytest plugin: kazoo's own test suite, with kazoo's own harness, on zk-server.

kazoo's harness (kazoo/testing/common.py, ManagedZooKeeper) writes a zoo.cfg, a JAAS
file and JKS key and trust stores for each member of a 3-member ensemble, then starts
`java ... -D... org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg`. This plugin
leaves all of that as it is and only replaces the process: the same `-D` system
properties and the same zoo.cfg, given to zk-server (ZK_RS_SERVER) instead of java.
Each member's log goes where the harness reads it on a failure (zookeeper.log beside
zoo.cfg).

With ZK_RS_RESULTS set, the number of zk-server processes started
({"zk_server_started": N}) and every test's outcome are written there as JSON lines
({"nodeid": ..., "outcome": "passed" | "failed" | "skipped"}) for the Rust side to
tabulate. A java command it cannot translate is an error, never run.
"""
import json
import os
import subprocess
import types

import kazoo.testing.common as common

_MAINS = (
    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
    "org.apache.zookeeper.server.ZooKeeperServerMain",
)


def _zk_server_args(args):
    """The zk-server command line for the harness's java command line."""
    server = os.environ["ZK_RS_SERVER"]
    main = next(i for i, a in enumerate(args) if a in _MAINS)
    properties = [a for a in args[1:main] if a.startswith("-D")]
    return [server] + properties + list(args[main + 1:])


_started = []


def _popen(args, **kwargs):
    args = list(args)
    if args and os.path.basename(args[0]) == "java":
        if not any(a in _MAINS for a in args):
            raise RuntimeError("zk_rs_plugin: unexpected java command %r" % (args,))
        args = _zk_server_args(args)
        _started.append(args[-1])
        config = args[-1]
        log = open(os.path.join(os.path.dirname(config), "zookeeper.log"), "ab")
        kwargs.setdefault("stdout", log)
        kwargs.setdefault("stderr", subprocess.STDOUT)
    return subprocess.Popen(args, **kwargs)


# kazoo.testing.common calls subprocess.Popen through its module global `subprocess`.
common.subprocess = types.SimpleNamespace(
    **{name: getattr(subprocess, name) for name in dir(subprocess) if not name.startswith("__")}
)
common.subprocess.Popen = _popen

_outcomes = {}


def pytest_runtest_logreport(report):
    # A test's outcome: failed if any phase failed, skipped if its setup skipped it.
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped:
        _outcomes.setdefault(report.nodeid, "skipped")
    elif report.when == "call":
        _outcomes.setdefault(report.nodeid, "passed")


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("ZK_RS_RESULTS")
    if not path:
        return
    with open(path, "w") as out:
        out.write(json.dumps({"zk_server_started": len(_started)}) + "\n")
        for nodeid, outcome in sorted(_outcomes.items()):
            out.write(json.dumps({"nodeid": nodeid, "outcome": outcome}) + "\n")
