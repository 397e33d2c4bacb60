//! In-process servers for tests — this project's and its users' — in the spirit of
//! Curator's `TestingServer` and `TestingCluster`: free loopback ports, temporary data
//! directories, and control over each server's life (and, in a cluster, over which
//! members can reach each other).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = zk_server::testing::TestingServer::start().await?;
//! let connect = server.connect_string(); // "127.0.0.1:<port>"
//! let client = zk_client::Client::connect(&connect).await?;
//! client.create("/app").await?;
//! server.stop().await;
//! # Ok(()) }
//! ```
//!
//! # Faults
//!
//! What a test of an application usually needs to put its client through, all done on
//! the server side (the client under test connects directly, with its usual connect
//! string):
//!
//! | fault | standalone | ensemble | the client sees |
//! |---|---|---|---|
//! | its session expires (Curator's `KillSession`, kazoo's `expire_session`) | [`TestingServer::expire_session`] | [`TestingCluster::expire_session`] | `Disconnected`, then `Expired`; its ephemerals are gone |
//! | its connection drops | [`TestingServer::disconnect_session`] | [`TestingCluster::disconnect_session`] | `Disconnected`, then `Connected` again, same session |
//! | its server is unreachable for a while | [`TestingServer::disconnect_session_for`] | [`TestingCluster::disconnect_session_for`] | `Disconnected` for that long, then `Connected`, or `Expired` if that was longer than the session timeout |
//! | its server goes down | [`TestingServer::stop`] / [`TestingServer::restart`] | [`TestingCluster::stop`] / [`TestingCluster::restart`] / [`TestingCluster::kill`] | `Disconnected` (ensemble: it moves to another member) |
//! | a member is cut off from the others | — | [`TestingCluster::partition`] / [`TestingCluster::heal`] | a client of that member loses it and moves to another one |
//!
//! Session faults name the session by its id (the client's `session_id()`) and touch
//! only that session's connections, so other clients of the same server carry on. A
//! session's reconnects are refused by a server that closes the connection without an
//! answer, which is what a client sees of a server it cannot reach; no proxy has to be
//! put between the client and the server, and in an ensemble every member refuses them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::config::{FourLetterWhitelist, PeerRole, PeerSpec, ServerConfig};
use crate::core::ServerCore;
use crate::replication::links::PeerFaults;
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
    /// The server (or, in a cluster, every member) is stopped.
    #[error("the server is not running")]
    NotRunning,
    /// No running server knows the session (it never existed, or is closed already).
    #[error("no session 0x{0:x}")]
    NoSuchSession(i64),
    /// What was asked for did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// How long an `expire_session` waits for the close to be applied.
