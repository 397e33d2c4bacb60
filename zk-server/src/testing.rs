//! In-process servers for tests — this project's and its users' — in the spirit of
//! Curator's `TestingServer` and `TestingCluster`: free loopback ports, temporary data
//! directories, and control over each server's life (and, in a cluster, over which
//! members can reach each other).
//!
//! ```no_run
//! # async fn demo() {
//! let mut server = zk_server::testing::TestingServer::start().await.unwrap();
//! let connect = server.connect_string(); // "127.0.0.1:<port>"
//! // ... point a client at `connect` ...
//! server.stop().await;
//! # }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;

use crate::config::{FourLetterWhitelist, PeerRole, PeerSpec, ServerConfig};
use crate::core::ServerCore;
use crate::replication::transport::PeerFaults;
use crate::role::Role;
use crate::server::{RunningServer, StartError};

/// A standalone server on a free port with its data in a temporary directory (removed
/// when the `TestingServer` is dropped).
pub struct TestingServer {
    server: Option<RunningServer>,
    config: ServerConfig,
    addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

/// Errors of the testing harness.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    /// The temporary directory or port could not be had.
    #[error("testing server setup: {0}")]
    Setup(#[from] std::io::Error),
    /// The server did not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Settings for tests: fast ticks, every four-letter word, TTL nodes allowed, quick
/// container checks.
pub fn test_config(data_dir: &Path) -> ServerConfig {
    ServerConfig {
        tick_time_ms: 500,
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        data_dir: data_dir.to_path_buf(),
        client_addr: "127.0.0.1:0".parse().expect("literal address"),
        four_letter_whitelist: FourLetterWhitelist::All,
        extended_types_enabled: true,
        container_check_interval_ms: 200,
        max_client_cnxns: 0,
        // Many servers share a test machine: no admin port unless a test asks.
        admin_enabled: false,
        ..ServerConfig::default()
    }
}

impl TestingServer {
    /// Starts a server with [`test_config`] in a new temporary directory.
    pub async fn start() -> Result<TestingServer, TestingError> {
        let dir = tempfile::tempdir()?;
        let config = test_config(dir.path());
        let mut server = TestingServer::start_with(config).await?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// Starts a server with `config` (its `client_addr`, and its `secure_client_addr`
    /// if any, may use port 0).
    pub async fn start_with(config: ServerConfig) -> Result<TestingServer, TestingError> {
        let listener = TcpListener::bind(config.client_addr).await?;
        let addr = listener.local_addr()?;
        let mut config = config;
        config.client_addr = addr;
        let server = RunningServer::start_with_listener(config.clone(), listener).await?;
        // A restart comes back on the same secure port.
        config.secure_client_addr = server.secure_addr();
        Ok(TestingServer {
            server: Some(server),
            config,
            addr,
            _dir: None,
        })
    }

    /// `host:port` for clients.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The client port's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The secure client port's address, when the config names one.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.config.secure_client_addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The running server, if it is running.
    pub fn server(&self) -> Option<&RunningServer> {
        self.server.as_ref()
    }

    /// Expires a session now, as if its client had gone silent.
    pub fn expire_session(&self, session_id: i64) {
        if let Some(s) = &self.server {
            s.expire_session(session_id);
        }
    }

    /// Stops the server (its data stays until the `TestingServer` is dropped).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts the server again on the same port and data.
    pub async fn restart(&mut self) -> Result<(), TestingError> {
        self.stop().await;
        let listener = bind_retrying(self.addr).await?;
        let server = RunningServer::start_with_listener(self.config.clone(), listener).await?;
        self.server = Some(server);
        Ok(())
    }
}

/// An ensemble of in-process members on free loopback ports, each with its data in a
/// temporary directory, in the spirit of Curator's `TestingCluster`: stop and restart
/// any member, cut any member off from its peers and heal it.
///
/// ```no_run
/// # async fn demo() {
/// let mut cluster = zk_server::testing::TestingCluster::start(3).await.unwrap();
/// let connect = cluster.connect_string(); // "127.0.0.1:a,127.0.0.1:b,127.0.0.1:c"
/// let leader = cluster.wait_for_leader(std::time::Duration::from_secs(10)).await.unwrap();
/// cluster.stop(leader).await; // the others elect a new leader
/// cluster.restart(leader).await.unwrap(); // it rejoins from its own data
/// # }
/// ```
pub struct TestingCluster {
    members: Vec<ClusterMember>,
    faults: PeerFaults,
    _dir: tempfile::TempDir,
}

/// One member of a [`TestingCluster`].
struct ClusterMember {
    id: u64,
    config: ServerConfig,
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    server: Option<RunningServer>,
}

impl TestingCluster {
    /// Starts `voters` voting members (ids 1..=voters).
    pub async fn start(voters: usize) -> Result<TestingCluster, TestingError> {
        TestingCluster::start_with(voters, 0).await
    }

    /// Starts `voters` voting members and `observers` observers (ids after the voters).
    pub async fn start_with(
        voters: usize,
        observers: usize,
    ) -> Result<TestingCluster, TestingError> {
        TestingCluster::start_configured(voters, observers, |_| {}).await
    }

    /// Like [`TestingCluster::start_with`], with each member's [`test_config`] passed
    /// through `adjust` first (snapCount, read-only mode, ...).
    pub async fn start_configured(
        voters: usize,
        observers: usize,
        adjust: impl Fn(&mut ServerConfig),
    ) -> Result<TestingCluster, TestingError> {
        TestingCluster::start_each(voters, observers, |_, config| adjust(config)).await
    }

    /// Like [`TestingCluster::start_configured`], `adjust` also given each member's
    /// id (a member of its own: its TLS certificate, say).
    pub async fn start_each(
        voters: usize,
        observers: usize,
        adjust: impl Fn(u64, &mut ServerConfig),
    ) -> Result<TestingCluster, TestingError> {
        let dir = tempfile::tempdir()?;
        let mut listeners = Vec::new();
        let mut peers = std::collections::BTreeMap::new();
        for i in 0..voters + observers {
            let id = i as u64 + 1;
            let client = TcpListener::bind("127.0.0.1:0").await?;
            let peer = TcpListener::bind("127.0.0.1:0").await?;
            let peer_addr = peer.local_addr()?;
            peers.insert(
                id,
                PeerSpec {
                    host: peer_addr.ip().to_string(),
                    peer_port: peer_addr.port(),
                    // Unused (one port carries all peer traffic), but zoo.cfg has one.
                    election_port: peer_addr.port(),
                    role: if i < voters {
                        PeerRole::Participant
                    } else {
                        PeerRole::Observer
                    },
                    client_addr: Some(client.local_addr()?),
                },
            );
            listeners.push((id, client, peer));
        }
        let faults = PeerFaults::default();
        let mut members = Vec::new();
        for (id, client, peer) in listeners {
            let data_dir = dir.path().join(format!("member-{id}"));
            std::fs::create_dir_all(&data_dir)?;
            let mut config = test_config(&data_dir);
            adjust(id, &mut config);
            config.peers = peers.clone();
            config.my_id = Some(id);
            config.client_addr = client.local_addr()?;
            let client_addr = config.client_addr;
            let peer_addr = peer.local_addr()?;
            let server =
                RunningServer::start_member(config.clone(), client, peer, faults.clone()).await?;
            members.push(ClusterMember {
                id,
                config,
                client_addr,
                peer_addr,
                server: Some(server),
            });
        }
        Ok(TestingCluster {
            members,
            faults,
            _dir: dir,
        })
    }

    /// Starts one more member (the next id) whose zoo.cfg lists the ensemble and
    /// itself, as a server about to be added with reconfig is started; it joins once a
    /// reconfig adds it. Returns its id and its `server.N` line for that reconfig.
    pub async fn add_member(&mut self, observer: bool) -> Result<(u64, String), TestingError> {
        let id = self.members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
        let client = TcpListener::bind("127.0.0.1:0").await?;
        let peer = TcpListener::bind("127.0.0.1:0").await?;
        let (client_addr, peer_addr) = (client.local_addr()?, peer.local_addr()?);
        let spec = PeerSpec {
            host: peer_addr.ip().to_string(),
            peer_port: peer_addr.port(),
            election_port: peer_addr.port(),
            role: if observer {
                PeerRole::Observer
            } else {
                PeerRole::Participant
            },
            client_addr: Some(client_addr),
        };
        let line = spec.to_line(id);
        let Some(first) = self.members.first() else {
            return Err(TestingError::Setup(std::io::Error::other("empty cluster")));
        };
        let mut config = first.config.clone();
        config.peers.insert(id, spec);
        config.my_id = Some(id);
        config.client_addr = client_addr;
        config.data_dir = self._dir.path().join(format!("member-{id}"));
        std::fs::create_dir_all(&config.data_dir)?;
        let server =
            RunningServer::start_member(config.clone(), client, peer, self.faults.clone()).await?;
        self.members.push(ClusterMember {
            id,
            config,
            client_addr,
            peer_addr,
            server: Some(server),
        });
        Ok((id, line))
    }

    /// Every member's client address, comma-separated, for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The member ids.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    fn member(&self, id: u64) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.id == id)
    }

    fn member_mut(&mut self, id: u64) -> Option<&mut ClusterMember> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// A member's client address.
    pub fn client_addr(&self, id: u64) -> Option<SocketAddr> {
        self.member(id).map(|m| m.client_addr)
    }

    /// A running member.
    pub fn server(&self, id: u64) -> Option<&RunningServer> {
        self.member(id)?.server.as_ref()
    }

    /// A running member's shared state.
    pub fn core(&self, id: u64) -> Option<&std::sync::Arc<ServerCore>> {
        self.member(id)?.server.as_ref().map(RunningServer::core)
    }

    /// Whether a member is running.
    pub fn is_running(&self, id: u64) -> bool {
        self.member(id).is_some_and(|m| m.server.is_some())
    }

    /// The running member that leads now with a quorum behind it, if any.
    pub fn leader(&self) -> Option<u64> {
        self.members.iter().find_map(|m| {
            let server = m.server.as_ref()?;
            (server.core().role() == Role::Leader).then_some(m.id)
        })
    }

    /// Waits until a running member leads and every running member that is not cut
    /// off follows it; returns the leader's id.
    pub async fn wait_for_leader(&self, within: std::time::Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(leader) = self.leader() {
                let all_follow = self.members.iter().all(|m| {
                    let Some(server) = m.server.as_ref() else {
                        return true;
                    };
                    self.faults.blocked(m.id, leader)
                        || server.core().quorum().leader == Some(leader)
                });
                if all_follow {
                    return Some(leader);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The digest of a running member's tree ([`crate::tree::DataTree::digest`]) and
    /// the zxid it has applied.
    pub fn digest(&self, id: u64) -> Option<(u64, i64)> {
        let core = self.core(id)?;
        let db = core.db();
        Some((db.tree().digest(), db.last_zxid()))
    }

    /// Stops a member (its data stays).
    pub async fn stop(&mut self, id: u64) {
        if let Some(server) = self.member_mut(id).and_then(|m| m.server.take()) {
            server.shutdown().await;
        }
    }

    /// Kills a member: no task of it is waited for (see [`RunningServer::kill`]).
    pub async fn kill(&mut self, id: u64) {
        if let Some(server) = self.member_mut(id).and_then(|m| m.server.take()) {
            server.kill().await;
        }
    }

    /// Starts a stopped or killed member again on its ports and data.
    pub async fn restart(&mut self, id: u64) -> Result<(), TestingError> {
        self.stop(id).await;
        let faults = self.faults.clone();
        let Some(member) = self.member_mut(id) else {
            return Err(TestingError::Setup(std::io::Error::other(format!(
                "no member {id}"
            ))));
        };
        let client = bind_retrying(member.client_addr).await?;
        let peer = bind_retrying(member.peer_addr).await?;
        let server =
            RunningServer::start_member(member.config.clone(), client, peer, faults).await?;
        member.server = Some(server);
        Ok(())
    }

    /// Cuts a member off from every peer (its clients can still reach it).
    pub fn isolate(&self, id: u64) {
        self.faults.isolate(id);
    }

    /// Reconnects a member cut off by [`TestingCluster::isolate`].
    pub fn heal(&self, id: u64) {
        self.faults.heal(id);
    }

    /// Stops every member.
    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop(id).await;
        }
    }
}

/// A loopback port free now, for a server started later (a test that needs the port
/// before the server, as in a zoo.cfg). Taken below the kernel's ephemeral range
/// (32768 and up), where an outgoing connection's port or another `bind(0)` cannot
/// take it before the server binds it, and never twice in one process.
pub fn free_port() -> std::io::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    for _ in 0..1000 {
        let pick = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = LOW + (pick % u64::from(SPAN)) as u16;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends a four-letter word and returns the answer, or `None` if none came within two
/// seconds (a ZooKeeper still starting may take the command and never answer).
pub async fn four_letter_word(addr: SocketAddr, cmd: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(cmd.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    })
    .await
    .ok()
    .flatten()
}

/// Rebinds a port just released (the old listener may take a moment to go).
async fn bind_retrying(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}
