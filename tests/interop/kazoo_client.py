"""Drives a ZooKeeper server with Python's kazoo and checks every answer.

Usage: python3 kazoo_client.py HOST:PORT
Exits non-zero on the first failed check; prints "kazoo: N checks passed" at the end.
"""
import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoAuthError, NodeExistsError,
                              NoNodeError, NotEmptyError)
from kazoo.protocol.states import EventType
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print("kazoo: FAILED: " + what, file=sys.stderr)
        sys.exit(1)
    checks += 1


def wait(event, what):
    check(event.wait(10), "timed out waiting for " + what)


hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=15)

# create in every mode
zk.create("/kz", b"root")
check(zk.get("/kz")[0] == b"root", "data of /kz")
eph = zk.create("/kz/eph", b"e", ephemeral=True)
check(eph == "/kz/eph", "ephemeral path")
seq = zk.create("/kz/seq-", b"s", sequence=True)
check(seq == "/kz/seq-0000000001", "sequential name " + seq)
eseq = zk.create("/kz/eseq-", b"s", ephemeral=True, sequence=True)
check(eseq == "/kz/eseq-0000000002", "ephemeral sequential name " + eseq)
zk.create("/kz/deep/er/path", b"x", makepath=True)
check(zk.exists("/kz/deep/er") is not None, "makepath")
check(zk.exists("/kz/eph").ephemeralOwner == zk.client_id[0], "ephemeral owner is our session")
try:
    zk.create("/kz", b"again")
    check(False, "duplicate create must fail")
except NodeExistsError:
    check(True, "NodeExists")

# get/set with versions
data, stat = zk.get("/kz")
check(stat.version == 0, "initial version")
stat = zk.set("/kz", b"v1", version=0)
check(stat.version == 1 and stat.dataLength == 2, "set bumps version")
try:
    zk.set("/kz", b"v2", version=0)
    check(False, "stale version must fail")
except BadVersionError:
    check(True, "BadVersion")
try:
    zk.delete("/kz")
    check(False, "non-empty delete must fail")
except NotEmptyError:
    check(True, "NotEmpty")
try:
    zk.get("/kz/none")
    check(False, "missing node")
except NoNodeError:
    check(True, "NoNode")

# children
children = sorted(zk.get_children("/kz"))
check(children == ["deep", "eph", "eseq-0000000002", "seq-0000000001"], "children %r" % children)
children, stat = zk.get_children("/kz", include_data=True)
check(stat.numChildren == 4, "getChildren2 stat")

# multi (transaction), committed and rolled back
t = zk.transaction()
t.create("/kz/t1", b"1")
t.check("/kz", 1)
t.set_data("/kz", b"v2", version=1)
results = t.commit()
check(results[0] == "/kz/t1" and results[1] is True, "multi results %r" % (results,))
t = zk.transaction()
t.create("/kz/t2", b"2")
t.check("/kz", 99)
results = t.commit()
check(isinstance(results[1], BadVersionError), "failed multi reports BadVersion %r" % (results,))
check(zk.exists("/kz/t2") is None, "failed multi rolled back")

# one-shot watches
changed = threading.Event()
seen = []


def data_watch(event):
    seen.append(event)
    changed.set()


zk.get("/kz/t1", watch=data_watch)
zk.set("/kz/t1", b"changed")
wait(changed, "data watch")
check(seen[0].type == EventType.CHANGED and seen[0].path == "/kz/t1", "data watch event %r" % seen)
child_changed = threading.Event()
zk.get_children("/kz", watch=lambda e: child_changed.set())
zk.create("/kz/t3", b"")
wait(child_changed, "child watch")
created = threading.Event()
zk.exists("/kz/later", watch=lambda e: created.set() if e.type == EventType.CREATED else None)
zk.create("/kz/later", b"")
wait(created, "exists watch")

# persistent recursive watch (addWatch, opcode 106). kazoo 2.11, the newest release,
# has no API for it, so the request is sent over kazoo's own connection with a request
# class in kazoo's serialization style, and a hook hands the events to our callback.
from collections import namedtuple  # noqa: E402
from kazoo.protocol.serialization import Watch, int_struct, write_string  # noqa: E402


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = 106

    def serialize(self):
        b = bytearray()
        b.extend(write_string(self.path))
        b.extend(int_struct.pack(self.mode))
        return b

    @classmethod
    def deserialize(cls, buffer, offset):
        return int_struct.unpack_from(buffer, offset)[0]


persistent = {}
original_read_watch_event = zk._connection._read_watch_event


