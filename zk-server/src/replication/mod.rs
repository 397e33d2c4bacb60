//! Replication through openraft: the only module that names openraft's types, so its
//! API churn touches one place.
//!
//! - [`log_store`]: openraft's log storage over the segmented log.
//! - [`state_machine`]: applies committed entries to the server's database; snapshots.
//! - [`network`]: the standalone "network" (no peers).
//! - [`offline`]: the data directory with no server running (an import's first
//!   snapshot; a stopped member's state, for export).
//! - [`transport`]: messages between members over TCP (rmp-serde frames): openraft's
//!   RPCs, forwarded writes, session touches, read-index queries; fault injection.
//! - [`reconfig`]: dynamic reconfiguration as openraft membership changes.
//! - [`ensemble`]: starting a member of an ensemble from zoo.cfg's `server.N` lines,
//!   and keeping the server's role (leader, follower, observer, looking) current.
//! - `leader_loss`: an election as soon as the leader's process is seen gone.
//!
//! A standalone server is a one-member group: the same write path as an ensemble.

pub mod ensemble;
mod leader_loss;
pub mod log_store;
pub mod network;
pub mod offline;
pub mod peer_sasl;
pub mod reconfig;
pub mod state_machine;
pub mod transport;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::{Replicator, ServerCore, SubmitError};
use crate::txn::{zxid_of, Txn, TxnBatch, MAX_BATCH_TXNS};
use transport::{PeerFaults, PeerLink, PeerReply, PeerRequest};

openraft::declare_raft_types!(
    /// The openraft type configuration of a ZooKeeper server: log entries carry
    /// batches of [`Txn`]s ([`TxnBatch`]); replies travel through the server core, not
    /// openraft.
    pub TypeConfig:
        D = TxnBatch,
        R = (),
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// Errors starting replication.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// Storage could not be opened.
    #[error("storage: {0}")]
    Storage(#[from] io::Error),
    /// openraft refused to start or initialise.
    #[error("consensus: {0}")]
    Raft(String),
}

/// A running openraft member and its proposer.
#[derive(Clone)]
pub struct Replication {
    /// The openraft node.
    pub raft: Raft<TypeConfig>,
}

/// Where this member's log stands (the metrics report it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPositions {
    /// The last index in the log.
    pub last_log_index: u64,
    /// The last index applied to the tree here.
    pub last_applied: u64,
    /// The commit index as this member knows it: on the leader, the index a majority of
    /// voters hold; elsewhere what it applied.
    pub commit_index: u64,
    /// On the leader: how many entries each other member lacks.
    pub lag: Vec<(u64, u64)>,
}

impl Replication {
    /// Where the log stands now.
    pub fn positions(&self) -> LogPositions {
        let m = self.raft.metrics().borrow().clone();
        let last_log_index = m.last_log_index.unwrap_or(0);
        let last_applied = m.last_applied.map_or(0, |l| l.index);
        let mut positions = LogPositions {
            last_log_index,
            last_applied,
            commit_index: last_applied,
            lag: Vec::new(),
        };
        if let Some(replication) = &m.replication {
            let matched = |id: &u64| {
                if *id == m.id {
                    last_log_index
                } else {
                    replication
                        .get(id)
                        .copied()
                        .flatten()
                        .map_or(0, |l| l.index)
                }
            };
            for id in replication.keys().filter(|id| **id != m.id) {
                positions
                    .lag
                    .push((*id, last_log_index.saturating_sub(matched(id))));
            }
            let mut held: Vec<u64> = m
                .membership_config
                .membership()
                .voter_ids()
                .map(|id| matched(&id))
                .collect();
            held.sort_unstable_by(|a, b| b.cmp(a));
            if let Some(quorum) = held.get(held.len() / 2) {
                positions.commit_index = positions.commit_index.max(*quorum);
            }
        }
        positions
    }
}

/// The write path: submitted transactions go, in call order, to the leader — this
/// member's own openraft when it leads, else forwarded over the peer transport.
struct Proposer {
    core: std::sync::Weak<ServerCore>,
    tx: mpsc::UnboundedSender<Txn>,
    raft: Raft<TypeConfig>,
    me: u64,
    faults: PeerFaults,
}

impl Replicator for Proposer {
    fn submit(&self, txn: Txn) -> Result<(), SubmitError> {
        self.tx
            .send(txn)
            .map_err(|_| SubmitError::Unavailable("replication stopped".into()))
    }

