//! Starting and stopping a server: storage and replication, the client port, session
//! expiry and the container/TTL reaper. Shutdown is one path for every caller
//! (signals, tests, the testing harness): cancel the token, wait for the tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ServerConfig;
use crate::core::ServerCore;
use crate::database::ZkDatabase;
use crate::replication::ensemble::EnsembleSpec;
use crate::replication::transport::PeerFaults;
use crate::replication::{self, Replication};
use crate::tree::NodeKind;
use crate::txn::TxnOp;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The client port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Storage or consensus failed to start.
    #[error(transparent)]
    Replication(#[from] replication::ReplicationError),
}

/// A running server.
pub struct RunningServer {
    core: Arc<ServerCore>,
    replication: Replication,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Binds the configured client address (and, in an ensemble, this member's peer
    /// port from its `server.N` line) and starts.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        let addr = config.client_addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        if config.peers.is_empty() {
            return RunningServer::start_with_listener(config, listener).await;
        }
        let spec = EnsembleSpec::from_config(&config)?;
        let peer = config
            .peers
            .get(&spec.me)
            .map(|p| format!("{}:{}", p.host, p.peer_port))
            .unwrap_or_default();
        let peer_addr = tokio::net::lookup_host(&peer)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| StartError::Bind {
                addr,
                source: std::io::Error::other(format!("cannot resolve peer address {peer}")),
            })?;
        let peer_listener =
            TcpListener::bind(peer_addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: peer_addr,
                    source,
                })?;
        RunningServer::start_member(config, listener, peer_listener, PeerFaults::default()).await
    }

    /// Starts standalone on an already bound listener (tests bind port 0).
    pub async fn start_with_listener(
        config: ServerConfig,
        listener: TcpListener,
    ) -> Result<RunningServer, StartError> {
        RunningServer::start_inner(config, listener, None).await
    }

    /// Starts a member of an ensemble on bound client and peer listeners, its peer
    /// traffic subject to `faults` (shared by an in-process cluster's members).
    pub async fn start_member(
        config: ServerConfig,
        listener: TcpListener,
        peer_listener: TcpListener,
        faults: PeerFaults,
    ) -> Result<RunningServer, StartError> {
        RunningServer::start_inner(config, listener, Some((peer_listener, faults))).await
    }

    async fn start_inner(
        config: ServerConfig,
        listener: TcpListener,
        peer: Option<(TcpListener, PeerFaults)>,
    ) -> Result<RunningServer, StartError> {
        config.log_ignored();
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.client_addr,
            source,
        })?;
        let shutdown = CancellationToken::new();
        let data_dir = config.data_dir.clone();
        let Some((peer_listener, faults)) = peer else {
            let core = ServerCore::new(config, 0, ZkDatabase::new());
            let replication =
                replication::start_standalone(core.clone(), &data_dir, shutdown.clone()).await?;
            return RunningServer::serve(core, replication, listener, addr, shutdown);
        };
        let spec = EnsembleSpec::from_config(&config)?;
        let core = ServerCore::new(config, spec.me, ZkDatabase::new());
        let replication = replication::ensemble::start_ensemble(
            core.clone(),
            &data_dir,
            spec,
            peer_listener,
            faults,
            shutdown.clone(),
        )
        .await?;
        RunningServer::serve(core, replication, listener, addr, shutdown)
    }

    fn serve(
        core: Arc<ServerCore>,
        replication: Replication,
        listener: TcpListener,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<RunningServer, StartError> {
        // Recovered sessions get a fresh full timeout: their clients may reconnect.
        core.refresh_session_timeouts();
        let mut tasks = vec![
            tokio::spawn(crate::net::listener::run(
                core.clone(),
                listener,
                shutdown.clone(),
            )),
            tokio::spawn(expire_sessions(core.clone(), shutdown.clone())),
            tokio::spawn(reap_containers(core.clone(), shutdown.clone())),
        ];
        let admin_addr = if core.config.admin_enabled {
            let admin_core = core.clone();
            http_endpoint(
                "admin",
                core.config.admin_addr,
                &shutdown,
                &mut tasks,
                move |path| crate::net::admin::handle(&admin_core, path),
            )
        } else {
            None
        };
        let metrics_addr = match core.config.metrics_addr {
            Some(at) => {
                let (metrics_core, positions) = (core.clone(), replication.clone());
                http_endpoint("metrics", at, &shutdown, &mut tasks, move |path| {
                    metrics_page(&metrics_core, &positions, path)
                })
            }
            None => None,
        };
        info!(
            %addr,
            zxid = format_args!("0x{:x}", core.db().last_zxid()),
            znodes = core.db().tree().node_count(),
            "serving clients"
        );
        Ok(RunningServer {
            core,
            replication,
            addr,
            admin_addr,
            metrics_addr,
            shutdown,
            tasks,
        })
    }

    /// The client port's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin endpoint listens, if it does (`admin.enableServer`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Where `/metrics` is served, if it is (`metricsProvider.httpPort`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared state (tests, 4lw).
    pub fn core(&self) -> &Arc<ServerCore> {
        &self.core
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Ends the session now, as its expiry would (Curator's `killSession`).
    pub fn expire_session(&self, session_id: i64) {
        self.core.tracker().expire_now(session_id, Instant::now());
    }

    /// Stops as abruptly as an in-process server can: every task is cancelled and
    /// none is waited for, consensus stops at once; what is on disk stays as it is.
    /// (A real crash needs a process: see `tests/ensemble_crash.rs`.)
    pub async fn kill(self) {
        self.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.replication.raft.shutdown().await;
        info!(addr = %self.addr, "server killed");
    }

    /// Stops accepting, closes connections, stops consensus, waits for every task.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(e) = self.replication.raft.shutdown().await {
            warn!(error = %e, "consensus did not shut down cleanly");
        }
        info!(addr = %self.addr, "server stopped");
    }
}

