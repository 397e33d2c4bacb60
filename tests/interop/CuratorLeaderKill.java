// Apache Curator 5.4 writing through a leader change of the ensemble behind its one
// server, driven by tests/tests/peer_clients_leader_kill.rs.
//
// Usage (classpath: zk_tests::java::CURATOR_JARS):
//
//   java CuratorLeaderKill HOST:PORT PARENT SECONDS TAG
//
// Connects to that one server (10 s session; no retry policy, so a request that
// fails is reported as failed instead of being sent again by Curator's retry loop),
// records every ConnectionState its listener is told (CONNECTED, SUSPENDED, LOST,
// RECONNECTED, READ_ONLY; the first connect included) and every session event the
// ZooKeeper handle itself delivers (SyncConnected, Disconnected, Expired, ...), and
// counts the ZooKeeper handles Curator makes. Then, for SECONDS, creates sequential
// nodes PARENT/n- one after another, each with the unique payload TAG-<i>. PARENT
// must exist. Times are milliseconds since the Unix epoch.
//
// Lines, in the order things happen:
//   READY <t> <session id>
//   STATE <t> <ConnectionState>
//   EVENT <t> <KeeperState>
//   ACK <start> <end> <payload> <path>
//   FAIL <start> <end> <payload> <error>
// then, before the client is closed:
//   STATES <every ConnectionState seen, comma-separated>
//   EVENTS <every KeeperState seen, comma-separated>
//   HANDLES <ZooKeeper handles made>
//   SESSION <session id at the start> <session id at the end>
//   ACKED <n>
//   FAILED <n>

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.utils.ZookeeperFactory;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

public class CuratorLeaderKill {
    private static final List<String> STATES = new ArrayList<>();
    private static final List<String> EVENTS = new ArrayList<>();
    private static final AtomicInteger HANDLES = new AtomicInteger();

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static synchronized void seen(List<String> list, String what, String tag) {
        list.add(what);
        say(tag + " " + System.currentTimeMillis() + " " + what);
    }

    private static synchronized String joined(List<String> list) {
        return String.join(",", list);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: CuratorLeaderKill HOST:PORT PARENT SECONDS TAG");
            System.exit(2);
        }
        String host = args[0];
        String parent = args[1];
        long seconds = Long.parseLong(args[2]);
        String tag = args[3];

        // Every handle's session events, before Curator sees them.
        ZookeeperFactory factory = new ZookeeperFactory() {
            @Override
            public ZooKeeper newZooKeeper(String connect, int timeout, Watcher watcher,
                    boolean canBeReadOnly) throws Exception {
                HANDLES.incrementAndGet();
                Watcher spy = event -> {
                    if (event.getType() == Watcher.Event.EventType.None) {
                        seen(EVENTS, event.getState().name(), "EVENT");
                    }
                    watcher.process(event);
                };
                return new ZooKeeper(connect, timeout, spy, canBeReadOnly);
            }
        };
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(host)
            .sessionTimeoutMs(10_000)
            .connectionTimeoutMs(15_000)
            .retryPolicy(new RetryNTimes(0, 0))
            .zookeeperFactory(factory)
            .build();
        client.getConnectionStateListenable()
            .addListener((c, state) -> seen(STATES, state.name(), "STATE"));
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            System.err.println("curator-leader-kill: ERROR not connected within 30 s");
            System.exit(1);
        }
        long session = client.getZookeeperClient().getZooKeeper().getSessionId();
        say("READY " + System.currentTimeMillis() + " 0x" + Long.toHexString(session));

        int acked = 0;
        int failed = 0;
        long until = System.currentTimeMillis() + seconds * 1000;
        for (int i = 1; System.currentTimeMillis() < until; i++) {
            String payload = tag + "-" + i;
            long start = System.currentTimeMillis();
            try {
                String path = client.create()
                    .withMode(CreateMode.PERSISTENT_SEQUENTIAL)
                    .forPath(parent + "/n-", payload.getBytes(StandardCharsets.UTF_8));
                acked++;
                say("ACK " + start + " " + System.currentTimeMillis() + " " + payload + " " + path);
            } catch (Exception e) {
                failed++;
                say("FAIL " + start + " " + System.currentTimeMillis() + " " + payload + " "
                    + e.getClass().getSimpleName());
                Thread.sleep(50);
            }
        }

        long sessionNow = client.getZookeeperClient().getZooKeeper().getSessionId();
        say("STATES " + joined(STATES));
        say("EVENTS " + joined(EVENTS));
        say("HANDLES " + HANDLES.get());
        say("SESSION 0x" + Long.toHexString(session) + " 0x" + Long.toHexString(sessionNow));
        say("ACKED " + acked);
        say("FAILED " + failed);
        client.close();
    }
}
