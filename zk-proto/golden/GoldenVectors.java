// Writes golden vectors for zk-proto: each record serialised by Apache ZooKeeper's own
// jute classes, as lowercase hex, one file per vector, plus constants.txt with the
// numeric value of every enum constant the protocol uses.
//
// Usage: java -cp <zookeeper.jar>:<zookeeper-jute.jar>:. GoldenVectors <out-dir>
// (see zk-proto/golden/generate.sh). The Rust test zk-proto/tests/golden.rs builds the
// same values and requires byte-identical encodings in both directions.

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.jute.BinaryInputArchive;
import org.apache.jute.BinaryOutputArchive;
import org.apache.jute.Record;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.ClientCnxn;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.MultiOperationRecord;
import org.apache.zookeeper.MultiResponse;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.proto.*;

public class GoldenVectors {
    interface Body {
        void write(BinaryOutputArchive oa) throws IOException;
    }

    static final Map<String, String> vectors = new TreeMap<>();

    static void vector(String name, Body body) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        BinaryOutputArchive oa = BinaryOutputArchive.getArchive(bos);
        body.write(oa);
        vectors.put(name, hex(bos.toByteArray()));
    }

    static void record(String name, Record r) throws IOException {
        vector(name, oa -> r.serialize(oa, "record"));
    }

    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) {
            sb.append(String.format("%02x", b));
        }
        return sb.toString();
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    // The Stat every vector uses; the Rust test builds the same one.
    static Stat stat() {
        return new Stat(0x100000002L, 0x100000007L, 1700000000123L, 1700000005456L,
                3, 2, 1, 0x1000abcdef0001L, 5, 2, 0x100000006L);
    }

    // A static int field, read by reflection so that private ones work too.
    static int staticInt(Class<?> c, String name) throws Exception {
        java.lang.reflect.Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f.getInt(null);
    }

    // The largest reply a client with default settings reads: ClientCnxnSocket.packetLen
    // of a freshly configured socket (ClientCnxnSocket.initProperties).
    static int clientPacketLen() throws Exception {
        Class<?> nio = Class.forName("org.apache.zookeeper.ClientCnxnSocketNIO");
        java.lang.reflect.Constructor<?> make = nio.getDeclaredConstructor(ZKClientConfig.class);
        make.setAccessible(true);
        Object socket = make.newInstance(new ZKClientConfig());
        java.lang.reflect.Field f = Class.forName("org.apache.zookeeper.ClientCnxnSocket")
                .getDeclaredField("packetLen");
        f.setAccessible(true);
        return f.getInt(socket);
    }

    static List<ACL> acls() {
        List<ACL> acls = new ArrayList<>(ZooDefs.Ids.OPEN_ACL_UNSAFE);
        acls.add(new ACL(ZooDefs.Perms.READ | ZooDefs.Perms.WRITE,
                new Id("digest", "bob:XC0O4A0pDUfYgjl3MyG3h8JNeHA=")));
        acls.add(new ACL(ZooDefs.Perms.ALL, new Id("ip", "10.0.0.0/8")));
        return acls;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: GoldenVectors <out-dir>");
            System.exit(2);
        }
        Path out = Paths.get(args[0]);
        Files.createDirectories(out);

        // ClientCnxn's special xids.
        int notificationXid = staticInt(ClientCnxn.class, "NOTIFICATION_XID");
        int pingXid = staticInt(ClientCnxn.class, "PING_XID");
        int authXid = staticInt(ClientCnxn.class, "AUTHPACKET_XID");
        int setWatchesXid = staticInt(ClientCnxn.class, "SET_WATCHES_XID");

        byte[] zeroPasswd = new byte[16];
        byte[] passwd = new byte[16];
        for (int i = 0; i < 16; i++) {
            passwd[i] = (byte) (0xa0 + i);
        }

        // Session establishment. ClientCnxn writes ConnectRequest then the readOnly flag;
        // old clients omit the flag, so the server must accept both.
        record("connect_request_without_readonly",
                new ConnectRequest(0, 0, 30000, 0, zeroPasswd));
        vector("connect_request_with_readonly", oa -> {
            new ConnectRequest(0, 0x100000005L, 40000, 0x1000abcdef0001L, passwd).serialize(oa, "connect");
            oa.writeBool(true, "readOnly");
        });
        vector("connect_response", oa -> {
            new ConnectResponse(0, 30000, 0x1000abcdef0001L, passwd).serialize(oa, "connect");
            oa.writeBool(false, "readOnly");
        });
        record("connect_response_without_readonly",
                new ConnectResponse(0, 0, 0, zeroPasswd));

        record("request_header", new RequestHeader(7, ZooDefs.OpCode.create));
        record("request_header_ping", new RequestHeader(pingXid, ZooDefs.OpCode.ping));
        record("request_header_auth", new RequestHeader(authXid, ZooDefs.OpCode.auth));
        record("request_header_set_watches", new RequestHeader(setWatchesXid, ZooDefs.OpCode.setWatches2));
        record("request_header_close_session", new RequestHeader(12, ZooDefs.OpCode.closeSession));
        record("reply_header", new ReplyHeader(7, 0x100000005L, 0));
        record("reply_header_error", new ReplyHeader(8, 0x100000005L, KeeperException.Code.NONODE.intValue()));
        // Replies with a special xid, as the server writes them: a notification
        // (NIOServerCnxn.process: zxid -1), a ping (FinalRequestProcessor: the last
        // processed zxid), auth (ZooKeeperServer.processPacket: zxid 0), setWatches.
        record("reply_header_watch_event", new ReplyHeader(notificationXid, -1L, 0));
        record("reply_header_ping", new ReplyHeader(pingXid, 0x100000005L, 0));
        record("reply_header_auth", new ReplyHeader(authXid, 0, 0));
        record("reply_header_auth_failed", new ReplyHeader(authXid, 0,
                KeeperException.Code.AUTHFAILED.intValue()));
        record("reply_header_set_watches", new ReplyHeader(setWatchesXid, 0x100000009L, 0));

        record("stat", stat());
        record("id", new Id("world", "anyone"));
        record("acl", new ACL(ZooDefs.Perms.ALL, new Id("world", "anyone")));
        record("error_response", new ErrorResponse(KeeperException.Code.BADVERSION.intValue()));
        record("watcher_event", new WatcherEvent(
                Watcher.Event.EventType.NodeDataChanged.getIntValue(),
                Watcher.Event.KeeperState.SyncConnected.getIntValue(), "/app/config"));

        // Node operations.
        record("create_request", new CreateRequest("/app/lock-", utf8("hello"), acls(),
                CreateMode.EPHEMERAL_SEQUENTIAL.toFlag()));
        record("create_request_null_data", new CreateRequest("/app", null,
                ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT.toFlag()));
        record("create_ttl_request", new CreateTTLRequest("/app/ttl", utf8("t"),
                ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT_WITH_TTL.toFlag(), 60000L));
        record("create_response", new CreateResponse("/app/lock-0000000007"));
        record("create2_response", new Create2Response("/app/lock-0000000007", stat()));
        record("delete_request", new DeleteRequest("/app/node", 4));
        record("exists_request", new ExistsRequest("/app/node", true));
        record("exists_response", new ExistsResponse(stat()));
        record("get_data_request", new GetDataRequest("/app/node", false));
        record("get_data_response", new GetDataResponse(utf8("hello"), stat()));
        record("get_data_response_null_data", new GetDataResponse(null, stat()));
        record("set_data_request", new SetDataRequest("/app/node", utf8("world"), -1));
        record("set_data_response", new SetDataResponse(stat()));
        record("get_acl_request", new GetACLRequest("/app/node"));
        record("get_acl_response", new GetACLResponse(acls(), stat()));
        record("set_acl_request", new SetACLRequest("/app/node", ZooDefs.Ids.READ_ACL_UNSAFE, 2));
        record("set_acl_response", new SetACLResponse(stat()));
        record("get_children_request", new GetChildrenRequest("/app", true));
        record("get_children_response", new GetChildrenResponse(Arrays.asList("a", "b", "\u00e9t\u00e9")));
        record("get_children2_request", new GetChildren2Request("/app", false));
        record("get_children2_response", new GetChildren2Response(Arrays.asList("x", "y"), stat()));
        record("sync_request", new SyncRequest("/app"));
        record("sync_response", new SyncResponse("/app"));
        record("check_version_request", new CheckVersionRequest("/app/node", 3));
        record("get_ephemerals_request", new GetEphemeralsRequest("/app"));
        record("get_ephemerals_response", new GetEphemeralsResponse(Arrays.asList("/app/e1", "/app/x/e2")));
        record("get_all_children_number_request", new GetAllChildrenNumberRequest("/app"));
        record("get_all_children_number_response", new GetAllChildrenNumberResponse(42));

        // Multi: every op kind a transaction can hold, and every result kind.
        record("multi_request", new MultiOperationRecord(Arrays.asList(
                Op.create("/m/a", utf8("a"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create("/m/c", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
                Op.create("/m/t", utf8("t"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, 5000L),
                Op.delete("/m/old", -1),
                Op.setData("/m/a", utf8("b"), 0),
                Op.check("/m", 7))));
        record("multi_read_request", new MultiOperationRecord(Arrays.asList(
                Op.getChildren("/m"),
                Op.getData("/m/a"))));
        MultiResponse ok = new MultiResponse();
        ok.add(new OpResult.CreateResult("/m/a"));
        ok.add(new OpResult.CreateResult("/m/b", stat()));
        ok.add(new OpResult.DeleteResult());
        ok.add(new OpResult.SetDataResult(stat()));
        ok.add(new OpResult.CheckResult());
        record("multi_response", ok);
        MultiResponse failed = new MultiResponse();
        failed.add(new OpResult.ErrorResult(KeeperException.Code.OK.intValue()));
        failed.add(new OpResult.ErrorResult(KeeperException.Code.BADVERSION.intValue()));
        failed.add(new OpResult.ErrorResult(KeeperException.Code.RUNTIMEINCONSISTENCY.intValue()));
        record("multi_response_failed", failed);
        MultiResponse read = new MultiResponse();
        read.add(new OpResult.GetChildrenResult(Arrays.asList("a", "b")));
        read.add(new OpResult.GetDataResult(utf8("v"), stat()));
        read.add(new OpResult.ErrorResult(KeeperException.Code.NONODE.intValue()));
        record("multi_read_response", read);
        record("multi_response_empty", new MultiResponse());

        // Watch management, auth, reconfig, whoami.
        record("set_watches", new SetWatches(0x100000009L,
                Arrays.asList("/d1", "/d2"), Arrays.asList("/e1"), Collections.emptyList()));
        record("set_watches2", new SetWatches2(0x10000000aL,
                Arrays.asList("/d"), Collections.emptyList(), Arrays.asList("/c"),
                Arrays.asList("/p"), Arrays.asList("/r1", "/r2")));
        record("check_watches_request", new CheckWatchesRequest("/app",
                Watcher.WatcherType.Data.getIntValue()));
        record("remove_watches_request", new RemoveWatchesRequest("/app",
                Watcher.WatcherType.Any.getIntValue()));
        record("add_watch_request", new AddWatchRequest("/app",
                AddWatchMode.PERSISTENT_RECURSIVE.getMode()));
        record("auth_packet", new AuthPacket(0, "digest", utf8("bob:secret")));
        record("get_sasl_request", new GetSASLRequest(utf8("client-token")));
        record("set_sasl_response", new SetSASLResponse(utf8("server-challenge")));
        // FinalRequestProcessor answers addWatch with ErrorResponse(0).
        record("add_watch_response", new ErrorResponse(KeeperException.Code.OK.intValue()));
        record("reconfig_request", new ReconfigRequest("server.4=127.0.0.1:2891:3891;2184",
                null, null, -1L));
        record("reconfig_request_members", new ReconfigRequest(null, "2,3",
                "server.1=127.0.0.1:2888:3888:participant;2181", 0x100000000L));
        record("whoami_response", new WhoAmIResponse(Arrays.asList(
                new ClientInfo("ip", "127.0.0.1"), new ClientInfo("digest", "bob"))));

        // A whole request frame laid out as ClientCnxn.Packet.createBB does it:
        // length, RequestHeader, request record.
        vector("frame_get_data", oa -> {
            ByteArrayOutputStream inner = new ByteArrayOutputStream();
            BinaryOutputArchive ia = BinaryOutputArchive.getArchive(inner);
            new RequestHeader(5, ZooDefs.OpCode.getData).serialize(ia, "header");
            new GetDataRequest("/app/node", true).serialize(ia, "request");
            byte[] body = inner.toByteArray();
            oa.writeInt(body.length, "len");
            for (byte b : body) {
                oa.writeByte(b, "b");
            }
        });

        for (Map.Entry<String, String> e : vectors.entrySet()) {
            Files.write(out.resolve(e.getKey() + ".hex"), (e.getValue() + "\n").getBytes(StandardCharsets.US_ASCII));
        }
        Files.write(out.resolve("constants.txt"), constants().getBytes(StandardCharsets.US_ASCII));
        Files.write(out.resolve("error_messages.txt"), errorMessages().getBytes(StandardCharsets.UTF_8));
    }

    // The message KeeperException gives each error code, "NAME=message", sorted.
    static String errorMessages() {
        Map<String, String> m = new TreeMap<>();
        for (KeeperException.Code code : KeeperException.Code.values()) {
            if (code == KeeperException.Code.OK) {
                continue;
            }
            try {
                m.put(code.name(), KeeperException.create(code).getMessage());
            } catch (IllegalArgumentException e) {
                // Codes the client never raises as exceptions (e.g. UNKNOWNSESSION).
                m.put(code.name(), "");
            }
        }
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> e : m.entrySet()) {
            sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        return sb.toString();
    }

    // Every numeric constant of the protocol, "Group.NAME=value", sorted.
    static String constants() throws Exception {
        Map<String, Integer> c = new TreeMap<>();
        for (java.lang.reflect.Field f : ZooDefs.OpCode.class.getFields()) {
            c.put("OpCode." + f.getName(), f.getInt(null));
        }
        for (java.lang.reflect.Field f : ZooDefs.Perms.class.getFields()) {
            c.put("Perms." + f.getName(), f.getInt(null));
        }
        for (KeeperException.Code code : KeeperException.Code.values()) {
            c.put("Code." + code.name(), code.intValue());
        }
        for (Watcher.Event.EventType t : Watcher.Event.EventType.values()) {
            c.put("EventType." + t.name(), t.getIntValue());
        }
        for (Watcher.Event.KeeperState s : Watcher.Event.KeeperState.values()) {
            c.put("KeeperState." + s.name(), s.getIntValue());
        }
        for (Watcher.WatcherType t : Watcher.WatcherType.values()) {
            c.put("WatcherType." + t.name(), t.getIntValue());
        }
        for (CreateMode m : CreateMode.values()) {
            c.put("CreateMode." + m.name(), m.toFlag());
        }
        for (AddWatchMode m : AddWatchMode.values()) {
            c.put("AddWatchMode." + m.name(), m.getMode());
        }
        for (String xid : new String[] {"NOTIFICATION_XID", "PING_XID", "AUTHPACKET_XID", "SET_WATCHES_XID"}) {
            c.put("ClientCnxn." + xid, staticInt(ClientCnxn.class, xid));
        }
        // Frame limits with default settings: the server's (jute.maxbuffer) and the
        // client's (ZKClientConfig's default, and what a client socket really uses).
        c.put("BinaryInputArchive.maxBuffer", staticInt(BinaryInputArchive.class, "maxBuffer"));
        c.put("ZKClientConfig.CLIENT_MAX_PACKET_LENGTH_DEFAULT",
                staticInt(ZKClientConfig.class, "CLIENT_MAX_PACKET_LENGTH_DEFAULT"));
        c.put("ClientCnxnSocket.packetLen", clientPacketLen());
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Integer> e : c.entrySet()) {
            sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        return sb.toString();
    }
}
