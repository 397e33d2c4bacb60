//! The peer protocol on the wire: what members say to each other ([`PeerRequest`],
//! [`PeerReply`]) and how it is framed. Each frame is a 4-byte big-endian length and
//! an rmp-serde payload `(request id, message)`; the id matches a reply to its
//! request on a multiplexed link ([`super::links`]). Besides openraft's RPCs the
//! messages carry the ensemble's own traffic to the leader: forwarded writes, session
//! touches, read-index queries (for `sync`), revalidations and reconfig.
//!
//! Bytes and frames only: no connection, no server state. A frame claiming more than
//! [`MAX_MESSAGE`] bytes is refused before it is read, and a frame's buffer grows as
//! its bytes arrive, never by the length its sender claims.

use std::io;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::LogId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::TypeConfig;
use crate::txn::Txn;

type NodeId = u64;

/// Largest peer message accepted (snapshot chunks and entry batches stay far below).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

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

/// A candidate's question to the other voters: would you vote for me in `term`?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVote {
    /// The member asking.
    pub candidate: u64,
    /// The term it would stand in: one above its own.
    pub term: u64,
    /// The last entry of its log.
    pub last_log_id: Option<LogId<u64>>,
}

/// A voter's answer to a [`PreVote`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteAnswer {
    /// Whether it would vote for the candidate.
    pub granted: bool,
    /// How long, in milliseconds, it will still refuse the real vote: openraft's lease
    /// from the last heartbeat it heard.
    pub lease_left_ms: u64,
}

/// Encodes one frame: length, then `(id, message)`.
pub(crate) fn encode<T: Serialize>(id: u64, message: &T) -> io::Result<Vec<u8>> {
    let payload = rmp_serde::to_vec(&(id, message)).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Reads one frame, refusing oversize ones before reading them.
pub(crate) async fn read_frame<T: for<'de> Deserialize<'de>>(
    stream: &mut (impl AsyncRead + Unpin),
) -> io::Result<(u64, T)> {
    let mut payload = Vec::new();
    read_payload(stream, MAX_MESSAGE, &mut payload).await?;
    rmp_serde::from_slice(&payload).map_err(io::Error::other)
}

/// How much of a frame's claimed length is reserved before any of it has arrived.
pub(crate) const FIRST_RESERVE: usize = 64 * 1024;

/// Reads one frame's payload into `payload`, refusing a claimed length above `max`
/// before reading any of it. The buffer grows as bytes arrive, not by the length the
/// peer claims: a peer that claims much and sends little costs what it sent.
pub(crate) async fn read_payload(
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
pub(super) async fn write_frames(
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpStream};

    use super::*;

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
