"""Writes an Apache ZooKeeper snapshot (FileSnap format, uncompressed) of N small
znodes, for measuring `zk-server import` at scale (scripts/bench-import.sh).

Usage: apache_snapshot.py VERSION2_DIR N

/bench/p-NNNN parents of 1000 children each, 16-byte data, OPEN_ACL_UNSAFE. ZooKeeper
loads it and (on start) writes its own snapshot of it, which is what gets imported.
"""

import struct
import sys
import zlib


def main():
    out_dir, n = sys.argv[1], int(sys.argv[2])
    parents = (n + 999) // 1000
    buf = bytearray()
    i32 = lambda v: buf.extend(struct.pack(">i", v))
    i64 = lambda v: buf.extend(struct.pack(">q", v))

    def string(s):
        b = s.encode()
        i32(len(b))
        buf.extend(b)

    zxid = [0]

    def node(path, data, acl, cversion, children_zxid=None):
        string(path)
        if data is None:
            i32(-1)
        else:
            i32(len(data))
            buf.extend(data)
        i64(acl)
        z = zxid[0]
        i64(z)  # czxid
        i64(z)  # mzxid
        i64(1_700_000_000_000 + z)  # ctime
        i64(1_700_000_000_000 + z)  # mtime
        i32(0)  # version
        i32(cversion)
        i32(0)  # aversion
        i64(0)  # ephemeralOwner
        i64(children_zxid if children_zxid is not None else z)  # pzxid

    i32(struct.unpack(">i", b"ZKSN")[0])
    i32(2)
    i64(-1)
    i32(0)  # sessions
    i32(1)  # ACL cache: 1 = world:anyone cdrwa
    i64(1)
    i32(1)
    i32(31)
    string("world")
    string("anyone")
    # Creation order: /bench, then each parent and its children.
    total_zxids = 1 + parents + n
    last = total_zxids
    node("", b"", -1, 1, last)
    node("/zookeeper", b"", -1, 0)
    node("/zookeeper/quota", b"", -1, 0)
    zxid[0] = 1
    node("/bench", b"", 1, parents, last)
    made = 0
    for p in range(parents):
        zxid[0] += 1
        kids = min(1000, n - made)
        node("/bench/p-%04d" % p, b"parent", 1, kids, zxid[0] + kids)
        for c in range(kids):
            zxid[0] += 1
            node("/bench/p-%04d/n-%04d" % (p, c), b"0123456789abcdef", 1, 0)
        made += kids
    string("/")
    i64(zlib.adler32(bytes(buf)))
    string("/")
    name = "%s/snapshot.%x" % (out_dir, zxid[0])
    with open(name, "wb") as f:
        f.write(buf)
    print(name)


main()