const EXPIRE_WITHIN: Duration = Duration::from_secs(10);

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
        // Nor 64 MiB of log padding each.
        log_preallocate_bytes: 256 * 1024,
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

    /// Expires a session now, as Curator's `KillSession` and kazoo's `expire_session`
    /// do, and returns once it is closed. It ends as a session whose client went
    /// silent does: the server marks it closing (nothing the client sends saves it any
    /// more) and closes it through its write path, so its ephemeral nodes are deleted,
    /// the watches on them fire, and its connection is dropped; the client's reconnect
    /// is then answered as expired (its state becomes `Expired`).
    ///
    /// Errors: [`TestingError::NotRunning`], [`TestingError::NoSuchSession`] if the
    /// server does not know the session, [`TestingError::Timeout`] if the close was not
    /// applied within 10 s.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use zk_client::{Client, CreateMode};
    /// let server = zk_server::testing::TestingServer::start().await?;
    /// let client = Client::connect(&server.connect_string()).await?;
    /// client.create("/worker").mode(CreateMode::Ephemeral).await?;
    /// server.expire_session(client.session_id()).await?;
    /// // The ephemeral is gone; the client's state becomes Expired.
    /// let observer = Client::connect(&server.connect_string()).await?;
    /// assert!(observer.exists("/worker").await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn expire_session(&self, session_id: i64) -> Result<(), TestingError> {
        let core = self
            .server
            .as_ref()
            .ok_or(TestingError::NotRunning)?
            .core()
            .clone();
        expire_until_closed(session_id, || (Some((0, core.clone())), vec![core.clone()])).await
    }

    /// Drops the server's connection(s) of a session, as a network failure would:
    /// the client sees `Disconnected`, reconnects at once with the same session, and
    /// sees `Connected` again; the session, its ephemerals and its watches live on.
    /// (kazoo's harness `lose_connection`; Curator tests stop and restart the whole
    /// server for it.) Returns how many connections were dropped (0 if the session has
    /// none, or the server is stopped).
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = zk_server::testing::TestingServer::start().await?;
    /// let client = zk_client::Client::connect(&server.connect_string()).await?;
    /// assert_eq!(server.disconnect_session(client.session_id()), 1);
    /// // The client is Disconnected, then Connected again with the same session.
    /// # Ok(()) }
    /// ```
    pub fn disconnect_session(&self, session_id: i64) -> usize {
        self.server
            .as_ref()
            .map_or(0, |s| s.core().disconnect_session(session_id, None))
    }

    /// Like [`TestingServer::disconnect_session`], and the server then refuses the
    /// session's reconnects for `duration`, as a server the client cannot reach:
    /// each attempt's connection is closed without an answer. Other clients are
    /// served as usual. The session's timeout runs meanwhile, as in a real outage: cut
    /// off for less than the session timeout, the client comes back `Connected` with
    /// its session; for longer, the server expires the session and the client sees
    /// `Expired` when it gets through. Returns how many connections were dropped. A
    /// restart of the server forgets the refusal.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let server = zk_server::testing::TestingServer::start().await?;
    /// let client = zk_client::Client::builder(&server.connect_string())
    ///     .session_timeout(Duration::from_secs(10))
    ///     .connect()
    ///     .await?;
    /// server.disconnect_session_for(client.session_id(), Duration::from_secs(3));
    /// // The client is Disconnected for 3 s, then Connected again with its session.
    /// # Ok(()) }
    /// ```
    pub fn disconnect_session_for(&self, session_id: i64, duration: Duration) -> usize {
        let until = later(duration);
        self.server
            .as_ref()
            .map_or(0, |s| s.core().disconnect_session(session_id, Some(until)))
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
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut cluster = zk_server::testing::TestingCluster::start(3).await?;
/// let connect = cluster.connect_string(); // "127.0.0.1:a,127.0.0.1:b,127.0.0.1:c"
/// let leader = cluster.wait_for_leader(std::time::Duration::from_secs(10)).await.ok_or("no leader")?;
/// cluster.stop(leader).await; // the others elect a new leader
/// cluster.restart(leader).await?; // it rejoins from its own data
/// # let _ = connect; Ok(()) }
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

    /// Partitions a member from the other members: every message between it and any
    /// other member is dropped until [`TestingCluster::heal`]; its client port stays
    /// reachable. As in a real partition:
    ///
    /// - a follower or observer cut off loses its leader within a few ticks: it drops
    ///   its clients and refuses new ones (except read-only clients with
    ///   `readonlymode.enabled`, which it serves reads), so clients move to the members
    ///   left in their connect string; a write sent through it meanwhile does not
    ///   succeed;
    /// - a leader cut off steps down once it misses its quorum, and the others elect a
    ///   new leader among themselves if they are a majority;
    /// - the others, if they are a majority, keep taking writes.
    ///
    /// Healed, the member finds the leader, catches up on what it missed (from the log,
    /// or a snapshot if the log was purged) and serves clients again. Members stopped
    /// and restarted stay partitioned until healed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let cluster = zk_server::testing::TestingCluster::start(3).await?;
    /// let leader = cluster.wait_for_leader(Duration::from_secs(10)).await.ok_or("no leader")?;
    /// let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("3 members");
    /// cluster.partition(follower);
    /// // ... clients of the other two still write; `follower` serves no one ...
    /// cluster.heal(follower);
    /// // ... `follower` catches up and serves again ...
    /// # Ok(()) }
    /// ```
    pub fn partition(&self, id: u64) {
        self.faults.isolate(id);
    }

    /// The same as [`TestingCluster::partition`].
    pub fn isolate(&self, id: u64) {
        self.partition(id);
    }

    /// Ends a member's partition ([`TestingCluster::partition`]): it talks with the
    /// other members again, and catches up.
    pub fn heal(&self, id: u64) {
        self.faults.heal(id);
    }

    /// Whether a member is partitioned from the others ([`TestingCluster::partition`]).
    pub fn is_partitioned(&self, id: u64) -> bool {
        self.faults.blocked(id, id)
    }

    /// The running members' shared states.
    fn running_cores(&self) -> impl Iterator<Item = &Arc<ServerCore>> {
        self.members
            .iter()
            .filter_map(|m| m.server.as_ref().map(RunningServer::core))
    }

    /// Expires a session through the ensemble, as Curator's `KillSession` and kazoo's
    /// `expire_session` do, and returns once every running member not partitioned
    /// from the leader has closed it. The leader ends it as it ends a session whose
    /// client went silent: it marks it closing (nothing the client sends through any
    /// member saves it any more) and commits its close, which every member applies:
    /// the session's ephemeral nodes are deleted, the watches on them fire, its
    /// connection is dropped wherever it is, and its client's reconnect to any member
    /// is answered as expired (its state becomes `Expired`). If the leader changes on
    /// the way, the new leader is asked.
    ///
    /// Errors: [`TestingError::NotRunning`] if no member runs,
    /// [`TestingError::NoSuchSession`] if no running member knows the session,
    /// [`TestingError::Timeout`] if it was not closed within 10 s (no leader, say).
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use zk_client::{Client, CreateMode};
    /// let cluster = zk_server::testing::TestingCluster::start(3).await?;
    /// let client = Client::connect(&cluster.connect_string()).await?;
    /// client.create("/worker").mode(CreateMode::Ephemeral).await?;
    /// cluster.expire_session(client.session_id()).await?;
    /// // No member has the ephemeral; the client's state becomes Expired.
    /// # Ok(()) }
    /// ```
    pub async fn expire_session(&self, session_id: i64) -> Result<(), TestingError> {
        if self.running_cores().next().is_none() {
            return Err(TestingError::NotRunning);
        }
        expire_until_closed(session_id, || {
            let leader = self
                .leader()
                .and_then(|id| self.core(id).map(|core| (id, core.clone())));
            let members = self
                .members
                .iter()
                .filter(|m| match &leader {
                    Some((id, _)) => m.id == *id || !self.faults.blocked(m.id, *id),
                    None => true,
                })
                .filter_map(|m| m.server.as_ref().map(|s| s.core().clone()))
                .collect();
            (leader, members)
        })
        .await
    }

    /// Drops a session's connection on whichever members it is connected to, as a
    /// network failure would: the client sees `Disconnected`, reconnects at once (to
    /// any member of its connect string) with the same session, and sees `Connected`
    /// again; the session, its ephemerals and its watches live on. Returns how many
    /// connections were dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = zk_server::testing::TestingCluster::start(3).await?;
    /// let client = zk_client::Client::connect(&cluster.connect_string()).await?;
    /// assert_eq!(cluster.disconnect_session(client.session_id()), 1);
    /// // The client is Disconnected, then Connected again with the same session.
    /// # Ok(()) }
    /// ```
    pub fn disconnect_session(&self, session_id: i64) -> usize {
        self.running_cores()
            .map(|core| core.disconnect_session(session_id, None))
            .sum()
    }

    /// Like [`TestingCluster::disconnect_session`], and every running member then
    /// refuses the session's reconnects for `duration`, as if the client could reach
    /// none of them: each attempt's connection is closed without an answer. Other
    /// clients are served as usual. The session's timeout runs meanwhile, as in a real
    /// outage: cut off for less than the session timeout, the client comes back
    /// `Connected` with its session; for longer, the leader expires the session and
    /// the client sees `Expired` when it gets through. Returns how many connections
    /// were dropped. A member restarted meanwhile forgets the refusal.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let cluster = zk_server::testing::TestingCluster::start(3).await?;
    /// let client = zk_client::Client::builder(&cluster.connect_string())
    ///     .session_timeout(Duration::from_secs(10))
    ///     .connect()
    ///     .await?;
    /// cluster.disconnect_session_for(client.session_id(), Duration::from_secs(3));
    /// // The client is Disconnected for 3 s, then Connected again with its session.
    /// # Ok(()) }
    /// ```
    pub fn disconnect_session_for(&self, session_id: i64, duration: Duration) -> usize {
        let until = later(duration);
        self.running_cores()
            .map(|core| core.disconnect_session(session_id, Some(until)))
            .sum()
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

/// `duration` from now (or as far as the clock goes).
fn later(duration: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(duration)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Expires `session` and waits until it is closed. `ensemble` says, each time it is
/// asked, which member leads now (its id and core), if any, and which members must
/// have closed the session (the running members the leader can reach, itself
/// included). The leader is asked to expire the session once; a new leader is asked
/// again.
async fn expire_until_closed(
    session: i64,
    ensemble: impl Fn() -> (Option<(u64, Arc<ServerCore>)>, Vec<Arc<ServerCore>>),
) -> Result<(), TestingError> {
    let known = |members: &[Arc<ServerCore>]| {
        members
            .iter()
            .any(|core| core.db().session(session).is_some())
    };
    if !known(&ensemble().1) {
        return Err(TestingError::NoSuchSession(session));
    }
    let deadline = tokio::time::Instant::now() + EXPIRE_WITHIN;
    let mut asked = None;
    loop {
        let (leader, members) = ensemble();
        if let Some((id, core)) = &leader {
            if asked != Some(*id) {
                match core.expire_session(session) {
                    // Proposed now, or its close is under way already.
                    Ok(proposed) if proposed || core.role().leads() => asked = Some(*id),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "could not propose the close; retrying");
                    }
                }
            }
        }
        if leader.is_some() && !known(&members) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TestingError::Timeout(format!(
                "session 0x{session:x} was not closed within {EXPIRE_WITHIN:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_of_any_length_has_an_end() {
        let now = Instant::now();
        assert!(later(Duration::from_secs(1)) > now);
        // No overflow panic, and a hold far in the future (a year, when the full
        // duration does not fit), not one already over.
        assert!(later(Duration::MAX) > now + Duration::from_secs(3600));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn session_faults_on_what_is_not_there_say_so() {
        let mut server = TestingServer::start().await.unwrap();
        assert!(matches!(
            server.expire_session(0x1234).await,
            Err(TestingError::NoSuchSession(0x1234))
        ));
        assert_eq!(server.disconnect_session(0x1234), 0);
        assert_eq!(
            server.disconnect_session_for(0x1234, Duration::from_secs(1)),
            0
        );
        server.stop().await;
        assert!(matches!(
            server.expire_session(0x1234).await,
            Err(TestingError::NotRunning)
        ));
        assert_eq!(server.disconnect_session(0x1234), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_off_session_is_refused_until_its_time() {
        let server = TestingServer::start().await.unwrap();
        let core = server.server().unwrap().core().clone();
        server.disconnect_session_for(0x1234, Duration::from_millis(300));
        assert!(core.session_held_off(0x1234));
        assert!(!core.session_held_off(0x5678));
        assert!(!core.session_held_off(0), "new sessions are never held off");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!core.session_held_off(0x1234));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partition_and_heal_are_seen_by_the_cluster() {
        let cluster = TestingCluster::start(3).await.unwrap();
        assert!(!cluster.is_partitioned(2));
        cluster.partition(2);
        assert!(cluster.is_partitioned(2));
        assert!(!cluster.is_partitioned(1));
        cluster.heal(2);
        assert!(!cluster.is_partitioned(2));
        cluster.isolate(3);
        assert!(cluster.is_partitioned(3));
        cluster.heal(3);
        cluster.shutdown().await;
    }
}