/// Runs `work` every `period` while this server leads (standalone: always), until
/// `shutdown`. Followers and observers leave leader-only duties to the leader.
async fn while_leading(
    core: &ServerCore,
    period: Duration,
    shutdown: &CancellationToken,
    mut work: impl FnMut(&ServerCore),
) {
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if core.role().leads() {
            work(core);
        }
    }
}

/// The leader expires sessions whose clients went quiet; other members only track.
async fn expire_sessions(core: Arc<ServerCore>, shutdown: CancellationToken) {
    let period = Duration::from_millis(u64::from(core.config.tick_time_ms / 2).max(10));
    while_leading(&core, period, &shutdown, |core| {
        let expired = core.tracker().take_expired(Instant::now());
        for session in expired {
            info!(session = format_args!("0x{session:x}"), "session expired");
            if let Err(e) = core.submit(session, 0, Vec::new(), TxnOp::CloseSession) {
                warn!(error = %e, "could not propose the close of an expired session");
            }
        }
    })
    .await;
}

/// ZooKeeper's ContainerManager: every `containerCheckIntervalMs`, propose the delete
/// of each empty container that once had children and of each childless TTL node
/// untouched for its TTL. Apply checks again, so a stale candidate is harmless.
async fn reap_containers(core: Arc<ServerCore>, shutdown: CancellationToken) {
    let period = Duration::from_millis(core.config.container_check_interval_ms.max(10));
    while_leading(&core, period, &shutdown, |core| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let candidates = reap_candidates(core, now);
        for op in candidates {
            if let Err(e) = core.submit(0, 0, Vec::new(), op) {
                warn!(error = %e, "could not propose a reap");
            }
        }
    })
    .await;
}

/// The reaps to propose at `now` (ms since the epoch): every empty container that once
/// had children, and every childless TTL node untouched for its TTL.
pub(crate) fn reap_candidates(core: &ServerCore, now: i64) -> Vec<TxnOp> {
    let db = core.db();
    let tree = db.tree();
    let containers = tree.containers().iter().filter(|p| {
        tree.get(p)
            .is_some_and(|n| n.children.is_empty() && n.stat.cversion > 0)
    });
    let ttls = tree.ttl_nodes().iter().filter(|p| {
        tree.get(p).is_some_and(|n| match n.kind() {
            NodeKind::Ttl(ttl) => n.children.is_empty() && now - n.stat.mtime > ttl,
            _ => false,
        })
    });
    containers
        .map(|p| TxnOp::ReapContainer { path: p.clone() })
        .chain(ttls.map(|p| TxnOp::ReapTtl { path: p.clone() }))
        .collect()
}

/// Starts an HTTP endpoint on `at`; its bound address, or `None` (logged, the server
/// goes on without it, as ZooKeeper does when its AdminServer cannot start).
fn http_endpoint(
    what: &'static str,
    at: SocketAddr,
    shutdown: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
    handler: impl Fn(&str) -> crate::net::http::HttpResponse + Send + Sync + 'static,
) -> Option<SocketAddr> {
    let bound = std::net::TcpListener::bind(at)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std);
    match bound {
        Ok(listener) => {
            let addr = listener.local_addr().ok();
            info!(endpoint = what, addr = ?addr, "serving HTTP");
            tasks.push(tokio::spawn(crate::net::http::serve(
                listener,
                shutdown.clone(),
                handler,
            )));
            addr
        }
        Err(e) => {
            warn!(endpoint = what, %at, error = %e, "cannot listen; going on without it");
            None
        }
    }
}

/// `GET /metrics`: the Prometheus text.
fn metrics_page(
    core: &ServerCore,
    replication: &Replication,
    path: &str,
) -> crate::net::http::HttpResponse {
    use crate::net::http::HttpResponse;
    if path != "/metrics" {
        return HttpResponse::text(404, "text/plain", "see /metrics\n".into());
    }
    let positions = replication.positions();
    // One lock at a time, as the four-letter words take them.
    let (sessions, znodes, data_size) = {
        let db = core.db();
        (
            db.sessions().len() as u64,
            db.tree().node_count() as u64,
            db.tree().approximate_data_size(),
        )
    };
    let now = crate::metrics::Snapshot {
        outstanding: core.stats.outstanding(),
        sessions,
        connections: core.with_connections(|c| c.len()) as u64,
        watches: core.watches().watch_count() as u64,
        znodes,
        data_size,
        commit_index: positions.commit_index,
        last_applied: positions.last_applied,
    };
    HttpResponse::text(
        200,
        "text/plain; version=0.0.4",
        core.metrics.render(now, &positions.lag),
    )
}
