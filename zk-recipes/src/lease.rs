//! The lease-loss signal: a lock or leadership held through a session is only as good
//! as the session. Connected: held. Disconnected (or reconnecting): in doubt — the
//! session may be expiring on the servers, act as if not held. Expired or closed: lost.

use futures::StreamExt;
use zk_client::{Client, SessionState};

/// What a holder may assume now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// The session is connected: the lease holds.
    Held,
    /// The connection is lost: the session may expire any moment (Curator: SUSPENDED).
    Suspended,
    /// The session expired or was closed: the lease is gone for good (Curator: LOST).
    Lost,
}

impl From<SessionState> for LeaseState {
    fn from(state: SessionState) -> LeaseState {
        match state {
            SessionState::Connected => LeaseState::Held,
            // A read-only member is cut off from the quorum: nothing keeps the
            // session alive there.
            SessionState::Connecting
            | SessionState::Disconnected
            | SessionState::ConnectedReadOnly => LeaseState::Suspended,
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                LeaseState::Lost
            }
        }
    }
}

/// A watch on a lease, from the session it was taken with.
#[derive(Debug, Clone)]
pub struct Lease {
    session: i64,
    client: Client,
}

impl Lease {
    /// The lease of something held through `client`'s current session.
    pub fn new(client: &Client) -> Lease {
        Lease {
            session: client.session_id(),
            client: client.clone(),
        }
    }

    /// The lease now.
    pub fn state(&self) -> LeaseState {
        if self.client.session_id() != self.session {
            return LeaseState::Lost;
        }
        LeaseState::from(self.client.state())
    }

    /// Waits until the lease state differs from `from`; returns the new state.
    pub async fn changed_from(&mut self, from: LeaseState) -> LeaseState {
        // Follow transitions from before the first look, so none is missed between.
        let mut states = self.client.state_changes();
        loop {
            let now = self.state();
            if now != from {
                return now;
            }
            if states.next().await.is_none() {
                return self.state();
            }
        }
    }
}

/// Whether a client in `state` can never connect again: closed, failed auth, or
/// expired on a client that does not renew sessions.
pub(crate) fn client_is_over(client: &Client, state: SessionState) -> bool {
    state.is_terminal() && !(state == SessionState::Expired && client.renews_expired_sessions())
}
