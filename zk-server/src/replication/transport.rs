//! The peer transport: messages between members over TCP, each frame a 4-byte
//! big-endian length and an rmp-serde payload `(request id, message)`. Besides
//! openraft's RPCs it carries the ensemble's own traffic to the leader: forwarded
//! writes, session touches, read-index queries (for `sync`), revalidations and
//! reconfig.
//!
//! One connection per pair of members carries everything, multiplexed and
//! pipelined: requests go out as they are made, each with an id, and replies are
//! matched by id in whatever order they come. The receiving side answers each
//! request in a task of its own, except forwarded writes, which it hands to openraft
//! in the order they arrived before answering them (the log order is the order a
//! follower sent them). A failed connection is remade on the next request, after a
//! backoff that grows while the peer stays unreachable.
//!
//! [`PeerFaults`] cuts chosen members off from their peers (tests, `TestingCluster`),
//! and carries the member's [`PeerTls`] when `sslQuorum=true`: then every link is
//! mutual TLS, each side's certificate verified against the quorum trust store, and a
//! member whose certificate is not trusted can neither reach its peers nor be reached.
//! With `quorum.auth.enableSasl=true` it also carries the member's [`PeerSasl`]: every
//! link starts with a DIGEST-MD5 handshake in both directions ([`super::peer_sasl`])
//! before any other frame, and a link whose handshake fails is dropped.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::election::{leader_of_message, Elector, PreVote, PreVoteAnswer};
use super::log_store::LogStore;
use super::peer_sasl::{self, PeerSasl};
use super::TypeConfig;
use crate::core::ServerCore;
use crate::txn::{Txn, TxnBatch};

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
    /// Whether the receiver would vote for a candidate ([`super::election`]).
    PreVote(PreVote),
    /// A snapshot chunk for a lagging member.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Writes a follower or observer took from its clients, for the leader to append
    /// in this order, if it still leads in `term`.
    Forward {
        /// The term of the leader they are meant for.
        term: u64,
        /// The writes.
        batch: Vec<Txn>,
    },
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
    /// To PreVote: whether the receiver would vote for the candidate, and how long its
    /// lease still holds.
    PreVote(PreVoteAnswer),
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
/// the network had failed. Shared by the members of one in-process cluster. Each
/// member's copy also carries its own quorum TLS, if any ([`PeerFaults::with_tls`]).
#[derive(Debug, Clone, Default)]
pub struct PeerFaults {
    isolated: Arc<Mutex<BTreeSet<NodeId>>>,
    tls: Option<Arc<PeerTls>>,
    sasl: Option<Arc<PeerSasl>>,
}

/// A member's TLS for its peer links (`sslQuorum=true`): it presents its certificate
/// both when it connects and when it is connected to, and requires a certificate that
/// chains to the quorum trust store from the other side.
pub struct PeerTls {
    connector: tokio_rustls::TlsConnector,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    /// Reads the `ssl.quorum.*` stores. Peers must present a certificate whatever
    /// `ssl.quorum.clientAuth` says: links between members are always mutual.
    pub fn new(settings: &crate::config::TlsSettings) -> Result<PeerTls, crate::tls::TlsError> {
        let mutual = crate::config::TlsSettings {
            client_auth: crate::config::ClientAuth::Need,
            ..settings.clone()
        };
        Ok(PeerTls {
            connector: tokio_rustls::TlsConnector::from(crate::tls::client_config(&mutual)?),
            acceptor: tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&mutual)?),
        })
    }
}

/// One side of a peer connection: its reading and writing halves.
type Halves = (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
);

/// How long a peer may take over its side of a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

impl PeerFaults {
    /// This member's copy: the same faults, and `tls` for its links.
    pub fn with_tls(&self, tls: Option<Arc<PeerTls>>) -> PeerFaults {
        PeerFaults {
            isolated: self.isolated.clone(),
            tls,
            sasl: self.sasl.clone(),
        }
    }

