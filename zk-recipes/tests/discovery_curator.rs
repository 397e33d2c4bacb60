//! Apache Curator 5.4's service discovery (curator-x-discovery, Debian's jars) and ours
//! on the same base path, on our server and on Apache ZooKeeper 3.8: an instance
//! Curator registers is found by our queries and our `ServiceCache` with every field
//! (its node's bytes are exactly what our serializer writes for it), and its updates
//! and unregistration reach our cache; instances we register are found by Curator's
//! `queryForInstances` with the right name, id, address, ports and payload, Curator's
//! `ServiceProvider` skips the one we registered disabled, and Curator's `ServiceCache`
//! follows our updates, registrations and unregistrations. The Java side is
//! `tests/interop/curator_discovery/CuratorDiscovery.java`, compiled with javac when
//! the test runs; a missing JDK or jar fails the test (scripts/install-test-deps.sh
//! installs them).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use zk_client::Client;
use zk_recipes::discovery::{
    CacheEvent, JsonInstanceSerializer, ServiceDiscovery, ServiceInstance, ServiceType,
};
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::java::{self, Transcript};

const WAIT: Duration = Duration::from_secs(30);
const BASE: &str = "/services";

/// What CuratorDiscovery.java needs as a classpath: Curator's discovery
/// (libcurator-discovery-java), its recipes (`zk_tests::java::CURATOR_JARS`) and Jackson.
fn classpath() -> String {
    let jars: Vec<&str> = ["curator-x-discovery"]
        .into_iter()
        .chain(java::CURATOR_JARS.iter().copied())
        .chain(["jackson-databind", "jackson-core", "jackson-annotations"])
        .collect();
    java::classpath(
        &jars,
        "Apache Curator's discovery (Debian package libcurator-discovery-java, which brings \
         the Jackson jars)",
    )
}

/// This test process's scratch directory under target/tmp.
fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| java::scratch(Path::new(env!("CARGO_TARGET_TMPDIR")), "curator-discovery"))
        .clone()
}

/// CuratorDiscovery.java compiled (once per test process): its classes' directory.
async fn classes() -> PathBuf {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        CLASSES
            .get_or_init(|| {
                let source =
                    zk_tests::interop_dir().join("curator_discovery/CuratorDiscovery.java");
                java::compile(&source, &classpath(), &scratch().join("classes"), true)
            })
            .clone()
    })
    .await
    .expect("javac")
}

/// One CuratorDiscovery process.
struct Java {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    log: Transcript,
}

impl Java {
    async fn spawn(name: &str, args: &[&str], log: &Transcript) -> Java {
        let classes = classes().await;
        let mut child = Command::new("java")
            .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{}:{}", classpath(), classes.display()))
            .arg("CuratorDiscovery")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("java not runnable ({e}): install a JDK with scripts/install-test-deps.sh")
            });
        let (tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let (who, out_log) = (name.to_string(), log.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                out_log.note(format!("{who}> {line}"));
                let _ = tx.send(line);
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let (who, err_log) = (name.to_string(), log.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                err_log.note(format!("{who}! {line}"));
            }
        });
        log.note(format!("started {name}: {}", args.join(" ")));
        Java {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            log: log.clone(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.log.note(format!("{}< {line}", self.name));
        let stdin = self.stdin.as_mut().expect("stdin open");
        let sent = async {
            stdin.write_all(format!("{line}\n").as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(e) = sent.await {
            panic!(
                "{}: cannot send {line:?} ({e}):\n{}",
                self.name,
                self.log.dump()
            );
        }
    }

    /// The rest of the next line starting with `prefix` (other lines skipped), within
    /// WAIT.
    async fn expect(&mut self, prefix: &str) -> String {
        self.expect_where(prefix, |_| true).await
    }

    /// The rest of the next line starting with `prefix` whose rest satisfies `check`.
    async fn expect_where(&mut self, prefix: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        if check(rest) {
                            return rest.to_string();
                        }
                    }
                }
                Ok(None) => panic!(
                    "{} ended before printing {prefix:?}:\n{}",
                    self.name,
                    self.log.dump()
                ),
                Err(_) => panic!(
                    "{} printed no {prefix:?} as expected within {WAIT:?}:\n{}",
                    self.name,
                    self.log.dump()
                ),
            }
        }
    }

    /// Waits for the process to exit by itself, successfully.
    async fn exits_cleanly(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit:\n{}", self.name, self.log.dump()))
            .unwrap();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            self.name,
            self.log.dump()
        );
    }
}

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect")
}

/// The cache's next event, within WAIT.
async fn next(
    changes: &mut (impl Stream<Item = CacheEvent> + Unpin),
    what: &str,
    log: &Transcript,
) -> CacheEvent {
    match tokio::time::timeout(WAIT, changes.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("{what}: our cache's stream ended:\n{}", log.dump()),
        Err(_) => panic!(
            "{what}: no event in our cache within {WAIT:?}:\n{}",
            log.dump()
        ),
    }
}

