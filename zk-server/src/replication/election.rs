//! When an ensemble elects: only once a majority of voters agrees that its leader is
//! gone (pre-vote, Raft thesis §9.6).
//!
//! openraft 0.9 has no pre-vote. A follower whose election timer fires raises its term
//! and asks for votes; voters refuse while the lease they gave their leader lasts, but
//! the higher term the follower now holds deposes the leader anyway, as soon as the
//! leader next reaches it (the follower answers its AppendEntries with the higher
//! vote). A member that restarted, was paused or was cut off would so depose a leader
//! that everyone else still follows, and every member would drop its clients.
//!
//! So on the members of an ensemble openraft's election timer is off
//! (`enable_elect = false`), and an [`Elector`] decides when to elect:
//!
//! - It notes when this member last heard a leader ([`Elector::heard`]: an
//!   AppendEntries or snapshot chunk of a leader at least as recent as this member's
//!   vote), counting from the member's start.
//! - A voter that heard no leader for a random time between `raftElectionTimeoutMs`
//!   and twice that first asks the other voters whether they would vote for it in the
//!   next term ([`PreVote`]). Nobody changes term or vote for that. A voter says yes
//!   only if it does not lead, its own term is lower than the one asked for, the
//!   candidate's log is at least as up to date as its own, and it has itself heard no
//!   leader for `raftElectionTimeoutMs`, or saw its leader's process die.
//! - With a yes from a majority (of each configuration, while a reconfig is joint),
//!   it has openraft elect (`trigger().elect()`): the term rises and the real vote
//!   runs. Otherwise it waits another random timeout.
//! - A leader whose process died is replaced without waiting for the timeout. The
//!   kernel closes its sockets, so its followers read end-of-file on the connection it
//!   replicated over ([`Elector::connection_lost`]); a follower that then finds the
//!   leader's peer port refusing connections marks the leader gone and holds a
//!   pre-vote as soon as openraft's lease has run out. The followers go in order of
//!   member id, half a heartbeat apart, so that they do not split the vote. A leader
//!   cut off by the network (no end-of-file, no refusal) is replaced after the
//!   timeout.
//!
//! openraft's own leader lease (a voter refuses the real vote while its last
//! heartbeat is younger than openraft's longer election timeout) is kept but short,
//! just over a heartbeat (`super::raft_config`): the pre-vote is what guards a live
//! leader now, and a long lease would only delay replacing a dead one.

use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{LogId, Raft, RaftMetrics, ServerState, Vote};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::links::{PeerFaults, PeerLink};
use super::log_store::LogStore;
use super::wire::{PeerReply, PeerRequest, PreVote, PreVoteAnswer};
use super::TypeConfig;
use crate::core::ServerCore;

/// How often the elector looks at the clock.
const TICK: Duration = Duration::from_millis(5);

/// How long asking a peer (its pre-vote, or its peer port) may take.
const ASK_WITHIN: Duration = Duration::from_millis(100);

/// Added to a voter's lease as it reports it: openraft starts the lease when it has
/// taken in the heartbeat, a little after the elector heard it.
const LEASE_MARGIN: Duration = Duration::from_millis(5);

/// What this member knows of its leader's liveness.
#[derive(Debug)]
struct Contact {
    /// When it last heard a leader, or started.
    heard_at: Instant,
    /// The leader it last heard.
    leader: Option<u64>,
    /// A leader whose process this member saw die (end-of-file, then refused).
    gone: Option<u64>,
    /// When to hold the next pre-vote if no leader is heard before then.
    next_try: Instant,
}

/// Decides when this member stands for election (see the module documentation), and
/// answers other members' pre-votes.
#[derive(Debug)]
pub struct Elector {
    me: u64,
    /// `raftElectionTimeoutMs`.
    timeout: Duration,
    /// `raftHeartbeatMs`.
    heartbeat: Duration,
    /// openraft's lease: how long after its last heartbeat a voter refuses a vote.
    lease: Duration,
    contact: Mutex<Contact>,
}