    fn read_index(&self) -> BoxFuture<'static, Result<i64, SubmitError>> {
        let raft = self.raft.clone();
        let me = self.me;
        let ask = self.ask_leader(PeerRequest::ReadIndex);
        Box::pin(async move {
            let unavailable = || SubmitError::Unavailable("no leader to sync with".into());
            if leader_of(&raft).is_some_and(|(leader, _)| leader == me) {
                let (read, _) = raft.get_read_log_id().await.map_err(|_| unavailable())?;
                return Ok(zxid_of(read.map_or(0, |id| id.index), 0));
            }
            match ask.await {
                // The leader's log index: applied once its first zxid is.
                Ok(PeerReply::ReadIndex(Some(index))) => Ok(zxid_of(index, 0)),
                _ => Err(unavailable()),
            }
        })
    }

    fn reconfigure(
        &self,
        request: zk_proto::ReconfigRequest,
    ) -> BoxFuture<'static, Result<i64, zk_proto::ErrorCode>> {
        let raft = self.raft.clone();
        let me = self.me;
        let core = self.core.clone();
        let faults = self.faults.clone();
        let ask = self.ask_leader(PeerRequest::Reconfig(request.clone()));
        Box::pin(async move {
            let lost = zk_proto::ErrorCode::ConnectionLoss;
            if leader_of(&raft).is_some_and(|(leader, _)| leader == me) {
                let core = core.upgrade().ok_or(lost)?;
                return reconfig::reconfigure(&raft, &core, &faults, &request).await;
            }
            match ask.await {
                Ok(PeerReply::Reconfigured(result)) => result.map_err(|code| {
                    zk_proto::ErrorCode::from_code(code).unwrap_or(zk_proto::ErrorCode::SystemError)
                }),
                _ => Err(lost),
            }
        })
    }

    fn revalidate(
        &self,
        session: i64,
        owner: u64,
    ) -> BoxFuture<'static, Result<Option<bool>, SubmitError>> {
        let ask = self.ask_leader(PeerRequest::Revalidate { session, owner });
        Box::pin(async move {
            match ask.await {
                Ok(PeerReply::Revalidated(answer)) => Ok(answer),
                _ => Err(SubmitError::Unavailable(
                    "no leader to revalidate with".into(),
                )),
            }
        })
    }
}

impl Proposer {
    /// Sends `request` to the leader (over the connection every request to it shares).
    fn ask_leader(&self, request: PeerRequest) -> BoxFuture<'static, std::io::Result<PeerReply>> {
        let raft = self.raft.clone();
        let me = self.me;
        let faults = self.faults.clone();
        Box::pin(async move {
            let (leader, addr) = leader_of(&raft)
                .filter(|(leader, _)| *leader != me)
                .ok_or_else(|| std::io::Error::other("no other member leads"))?;
            PeerLink::new(me, leader, addr, faults)
                .exchange(&request, FORWARD_TIMEOUT)
                .await
        })
    }
}

/// How long a forwarded batch may take to commit before its writes are failed.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes taken from the queue into one batch (one forwarded message, one log
/// entry) at most.
const FORWARD_BATCH: usize = if MAX_BATCH_TXNS < 1024 {
    MAX_BATCH_TXNS
} else {
    1024
};

/// A batch stops growing once it carries this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// Log entries handed to openraft and not yet applied, at most: while they are
/// written and replicated, later writes gather into the next batch (group commit).
const ENTRIES_IN_FLIGHT: usize = 4;

/// The current leader and its peer address, as this member knows them.
fn leader_of(raft: &Raft<TypeConfig>) -> Option<(u64, String)> {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let leader = m.current_leader?;
    let addr = m
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())?;
    Some((leader, addr))
}

/// Counts a transaction this member proposes as leader (the four-letter words'
/// proposal sizes): its size as the log stores it.
fn count_proposal(core: &ServerCore, batch: &[Txn]) {
    // A standalone server has no proposals to report (ZooKeeper's has none either).
    if core.role() != crate::role::Role::Leader {
        return;
    }
    // One proposal per log entry: the batch.
    let bytes: usize = batch.iter().map(Txn::approx_bytes).sum();
    core.stats.record_proposal(bytes as u64);
}

