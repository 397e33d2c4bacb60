//! Failover against a real 3-member Apache ZooKeeper 3.8 ensemble on loopback: the
//! member the client is on is killed while the client holds watches, an ephemeral and
//! requests in flight. The client must reconnect to another member within its session
//! timeout, keep its session and ephemeral, see the change made during the outage
//! through its watch, and report Expired when the session really expires.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use zk_client::*;

mod common;

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    zk_server::testing::free_port().expect("a free loopback port")
}

struct Member {
    client_port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
    read_only_mode: bool,
    jvm: Vec<String>,
}

struct Ensemble {
    _root: tempfile::TempDir,
    members: Vec<Member>,
}

impl Ensemble {
    async fn start(n: usize) -> Ensemble {
        Ensemble::start_with(n, false).await
    }

    async fn start_with(n: usize, read_only_mode: bool) -> Ensemble {
        Ensemble::start_configured(n, read_only_mode, "", &[]).await
    }

    /// `extra` lines go into every zoo.cfg, `jvm` options onto every java command.
    async fn start_configured(
        n: usize,
        read_only_mode: bool,
        extra: &str,
        jvm: &[&str],
    ) -> Ensemble {
        assert!(
            Path::new("/usr/share/java/zookeeper.jar").exists(),
            "Apache ZooKeeper is not installed (scripts/install-test-deps.sh)"
        );
        let root = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
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
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data/myid"), format!("{}\n", i + 1)).unwrap();
            // A read-only member makes only local sessions (ZooKeeper 3.8).
            let local_sessions = if read_only_mode {
                "localSessionsEnabled=true\n"
            } else {
                ""
            };
            std::fs::write(
                dir.join("zoo.cfg"),
                format!(
                    "tickTime=500\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=1000\nmaxSessionTimeout=60000\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{local_sessions}{extra}{servers}",
                    dir.join("data").display()
                ),
            )
            .unwrap();
            let mut m = Member {
                client_port: *client,
                dir,
                child: None,
                read_only_mode,
                jvm: jvm.iter().map(|a| a.to_string()).collect(),
            };
            m.spawn();
            members.push(m);
        }
        let ensemble = Ensemble {
            _root: root,
            members,
        };
        for m in &ensemble.members {
            m.wait_serving().await;
        }
        ensemble
    }

    fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Member {
    fn spawn(&mut self) {
        let mut command = Command::new("java");
        if self.read_only_mode {
            command.arg("-Dreadonlymode.enabled=true");
        }
        command.args(&self.jvm);
        let child = command
            .args([
                "-cp",
                "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(self.dir.join("zoo.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java");
        self.child = Some(child);
    }

    /// A four-letter word's answer, or empty if none came within two seconds (a member
    /// still starting may take the command and never answer).
    async fn word(&self, cmd: &str) -> String {
        let addr = format!("127.0.0.1:{}", self.client_port)
            .parse()
            .expect("address");
        zk_server::testing::four_letter_word(addr, cmd)
            .await
            .unwrap_or_default()
    }

    /// Until the member answers `srvr` with a quorum mode.
    async fn wait_serving(&self) {
        for _ in 0..600 {
            let out = self.word("srvr").await;
            if out.contains("Mode: leader") || out.contains("Mode: follower") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("member on port {} did not join a quorum", self.client_port);
    }

    /// The member's answer to `isro` ("ro", "rw", or nothing).
    async fn isro(&self) -> String {
        self.word("isro").await
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}

/// Waits until `zk` is in state `want`.
async fn until_state(zk: &Client, want: SessionState) {
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, async {
        while zk.state() != want {
            let _ = tokio::time::timeout(Duration::from_millis(20), states.next()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not {want:?} within {WAIT:?}: {:?}", zk.state()));
}

/// The member the client is on dies while requests are provably in flight (their
/// answers held back by the proxy) and while no other member is reachable, so the
/// client really is disconnected during the outage. A change is made meanwhile
/// through another member; once the members are reachable again the client resumes
/// its session elsewhere and its watches catch up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_to_another_member_and_keeps_its_session() {
    const SESSION: Duration = Duration::from_secs(8);
    let mut ensemble = Ensemble::start(3).await;
    // The client reaches each member through a proxy: the test can hold answers back,
    // make members unreachable, and cut the client off to force an expiry.
    let mut proxies = Vec::new();
    for m in &ensemble.members {
        proxies.push(common::Proxy::start(format!("127.0.0.1:{}", m.client_port)).await);
    }
    let connect: String = proxies
        .iter()
        .map(|p| p.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let zk = Client::builder(&connect)
        .session_timeout(SESSION)
        .connect()
        .await
        .unwrap();
    let open = Acl::open_unsafe();
    zk.create("/f").data(b"0").acl(&open).await.unwrap();
    zk.create("/f/eph")
        .acl(&open)
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (read, data_changed) = zk.get_data_and_watch("/f");
    read.await.unwrap();
    let (read, children_changed) = zk.get_children_and_watch("/f");
    read.await.unwrap();
    let (read, created) = zk.exists_and_watch("/f/during");
    assert_eq!(read.await.unwrap(), None);
    let mut recursive = zk
        .add_watch("/f", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let session = zk.session_id();
    let host = zk.connected_server().expect("connected");
    // The member behind the proxy the client is on.
    let on = proxies
        .iter()
        .position(|p| p.addr.to_string() == host)
        .expect("on a proxy");

    // Requests provably in flight: the proxy holds their answers back, so none can
    // complete; they reached the member (its answers arrive at the proxy).
    proxies[on].mute();
    let in_flight: Vec<_> = (0..50)
        .map(|i| zk.create(&format!("/f/n{i}")).acl(&open).send())
        .collect();
    tokio::time::timeout(WAIT, async {
        while proxies[on].swallowed() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the member answered (answers held by the proxy)");
    // No other member reachable: the client cannot reconnect at once.
    for (i, p) in proxies.iter().enumerate() {
        if i != on {
            p.cut();
        }
    }
    ensemble.members[on].kill();
    proxies[on].cut();
    let killed_at = tokio::time::Instant::now();
    until_state(&zk, SessionState::Disconnected).await;
    let mut lost = 0;
    for f in in_flight {
        match f.await {
            Err(Error::ConnectionLoss) => lost += 1,
            other => panic!("an in-flight request ended with {other:?}, not ConnectionLoss"),
        }
    }
    assert_eq!(
        lost, 50,
        "every request in flight failed with ConnectionLoss"
    );

    // A change made during the outage, directly through a live member.
    let other_host = ensemble
        .members
        .iter()
        .find(|m| m.child.is_some())
        .map(|m| format!("127.0.0.1:{}", m.client_port))
        .unwrap();
    let other = Client::connect(&other_host).await.unwrap();
    other
        .set_data("/f", b"changed-during-outage", None)
        .await
        .unwrap();
    other.create("/f/during").acl(&open).await.unwrap();
    assert_eq!(
        zk.state(),
        SessionState::Disconnected,
        "the change was made while the client was disconnected"
    );
    for (i, p) in proxies.iter().enumerate() {
        if i != on {
            p.restore();
        }
    }

    until_state(&zk, SessionState::Connected).await;
    let resumed_in = killed_at.elapsed();
    assert_ne!(zk.connected_server(), Some(host), "on another member");
    assert_eq!(zk.session_id(), session, "same session");
    assert!(
        resumed_in < SESSION,
        "took {resumed_in:?}, longer than the session timeout"
    );
    assert!(
        zk.exists("/f/eph").await.unwrap().is_some(),
        "the ephemeral survived"
    );
    // The one-shot watches catch up (setWatches2 with the last zxid the client saw).
    let event = tokio::time::timeout(WAIT, data_changed)
        .await
        .expect("data watch fired")
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/f")
    );
    let event = tokio::time::timeout(WAIT, children_changed)
        .await
        .expect("child watch fired")
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeChildrenChanged, "/f")
    );
    let event = tokio::time::timeout(WAIT, created)
        .await
        .expect("exists watch fired")
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeCreated, "/f/during")
    );
    // The persistent-recursive watch was set again on the new member. ZooKeeper sets
    // persistent watches again without catching up (DataTree.setWatches adds them; only
    // one-shot watches are judged by relativeZxid), so it reports what comes next.
    other.set_data("/f/during", b"after", None).await.unwrap();
    let event = tokio::time::timeout(WAIT, async {
        loop {
            let e = recursive.next().await.expect("the stream goes on");
            if e.path == "/f/during" && e.event_type == EventType::NodeDataChanged {
                return e;
            }
        }
    })
    .await
    .expect("the persistent-recursive watch survived the failover");
    assert_eq!(event.state, KeeperState::SyncConnected);
    // The in-flight creates were never sent again: each exists at most once.
    let children = zk.get_children("/f").await.unwrap();
    assert!(children.len() <= 52, "{children:?}");
    println!("session resumed on another member {resumed_in:?} after the kill");

    // Real expiry: cut the client off for longer than its session timeout; the
    // ensemble expires the session, and the client says so once it can reconnect.
    let mut states = zk.state_changes();
    for p in &proxies {
        p.cut();
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while other.exists("/f/eph").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the ensemble expired the session");
    for p in &proxies {
        p.restore();
    }
    tokio::time::timeout(WAIT, states.wait_for(|s| s == SessionState::Expired))
        .await
        .expect("Expired reported");
    assert_eq!(
        other.exists("/f/eph").await.unwrap(),
        None,
        "its ephemeral is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_reads_through_a_lost_quorum_and_moves_back_to_read_write() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut ensemble = Ensemble::start_with(3, true).await;
    let connect = ensemble.connect_string();
    let seed = Client::connect(&connect).await.unwrap();
    seed.create("/ro").data(b"v").await.unwrap();
    seed.close().await;
    // Lose the quorum: the remaining member turns read-only.
    ensemble.members[1].kill();
    ensemble.members[2].kill();
    tokio::time::timeout(WAIT, async {
        while ensemble.members[0].isro().await != "ro" {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the last member went read-only");

    let zk = Client::builder(&connect)
        .read_only(true)
        .connect()
        .await
        .unwrap();
    assert_eq!(zk.state(), SessionState::ConnectedReadOnly);
    assert_eq!(zk.get_data("/ro").await.unwrap().0, b"v");
    let refused = zk.create("/ro/w").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotReadOnly));

    // The quorum returns: the client finds a read-write member by itself.
    ensemble.members[1].spawn();
    ensemble.members[2].spawn();
    let mut states = zk.state_changes();
    tokio::time::timeout(Duration::from_secs(60), async {
        while zk.state() != SessionState::Connected {
            let _ = tokio::time::timeout(Duration::from_millis(200), states.next()).await;
        }
    })
    .await
    .expect("moved to a read-write member");
    zk.create("/ro/w").await.unwrap();
}

/// A reconfiguration through the client API on a real Apache ensemble
/// (reconfigEnabled, ACLs skipped): a follower leaves, and the configuration the client
/// reads no longer lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_removes_a_member_of_an_apache_ensemble() {
    let ensemble = Ensemble::start_configured(
        3,
        false,
        "reconfigEnabled=true\n",
        &["-Dzookeeper.skipACL=yes"],
    )
    .await;
    // On member 1; a follower other than member 1 leaves (a leaving member drops its
    // clients, and a leaving leader hands over).
    let zk = Client::connect(&format!("127.0.0.1:{}", ensemble.members[0].client_port))
        .await
        .unwrap();
    let mut leaving = None;
    for (i, m) in ensemble.members.iter().enumerate().skip(1) {
        if m.word("srvr").await.contains("Mode: follower") {
            leaving = Some(i + 1);
            break;
        }
    }
    let leaving = leaving.expect("a follower besides member 1");
    let (before, _) = zk.get_config().await.unwrap();
    let before = String::from_utf8(before).unwrap();
    assert!(before.contains(&format!("server.{leaving}=")), "{before}");
    let (after, _) = zk
        .reconfig(None, Some(&leaving.to_string()), None, None)
        .await
        .unwrap();
    let after = String::from_utf8(after).unwrap();
    assert!(!after.contains(&format!("server.{leaving}=")), "{after}");
    assert!(after.contains("server.1="), "{after}");
    zk.sync("/").await.unwrap();
    let (read, _) = zk.get_config().await.unwrap();
    assert_eq!(String::from_utf8(read).unwrap(), after);
}
