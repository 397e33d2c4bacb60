"""Drives a ZooKeeper server's secure client port with Python's kazoo over TLS
(use_ssl=True, verify_certs=True, a client certificate) and checks every answer.

Usage: python3 kazoo_tls.py HOST:PORT CA_PEM CERT_PEM KEY_PEM
Exits non-zero on the first failed check; prints "kazoo-tls: N checks passed" at the end.
"""
import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("kazoo-tls: FAILED: " + what, file=sys.stderr)
        sys.exit(1)
    checks += 1


hosts, ca, certfile, keyfile = sys.argv[1:5]
zk = KazooClient(hosts=hosts, timeout=10, use_ssl=True, verify_certs=True,
                 ca=ca, certfile=certfile, keyfile=keyfile)
zk.start(timeout=15)
check(zk.connected, "connected over TLS")

# create / get
path = zk.create("/kazoo-tls", b"v1")
check(path == "/kazoo-tls", "created path " + path)
data, stat = zk.get("/kazoo-tls")
check(data == b"v1", "data after create: %r" % data)
check(stat.version == 0, "version after create")
try:
    zk.create("/kazoo-tls", b"again")
    check(False, "second create must fail")
except NodeExistsError:
    check(True, "NodeExists")

# set with versions, and a data watch
changed = threading.Event()
seen = []


def on_change(event):
    seen.append(event)
    changed.set()


zk.get("/kazoo-tls", watch=on_change)
stat = zk.set("/kazoo-tls", b"v2", version=0)
check(stat.version == 1, "version after set")
check(changed.wait(10), "data watch fired")
check(seen[0].type == "CHANGED" and seen[0].path == "/kazoo-tls",
      "watch event %r" % (seen[0],))
try:
    zk.set("/kazoo-tls", b"stale", version=0)
    check(False, "stale set must fail")
except BadVersionError:
    check(True, "BadVersion")
check(zk.get("/kazoo-tls")[0] == b"v2", "data after set")

# children
for name in ("b", "a", "c"):
    zk.create("/kazoo-tls/" + name, name.encode())
seq = zk.create("/kazoo-tls/s-", b"", sequence=True, ephemeral=True)
check(seq == "/kazoo-tls/s-0000000003", "sequential name " + seq)
children = sorted(zk.get_children("/kazoo-tls"))
check(children == ["a", "b", "c", "s-0000000003"], "children %r" % children)
check(zk.exists("/kazoo-tls/a").numChildren == 0, "exists stat")

# delete
zk.delete("/kazoo-tls", recursive=True)
try:
    zk.get("/kazoo-tls")
    check(False, "deleted node still readable")
except NoNodeError:
    check(True, "NoNode after delete")

zk.stop()
zk.close()
print("kazoo-tls: %d checks passed" % checks)
