//! A member of an ensemble: openraft over the TCP peer transport, with the members
//! of zoo.cfg's `server.N` lines (participants vote; observers are openraft learners
//! that the leader adds). Beside consensus, three tasks keep the ensemble's
//! ZooKeeper semantics:
//!
//! - the role watcher: leader / follower / observer / looking from openraft's metrics
//!   and the elector (a follower that no longer hears its leader has none), a
//!   leader's periodic check that a quorum still follows it (ZooKeeper's leader steps
//!   down when it loses its followers; openraft's would keep its title), every client
//!   dropped after `syncLimit × tickTime` without a leader (not when the leader merely
//!   changes: see `write_path`), fresh session timeouts on a new leader, observers
//!   added as learners, the term and the leaders seen for mntr;
//! - the elector ([`super::election`]): pre-votes, and when to elect;
//! - the touch sender: a follower's or observer's clients keep their sessions alive on
//!   the leader, which alone expires sessions;
//! - the proposer (in `replication`): writes forwarded to the leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft, RaftMetrics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::election::Elector;
use super::links::{PeerFaults, PeerLink};
use super::network::TcpPeers;
use super::peer_service::{serve_peers, PeerService};
use super::wire::{PeerReply, PeerRequest};
use super::{
    connect_write_path, leader_of, raft_config, raft_error, Elections, Replication,
    ReplicationError, TypeConfig,
};
use crate::config::{PeerRole, ServerConfig};
use crate::core::ServerCore;
use crate::role::{QuorumView, Role};

/// The ensemble as this member's configuration describes it.
#[derive(Debug, Clone)]
pub struct EnsembleSpec {
    /// This member's id (myid).
    pub me: u64,
    /// Voting members and their peer addresses.
    pub voters: BTreeMap<u64, BasicNode>,
    /// Observers and their peer addresses.
    pub observers: BTreeMap<u64, BasicNode>,
}

impl EnsembleSpec {
    /// From zoo.cfg's `server.N` lines and myid.
    pub fn from_config(config: &ServerConfig) -> Result<EnsembleSpec, ReplicationError> {
        let me = config.my_id.ok_or_else(|| {
            ReplicationError::Raft("server.N lines need a myid in dataDir".into())
        })?;
        if !config.peers.contains_key(&me) {
            return Err(ReplicationError::Raft(format!(
                "myid {me} has no server.{me} line"
            )));
        }
        let mut voters = BTreeMap::new();
        let mut observers = BTreeMap::new();
        for (id, peer) in &config.peers {
            let node = BasicNode::new(peer.peer_addr());
            match peer.role {
                PeerRole::Participant => voters.insert(*id, node),
                PeerRole::Observer => observers.insert(*id, node),
            };
        }
        if voters.is_empty() {
            return Err(ReplicationError::Raft(
                "no participant among server.N".into(),
            ));
        }
        Ok(EnsembleSpec {
            me,
            voters,
            observers,
        })
    }

    fn is_observer(&self) -> bool {
        self.observers.contains_key(&self.me)
    }
}

/// `/zookeeper/config` as ZooKeeper 3.8 writes it for a static configuration: one
/// `server.N=host:peer:election:role[;clientAddress]` line per member, then
/// `version=0`, no trailing newline.
pub fn config_data(config: &ServerConfig) -> Bytes {
    let mut lines: Vec<String> = config.peers.iter().map(|(id, p)| p.to_line(*id)).collect();
    lines.push("version=0".into());
    Bytes::from(lines.join("\n"))
}

