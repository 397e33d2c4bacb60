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

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use zk_proto::{Id, Perms, WatcherEvent};

use crate::acl;
use crate::config::ServerConfig;
use crate::database::{Applied, ZkDatabase};
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
}

/// The consensus log, seen from the server: submit transactions in order; committed
/// ones come back through [`ServerCore::apply_committed`].
pub trait Replicator: Send + Sync + 'static {
    /// Appends `txn` to the log after every transaction submitted before it.
    fn submit(&self, txn: Txn) -> Result<(), SubmitError>;
}

/// Capacity of a connection's notification queue; a connection that falls this far
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
    /// Where its watch notifications go.
    pub notifications: mpsc::Sender<WatcherEvent>,
    /// Cancelled to close the connection (session ended, taken over, too slow).
    pub close: CancellationToken,
    /// When it connected.
    pub since: Instant,
    /// Its packet counters (`cons`, `stat`).
    pub counters: Arc<ConnCounters>,
}

/// Per-connection packet counters.
#[derive(Debug, Default)]
pub struct ConnCounters {
    /// Packets received.
    pub received: AtomicU64,
    /// Packets sent.
    pub sent: AtomicU64,
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
    pending: Mutex<HashMap<u64, oneshot::Sender<(i64, Applied)>>>,
    tracker: Mutex<SessionTracker>,
    session_ids: Mutex<SessionIdGenerator>,
    next_seq: AtomicU64,
    next_conn: AtomicU64,
    replicator: OnceLock<Arc<dyn Replicator>>,
    /// Counters for the four-letter words.
    pub stats: ServerStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks is a bug; keep serving rather than
    // poisoning every later request.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ServerCore {
    /// A core over `db` (recovered or new).
    pub fn new(config: ServerConfig, server_id: u64, db: ZkDatabase) -> Arc<ServerCore> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Arc::new(ServerCore {
            config,
            server_id,
            db: RwLock::new(db),
            watches: Mutex::new(WatchManager::new()),
            conns: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            tracker: Mutex::new(SessionTracker::new()),
            session_ids: Mutex::new(SessionIdGenerator::new(server_id)),
            // Unique across restarts: replies are routed by (server, seq).
            next_seq: AtomicU64::new(now_ms << 16),
            next_conn: AtomicU64::new(1),
            replicator: OnceLock::new(),
            stats: ServerStats::default(),
        })
    }

    /// Connects the write path (once, at start-up).
    pub fn set_replicator(&self, replicator: Arc<dyn Replicator>) {
        let _ = self.replicator.set(replicator);
    }

    /// Reads the database (reads, 4lw, tests).
    pub fn db(&self) -> RwLockReadGuard<'_, ZkDatabase> {
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole database (snapshot install); every watch is dropped with it
    /// since the client will re-register on reconnect.
    pub fn install_database(&self, db: ZkDatabase) {
        let mut guard = self.db.write().unwrap_or_else(|e| e.into_inner());
        *guard = db;
    }

    /// The watches (under the database lock when consistency with a read matters).
    pub fn watches(&self) -> MutexGuard<'_, WatchManager> {
        lock(&self.watches)
    }

    /// Session liveness.
    pub fn tracker(&self) -> MutexGuard<'_, SessionTracker> {
        lock(&self.tracker)
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
        let replicator = self
            .replicator
            .get()
            .ok_or_else(|| SubmitError::Unavailable("write path not started".into()))?;
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(seq, tx);
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
            op,
        };
        if let Err(e) = replicator.submit(txn) {
            lock(&self.pending).remove(&seq);
            return Err(e);
        }
        Ok(rx)
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

    /// Applies a committed transaction: the change, its watch notifications (queued on
    /// their connections under the database lock), session bookkeeping, and the reply
    /// if this server proposed it.
    pub fn apply_committed(&self, zxid: i64, txn: &Txn) -> Applied {
        let applied = {
            let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
            let applied = db.apply(zxid, txn);
            if !applied.events.is_empty() {
                let mut watches = lock(&self.watches);
                let conns = lock(&self.conns);
                for event in &applied.events {
                    for (conn, notification) in watches.trigger(event) {
                        if let Some(entry) = conns.get(&conn) {
                            if acl::check(&event.acl, Perms::READ, &entry.auth).is_ok() {
                                deliver(entry, notification);
                            }
                        }
                    }
                }
            }
            self.after_session_change(txn, &applied);
            applied
        };
        if txn.origin.server == self.server_id {
            if let Some(tx) = lock(&self.pending).remove(&txn.origin.seq) {
                let _ = tx.send((zxid, applied.clone()));
            }
        }
        applied
    }

    /// Records that the log advanced without a transaction (consensus entries).
    pub fn advance_zxid(&self, zxid: i64) {
        self.db
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .advance_zxid(zxid);
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
    /// reconnects (`DisconnectReason.CLIENT_RECONNECT`).
    pub fn attach_session(&self, conn: ConnId, session_id: i64) {
        let mut conns = lock(&self.conns);
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
                let conns = lock(&self.conns);
                for entry in conns.values().filter(|c| c.session_id == txn.session_id) {
                    entry.close.cancel();
                }
            }
            _ => {}
        }
    }
}

/// Queues a notification; a connection too far behind is closed instead.
fn deliver(entry: &ConnEntry, notification: WatcherEvent) {
    if entry.notifications.try_send(notification).is_err() {
        tracing::warn!(
            session = format_args!("0x{:x}", entry.session_id),
            remote = %entry.remote,
            "connection is not reading its notifications; closing it"
        );
        entry.close.cancel();
    }
}
