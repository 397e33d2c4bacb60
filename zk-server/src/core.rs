//! The state one server shares between its connections and its replication: the
//! database, the watches, the open connections and the replies this server owes.
//!
//! Writes go out through a [`Replicator`] (the consensus log) and come back, on every
//! server, through [`ServerCore::apply_committed`]: apply, fire watches, and — on the
//! server that proposed it — complete the client's pending reply. Notifications are
//! queued on their connections *while the database lock is held*, so a read that sees
//! a change is always answered after the notification of that change (ZooKeeper's
//! "watch events before later reads" guarantee).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use zk_proto::{Id, Perms, WatcherEvent};

use crate::acl;
use crate::config::ServerConfig;
use crate::database::{Applied, ZkDatabase};
use crate::role::{QuorumView, Role};
use crate::session_order::{Outbox, Outgoing, OwedAnswer};
use crate::session_tracker::{SessionIdGenerator, SessionTracker};
use crate::stats::ServerStats;
use crate::txn::{Origin, Txn, TxnOp};
use crate::watches::{ConnId, WatchManager};

/// Why a write could not be submitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// This server cannot take writes now (no quorum, shutting down).
    #[error("not accepting writes: {0}")]
    Unavailable(String),
    /// The disk under the log is (nearly) full: client writes are refused, reads and
    /// sessions go on.
    #[error("not accepting writes: {0}")]
    DiskFull(String),
}

/// The consensus log, seen from the server: submit transactions in order; committed
/// ones come back through [`ServerCore::apply_committed`].
pub trait Replicator: Send + Sync + 'static {
    /// Appends `txn` to the log after every transaction submitted before it.
    fn submit(&self, txn: Txn) -> Result<(), SubmitError>;

    /// The leader's commit point, confirmed with a quorum: once this server has applied
    /// up to it, it has seen every write acknowledged before the call (`sync`).
    fn read_index(&self) -> BoxFuture<'static, Result<i64, SubmitError>>;

    /// Tells the leader that `session` reconnected through member `owner` (ZooKeeper's
    /// revalidation): `Some(true)` accepted, `Some(false)` the session is being closed,
    /// `None` the leader does not know it yet.
    fn revalidate(
        &self,
        session: i64,
        owner: u64,
    ) -> BoxFuture<'static, Result<Option<bool>, SubmitError>>;

    /// Carries out a reconfig through the leader; the zxid that published the new
    /// configuration, or ZooKeeper's error for the request.
    fn reconfigure(
        &self,
        request: zk_proto::ReconfigRequest,
    ) -> BoxFuture<'static, Result<i64, zk_proto::ErrorCode>>;
}

/// A reply this server owes for a write it submitted, until it has applied it.
#[derive(Debug)]
pub enum Owed {
    /// Told the write's zxid and outcome (session setup, expiry, tests).
    Reply(oneshot::Sender<(i64, Applied)>),
    /// A client connection's answer, in its connection's order.
    Answer(OwedAnswer),
    /// Nothing (what a refused write gives back if its reply could not be found).
    Lost,
}

/// Most notifications a connection may have queued; a connection that falls this far
/// behind is closed rather than allowed to grow server memory.
pub const NOTIFICATION_QUEUE: usize = 65_536;

/// A connection as the rest of the server sees it.
#[derive(Debug)]
pub struct ConnEntry {
    /// The session it carries (0 before the handshake completes).
    pub session_id: i64,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The identities it has authenticated as.
    pub auth: Vec<Id>,
    /// Where its watch notifications go: its writer's channel, shared with its answers
    /// ([`crate::session_order`]).
    pub outbox: Outbox,
    /// Cancelled to close the connection (session ended, taken over, too slow).
    pub close: CancellationToken,
    /// When it connected.
    pub since: Instant,
    /// Its packet counters (`cons`, `stat`).
    pub counters: Arc<ConnCounters>,
    /// Served in read-only mode (this member was cut off from its quorum).
    pub read_only: bool,
    /// Its SASL exchange in progress, if any (the `sasl` request).
    pub sasl: Option<zk_proto::sasl::DigestServer>,
}

