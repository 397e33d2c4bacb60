// Apache Curator 5.4's service discovery (curator-x-discovery, Debian package
// libcurator-discovery-java), driven by the Rust test zk-recipes/tests/discovery_curator.rs
// so that it and zk-recipes' discovery read each other's registrations.
//
// The payload is a Map<String, String> (Jackson writes it with its class:
// {"@class":"java.util.HashMap",...}); PAYLOAD arguments are `k=v,k2=v2` (`-` for none).
// Every instance printed is one line of JSON: name, id, address, port, sslPort, payload,
// payloadClass (the Java class Curator gave the payload), registrationTimeUTC,
// serviceType, enabled, uri (ServiceInstance.buildUriSpec()).
//
// Usage (classpath: the Debian jars curator-x-discovery, curator-recipes,
// curator-framework, curator-client, guava, zookeeper, zookeeper-jute, jackson-databind,
// jackson-core, jackson-annotations, slf4j-api, slf4j-simple; see the Rust test):
//
//   java CuratorDiscovery register CONNECT BASE NAME ID ADDRESS PORT SSL_PORT PAYLOAD
//     Registers the instance (SSL_PORT `-` for none; uriSpec
//     `{scheme}://{address}:{port}/x`) with a ServiceDiscovery on BASE, then prints
//     `REGISTERED ID JSON` where JSON is the instance node's data as stored. Then
//     obeys stdin lines:
//       update PAYLOAD  updateService with the new payload; prints `UPDATED ID JSON`
//       close           closes the discovery (unregisters), prints `CLOSED ID`, exits 0
//                       (also on end of stdin)
//
//   java CuratorDiscovery query CONNECT BASE NAME
//     Prints `NAMES A,B,...` (queryForNames, sorted), one `INSTANCE JSON` per instance
//     of NAME (queryForInstances, sorted by id), then `END COUNT`, and exits 0.
//
//   java CuratorDiscovery cache CONNECT BASE NAME
//     Starts a ServiceCache of NAME and prints `CACHE [JSON,...]` (sorted by id) once
//     started and after every change it reports, until `close` or end of stdin.
//
//   java CuratorDiscovery provider CONNECT BASE NAME COUNT
//     A round-robin ServiceProvider of NAME: prints `PICK ID` for COUNT getInstance()
//     calls, then `END COUNT`, and exits 0.
//
// Any failure prints `curator-discovery: ERROR ...` on stderr and exits non-zero.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.details.ServiceCacheListener;

@SuppressWarnings({"rawtypes", "unchecked"})
public class CuratorDiscovery {
    private static final BufferedReader STDIN =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    private static final ObjectMapper MAPPER = new ObjectMapper();

    public static void main(String[] args) {
        try {
            if (args.length == 9 && args[0].equals("register")) {
                register(args[1], args[2], args[3], args[4], args[5], Integer.parseInt(args[6]),
                    args[7].equals("-") ? null : Integer.valueOf(args[7]), payload(args[8]));
            } else if (args.length == 4 && args[0].equals("query")) {
                query(args[1], args[2], args[3]);
            } else if (args.length == 4 && args[0].equals("cache")) {
                cache(args[1], args[2], args[3]);
            } else if (args.length == 5 && args[0].equals("provider")) {
                provider(args[1], args[2], args[3], Integer.parseInt(args[4]));
            } else {
                fail("usage: CuratorDiscovery register CONNECT BASE NAME ID ADDRESS PORT SSL_PORT"
                    + " PAYLOAD | query CONNECT BASE NAME | cache CONNECT BASE NAME"
                    + " | provider CONNECT BASE NAME COUNT", null);
            }
            System.exit(0);
        } catch (Throwable e) {
            fail(e.toString(), e);
        }
    }

    static void fail(String why, Throwable e) {
        System.err.println("curator-discovery: ERROR " + why);
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

    static Map<String, String> payload(String text) {
        if (text.equals("-")) {
            return null;
        }
        Map<String, String> map = new HashMap<>();
        for (String pair : text.split(",")) {
            int eq = pair.indexOf('=');
            map.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
        return map;
    }

    static CuratorFramework connect(String connect) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(5000)
            .connectionTimeoutMs(5000)
            .retryPolicy(new ExponentialBackoffRetry(100, 6))
            .build();
        client.start();
        if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
            fail("could not connect to " + connect, null);
        }
        return client;
    }

    static ServiceDiscovery discovery(CuratorFramework client, String base) throws Exception {
        ServiceDiscovery discovery = ServiceDiscoveryBuilder.builder(Map.class)
            .client(client)
            .basePath(base)
            .serializer(new JsonInstanceSerializer(Map.class))
            .build();
        discovery.start();
        return discovery;
    }