    /// This member's copy with `sasl` for its links (`quorum.auth.enableSasl`).
    pub fn with_sasl(&self, sasl: Option<Arc<PeerSasl>>) -> PeerFaults {
        PeerFaults {
            sasl,
            ..self.clone()
        }
    }

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

/// Encodes one frame: length, then `(id, message)`.
pub(super) fn encode<T: Serialize>(id: u64, message: &T) -> io::Result<Vec<u8>> {
    let payload = rmp_serde::to_vec(&(id, message)).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Reads one frame, refusing oversize ones before reading them.
pub(super) async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut (impl AsyncRead + Unpin),
) -> io::Result<(u64, T)> {
    let mut payload = Vec::new();
    read_payload(stream, MAX_MESSAGE, &mut payload).await?;
    rmp_serde::from_slice(&payload).map_err(io::Error::other)
}

/// How much of a frame's claimed length is reserved before any of it has arrived.
const FIRST_RESERVE: usize = 64 * 1024;

/// Reads one frame's payload into `payload`, refusing a claimed length above `max`
/// before reading any of it. The buffer grows as bytes arrive, not by the length the
/// peer claims: a peer that claims much and sends little costs what it sent.
async fn read_payload(
    stream: &mut (impl AsyncRead + Unpin),
    max: usize,
    payload: &mut Vec<u8>,
) -> io::Result<()> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::other(format!(
            "peer message of {len} bytes is too large"
        )));
    }
    payload.clear();
    payload.reserve(len.min(FIRST_RESERVE));
    let read = (&mut *stream).take(len as u64).read_to_end(payload).await?;
    if read < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("peer message cut short: {read} of {len} bytes"),
        ));
    }
    Ok(())
}

/// Writes queued frames until the queue closes or a write fails.
async fn write_frames(
    mut wr: impl AsyncWrite + Unpin,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    closed: CancellationToken,
) {
    let mut batch = Vec::new();
    loop {
        let frame = tokio::select! {
            _ = closed.cancelled() => break,
            frame = frames.recv() => match frame {
                Some(f) => f,
                None => break,
            },
        };
        batch.clear();
        batch.extend_from_slice(&frame);
        while let Ok(more) = frames.try_recv() {
            batch.extend_from_slice(&more);
            if batch.len() > 1 << 20 {
                break;
            }
        }
        if wr.write_all(&batch).await.is_err() {
            break;
        }
    }
    closed.cancel();
    let _ = wr.shutdown().await;
}

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
            let halves = match faults.tls.clone() {
                None => {
                    let (rd, wr) = stream.into_split();
                    (
                        Box::new(rd) as Box<dyn AsyncRead + Unpin + Send>,
                        Box::new(wr) as _,
                    )
                }
                Some(tls) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let (rd, wr) = tokio::io::split(tls);
                            (
                                Box::new(rd) as Box<dyn AsyncRead + Unpin + Send>,
                                Box::new(wr) as _,
                            )
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%remote, error = %e, "peer TLS handshake failed; refusing the peer");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%remote, "peer TLS handshake timed out; refusing the peer");
                            return;
                        }
                    }
                }
            };
            let mut halves = halves;
            if let Some(sasl) = faults.sasl.clone() {
                match peer_sasl::accepting(&mut halves.0, &mut halves.1, &sasl).await {
                    Ok(user) => tracing::debug!(%remote, user, "peer authenticated (quorum SASL)"),
                    Err(e) => {
                        tracing::warn!(%remote, error = %e, "quorum SASL failed; refusing the peer");
                        return;
                    }
                }
            }
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

/// A way to one peer over the shared, multiplexed connection from this member to it.
/// Cheap to clone; every clone and every purpose shares the one connection.
#[derive(Debug, Clone)]
pub struct PeerLink {
    me: NodeId,
    target: NodeId,
    addr: String,
    faults: PeerFaults,
}

/// A request already sent: its reply (or failure) to come.
pub type InFlight =
    std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<PeerReply>> + Send>>;

