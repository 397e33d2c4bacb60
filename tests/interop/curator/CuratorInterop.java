// Apache Curator 5.4's InterProcessMutex and LeaderLatch, driven by the Rust test
// zk-recipes/tests/curator_interop.rs so that they contend with zk-recipes' Lock and
// LeaderLatch on the same paths of our server.
//
// Usage (classpath: the Debian jars curator-recipes, curator-framework, curator-client,
// guava, zookeeper, zookeeper-jute, slf4j-api, slf4j-simple; see the Rust test):
//
//   java CuratorInterop lock CONNECT LOCK_PATH TURNS WITNESS_DIR WHO GATE
//     Takes the lock TURNS times. Inside, it proves exclusion through files in
//     WITNESS_DIR that the Rust holders use too: it creates `holder` with O_EXCL (it
//     exists exactly while someone is inside, so failing to create it means two
//     holders at once), reads the number in `counter`, sleeps, writes it plus one
//     (a lost update shows two holders), then deletes `holder` and releases.
//     GATE=gate: on its first turn, once inside, prints `HOLD WHO NODE` (its lock node's
//     name) and waits for a `go` line on stdin before going on.
//     Its lock nodes carry WHO as data. Prints `READY WHO` once connected and
//     `DONE WHO TURNS` at the end.
//
//   java CuratorInterop latch CONNECT LATCH_PATH ID
//     Prints `READY ID` once connected, then obeys stdin lines:
//       start   joins the election (a LeaderLatch with CloseMode.NOTIFY_LEADER); prints
//               `JOINED ID NODE` once its node is created
//       status  prints `STATUS ID true|false` (LeaderLatch.hasLeadership())
//       participants  prints `PARTICIPANTS ID A,B,...`: the participants' ids in the
//               order Curator ranks them (LeaderLatch.getParticipants(), leader first)
//       close   closes the latch, prints `CLOSED ID` and exits 0 (also on end of stdin)
//     A LeaderLatchListener prints `LEADER ID` / `NOT_LEADER ID` as leadership changes
//     (Curator calls it synchronously from setLeadership).
//
// Any failure prints `curator-interop: ERROR ...` on stderr and exits non-zero.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.utils.ZKPaths;

public class CuratorInterop {
    private static final BufferedReader STDIN =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));

    public static void main(String[] args) {
        try {
            if (args.length == 7 && args[0].equals("lock")) {
                lock(args[1], args[2], Integer.parseInt(args[3]), Paths.get(args[4]), args[5],
                    args[6].equals("gate"));
            } else if (args.length == 4 && args[0].equals("latch")) {
                latch(args[1], args[2], args[3]);
            } else {
                fail("usage: CuratorInterop lock CONNECT PATH TURNS WITNESS_DIR WHO gate|nogate"
                    + " | latch CONNECT PATH ID", null);
            }
            System.exit(0);
        } catch (Throwable e) {
            fail(e.toString(), e);
        }
    }

    static void fail(String why, Throwable e) {
        System.err.println("curator-interop: ERROR " + why);
        if (e != null) {
            e.printStackTrace();
        }
        System.err.flush();
        System.out.flush();
        Runtime.getRuntime().halt(2);
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static CuratorFramework connect(String connect, String data) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(5000)
            .connectionTimeoutMs(5000)
            .retryPolicy(new ExponentialBackoffRetry(100, 6))
            .defaultData(data.getBytes(StandardCharsets.UTF_8))
            .build();
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            fail("could not connect to " + connect, null);
        }
        return client;
    }

    static void lock(String connect, String path, int turns, Path witness, String who, boolean gate)
            throws Exception {
        // InterProcessMutex creates its nodes without data: they get the client's default.
        CuratorFramework client = connect(connect, who);
        say("READY " + who);
        InterProcessMutex mutex = new InterProcessMutex(client, path);
        Path holder = witness.resolve("holder");
        Path counter = witness.resolve("counter");
        for (int turn = 0; turn < turns; turn++) {
            if (!mutex.acquire(60, TimeUnit.SECONDS)) {
                fail(who + " waited 60 s for the lock (turn " + turn + ")", null);
            }
            try {
                Files.write(holder, who.getBytes(StandardCharsets.UTF_8),
                    StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            } catch (FileAlreadyExistsException e) {
                String other = new String(readOrEmpty(holder), StandardCharsets.UTF_8);
                say("OVERLAP " + who + " " + other);
                fail("two holders at once: " + who + " got the lock while " + other
                    + " was inside", null);
            }
            if (gate && turn == 0) {
                // The holder is first among the participants.
                List<String> nodes = new ArrayList<>(mutex.getParticipantNodes());
                say("HOLD " + who + " " + ZKPaths.getNodeFromPath(nodes.get(0)));
                String line = STDIN.readLine();
                if (!"go".equals(line)) {
                    fail("expected `go` on stdin, got " + line, null);
                }
            }
            String text = new String(Files.readAllBytes(counter), StandardCharsets.UTF_8).trim();
            long seen = Long.parseLong(text);
            Thread.sleep(3);
            Files.write(counter, Long.toString(seen + 1).getBytes(StandardCharsets.UTF_8),
                StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
            Files.delete(holder);
            mutex.release();
        }
        say("DONE " + who + " " + turns);
        client.close();
    }

    static byte[] readOrEmpty(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (Exception e) {
            return new byte[0];
        }
    }

    static void latch(String connect, String path, String id) throws Exception {
        CuratorFramework client = connect(connect, id);
        say("READY " + id);
        LeaderLatch latch = null;
        for (String line; (line = STDIN.readLine()) != null; ) {
            line = line.trim();
            if (line.equals("start") && latch == null) {
                latch = new LeaderLatch(client, path, id, LeaderLatch.CloseMode.NOTIFY_LEADER);
                latch.addListener(new LeaderLatchListener() {
                    @Override
                    public void isLeader() {
                        say("LEADER " + id);
                    }

                    @Override
                    public void notLeader() {
                        say("NOT_LEADER " + id);
                    }
                });
                latch.start();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (latch.getOurPath() == null) {
                    if (System.nanoTime() > deadline) {
                        fail(id + ": no latch node after 30 s", null);
                    }
                    Thread.sleep(5);
                }
                say("JOINED " + id + " " + ZKPaths.getNodeFromPath(latch.getOurPath()));
            } else if (line.equals("status") && latch != null) {
                say("STATUS " + id + " " + latch.hasLeadership());
            } else if (line.equals("participants") && latch != null) {
                List<String> ids = new ArrayList<>();
                for (Participant p : latch.getParticipants()) {
                    ids.add(p.getId());
                }
                say("PARTICIPANTS " + id + " " + String.join(",", ids));
            } else if (line.equals("close")) {
                break;
            } else {
                fail(id + ": unexpected command " + line, null);
            }
        }
        if (latch != null) {
            latch.close();
        }
        say("CLOSED " + id);
        client.close();
    }
}