/// Whether this member leads now.
fn leads(raft: &Raft<TypeConfig>, me: u64) -> bool {
    leader_of(raft).is_some_and(|(leader, _)| leader == me)
}

/// The node id a standalone server uses in its one-member group.
pub const STANDALONE_NODE_ID: u64 = 1;

/// openraft's timing: heartbeats every `raftHeartbeatMs`, elections after
/// `raftElectionTimeoutMs` to twice that without one (openraft adds the leader's
/// lease, the longer timeout, while a leader is known).
fn raft_config(
    snap_count: u64,
    config: &crate::config::ServerConfig,
) -> Result<Arc<Config>, ReplicationError> {
    let heartbeat = config.raft_heartbeat_ms.max(1);
    let election = config.raft_election_timeout_ms;
    let config = Config {
        cluster_name: "zk-rs".into(),
        heartbeat_interval: heartbeat,
        election_timeout_min: election,
        election_timeout_max: election * 2,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snap_count.max(1)),
        // Keep one snapshot interval of log behind the snapshot (lagging members catch
        // up from it), purge the rest.
        max_in_snapshot_log_to_keep: snap_count.max(1),
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| ReplicationError::Raft(e.to_string()))
}

fn raft_error(e: impl std::fmt::Display) -> ReplicationError {
    ReplicationError::Raft(e.to_string())
}

/// Opens the log store under `dataLogDir` (or `dataDir`) and the snapshot store under
/// `dataDir`, as `core`'s configuration places them.
///
/// Refuses a `dataLogDir` whose log store is empty while `dataDir` holds one: the
/// log was written before `dataLogDir` was set, and starting without it would lose
/// every entry not yet in a snapshot (move `dataDir/log` to `dataLogDir/log` first).
pub(crate) fn open_storage(
    core: &Arc<ServerCore>,
) -> Result<(log_store::LogStore, state_machine::StateMachine), ReplicationError> {
    let config = &core.config;
    let log_dir = config.log_store_dir();
    let in_data_dir = config.data_dir.join("log");
    if log_dir != in_data_dir && !has_files(&log_dir) && has_files(&in_data_dir) {
        return Err(ReplicationError::Storage(io::Error::other(format!(
            "dataLogDir is {} but the log is in {}: move it there (or unset dataLogDir)",
            config.log_dir().display(),
            in_data_dir.display()
        ))));
    }
    let log_store = log_store::LogStore::open(&log_dir)?;
    log_store.time_appends(core.metrics.fsync.clone());
    let failing = Arc::downgrade(core);
    log_store.on_failure(Arc::new(move |what: &str, error: &str| {
        if let Some(core) = failing.upgrade() {
            core.storage_failure(what, &error);
        }
    }));
    let state_machine = state_machine::StateMachine::open(core.clone(), &config.snapshot_dir())?;
    Ok((log_store, state_machine))
}

/// Whether `dir` exists and holds anything.
fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Opens storage (see [`open_storage`]), starts a one-member group, waits until it
/// leads and has applied everything in its log, and connects `core`'s write path to it.
pub async fn start_standalone(
    core: Arc<ServerCore>,
    shutdown: CancellationToken,
) -> Result<Replication, ReplicationError> {
    let (log_store, state_machine) = open_storage(&core)?;
    let last_index = log_store.last_index();
    let config = raft_config(core.config.snap_count, &core.config)?;
    let raft = Raft::new(
        STANDALONE_NODE_ID,
        config,
        network::NoPeers,
        log_store,
        state_machine,
    )
    .await
    .map_err(raft_error)?;
    let initialized = raft.is_initialized().await.map_err(raft_error)?;
    if !initialized {
        let mut members = BTreeMap::new();
        members.insert(STANDALONE_NODE_ID, BasicNode::new("standalone"));
        raft.initialize(members).await.map_err(raft_error)?;
    }
    // Lead, then catch up with the log before serving anyone: a client that saw zxid
    // N must find N applied here.
    let leading = raft
        .wait(Some(Duration::from_secs(30)))
        .state(ServerState::Leader, "standalone leads")
        .await;
    if let Err(e) = leading {
        return Err(ReplicationError::Raft(format!(
            "did not become leader: {e}"
        )));
    }
    if let Some(index) = last_index {
        raft.wait(Some(Duration::from_secs(300)))
            .applied_index_at_least(Some(index), "recovery")
            .await
            .map_err(|e| ReplicationError::Raft(format!("recovery did not finish: {e}")))?;
    }
    connect_write_path(
        &core,
        &raft,
        STANDALONE_NODE_ID,
        PeerFaults::default(),
        shutdown,
    );
    Ok(Replication { raft })
}