impl PeerLink {
    /// A link from `me` to `target` at `addr` (connected on first use).
    pub fn new(me: NodeId, target: NodeId, addr: String, faults: PeerFaults) -> PeerLink {
        PeerLink {
            me,
            target,
            addr,
            faults,
        }
    }

    /// Sends one request and waits for its reply, within `timeout`.
    pub async fn exchange(
        &self,
        request: &PeerRequest,
        timeout: Duration,
    ) -> io::Result<PeerReply> {
        self.send(request, timeout, None).await?.1.await
    }

    /// Sends one request now (after every request sent before it on this connection)
    /// and returns the connection's id and the reply to come. With `same_connection`,
    /// refuses to send over any other connection than that one (a sender that needs
    /// its requests to arrive in order, as forwarded writes must).
    pub async fn send(
        &self,
        request: &PeerRequest,
        timeout: Duration,
        same_connection: Option<u64>,
    ) -> io::Result<(u64, InFlight)> {
        if self.faults.blocked(self.me, self.target) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("member {} is cut off from member {}", self.me, self.target),
            ));
        }
        let mux = connection(
            self.me,
            self.target,
            &self.addr,
            self.faults.tls.as_deref(),
            self.faults.sasl.as_deref(),
        )
        .await?;
        if same_connection.is_some_and(|id| id != mux.id) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the connection requests were in flight on is gone",
            ));
        }
        let reply = mux.call(request)?;
        let id = mux.id;
        let faults = self.faults.clone();
        let (me, target) = (self.me, self.target);
        Ok((
            id,
            Box::pin(async move {
                let reply = tokio::time::timeout(timeout, reply).await.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "peer request timed out")
                })??;
                // A reply that crossed a cut made meanwhile is dropped, as the network
                // would have dropped it.
                if faults.blocked(me, target) {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "cut off while waiting",
                    ));
                }
                Ok(reply)
            }),
        ))
    }
}

/// One multiplexed connection to a peer.
#[derive(Debug)]
struct Mux {
    id: u64,
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<PeerReply>>>>,
    next: AtomicU64,
    closed: CancellationToken,
}

impl Drop for Mux {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl Mux {
    async fn connect(
        addr: &str,
        tls: Option<&PeerTls>,
        sasl: Option<&PeerSasl>,
    ) -> io::Result<Mux> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut rd, wr): Halves = match tls {
            None => {
                let (rd, wr) = stream.into_split();
                (Box::new(rd), Box::new(wr))
            }
            Some(tls) => {
                let name = crate::tls::server_name(addr)?;
                let session = tls.connector.connect(name, stream).await.map_err(|e| {
                    tracing::info!(peer = addr, error = %e, "peer TLS handshake failed");
                    e
                })?;
                let (rd, wr) = tokio::io::split(session);
                (Box::new(rd), Box::new(wr))
            }
        };
        let mut wr = wr;
        if let Some(sasl) = sasl {
            if let Err(e) = peer_sasl::connecting(&mut rd, &mut wr, sasl).await {
                tracing::warn!(peer = addr, error = %e, "quorum SASL failed; not connected");
                return Err(e);
            }
        }
        let (out, frames) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<PeerReply>>>> = Arc::default();
        tokio::spawn(write_frames(wr, frames, closed.clone()));
        let (waiting, done) = (pending.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    _ = done.cancelled() => break,
                    f = read_frame::<PeerReply>(&mut rd) => f,
                };
                let Ok((id, reply)) = frame else { break };
                let waiter = waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(reply);
                }
            }
            done.cancel();
            // Every request still waiting fails now.
            waiting.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(Mux {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            out,
            pending,
            next: AtomicU64::new(1),
            closed,
        })
    }

    fn call(
        &self,
        request: &PeerRequest,
    ) -> io::Result<impl std::future::Future<Output = io::Result<PeerReply>>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let frame = encode(id, request)?;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        if self.closed.is_cancelled() || self.out.send(frame).is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer connection closed",
            ));
        }
        Ok(async move {
            rx.await
                .map_err(|_| io::Error::new(io::ErrorKind::ConnectionReset, "peer connection lost"))
        })
    }
}

