//! Apache ZooKeeper's data directory, both ways, against Apache ZooKeeper 3.8 itself:
//! load it with every kind of znode and operation, stop it, `import`, start ours and
//! see the same tree (data, Stat, ACL, children) znode by znode, with the sessions
//! that were open resuming (our client and kazoo); then `export`, start ZooKeeper on
//! the result and see the same tree, and the same sessions, again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use zk_client::{Acl, Client, CreateMode, Id, Perms, SessionState, Stat};
use zk_server::apache_data::stream::Compression;
use zk_server::apache_data::{export, import, ExportOptions, ImportOptions};
use zk_server::config::{PeerRole, PeerSpec, ServerConfig};
use zk_server::replication::links::PeerFaults;
use zk_server::server::RunningServer;
use zk_server::testing::{free_port, test_config, TestingServer};
use zk_tests::apache::ApacheZk;
use zk_tests::{interop_dir, python_with_kazoo, zkcli};

/// Held by each test that runs Apache ZooKeeper: one at a time, so that JVMs, our
/// servers and kazoo do not starve each other on a small CI machine (a loaded machine
/// made handshakes time out).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One znode as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    data: Option<Vec<u8>>,
    stat: Stat,
    acl: Vec<Acl>,
    children: BTreeSet<String>,
}

/// Every znode a client (with digest auth `u:p`) can read, by path.
async fn dump(connect: &str) -> BTreeMap<String, Seen> {
    let client = Client::builder(connect)
        .auth("digest", b"u:p")
        .connect()
        .await
        .expect("connect to dump");
    let mut out = BTreeMap::new();
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let (data, stat) = client.get_data_nullable(&path).await.expect("get_data");
        let (acl, _) = client.get_acl(&path).await.expect("get_acl");
        let children: BTreeSet<String> = client
            .get_children(&path)
            .await
            .expect("get_children")
            .into_iter()
            .collect();
        for c in &children {
            stack.push(if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            });
        }
        out.insert(
            path,
            Seen {
                data,
                stat,
                acl,
                children,
            },
        );
    }
    client.close().await;
    out
}

/// ZooKeeper's `version-2` holds a transaction logged after its newest snapshot
/// (snapshots start at random points with a small snapCount).
fn log_tail_after_snapshot(version2: &Path) -> bool {
    let (snapshot, _) = newest_zxid(version2, "snapshot");
    let (_, log) = newest_zxid(version2, "log");
    let bytes = std::fs::read(log).unwrap();
    let entries = zk_server::apache_data::txnlog::parse_log(&bytes).unwrap();
    entries.last().is_some_and(|e| e.header.zxid > snapshot)
}

/// The tree ZooKeeper serves, once its newest log holds transactions after its newest
/// snapshot (writing one more znode at a time until it does, 10 at most): what
/// ZooKeeper would restore only from its log is then part of every import.
async fn dump_with_log_tail(apache: &ApacheZk) -> BTreeMap<String, Seen> {
    let version2 = apache.data_dir().join("version-2");
    for i in 0..10 {
        let seen = dump(&apache.connect_string()).await;
        // A snapshot the last transaction started is written in the background.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if log_tail_after_snapshot(&version2) {
            return seen;
        }
        let client = Client::connect(&apache.connect_string()).await.unwrap();
        client.create(&format!("/tail-extra-{i}")).await.unwrap();
        client.close().await;
    }
    panic!("ZooKeeper's newest snapshot keeps covering its whole log");
}