/// Starts this member: storage where its configuration places it, openraft over TCP
/// (answering peers on `peer_listener`), the write path and the role and touch tasks.
/// Returns without waiting for a leader; until there is one the client port turns
/// clients away.
pub async fn start_ensemble(
    core: Arc<ServerCore>,
    spec: EnsembleSpec,
    peer_listener: TcpListener,
    faults: PeerFaults,
    shutdown: CancellationToken,
) -> Result<Replication, ReplicationError> {
    core.set_quorum(QuorumView {
        role: Role::Looking,
        ..QuorumView::standalone()
    });
    core.set_config_data(config_data(&core.config));
    let (log_store, state_machine) = super::open_storage(&core)?;
    let own_writes_synced = log_store.watch_own_writes(core.server_id);
    let config = raft_config(core.config.snap_count, &core.config, Elections::PreVote)?;
    let timing = Timing::of(&config);
    let elector = Elector::new(
        spec.me,
        &config,
        Duration::from_millis(core.config.raft_election_timeout_ms),
    );
    let log = log_store.clone();
    let raft = Raft::new(
        spec.me,
        config,
        TcpPeers::new(spec.me, faults.clone()),
        log_store,
        state_machine,
    )
    .await
    .map_err(raft_error)?;
    let service = PeerService {
        elector: elector.clone(),
        log: log.clone(),
    };
    tokio::spawn(serve_peers(
        raft.clone(),
        core.clone(),
        service,
        peer_listener,
        faults.clone(),
        shutdown.clone(),
    ));
    // Every participant of a new ensemble initialises with the same voters (safe in
    // openraft). A member that already has a log, or whose peers already formed a
    // group (it joins through reconfig, or lost its data), waits for the leader.
    if !spec.is_observer()
        && !raft.is_initialized().await.map_err(raft_error)?
        && !peers_formed_a_group(&spec, &faults).await
    {
        match raft.initialize(spec.voters.clone()).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => return Err(raft_error(e)),
        }
    }
    connect_write_path(
        &core,
        &raft,
        spec.me,
        faults.clone(),
        own_writes_synced,
        shutdown.clone(),
    );
    tokio::spawn(elector.clone().run(
        raft.clone(),
        core.clone(),
        log,
        faults.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(watch_role(
        raft.clone(),
        core.clone(),
        elector,
        spec.clone(),
        timing,
        shutdown.clone(),
    ));
    tokio::spawn(send_touches(raft.clone(), core, spec.me, faults, shutdown));
    Ok(Replication { raft })
}

/// Whether any other configured voter already belongs to a group.
async fn peers_formed_a_group(spec: &EnsembleSpec, faults: &PeerFaults) -> bool {
    let asks = spec
        .voters
        .iter()
        .filter(|(id, _)| **id != spec.me)
        .map(|(id, node)| {
            let link = PeerLink::new(spec.me, *id, node.addr.clone(), faults.clone());
            async move {
                matches!(
                    link.exchange(&PeerRequest::Initialized, Duration::from_millis(500))
                        .await,
                    Ok(PeerReply::Initialized(true))
                )
            }
        });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .any(|formed| formed)
}

/// The periods the role watcher works with.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// How often a leader checks that a quorum follows it.
    probe_every: Duration,
    /// How long one check may take.
    probe_within: Duration,
}

impl Timing {
    fn of(config: &openraft::Config) -> Timing {
        Timing {
            probe_every: Duration::from_millis(config.heartbeat_interval * 2),
            probe_within: Duration::from_millis(config.election_timeout_max),
        }
    }
}

