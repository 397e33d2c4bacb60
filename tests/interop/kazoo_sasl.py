"""Drives a ZooKeeper server's SASL (DIGEST-MD5, a JAAS Server section with users
jaasuser/jaas_password and super/super_secret) with Python's kazoo and prints one
"outcome NAME VALUE" line per step, so the same run against Apache ZooKeeper 3.8 and
against ours can be compared line by line.

Usage: python3 kazoo_sasl.py HOST:PORT MODE
MODE: "acl" (a sasl: ACL, an unauthenticated reader, a wrong password, the legacy
auth_data form, the super user) or "enforce" (enforce.auth with schemes sasl).
Needs pure-sasl (pip install pure-sasl==0.6.2).
"""
import sys
import time
import warnings

import puresasl  # noqa: F401  (fail loudly when missing)
from kazoo.client import KazooClient
from kazoo.security import make_acl

warnings.simplefilter("ignore", DeprecationWarning)
hosts, mode = sys.argv[1:3]


def outcome(name, value):
    print("outcome %s %s" % (name, value), flush=True)


def client(user=None, password=None, **kw):
    """A client as kazoo's own test harness makes them (default retries)."""
    if user is None:
        return KazooClient(hosts=hosts, timeout=10, **kw)
    return KazooClient(hosts=hosts, timeout=10,
                       sasl_options={"mechanism": "DIGEST-MD5", "username": user,
                                     "password": password}, **kw)


def settled_state(c):
    """The client's state once a failed SASL exchange has been noticed (kazoo reports
    CONNECTED as soon as the session is made, before SASL ends): 5 s at most."""
    for _ in range(50):
        if c.state != "CONNECTED":
            break
        time.sleep(0.1)
    return "%s connected=%s" % (c.state, c.connected)


def attempt(name, fn):
    try:
        value = fn()
        outcome(name, "ok" if value is None else value)
    except Exception as e:  # the exception's type is the outcome
        outcome(name, type(e).__name__)


if mode == "acl":
    authed = client("jaasuser", "jaas_password")
    authed.start(timeout=15)
    acl = make_acl("sasl", credential="jaasuser", all=True)
    attempt("authed_create", lambda: authed.create("/sasl-node", b"secret", acl=(acl,)))
    attempt("authed_get", lambda: authed.get("/sasl-node")[0].decode())
    attempt("authed_acl", lambda: ",".join("%s:%s" % (a.id.scheme, a.id.id)
                                           for a in authed.get_acls("/sasl-node")[0]))

    plain = client()
    plain.start(timeout=15)
    attempt("unauth_get", lambda: plain.get("/sasl-node"))
    attempt("unauth_create_sasl_acl", lambda: plain.create("/sasl-other", b"", acl=(acl,)))

    wrong = client("jaasuser", "wrong_password")
    attempt("wrong_password_start", lambda: wrong.start(timeout=15))
    outcome("wrong_password_state", settled_state(wrong))
    try:
        wrong.stop()
    except Exception:
        pass

    unknown = client("nobody", "pw")
    attempt("unknown_user_start", lambda: unknown.start(timeout=15))
    outcome("unknown_user_state", settled_state(unknown))
    try:
        unknown.stop()
    except Exception:
        pass

    legacy = KazooClient(hosts=hosts, timeout=10, auth_data=[("sasl", "jaasuser:jaas_password")])
    attempt("legacy_start", lambda: legacy.start(timeout=15))
    attempt("legacy_get", lambda: legacy.get("/sasl-node")[0].decode())

    su = client("super", "super_secret")
    su.start(timeout=15)
    attempt("super_get", lambda: su.get("/sasl-node")[0].decode())

    attempt("authed_delete", lambda: authed.delete("/sasl-node"))
    attempt("super_delete_other", lambda: su.delete("/sasl-other"))
    for c in (authed, plain, legacy, su):
        c.stop()
elif mode == "enforce":
    authed = client("jaasuser", "jaas_password")
    attempt("authed_start", lambda: authed.start(timeout=15))
    attempt("authed_create", lambda: authed.create("/enforced", b"v"))
    attempt("authed_get", lambda: authed.get("/enforced")[0].decode())
    plain = client()
    attempt("unauth_start", lambda: plain.start(timeout=15))
    attempt("unauth_get", lambda: plain.get("/enforced"))
    wrong = client("jaasuser", "wrong_password")
    attempt("wrong_password_start", lambda: wrong.start(timeout=15))
    outcome("wrong_password_state", settled_state(wrong))
    attempt("authed_delete", lambda: authed.delete("/enforced"))
    authed.stop()
    for c in (plain, wrong):
        try:
            c.stop()
        except Exception:
            pass
print("kazoo-sasl: done", flush=True)
