//! Apache ZooKeeper 3.8 (the Debian package) started as a child process on a free
//! loopback port, to run the same scenarios against it as against our server.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use zk_server::testing::four_letter_word;

/// Apache ZooKeeper 3.8 standalone on a free loopback port.
pub struct ApacheZk {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    child: Option<Child>,
    /// `-D` flags for the JVM beyond the usual ones (a JAAS file, say).
    jvm_flags: Vec<String>,
}

fn free_port() -> u16 {
    zk_server::testing::free_port().expect("a free loopback port")
}

impl ApacheZk {
    /// Starts one (tickTime 500, sessions 1..60 s, every four-letter word, TTL nodes).
    pub async fn start() -> ApacheZk {
        ApacheZk::start_configured("").await
    }

    /// Starts one with `extra` zoo.cfg lines after the usual ones (a secure client
    /// port, say: with `serverCnxnFactory=...NettyServerCnxnFactory`, which TLS needs).
    pub async fn start_configured(extra: &str) -> ApacheZk {
        ApacheZk::start_with_jvm_flags(extra, &[]).await
    }

    /// Starts one with `extra` zoo.cfg lines and `jvm_flags` (`-Dname=value`) for the
    /// JVM, as zkServer.sh takes them from SERVER_JVMFLAGS
    /// (`-Djava.security.auth.login.config=…`).
    pub async fn start_with_jvm_flags(extra: &str, jvm_flags: &[&str]) -> ApacheZk {
        ApacheZk::start_full(None, None, extra, jvm_flags).await
    }

    /// Starts one on `port` (a free one if `None`) with its dataDir at `data` (a new
    /// one in its temporary directory if `None`) and `extra` zoo.cfg lines.
    pub async fn start_on(data: Option<&Path>, port: Option<u16>, extra: &str) -> ApacheZk {
        ApacheZk::start_full(data, port, extra, &[]).await
    }

    async fn start_full(
        data: Option<&Path>,
        port: Option<u16>,
        extra: &str,
        jvm_flags: &[&str],
    ) -> ApacheZk {
        let jar = Path::new("/usr/share/java/zookeeper.jar");
        assert!(
            jar.exists(),
            "Apache ZooKeeper is not installed (apt-get install zookeeper; scripts/install-test-deps.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = port.unwrap_or_else(free_port);
        let data = data.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        std::fs::write(
            dir.path().join("zoo.cfg"),
            format!(
                "tickTime=500\nminSessionTimeout=1000\nmaxSessionTimeout=60000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{extra}",
                data.display()
            ),
        )
        .unwrap();
        let mut zk = ApacheZk {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            dir,
            data,
            child: None,
            jvm_flags: jvm_flags.iter().map(|f| f.to_string()).collect(),
        };
        zk.spawn();
        zk.wait_ready().await;
        zk
    }

    /// Starts the process (again) on the same port and data.
    pub fn spawn(&mut self) {
        let child = Command::new("java")
            .args([
                "-cp",
                // The netty jars zookeeper.jar's manifest leaves out, which its
                // NettyServerCnxnFactory (TLS) needs.
                "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/netty-transport-native-unix-common.jar:/usr/share/java/snappy-java.jar",
                "-Dzookeeper.extendedTypesEnabled=true",
            ])
            .args(&self.jvm_flags)
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(self.dir.path().join("zoo.cfg"))
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("java (install a JRE and the Debian package zookeeper)");
        self.child = Some(child);
    }

    /// Waits until it answers `ruok` (30 s at most).
    pub async fn wait_ready(&self) {
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

    /// Kills the process (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port and data.
    pub async fn restart(&mut self) {
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

impl ApacheZk {
    /// Its dataDir (`version-2/` holds the snapshots and logs).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// `host:port` for clients.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }
}