def read_watch_event(buffer, offset):
    watch, _ = Watch.deserialize(buffer, offset)
    original_read_watch_event(buffer, offset)
    for base, (mode, callback) in list(persistent.items()):
        if watch.path == base or (mode == 1 and watch.path.startswith(base + "/")):
            callback(watch)


zk._connection._read_watch_event = read_watch_event

events = []
got_three = threading.Event()


def recursive_watch(watch):
    events.append((watch.type, watch.path))
    if len(events) >= 3:
        got_three.set()


persistent["/kz/rec"] = (1, recursive_watch)
result = zk.handler.async_result()
zk._call(AddWatch("/kz/rec", 1), result)
check(result.get(timeout=10) == 0, "addWatch answered with ErrorResponse(0)")
zk.create("/kz/rec", b"")
zk.create("/kz/rec/a", b"")
zk.set("/kz/rec/a", b"x")
wait(got_three, "recursive watch events")
# Watcher.Event.EventType: 1 NodeCreated, 3 NodeDataChanged; no NodeChildrenChanged.
check(events == [(1, "/kz/rec"), (1, "/kz/rec/a"), (3, "/kz/rec/a")], "recursive events %r" % events)

# container (createContainer, opcode 19) and TTL (createTTL, opcode 21) nodes: kazoo
# 2.11 has no API for either, so they go over kazoo's connection as addWatch does.
# The server reaps an emptied container and an expired TTL node on its container
# check interval (200 ms for the test servers).
from kazoo.protocol.serialization import Create2, long_struct  # noqa: E402


class CreateContainer(Create2):
    """createContainer: create2's body (flags 4 = CONTAINER), answered path + Stat."""
    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    """CreateTTLRequest: create2's body then the TTL in ms (long)."""
    type = 21

    def serialize(self):
        b = Create2(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(long_struct.pack(self.ttl))
        return b

    @classmethod
    def deserialize(cls, buffer, offset):
        return Create2.deserialize(buffer, offset)


def raw_create(request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=10)


def deleted_event(path):
    gone = threading.Event()
    stat = zk.exists(path, watch=lambda e: gone.set() if e.type == EventType.DELETED else None)
    check(stat is not None, path + " exists before it is reaped")
    return gone


path, stat = raw_create(CreateContainer("/kz/box", b"c", OPEN_ACL_UNSAFE, 4))
check(path == "/kz/box", "container path " + path)
# Clients see ephemeralOwner 0 on containers and TTL nodes (ZooKeeper 3.8 hides the
# owner markers it keeps for them).
check(stat.ephemeralOwner == 0 and stat.dataLength == 1, "container stat %r" % (stat,))
zk.create("/kz/box/item", b"")
box_gone = deleted_event("/kz/box")
zk.delete("/kz/box/item")
wait(box_gone, "the emptied container to be reaped")
check(zk.exists("/kz/box") is None, "container gone")

path, stat = raw_create(CreateTTL("/kz/ttl", b"t", OPEN_ACL_UNSAFE, 5, 500))
check(path == "/kz/ttl", "TTL node path " + path)
check(stat.ephemeralOwner == 0 and stat.dataLength == 1, "TTL node stat %r" % (stat,))
ttl_gone = deleted_event("/kz/ttl")
wait(ttl_gone, "the TTL node to be reaped")
check(zk.exists("/kz/ttl") is None, "TTL node gone")

# ACLs with digest auth
zk.add_auth("digest", "alice:secret")
acl = make_digest_acl("alice", "secret", all=True)
zk.create("/kz/secure", b"top", acl=[acl])
acls, _ = zk.get_acls("/kz/secure")
check(acls[0].id.scheme == "digest" and acls[0].id.id.startswith("alice:"), "acl %r" % acls)
other = KazooClient(hosts=hosts, timeout=10)
other.start(timeout=15)
try:
    other.get("/kz/secure")
    check(False, "read without auth must fail")
except NoAuthError:
    check(True, "NoAuth")
other.add_auth("digest", "alice:secret")
check(other.get("/kz/secure")[0] == b"top", "read with auth")

# ephemerals vanish when their session closes
other.create("/kz/others-eph", b"", ephemeral=True)
zk.sync("/kz")  # on an ensemble zk may be on another member: catch up first
gone = threading.Event()
zk.exists("/kz/others-eph", watch=lambda e: gone.set() if e.type == EventType.DELETED else None)
other.stop()
other.close()
wait(gone, "ephemeral deletion on close")
check(zk.exists("/kz/others-eph") is None, "ephemeral gone")

zk.delete("/kz", recursive=True)
check(zk.exists("/kz") is None, "recursive delete")
zk.stop()
zk.close()
print("kazoo: %d checks passed" % checks)