/// Connects `core`'s write path to `raft` (member `me`).
fn connect_write_path(
    core: &Arc<ServerCore>,
    raft: &Raft<TypeConfig>,
    me: u64,
    faults: PeerFaults,
    shutdown: CancellationToken,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    core.set_replicator(Arc::new(Proposer {
        core: Arc::downgrade(core),
        tx,
        raft: raft.clone(),
        me,
        faults: faults.clone(),
    }));
    tokio::spawn(propose(
        raft.clone(),
        core.clone(),
        me,
        faults,
        rx,
        shutdown,
    ));
}

/// Feeds submitted transactions to the leader in order: to openraft when this member
/// leads (`client_write_ff` enqueues without waiting, so writes pipeline), else in
/// batches over the peer transport. A write that cannot be placed fails its client's
/// reply. When the leader changes, every reply still owed is failed and every client
/// dropped first (as ZooKeeper does): a session's later write must never commit after
/// an earlier one was lost.
async fn propose(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    me: u64,
    faults: PeerFaults,
    mut rx: mpsc::UnboundedReceiver<Txn>,
    shutdown: CancellationToken,
) {
    let mut in_flight = FuturesUnordered::new();
    // Batches forwarded and not yet answered, oldest first; all went over one
    // connection (`pinned`), so the leader appended them in the order sent.
    let mut forwarding: FuturesOrdered<BoxFuture<'static, Forwarded>> = FuturesOrdered::new();
    let mut pinned: Option<(u64, u64)> = None;
    // The leader this member last sent writes to, and the abandon count then.
    let mut used: Option<(u64, u64)> = None;
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some((seqs, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                let seqs: Vec<u64> = seqs;
                let outcome: Result<Result<_, _>, _> = outcome;
                if !matches!(outcome, Ok(Ok(_))) {
                    for seq in seqs {
                        core.fail_request(seq);
                    }
                }
                continue;
            }
            Some(done) = forwarding.next(), if !forwarding.is_empty() => {
                settle(&core, done);
                if forwarding.is_empty() {
                    pinned = None;
                }
                continue;
            }
            txn = rx.recv(), if forwarding.len() < MAX_FORWARDS_IN_FLIGHT
                && (in_flight.len() < ENTRIES_IN_FLIGHT || !leads(&raft, me)) => match txn {
                Some(txn) => txn,
                None => break,
            },
        };
        let mut bytes = first.approx_bytes();
        let mut batch = vec![first];
        while batch.len() < FORWARD_BATCH && bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(txn) => {
                    bytes += txn.approx_bytes();
                    batch.push(txn);
                }
                Err(_) => break,
            }
        }
        let leader = leader_of(&raft);
        let leader_id = leader.as_ref().map(|(id, _)| *id);
        if leader_id != Some(me) && !in_flight.is_empty() {
            // Entries proposed while this member led may never be answered by openraft
            // once it stopped leading; their replies were failed with its clients (or
            // come through apply if the entries commit): stop waiting for them.
            in_flight = FuturesUnordered::new();
        }
        if let (Some(now), Some((before, abandons))) = (leader_id, used) {
            // Writes sent to the old leader may be lost while later ones commit with
            // the new one, unless their clients were dropped since (the role watcher
            // usually got there first).
            if now != before && core.abandons() == abandons {
                core.abandon_all("the leader changed");
            }
        }
        if let Some(now) = leader_id {
            used = Some((now, core.abandons()));
        }
        // Writes whose replies were failed (their connection is gone) are dropped.
        batch.retain(|txn| core.owes(txn.origin.seq));
        if batch.is_empty() {
            continue;
        }
        match leader {
            None => {
                for txn in &batch {
                    core.fail_request(txn.origin.seq);
                }
            }
            Some((leader, _)) if leader == me => {
                batch.retain(|txn| {
                    let moved = core.moved(txn);
                    if moved {
                        core.fail_request(txn.origin.seq);
                    }
                    !moved
                });
                if batch.is_empty() {
                    continue;
                }
                count_proposal(&core, &batch);
                let seqs: Vec<u64> = batch.iter().map(|t| t.origin.seq).collect();
                match raft.client_write_ff(TxnBatch(batch)).await {
                    Ok(receiver) => in_flight.push(async move { (seqs, receiver.await) }),
                    Err(e) => {
                        tracing::warn!(error = %e, "consensus refused a write");
                        for seq in seqs {
                            core.fail_request(seq);
                        }
                    }
                }
            }
            Some((leader, addr)) => {
                let link = PeerLink::new(me, leader, addr, faults.clone());
                let seqs: Vec<u64> = batch.iter().map(|t| t.origin.seq).collect();
                let abandons = core.abandons();
                // Behind batches still in flight, only over their connection.
                let same = pinned.filter(|(to, _)| *to == leader).map(|(_, c)| c);
                let same = if forwarding.is_empty() { None } else { same };
                match link
                    .send(&PeerRequest::Forward(batch), FORWARD_TIMEOUT, same)
                    .await
                {
                    Ok((connection, reply)) => {
                        pinned = Some((leader, connection));
                        let mut metrics = raft.metrics();
                        forwarding.push_back(Box::pin(async move {
                            let reply = tokio::select! {
                                r = reply => r,
                                // A leader that loses its title may never answer.
                                _ = metrics.wait_for(|m| m.current_leader != Some(leader)) => {
                                    Err(std::io::Error::other("the leader changed"))
                                }
                            };
                            Forwarded {
                                leader,
                                seqs,
                                abandons,
                                reply,
                            }
                        }));
                    }
                    Err(e) => settle(
                        &core,
                        Forwarded {
                            leader,
                            seqs,
                            abandons,
                            reply: Err(e),
                        },
                    ),
                }
            }
        }
    }
    core.fail_pending();
}