/// The connection from one member to one peer, and the backoff while it cannot be
/// made.
#[derive(Default)]
struct Slot {
    open: Option<Arc<Mux>>,
    failing: Option<(std::time::Instant, Duration)>,
}

type SlotKey = (NodeId, NodeId, String);

/// The connections of this process, by (from, to, address); each slot is locked on
/// its own, so a slow connection attempt to one peer holds up no other.
fn slot(key: SlotKey) -> Arc<tokio::sync::Mutex<Slot>> {
    static SLOTS: std::sync::OnceLock<Mutex<HashMap<SlotKey, Arc<tokio::sync::Mutex<Slot>>>>> =
        std::sync::OnceLock::new();
    SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone()
}

/// The open connection from `me` to `target`, made (or remade) if needed, not more
/// often than the backoff of a peer that keeps refusing allows.
async fn connection(
    me: NodeId,
    target: NodeId,
    addr: &str,
    tls: Option<&PeerTls>,
    sasl: Option<&PeerSasl>,
) -> io::Result<Arc<Mux>> {
    let slot = slot((me, target, addr.to_string()));
    let mut slot = slot.lock().await;
    if let Some(mux) = slot.open.as_ref().filter(|m| !m.closed.is_cancelled()) {
        return Ok(mux.clone());
    }
    slot.open = None;
    if let Some((since, wait)) = slot.failing {
        if since.elapsed() < wait {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("member {target} unreachable; retrying later"),
            ));
        }
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, Mux::connect(addr, tls, sasl)).await {
        Ok(Ok(mux)) => {
            let mux = Arc::new(mux);
            slot.failing = None;
            slot.open = Some(mux.clone());
            Ok(mux)
        }
        failed => {
            let wait = slot
                .failing
                .map_or(BACKOFF_FIRST, |(_, w)| (w * 2).min(BACKOFF_MAX));
            slot.failing = Some((std::time::Instant::now(), wait));
            Err(match failed {
                Ok(Err(e)) => e,
                _ => io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"),
            })
        }
    }
}

/// How long making a peer connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait after a failed connection attempt, doubled up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest wait between connection attempts to an unreachable peer: below a
/// heartbeat, so that a leader reaches a member that came back before that member's
/// election timer runs out. (A refused attempt on a local network costs a round trip.)
const BACKOFF_MAX: Duration = Duration::from_millis(25);

