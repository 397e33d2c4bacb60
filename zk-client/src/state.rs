//! The session's state, as a current value and a stream of changes.

/// Where the session stands. `Disconnected` is Curator's SUSPENDED (the session may
/// still be alive: leadership and locks are not guaranteed), `Expired` is LOST.
///
/// Read it now with [`crate::Client::state`], wait on it with
/// [`crate::Client::state_watcher`], or follow every transition with
/// [`crate::Client::state_changes`] (which has a running example).
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
