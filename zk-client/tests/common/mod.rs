//! The servers the client suite runs against: ours (in-process `TestingServer`) and a
//! real Apache ZooKeeper 3.8 (the Debian package, started here as a child process).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zk_server::testing::{TestingCluster, TestingServer};

pub enum Target {
    Ours(Box<TestingServer>),
    /// A 3-member ensemble of ours.
    OursEnsemble(Box<TestingCluster>),
    Apache(ApacheZk),
}

impl Target {
    pub async fn ours() -> Target {
        Target::Ours(Box::new(TestingServer::start().await.expect("our server")))
    }

    pub async fn ours_ensemble() -> Target {
        let cluster = TestingCluster::start(3).await.expect("our ensemble");
        cluster
            .wait_for_leader(Duration::from_secs(20))
            .await
            .expect("a leader");
        Target::OursEnsemble(Box::new(cluster))
    }

    pub fn is_ensemble(&self) -> bool {
        matches!(self, Target::OursEnsemble(_))
    }

    /// One server's address (a proxy goes to one member of an ensemble).
    pub fn first_addr(&self) -> String {
        match self {
            Target::OursEnsemble(c) => c.client_addr(1).expect("member 1").to_string(),
            other => other.connect_string(),
        }
    }

    pub async fn apache() -> Target {
        Target::Apache(ApacheZk::start().await)
    }

    pub fn connect_string(&self) -> String {
        match self {
            Target::Ours(s) => s.connect_string(),
            Target::OursEnsemble(c) => c.connect_string(),
            Target::Apache(z) => z.addr.to_string(),
        }
    }

    /// What the server said lately (Apache ZooKeeper's log tail), for failure messages.
    pub fn diagnostics(&self) -> String {
        match self {
            Target::Ours(_) | Target::OursEnsemble(_) => String::new(),
            Target::Apache(z) => z.log_tail(40),
        }
    }

    /// Stops the server and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        match self {
            Target::Ours(s) => s.restart().await.expect("restart"),
            Target::OursEnsemble(c) => {
                for id in c.ids() {
                    c.stop(id).await;
                }
                for id in c.ids() {
                    c.restart(id).await.expect("restart");
                }
            }
            Target::Apache(z) => z.restart().await,
        }
    }

    /// Stops the server, waits, starts it again.
    pub async fn outage(&mut self, down_for: Duration) {
        match self {
            Target::Ours(s) => {
                s.stop().await;
                tokio::time::sleep(down_for).await;
                s.restart().await.expect("restart");
            }
            Target::OursEnsemble(c) => {
                for id in c.ids() {
                    c.stop(id).await;
                }
                tokio::time::sleep(down_for).await;
                for id in c.ids() {
                    c.restart(id).await.expect("restart");
                }
            }
            Target::Apache(z) => {
                z.stop();
                tokio::time::sleep(down_for).await;
                z.spawn();
                z.wait_ready().await;
            }
        }
    }
}

/// Sends a four-letter word and returns the answer, or `None` if there was none within
/// two seconds (a ZooKeeper still starting may take the command and never answer).
pub async fn four_letter_word(addr: SocketAddr, cmd: &str) -> Option<String> {
    zk_server::testing::four_letter_word(addr, cmd).await
}

/// Apache ZooKeeper 3.8 standalone on a free loopback port.
pub struct ApacheZk {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    zk_server::testing::free_port().expect("a free loopback port")
}

impl ApacheZk {
    pub async fn start() -> ApacheZk {
        let jar = Path::new("/usr/share/java/zookeeper.jar");
        assert!(
            jar.exists(),
            "Apache ZooKeeper is not installed (apt-get install zookeeper; scripts/install-test-deps.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("zoo.cfg"),
            format!(
                "tickTime=500\nminSessionTimeout=1000\nmaxSessionTimeout=60000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut zk = ApacheZk {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            dir,
            child: None,
        };
        zk.spawn();
        zk.wait_ready().await;
        zk
    }

    fn spawn(&mut self) {
        let child = Command::new("java")
            .args([
                "-cp",
                "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar",
                "-Dzookeeper.extendedTypesEnabled=true",
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(self.dir.path().join("zoo.cfg"))
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("java (install a JRE and the Debian package zookeeper)");
        self.child = Some(child);
    }

    async fn wait_ready(&self) {
        for _ in 0..300 {
            if four_letter_word(self.addr, "ruok").await.as_deref() == Some("imok") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Apache ZooKeeper did not come up on {}", self.addr);
    }

    /// The server's log (slf4j-simple writes to stderr), appended across restarts.
    fn log_file(&self) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("zookeeper.log"))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }

    /// The last `lines` lines of the server's log, for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("zookeeper.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready().await;
    }
}

impl Drop for ApacheZk {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a scenario against our server, a 3-member ensemble of ours and Apache
/// ZooKeeper: `mod name { ours(), ours_ensemble(), apache_zookeeper() }`.
#[macro_export]
macro_rules! against_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours() {
                super::$scenario(super::common::Target::ours().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours_ensemble() {
                super::$scenario(super::common::Target::ours_ensemble().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn apache_zookeeper() {
                super::$scenario(super::common::Target::apache().await).await;
            }
        }
    };
}

/// A TCP forwarder between a client and a server that a test can cut: `cut()` drops
/// every forwarded connection and refuses new ones until `restore()`.
pub struct Proxy {
    pub addr: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let gen_tx = generation.clone();
        let is_open = open.clone();
        let is_stalled = stalled.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !is_open.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                if is_stalled.load(Ordering::SeqCst) {
                    // Accepted, then never answered nor closed: a server that hangs.
                    held.push(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            open,
            stalled,
            generation,
        }
    }

    /// Cuts the connections and holds new ones open without an answer until `resume`.
    pub fn stall(&self) {
        self.stalled
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn resume(&self) {
        self.stalled
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