/// Asserts two dumps are identical, listing every difference.
fn assert_same_tree(expected: &BTreeMap<String, Seen>, got: &BTreeMap<String, Seen>, what: &str) {
    let mut diffs = Vec::new();
    for (path, want) in expected {
        match got.get(path) {
            None => diffs.push(format!("{path}: missing")),
            Some(seen) if seen != want => {
                diffs.push(format!("{path}:\n  want {want:?}\n  got  {seen:?}"))
            }
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.push(format!("{path}: unexpected"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn digest_acl() -> Vec<Acl> {
    vec![
        Acl::new(Perms::ALL, Id::new("digest", zk_server::acl::digest("u:p"))),
        Acl::new(Perms::READ, Id::anyone()),
    ]
}

/// Every kind of znode and write ZooKeeper logs, through `client` (digest auth `u:p`).
async fn load(client: &Client, connect: &str) {
    let open = Acl::open_unsafe();
    client.create("/app").data(b"v1").acl(&open).await.unwrap();
    for i in 0..6 {
        client
            .create("/app/seq-")
            .data(format!("s{i}").as_bytes())
            .acl(&open)
            .mode(CreateMode::PersistentSequential)
            .await
            .unwrap();
    }
    client
        .create("/app/null")
        .null_data()
        .acl(&open)
        .with_stat()
        .await
        .unwrap();
    client
        .create("/digest")
        .data(b"secret")
        .acl(&digest_acl())
        .await
        .unwrap();
    client
        .create("/creator")
        .data(b"mine")
        .acl(&Acl::creator_all())
        .await
        .unwrap();
    client
        .create("/container")
        .acl(&open)
        .mode(CreateMode::Container)
        .await
        .unwrap();
    client
        .create("/container/child")
        .data(b"c")
        .acl(&open)
        .await
        .unwrap();
    client
        .create("/ttl")
        .data(b"t")
        .acl(&open)
        .ttl(Duration::from_secs(3600))
        .with_stat()
        .await
        .unwrap();
    client
        .create("/ttl-seq-")
        .data(b"ts")
        .acl(&open)
        .ttl(Duration::from_secs(7200))
        .sequential()
        .with_stat()
        .await
        .unwrap();
    client
        .create("/app/eph-")
        .data(b"e")
        .acl(&open)
        .mode(CreateMode::EphemeralSequential)
        .await
        .unwrap();
    // A multi that commits, and one that fails (logged as error transactions).
    client
        .transaction()
        .create("/multi", b"m", &open, CreateMode::Persistent)
        .set_data("/app", b"v2", Some(0))
        .delete("/app/seq-0000000001", None)
        .check("/multi", 0)
        .commit()
        .await
        .unwrap();
    let failed = client
        .transaction()
        .create("/never", b"n", &open, CreateMode::Persistent)
        .check("/app", 99)
        .commit()
        .await;
    assert!(failed.is_err(), "the multi with a wrong version must fail");
    for v in 3..6 {
        client
            .set_data("/app", format!("v{v}").as_bytes(), None)
            .await
            .unwrap();
    }
    client
        .set_acl("/app/null", &Acl::read_unsafe(), Some(0))
        .await
        .unwrap();
    client.delete("/app/seq-0000000002", None).await.unwrap();
    // A quota through zkCli.sh, as operators set them.
    let zkcli = zkcli();
    let server = connect.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(zkcli)
            .args(["-server", &server, "setquota", "-n", "10", "/app"])
            .output()
            .expect("zkCli.sh")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "setquota failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A session that ends with ephemerals: its closeSession deletes them.
    let gone = Client::connect(connect).await.unwrap();
    gone.create("/gone")
        .data(b"g")
        .acl(&open)
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    gone.close().await;
    // The last few writes, after ZooKeeper's last snapshot (snapCount=10 snapshots
    // every 5 to 10 transactions): only its log has them.
    for i in 0..3 {
        client
            .create(&format!("/tail-{i}"))
            .data(b"t")
            .acl(&open)
            .await
            .unwrap();
    }
    client.set_data("/tail-0", b"t2", None).await.unwrap();
    client.delete("/tail-1", None).await.unwrap();
}

/// kazoo holding a session open across the cut-overs.
struct KeptKazoo {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl KeptKazoo {
    fn start(hosts: &str) -> KeptKazoo {
        let mut child = Command::new(python_with_kazoo())
            .arg(interop_dir().join("kazoo_kept_session.py"))
            .arg(hosts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("session 0x"), "kazoo said {line:?}");
        KeptKazoo {
            child,
            stdin,
            stdout,
        }
    }

    /// Asks the script to check its session; returns its answer.
    async fn check(&mut self) -> String {
        writeln!(self.stdin, "check").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        tokio::task::block_in_place(|| self.stdout.read_line(&mut line)).unwrap();
        line.trim().to_string()
    }
}

impl Drop for KeptKazoo {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (30 s at most) until `client` is connected to `server`, then checks that
/// its session still owns `ephemeral`.
async fn assert_session_resumed(client: &Client, session: i64, server: &str, ephemeral: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let on = client.connected_server();
        if client.state() == SessionState::Connected && on.as_deref() == Some(server) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "our client did not resume on {server}: state {:?}, on {on:?}",
            client.state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        client.session_id(),
        session,
        "a new session, not the old one"
    );
    let stat = client
        .exists(ephemeral)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{ephemeral} vanished"));
    assert_eq!(stat.ephemeral_owner, session);
}

fn zoo_extra(compression: &str) -> String {
    format!("snapCount=10\npreAllocSize=64\nsnapshot.compression.method={compression}\n")
}

/// The whole way there and back, against Apache ZooKeeper 3.8 (standalone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apache_data_round_trip_keeps_every_znode_and_session() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let apache_port = free_port().unwrap();
    let ours_port = free_port().unwrap();
    let back_port = free_port().unwrap();
    let apache_addr = format!("127.0.0.1:{apache_port}");
    let ours_addr = format!("127.0.0.1:{ours_port}");
    let back_addr = format!("127.0.0.1:{back_port}");
    let all = format!("{apache_addr},{ours_addr},{back_addr}");

    let mut apache = ApacheZk::start_on(None, Some(apache_port), &zoo_extra("snappy")).await;
    // The sessions kept open through both cut-overs: ours (the loader) and kazoo's.
    let kept = Client::builder(&all)
        .session_timeout(Duration::from_secs(30))
        .auth("digest", b"u:p")
        .connect()
        .await
        .unwrap();
    assert_eq!(
        kept.connected_server().as_deref(),
        Some(apache_addr.as_str())
    );
    let session = kept.session_id();
    load(&kept, &apache_addr).await;
    kept.create("/kept-ours")
        .data(b"k")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut kazoo = KeptKazoo::start(&all);
    let on_apache = dump_with_log_tail(&apache).await;
    for path in [
        "/kept-kazoo",
        "/kept-ours",
        "/tail-2",
        "/ttl",
        "/container/child",
        "/creator",
        "/zookeeper/quota/app/zookeeper_limits",
    ] {
        assert!(on_apache.contains_key(path), "{path} missing on ZooKeeper");
    }
    assert!(!on_apache.contains_key("/gone") && !on_apache.contains_key("/never"));
    let apache_data = apache.data_dir().to_path_buf();
    let snappy = std::fs::read_dir(apache_data.join("version-2"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".snappy"));
    assert!(snappy, "ZooKeeper wrote no snappy snapshot");
    apache.stop();

    // Import, start ours where the clients will look.
    let ours_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(ours_dir.path());
    config.client_addr = ours_addr.parse().unwrap();
    let report = import(&ImportOptions {
        data_dir: apache_data.clone(),
        data_log_dir: None,
        accept_torn_tail: false,
        config: config.clone(),
    })
    .unwrap();
    assert!(
        report.transactions > 0,
        "nothing came from the log after the snapshot: {report:?}"
    );
    let mut ours = TestingServer::start_with(config.clone()).await.unwrap();
    let on_ours = dump(&ours_addr).await;
    assert_same_tree(&on_apache, &on_ours, "ours after import");

    assert_session_resumed(&kept, session, &ours_addr, "/kept-ours").await;
    assert_eq!(kazoo.check().await, "check ok", "kazoo on ours");
    // New zxids are past every imported one.
    let (_, stat) = kept
        .create("/after-cutover")
        .data(b"a")
        .with_stat()
        .await
        .unwrap();
    assert!(
        stat.czxid > report.last_zxid,
        "zxid 0x{:x} is not past ZooKeeper's 0x{:x}",
        stat.czxid,
        report.last_zxid
    );
    let before_export = dump(&ours_addr).await;
    ours.stop().await;

    // The way back: export, start ZooKeeper on it.
    let back_dir = tempfile::tempdir().unwrap();
    let exported = export(&ExportOptions {
        config,
        data_dir: back_dir.path().to_path_buf(),
        compression: Compression::Gzip,
    })
    .unwrap();
    assert!(exported.written.to_string_lossy().ends_with(".gz"));
    let back = ApacheZk::start_on(Some(back_dir.path()), Some(back_port), &zoo_extra("gz")).await;
    let on_back = dump(&back_addr).await;
    assert_same_tree(&before_export, &on_back, "ZooKeeper after export");
    assert_session_resumed(&kept, session, &back_addr, "/kept-ours").await;
    assert_eq!(kazoo.check().await, "check ok", "kazoo back on ZooKeeper");
    drop(back);
}

/// What Java's own `ZooKeeperServer.generatePasswd` gives, compared with ours.
#[test]
fn session_passwords_match_zookeepers_own() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("Passwd.java");
    std::fs::write(
        &src,
        r#"
import java.lang.reflect.Method;
public class Passwd {
  public static void main(String[] args) throws Exception {
    Class<?> c = Class.forName("org.apache.zookeeper.server.ZooKeeperServer");
    Object zks = c.getConstructor().newInstance();
    Method m = c.getDeclaredMethod("generatePasswd", long.class);
    m.setAccessible(true);
    for (String a : args) {
      long id = Long.parseLong(a);
      StringBuilder sb = new StringBuilder(a + " ");
      for (byte b : (byte[]) m.invoke(zks, id)) sb.append(String.format("%02x", b));
      System.out.println(sb);
    }
  }
}
"#,
    )
    .unwrap();
    let cp = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar";
    let javac = Command::new("javac")
        .args(["-cp", cp, "-d"])
        .arg(dir.path())
        .arg(&src)
        .output()
        .expect("javac (Java 17 JDK)");
    assert!(
        javac.status.success(),
        "{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let ids: Vec<i64> = vec![
        0,
        1,
        -1,
        i64::MIN,
        i64::MAX,
        0x0100_0000_0000_0001,
        0x0300_0191_5bc3_0000,
        0x7f12_3456_789a_bcde,
    ];
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{cp}:{}", dir.path().display()))
        .arg("Passwd")
        .args(ids.iter().map(|i| i.to_string()))
        .output()
        .expect("java");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ids.len(), "java printed {text}");
    for (id, line) in ids.iter().zip(lines) {
        let ours: String = zk_server::apache_data::java_random::session_password(*id)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(line, format!("{id} {ours}"));
    }
}

/// Imports ZooKeeper's data and checks our server serves the same tree.
async fn import_and_compare(apache: &mut ApacheZk) -> zk_server::apache_data::ImportReport {
    let on_apache = dump(&apache.connect_string()).await;
    apache.stop();
    let ours_dir = tempfile::tempdir().unwrap();
    let config = test_config(ours_dir.path());
    let report = import(&ImportOptions {
        data_dir: apache.data_dir().to_path_buf(),
        data_log_dir: None,
        accept_torn_tail: false,
        config: config.clone(),
    })
    .unwrap();
    let ours = TestingServer::start_with(config).await.unwrap();
    let on_ours = dump(&ours.connect_string()).await;
    assert_same_tree(&on_apache, &on_ours, "ours after import");
    report
}

/// Plain and gzip snapshots (snappy is in the round trip), and logs in a dataLogDir
/// of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_gzip_snapshots_and_a_separate_data_log_dir_import() {
    let _serial = ONE_AT_A_TIME.lock().await;
    for compression in ["checked", "gz"] {
        let mut apache = ApacheZk::start_configured(&zoo_extra(compression)).await;
        let client = Client::builder(&apache.connect_string())
            .auth("digest", b"u:p")
            .connect()
            .await
            .unwrap();
        load(&client, &apache.connect_string()).await;
        client.close().await;
        let report = import_and_compare(&mut apache).await;
        let name = report.snapshot.unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name.ends_with(".gz"),
            compression == "gz",
            "read {name} for {compression}"
        );
    }
    let logs = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}dataLogDir={}\n",
        zoo_extra("checked"),
        logs.path().display()
    );
    let mut apache = ApacheZk::start_configured(&extra).await;
    let client = Client::builder(&apache.connect_string())
        .auth("digest", b"u:p")
        .connect()
        .await
        .unwrap();
    load(&client, &apache.connect_string()).await;
    client.close().await;
    let on_apache = dump(&apache.connect_string()).await;
    apache.stop();
    let ours_dir = tempfile::tempdir().unwrap();
    let config = test_config(ours_dir.path());
    let report = import(&ImportOptions {
        data_dir: apache.data_dir().to_path_buf(),
        data_log_dir: Some(logs.path().to_path_buf()),
        accept_torn_tail: false,
        config: config.clone(),
    })
    .unwrap();
    assert!(
        !report.logs.is_empty() && report.logs.iter().all(|l| l.starts_with(logs.path())),
        "the logs must come from the dataLogDir: {:?}",
        report.logs
    );
    let ours = TestingServer::start_with(config).await.unwrap();
    assert_same_tree(
        &on_apache,
        &dump(&ours.connect_string()).await,
        "dataLogDir",
    );
    assert!(Path::new(&report.written).exists());
}

