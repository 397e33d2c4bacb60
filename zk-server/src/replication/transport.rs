//! The peer transport: messages between members over TCP, each a 4-byte big-endian
//! length and an rmp-serde payload. Besides openraft's RPCs it carries the ensemble's
//! own traffic to the leader: forwarded writes, session touches and read-index queries
//! (for `sync`).
//!
//! A [`PeerLink`] is one persistent connection to one peer, re-established on the next
//! request after a failure (openraft backs off between attempts to an unreachable
//! peer). Requests and replies alternate on a link; openraft drives each peer's
//! replication stream one RPC at a time, and each kind of ensemble traffic has a link
//! of its own, so nothing waits behind an unrelated slow reply.
//!
//! [`PeerFaults`] cuts chosen members off from their peers (tests, `TestingCluster`).

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::TypeConfig;
use crate::core::ServerCore;
use crate::txn::Txn;

type NodeId = u64;

/// Largest peer message accepted (snapshot chunks and entry batches stay far below).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A request from one member to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Elections.
    Vote(VoteRequest<NodeId>),
    /// A snapshot chunk for a lagging member.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Writes a follower or observer took from its clients, for the leader to append
    /// in this order.
    Forward(Vec<Txn>),
    /// Sessions a member's clients were heard from since its last touch.
    Touch(Vec<i64>),
    /// The leader's commit point, after it confirmed its leadership with a quorum.
    ReadIndex,
    /// A client's reconfig, for the leader to carry out.
    Reconfig(zk_proto::ReconfigRequest),
    /// The receiver was removed from the ensemble by reconfig.
    Removed,
    /// Whether the receiver has joined a group (a starting member that finds one
    /// does not bootstrap its own).
    Initialized,
    /// A session reconnected through member `owner`.
    Revalidate {
        /// The session.
        session: i64,
        /// The member its client is on now.
        owner: u64,
    },
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerReply {
    /// To AppendEntries.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To Vote.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To InstallSnapshot.
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// To Forward, once every write of the batch was committed or refused.
    Forwarded {
        /// Origin sequence numbers of writes refused for want of leadership.
        refused: Vec<u64>,
        /// Origin sequence numbers of writes whose session moved to another member.
        moved: Vec<u64>,
    },
    /// To Touch.
    Touched,
    /// To ReadIndex: the index to apply up to, or `None` when this member cannot
    /// confirm it leads.
    ReadIndex(Option<u64>),
    /// To Revalidate (see `SessionTracker::set_owner`).
    Revalidated(Option<bool>),
    /// To Reconfig: the zxid that published the new configuration, or the error code.
    Reconfigured(Result<i64, i32>),
    /// To Initialized.
    Initialized(bool),
    /// To Removed.
    Noted,
}

/// Members cut off from their peers: every message from or to them is dropped as if
/// the network had failed. Shared by the members of one in-process cluster.
#[derive(Debug, Clone, Default)]
pub struct PeerFaults {
    isolated: Arc<Mutex<BTreeSet<NodeId>>>,
}

impl PeerFaults {
    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<NodeId>> {
        self.isolated.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts `member` off from every peer.
    pub fn isolate(&self, member: NodeId) {
        self.set().insert(member);
    }

    /// Reconnects `member` to its peers.
    pub fn heal(&self, member: NodeId) {
        self.set().remove(&member);
    }

    /// Whether messages between `a` and `b` are dropped.
    pub fn blocked(&self, a: NodeId, b: NodeId) -> bool {
        let set = self.set();
        set.contains(&a) || set.contains(&b)
    }
}

async fn write_message<T: Serialize>(stream: &mut TcpStream, message: &T) -> io::Result<()> {
    let payload = rmp_serde::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    stream.write_all(&frame).await
}

async fn read_message<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::other(format!(
            "peer message of {len} bytes is too large"
        )));
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    rmp_serde::from_slice(&payload).map_err(io::Error::other)
}

