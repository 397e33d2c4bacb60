//! Starting and stopping a server: storage and replication, the client port, session
//! expiry and the container/TTL reaper. Shutdown is one path for every caller
//! (signals, tests, the testing harness): cancel the token, wait for the tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::ServerConfig;
use crate::core::ServerCore;
use crate::database::ZkDatabase;
use crate::replication::ensemble::EnsembleSpec;
use crate::replication::links::{PeerFaults, PeerTls};
use crate::replication::{self, Replication};
use crate::tls::{self, TlsError};
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
    /// A TLS key or trust store (`ssl.*`, `ssl.quorum.*`) could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The JAAS file (`java.security.auth.login.config`) could not be used.
    #[error(transparent)]
    Sasl(#[from] crate::sasl::SaslSetupError),
}

/// A running server.
pub struct RunningServer {
    core: Arc<ServerCore>,
    replication: Replication,
    addr: SocketAddr,
    secure_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Binds the configured client addresses (the plain client port unless only a
    /// secure one is configured, and the secure one if any) and, in an ensemble, this
    /// member's peer port from its `server.N` line, and starts.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
        let addr = config.client_addr;
        let listener = if config.client_port_enabled {
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            )
        } else {
            None
        };
        if config.peers.is_empty() {
            return RunningServer::start_inner(config, listener, None).await;
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
        RunningServer::start_inner(
            config,
            listener,
            Some((peer_listener, PeerFaults::default())),
        )
        .await
    }

    /// Starts standalone on an already bound listener (tests bind port 0). A secure
    /// client port in `config` is bound at start (port 0: any free port; see
    /// [`RunningServer::secure_addr`]).
    pub async fn start_with_listener(
        config: ServerConfig,
        listener: TcpListener,
    ) -> Result<RunningServer, StartError> {
        RunningServer::start_inner(config, Some(listener), None).await
    }

    /// Starts a member of an ensemble on bound client and peer listeners, its peer
    /// traffic subject to `faults` (shared by an in-process cluster's members).
    pub async fn start_member(
        config: ServerConfig,
        listener: TcpListener,
        peer_listener: TcpListener,
        faults: PeerFaults,
    ) -> Result<RunningServer, StartError> {
        RunningServer::start_inner(config, Some(listener), Some((peer_listener, faults))).await
    }

    async fn start_inner(
        config: ServerConfig,
        listener: Option<TcpListener>,
        peer: Option<(TcpListener, PeerFaults)>,
    ) -> Result<RunningServer, StartError> {
        config.log_ignored();
        // So is the JAAS file: a malformed one, or one without a section SASL needs.
        let sasl = crate::sasl::SaslLogins::load(&config.sasl, peer.is_some())?;
        let peer_sasl = sasl
            .quorum
            .clone()
            .map(|q| std::sync::Arc::new(replication::peer_sasl::PeerSasl::new(q)));
        // TLS stores are read before anything else starts: a bad one stops the server.
        let acceptor = config
            .client_tls
            .as_ref()
            .map(|settings| tls::server_config(settings).map(tokio_rustls::TlsAcceptor::from))
            .transpose()?;
        let secure = match (config.secure_client_addr, &acceptor) {
            (Some(at), Some(acceptor)) => {
                let bound = TcpListener::bind(at)
                    .await
                    .map_err(|source| StartError::Bind { addr: at, source })?;
                Some((bound, acceptor.clone()))
            }
            _ => None,
        };
        let unified = acceptor.filter(|_| config.port_unification);
        let peer_tls = match &config.quorum_tls {
            Some(settings) if peer.is_some() => Some(std::sync::Arc::new(PeerTls::new(settings)?)),
            _ => None,
        };
        let mut listeners = ClientListeners::new(listener, secure, config.client_addr)?;
        listeners.unified = unified;
        let shutdown = CancellationToken::new();
        let Some((peer_listener, faults)) = peer else {
            let core = ServerCore::new(config, 0, ZkDatabase::new());
            core.set_sasl_logins(sasl);
            let replication = replication::start_standalone(core.clone(), shutdown.clone()).await?;
            return RunningServer::serve(core, replication, listeners, shutdown);
        };
        let faults = faults.with_tls(peer_tls).with_sasl(peer_sasl);
        let spec = EnsembleSpec::from_config(&config)?;
        let core = ServerCore::new(config, spec.me, ZkDatabase::new());
        core.set_sasl_logins(sasl);
        let replication = replication::ensemble::start_ensemble(
            core.clone(),
            spec,
            peer_listener,
            faults,
            shutdown.clone(),
        )
        .await?;
        RunningServer::serve(core, replication, listeners, shutdown)
    }