/// Forwarded batches in flight at most (backpressure on a slow leader).
const MAX_FORWARDS_IN_FLIGHT: usize = 16;

/// The outcome of one forwarded batch.
struct Forwarded {
    leader: u64,
    seqs: Vec<u64>,
    /// The abandon count when it was sent.
    abandons: u64,
    reply: std::io::Result<PeerReply>,
}

/// Acts on a forwarded batch's outcome. A write whose session moved on fails alone
/// (its connection closes: ZooKeeper's SessionMoved); anything else that failed drops
/// every client, unless that already happened since the batch was sent.
fn settle(core: &ServerCore, done: Forwarded) {
    let failed = match done.reply {
        Ok(PeerReply::Forwarded { refused, moved }) => {
            for seq in moved {
                core.fail_request(seq);
            }
            if refused.is_empty() {
                return;
            }
            "the leader refused forwarded writes".to_string()
        }
        Ok(_) => "the leader answered a forward with something else".to_string(),
        Err(e) => format!("forwarding to the leader failed: {e}"),
    };
    tracing::info!(leader = done.leader, failed, "forwarded writes lost");
    for seq in done.seqs {
        core.fail_request(seq);
    }
    if core.abandons() == done.abandons {
        core.abandon_all(&failed);
    }
}

#[cfg(test)]
mod conformance {
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::StorageError;

    use super::log_store::LogStore;
    use super::state_machine::StateMachine;
    use super::TypeConfig;
    use crate::core::ServerCore;
    use crate::database::ZkDatabase;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
            let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(&e))?;
            let config = crate::testing::test_config(dir.path());
            let core = ServerCore::new(config, 0, ZkDatabase::new());
            let log = LogStore::open(&dir.path().join("log"))
                .map_err(|e| openraft::StorageIOError::write(&e))?;
            let sm = StateMachine::open(core, &dir.path().join("snapshots"))
                .map_err(|e| openraft::StorageIOError::write(&e))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own storage conformance suite, against our log store and state
    /// machine (on disk, in a temporary directory per case).
    #[test]
    fn openraft_storage_suite() {
        if let Err(e) = Suite::test_all(Builder) {
            panic!("openraft storage suite failed: {e}");
        }
    }
}

#[cfg(test)]
mod three_members {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use openraft::{BasicNode, Raft};
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;
    use zk_proto::{Acl, CreateRequest, OpCode};

    use super::log_store::LogStore;
    use super::state_machine::StateMachine;
    use super::transport::{serve_peers, PeerFaults, TcpPeers};
    use super::{connect_write_path, raft_config, TypeConfig};
    use crate::core::ServerCore;
    use crate::database::ZkDatabase;
    use crate::txn::TxnOp;