/// Per-connection packet counters.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Packets received.
    pub received: AtomicU64,
    /// Packets sent.
    pub sent: AtomicU64,
    /// Bytes of notifications queued and not yet handed to the socket.
    pub queued_bytes: AtomicU64,
    /// Notifications queued and not yet handed to the socket.
    pub queued_events: AtomicU64,
    /// Requests read and not yet answered.
    pub outstanding: AtomicU64,
}

/// What a queued notification counts against its connection's output limit.
pub fn notification_bytes(event: &WatcherEvent) -> u64 {
    // The frame: length, reply header (16 bytes), event type, state, path.
    (4 + 16 + 4 + 4 + 4 + event.path.len()) as u64
}

impl ConnCounters {
    /// Zeroes both (`crst`).
    pub fn reset(&self) {
        self.received.store(0, Ordering::Relaxed);
        self.sent.store(0, Ordering::Relaxed);
    }
}

/// One server's shared state.
pub struct ServerCore {
    /// The configuration it runs with.
    pub config: ServerConfig,
    /// Its id (0 standalone).
    pub server_id: u64,
    db: RwLock<ZkDatabase>,
    watches: Mutex<WatchManager>,
    conns: Mutex<HashMap<ConnId, ConnEntry>>,
    /// Sessions whose reconnects this server refuses until the given time (a test
    /// cutting a client off: [`ServerCore::disconnect_session`]). Locked after `conns`
    /// when both are held.
    held_off: Mutex<HashMap<i64, Instant>>,
    pending: Mutex<HashMap<u64, Owed>>,
    tracker: Mutex<SessionTracker>,
    session_ids: Mutex<SessionIdGenerator>,
    next_seq: AtomicU64,
    next_conn: AtomicU64,
    replicator: OnceLock<Arc<dyn Replicator>>,
    applied: watch::Sender<i64>,
    abandons: AtomicU64,
    removed: std::sync::atomic::AtomicBool,
    quorum: Mutex<QuorumView>,
    /// Cancelled once storage failed: the member stops ([`ServerCore::storage_failure`]).
    storage_failed: CancellationToken,
    /// Set while free space under the log is below `diskReserveBytes`.
    disk_full: std::sync::atomic::AtomicBool,
    /// One permit per request read from a client and not yet answered
    /// (`globalOutstandingLimit`).
    outstanding: Arc<tokio::sync::Semaphore>,
    /// The SASL credentials (set once at start; none until then).
    sasl: OnceLock<Arc<crate::sasl::SaslLogins>>,
    /// Counters for the four-letter words.
    pub stats: ServerStats,
    /// Prometheus metrics (`/metrics`).
    pub metrics: crate::metrics::ServerMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug; keep serving rather than
    // poisoning every later request.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ServerCore {
    /// Sets the SASL credentials read at start-up (once; later calls are ignored).
    pub fn set_sasl_logins(&self, logins: crate::sasl::SaslLogins) {
        let _ = self.sasl.set(Arc::new(logins));
    }

    /// The SASL credentials (none set: SASL off).
    pub fn sasl_logins(&self) -> Arc<crate::sasl::SaslLogins> {
        self.sasl.get_or_init(Default::default).clone()
    }

