//! The write path: transactions submitted on this member go, in the order they were
//! submitted, to the leader: to this member's own openraft when it leads, else
//! forwarded over the peer transport in batches.
//!
//! A leader change is invisible to this member's clients (unless this member is the
//! one that went away). When a write's outcome becomes unknown (the leader it was
//! sent to went away, refused it, or stopped leading with it in flight), nothing more
//! is sent until this member knows a leader and has applied an entry of that leader's
//! term: every entry of an earlier term that will ever be committed comes before that
//! entry, so by then each of those writes was either applied here (and its client
//! answered) or is lost for good. The lost ones are sent again, in their order, before
//! anything newer. A copy of a write that was applied after all (a leader still alive
//! behind a broken connection may append it late) changes nothing: the state keeps
//! the highest write number applied from each member (`ZkDatabase::apply`). Writes
//! are held, not failed, while there is no leader; after `syncLimit × tickTime`
//! without one (the time ZooKeeper's followers give their leader) every client is
//! dropped, as ZooKeeper drops them.
//!
//! A forward names the term of the leader it is meant for, and the leader appends it
//! only while it leads in that term: a member that lost its leadership and won it back
//! cannot append a later batch after refusing an earlier one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use openraft::Raft;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::links::{PeerFaults, PeerLink};
use super::wire::{PeerReply, PeerRequest};
use super::{count_proposal, leader_of, reconfig, TypeConfig};
use crate::core::{Replicator, ServerCore, SubmitError};
use crate::txn::{zxid_of, Txn, TxnBatch, MAX_BATCH_TXNS};

/// The write path: submitted transactions go, in call order, to the leader — this
/// member's own openraft when it leads, else forwarded over the peer transport.
struct Proposer {
    core: std::sync::Weak<ServerCore>,
    tx: mpsc::UnboundedSender<Txn>,
    raft: Raft<TypeConfig>,
    me: u64,
    faults: PeerFaults,
    /// How long a write or a `sync` may wait for a leader (`syncLimit × tickTime`).
    hold: Duration,
}

impl Replicator for Proposer {
    fn submit(&self, txn: Txn) -> Result<(), SubmitError> {
        self.tx
            .send(txn)
            .map_err(|_| SubmitError::Unavailable("replication stopped".into()))
    }