    fn serve(
        core: Arc<ServerCore>,
        replication: Replication,
        listeners: ClientListeners,
        shutdown: CancellationToken,
    ) -> Result<RunningServer, StartError> {
        // Recovered sessions get a fresh full timeout: their clients may reconnect.
        core.refresh_session_timeouts();
        let ClientListeners {
            addr,
            secure_addr,
            plain,
            secure,
            unified,
        } = listeners;
        let mut tasks = vec![
            tokio::spawn(expire_sessions(core.clone(), shutdown.clone())),
            tokio::spawn(reap_containers(core.clone(), shutdown.clone())),
            tokio::spawn(watch_disk_space(core.clone(), shutdown.clone())),
            tokio::spawn(keep_metrics(core.clone(), shutdown.clone())),
            tokio::spawn(stop_on_storage_failure(
                core.clone(),
                replication.clone(),
                shutdown.clone(),
            )),
        ];
        if let Some(listener) = plain {
            let mode = match unified {
                Some(acceptor) => {
                    info!(%addr, "client.portUnification: TLS and plaintext on the client port");
                    crate::net::listener::Mode::Unified(acceptor)
                }
                None => crate::net::listener::Mode::Plain,
            };
            tasks.push(tokio::spawn(crate::net::listener::run(
                core.clone(),
                listener,
                mode,
                shutdown.clone(),
            )));
        }
        if let Some((listener, acceptor)) = secure {
            info!(addr = ?secure_addr, "serving clients over TLS");
            tasks.push(tokio::spawn(crate::net::listener::run(
                core.clone(),
                listener,
                crate::net::listener::Mode::Tls(acceptor),
                shutdown.clone(),
            )));
        }
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
            secure_addr,
            admin_addr,
            metrics_addr,
            shutdown,
            tasks,
        })
    }

    /// Cancelled once this server's storage failed and it stopped serving (see
    /// [`ServerCore::storage_failure`]); a process then exits.
    pub fn storage_failed(&self) -> CancellationToken {
        self.core.storage_failed().clone()
    }

    /// The client port's address (the secure one when only a secure port is served).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The secure client port's address, when one is served (`secureClientPort`).
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
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

    /// Ends the session now, as its expiry would (Curator's `killSession`): on a
    /// standalone server or a leader, marks it closing and proposes its close (see
    /// [`ServerCore::expire_session`]). True if the close was proposed; false if this
    /// server does not lead, does not know the session, its close is under way already,
    /// or the close could not be proposed. [`crate::testing::TestingServer::expire_session`]
    /// also waits until it is done.
    pub fn expire_session(&self, session_id: i64) -> bool {
        match self.core.expire_session(session_id) {
            Ok(proposed) => proposed,
            Err(e) => {
                warn!(error = %e, "could not propose the close of a session");
                false
            }
        }
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

/// The bound client ports of a server about to serve.
struct ClientListeners {
    /// The plain port's address, or the secure one's when there is no plain port.
    addr: SocketAddr,
    secure_addr: Option<SocketAddr>,
    plain: Option<TcpListener>,
    secure: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    /// With `client.portUnification`: TLS on the plain port too.
    unified: Option<tokio_rustls::TlsAcceptor>,
}

impl ClientListeners {
    /// At least one port is needed (`configured` names the plain one in errors).
    fn new(
        plain: Option<TcpListener>,
        secure: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
        configured: SocketAddr,
    ) -> Result<ClientListeners, StartError> {
        let bound = |l: &TcpListener| {
            l.local_addr().map_err(|source| StartError::Bind {
                addr: configured,
                source,
            })
        };
        let plain_addr = plain.as_ref().map(bound).transpose()?;
        let secure_addr = secure.as_ref().map(|(l, _)| bound(l)).transpose()?;
        let addr = plain_addr.or(secure_addr).ok_or_else(|| StartError::Bind {
            addr: configured,
            source: std::io::Error::other("neither a client port nor a secure client port"),
        })?;
        Ok(ClientListeners {
            addr,
            secure_addr,
            plain,
            secure,
            unified: None,
        })
    }
}

/// Once storage failed, stops everything this server runs: clients are dropped,
/// consensus stops (openraft already stopped itself if the failure was its write).
async fn stop_on_storage_failure(
    core: Arc<ServerCore>,
    replication: Replication,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = core.storage_failed().cancelled() => {
            shutdown.cancel();
            core.abandon_all("storage failed");
            let _ = replication.raft.shutdown().await;
        }
    }
}

/// How often free space under the log is measured.
const DISK_CHECK_PERIOD: Duration = Duration::from_millis(500);

/// Measures free space under the log every [`DISK_CHECK_PERIOD`]; below
/// `diskReserveBytes`, client writes are refused until there is room again.
async fn watch_disk_space(core: Arc<ServerCore>, shutdown: CancellationToken) {
    let dir = core.config.log_store_dir();
    let reserve = core.config.disk_reserve_bytes;
    loop {
        match crate::storage::disk::free_bytes(&dir) {
            Ok(free) => {
                let full = free < reserve;
                let was = core.set_disk_full(full);
                if full && !was {
                    warn!(
                        dir = %dir.display(),
                        free,
                        reserve,
                        "disk nearly full: refusing client writes until there is room"
                    );
                } else if was && !full {
                    info!(dir = %dir.display(), free, "disk has room again: taking writes");
                }
            }
            Err(e) => debug!(dir = %dir.display(), error = %e, "cannot measure free space"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(DISK_CHECK_PERIOD) => {}
        }
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
            if let Err(e) = core.propose_close(session) {
                warn!(error = %e, "could not propose the close of an expired session");
            }
        }
    })
    .await;
}

/// How often the latency histograms are folded (see [`keep_metrics`]).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Folds the samples the latency histograms gathered into their buckets, every
/// [`METRICS_UPKEEP`]: without it they would be kept one by one until `/metrics` is
/// next scraped, growing without bound on a server nobody scrapes.
async fn keep_metrics(core: Arc<ServerCore>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(METRICS_UPKEEP);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => core.metrics.upkeep(),
        }
    }
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
            .is_some_and(|n| n.is_leaf() && n.stored_stat().cversion > 0)
    });
    let ttls = tree.ttl_nodes().iter().filter(|p| {
        tree.get(p).is_some_and(|n| match n.kind() {
            NodeKind::Ttl(ttl) => n.is_leaf() && now - n.stored_stat().mtime > ttl,
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
        term: replication.raft.metrics().borrow().current_term,
    };
    HttpResponse::text(
        200,
        "text/plain; version=0.0.4",
        core.metrics.render(now, &positions.lag),
    )
}