impl Elector {
    /// The elector of member `me`, with openraft's `config`'s timing and
    /// `raftElectionTimeoutMs` of `timeout`.
    pub fn new(me: u64, config: &openraft::Config, timeout: Duration) -> Arc<Elector> {
        let now = Instant::now();
        let elector = Elector {
            me,
            timeout,
            heartbeat: Duration::from_millis(config.heartbeat_interval.max(1)),
            lease: Duration::from_millis(config.election_timeout_max),
            contact: Mutex::new(Contact {
                heard_at: now,
                leader: None,
                gone: None,
                next_try: now,
            }),
        };
        let first = now + elector.random_timeout();
        elector.lock().next_try = first;
        Arc::new(elector)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Contact> {
        self.contact.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A random election timeout: `raftElectionTimeoutMs` to twice that.
    fn random_timeout(&self) -> Duration {
        self.timeout + jitter(self.timeout)
    }

    /// This member heard `leader` (with a vote at least as recent as its own).
    pub fn heard(&self, leader: u64) {
        let now = Instant::now();
        let next = now + self.random_timeout();
        let mut c = self.lock();
        c.heard_at = now;
        c.leader = Some(leader);
        c.gone = None;
        c.next_try = next;
    }

    /// Whether this member lost touch with its leader: it heard none for twice the
    /// election timeout (by then a majority that also lost it has elected another), or
    /// saw it die. Such a member serves as one without a leader.
    pub fn lost_leader(&self) -> bool {
        let (quiet, gone) = self.quiet();
        gone || quiet >= self.timeout * 2
    }

    /// How long since this member heard a leader, and whether it saw that leader die.
    fn quiet(&self) -> (Duration, bool) {
        let c = self.lock();
        let gone = c.gone.is_some() && c.gone == c.leader;
        (c.heard_at.elapsed(), gone)
    }

    /// A connection on which `peer` replicated to this member as leader ended: if
    /// `peer` is still the leader this member follows and nothing listens at its peer
    /// port any more, mark it gone and elect soon.
    pub(crate) fn connection_lost(
        self: &Arc<Self>,
        raft: &Raft<TypeConfig>,
        core: &Arc<ServerCore>,
        peer: u64,
    ) {
        let (elector, raft, core) = (self.clone(), raft.clone(), core.clone());
        tokio::spawn(async move {
            let Some(addr) = followed_leader_addr(&raft, &core, peer) else {
                return;
            };
            if !refused(&addr).await {
                return;
            }
            let m = raft.metrics().borrow().clone();
            // Survivors go in order of id, half a heartbeat apart.
            let rank = m
                .membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != peer && *id < elector.me)
                .count() as u32;
            let mut c = elector.lock();
            if c.leader != Some(peer) {
                return;
            }
            tracing::info!(
                leader = peer,
                "the leader's process is gone; electing a new one"
            );
            c.gone = Some(peer);
            // A voter refuses the real vote until openraft's lease from its last
            // heartbeat has run out; the survivors heard theirs at about the same time.
            let at = c.heard_at + elector.lease + LEASE_MARGIN + elector.heartbeat / 2 * rank;
            c.next_try = c.next_try.min(at.max(Instant::now()));
        });
    }

    /// Whether this member would vote for `request`'s candidate: it does not lead,
    /// the term asked for is above its own, the candidate's log is at least as up to
    /// date as `last_log_id` (this member's), and it heard no leader for an election
    /// timeout or saw its leader die.
    pub fn grants(
        &self,
        request: &PreVote,
        m: &RaftMetrics<u64, openraft::BasicNode>,
        last_log_id: Option<LogId<u64>>,
    ) -> bool {
        if m.state == ServerState::Leader || request.term <= m.current_term {
            return false;
        }
        if request.last_log_id < last_log_id {
            return false;
        }
        let (quiet, gone) = self.quiet();
        gone || quiet >= self.timeout
    }

    /// This member's answer to `request` (see [`Elector::grants`]).
    pub fn answer(
        &self,
        request: &PreVote,
        m: &RaftMetrics<u64, openraft::BasicNode>,
        last_log_id: Option<LogId<u64>>,
    ) -> PreVoteAnswer {
        let heard_at = self.lock().heard_at;
        let lease_end = heard_at + self.lease + LEASE_MARGIN;
        PreVoteAnswer {
            granted: self.grants(request, m, last_log_id),
            lease_left_ms: lease_end
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
        }
    }

    /// Holds pre-votes and elections for member `me` until `shutdown` (see the module
    /// documentation).
    pub(crate) async fn run(
        self: Arc<Self>,
        raft: Raft<TypeConfig>,
        core: Arc<ServerCore>,
        log: LogStore,
        faults: PeerFaults,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            let now = Instant::now();
            if self.lock().next_try > now {
                continue;
            }
            let m = raft.metrics().borrow().clone();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|id| id == self.me);
            if m.state == ServerState::Leader || !voter || core.removed() {
                let next = now + self.random_timeout();
                self.lock().next_try = next;
                continue;
            }
            let (_, gone) = self.quiet();
            let request = PreVote {
                candidate: self.me,
                term: m.current_term + 1,
                last_log_id: log.last_log_id(),
            };
            let granted = self.pre_vote(&m, &request, &faults).await;
            // Another try after a full timeout; sooner (a heartbeat or two) while the
            // leader is known dead.
            let wait = if gone {
                self.heartbeat + jitter(self.heartbeat)
            } else {
                self.random_timeout()
            };
            self.lock().next_try = Instant::now() + wait;
            let Some(lease_left) = granted else {
                tracing::debug!(term = request.term, "pre-vote refused; the leader stays");
                continue;
            };
            tracing::info!(
                term = request.term,
                wait_ms = lease_left.as_millis() as u64,
                "a majority heard no leader; standing for election"
            );
            // The voters refuse the real vote while openraft's lease lasts.
            tokio::time::sleep(lease_left).await;
            if let Err(e) = raft.trigger().elect().await {
                tracing::debug!(error = %e, "could not start an election");
            }
        }
    }

    /// Asks every other voter `request`. When a majority of each configuration (this
    /// member included) would vote for it, how long until enough of them are past
    /// openraft's lease to elect it; `None` otherwise.
    async fn pre_vote(
        &self,
        m: &RaftMetrics<u64, openraft::BasicNode>,
        request: &PreVote,
        faults: &PeerFaults,
    ) -> Option<Duration> {
        let membership = m.membership_config.membership();
        let asks = membership
            .voter_ids()
            .filter(|id| *id != self.me)
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
            .map(|(id, addr)| {
                let link = PeerLink::new(self.me, id, addr, faults.clone());
                let request = PeerRequest::PreVote(request.clone());
                async move {
                    match link.exchange(&request, ASK_WITHIN).await {
                        Ok(PeerReply::PreVote(answer)) if answer.granted => {
                            Some((id, Duration::from_millis(answer.lease_left_ms)))
                        }
                        _ => None,
                    }
                }
            });
        let granted: Vec<(u64, Duration)> = futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .chain(std::iter::once((self.me, Duration::ZERO)))
            .collect();
        let mut wait = Duration::ZERO;
        for config in membership.get_joint_config() {
            let mut leases: Vec<Duration> = granted
                .iter()
                .filter(|(id, _)| config.contains(id))
                .map(|(_, left)| *left)
                .collect();
            let majority = config.len() / 2 + 1;
            if leases.len() < majority {
                return None;
            }
            leases.sort_unstable();
            wait = wait.max(leases[majority - 1]);
        }
        Some(wait)
    }
}

