"""The `auth` ACL scheme (CREATOR_ALL_ACL) through kazoo, printing one line per case.

Usage: python3 kazoo_creator_acl.py HOST:PORT
Prints "case: outcome" lines (an outcome is "ok ..." or the exception's class name),
for the test to compare between Apache ZooKeeper and our server.
"""
import sys

from kazoo.client import KazooClient
from kazoo.security import CREATOR_ALL_ACL, make_digest_acl_credential


def client(auth=()):
    zk = KazooClient(hosts=sys.argv[1], timeout=10)
    zk.start(timeout=15)
    for credentials in auth:
        zk.add_auth("digest", credentials)
    return zk


def case(name, action):
    try:
        result = action()
        print("%s: ok %s" % (name, result if result is not None else ""))
    except Exception as e:  # the outcome is the exception's class
        print("%s: %s" % (name, type(e).__name__))


def acls(zk, path):
    return sorted("%s:%s:%d" % (a.id.scheme, a.id.id, a.perms) for a in zk.get_acls(path)[0])


anon = client()
user = client(["user:pw"])
twice = client(["user:pw", "other:pw2"])
same = client(["user:pw"])

case("no auth, create", lambda: anon.create("/ca-anon", b"v", acl=CREATOR_ALL_ACL))
case("auth, create", lambda: user.create("/ca-user", b"v", acl=CREATOR_ALL_ACL))
case("auth, its ACL", lambda: acls(user, "/ca-user"))
case("auth, missing parent", lambda: user.create("/ca-missing/x", b"v", acl=CREATOR_ALL_ACL))
case("auth, makepath", lambda: user.create("/ca-path/a/b", b"v", acl=CREATOR_ALL_ACL, makepath=True))
case("auth, makepath parent ACL", lambda: acls(user, "/ca-path/a"))
case("two identities, create", lambda: twice.create("/ca-two", b"v", acl=CREATOR_ALL_ACL))
case("two identities, its ACL", lambda: acls(twice, "/ca-two"))
case("no auth, read", lambda: anon.get("/ca-user")[0])
case("same identity, read", lambda: same.get("/ca-user")[0])
case("same identity, write", lambda: same.set("/ca-user", b"w").version)
case("no auth, setACL to auth", lambda: anon.set_acls("/ca-user", CREATOR_ALL_ACL))
case("auth, setACL to auth", lambda: twice.set_acls("/ca-two", CREATOR_ALL_ACL).aversion)
case("auth, setACL result", lambda: acls(twice, "/ca-two"))
case("ephemeral, auth", lambda: user.create("/ca-eph", b"", acl=CREATOR_ALL_ACL, ephemeral=True))
case("sequential, no auth", lambda: anon.create("/ca-seq-", b"", acl=CREATOR_ALL_ACL, sequence=True))
tx = user.transaction()
tx.create("/ca-tx", b"", acl=CREATOR_ALL_ACL)
case("auth, in a multi", lambda: [type(r).__name__ if isinstance(r, Exception) else r for r in tx.commit()])
tx = anon.transaction()
tx.create("/ca-tx-anon", b"", acl=CREATOR_ALL_ACL)
case("no auth, in a multi", lambda: [type(r).__name__ if isinstance(r, Exception) else r for r in tx.commit()])
print("digest of user:pw is", make_digest_acl_credential("user", "pw"))
for zk in (anon, user, twice, same):
    zk.stop()