    /// A core over `db` (recovered or new).
    pub fn new(config: ServerConfig, server_id: u64, db: ZkDatabase) -> Arc<ServerCore> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let permits = match config.global_outstanding_limit {
            0 => tokio::sync::Semaphore::MAX_PERMITS,
            n => n.min(tokio::sync::Semaphore::MAX_PERMITS),
        };
        Arc::new(ServerCore {
            config,
            server_id,
            db: RwLock::new(db),
            watches: Mutex::new(WatchManager::new()),
            conns: Mutex::new(HashMap::new()),
            held_off: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            tracker: Mutex::new(SessionTracker::new()),
            session_ids: Mutex::new(SessionIdGenerator::new(server_id)),
            // Unique across restarts: replies are routed by (server, seq).
            next_seq: AtomicU64::new(now_ms << 16),
            next_conn: AtomicU64::new(1),
            replicator: OnceLock::new(),
            applied: watch::channel(0).0,
            abandons: AtomicU64::new(0),
            removed: std::sync::atomic::AtomicBool::new(false),
            quorum: Mutex::new(QuorumView::standalone()),
            storage_failed: CancellationToken::new(),
            disk_full: std::sync::atomic::AtomicBool::new(false),
            outstanding: Arc::new(tokio::sync::Semaphore::new(permits)),
            sasl: OnceLock::new(),
            stats: ServerStats::default(),
            metrics: crate::metrics::ServerMetrics::new(),
        })
    }

    /// Storage failed (a write or fsync of the log, a vote or a snapshot): what is on
    /// disk is no longer known to match what this member holds, so it must not go on.
    /// Logs why and cancels [`ServerCore::storage_failed`]; the server then stops, and
    /// a restart recovers from what is durable.
    pub fn storage_failure(&self, what: &str, error: &dyn std::fmt::Display) {
        if !self.storage_failed.is_cancelled() {
            tracing::error!(
                %error,
                what,
                "storage failed: this member stops; restart it once the disk is fixed \
                 (it recovers from what is durable)"
            );
        }
        self.storage_failed.cancel();
    }

    /// Cancelled once storage failed.
    pub fn storage_failed(&self) -> &CancellationToken {
        &self.storage_failed
    }

    /// A permit for one more request read from a client, waited for while
    /// `globalOutstandingLimit` requests are read and not yet answered: connections
    /// stop reading until some are (ZooKeeper's throttling), so a flood of requests
    /// cannot grow memory. Fair: waiting connections are served in turn.
    pub async fn outstanding_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.outstanding.clone().acquire_owned().await.ok()
    }

    /// A permit if one is free now.
    pub fn try_outstanding_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.outstanding.clone().try_acquire_owned().ok()
    }

    /// Records whether the disk under the log is (nearly) full; the previous value.
    pub fn set_disk_full(&self, full: bool) -> bool {
        self.disk_full.swap(full, Ordering::SeqCst)
    }

    /// Whether client writes are refused for lack of disk space.
    pub fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::SeqCst)
    }

    /// Connects the write path (once, at start-up).
    pub fn set_replicator(&self, replicator: Arc<dyn Replicator>) {
        let _ = self.replicator.set(replicator);
    }

    /// This server's role and quorum facts.
    pub fn quorum(&self) -> QuorumView {
        lock(&self.quorum).clone()
    }

    /// Marks this member as removed from its ensemble by reconfig (or added back).
    pub fn set_removed(&self, removed: bool) {
        self.removed.store(removed, Ordering::SeqCst);
    }

    /// Whether reconfig removed this member.
    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// This server's role.
    pub fn role(&self) -> Role {
        lock(&self.quorum).role
    }

    /// Records a new quorum view (replication, as consensus moves).
    pub fn set_quorum(&self, view: QuorumView) {
        *lock(&self.quorum) = view;
    }

    /// Closes every client connection (this server lost or changed its leader, as
    /// ZooKeeper drops its clients when it stops following).
    pub fn close_all_connections(&self) {
        for entry in lock(&self.conns).values() {
            entry.close.cancel();
        }
    }

    /// A session (re)connected here: the leader records this member as its owner. False
    /// only when the leader says the session is being closed; a leader that cannot be
    /// asked, or does not know the session yet, leaves the local check standing.
    pub async fn revalidate_session(&self, session: i64) -> bool {
        if self.role().leads() {
            return self
                .tracker()
                .set_owner(session, self.server_id, Instant::now())
                != Some(false);
        }
        let Some(replicator) = self.replicator.get() else {
            return true;
        };
        !matches!(
            replicator.revalidate(session, self.server_id).await,
            Ok(Some(false))
        )
    }

    /// Reconfigures the ensemble and waits until this member has applied the new
    /// configuration; returns the zxid that published it.
    pub async fn reconfigure(
        &self,
        request: zk_proto::ReconfigRequest,
    ) -> Result<i64, zk_proto::ErrorCode> {
        let replicator = self
            .replicator
            .get()
            .ok_or(zk_proto::ErrorCode::ConnectionLoss)?;
        let zxid = replicator.reconfigure(request).await?;
        let mut applied = self.applied.subscribe();
        let reached = applied.wait_for(|z| *z >= zxid).await.is_ok();
        if reached {
            Ok(zxid)
        } else {
            Err(zk_proto::ErrorCode::ConnectionLoss)
        }
    }

    /// Whether `txn` comes from a connection its session has since moved away from
    /// (known on the leader only): such writes are refused, and their connection closed.
    pub fn moved(&self, txn: &Txn) -> bool {
        txn.from_connection()
            && self
                .tracker()
                .owner(txn.session_id)
                .is_some_and(|owner| owner != txn.origin.server)
    }

    /// Whether this member, leading, knows that `session` moved to another member
    /// (ZooKeeper's leader then closes the old connection on any request).
    pub fn moved_away(&self, session: i64) -> bool {
        self.role() == Role::Leader
            && self
                .tracker()
                .owner(session)
                .is_some_and(|owner| owner != self.server_id)
    }

    /// Closes the connections served in read-only mode (the quorum is back: their
    /// clients reconnect read-write).
    pub fn close_read_only_connections(&self) {
        for entry in lock(&self.conns).values().filter(|c| c.read_only) {
            entry.close.cancel();
        }
    }

    /// Waits until this server has applied the leader's commit point as of now
    /// (`sync`); false if that cannot be had (no leader, shutting down) in `within`.
    pub async fn sync_point(&self, within: std::time::Duration) -> bool {
        let Some(replicator) = self.replicator.get() else {
            return false;
        };
        let reached = async {
            let Ok(index) = replicator.read_index().await else {
                return false;
            };
            let mut applied = self.applied.subscribe();
            let reached = applied.wait_for(|zxid| *zxid >= index).await.is_ok();
            reached
        };
        tokio::time::timeout(within, reached).await.unwrap_or(false)
    }

    /// Reads the database (reads, 4lw, tests).
    pub fn db(&self) -> RwLockReadGuard<'_, ZkDatabase> {
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole database (snapshot install); every watch is dropped with it
    /// since the client will re-register on reconnect.
    pub fn install_database(&self, db: ZkDatabase) {
        let mut guard = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(seq) = db.last_seq(self.server_id) {
            self.next_seq
                .fetch_max(seq.saturating_add(1), Ordering::Relaxed);
        }
        *guard = db;
        self.applied.send_replace(guard.last_zxid());
    }

    /// The watches (under the database lock when consistency with a read matters).
    pub fn watches(&self) -> MutexGuard<'_, WatchManager> {
        lock(&self.watches)
    }

    /// Session liveness.
    pub fn tracker(&self) -> MutexGuard<'_, SessionTracker> {
        lock(&self.tracker)
    }

    /// Gives every open session a fresh full timeout from now (after recovery, or on
    /// becoming leader): its client may be reconnecting.
    pub fn refresh_session_timeouts(&self) {
        let sessions: Vec<(i64, i32)> = self
            .db()
            .sessions()
            .iter()
            .map(|(id, s)| (*id, s.timeout))
            .collect();
        self.tracker().reset_all(sessions, Instant::now());
    }

    /// A fresh session id.
    pub fn next_session_id(&self) -> i64 {
        lock(&self.session_ids).next_id()
    }

    /// Registers a connection; returns its id.
    pub fn register_connection(&self, entry: ConnEntry) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(id, entry);
        id
    }

    /// Forgets a connection and its watches.
    pub fn unregister_connection(&self, conn: ConnId) {
        lock(&self.conns).remove(&conn);
        self.watches().remove_connection(conn);
    }

    /// Runs `f` on the registry of connections.
    pub fn with_connections<R>(&self, f: impl FnOnce(&mut HashMap<ConnId, ConnEntry>) -> R) -> R {
        f(&mut lock(&self.conns))
    }

    /// Number of connections from `ip`.
    pub fn connections_from(&self, ip: std::net::IpAddr) -> usize {
        lock(&self.conns)
            .values()
            .filter(|c| c.remote.ip() == ip)
            .count()
    }

    /// Submits a write for a client; the receiver completes with the entry's zxid and
    /// outcome when this server has applied it.
    pub fn submit(
        &self,
        session_id: i64,
        xid: i32,
        auth: Vec<Id>,
        op: TxnOp,
    ) -> Result<oneshot::Receiver<(i64, Applied)>, SubmitError> {
        let (tx, rx) = oneshot::channel();
        self.submit_owed(None, session_id, xid, auth, op, Owed::Reply(tx))
            .map_err(|(e, _)| e)?;
        Ok(rx)
    }

    /// [`ServerCore::submit`] for a client connection: refused once `conn_closed` is
    /// cancelled, so a connection being dropped (its earlier writes failed) never gets
    /// a later write into the log.
    pub fn submit_on(
        &self,
        conn_closed: &CancellationToken,
        session_id: i64,
        xid: i32,
        auth: Vec<Id>,
        op: TxnOp,
    ) -> Result<oneshot::Receiver<(i64, Applied)>, SubmitError> {
        let (tx, rx) = oneshot::channel();
        self.submit_owed(
            Some(conn_closed),
            session_id,
            xid,
            auth,
            op,
            Owed::Reply(tx),
        )
        .map_err(|(e, _)| e)?;
        Ok(rx)
    }

    /// Submits a write whose reply is `owed` once this server has applied it; refused
    /// once `conn_closed` (when given) is cancelled. A refused write's `owed` comes
    /// back with the reason.
    pub fn submit_owed(
        &self,
        conn_closed: Option<&CancellationToken>,
        session_id: i64,
        xid: i32,
        auth: Vec<Id>,
        op: TxnOp,
        owed: Owed,
    ) -> Result<(), (SubmitError, Owed)> {
        let Some(replicator) = self.replicator.get() else {
            return Err((
                SubmitError::Unavailable("write path not started".into()),
                owed,
            ));
        };
        // Sessions still open and close (they are small, and reads need them); data
        // writes wait for room.
        let session_op = matches!(op, TxnOp::CreateSession { .. } | TxnOp::CloseSession);
        if !session_op && self.disk_full() {
            let reason = format!(
                "less than {} bytes free under the log",
                self.config.disk_reserve_bytes
            );
            return Err((SubmitError::DiskFull(reason), owed));
        }
        // Under the lock `abandon_all` takes: either this write is owed before the
        // abandon (and is failed by it), or its connection is already closed.
        let mut pending = lock(&self.pending);
        if conn_closed.is_some_and(CancellationToken::is_cancelled) {
            return Err((SubmitError::Unavailable("connection closing".into()), owed));
        }
        // Numbered under the lock it is queued under: the write path receives writes in
        // the order of their numbers, and a write numbered below one already applied
        // would be taken for a copy (`ZkDatabase::apply`).
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        pending.insert(seq, owed);
        let txn = Txn {
            origin: Origin {
                server: self.server_id,
                seq,
            },
            session_id,
            xid,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            auth,
            enforce_quota: self.config.enforce_quota,
            extended_types: self.config.extended_types_enabled,
            x509_provider: self.config.client_tls.is_some(),
            sasl_provider: self.config.sasl.provider,
            op,
        };
        if let Err(e) = replicator.submit(txn) {
            return match pending.remove(&seq) {
                Some(owed) => Err((e, owed)),
                None => Err((e, Owed::Lost)),
            };
        }
        Ok(())
    }

    /// Whether a reply is still owed for the write with sequence number `seq`.
    pub fn owes(&self, seq: u64) -> bool {
        lock(&self.pending).contains_key(&seq)
    }

    /// Fails every owed reply and closes every client connection, atomically with
    /// respect to [`ServerCore::submit_on`] (the leader changed or was lost).
    pub fn abandon_all(&self, reason: &str) {
        let mut pending = lock(&self.pending);
        let conns = lock(&self.conns);
        if !pending.is_empty() || !conns.is_empty() {
            tracing::info!(
                owed = pending.len(),
                connections = conns.len(),
                reason,
                "dropping clients"
            );
        }
        for entry in conns.values() {
            entry.close.cancel();
        }
        pending.clear();
        self.abandons.fetch_add(1, Ordering::SeqCst);
    }

    /// How many times [`ServerCore::abandon_all`] ran: a write path that sent to a
    /// leader at count N knows, at N+1, that everything owed then has been failed.
    pub fn abandons(&self) -> u64 {
        self.abandons.load(Ordering::SeqCst)
    }

    /// Fails one owed reply (its write was refused); the connection sees the sender
    /// dropped and closes, and the client retries elsewhere.
    pub fn fail_request(&self, seq: u64) {
        lock(&self.pending).remove(&seq);
    }

    /// Fails every reply still owed (the write path stopped); callers see the sender
    /// dropped and answer ConnectionLoss-like errors.
    pub fn fail_pending(&self) {
        lock(&self.pending).clear();
    }

    /// Judges a reconfig request as ZooKeeper 3.8's `PrepRequestProcessor` does: first
    /// the request (a config version that is not the current one: BadVersion; a
    /// malformed or impossible membership: BadArguments), then the right to write
    /// `/zookeeper/config` (a super user alone, unless skipACL). Without
    /// reconfigEnabled, and always standalone, it is ReconfigDisabled. The leader
    /// judges the request again against the configuration it holds.
    pub fn check_reconfig(
        &self,
        request: &zk_proto::ReconfigRequest,
        auth: &[Id],
    ) -> Result<(), zk_proto::ErrorCode> {
        if !self.config.reconfig_enabled || self.role() == Role::Standalone {
            return Err(zk_proto::ErrorCode::ReconfigDisabled);
        }
        let (config_acl, config_data) = {
            let db = self.db();
            let node = db.tree().get(crate::tree::CONFIG_PATH);
            (
                node.map(|n| n.acl().to_vec()).unwrap_or_default(),
                node.and_then(|n| n.data()).unwrap_or_default(),
            )
        };
        let (current, version) = crate::replication::reconfig::parse_config_data(&config_data);
        crate::replication::reconfig::next_membership(&current, version, request)?;
        if !self.config.skip_acl && acl::check(&config_acl, Perms::WRITE, auth).is_err() {
            return Err(zk_proto::ErrorCode::NoAuth);
        }
        Ok(())
    }

    /// Carries out a reconfig judged by [`ServerCore::check_reconfig`] and builds its
    /// answer: the new `/zookeeper/config`, data and stat, once this member applied it.
    pub async fn reconfig_answer(
        &self,
        request: zk_proto::ReconfigRequest,
    ) -> Result<zk_proto::Response, zk_proto::ErrorCode> {
        self.reconfigure(request).await?;
        let db = self.db();
        let node = db
            .tree()
            .get(crate::tree::CONFIG_PATH)
            .ok_or(zk_proto::ErrorCode::SystemError)?;
        Ok(zk_proto::Response::GetData(zk_proto::GetDataResponse {
            data: node.data(),
            stat: node.stat(),
        }))
    }

    /// `sync`'s answer, once this server has applied the leader's commit point as of
    /// the call; `None` when that cannot be had within `within` (the connection is
    /// then closed, as for a lost write).
    pub async fn sync_answer(
        &self,
        path: String,
        within: std::time::Duration,
    ) -> Option<zk_proto::Response> {
        self.sync_point(within)
            .await
            .then_some(zk_proto::Response::Sync(zk_proto::SyncResponse { path }))
    }

    /// Applies a committed transaction: the change, its watch notifications (queued on
    /// their connections under the database lock), session bookkeeping, and the reply
    /// if this server proposed it — with the reads its connection sent after it
    /// evaluated there and then, before anything later is applied
    /// ([`crate::session_order`]).
    pub fn apply_committed(&self, zxid: i64, txn: &Txn) -> Applied {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        let applied = db.apply(zxid, txn);
        if !applied.events.is_empty() {
            let mut watches = lock(&self.watches);
            let conns = lock(&self.conns);
            for event in &applied.events {
                for (conn, notification) in watches.trigger(event) {
                    if let Some(entry) = conns.get(&conn) {
                        if acl::check(&event.acl, Perms::READ, &entry.auth).is_ok() {
                            deliver(entry, notification, self.config.max_client_output_bytes);
                        }
                    }
                }
            }
        }
        self.after_session_change(txn, &applied);
        self.applied.send_replace(db.last_zxid());
        if txn.origin.server == self.server_id {
            // Numbers stay above every write of this member's ever applied, whatever
            // the clock did across a restart (a lower one would be taken for a copy).
            self.next_seq
                .fetch_max(txn.origin.seq.saturating_add(1), Ordering::Relaxed);
            let owed = lock(&self.pending).remove(&txn.origin.seq);
            match owed {
                Some(Owed::Answer(answer)) => {
                    answer.answer(zxid, applied.result.clone(), &db, self)
                }
                Some(Owed::Reply(tx)) => {
                    let _ = tx.send((zxid, applied.clone()));
                }
                Some(Owed::Lost) | None => {}
            }
        }
        applied
    }

    /// Writes the ensemble's membership into `/zookeeper/config`.
    pub fn set_config_data(&self, data: bytes::Bytes) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.db
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_config_data(data, now);
    }

    /// Records that the log advanced without a transaction (consensus entries).
    pub fn advance_zxid(&self, zxid: i64) {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        db.advance_zxid(zxid);
        self.applied.send_replace(db.last_zxid());
    }

    /// Detaches a connection from its session before it asks to close the session, so
    /// the close does not cut it off before its reply is written.
    pub fn detach_session(&self, conn: ConnId) {
        if let Some(entry) = lock(&self.conns).get_mut(&conn) {
            entry.session_id = 0;
        }
    }

    /// Sets the session a connection carries (after its handshake). Another connection
    /// still carrying the same session is closed, as ZooKeeper closes it when a client
    /// reconnects (`DisconnectReason.CLIENT_RECONNECT`). A session held off by
    /// [`ServerCore::disconnect_session`] since its handshake began gets its connection
    /// closed at once.
    pub fn attach_session(&self, conn: ConnId, session_id: i64) {
        let mut conns = lock(&self.conns);
        if self.held_off_now(session_id) {
            if let Some(entry) = conns.get(&conn) {
                entry.close.cancel();
            }
        }
        for (id, entry) in conns.iter_mut() {
            if *id != conn && entry.session_id == session_id {
                tracing::info!(
                    session = format_args!("0x{session_id:x}"),
                    "session reconnected on another connection; closing the old one"
                );
                entry.session_id = 0;
                entry.close.cancel();
            }
        }
        if let Some(entry) = conns.get_mut(&conn) {
            entry.session_id = session_id;
        }
    }

    /// Drops every connection of this server that carries `session`, as a network
    /// failure would: the client sees its connection lost and reconnects with the same
    /// session, which lives on meanwhile (its deadline still runs). With
    /// `refuse_until`, this server also closes, without an answer, every reconnect of
    /// the session until then, as an unreachable server would. Returns how many
    /// connections were dropped. (Testing: `zk_server::testing`.)
    pub fn disconnect_session(&self, session: i64, refuse_until: Option<Instant>) -> usize {
        if let Some(until) = refuse_until {
            lock(&self.held_off).insert(session, until);
        }
        let dropped = self.close_connections_of(session);
        if dropped > 0 {
            tracing::info!(
                session = format_args!("0x{session:x}"),
                connections = dropped,
                refused_for_ms = refuse_until
                    .map(|u| u.saturating_duration_since(Instant::now()).as_millis() as u64),
                "dropping the session's connections"
            );
        }
        dropped
    }

    /// Whether this server refuses reconnects of `session` now
    /// ([`ServerCore::disconnect_session`]).
    pub fn session_held_off(&self, session: i64) -> bool {
        session != 0 && self.held_off_now(session)
    }

    fn held_off_now(&self, session: i64) -> bool {
        let mut held = lock(&self.held_off);
        match held.get(&session) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                held.remove(&session);
                false
            }
            None => false,
        }
    }

    /// Ends `session` the way its expiry does, on the member that expires sessions
    /// (the leader, or a standalone server): marks it closing in the
    /// [`SessionTracker`], so no touch or reconnect saves it any more, and proposes its
    /// close. Once applied, on every member, its ephemeral nodes are deleted (firing
    /// their watches) and its connections dropped; its client's reconnect is then
    /// answered as expired. `Ok(true)` when the close was proposed; `Ok(false)` when
    /// this server does not lead, or does not track the session, or its close is under
    /// way already.
    pub fn expire_session(&self, session: i64) -> Result<bool, SubmitError> {
        if !self.role().leads() || !self.tracker().begin_close(session) {
            return Ok(false);
        }
        tracing::info!(
            session = format_args!("0x{session:x}"),
            "expiring session on request"
        );
        self.propose_close(session).map(|()| true)
    }

    /// Proposes the close of `session`, already marked closing in the tracker (by its
    /// expiry or [`ServerCore::expire_session`]); if it cannot be proposed the mark is
    /// undone, so the session is neither saved by a touch nor stuck closing.
    pub(crate) fn propose_close(&self, session: i64) -> Result<(), SubmitError> {
        match self.submit(session, 0, Vec::new(), TxnOp::CloseSession) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.tracker().cancel_close(session);
                Err(e)
            }
        }
    }

    /// Closes every connection that carries `session`; how many there were.
    fn close_connections_of(&self, session: i64) -> usize {
        let conns = lock(&self.conns);
        let mut closed = 0;
        for entry in conns.values().filter(|c| c.session_id == session) {
            entry.close.cancel();
            closed += 1;
        }
        closed
    }

    fn after_session_change(&self, txn: &Txn, applied: &Applied) {
        if applied.result.is_err() {
            return;
        }
        match &txn.op {
            TxnOp::CreateSession { timeout, .. } => {
                self.tracker().add(txn.session_id, *timeout, Instant::now());
            }
            TxnOp::CloseSession => {
                self.tracker().remove(txn.session_id);
                // Connections still carrying the session are closed (expiry, or a close
                // sent through another server); the one that asked detached first.
                self.close_connections_of(txn.session_id);
            }
            _ => {}
        }
    }
}

/// Queues a notification; a connection too far behind (more than
/// [`NOTIFICATION_QUEUE`] notifications, or more than `max_bytes` of them, not yet
/// written) is closed instead, so a client that stopped reading cannot make the
/// server hold its output without bound.
fn deliver(entry: &ConnEntry, notification: WatcherEvent, max_bytes: usize) {
    if entry.close.is_cancelled() {
        return;
    }
    let size = notification_bytes(&notification);
    let queued = entry
        .counters
        .queued_bytes
        .fetch_add(size, Ordering::Relaxed)
        + size;
    let count = entry.counters.queued_events.fetch_add(1, Ordering::Relaxed) + 1;
    let over = (max_bytes > 0 && queued > max_bytes as u64) || count > NOTIFICATION_QUEUE as u64;
    if over || entry.outbox.send(Outgoing::Event(notification)).is_err() {
        entry
            .counters
            .queued_bytes
            .fetch_sub(size, Ordering::Relaxed);
        entry.counters.queued_events.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(
            session = format_args!("0x{:x}", entry.session_id),
            remote = %entry.remote,
            queued_bytes = queued,
            "connection is not reading its notifications; closing it"
        );
        entry.close.cancel();
    }
}