/// Keeps `core`'s role current (see the module documentation).
async fn watch_role(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    elector: Arc<Elector>,
    spec: EnsembleSpec,
    timing: Timing,
    shutdown: CancellationToken,
) {
    let me = spec.me;
    let mut metrics = raft.metrics();
    let mut ticker = tokio::time::interval(timing.probe_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_leader: Option<u64> = None;
    // Leaders seen taking office: one per term in which this member found a leader.
    let mut leader_changes = 0u64;
    let mut counted_term: Option<u64> = None;
    // Since when this member, having had a leader, has none; and whether its clients
    // were dropped for it.
    let mut leaderless: Option<(Instant, bool)> = None;
    let hold = super::write_path::hold(&core);
    let mut since = Instant::now();
    let mut failed_probes = 0u32;
    let mut observers_added = false;
    loop {
        let tick = tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                false
            }
            _ = ticker.tick() => true,
        };
        let m: RaftMetrics<u64, BasicNode> = metrics.borrow().clone();
        let mut leader = m.current_leader;
        // A member that reconfig removed stays out of elections (it would only disturb
        // the ensemble it left), until a reconfig adds it back.
        let membership = m.membership_config.membership();
        if core.removed() && membership.voter_ids().any(|v| v == me) {
            core.set_removed(false);
        }
        let removed = core.removed()
            || (membership.nodes().next().is_some() && membership.get_node(&me).is_none());
        if removed {
            leader = None;
        }
        // openraft keeps following a leader it no longer hears (elections wait for a
        // majority to agree it is gone): a member cut off from it serves as one without
        // a leader (refused, or read-only).
        if leader.is_some_and(|l| l != me) && elector.lost_leader() {
            leader = None;
        }
        // A member restarted from a vote it won takes up its old term's leadership
        // for a moment (openraft restores it), until its peers' higher term reaches
        // it: it leads only once a quorum has acknowledged it.
        if leader == Some(me) && m.millis_since_quorum_ack.is_none() {
            leader = None;
        }
        // A leader's term opens with an entry of its own, and every entry of an earlier
        // term that will ever be committed comes before it. Until this member applied
        // an entry of the current term it serves no one: a client whose write was cut
        // off by the leader change (answer lost) must find that write applied or gone
        // for good, never see it join the tree after a read that missed it (Curator's
        // protected creates depend on it; ZooKeeper's followers sync with the new
        // leader before they serve).
        if m.last_applied
            .is_none_or(|a| a.leader_id.get_term() < m.current_term)
        {
            leader = None;
        }
        if leader == Some(me) && tick {
            let confirmed = tokio::time::timeout(timing.probe_within, raft.get_read_log_id())
                .await
                .is_ok_and(|r| r.is_ok());
            failed_probes = if confirmed { 0 } else { failed_probes + 1 };
            if !observers_added && confirmed {
                observers_added = add_observers(&raft, &core, &m);
            }
        }
        if leader == Some(me) && failed_probes >= 2 {
            // Cut off from the quorum: stop serving as its leader.
            leader = None;
        }
        if leader.is_some() && counted_term != Some(m.current_term) {
            counted_term = Some(m.current_term);
            leader_changes += 1;
            core.metrics.leader_changes.increment(1);
        }
        let seen = Seen {
            since,
            leader_changes,
        };
        if leader.is_some() {
            leaderless = None;
        } else if let Some((since, dropped)) = &mut leaderless {
            // No leader for `syncLimit × tickTime`: drop the clients, as ZooKeeper's
            // followers do when their leader is gone (they reconnect elsewhere, or
            // read-only here).
            if !*dropped && since.elapsed() >= hold {
                *dropped = true;
                core.abandon_all("no leader");
            }
        }
        if leader == last_leader {
            core.set_quorum(view(&m, me, &spec, leader, seen));
            continue;
        }
        tracing::info!(member = me, ?leader, previous = ?last_leader, term = m.current_term, "leader changed");
        if leader == Some(me) {
            // A new leader gives every session a fresh full timeout.
            core.refresh_session_timeouts();
        } else {
            observers_added = false;
        }
        let previous = last_leader;
        last_leader = leader;
        since = Instant::now();
        // The new role first: a client dropped below reconnects at once, and must be
        // judged by it (refused, or read-only, without a leader).
        core.set_quorum(view(
            &m,
            me,
            &spec,
            leader,
            Seen {
                since,
                leader_changes,
            },
        ));
        // Clients stay connected through a change of leader: their writes wait for
        // the new one (`write_path`). Without one they are dropped after a while.
        if leader.is_none() {
            if previous.is_some() && leaderless.is_none() {
                leaderless = Some((Instant::now(), false));
            }
        } else {
            // Back in a quorum: read-only clients reconnect read-write.
            core.close_read_only_connections();
        }
    }
}