    static String json(ServiceInstance instance) throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", instance.getName());
        m.put("id", instance.getId());
        m.put("address", instance.getAddress());
        m.put("port", instance.getPort());
        m.put("sslPort", instance.getSslPort());
        Object payload = instance.getPayload();
        m.put("payload", payload);
        m.put("payloadClass", payload == null ? null : payload.getClass().getName());
        m.put("registrationTimeUTC", instance.getRegistrationTimeUTC());
        m.put("serviceType", instance.getServiceType().name());
        m.put("enabled", instance.isEnabled());
        m.put("uri", instance.buildUriSpec());
        return MAPPER.writeValueAsString(m);
    }

    static String node(CuratorFramework client, String base, String name, String id)
            throws Exception {
        byte[] data = client.getData().forPath(base + "/" + name + "/" + id);
        return new String(data, StandardCharsets.UTF_8);
    }

    static void register(String connect, String base, String name, String id, String address,
            int port, Integer sslPort, Map<String, String> payload) throws Exception {
        CuratorFramework client = connect(connect);
        ServiceDiscovery discovery = discovery(client, base);
        ServiceInstance instance = ServiceInstance.builder()
            .name(name)
            .id(id)
            .address(address)
            .port(port)
            .sslPort(sslPort)
            .payload(payload)
            .uriSpec(new UriSpec("{scheme}://{address}:{port}/x"))
            .build();
        discovery.registerService(instance);
        say("REGISTERED " + id + " " + node(client, base, name, id));
        for (String line; (line = STDIN.readLine()) != null; ) {
            line = line.trim();
            if (line.startsWith("update ")) {
                instance = ServiceInstance.builder()
                    .name(name)
                    .id(id)
                    .address(address)
                    .port(port)
                    .sslPort(sslPort)
                    .payload(payload(line.substring("update ".length())))
                    .registrationTimeUTC(instance.getRegistrationTimeUTC())
                    .uriSpec(instance.getUriSpec())
                    .build();
                discovery.updateService(instance);
                say("UPDATED " + id + " " + node(client, base, name, id));
            } else if (line.equals("close")) {
                break;
            } else {
                fail(id + ": unexpected command " + line, null);
            }
        }
        discovery.close();
        say("CLOSED " + id);
        client.close();
    }

    static List<ServiceInstance> sorted(Collection<ServiceInstance> instances) {
        List<ServiceInstance> list = new ArrayList<>(instances);
        list.sort(Comparator.comparing(ServiceInstance::getId));
        return list;
    }

    static void query(String connect, String base, String name) throws Exception {
        CuratorFramework client = connect(connect);
        ServiceDiscovery discovery = discovery(client, base);
        say("NAMES " + String.join(",", new TreeSet<String>(discovery.queryForNames())));
        Collection<ServiceInstance> found = discovery.queryForInstances(name);
        List<ServiceInstance> instances = sorted(found);
        for (ServiceInstance instance : instances) {
            say("INSTANCE " + json(instance));
        }
        say("END " + instances.size());
        discovery.close();
        client.close();
    }

    static void printCache(ServiceCache cache) {
        try {
            List<String> all = new ArrayList<>();
            List<ServiceInstance> instances = cache.getInstances();
            for (ServiceInstance instance : sorted(instances)) {
                all.add(json(instance));
            }
            say("CACHE [" + String.join(",", all) + "]");
        } catch (Exception e) {
            fail(e.toString(), e);
        }
    }

    static void cache(String connect, String base, String name) throws Exception {
        CuratorFramework client = connect(connect);
        ServiceDiscovery discovery = discovery(client, base);
        ServiceCache cache = discovery.serviceCacheBuilder().name(name).build();
        cache.addListener(new ServiceCacheListener() {
            @Override
            public void cacheChanged() {
                printCache(cache);
            }

            @Override
            public void stateChanged(CuratorFramework c, ConnectionState state) {
            }
        });
        cache.start();
        printCache(cache);
        for (String line; (line = STDIN.readLine()) != null; ) {
            if (line.trim().equals("close")) {
                break;
            }
        }
        cache.close();
        discovery.close();
        client.close();
    }

    static void provider(String connect, String base, String name, int count) throws Exception {
        CuratorFramework client = connect(connect);
        ServiceDiscovery discovery = discovery(client, base);
        ServiceProvider provider = discovery.serviceProviderBuilder().serviceName(name).build();
        provider.start();
        for (int i = 0; i < count; i++) {
            ServiceInstance instance = provider.getInstance();
            say("PICK " + (instance == null ? "-" : instance.getId()));
        }
        say("END " + count);
        provider.close();
        discovery.close();
        client.close();
    }
}
