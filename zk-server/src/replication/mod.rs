//! Replication through openraft: the only module that names openraft's types, so its
//! API churn touches one place.
//!
//! - [`log_store`]: openraft's log storage over the segmented log.
//! - [`state_machine`]: applies committed entries to the server's database; snapshots.
//! - [`network`]: openraft's network — none for a standalone server, the links to
//!   the peers for a member of an ensemble.
//! - [`offline`]: the data directory with no server running (an import's first
//!   snapshot; a stopped member's state, for export).
//! - `write_path`: submitted writes to the leader, in order, through leader changes.
//! - [`wire`]: what members say to each other (openraft's RPCs, forwarded writes,
//!   session touches, read-index queries, reconfig) and its framing (length-prefixed
//!   rmp-serde); bytes and frames only.
//! - [`links`]: one multiplexed, pipelined TCP connection per pair of members (TLS and
//!   quorum SASL when configured), reconnecting with backoff; fault injection.
//! - [`peer_service`]: this member's answers to its peers' requests.
//! - [`peer_sasl`]: the quorum SASL handshake at the start of each link.
//! - [`reconfig`]: dynamic reconfiguration as openraft membership changes.
//! - [`ensemble`]: starting a member of an ensemble from zoo.cfg's `server.N` lines,
//!   and keeping the server's role (leader, follower, observer, looking) current.
//! - [`election`]: when to elect: pre-vote, and at once when the leader's process is
//!   seen gone.
//!
//! A standalone server is a one-member group: the same write path as an ensemble.

pub mod election;
pub mod ensemble;
pub mod links;
pub mod log_store;
pub mod network;
pub mod offline;
pub mod peer_sasl;
pub mod peer_service;
pub mod reconfig;
pub mod state_machine;
pub mod wire;
mod write_path;

use write_path::connect_write_path;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use tokio_util::sync::CancellationToken;

use crate::core::ServerCore;
use crate::txn::{Txn, TxnBatch};
use links::PeerFaults;

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

/// The node id a standalone server uses in its one-member group.
pub const STANDALONE_NODE_ID: u64 = 1;

/// How an openraft member elects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elections {
    /// By openraft's own timer (a standalone server, the only voter of its group).
    Timer,
    /// Only when [`election::Elector`] says so (members of an ensemble).
    PreVote,
}

/// openraft's timing: heartbeats every `raftHeartbeatMs`. With openraft's own timer,
/// elections after `raftElectionTimeoutMs` to twice that without one (openraft adds
/// the leader's lease, the longer timeout, while a leader is known). With pre-votes,
/// openraft's timer is off and its timeouts set only its leader lease (the longer)
/// and how long a vote request may take (the shorter): just over a heartbeat.
fn raft_config(
    snap_count: u64,
    config: &crate::config::ServerConfig,
    elections: Elections,
) -> Result<Arc<Config>, ReplicationError> {
    let heartbeat = config.raft_heartbeat_ms.max(1);
    let (min, max) = match elections {
        Elections::Timer => (
            config.raft_election_timeout_ms,
            config.raft_election_timeout_ms * 2,
        ),
        Elections::PreVote => {
            let min = (heartbeat * 3 / 2).max(heartbeat + 1);
            (min, min + 1)
        }
    };
    let config = Config {
        cluster_name: "zk-rs".into(),
        heartbeat_interval: heartbeat,
        election_timeout_min: min,
        election_timeout_max: max,
        enable_elect: elections == Elections::Timer,
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
    let log_store = log_store::LogStore::open(&log_dir, config.log_sizing())?;
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
    let own_writes_synced = log_store.watch_own_writes(core.server_id);
    let config = raft_config(core.config.snap_count, &core.config, Elections::Timer)?;
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
        own_writes_synced,
        shutdown,
    );
    Ok(Replication { raft })
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
            let log = LogStore::open(&dir.path().join("log"), core.config.log_sizing())
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

    use super::election::Elector;
    use super::links::PeerFaults;
    use super::log_store::LogStore;
    use super::network::TcpPeers;
    use super::peer_service::{serve_peers, PeerService};
    use super::state_machine::StateMachine;
    use super::{connect_write_path, raft_config, Elections, TypeConfig};
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
        let log = LogStore::open(&dir.path().join("log"), core.config.log_sizing()).unwrap();
        let own_writes_synced = log.watch_own_writes(core.server_id);
        let sm = StateMachine::open(core.clone(), &dir.path().join("snapshots")).unwrap();
        let faults = PeerFaults::default();
        let config = crate::testing::test_config(dir.path());
        let config = raft_config(1000, &config, Elections::PreVote).unwrap();
        let elector = Elector::new(id, &config, Duration::from_millis(150));
        let service = PeerService {
            elector: elector.clone(),
            log: log.clone(),
        };
        let raft = Raft::new(
            id,
            config,
            TcpPeers::new(id, faults.clone()),
            log.clone(),
            sm,
        )
        .await
        .unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve_peers(
            raft.clone(),
            core.clone(),
            service,
            listener,
            faults.clone(),
            stop.clone(),
        ));
        tokio::spawn(elector.run(
            raft.clone(),
            core.clone(),
            log,
            faults.clone(),
            stop.clone(),
        ));
        connect_write_path(&core, &raft, id, faults, own_writes_synced, stop.clone());
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
