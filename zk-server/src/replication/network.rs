//! openraft's network (`RaftNetwork`): how this member's openraft reaches its peers.
//! A standalone server has no peers, so every peer is unreachable ([`NoPeers`]); a
//! member of an ensemble sends openraft's RPCs over its links to its peers
//! ([`TcpPeers`], see DESIGN.md, "Peer transport").

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
use openraft::BasicNode;

use super::links::{PeerFaults, PeerLink};
use super::wire::{PeerReply, PeerRequest};
use super::TypeConfig;

type NodeId = u64;

/// Hands out clients to peers.
#[derive(Debug, Clone, Default)]
pub struct NoPeers;

/// A client to a peer that cannot be reached.
#[derive(Debug, Clone)]
pub struct UnreachablePeer {
    target: NodeId,
}

impl UnreachablePeer {
    fn error<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        let io = std::io::Error::other(format!("no transport to peer {}", self.target));
        RPCError::Unreachable(Unreachable::new(&io))
    }
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = UnreachablePeer;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        UnreachablePeer { target }
    }
}

impl RaftNetwork<TypeConfig> for UnreachablePeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.error())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.error())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.error())
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
            target,
            link: PeerLink::new(self.me, target, node.addr.clone(), self.faults.clone()),
        }
    }
}

/// openraft's client to one peer.
#[derive(Debug)]
pub struct TcpPeer {
    target: NodeId,
    link: PeerLink,
}

/// How long openraft pauses replication to a member it could not reach (its own
/// default is 500 ms, longer than a restarted member's election timeout); the
/// link's own backoff ([`super::links`]) throttles the attempts.
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
