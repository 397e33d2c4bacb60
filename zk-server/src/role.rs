//! What this server is in its ensemble right now — standalone, leader, follower,
//! observer, or looking for a leader — and the quorum facts the four-letter words
//! report. Written by replication as consensus moves; read by the client port (who
//! may connect) and the four-letter words.

use std::time::Instant;

/// A server's part in its ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The only member.
    Standalone,
    /// Leads a quorum.
    Leader,
    /// Votes and follows the leader.
    Follower,
    /// Follows the leader without voting (an openraft learner).
    Observer,
    /// Knows no leader it can reach with a quorum: serves no read-write client.
    Looking,
}

impl Role {
    /// `Mode:` in srvr/stat and `zk_server_state` in mntr, as ZooKeeper names it.
    pub fn mode(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Observer => "observer",
            Role::Looking => "looking",
        }
    }

    /// `zk_peer_state` in mntr.
    pub fn peer_state(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leading - broadcast",
            Role::Follower => "following - broadcast",
            Role::Observer => "observing - broadcast",
            Role::Looking => "looking",
        }
    }

    /// Whether read-write clients are served.
    pub fn serving(self) -> bool {
        !matches!(self, Role::Looking)
    }

    /// Whether this server leads (or is alone, which is the same for sessions).
    pub fn leads(self) -> bool {
        matches!(self, Role::Standalone | Role::Leader)
    }
}

/// The role and, on a leader, what it knows of its followers.
#[derive(Debug, Clone)]
pub struct QuorumView {
    /// This server's role.
    pub role: Role,
    /// The leader's member id, when one is known.
    pub leader: Option<u64>,
    /// When this server last took its current role.
    pub since: Instant,
    /// The consensus term this member is in (`zk_raft_term`; 0 when standalone).
    pub term: u64,
    /// Leaders this member saw take office since it started: one per term in which it
    /// found a leader (`zk_leader_changes`).
    pub leader_changes: u64,
    /// Voting members, this one included (`zk_quorum_size`).
    pub voters: usize,
    /// Members following this leader, voters and observers (`zk_learners`).
    pub learners: usize,
    /// Voting followers caught up within the last heartbeat (`zk_synced_followers`).
    pub synced_followers: usize,
    /// Observers caught up (`zk_synced_observers`).
    pub synced_observers: usize,
}

impl QuorumView {
    /// A standalone server's view.
    pub fn standalone() -> QuorumView {
        QuorumView {
            role: Role::Standalone,
            leader: None,
            since: Instant::now(),
            term: 0,
            leader_changes: 0,
            voters: 1,
            learners: 0,
            synced_followers: 0,
            synced_observers: 0,
        }
    }
}
