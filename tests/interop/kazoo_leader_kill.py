"""kazoo writing through a leader change of the ensemble behind its one server.

Usage: kazoo_leader_kill.py HOST:PORT PARENT SECONDS TAG

Connects to that one server (10 s session), records every state kazoo reports to
its listeners (KazooState: CONNECTED, SUSPENDED, LOST; the first connect included)
and echoes kazoo's own log (INFO and above, which names each connection attempt).
Then, for SECONDS, creates sequential nodes PARENT/n- one after another, each with
the unique payload TAG-<i>. PARENT must exist. Times are milliseconds since the
Unix epoch, so the test can set them beside the moment it killed the leader.

Lines, in the order things happen:
  READY <t> <session id>
  STATE <t> <KazooState>
  LOG <t> <level> <message>
  ACK <start> <end> <payload> <path>
  FAIL <start> <end> <payload> <error>
then, before the client is stopped (stopping is a state change of its own):
  STATES <every state seen, comma-separated>
  CONNECTS <connection attempts>
  SESSION <session id at the start> <session id at the end>
  ACKED <n>
  FAILED <n>
"""

import logging
import sys
import threading
import time

from kazoo.client import KazooClient

host, parent, seconds, tag = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
out = threading.Lock()
states = []
connects = [0]


def now_ms():
    return int(time.time() * 1000)


def say(line):
    with out:
        print(line, flush=True)


class Echo(logging.Handler):
    """kazoo's log on stdout, between the other lines; counts connection attempts."""

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Connecting to "):
            connects[0] += 1
        say("LOG %d %s %s" % (now_ms(), record.levelname, message))


kazoo_log = logging.getLogger("kazoo")
kazoo_log.setLevel(logging.INFO)
kazoo_log.addHandler(Echo(level=logging.INFO))
kazoo_log.propagate = False


def listener(state):
    states.append(str(state))
    say("STATE %d %s" % (now_ms(), state))


zk = KazooClient(hosts=host, timeout=10)
zk.add_listener(listener)
zk.start(timeout=30)
session = zk.client_id[0]
say("READY %d 0x%x" % (now_ms(), session))

acked = failed = 0
until = time.time() + seconds
i = 0
while time.time() < until:
    i += 1
    payload = "%s-%d" % (tag, i)
    start = now_ms()
    try:
        path = zk.create(parent + "/n-", payload.encode(), sequence=True)
    except Exception as e:  # every failure counts: kazoo retries nothing here
        failed += 1
        say("FAIL %d %d %s %s" % (start, now_ms(), payload, type(e).__name__))
        time.sleep(0.05)
    else:
        acked += 1
        say("ACK %d %d %s %s" % (start, now_ms(), payload, path))

say("STATES %s" % ",".join(states))
say("CONNECTS %d" % connects[0])
say("SESSION 0x%x 0x%x" % (session, zk.client_id[0]))
say("ACKED %d" % acked)
say("FAILED %d" % failed)
zk.stop()
zk.close()
