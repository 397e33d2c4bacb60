//! Replacing a leader whose process died without waiting out the election timeout.
//!
//! When a leader's process dies, the kernel closes its sockets: its followers read
//! end-of-file on the connection it replicated over. A follower that sees this asks
//! the leader's peer port: refused means no process listens there any more. It then
//! waits out the lease it gave the leader (openraft's voters refuse to elect before
//! it ends, so a leader that was only slow keeps its place), plus a random part of a
//! heartbeat so that the followers do not split the vote, checks once more that the
//! leader is still the dead one, and starts an election. A leader cut off by the
//! network (no end-of-file, no refusal) is replaced by openraft's own timeout.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use openraft::{Raft, ServerState};
use tokio::net::TcpStream;

use super::TypeConfig;
use crate::core::ServerCore;

/// How long asking the leader's peer port may take.
const PROBE_WITHIN: Duration = Duration::from_millis(50);

/// A connection on which `peer` was sending as leader ended: if `peer` still leads in
/// this member's view and its process is gone, elect a new leader soon.
pub(crate) fn connection_lost(raft: &Raft<TypeConfig>, core: &Arc<ServerCore>, peer: u64) {
    let (raft, core) = (raft.clone(), core.clone());
    tokio::spawn(async move { elect_if_gone(raft, core, peer).await });
}

async fn elect_if_gone(raft: Raft<TypeConfig>, core: Arc<ServerCore>, peer: u64) {
    let Some(addr) = dead_leader_addr(&raft, &core, peer) else {
        return;
    };
    if !refused(&addr).await {
        return;
    }
    let config = raft.config();
    let heartbeat = config.heartbeat_interval.max(1);
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % heartbeat;
    let wait = Duration::from_millis(config.election_timeout_max + jitter);
    tokio::time::sleep(wait).await;
    if dead_leader_addr(&raft, &core, peer).is_none() || !refused(&addr).await {
        return;
    }
    tracing::info!(
        leader = peer,
        "the leader's process is gone; starting an election"
    );
    if let Err(e) = raft.trigger().elect().await {
        tracing::debug!(error = %e, "could not start an election");
    }
}

/// `peer`'s peer address if this member follows it as its voting follower (an
/// observer or a removed member does not elect).
fn dead_leader_addr(raft: &Raft<TypeConfig>, core: &ServerCore, peer: u64) -> Option<String> {
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
        tokio::time::timeout(PROBE_WITHIN, TcpStream::connect(addr)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}
