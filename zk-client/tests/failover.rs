//! Failover against a real 3-member Apache ZooKeeper 3.8 ensemble on loopback: the
//! member the client is on is killed while the client holds watches, an ephemeral and
//! requests in flight. The client must reconnect to another member within its session
//! timeout, keep its session and ephemeral, see the change made during the outage
//! through its watch, and report Expired when the session really expires.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
                    "tickTime=500\ninitLimit=20\nsyncLimit=10\nminSessionTimeout=1000\nmaxSessionTimeout=60000\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{local_sessions}{servers}",
                    dir.join("data").display()
                ),
            )
            .unwrap();
            let mut m = Member {
                client_port: *client,
                dir,
                child: None,
                read_only_mode,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_fails_over_to_another_member_and_keeps_its_session() {
    let mut ensemble = Ensemble::start(3).await;
    // The client reaches each member through a proxy, so a forced expiry can cut it off.
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
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .unwrap();
    let open = Acl::open_unsafe();
    zk.create("/f", b"0", &open, CreateMode::Persistent)
        .await
        .unwrap();
    zk.create("/f/eph", b"", &open, CreateMode::Ephemeral)
        .await
        .unwrap();
    let (read, changed) = zk.get_data_w("/f");
    read.await.unwrap();
    let session = zk.session_id();
    let host = zk.connected_server().expect("connected");
    // The member behind the proxy the client is on.
    let on = proxies
        .iter()
        .position(|p| p.addr.to_string() == host)
        .expect("on a proxy");

    // Requests in flight when the member dies: each either succeeds or fails with
    // ConnectionLoss, never anything else.
    let in_flight: Vec<_> = (0..50)
        .map(|i| zk.create(&format!("/f/n{i}"), b"", &open, CreateMode::Persistent))
        .collect();
    // Time from the kill to a session resumed on another member.
    let resumed = {
        let zk = zk.clone();
        let host = host.clone();
        let mut states = zk.state_watcher();
        let killed_at = tokio::time::Instant::now();
        tokio::spawn(async move {
            loop {
                if zk.state() == SessionState::Connected
                    && zk.connected_server().is_some_and(|h| h != host)
                {
                    return killed_at.elapsed();
                }
                let _ = tokio::time::timeout(Duration::from_millis(5), states.changed()).await;
            }
        })
    };
    ensemble.members[on].kill();
    for f in in_flight {
        match f.await {
            Ok(_) | Err(Error::ConnectionLoss) => {}
            Err(e) => panic!("in-flight request failed with {e:?}"),
        }
    }

    // A change made during the outage, through another member.
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

    let mut states = zk.state_watcher();
    let resumed_in = tokio::time::timeout(WAIT, resumed)
        .await
        .expect("reconnected to another member")
        .unwrap();
    assert!(
        resumed_in < Duration::from_secs(4),
        "took {resumed_in:?}, longer than the session timeout"
    );
    assert_eq!(zk.session_id(), session, "same session");
    assert!(
        zk.exists("/f/eph").await.unwrap().is_some(),
        "the ephemeral survived"
    );
    let event = tokio::time::timeout(WAIT, changed)
        .await
        .expect("watch fired")
        .unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged, "/f")
    );
    println!("session resumed on another member {resumed_in:?} after the kill");

    // Real expiry: cut the client off for longer than its session timeout; the
    // ensemble expires the session, and the client says so once it can reconnect.
    for p in &proxies {
        p.cut();
    }
    tokio::time::timeout(WAIT, async {
        while other.exists("/f/eph").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the ensemble expired the session");
    for p in &proxies {
        p.restore();
    }
    tokio::time::timeout(WAIT, async {
        while *states.borrow() != SessionState::Expired {
            let _ = tokio::time::timeout(Duration::from_millis(200), states.changed()).await;
        }
    })
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
    seed.create("/ro", b"v", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
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
    let refused = zk
        .create("/ro/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotReadOnly));

    // The quorum returns: the client finds a read-write member by itself.
    ensemble.members[1].spawn();
    ensemble.members[2].spawn();
    let mut states = zk.state_watcher();
    tokio::time::timeout(Duration::from_secs(60), async {
        while zk.state() != SessionState::Connected {
            let _ = tokio::time::timeout(Duration::from_millis(200), states.changed()).await;
        }
    })
    .await
    .expect("moved to a read-write member");
    zk.create("/ro/w", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
}