macro_rules! on_both {
    ($scenario:ident, $ours:ident, $apache:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $ours() {
            let server = TestingServer::start().await.unwrap();
            $scenario(&server.connect_string(), "ours").await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $apache() {
            let server = ApacheZk::start().await;
            $scenario(&server.connect_string(), "apache").await;
        }
    };
}

on_both!(
    curator_registers_we_find,
    curator_registrations_are_found_by_ours_on_ours,
    curator_registrations_are_found_by_ours_on_apache_zookeeper
);
on_both!(
    we_register_curator_finds,
    our_registrations_are_found_by_curator_on_ours,
    our_registrations_are_found_by_curator_on_apache_zookeeper
);

async fn curator_registers_we_find(connect: &str, on: &str) {
    let log = Transcript::new();
    let zk = client(connect).await;
    let discovery: ServiceDiscovery = ServiceDiscovery::new(&zk, BASE);
    let cache = discovery.service_cache("api");
    cache.start();
    assert!(cache.ready().await.is_empty());
    let mut changes = cache.changes();

    let args = [
        "register", connect, BASE, "api", "j1", "10.0.0.5", "8080", "8443", "a=1,b=2",
    ];
    let mut java = Java::spawn("curator-register", &args, &log).await;
    let registered = java.expect("REGISTERED j1 ").await;
    let seen_at = Instant::now();
    let added = match next(&mut changes, "Curator's registration", &log).await {
        CacheEvent::Added(instance) => instance,
        other => panic!("expected an addition, got {other:?}:\n{}", log.dump()),
    };
    println!(
        "curator discovery on {on}: Curator's registration in our cache {} µs after Curator printed it",
        seen_at.elapsed().as_micros()
    );
    assert_eq!(added.name, "api");
    assert_eq!(added.id, "j1");
    assert_eq!(added.address.as_deref(), Some("10.0.0.5"));
    assert_eq!((added.port, added.ssl_port), (Some(8080), Some(8443)));
    assert_eq!(added.payload, Some(json!({"a": "1", "b": "2"})));
    assert_eq!(added.service_type, ServiceType::Dynamic);
    assert!(added.enabled);
    let parts = added.uri_spec.as_ref().and_then(|u| u["parts"].as_array());
    assert_eq!(parts.map(Vec::len), Some(6), "{:?}", added.uri_spec);
    let age = std::time::SystemTime::now()
        .duration_since(added.registration_time)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(120), "registered {age:?} ago?");

    // Byte for byte what our serializer writes for it (with Jackson's payload class).
    let path = format!("{BASE}/api/j1");
    let (data, stat) = zk.get_data(&path).await.unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "Curator's instance is ephemeral");
    assert_eq!(String::from_utf8_lossy(&data), registered);
    let ours = JsonInstanceSerializer::new()
        .payload_class("java.util.HashMap")
        .serialize(&added)
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ours), registered);

    // Our queries.
    assert_eq!(discovery.query_for_names().await.unwrap(), ["api"]);
    assert_eq!(
        discovery.query_for_instances("api").await.unwrap(),
        std::slice::from_ref(&added)
    );
    assert_eq!(
        discovery.query_for_instance("api", "j1").await.unwrap(),
        Some(added.clone())
    );

    // Curator updates, then unregisters: our cache follows.
    java.send("update a=9").await;
    java.expect("UPDATED j1 ").await;
    match next(&mut changes, "Curator's update", &log).await {
        CacheEvent::Updated(instance) => {
            assert_eq!(instance.payload, Some(json!({"a": "9"})));
            assert_eq!(instance.registration_time, added.registration_time);
        }
        other => panic!("expected an update, got {other:?}:\n{}", log.dump()),
    }
    java.send("close").await;
    java.expect("CLOSED j1").await;
    match next(&mut changes, "Curator's unregistration", &log).await {
        CacheEvent::Removed(instance) => assert_eq!(instance.id, "j1"),
        other => panic!("expected a removal, got {other:?}:\n{}", log.dump()),
    }
    java.exits_cleanly().await;
    assert!(discovery
        .query_for_instances("api")
        .await
        .unwrap()
        .is_empty());
    cache.close().await;
}