/// How long openraft pauses replication to a member it could not reach (its own
/// default is 500 ms, longer than a restarted member's election timeout); the
/// connection's own backoff above throttles the attempts.
const REPLICATION_BACKOFF: Duration = Duration::from_millis(10);

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
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(REPLICATION_BACKOFF))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that answers ReadIndex requests in the reverse order they came, with the
    /// request's id as the index.
    async fn reversing_peer(listener: TcpListener, requests: usize) {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let mut ids = Vec::new();
        for _ in 0..requests {
            let (id, request) = read_frame::<PeerRequest>(&mut rd).await.unwrap();
            assert!(matches!(request, PeerRequest::ReadIndex));
            ids.push(id);
        }
        for id in ids.into_iter().rev() {
            let frame = encode(id, &PeerReply::ReadIndex(Some(id))).unwrap();
            wr.write_all(&frame).await.unwrap();
        }
        // Stay open until the client is done.
        let _ = read_frame::<PeerRequest>(&mut rd).await;
    }

    #[tokio::test]
    async fn requests_are_pipelined_on_one_connection_and_matched_by_id() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(reversing_peer(listener, 3));
        let link = PeerLink::new(101, 102, addr, PeerFaults::default());
        let mut sent = Vec::new();
        for _ in 0..3 {
            // Each is on the wire before the first reply comes.
            let (connection, reply) = link
                .send(&PeerRequest::ReadIndex, Duration::from_secs(5), None)
                .await
                .unwrap();
            sent.push((connection, reply));
        }
        assert!(sent.windows(2).all(|w| w[0].0 == w[1].0), "one connection");
        let mut indexes = Vec::new();
        for (_, reply) in sent {
            match reply.await.unwrap() {
                PeerReply::ReadIndex(Some(i)) => indexes.push(i),
                other => panic!("{other:?}"),
            }
        }
        // Answered last-first, yet each caller got its own answer.
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    }

    #[tokio::test]
    async fn a_cut_off_member_reaches_nobody_and_unreachable_peers_are_backed_off() {
        let faults = PeerFaults::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        faults.isolate(202);
        let cut = PeerLink::new(201, 202, addr.clone(), faults.clone());
        let e = cut
            .exchange(&PeerRequest::ReadIndex, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        faults.heal(202);
        // Nothing listens: the first attempt is refused by the peer's host, the next
        // one at once by the backoff, without a connection attempt.
        let link = PeerLink::new(201, 202, addr, faults);
        assert!(link
            .exchange(&PeerRequest::ReadIndex, Duration::from_secs(1))
            .await
            .is_err());
        let e = link
            .exchange(&PeerRequest::ReadIndex, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("retrying later"), "{e}");
    }

    #[tokio::test]
    async fn an_oversize_frame_is_refused_before_it_is_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
            s
        });
        let (stream, _) = listener.accept().await.unwrap();
        let (mut rd, _wr) = stream.into_split();
        let e = read_frame::<PeerRequest>(&mut rd).await.unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        drop(client);
    }

    /// A peer's claim of `claimed` bytes followed by `sent` bytes of payload.
    fn claim(claimed: u32, sent: usize) -> Vec<u8> {
        let mut bytes = claimed.to_be_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(7u8, sent));
        bytes
    }

    #[tokio::test]
    async fn a_large_claim_that_is_cut_short_allocates_only_what_arrived() {
        let mut payload = Vec::new();
        let bytes = claim(60 * 1024 * 1024, 10);
        let e = read_payload(&mut &bytes[..], MAX_MESSAGE, &mut payload)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(payload.len(), 10);
        assert!(
            payload.capacity() <= FIRST_RESERVE,
            "{}",
            payload.capacity()
        );
    }

    #[tokio::test]
    async fn a_large_claim_that_stalls_allocates_only_what_arrived() {
        let (mut peer, mut us) = tokio::io::duplex(1024);
        peer.write_all(&claim(60 * 1024 * 1024, 10)).await.unwrap();
        let mut payload = Vec::new();
        let read = read_payload(&mut us, MAX_MESSAGE, &mut payload);
        // The peer sends nothing more and keeps the connection open.
        assert!(tokio::time::timeout(Duration::from_millis(100), read)
            .await
            .is_err());
        assert_eq!(payload.len(), 10);
        assert!(
            payload.capacity() <= FIRST_RESERVE,
            "{}",
            payload.capacity()
        );
        drop(peer);
    }

    #[tokio::test]
    async fn a_frame_grows_its_buffer_as_it_arrives() {
        let mut payload = Vec::new();
        let bytes = claim(1024 * 1024, 1024 * 1024);
        read_payload(&mut &bytes[..], MAX_MESSAGE, &mut payload)
            .await
            .unwrap();
        assert_eq!(payload.len(), 1024 * 1024);
        assert!(payload.iter().all(|b| *b == 7));
        // And a frame read whole decodes.
        let frame = encode(9, &PeerRequest::Touch(vec![1, 2])).unwrap();
        let (id, request) = read_frame::<PeerRequest>(&mut &frame[..]).await.unwrap();
        assert_eq!(id, 9);
        assert!(matches!(request, PeerRequest::Touch(s) if s == vec![1, 2]));
    }
}