/// The newest `prefix.*` file of ZooKeeper's `version-2`.
fn newest(version2: &Path, prefix: &str) -> std::path::PathBuf {
    newest_zxid(version2, prefix).1
}

/// The newest `prefix.*` file of ZooKeeper's `version-2`, and its zxid.
fn newest_zxid(version2: &Path, prefix: &str) -> (i64, std::path::PathBuf) {
    let mut files: Vec<(i64, std::path::PathBuf)> = std::fs::read_dir(version2)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            zk_server::apache_data::zxid_of_name(&name, prefix).map(|z| (z, e.path()))
        })
        .collect();
    files.sort();
    files.pop().unwrap()
}

/// A copy of `from` (a flat directory tree of files) at `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Imports `apache` (a copy) damaged by `damage` into a fresh directory: the error
/// must name `file_of(copy)` and say `what`, and nothing may be left behind.
fn assert_refused(apache: &Path, damage: impl FnOnce(&Path) -> std::path::PathBuf, what: &str) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(apache, copy.path());
    let damaged = damage(&copy.path().join("version-2"));
    let ours = tempfile::tempdir().unwrap();
    let err = import(&ImportOptions {
        data_dir: copy.path().to_path_buf(),
        data_log_dir: None,
        accept_torn_tail: false,
        config: test_config(ours.path()),
    })
    .expect_err("a damaged import must fail")
    .to_string();
    assert!(
        err.contains(&damaged.display().to_string()) && err.contains(what),
        "the error should name {} and say {what:?}: {err}",
        damaged.display()
    );
    let left: Vec<_> = std::fs::read_dir(ours.path())
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed import left {left:?}");
}