    /// The leader's commit point; through a change of leader, the new leader's (a
    /// `sync` waits for it as writes do, up to `hold`).
    fn read_index(&self) -> BoxFuture<'static, Result<i64, SubmitError>> {
        let raft = self.raft.clone();
        let me = self.me;
        let faults = self.faults.clone();
        let hold = self.hold;
        Box::pin(async move {
            let deadline = Instant::now() + hold;
            loop {
                if let Some((leader, addr, _)) = confirmed_leader(&raft) {
                    let index = if leader == me {
                        raft.get_read_log_id()
                            .await
                            .ok()
                            .map(|(read, _)| read.map_or(0, |id| id.index))
                    } else {
                        let link = PeerLink::new(me, leader, addr, faults.clone());
                        match link.exchange(&PeerRequest::ReadIndex, hold).await {
                            Ok(PeerReply::ReadIndex(index)) => index,
                            _ => None,
                        }
                    };
                    // The leader's log index: applied once its first zxid is.
                    if let Some(index) = index {
                        return Ok(zxid_of(index, 0));
                    }
                }
                if Instant::now() >= deadline {
                    return Err(SubmitError::Unavailable("no leader to sync with".into()));
                }
                tokio::time::sleep(RECHECK * 2).await;
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
///
/// And only one of them not yet written and synced to this member's log: openraft
/// 0.9's core awaits each append's sync before it takes the next entry, so a second
/// entry handed over meanwhile would only wait there, with the writes that gathered
/// so far, for a sync of its own. Held back instead, they and everything arriving
/// until the sync ends go into one entry and share the next sync (`BENCHMARKS.md`,
/// "One entry being synced at a time": with four entries handed over freely, 16
/// sessions writing one request at a time each got 4.5 writes per sync; held back,
/// 8.1, and 1.4× the throughput).
const ENTRIES_IN_FLIGHT: usize = 4;

/// Connects `core`'s write path to `raft` (member `me`).
pub(super) fn connect_write_path(
    core: &Arc<ServerCore>,
    raft: &Raft<TypeConfig>,
    me: u64,
    faults: PeerFaults,
    own_writes_synced: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    core.set_replicator(Arc::new(Proposer {
        core: Arc::downgrade(core),
        tx,
        raft: raft.clone(),
        me,
        faults: faults.clone(),
        hold: hold(core),
    }));
    tokio::spawn(propose(
        raft.clone(),
        core.clone(),
        me,
        faults,
        own_writes_synced,
        rx,
        shutdown,
    ));
}

/// How long writes and `sync`s wait for a leader: `syncLimit × tickTime`, the time
/// ZooKeeper's followers give theirs.
pub(super) fn hold(core: &ServerCore) -> Duration {
    Duration::from_millis(
        u64::from(core.config.tick_time_ms) * u64::from(core.config.sync_limit.max(1)),
    )
}

/// Forwarded batches in flight at most (backpressure on a slow leader).
const MAX_FORWARDS_IN_FLIGHT: usize = 16;

/// How often a write path waiting for a leader looks again.
const RECHECK: Duration = Duration::from_millis(5);

/// The leader this member can send writes to: known, and an entry of its term applied
/// here (see the module documentation). Its id, peer address and term.
fn confirmed_leader(raft: &Raft<TypeConfig>) -> Option<(u64, String, u64)> {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    let leader = m.current_leader?;
    let term = m.current_term;
    if m.last_applied
        .is_none_or(|a| a.leader_id.get_term() != term)
    {
        return None;
    }
    // This member's own leadership counts once a quorum acknowledged it (a member
    // restarted from a vote it won believes in its old term's for a moment).
    if leader == m.id && m.millis_since_quorum_ack.is_none() {
        return None;
    }
    let node = m.membership_config.membership().get_node(&leader)?.clone();
    Some((leader, node.addr, term))
}

/// The state of one member's write path.
struct WritePath {
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    me: u64,
    faults: PeerFaults,
    /// Writes taken from the queue (or to send again), not yet sent, in order.
    ready: VecDeque<Txn>,
    /// Every write sent whose reply is still owed, oldest first.
    unsettled: VecDeque<Txn>,
    /// Entries this member proposed as leader, not yet committed: each says whether it
    /// committed. All of one term, `proposed_in`.
    proposed: FuturesUnordered<BoxFuture<'static, bool>>,
    proposed_in: u64,
    /// The last write of the newest entry proposed, until this member's log holds it
    /// (`own_writes_synced` reached it): no other entry is proposed meanwhile.
    being_synced: Option<u64>,
    /// The highest sequence number of this member's writes in its log, synced.
    own_writes_synced: watch::Receiver<u64>,
    /// Batches forwarded and not yet answered, oldest first; all went over one
    /// connection (`pinned`: leader, connection), so the leader appended them in the
    /// order sent.
    forwarding: FuturesOrdered<BoxFuture<'static, Forwarded>>,
    pinned: Option<(u64, u64)>,
    /// Since when some write's outcome is unknown.
    unsure: Option<Instant>,
    /// Since when writes wait for a leader that takes them (from the first unknown
    /// outcome or the first write with no leader, to the next write committed).
    waiting: Option<Instant>,
    /// How long writes may wait for a leader before every client is dropped.
    hold: Duration,
    /// When writes were last sent again, and to which leader in which term.
    resent: Option<(Instant, u64, u64)>,
}

/// The outcome of one forwarded batch.
struct Forwarded {
    leader: u64,
    reply: std::io::Result<PeerReply>,
}

/// Feeds submitted transactions to the leader in order (see the module documentation).
async fn propose(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    me: u64,
    faults: PeerFaults,
    own_writes_synced: watch::Receiver<u64>,
    mut rx: mpsc::UnboundedReceiver<Txn>,
    shutdown: CancellationToken,
) {
    let hold = hold(&core);
    let mut path = WritePath {
        raft,
        core,
        me,
        faults,
        ready: VecDeque::new(),
        unsettled: VecDeque::new(),
        proposed: FuturesUnordered::new(),
        proposed_in: 0,
        being_synced: None,
        own_writes_synced,
        forwarding: FuturesOrdered::new(),
        pinned: None,
        unsure: None,
        waiting: None,
        hold,
        resent: None,
    };
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let waiting = path.unsure.is_some() || !path.ready.is_empty();
        if path
            .being_synced
            .is_some_and(|last| *path.own_writes_synced.borrow() >= last)
        {
            path.being_synced = None;
        }
        let room = path.ready.is_empty()
            && path.unsure.is_none()
            && path.forwarding.len() < MAX_FORWARDS_IN_FLIGHT
            && path.proposed.len() < ENTRIES_IN_FLIGHT
            && path.being_synced.is_none();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(committed) = path.proposed.next(), if !path.proposed.is_empty() => {
                if path.proposed.is_empty() {
                    // Whatever became of them, no entry proposed is still being written.
                    path.being_synced = None;
                }
                if committed {
                    path.waiting = None;
                } else {
                    path.outcome_unknown("a proposed entry did not commit here");
                }
            }
            Some(done) = path.forwarding.next(), if !path.forwarding.is_empty() => {
                path.settle(done);
                if path.forwarding.is_empty() {
                    path.pinned = None;
                }
            }
            _ = recheck.tick(), if waiting => {}
            synced = path.own_writes_synced.changed(), if path.being_synced.is_some() => {
                if synced.is_err() {
                    path.being_synced = None; // The log store is gone.
                }
            }
            txn = rx.recv(), if room => match txn {
                Some(txn) => {
                    path.ready.push_back(txn);
                    while path.ready.len() < FORWARD_BATCH {
                        match rx.try_recv() {
                            Ok(txn) => path.ready.push_back(txn),
                            Err(_) => break,
                        }
                    }
                }
                None => break,
            },
        }
        path.step().await;
    }
    path.core.fail_pending();
}

impl WritePath {
    /// Some write's outcome became unknown: send nothing until a leader is confirmed.
    fn outcome_unknown(&mut self, why: &str) {
        if self.unsure.is_none() {
            tracing::debug!(why, "write outcomes unknown; holding writes for a leader");
            self.unsure = Some(Instant::now());
        }
        self.waiting.get_or_insert_with(Instant::now);
    }

    /// Acts on a forwarded batch's outcome: writes whose session moved on fail alone
    /// (their connection closes: ZooKeeper's SessionMoved); a batch refused or lost
    /// makes its writes' outcomes unknown.
    fn settle(&mut self, done: Forwarded) {
        match done.reply {
            Ok(PeerReply::Forwarded { refused, moved }) => {
                for seq in moved {
                    self.core.fail_request(seq);
                }
                if refused.is_empty() {
                    self.waiting = None;
                } else {
                    self.outcome_unknown("the leader refused forwarded writes");
                }
            }
            Ok(_) => self.outcome_unknown("the leader answered a forward with something else"),
            Err(e) => {
                tracing::debug!(leader = done.leader, error = %e, "forwarded writes unanswered");
                self.outcome_unknown("forwarding to the leader failed");
            }
        }
    }

    /// Sends what can be sent now.
    async fn step(&mut self) {
        while self
            .unsettled
            .front()
            .is_some_and(|t| !self.core.owes(t.origin.seq))
        {
            self.unsettled.pop_front();
        }
        if self.unsure.is_none() && self.ready.is_empty() {
            return;
        }
        if self.held_too_long() {
            return;
        }
        let Some((leader, addr, term)) = confirmed_leader(&self.raft) else {
            self.waiting.get_or_insert_with(Instant::now);
            return;
        };
        if let Some(since) = self.unsure {
            // Let a leader that only just lost its title be seen as such before
            // trusting it again; the same one (perhaps dead, and not yet known to
            // be) at most every few rechecks.
            let again = self
                .resent
                .is_some_and(|(at, l, t)| l == leader && t == term && at.elapsed() < RECHECK * 5);
            if since.elapsed() < RECHECK || again {
                return;
            }
            let new_leader = self.resent.is_none_or(|(_, l, t)| l != leader || t != term);
            self.resent = Some((Instant::now(), leader, term));
            self.send_again(new_leader);
        }
        if self.ready.is_empty() {
            return;
        }
        // Behind forwards or entries still in flight to another leader or term, wait
        // for them: their outcomes decide what is sent again.
        let elsewhere = self.pinned.is_some_and(|(to, _)| to != leader)
            || (!self.proposed.is_empty() && (leader != self.me || self.proposed_in != term));
        if elsewhere {
            self.waiting.get_or_insert_with(Instant::now);
            return;
        }
        let mut bytes = 0;
        let mut batch = Vec::new();
        while batch.len() < FORWARD_BATCH && bytes < BATCH_BYTES {
            let Some(txn) = self.ready.pop_front() else {
                break;
            };
            // Writes whose replies were failed (their connection is gone) are dropped.
            if self.core.owes(txn.origin.seq) {
                bytes += txn.approx_bytes();
                batch.push(txn);
            }
        }
        if batch.is_empty() {
            return;
        }
        if leader == self.me {
            self.propose_here(batch, term).await;
        } else {
            self.forward(batch, leader, addr, term).await;
        }
    }

    /// Whether writes waited `hold` for a leader that takes them: then every client is
    /// dropped (and with them every write owed).
    fn held_too_long(&mut self) -> bool {
        let Some(since) = self.waiting else {
            return false;
        };
        if since.elapsed() < self.hold {
            return false;
        }
        tracing::warn!(
            waited_ms = since.elapsed().as_millis() as u64,
            "no leader to take writes; dropping every client"
        );
        self.core.abandon_all("no leader to take writes");
        self.ready.clear();
        self.unsettled.clear();
        self.proposed = FuturesUnordered::new();
        self.being_synced = None;
        self.forwarding = FuturesOrdered::new();
        self.pinned = None;
        self.unsure = None;
        self.waiting = None;
        true
    }

    /// A leader is confirmed: every write still owed among those sent was lost for good
    /// (or its late copy will change nothing); it goes out again, first.
    fn send_again(&mut self, new_leader: bool) {
        self.proposed = FuturesUnordered::new();
        self.being_synced = None;
        self.forwarding = FuturesOrdered::new();
        self.pinned = None;
        self.unsure = None;
        let again: Vec<Txn> = self
            .unsettled
            .drain(..)
            .filter(|t| self.core.owes(t.origin.seq))
            .collect();
        if !again.is_empty() && new_leader {
            tracing::info!(
                writes = again.len(),
                "sending writes of unknown outcome again"
            );
        } else if !again.is_empty() {
            tracing::debug!(
                writes = again.len(),
                "sending writes of unknown outcome again"
            );
        }
        for txn in again.into_iter().rev() {
            self.ready.push_front(txn);
        }
    }

    /// Appends `batch` to this member's own log, as leader in `term`.
    async fn propose_here(&mut self, mut batch: Vec<Txn>, term: u64) {
        batch.retain(|txn| {
            let moved = self.core.moved(txn);
            if moved {
                self.core.fail_request(txn.origin.seq);
            }
            !moved
        });
        if batch.is_empty() {
            return;
        }
        count_proposal(&self.core, &batch);
        self.unsettled.extend(batch.iter().cloned());
        let last = batch.last().map(|txn| txn.origin.seq);
        match self.raft.client_write_ff(TxnBatch(batch)).await {
            Ok(receiver) => {
                self.proposed_in = term;
                self.being_synced = last;
                self.proposed
                    .push(Box::pin(async move { matches!(receiver.await, Ok(Ok(_))) }));
            }
            Err(e) => {
                tracing::debug!(error = %e, "consensus refused a write");
                self.outcome_unknown("consensus refused a write");
            }
        }
    }

    /// Forwards `batch` to `leader` (leading in `term`), behind the batches still in
    /// flight to it and over their connection.
    async fn forward(&mut self, batch: Vec<Txn>, leader: u64, addr: String, term: u64) {
        let link = PeerLink::new(self.me, leader, addr, self.faults.clone());
        self.unsettled.extend(batch.iter().cloned());
        let same = if self.forwarding.is_empty() {
            None
        } else {
            self.pinned.map(|(_, connection)| connection)
        };
        let request = PeerRequest::Forward { term, batch };
        match link.send(&request, FORWARD_TIMEOUT, same).await {
            Ok((connection, reply)) => {
                self.pinned = Some((leader, connection));
                let mut metrics = self.raft.metrics();
                self.forwarding.push_back(Box::pin(async move {
                    let reply = tokio::select! {
                        r = reply => r,
                        // A leader that loses its title may never answer.
                        _ = metrics.wait_for(|m| m.current_leader != Some(leader)) => {
                            Err(std::io::Error::other("the leader changed"))
                        }
                    };
                    Forwarded { leader, reply }
                }));
            }
            Err(e) => {
                tracing::debug!(leader, error = %e, "could not forward writes");
                self.outcome_unknown("could not reach the leader");
            }
        }
    }
}
