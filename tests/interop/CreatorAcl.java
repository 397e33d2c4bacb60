import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;

/** Curator with ZooDefs.Ids.CREATOR_ALL_ACL, with and without auth: one line a case. */
public class CreatorAcl {
    interface Case { Object run() throws Exception; }

    static void attempt(String name, Case c) {
        try {
            Object r = c.run();
            System.out.println(name + ": ok " + (r == null ? "" : r));
        } catch (Exception e) {
            System.out.println(name + ": " + e.getClass().getSimpleName());
        }
    }

    static String acls(CuratorFramework c, String path) throws Exception {
        StringBuilder out = new StringBuilder();
        for (ACL a : c.getACL().forPath(path)) {
            out.append(a.getId().getScheme()).append(':').append(a.getId().getId())
               .append(':').append(a.getPerms()).append(' ');
        }
        return out.toString().trim();
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework anon = CuratorFrameworkFactory.builder().connectString(args[0])
            .retryPolicy(new RetryOneTime(100)).build();
        CuratorFramework user = CuratorFrameworkFactory.builder().connectString(args[0])
            .retryPolicy(new RetryOneTime(100)).authorization("digest", "user:pw".getBytes()).build();
        anon.start();
        user.start();
        anon.blockUntilConnected();
        user.blockUntilConnected();
        attempt("no auth, create", () -> anon.create().withACL(ZooDefs.Ids.CREATOR_ALL_ACL).forPath("/cur-anon", "v".getBytes()));
        attempt("auth, create", () -> user.create().withACL(ZooDefs.Ids.CREATOR_ALL_ACL).forPath("/cur-user", "v".getBytes()));
        attempt("auth, its ACL", () -> acls(user, "/cur-user"));
        attempt("auth, parents", () -> user.create().creatingParentsIfNeeded().withACL(ZooDefs.Ids.CREATOR_ALL_ACL, true).forPath("/cur-p/a/b", "v".getBytes()));
        attempt("auth, parent's ACL", () -> acls(user, "/cur-p/a"));
        attempt("no auth, read", () -> new String(anon.getData().forPath("/cur-user")));
        attempt("auth, read", () -> new String(user.getData().forPath("/cur-user")));
        anon.close();
        user.close();
    }
}