/// Answers peers' messages on `listener` until `shutdown`.
pub async fn serve_peers(
    raft: Raft<TypeConfig>,
    core: Arc<ServerCore>,
    listener: TcpListener,
    faults: PeerFaults,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let core = core.clone();
        let faults = faults.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            loop {
                let request = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = read_message::<PeerRequest>(&mut stream) => match r {
                        Ok(r) => r,
                        Err(_) => return,
                    },
                };
                let reply = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    reply = answer(&raft, &core, &faults, request) => reply,
                };
                if write_message(&mut stream, &reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Handles one peer message.
async fn answer(
    raft: &Raft<TypeConfig>,
    core: &ServerCore,
    faults: &PeerFaults,
    request: PeerRequest,
) -> PeerReply {
    match request {
        PeerRequest::AppendEntries(r) => PeerReply::AppendEntries(raft.append_entries(r).await),
        PeerRequest::Vote(r) => PeerReply::Vote(raft.vote(r).await),
        PeerRequest::InstallSnapshot(r) => {
            PeerReply::InstallSnapshot(raft.install_snapshot(r).await)
        }
        PeerRequest::Forward(batch) => {
            // Appended in the order received; the batch is answered when every write
            // in it was committed or refused.
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut refused = Vec::new();
            let mut moved = Vec::new();
            for txn in batch {
                let seq = txn.origin.seq;
                if core.moved(&txn) {
                    moved.push(seq);
                    continue;
                }
                match raft.client_write_ff(txn).await {
                    Ok(rx) => outcomes.push((seq, rx)),
                    Err(_) => refused.push(seq),
                }
            }
            for (seq, rx) in outcomes {
                if !matches!(rx.await, Ok(Ok(_))) {
                    refused.push(seq);
                }
            }
            PeerReply::Forwarded { refused, moved }
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

/// Hands out TCP clients to peers; a peer's address is its `BasicNode::addr`.
#[derive(Debug, Clone)]
pub struct TcpPeers {
    me: NodeId,
    faults: PeerFaults,
}

impl TcpPeers {
    /// Clients for member `me`, subject to `faults`.
    pub fn new(me: NodeId, faults: PeerFaults) -> TcpPeers {
        TcpPeers { me, faults }
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpPeers {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpPeer {
        TcpPeer {
            link: PeerLink::new(self.me, target, node.addr.clone(), self.faults.clone()),
        }
    }
}

/// openraft's client to one peer.
#[derive(Debug)]
pub struct TcpPeer {
    link: PeerLink,
}

/// One connection from this member to a peer, made on first use and remade after a
/// failure.
#[derive(Debug)]
pub struct PeerLink {
    me: NodeId,
    target: NodeId,
    addr: String,
    faults: PeerFaults,
    stream: Option<TcpStream>,
}

impl PeerLink {
    /// A link from `me` to `target` at `addr` (not connected yet).
    pub fn new(me: NodeId, target: NodeId, addr: String, faults: PeerFaults) -> PeerLink {
        PeerLink {
            me,
            target,
            addr,
            faults,
            stream: None,
        }
    }

    /// The peer this link goes to.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Sends one request and waits for its reply, within `timeout`.
    pub async fn exchange(
        &mut self,
        request: &PeerRequest,
        timeout: Duration,
    ) -> io::Result<PeerReply> {
        if self.faults.blocked(self.me, self.target) {
            self.stream = None;
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("member {} is cut off from member {}", self.me, self.target),
            ));
        }
        let result = tokio::time::timeout(timeout, async {
            if self.stream.is_none() {
                let stream = TcpStream::connect(self.addr.as_str()).await?;
                stream.set_nodelay(true)?;
                self.stream = Some(stream);
            }
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::other("no connection"))?;
            write_message(stream, request).await?;
            read_message::<PeerReply>(stream).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer request timed out",
            ))
        });
        if result.is_err() {
            // The connection is in an unknown state: start afresh next time.
            self.stream = None;
        }
        result
    }
}

impl TcpPeer {
    async fn exchange(
        &mut self,
        request: &PeerRequest,
        timeout: Duration,
    ) -> io::Result<PeerReply> {
        self.link.exchange(request, timeout).await
    }

    fn unreachable<E: std::error::Error>(&self, e: io::Error) -> RPCError<NodeId, BasicNode, E> {
        if e.kind() == io::ErrorKind::TimedOut {
            RPCError::Network(NetworkError::new(&e))
        } else {
            RPCError::Unreachable(Unreachable::new(&e))
        }
    }
}

fn remote<E: std::error::Error>(target: NodeId, e: E) -> RPCError<NodeId, BasicNode, E> {
    RPCError::RemoteError(RemoteError::new(target, e))
}

fn mismatch<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&io::Error::other(
        "reply of the wrong kind",
    )))
}

impl RaftNetwork<TypeConfig> for TcpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .exchange(&PeerRequest::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerReply::AppendEntries(r)) => r.map_err(|e| remote(self.link.target, e)),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .exchange(&PeerRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerReply::InstallSnapshot(r)) => r.map_err(|e| remote(self.link.target, e)),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .exchange(&PeerRequest::Vote(rpc), option.hard_ttl())
            .await
        {
            Ok(PeerReply::Vote(r)) => r.map_err(|e| remote(self.link.target, e)),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(self.unreachable(e)),
        }
    }
}
