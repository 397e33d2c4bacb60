//! Target `peer_frames`: a byte stream as a member's peer (quorum) port receives it,
//! through the peer transport's frame reader ([`crate::replication::wire`]): 4-byte
//! lengths checked against a maximum before anything is read, payloads read
//! incrementally, each decoded as what travels on the port — a request
//! ([`PeerRequest`]: openraft's RPCs, forwarded writes, touches, read-index, reconfig,
//! …), a reply ([`PeerReply`]) and a quorum SASL handshake frame ([`SaslFrame`]).
//!
//! The input: a selector byte (the maximum: a small one, 1 KiB or the real
//! [`MAX_MESSAGE`]; the size of each read, and whether reads are first pending), then
//! the stream.
//!
//! Checks: no panic; a frame above the maximum is refused, one cut short is an
//! `UnexpectedEof`; a payload read is never longer than the maximum. Whatever decodes
//! re-encodes (through [`encode`], the writer's own) to a frame that reads back through
//! [`read_frame`] and re-encodes to the same bytes. With
//! [`zk_proto::fuzzing::TrackingAllocator`] installed, no single allocation exceeds
//! 64 × the input + the reader's first reservation (64 KiB, twice) + serde's cap on a
//! preallocation from a claimed sequence length (1 MiB) + 4 KiB: a claimed length is
//! never allocated up front.

use std::collections::BTreeSet;
use std::io;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::chunked::ChunkedReader;
use crate::replication::peer_sasl::SaslFrame;
use crate::replication::wire::{
    encode, read_frame, read_payload, PeerReply, PeerRequest, PreVote, PreVoteAnswer,
    FIRST_RESERVE, MAX_MESSAGE,
};
use crate::txn::{Origin, Txn, TxnBatch, TxnOp};

/// serde's cap on what a sequence's claimed length may preallocate
/// (`serde::__private::size_hint::cautious`).
const SERDE_PREALLOCATION: usize = 1024 * 1024;

/// Runs one input (see the module documentation); panics on a finding.
pub fn peer_frames(data: &[u8]) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    let largest = zk_proto::fuzzing::largest_allocation(|| runtime.block_on(run(data)));
    let bound = 64 * data.len() + 2 * FIRST_RESERVE + SERDE_PREALLOCATION + 4096;
    assert!(
        largest <= bound,
        "allocated {largest} bytes for {} input bytes",
        data.len()
    );
}

async fn run(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let max = match selector & 3 {
        0 => 64,
        1 => 1024,
        _ => MAX_MESSAGE,
    };
    let step = usize::from(selector >> 3) + 1;
    let mut reads = if selector & 4 != 0 {
        // Every other read pending, starting with the first.
        ChunkedReader::alternating(stream, step, true)
    } else {
        ChunkedReader::new(stream, step)
    };
    let mut payload = Vec::new();
    let mut frames = 0usize;
    loop {
        match read_payload(&mut reads, max, &mut payload).await {
            Ok(()) => {
                assert!(payload.len() <= max, "a payload above the maximum");
                frames += 1;
                message::<PeerRequest>(&payload).await;
                message::<PeerReply>(&payload).await;
                message::<SaslFrame>(&payload).await;
            }
            Err(e) => {
                let at_end = reads.position() == stream.len();
                match e.kind() {
                    // Cut short: the stream ended within a length or a payload.
                    io::ErrorKind::UnexpectedEof => assert!(at_end),
                    _ => assert!(e.to_string().contains("too large"), "unexpected error {e}"),
                }
                break;
            }
        }
    }
    assert!(frames <= stream.len() / 4, "a frame without its length");
}

/// Decodes a payload as `(id, T)`; what decodes goes through the writer and back.
async fn message<T: Serialize + DeserializeOwned>(payload: &[u8]) {
    let Ok((id, value)) = rmp_serde::from_slice::<(u64, T)>(payload) else {
        return;
    };
    let frame = encode(id, &value).expect("a decoded message encodes");
    let (again_id, again) = read_frame::<T>(&mut &frame[..])
        .await
        .expect("an encoded frame reads back");
    assert_eq!(again_id, id);
    let second = encode(again_id, &again).expect("it encodes again");
    assert_eq!(second, frame, "encoding is not stable");
}

