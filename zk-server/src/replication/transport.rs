//! The peer transport: openraft's RPCs between members over TCP, each message a
//! 4-byte big-endian length and an rmp-serde payload. One persistent connection per
//! peer, re-established on the next RPC after a failure (openraft backs off between
//! attempts to an unreachable peer).
//!
//! Requests and replies alternate on a connection; openraft drives each peer's
//! replication stream one RPC at a time, so this costs no pipelining there.

use std::io;
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

/// Answers peers' RPCs on `listener` until `shutdown`.
pub async fn serve_peers(
    raft: Raft<TypeConfig>,
    listener: TcpListener,
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
                let reply = match request {
                    PeerRequest::AppendEntries(r) => {
                        PeerReply::AppendEntries(raft.append_entries(r).await)
                    }
                    PeerRequest::Vote(r) => PeerReply::Vote(raft.vote(r).await),
                    PeerRequest::InstallSnapshot(r) => {
                        PeerReply::InstallSnapshot(raft.install_snapshot(r).await)
                    }
                };
                if write_message(&mut stream, &reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Hands out TCP clients to peers; a peer's address is its `BasicNode::addr`.
#[derive(Debug, Clone, Default)]
pub struct TcpPeers;

/// A client to one peer.
#[derive(Debug)]
pub struct TcpPeer {
    target: NodeId,
    addr: String,
    stream: Option<TcpStream>,
}

impl RaftNetworkFactory<TypeConfig> for TcpPeers {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpPeer {
        TcpPeer {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

impl TcpPeer {
    /// Sends one request and waits for its reply, within `timeout`.
    async fn exchange(
        &mut self,
        request: &PeerRequest,
        timeout: Duration,
    ) -> io::Result<PeerReply> {
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
                "peer RPC timed out",
            ))
        });
        if result.is_err() {
            // The connection is in an unknown state: start afresh next time.
            self.stream = None;
        }
        result
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
            Ok(PeerReply::AppendEntries(r)) => r.map_err(|e| remote(self.target, e)),
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
            Ok(PeerReply::InstallSnapshot(r)) => r.map_err(|e| remote(self.target, e)),
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
            Ok(PeerReply::Vote(r)) => r.map_err(|e| remote(self.target, e)),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(self.unreachable(e)),
        }
    }
}
