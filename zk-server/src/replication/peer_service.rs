//! The peer service: a member's answers to its peers. It accepts their links on the
//! peer port (`links::accept_link`: TLS and quorum SASL when configured) and
//! answers each request in a task of its own — openraft's AppendEntries, Vote and
//! InstallSnapshot, pre-votes, touches, revalidations, read-index queries and reconfig
//! — except forwarded writes, which it hands to openraft in the order they arrived
//! before answering them (the log order is the order a follower sent them).

use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::election::{leader_of_message, Elector};
use super::links::{accept_link, Halves, PeerFaults};
use super::log_store::LogStore;
use super::wire::{encode, read_frame, write_frames, PeerReply, PeerRequest};
use super::TypeConfig;
use crate::core::ServerCore;
use crate::txn::{Txn, TxnBatch};

type NodeId = u64;

/// What answering peers needs besides openraft and the server core: who decides on
/// elections here, and the log (its last entry, for pre-votes).
#[derive(Clone)]
pub struct PeerService {
    /// This member's elector.
    pub elector: Arc<Elector>,
    /// This member's log.
    pub log: LogStore,
}

/// Answers peers' messages on `listener` until `shutdown`.
pub async fn serve_peers(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    service: PeerService,
    listener: TcpListener,
    faults: PeerFaults,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (raft, core, faults) = (raft.clone(), core.clone(), faults.clone());
        let service = service.clone();
        let closed = shutdown.child_token();
        tokio::spawn(async move {
            let Some(halves) = accept_link(stream, remote, &faults).await else {
                return;
            };
            serve_connection(raft, core, service, halves, faults, closed).await;
        });
    }
}

/// One peer's connection: requests answered concurrently, forwarded writes appended
/// in arrival order.
async fn serve_connection(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    service: PeerService,
    (mut rd, wr): Halves,
    faults: PeerFaults,
    closed: CancellationToken,
) {
    let (out, frames) = mpsc::unbounded_channel();
    tokio::spawn(write_frames(wr, frames, closed.clone()));
    // The member that replicates to us over this connection, while it leads.
    let mut leader = None;
    loop {
        let (id, request) = tokio::select! {
            _ = closed.cancelled() => return,
            r = read_frame::<PeerRequest>(&mut rd) => match r {
                Ok(r) => r,
                Err(_) => {
                    if let (Some(peer), false) = (leader, closed.is_cancelled()) {
                        service.elector.connection_lost(&raft, &core, peer);
                    }
                    break;
                }
            },
        };
        if let PeerRequest::AppendEntries(r) = &request {
            leader = r.vote.leader_id().voted_for();
            heard(&raft, &service.elector, &r.vote);
        }
        if let PeerRequest::InstallSnapshot(r) = &request {
            heard(&raft, &service.elector, &r.vote);
        }
        let out = out.clone();
        let reply = move |reply: PeerReply| {
            if let Ok(frame) = encode(id, &reply) {
                let _ = out.send(frame);
            }
        };
        if let PeerRequest::Forward { term, batch } = request {
            let pending = append_in_order(&raft, &core, term, batch).await;
            tokio::spawn(async move { reply(pending.await) });
            continue;
        }
        let (raft, core, faults) = (raft.clone(), core.clone(), faults.clone());
        let service = service.clone();
        tokio::spawn(async move { reply(answer(&raft, &core, &service, &faults, request).await) });
    }
    closed.cancel();
}

/// A leader's message carrying `vote` came in: the elector hears of it if it comes
/// from a leader this member follows (or will).
fn heard(raft: &Raft<TypeConfig>, elector: &Elector, vote: &openraft::Vote<NodeId>) {
    let mine = raft.metrics().borrow().vote;
    if let Some(leader) = leader_of_message(vote, &mine) {
        elector.heard(leader);
    }
}

/// Hands a forwarded batch to openraft in order, now, if this member leads in `term`;
/// the returned future answers it once every write was committed or refused.
async fn append_in_order(
    raft: &Raft<TypeConfig>,
    core: &ServerCore,
    term: u64,
    batch: Vec<Txn>,
) -> impl std::future::Future<Output = PeerReply> {
    let mut moved = Vec::new();
    let mut batch = batch;
    batch.retain(|txn| {
        let gone = core.moved(txn);
        if gone {
            moved.push(txn.origin.seq);
        }
        !gone
    });
    let seqs: Vec<u64> = batch.iter().map(|t| t.origin.seq).collect();
    // Sent to this member as the leader of `term`: a member that lost that leadership
    // (and perhaps won another term since) refuses it, and so every batch after it.
    let leads_in_term = {
        let m = raft.metrics();
        let m = m.borrow();
        m.state == openraft::ServerState::Leader && m.current_term == term
    };
    // The whole batch is one log entry: committed, or refused, together.
    let outcome = if !leads_in_term {
        Some(Err(()))
    } else if batch.is_empty() {
        None
    } else {
        super::count_proposal(core, &batch);
        Some(raft.client_write_ff(TxnBatch(batch)).await.map_err(|_| ()))
    };
    async move {
        let committed = match outcome {
            None => true,
            Some(Ok(rx)) => matches!(rx.await, Ok(Ok(_))),
            Some(Err(_)) => false,
        };
        let refused = if committed { Vec::new() } else { seqs };
        PeerReply::Forwarded { refused, moved }
    }
}

/// Handles one peer message.
async fn answer(
    raft: &Raft<TypeConfig>,
    core: &ServerCore,
    service: &PeerService,
    faults: &PeerFaults,
    request: PeerRequest,
) -> PeerReply {
    match request {
        PeerRequest::PreVote(r) => {
            let m = raft.metrics().borrow().clone();
            let answer = service.elector.answer(&r, &m, service.log.last_log_id());
            tracing::debug!(candidate = r.candidate, term = r.term, ?answer, "pre-vote");
            PeerReply::PreVote(answer)
        }
        PeerRequest::AppendEntries(r) => PeerReply::AppendEntries(raft.append_entries(r).await),
        PeerRequest::Vote(r) => PeerReply::Vote(raft.vote(r).await),
        PeerRequest::InstallSnapshot(r) => {
            PeerReply::InstallSnapshot(raft.install_snapshot(r).await)
        }
        PeerRequest::Forward { term, batch } => {
            append_in_order(raft, core, term, batch).await.await
        }
        PeerRequest::Touch(sessions) => {
            let now = std::time::Instant::now();
            let mut tracker = core.tracker();
            for session in sessions {
                tracker.touch(session, now);
            }
            PeerReply::Touched
        }
        PeerRequest::Reconfig(request) => PeerReply::Reconfigured(
            super::reconfig::reconfigure(raft, core, faults, &request)
                .await
                .map_err(|e| e.code()),
        ),
        PeerRequest::Removed => {
            tracing::info!("removed from the ensemble by reconfig");
            core.set_removed(true);
            PeerReply::Noted
        }
        PeerRequest::Initialized => {
            PeerReply::Initialized(raft.is_initialized().await.unwrap_or(false))
        }
        PeerRequest::Revalidate { session, owner } => PeerReply::Revalidated(
            core.tracker()
                .set_owner(session, owner, std::time::Instant::now()),
        ),
        PeerRequest::ReadIndex => PeerReply::ReadIndex(
            raft.get_read_log_id()
                .await
                .ok()
                .map(|(read, _)| read.map_or(0, |id| id.index)),
        ),
    }
}