/// Asks openraft to add the observers `/zookeeper/config` lists (zoo.cfg's at first,
/// reconfig's later) that are missing from the membership as learners; true when none
/// is missing.
fn add_observers(
    raft: &Raft<TypeConfig>,
    core: &ServerCore,
    m: &RaftMetrics<u64, BasicNode>,
) -> bool {
    let membership = m.membership_config.membership();
    let listed = {
        let db = core.db();
        let data = db
            .tree()
            .get(crate::tree::CONFIG_PATH)
            .and_then(|n| n.data())
            .unwrap_or_default();
        super::reconfig::parse_config_data(&data).0
    };
    let missing: Vec<(u64, BasicNode)> = listed
        .iter()
        .filter(|(id, p)| p.role == PeerRole::Observer && membership.get_node(id).is_none())
        .map(|(id, p)| (*id, BasicNode::new(p.peer_addr())))
        .collect();
    for (id, node) in &missing {
        let raft = raft.clone();
        let (id, node) = (*id, node.clone());
        tokio::spawn(async move {
            if let Err(e) = raft.add_learner(id, node, false).await {
                tracing::warn!(observer = id, error = %e, "could not add the observer");
            }
        });
    }
    missing.is_empty()
}

/// What the role watcher saw over time, for the quorum view.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// When this member took its current role.
    since: Instant,
    /// Leaders it saw take office.
    leader_changes: u64,
}

fn view(
    m: &RaftMetrics<u64, BasicNode>,
    me: u64,
    spec: &EnsembleSpec,
    leader: Option<u64>,
    seen: Seen,
) -> QuorumView {
    let membership = m.membership_config.membership();
    let voting = |id: u64| membership.voter_ids().any(|v| v == id);
    let role = match leader {
        Some(l) if l == me => Role::Leader,
        // Not (or not yet) a voter: an observer, or a member still joining.
        Some(_) if !voting(me) || spec.is_observer() => Role::Observer,
        Some(_) => Role::Follower,
        None => Role::Looking,
    };
    let voters = membership.voter_ids().count();
    let (mut learners, mut synced_followers, mut synced_observers) = (0, 0, 0);
    if role == Role::Leader {
        let applied = m.last_applied.map_or(0, |id| id.index);
        for (id, matched) in m.replication.iter().flatten() {
            if *id == me {
                continue;
            }
            learners += 1;
            if matched.is_some_and(|l| l.index >= applied) {
                if !voting(*id) {
                    synced_observers += 1;
                } else {
                    synced_followers += 1;
                }
            }
        }
    }
    QuorumView {
        role,
        leader,
        since: seen.since,
        term: m.current_term,
        leader_changes: seen.leader_changes,
        voters,
        learners,
        synced_followers,
        synced_observers,
    }
}

/// On a follower or observer: every half tick, tells the leader which sessions this
/// member's clients were heard from.
async fn send_touches(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    me: u64,
    faults: PeerFaults,
    shutdown: CancellationToken,
) {
    let period = Duration::from_millis(u64::from(core.config.tick_time_ms / 2).max(20));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let touched = core.tracker().take_touched();
        let Some((leader, addr)) = leader_of(&raft) else {
            continue;
        };
        if leader == me || touched.is_empty() {
            continue;
        }
        let link = PeerLink::new(me, leader, addr, faults.clone());
        if let Err(e) = link
            .exchange(&PeerRequest::Touch(touched), period * 4)
            .await
        {
            tracing::debug!(leader, error = %e, "could not pass session touches on");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ServerConfig {
        ServerConfig::parse(text).unwrap()
    }

    #[test]
    fn config_data_is_written_as_zookeeper_writes_a_static_configuration() {
        let c = config(
            "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889:participant\nserver.3=10.0.0.3:2890:3890:observer;2181\n",
        );
        assert_eq!(
            &config_data(&c)[..],
            b"server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\nserver.3=10.0.0.3:2890:3890:observer;0.0.0.0:2181\nversion=0"
        );
    }

    #[test]
    fn the_spec_splits_voters_from_observers_and_needs_a_myid_among_them() {
        let mut c = config(
            "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.4=127.0.0.1:2891:3891:observer\n",
        );
        assert!(EnsembleSpec::from_config(&c).is_err(), "no myid");
        c.my_id = Some(3);
        assert!(EnsembleSpec::from_config(&c).is_err(), "myid not listed");
        c.my_id = Some(4);
        let spec = EnsembleSpec::from_config(&c).unwrap();
        assert_eq!(spec.voters.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(spec.voters[&2].addr, "127.0.0.1:2889");
        assert!(spec.is_observer());
    }
}