/// Whether an AppendEntries or snapshot chunk carrying `vote` comes from a leader this
/// member follows or will follow (its vote is at least this member's), and who that
/// is.
pub fn leader_of_message(vote: &Vote<u64>, mine: &Vote<u64>) -> Option<u64> {
    if !vote.is_committed() || vote < mine {
        return None;
    }
    vote.leader_id().voted_for()
}

/// A random duration below `below`.
fn jitter(below: Duration) -> Duration {
    let millis = below.as_millis().max(1) as u64;
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(r % millis)
}

/// `peer`'s peer address if this member follows it as a voter (an observer or a
/// removed member does not elect).
fn followed_leader_addr(raft: &Raft<TypeConfig>, core: &ServerCore, peer: u64) -> Option<String> {
    if core.removed() {
        return None;
    }
    let m = raft.metrics().borrow().clone();
    if m.current_leader != Some(peer) || m.state != ServerState::Follower {
        return None;
    }
    m.membership_config
        .membership()
        .get_node(&peer)
        .map(|n| n.addr.clone())
}

/// Whether nothing listens at `addr` (a connection refused at once; a timeout or any
/// other failure proves nothing).
async fn refused(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(ASK_WITHIN, TcpStream::connect(addr)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elector(timeout_ms: u64) -> Arc<Elector> {
        let config = openraft::Config {
            heartbeat_interval: 50,
            election_timeout_min: 75,
            election_timeout_max: 76,
            ..Default::default()
        };
        Elector::new(1, &config, Duration::from_millis(timeout_ms))
    }

    fn metrics(term: u64, state: ServerState) -> RaftMetrics<u64, openraft::BasicNode> {
        let mut m = RaftMetrics::new_initial(1);
        m.current_term = term;
        m.state = state;
        m
    }

    fn log_id(term: u64, index: u64) -> Option<LogId<u64>> {
        Some(LogId::new(openraft::CommittedLeaderId::new(term, 0), index))
    }

    fn ask(term: u64, last: Option<LogId<u64>>) -> PreVote {
        PreVote {
            candidate: 2,
            term,
            last_log_id: last,
        }
    }

    #[test]
    fn a_member_that_hears_its_leader_refuses_and_one_that_does_not_grants() {
        let e = elector(30);
        e.heard(3);
        let m = metrics(4, ServerState::Follower);
        assert!(!e.grants(&ask(5, log_id(4, 10)), &m, log_id(4, 10)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(e.grants(&ask(5, log_id(4, 10)), &m, log_id(4, 10)));
        // Heard again: refuses again.
        e.heard(3);
        assert!(!e.grants(&ask(5, log_id(4, 10)), &m, log_id(4, 10)));
    }

    #[test]
    fn a_shorter_log_a_stale_term_or_a_leader_is_refused() {
        let e = elector(1);
        std::thread::sleep(Duration::from_millis(5));
        let m = metrics(4, ServerState::Follower);
        assert!(e.grants(&ask(5, log_id(4, 10)), &m, log_id(4, 10)));
        assert!(!e.grants(&ask(5, log_id(4, 9)), &m, log_id(4, 10)), "log");
        assert!(
            !e.grants(&ask(5, log_id(3, 11)), &m, log_id(4, 10)),
            "log term"
        );
        assert!(!e.grants(&ask(4, log_id(4, 10)), &m, log_id(4, 10)), "term");
        let leader = metrics(4, ServerState::Leader);
        assert!(!e.grants(&ask(5, log_id(4, 10)), &leader, log_id(4, 10)));
    }

    #[test]
    fn a_leader_seen_dead_is_voted_away_at_once() {
        let e = elector(10_000);
        e.heard(3);
        let m = metrics(4, ServerState::Follower);
        assert!(!e.grants(&ask(5, None), &m, None));
        e.lock().gone = Some(3);
        assert!(e.grants(&ask(5, None), &m, None));
        // A leader heard since is alive after all.
        e.heard(3);
        assert!(!e.grants(&ask(5, None), &m, None));
    }

    #[test]
    fn only_a_committed_vote_at_least_as_recent_as_ours_names_a_leader() {
        let mut vote = Vote::new(5, 3);
        let mine = Vote::new(5, 3);
        assert_eq!(leader_of_message(&vote, &mine), None, "not committed");
        vote.commit();
        assert_eq!(leader_of_message(&vote, &mine), Some(3));
        let mut old = Vote::new(4, 2);
        old.commit();
        assert_eq!(leader_of_message(&old, &mine), None, "older term");
    }
}