    struct Member {
        core: Arc<ServerCore>,
        raft: Raft<TypeConfig>,
        stop: CancellationToken,
        _dir: tempfile::TempDir,
    }

    async fn member(id: u64, listener: TcpListener) -> Member {
        let dir = tempfile::tempdir().unwrap();
        let core = ServerCore::new(
            crate::testing::test_config(dir.path()),
            id,
            ZkDatabase::new(),
        );
        let log = LogStore::open(&dir.path().join("log")).unwrap();
        let sm = StateMachine::open(core.clone(), &dir.path().join("snapshots")).unwrap();
        let faults = PeerFaults::default();
        let raft = Raft::new(
            id,
            raft_config(1000, &crate::testing::test_config(dir.path())).unwrap(),
            TcpPeers::new(id, faults.clone()),
            log,
            sm,
        )
        .await
        .unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve_peers(
            raft.clone(),
            core.clone(),
            listener,
            faults.clone(),
            stop.clone(),
        ));
        connect_write_path(&core, &raft, id, faults, stop.clone());
        Member {
            core,
            raft,
            stop,
            _dir: dir,
        }
    }

    fn create(path: &str) -> TxnOp {
        TxnOp::Create {
            opcode: OpCode::Create,
            request: CreateRequest {
                path: path.into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        }
    }

    async fn applied_everywhere(members: &[&Member], path: &str) -> bool {
        for _ in 0..100 {
            if members
                .iter()
                .all(|m| m.core.db().tree().get(path).is_some())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Writes commit on a majority over TCP and are applied on every member; with one
    /// member down they still commit; with two down (no majority) they do not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_commit_on_a_majority_and_apply_everywhere() {
        let mut listeners = Vec::new();
        let mut nodes = BTreeMap::new();
        for id in 1..=3u64 {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            nodes.insert(id, BasicNode::new(l.local_addr().unwrap().to_string()));
            listeners.push((id, l));
        }
        let mut members = Vec::new();
        for (id, l) in listeners {
            members.push(member(id, l).await);
        }
        members[0].raft.initialize(nodes).await.unwrap();
        let leader = members[0]
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .unwrap()
            .current_leader
            .unwrap();
        let l = (leader - 1) as usize;
        let session = 0x0100_0000_0000_0001;
        let opened = members[l]
            .core
            .submit(
                session,
                0,
                vec![],
                TxnOp::CreateSession {
                    timeout: 30000,
                    passwd: bytes::Bytes::from_static(&[1; 16]),
                },
            )
            .unwrap();
        assert!(opened.await.unwrap().1.result.is_ok());
        let (_, applied) = members[l]
            .core
            .submit(session, 1, vec![], create("/a"))
            .unwrap()
            .await
            .unwrap();
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        assert!(applied_everywhere(&members.iter().collect::<Vec<_>>(), "/a").await);
        // Same zxid, same Stat on every member.
        let stats: Vec<_> = members
            .iter()
            .map(|m| m.core.db().tree().stat("/a"))
            .collect();
        assert!(stats.windows(2).all(|w| w[0] == w[1]), "{stats:?}");

        // One follower down: a majority remains.
        let followers: Vec<usize> = (0..3).filter(|i| *i != l).collect();
        let down = &members[followers[0]];
        down.stop.cancel();
        down.raft.shutdown().await.unwrap();
        let (_, applied) = members[l]
            .core
            .submit(session, 2, vec![], create("/b"))
            .unwrap()
            .await
            .unwrap();
        assert!(applied.result.is_ok());
        assert!(applied_everywhere(&[&members[l], &members[followers[1]]], "/b").await);

        // Both followers down: no majority, nothing commits.
        let down = &members[followers[1]];
        down.stop.cancel();
        down.raft.shutdown().await.unwrap();
        let pending = members[l]
            .core
            .submit(session, 3, vec![], create("/c"))
            .unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(2), pending).await;
        assert!(
            outcome.is_err() || outcome.unwrap().is_err(),
            "a write committed without a majority"
        );
        assert!(members[l].core.db().tree().get("/c").is_none());
        for m in &members {
            m.stop.cancel();
        }
        let _ = members[l].raft.shutdown().await;
    }
}