/// Damaged ZooKeeper data — a flipped byte in a snapshot or a log, a log cut short —
/// and a destination that already holds data: each refused with the file's name,
/// nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_and_a_full_destination_are_refused_naming_the_file() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut apache = ApacheZk::start_configured(&zoo_extra("checked")).await;
    let client = Client::builder(&apache.connect_string())
        .auth("digest", b"u:p")
        .connect()
        .await
        .unwrap();
    load(&client, &apache.connect_string()).await;
    client.close().await;
    dump_with_log_tail(&apache).await;
    apache.stop();
    let data = apache.data_dir().to_path_buf();

    assert_refused(
        &data,
        |v2| {
            let snap = newest(v2, "snapshot");
            let mut bytes = std::fs::read(&snap).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
            std::fs::write(&snap, bytes).unwrap();
            snap
        },
        "checksum mismatch",
    );
    // A newest snapshot cut short (ZooKeeper stopped while writing it): passed over
    // for the one before it, as ZooKeeper does, and the logs bring the same state.
    let read = |dir: &Path| {
        let ours = tempfile::tempdir().unwrap();
        zk_server::apache_data::import::read_apache(&ImportOptions {
            data_dir: dir.to_path_buf(),
            data_log_dir: None,
            accept_torn_tail: false,
            config: test_config(ours.path()),
        })
    };
    let (whole, newest_used, _, _) = read(&data).unwrap();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&data, copy.path());
    let v2 = copy.path().join("version-2");
    let newest_snapshot = newest(&v2, "snapshot");
    let bytes = std::fs::read(&newest_snapshot).unwrap();
    std::fs::write(&newest_snapshot, &bytes[..bytes.len() / 2]).unwrap();
    let (fallback, used, _, _) = read(copy.path()).unwrap();
    assert_ne!(
        used.as_ref().and_then(|p| p.file_name()),
        newest_used.as_ref().and_then(|p| p.file_name())
    );
    assert_eq!(fallback, whole, "the previous snapshot and the logs differ");
    // With no complete snapshot before it, that is an error naming it.
    for (_, path) in std::fs::read_dir(&v2)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name(), e.path()))
        .filter(|(n, p)| n.to_string_lossy().starts_with("snapshot.") && *p != newest_snapshot)
    {
        std::fs::remove_file(path).unwrap();
    }
    let err = read(copy.path())
        .expect_err("no complete snapshot")
        .to_string();
    assert!(
        err.contains(&newest_snapshot.display().to_string()) && err.contains("cut short"),
        "{err}"
    );
    // The log records end with 'B' before the preallocated zeros: cut the last one
    // short of it.
    let end_of_records = |bytes: &[u8]| bytes.iter().rposition(|b| *b != 0).unwrap();
    assert_refused(
        &data,
        |v2| {
            let log = newest(v2, "log");
            let bytes = std::fs::read(&log).unwrap();
            let end = end_of_records(&bytes);
            assert_eq!(bytes[end], b'B');
            std::fs::write(&log, &bytes[..end - 5]).unwrap();
            log
        },
        "cut short",
    );
    // As ZooKeeper drops a torn last record when it starts, the import can be told
    // to: everything before the cut comes in.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&data, copy.path());
    let log = newest(&copy.path().join("version-2"), "log");
    let bytes = std::fs::read(&log).unwrap();
    std::fs::write(&log, &bytes[..end_of_records(&bytes) - 5]).unwrap();
    let whole = tempfile::tempdir().unwrap();
    let cut = tempfile::tempdir().unwrap();
    let count = |dir: &Path, data_dir: &Path, accept_torn_tail| {
        import(&ImportOptions {
            data_dir: data_dir.to_path_buf(),
            data_log_dir: None,
            accept_torn_tail,
            config: test_config(dir),
        })
        .map(|r| r.transactions)
    };
    let all = count(whole.path(), &data, false).unwrap();
    assert_eq!(count(cut.path(), copy.path(), true).unwrap(), all - 1);
    assert_refused(
        &data,
        |v2| {
            let log = newest(v2, "log");
            let mut bytes = std::fs::read(&log).unwrap();
            let end = end_of_records(&bytes);
            bytes[end - 3] ^= 0x40;
            std::fs::write(&log, bytes).unwrap();
            log
        },
        "checksum mismatch",
    );
    // A destination with data of ours already.
    let ours = tempfile::tempdir().unwrap();
    let options = ImportOptions {
        data_dir: data.clone(),
        data_log_dir: None,
        accept_torn_tail: false,
        config: test_config(ours.path()),
    };
    let first = import(&options).unwrap();
    let before = std::fs::read(&first.written).unwrap();
    let err = import(&options)
        .expect_err("a second import must fail")
        .to_string();
    assert!(
        err.contains("already holds data") && err.contains(&first.written.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&first.written).unwrap(), before);
    // And ZooKeeper's side of an export.
    let err = export(&ExportOptions {
        config: test_config(ours.path()),
        data_dir: data.clone(),
        compression: Compression::None,
    })
    .expect_err("an export over ZooKeeper's data must fail")
    .to_string();
    assert!(err.contains("already holds data"), "{err}");
}