/// The ids in a `CACHE [...]` line, with their payloads' `k`.
fn cache_line(rest: &str) -> Vec<(String, String)> {
    let instances: Vec<Value> = serde_json::from_str(rest).expect("a JSON array");
    instances
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or_default().to_string(),
                i["payload"]["k"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn we_register_curator_finds(connect: &str, on: &str) {
    let log = Transcript::new();
    let zk = client(connect).await;
    // Curator's default form (a payload without its Java class), Jackson's form
    // (`"@class"` first), and one with `enabled` written, disabled.
    let plain: ServiceDiscovery = ServiceDiscovery::new(&zk, BASE);
    let tagged: ServiceDiscovery = ServiceDiscovery::new(&zk, BASE)
        .with_serializer(JsonInstanceSerializer::new().payload_class("java.util.HashMap"));
    let full: ServiceDiscovery = ServiceDiscovery::new(&zk, BASE)
        .with_serializer(JsonInstanceSerializer::new().write_enabled(true));
    let r1 = ServiceInstance::new("api", "r1")
        .with_address("127.0.0.1")
        .with_port(9001)
        .with_payload(json!({"k": "v1"}));
    let r2 = ServiceInstance::new("api", "r2")
        .with_address("127.0.0.2")
        .with_port(9002)
        .with_ssl_port(9443)
        .with_payload(json!({"k": "v2"}));
    let r3 = ServiceInstance::new("api", "r3")
        .with_address("127.0.0.3")
        .with_port(9003)
        .with_payload(json!({"k": "v3"}))
        .with_enabled(false);
    plain.register(r1.clone()).await.unwrap();
    tagged.register(r2.clone()).await.unwrap();
    full.register(r3.clone()).await.unwrap();

    // queryForNames / queryForInstances.
    let mut query = Java::spawn("curator-query", &["query", connect, BASE, "api"], &log).await;
    assert_eq!(query.expect("NAMES ").await, "api");
    let mut found = Vec::new();
    for _ in 0..3 {
        let line = query.expect("INSTANCE ").await;
        found.push(serde_json::from_str::<Value>(&line).expect("JSON"));
    }
    assert_eq!(query.expect("END ").await, "3");
    query.exits_cleanly().await;
    let expected = [
        (&r1, "java.util.LinkedHashMap"),
        (&r2, "java.util.HashMap"),
        (&r3, "java.util.LinkedHashMap"),
    ];
    for (seen, (ours, class)) in found.iter().zip(expected) {
        let what = format!("Curator's view of {}: {seen}", ours.id);
        assert_eq!(seen["name"], "api", "{what}");
        assert_eq!(seen["id"], ours.id.as_str(), "{what}");
        assert_eq!(seen["address"], json!(ours.address), "{what}");
        assert_eq!(seen["port"], json!(ours.port), "{what}");
        assert_eq!(seen["sslPort"], json!(ours.ssl_port), "{what}");
        assert_eq!(seen["payload"], json!(ours.payload), "{what}");
        assert_eq!(seen["payloadClass"], class, "{what}");
        assert_eq!(
            seen["registrationTimeUTC"],
            json!(ours.registration_time_utc()),
            "{what}"
        );
        assert_eq!(seen["serviceType"], "DYNAMIC", "{what}");
        assert_eq!(seen["enabled"], json!(ours.enabled), "{what}");
    }

    // Curator's round-robin provider: ours, but not the disabled one.
    let mut provider = Java::spawn(
        "curator-provider",
        &["provider", connect, BASE, "api", "8"],
        &log,
    )
    .await;
    let mut picks = Vec::new();
    for _ in 0..8 {
        picks.push(provider.expect("PICK ").await);
    }
    provider.expect("END ").await;
    provider.exits_cleanly().await;
    let count = |id: &str| picks.iter().filter(|p| *p == id).count();
    assert_eq!((count("r1"), count("r2")), (4, 4), "picks {picks:?}");

    // Curator's ServiceCache follows our changes.
    let mut cache = Java::spawn("curator-cache", &["cache", connect, BASE, "api"], &log).await;
    let initial = cache.expect("CACHE ").await;
    assert_eq!(
        cache_line(&initial),
        pairs(&[("r1", "v1"), ("r2", "v2"), ("r3", "v3")])
    );
    let changed = |expected: Vec<(String, String)>| move |rest: &str| cache_line(rest) == expected;
    let started = Instant::now();
    plain
        .update(r1.clone().with_payload(json!({"k": "new"})))
        .await
        .unwrap();
    cache
        .expect_where(
            "CACHE ",
            changed(pairs(&[("r1", "new"), ("r2", "v2"), ("r3", "v3")])),
        )
        .await;
    println!(
        "curator discovery on {on}: our update in Curator's cache after {} µs",
        started.elapsed().as_micros()
    );
    let r4 = ServiceInstance::new("api", "r4").with_payload(json!({"k": "v4"}));
    let started = Instant::now();
    plain.register(r4).await.unwrap();
    cache
        .expect_where(
            "CACHE ",
            changed(pairs(&[
                ("r1", "new"),
                ("r2", "v2"),
                ("r3", "v3"),
                ("r4", "v4"),
            ])),
        )
        .await;
    println!(
        "curator discovery on {on}: our registration in Curator's cache after {} µs",
        started.elapsed().as_micros()
    );
    tagged.unregister("api", "r2").await.unwrap();
    cache
        .expect_where(
            "CACHE ",
            changed(pairs(&[("r1", "new"), ("r3", "v3"), ("r4", "v4")])),
        )
        .await;
    cache.send("close").await;
    cache.exits_cleanly().await;
    for discovery in [plain, tagged, full] {
        discovery.close().await;
    }
    assert!(ServiceDiscovery::<Value>::new(&zk, BASE)
        .query_for_instances("api")
        .await
        .unwrap()
        .is_empty());
}
