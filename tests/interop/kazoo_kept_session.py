"""A kazoo session kept open across a cut-over between servers.

Usage: kazoo_kept_session.py HOSTS. Connects (30 s session), creates the ephemeral
/kept-kazoo, prints "session 0x<id>". Then for each "check" line on stdin: waits
(at most 30 s) until connected, and prints "check ok" if the session is the same,
was never lost, and still owns /kept-kazoo; "check bad ..." otherwise. "quit" ends.
"""

import logging
import sys
import time

from kazoo.client import KazooClient, KazooState

# kazoo warns of every refused connection while the servers change: not news here.
logging.basicConfig(level=logging.ERROR)
hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=30)
states = []
zk.add_listener(lambda s: states.append(s))
zk.start(timeout=30)
zk.create("/kept-kazoo", b"k", ephemeral=True)
sid = zk.client_id[0]
print("session 0x%x" % sid, flush=True)

for line in sys.stdin:
    cmd = line.strip()
    if cmd == "quit":
        break
    deadline = time.time() + 30
    last = None
    while time.time() < deadline:
        try:
            if zk.state == KazooState.CONNECTED:
                last = zk.exists("/kept-kazoo")
                break
        except Exception as e:  # connection loss while it moves: try again
            last = e
        time.sleep(0.1)
    ok = (
        zk.state == KazooState.CONNECTED
        and zk.client_id[0] == sid
        and KazooState.LOST not in states
        and last is not None
        and not isinstance(last, Exception)
        and last.ephemeralOwner == sid
    )
    if ok:
        print("check ok", flush=True)
    else:
        print(
            "check bad state=%s session=0x%x stat=%r states=%r"
            % (zk.state, zk.client_id[0], last, states),
            flush=True,
        )

zk.stop()
zk.close()
