//! The session's state: [`SessionState`], read now with [`crate::Client::state`] and
//! followed with [`StateChanges`] ([`crate::Client::state_changes`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio::sync::{broadcast, watch};

/// Where the session stands. `Disconnected` is Curator's SUSPENDED (the session may
/// still be alive: leadership and locks are not guaranteed), `Expired` is LOST.
///
/// Read it now with [`crate::Client::state`]; follow every transition, or wait for one,
/// with [`crate::Client::state_changes`] (which has a running example).
///
/// ```
/// use zk_client::SessionState;
/// assert!(SessionState::ConnectedReadOnly.is_connected());
/// assert!(!SessionState::Disconnected.is_terminal()); // the client reconnects
/// assert!(SessionState::Expired.is_terminal());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Establishing the first connection.
    Connecting,
    /// Connected to a read-write server.
    Connected,
    /// Connected to a read-only server (reads only).
    ConnectedReadOnly,
    /// Lost the connection; reconnecting with the same session.
    Disconnected,
    /// The server expired the session. Terminal, unless the client renews expired
    /// sessions: then `Connecting` follows, towards a new session.
    Expired,
    /// Authentication failed. Terminal.
    AuthFailed,
    /// The client was closed. Terminal.
    Closed,
}

impl SessionState {
    /// Whether requests can be answered now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// Whether the session is over for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }
}

/// Every state transition of a session from the moment it was made, in order: a
/// [`Stream`] of [`SessionState`] that ends after a terminal state (after `Expired`
/// only on a client that does not renew expired sessions). It also tells the state
/// now and waits for a state ([`StateChanges::wait_for`]). A reader more than 64
/// transitions behind skips the oldest.
pub struct StateChanges {
    now: watch::Receiver<SessionState>,
    transitions: Pin<Box<dyn Stream<Item = SessionState> + Send + 'static>>,
}

impl StateChanges {
    pub(crate) fn new(
        now: watch::Receiver<SessionState>,
        events: broadcast::Receiver<SessionState>,
        renews_expired: bool,
    ) -> StateChanges {
        let transitions =
            futures::stream::unfold((events, false), move |(mut rx, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match rx.recv().await {
                        Ok(state) => {
                            let last = state.is_terminal()
                                && !(renews_expired && state == SessionState::Expired);
                            return Some((state, (rx, last)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
        StateChanges {
            now,
            transitions: Box::pin(transitions),
        }
    }

    /// The session's state now.
    pub fn current(&self) -> SessionState {
        *self.now.borrow()
    }

    /// Waits until the state satisfies `want`, now or after later transitions, and
    /// returns that state; `None` if the stream ended (a terminal state) first.
    pub async fn wait_for(
        &mut self,
        mut want: impl FnMut(SessionState) -> bool,
    ) -> Option<SessionState> {
        let now = self.current();
        if want(now) {
            return Some(now);
        }
        while let Some(state) = self.transitions.next().await {
            if want(state) {
                return Some(state);
            }
        }
        None
    }
}

impl Stream for StateChanges {
    type Item = SessionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        self.transitions.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for StateChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateChanges")
            .field("current", &self.current())
            .finish()
    }
}