/// The cut-over of an ensemble: the same ZooKeeper data imported on each of our three
/// members (each with the ensemble's zoo.cfg), which then elect a leader and serve the
/// same tree, and a session opened on ZooKeeper resumes on any of them.
/// A member's (id, client port, peer port).
type MemberPorts = (u64, u16, u16);

/// Three members' peer lines and (id, client port, peer port), on free loopback ports
/// (not bound yet: a bound port that does not answer would stall a client's connect).
fn three_members() -> (BTreeMap<u64, PeerSpec>, Vec<MemberPorts>) {
    let mut peers = BTreeMap::new();
    let mut ports = Vec::new();
    for id in 1..=3u64 {
        let (client, peer) = (free_port().unwrap(), free_port().unwrap());
        peers.insert(
            id,
            PeerSpec {
                host: "127.0.0.1".into(),
                peer_port: peer,
                election_port: peer,
                role: PeerRole::Participant,
                client_addr: Some(format!("127.0.0.1:{client}").parse().unwrap()),
            },
        );
        ports.push((id, client, peer));
    }
    (peers, ports)
}

/// Imports the Apache data directory `from` on each of the members `ports` names (under
/// `root`) and starts them; their servers and configurations.
async fn start_imported(
    root: &Path,
    from: &Path,
    peers: &BTreeMap<u64, PeerSpec>,
    ports: &[MemberPorts],
) -> (Vec<RunningServer>, Vec<ServerConfig>) {
    let mut members = Vec::new();
    let mut configs = Vec::new();
    for (id, client_port, peer_port) in ports {
        let mut config = test_config(&root.join(format!("member-{id}")));
        config.peers = peers.clone();
        config.my_id = Some(*id);
        config.client_addr = format!("127.0.0.1:{client_port}").parse().unwrap();
        import(&ImportOptions {
            data_dir: from.to_path_buf(),
            data_log_dir: None,
            accept_torn_tail: false,
            config: config.clone(),
        })
        .unwrap();
        let client = tokio::net::TcpListener::bind(config.client_addr)
            .await
            .unwrap();
        let peer = tokio::net::TcpListener::bind(("127.0.0.1", *peer_port))
            .await
            .unwrap();
        members.push(
            RunningServer::start_member(config.clone(), client, peer, PeerFaults::default())
                .await
                .unwrap(),
        );
        configs.push(config);
    }
    (members, configs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ensemble_of_ours_starts_on_imported_data_on_every_member() {
    let _serial = ONE_AT_A_TIME.lock().await;

    let mut apache = ApacheZk::start_configured(&zoo_extra("checked")).await;
    // Three members' ports, known before ZooKeeper stops, for the kept session (not
    // bound yet: a bound port that does not answer would stall the client's connect).
    let (peers, ports) = three_members();
    let ours: Vec<String> = ports
        .iter()
        .map(|(_, c, _)| format!("127.0.0.1:{c}"))
        .collect();
    let all = format!("{},{}", apache.connect_string(), ours.join(","));
    let kept = Client::builder(&all)
        .session_timeout(Duration::from_secs(30))
        .auth("digest", b"u:p")
        .connect()
        .await
        .unwrap();
    let session = kept.session_id();
    load(&kept, &apache.connect_string()).await;
    kept.create("/kept-ours")
        .data(b"k")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut on_apache = dump(&apache.connect_string()).await;
    apache.stop();

    let root = tempfile::tempdir().unwrap();
    let (members, _) = start_imported(root.path(), apache.data_dir(), &peers, &ports).await;
    // Each member publishes its own ensemble in /zookeeper/config.
    on_apache.remove("/zookeeper/config");
    for addr in &ours {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = loop {
            let attempt = tokio::time::timeout(Duration::from_secs(10), dump(addr)).await;
            match attempt {
                Ok(seen) => break seen,
                Err(_) => assert!(Instant::now() < deadline, "{addr} never served"),
            }
        };
        seen.remove("/zookeeper/config");
        assert_same_tree(&on_apache, &seen, &format!("member at {addr}"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(kept.state() == SessionState::Connected
        && kept.connected_server().is_some_and(|s| ours.contains(&s)))
    {
        assert!(Instant::now() < deadline, "the kept session did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kept.session_id(), session);
    let stat = kept.exists("/kept-ours").await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, session);
    // Writes commit on the ensemble, past ZooKeeper's zxids.
    let (_, stat) = kept.create("/after").data(b"a").with_stat().await.unwrap();
    let apache_max = on_apache
        .values()
        .map(|s| s.stat.mzxid.max(s.stat.pzxid))
        .max()
        .unwrap();
    assert!(stat.czxid > apache_max);
    for m in members {
        m.shutdown().await;
    }
}

/// A 3-member Apache ZooKeeper 3.8 ensemble on loopback.
struct ApacheEnsemble {
    _root: tempfile::TempDir,
    /// (client port, dataDir, process) per member, ids 1..=3.
    members: Vec<(u16, std::path::PathBuf, Option<Child>)>,
}

impl ApacheEnsemble {
    /// Starts it; with `seed`, each member's `version-2` starts as a copy of it.
    async fn start(seed: Option<&Path>, extra: &str) -> ApacheEnsemble {
        assert!(
            Path::new("/usr/share/java/zookeeper.jar").exists(),
            "Apache ZooKeeper is not installed (scripts/install-test-deps.sh)"
        );
        let root = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| {
                (
                    free_port().unwrap(),
                    free_port().unwrap(),
                    free_port().unwrap(),
                )
            })
            .collect();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, election))| {
                format!("server.{}=127.0.0.1:{peer}:{election}\n", i + 1)
            })
            .collect();
        let mut members = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let dir = root.path().join(format!("m{}", i + 1));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            if let Some(seed) = seed {
                copy_dir(seed, &data.join("version-2"));
            }
            let cfg = dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=500\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=1000\nmaxSessionTimeout=60000\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{extra}{servers}",
                    data.display()
                ),
            )
            .unwrap();
            let child = Command::new("java")
                .args([
                    "-cp",
                    "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar:/usr/share/java/snappy-java.jar",
                    "-Dzookeeper.extendedTypesEnabled=true",
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                ])
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("java");
            members.push((*client, data, Some(child)));
        }
        let ensemble = ApacheEnsemble {
            _root: root,
            members,
        };
        for (port, _, _) in &ensemble.members {
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut serving = false;
            for _ in 0..600 {
                let srvr = zk_server::testing::four_letter_word(addr, "srvr")
                    .await
                    .unwrap_or_default();
                if srvr.contains("Mode: leader") || srvr.contains("Mode: follower") {
                    serving = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(serving, "ZooKeeper member on {port} did not join a quorum");
        }
        ensemble
    }

    fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|(p, _, _)| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The leader's dataDir.
    async fn leader_data(&self) -> std::path::PathBuf {
        for (port, data, _) in &self.members {
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            let srvr = zk_server::testing::four_letter_word(addr, "srvr")
                .await
                .unwrap_or_default();
            if srvr.contains("Mode: leader") {
                return data.clone();
            }
        }
        panic!("no ZooKeeper member leads");
    }

    fn stop(&mut self) {
        for (_, _, child) in &mut self.members {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for ApacheEnsemble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// From a 3-member ZooKeeper ensemble to three of ours and back: the leader's data
/// imported on each of ours, then ours exported and copied to each ZooKeeper member.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zookeeper_ensemble_moves_to_ours_and_back() {
    let _serial = ONE_AT_A_TIME.lock().await;

    let mut apache = ApacheEnsemble::start(None, "snapCount=10\npreAllocSize=64\n").await;
    let client = Client::builder(&apache.connect_string())
        .auth("digest", b"u:p")
        .connect()
        .await
        .unwrap();
    let first = client.connected_server().unwrap();
    load(&client, &first).await;
    client.close().await;
    let mut on_apache = dump(&apache.connect_string()).await;
    on_apache.remove("/zookeeper/config");
    assert!(
        on_apache.len() > 20 && on_apache.contains_key("/ttl"),
        "{:?}",
        on_apache.keys()
    );
    let leader = apache.leader_data().await;
    apache.stop();

    let (peers, ports) = three_members();
    let root = tempfile::tempdir().unwrap();
    let (members, configs) = start_imported(root.path(), &leader, &peers, &ports).await;
    let ours: String = ports
        .iter()
        .map(|(_, c, _)| format!("127.0.0.1:{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut on_ours = loop {
        match tokio::time::timeout(Duration::from_secs(10), dump(&ours)).await {
            Ok(seen) => break seen,
            Err(_) => assert!(Instant::now() < deadline, "our ensemble never served"),
        }
    };
    on_ours.remove("/zookeeper/config");
    assert_same_tree(&on_apache, &on_ours, "our ensemble after import");
    for m in members {
        m.shutdown().await;
    }

    // Back: one member's export, copied to every ZooKeeper member.
    let out = tempfile::tempdir().unwrap();
    export(&ExportOptions {
        config: configs[0].clone(),
        data_dir: out.path().to_path_buf(),
        compression: Compression::None,
    })
    .unwrap();
    let back = ApacheEnsemble::start(Some(&out.path().join("version-2")), "").await;
    let mut on_back = dump(&back.connect_string()).await;
    on_back.remove("/zookeeper/config");
    assert_same_tree(&on_ours, &on_back, "ZooKeeper's ensemble after export");
}
