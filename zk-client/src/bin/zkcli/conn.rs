//! The shell's connection: made in the background as zkCli.sh's `ZooKeeper` object
//! makes it (commands wait for it), its state as zkCli.sh names it in the prompt, and
//! its state changes as watch events.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::task::JoinHandle;
use zk_client::{Client, Error, Notifications, SessionState, WatchedEvent};

type States = Pin<Box<dyn Stream<Item = SessionState> + Send>>;

/// The client the shell holds, shared with tab completion.
pub type Shared = Arc<Mutex<Option<Client>>>;

/// One session of the shell (a `connect` makes a new one).
pub struct Conn {
    /// The connect string, as given (shown in the prompt).
    pub host: String,
    timeout: Duration,
    read_only: bool,
    tls: Option<zk_client::TlsConfig>,
    client: Option<Client>,
    pending: Option<JoinHandle<zk_client::Result<Client>>>,
    closed: bool,
    states: Option<States>,
    /// The session's notifications, in the order they came (see `watches`).
    notifications: Option<Notifications>,
    shared: Shared,
}

/// How long a connection attempt may take before the command waiting for it fails
/// (another attempt starts in the background).
fn connect_timeout(session: Duration) -> Duration {
    session.min(Duration::from_secs(10))
}

impl Conn {
    /// Starts connecting to `host` (`host:port[,…][/chroot]`).
    pub fn start(
        host: &str,
        timeout: Duration,
        read_only: bool,
        tls: Option<zk_client::TlsConfig>,
        shared: Shared,
    ) -> Conn {
        let mut conn = Conn {
            host: host.to_string(),
            timeout,
            read_only,
            tls,
            client: None,
            pending: None,
            closed: false,
            states: None,
            notifications: None,
            shared,
        };
        conn.spawn();
        conn
    }

    fn spawn(&mut self) {
        let builder = Client::builder(&self.host)
            .session_timeout(self.timeout)
            .connect_timeout(connect_timeout(self.timeout))
            .read_only(self.read_only);
        let builder = match &self.tls {
            Some(tls) => builder.tls(tls.clone()),
            None => builder,
        };
        self.pending = Some(tokio::spawn(builder.connect()));
    }

    fn install(&mut self, client: Client) {
        self.states = Some(Box::pin(client.state_changes()));
        self.notifications = Some(client.notifications());
        if let Ok(mut s) = self.shared.lock() {
            *s = Some(client.clone());
        }
        self.client = Some(client);
        self.pending = None;
    }

    /// The session timeout asked for.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether commands can still be sent (Java's `States.isAlive()`).
    pub fn alive(&self) -> bool {
        !self.closed
            && self
                .client
                .as_ref()
                .is_none_or(|c| !c.state().is_terminal())
    }

    /// The state as zkCli.sh's prompt shows it (`ZooKeeper.States`).
    pub fn state_name(&self) -> &'static str {
        if self.closed {
            return "CLOSED";
        }
        match self.client.as_ref().map(Client::state) {
            None | Some(SessionState::Connecting | SessionState::Disconnected) => "CONNECTING",
            Some(SessionState::Connected) => "CONNECTED",
            Some(SessionState::ConnectedReadOnly) => "CONNECTEDREADONLY",
            Some(SessionState::Expired | SessionState::Closed) => "CLOSED",
            Some(SessionState::AuthFailed) => "AUTH_FAILED",
        }
    }

    /// Whether the session is connected now.
    pub fn connected(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.state().is_connected())
    }

    /// The client, waiting for the connection if it is being made; `Ok((client,
    /// true))` when it was made just now (the caller reports SyncConnected).
    pub async fn client(&mut self) -> Result<(Client, bool), Error> {
        if let Some(c) = &self.client {
            return Ok((c.clone(), false));
        }
        if self.closed {
            return Err(Error::Closed);
        }
        if self.pending.is_none() {
            self.spawn();
        }
        let Some(handle) = self.pending.as_mut() else {
            return Err(Error::ConnectionLoss);
        };
        match handle.await {
            Ok(Ok(client)) => {
                self.install(client.clone());
                Ok((client, true))
            }
            Ok(Err(e)) => {
                self.spawn();
                Err(match e {
                    Error::AuthFailed | Error::SessionExpired => e,
                    _ => Error::ConnectionLoss,
                })
            }
            Err(_) => {
                self.spawn();
                Err(Error::ConnectionLoss)
            }
        }
    }

    /// The next state change to report: `Connected` when the background connection
    /// is made, then the client's own changes.
    pub fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<SessionState> {
        if let Some(handle) = self.pending.as_mut() {
            match Pin::new(handle).poll(cx) {
                Poll::Ready(Ok(Ok(client))) => {
                    self.install(client);
                    return Poll::Ready(SessionState::Connected);
                }
                Poll::Ready(_) => {
                    // Failed: try again quietly, as Java's client keeps trying.
                    self.spawn();
                    if let Some(h) = self.pending.as_mut() {
                        let _ = Pin::new(h).poll(cx);
                    }
                }
                Poll::Pending => {}
            }
        }
        if let Some(states) = self.states.as_mut() {
            loop {
                match states.as_mut().poll_next(cx) {
                    Poll::Ready(Some(SessionState::Connecting)) => continue,
                    Poll::Ready(Some(s)) => return Poll::Ready(s),
                    Poll::Ready(None) => {
                        self.states = None;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        Poll::Pending
    }

    /// The next watch notification of the session (`None`: there is no session, or
    /// it ended). A closed session's last ones still come.
    pub fn poll_notification(&mut self, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        let Some(feed) = self.notifications.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(feed).poll_next(cx);
        if let Poll::Ready(None) = polled {
            self.notifications = None;
        }
        polled
    }

    /// A state change if there is one now.
    pub fn try_state(&mut self) -> Option<SessionState> {
        let waker = futures::task::noop_waker();
        match self.poll_state(&mut Context::from_waker(&waker)) {
            Poll::Ready(s) => Some(s),
            Poll::Pending => None,
        }
    }

    /// Closes the session (waiting for the server), or stops connecting. Whether there
    /// was a session to close (zkCli.sh then reports `Closed`).
    pub async fn close(&mut self) -> bool {
        if self.closed {
            return false;
        }
        self.closed = true;
        self.states = None;
        if let Ok(mut s) = self.shared.lock() {
            *s = None;
        }
        if let Some(handle) = self.pending.take() {
            handle.abort();
            if let Ok(Ok(client)) = handle.await {
                client.close().await;
            }
        }
        match self.client.take() {
            Some(c) if !c.state().is_terminal() => {
                c.close().await;
                true
            }
            Some(_) => false,
            None => true,
        }
    }
}