/// The seed corpus (written by `zk-server/examples/write_fuzz_seeds.rs`), as (file
/// name, input): streams of frames as the members' own writer encodes them, one
/// message kind per file, behind the three selectors' maxima.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let log_id = LogId::new(CommittedLeaderId::new(3, 1), 41);
    let members = Membership::new(vec![BTreeSet::from([1u64, 2, 3])], None);
    let entries: Vec<Entry<crate::replication::TypeConfig>> = vec![
        Entry {
            log_id,
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 42),
            payload: EntryPayload::Normal(TxnBatch(vec![txn(1), txn(2)])),
        },
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), 43),
            payload: EntryPayload::Membership(members),
        },
    ];
    let requests = vec![
        PeerRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id),
            entries,
            leader_commit: Some(log_id),
        }),
        PeerRequest::Vote(VoteRequest::new(Vote::new(4, 2), Some(log_id))),
        PeerRequest::PreVote(PreVote {
            candidate: 2,
            term: 4,
            last_log_id: Some(log_id),
        }),
        PeerRequest::Forward {
            term: 3,
            batch: vec![txn(3)],
        },
        PeerRequest::Touch(vec![1, 2, 3]),
        PeerRequest::ReadIndex,
        PeerRequest::Reconfig(zk_proto::ReconfigRequest {
            joining_servers: Some("server.4=127.0.0.1:2891:3891;2184".into()),
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        }),
        PeerRequest::Removed,
        PeerRequest::Initialized,
        PeerRequest::Revalidate {
            session: 0x100,
            owner: 2,
        },
    ];
    let replies = vec![
        PeerReply::AppendEntries(Ok(AppendEntriesResponse::Success)),
        PeerReply::PreVote(PreVoteAnswer {
            granted: true,
            lease_left_ms: 10,
        }),
        PeerReply::Forwarded {
            refused: vec![1],
            moved: vec![],
        },
        PeerReply::Touched,
        PeerReply::ReadIndex(Some(43)),
        PeerReply::Revalidated(Some(true)),
        PeerReply::Reconfigured(Ok(0x4_0000_0000)),
        PeerReply::Reconfigured(Err(-8)),
        PeerReply::Initialized(false),
        PeerReply::Noted,
    ];
    let sasl = [
        SaslFrame::Token(Vec::new()),
        SaslFrame::Token(b"realm=\"zk-sasl-md5\",nonce=\"abc\"".to_vec()),
        SaslFrame::Success(b"rspauth=1234".to_vec()),
        SaslFrame::Refused("no".into()),
    ];
    let encoded = "a seed message encodes";
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        frames.push((format!("request-{i}"), encode(i as u64, r).expect(encoded)));
    }
    for (i, r) in replies.iter().enumerate() {
        frames.push((format!("reply-{i}"), encode(i as u64, r).expect(encoded)));
    }
    for (i, r) in sasl.iter().enumerate() {
        frames.push((format!("sasl-{i}"), encode(0, r).expect(encoded)));
    }
    let mut seeds = Vec::new();
    for (i, (name, frame)) in frames.into_iter().enumerate() {
        // Selectors: the real maximum, reads of various sizes.
        let selector = [2u8, 6, 2 | (7 << 3), 3 | (31 << 3)][i % 4];
        let mut seed = vec![selector];
        seed.extend_from_slice(&frame);
        // A second frame behind the first, on some.
        if i % 3 == 0 {
            seed.extend_from_slice(&frame);
        }
        seeds.push((name, seed));
    }
    seeds
}

fn txn(seq: u64) -> Txn {
    let origin = Origin { server: 2, seq };
    Txn::for_test(origin, 0x100, 7, 1_700_000_000_000, TxnOp::CloseSession)
}
