//! The session task: the one owner of the socket. It connects (shuffled hosts, backoff),
//! resumes the session (id, password, last zxid), re-sends auth and watches, writes
//! queued requests in order with xids, matches replies (which come back in request
//! order), dispatches notifications, pings, and reports the session's state.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::seq::SliceRandom;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tracing::{debug, info, warn};
use zk_proto::frame::{write_frame, FrameDecoder, CLIENT_MAX_PACKET_LENGTH};
use zk_proto::{
    xid, AuthPacket, ConnectRequest, ConnectResponse, ErrorCode, KeeperState, OpCode, Reader,
    Record, ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};

use crate::connect_string::ConnectString;
use crate::error::{Error, Result};
use crate::rebalance::{should_move, Move, ReconfigPlan};
use crate::state::SessionState;
use crate::watch::{NotificationTaps, Registration, WatchRegistry, WatchedEvent};

/// A request on its way to the server.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub request: Request,
    pub path: String,
    pub watch: Option<Registration>,
    pub responder: oneshot::Sender<Result<Response>>,
}

/// What a [`crate::Client`] asks of its session task.
#[derive(Debug)]
pub(crate) enum Command {
    Request(Outgoing),
    AddAuth(AuthPacket, oneshot::Sender<Result<()>>),
    RemoveWatches(String, zk_proto::WatcherType),
    /// A new server list (`host:port`, deduplicated, not empty); answers whether the
    /// client moves to another server to rebalance ([`crate::Client::update_server_list`]).
    UpdateServerList(Vec<String>, oneshot::Sender<bool>),
    Close(oneshot::Sender<()>),
}

/// Client settings the session task needs.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub connect: ConnectString,
    pub session_timeout: Duration,
    pub connect_timeout: Duration,
    pub read_only: bool,
    pub max_in_flight: usize,
    pub session: Option<(i64, Vec<u8>)>,
    /// After an expiry, start a new session instead of ending (Curator's behaviour).
    pub renew_expired: bool,
    /// Where every notification goes too ([`crate::Client::notifications`]).
    pub notifications: NotificationTaps,
    /// SASL DIGEST-MD5 on every connection, when configured
    /// ([`crate::ClientBuilder::sasl_digest`]).
    pub sasl: Option<crate::sasl::SaslLogin>,
    /// TLS for every connection, when configured ([`crate::ClientBuilder::tls`]).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::Connector>,
}

/// A byte stream to the server: plain TCP, or a TLS session over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Connects to `host` (`host:port`) within `within`: TCP, then TLS when configured.
async fn open(
    config: &SessionConfig,
    host: &str,
    within: Duration,
) -> std::io::Result<Box<dyn Stream>> {
    let stream = timeout(within, TcpStream::connect(host))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    // While nothing listens on a loopback port, a connect from an ephemeral port
    // that happens to equal it connects the socket to itself (TCP simultaneous
    // open); its own handshake echoed back would read as "session expired".
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "socket connected to itself",
        ));
    }
    stream.set_nodelay(true)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        return timeout(within, tls.connect(host, stream))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })?;
    }
    #[cfg(not(feature = "tls"))]
    let _ = config;
    Ok(Box::new(stream))
}

/// What [`Session::queue`] made of a command.
enum Queued {
    /// Encoded (or done locally): go on.
    Sent,
    /// Close the session, acknowledging to the closer if any.
    Close(Option<oneshot::Sender<()>>),
    /// The server list changed and this client moves to another server.
    Move,
}

/// Why a connection ended.
enum Ended {
    /// The socket failed or went quiet: reconnect.
    Lost,
    /// The session is over (expired, auth failed, closed): stop.
    Final(SessionState),
}

impl Ended {
    /// What requests still in flight fail with.
    fn error(&self) -> Error {
        match self {
            Ended::Lost => Error::ConnectionLoss,
            Ended::Final(SessionState::Expired) => Error::SessionExpired,
            Ended::Final(SessionState::AuthFailed) => Error::AuthFailed,
            Ended::Final(_) => Error::Closed,
        }
    }
}

struct Session {
    config: SessionConfig,
    /// Commands taken off the queue while disconnected (looking for a close behind
    /// them); they go out first, in order, once connected, so nothing overtakes them.
    stash: std::collections::VecDeque<Command>,
    hosts: Vec<String>,
    next_host: usize,
    session_id: i64,
    passwd: Bytes,
    negotiated: Duration,
    last_zxid: i64,
    auths: Vec<AuthPacket>,
    watches: WatchRegistry,
    state: watch::Sender<SessionState>,
    state_events: tokio::sync::broadcast::Sender<SessionState>,
    identity: watch::Sender<(i64, Vec<u8>)>,
    server: watch::Sender<Option<String>>,
    /// Whether this session has ever been on a read-write server. A session made on a
    /// read-only server is local to it: on the way to a read-write server the client
    /// asks for a new session (ZooKeeper's `seenRwServerBefore`).
    seen_rw: bool,
    /// A read-write server found while on a read-only one: connect there next.
    prefer: Option<String>,
    /// Where to go after a server list update that moves the client (ZooKeeper's
    /// "reconfig mode"); over once connected, or once every server was tried.
    plan: Option<ReconfigPlan>,
    /// The server list, published ([`crate::Client::servers`]).
    servers: watch::Sender<Vec<String>>,
}

/// The watch channels a session task reports through.
pub(crate) struct Reports {
    pub state: watch::Sender<SessionState>,
    pub state_events: tokio::sync::broadcast::Sender<SessionState>,
    pub identity: watch::Sender<(i64, Vec<u8>)>,
    pub server: watch::Sender<Option<String>>,
    pub servers: watch::Sender<Vec<String>>,
}

/// Runs the session until it ends; `first_connect` learns the outcome of the first
/// connection attempt round.
pub(crate) async fn run(
    config: SessionConfig,
    mut commands: mpsc::Receiver<Command>,
    reports: Reports,
    first_connect: oneshot::Sender<Result<()>>,
) {
    let Reports {
        state,
        state_events,
        identity,
        server,
        servers,
    } = reports;
    let mut hosts = config.connect.hosts.clone();
    hosts.shuffle(&mut rand::thread_rng());
    servers.send_replace(hosts.clone());
    let (session_id, passwd) = match &config.session {
        Some((id, pw)) => (*id, Bytes::copy_from_slice(pw)),
        None => (0, Bytes::from_static(&[0; 16])),
    };
    let mut s = Session {
        stash: std::collections::VecDeque::new(),
        negotiated: config.session_timeout,
        config,
        hosts,
        next_host: 0,
        session_id,
        passwd,
        last_zxid: 0,
        auths: Vec::new(),
        watches: WatchRegistry::default(),
        state,
        state_events,
        identity,
        server,
        seen_rw: false,
        prefer: None,
        plan: None,
        servers,
    };
    let mut first_connect = Some(first_connect);
    let mut ever_connected = false;
    let started = Instant::now();
    let mut reconnect = reconnect_backoff();
    // Failed attempts in a row: the client pauses after each round of every host, not
    // after each host (a dead member in the list must not delay reaching a live one).
    let mut failures = 0usize;
    let final_state = loop {
        s.set_state(if !ever_connected {
            SessionState::Connecting
        } else {
            SessionState::Disconnected
        });
        let host = s.pick_host();
        let attempt = match s.connect(&host).await {
            // SASL right after the handshake, before anything else is sent.
            Ok(Some((mut stream, response))) => match s.config.sasl.clone() {
                None => Ok(Some((stream, response))),
                Some(login) => {
                    let within = s.config.connect_timeout;
                    match crate::sasl::authenticate(
                        &mut stream,
                        &login,
                        CLIENT_MAX_PACKET_LENGTH,
                        within,
                    )
                    .await
                    {
                        Ok(()) => Ok(Some((stream, response))),
                        Err(crate::sasl::SaslFailure::Io(e)) => Err(e),
                        Err(crate::sasl::SaslFailure::Refused(why)) => {
                            warn!(%host, user = login.user, reason = why, "SASL authentication failed");
                            if let Some(tx) = first_connect.take() {
                                let _ = tx.send(Err(Error::AuthFailed));
                            }
                            s.session_id = response.session_id;
                            break SessionState::AuthFailed;
                        }
                    }
                }
            },
            other => other,
        };
        match attempt {
            Ok(Some((stream, response))) => {
                reconnect = reconnect_backoff();
                failures = 0;
                ever_connected = true;
                s.plan = None;
                s.session_id = response.session_id;
                s.passwd = response.passwd.clone();
                s.negotiated = Duration::from_millis(response.timeout.max(1) as u64);
                s.identity.send_replace((s.session_id, s.passwd.to_vec()));
                s.server.send_replace(Some(host.clone()));
                let read_only = response.read_only == Some(true);
                s.seen_rw |= !read_only;
                s.set_state(if read_only {
                    SessionState::ConnectedReadOnly
                } else {
                    SessionState::Connected
                });
                info!(session = format_args!("0x{:x}", s.session_id), %host, "connected");
                if let Some(tx) = first_connect.take() {
                    let _ = tx.send(Ok(()));
                }
                let ended = s.serve(stream, &mut commands).await;
                s.server.send_replace(None);
                match ended {
                    Ended::Lost => {
                        info!(%host, "connection lost; reconnecting");
                        continue;
                    }
                    Ended::Final(SessionState::Expired) if s.config.renew_expired => {
                        if let Some(done) = s.renew(&mut commands) {
                            let _ = done.send(());
                            break SessionState::Closed;
                        }
                        ever_connected = false;
                        continue;
                    }
                    Ended::Final(state) => break state,
                }
            }
            Ok(None) => {
                if let Some(tx) = first_connect.take() {
                    let _ = tx.send(Err(Error::SessionExpired));
                    break SessionState::Expired;
                }
                if s.config.renew_expired {
                    if let Some(done) = s.renew(&mut commands) {
                        let _ = done.send(());
                        break SessionState::Closed;
                    }
                    ever_connected = false;
                    continue;
                }
                break SessionState::Expired;
            }
            Err(e) => {
                debug!(%host, error = %e, "connect attempt failed");
                if let Some(tx) =
                    first_connect.take_if(|_| started.elapsed() >= s.config.connect_timeout)
                {
                    let _ = tx.send(Err(Error::ConnectFailed(e.to_string())));
                    break SessionState::Closed;
                }
                // Close requested while not connected? (It ends the session; what
                // was queued before it fails.) Anything else waits, in order.
                let mut closing = None;
                while s.stash.len() < s.config.max_in_flight {
                    match commands.try_recv() {
                        Ok(Command::Close(done)) => {
                            closing = Some(done);
                            break;
                        }
                        // Applies now: the next attempt may go to a server of the
                        // new list.
                        Ok(Command::UpdateServerList(hosts, moving)) => {
                            let _ = moving.send(s.update_server_list(hosts, None));
                        }
                        Ok(other) => s.stash.push_back(other),
                        Err(_) => break,
                    }
                }
                if let Some(done) = closing {
                    let _ = done.send(());
                    break SessionState::Closed;
                }
                failures += 1;
                if failures.is_multiple_of(s.hosts.len().max(1)) {
                    use backoff::backoff::Backoff;
                    sleep(reconnect.next_backoff().unwrap_or(Duration::from_secs(2))).await;
                }
            }
        }
    };
    s.finish(final_state, &mut commands);
}

impl Session {
    /// Publishes a state: the current value, and one event per transition.
    fn set_state(&self, state: SessionState) {
        if self.state.send_replace(state) != state {
            let _ = self.state_events.send(state);
        }
    }

    /// The server to try next: a read-write server found meanwhile, else the one the
    /// rebalancing plan picks, else the next of the list, round and round.
    fn pick_host(&mut self) -> String {
        if let Some(host) = self.prefer.take() {
            return host;
        }
        if let Some(plan) = &mut self.plan {
            if let Some(host) = plan.next(rand::thread_rng().gen()) {
                // The round goes on after it, as ZooKeeper's does.
                if let Some(i) = self.hosts.iter().position(|h| *h == host) {
                    self.next_host = i + 1;
                }
                return host;
            }
            debug!("tried every server of the new list; back to the plain round");
            self.plan = None;
        }
        self.next_host += 1;
        self.hosts[(self.next_host - 1) % self.hosts.len()].clone()
    }

    /// Replaces the server list (ZooKeeper's `updateServerList`) and decides, as
    /// ZooKeeper's client does, whether this client moves to keep the load balanced
    /// ([`crate::rebalance`]). `current` is the server connected to; when not
    /// connected, the last one tried stands for it. Returns whether it moves.
    fn update_server_list(&mut self, hosts: Vec<String>, current: Option<&str>) -> bool {
        let mut list = Vec::with_capacity(hosts.len());
        for host in hosts {
            if !list.contains(&host) {
                list.push(host);
            }
        }
        let same = list.len() == self.hosts.len() && list.iter().all(|h| self.hosts.contains(h));
        if list.is_empty() || same {
            return false;
        }
        let mut rng = rand::thread_rng();
        list.shuffle(&mut rng);
        let last_tried =
            self.hosts[(self.next_host + self.hosts.len() - 1) % self.hosts.len()].clone();
        let current = current.unwrap_or(&last_tried).to_string();
        let decision = should_move(&self.hosts, &list, &current, rng.gen());
        let span = tracing::debug_span!("update_server_list", %current);
        let _entered = span.enter();
        match decision {
            Move::Stay => {
                debug!(old = ?self.hosts, new = ?list, "server list updated; staying");
                self.plan = None;
                self.next_host = list.iter().position(|h| *h == current).map_or(0, |i| i + 1);
            }
            Move::Reconnect { prob_new } => {
                info!(old = ?self.hosts, new = ?list, prob_new, "server list updated; moving to rebalance");
                self.plan = Some(ReconfigPlan::new(&self.hosts, &list, prob_new));
            }
        }
        self.hosts = list;
        self.servers.send_replace(self.hosts.clone());
        matches!(decision, Move::Reconnect { .. })
    }

    /// One connection attempt: TCP, handshake. `Ok(None)` = the session expired.
    async fn connect(
        &mut self,
        host: &str,
    ) -> std::io::Result<Option<(Box<dyn Stream>, ConnectResponse)>> {
        // A server that takes the connection and never answers (one still starting,
        // or hung) must not cost the session: give each attempt a third of the
        // session timeout, so that a resumed session has attempts left elsewhere.
        let per_host = self
            .config
            .connect_timeout
            .min((self.negotiated / 3).max(Duration::from_millis(500)));
        let stream = open(&self.config, host, per_host).await?;
        // A session made on a read-only server is local to it: ask for a new one
        // until the client has been on a read-write server.
        let local_session = self.config.read_only && !self.seen_rw && self.session_id != 0;
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: self
                .config
                .session_timeout
                .as_millis()
                .min(i32::MAX as u128) as i32,
            session_id: if local_session { 0 } else { self.session_id },
            passwd: if local_session {
                Bytes::from_static(&[0; 16])
            } else {
                self.passwd.clone()
            },
            read_only: Some(self.config.read_only),
        };
        debug!(
            %host,
            session = format_args!("0x{:x}", request.session_id),
            local_session,
            seen_rw = self.seen_rw,
            "handshake"
        );
        let mut stream = stream;
        let mut out = BytesMut::new();
        write_frame(&mut out, |w| request.write(w));
        stream.write_all(&out).await?;
        let mut buf = BytesMut::new();
        // The reply limit of Apache ZooKeeper's client (ClientCnxnSocket.readLength).
        let mut decoder = FrameDecoder::new(CLIENT_MAX_PACKET_LENGTH);
        let frame = read_frame(&mut stream, &mut buf, &mut decoder, per_host, "handshake").await?;
        let response =
            ConnectResponse::read(&mut Reader::new(frame)).map_err(std::io::Error::other)?;
        if response.timeout <= 0 {
            // Only a session we asked to resume can have expired; a refused request
            // for a new one (a member still joining its quorum) means: try elsewhere.
            if request.session_id != 0 {
                warn!(
                    session = format_args!("0x{:x}", self.session_id),
                    "session expired"
                );
                return Ok(None);
            }
            return Err(std::io::Error::other("server refused a new session"));
        }
        Ok(Some((stream, response)))
    }

    /// Serves one connection until it ends.
    async fn serve(
        &mut self,
        stream: Box<dyn Stream>,
        commands: &mut mpsc::Receiver<Command>,
    ) -> Ended {
        let (mut rd, mut wr) = tokio::io::split(stream);
        // Java's readTimeout: two thirds of the negotiated session timeout.
        let read_timeout = self.negotiated * 2 / 3;
        let ping_every = ping_after(read_timeout);
        // A reply above Apache's client limit drops the connection, as there.
        let mut decoder = FrameDecoder::new(CLIENT_MAX_PACKET_LENGTH);
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut pending: VecDeque<(i32, OpCode, Outgoing)> = VecDeque::new();
        let mut auth_waiters: VecDeque<Option<oneshot::Sender<Result<()>>>> = VecDeque::new();
        let mut next_xid: i32 = 1;
        let mut last_recv = Instant::now();
        let mut last_send = Instant::now();
        let mut out = BytesMut::new();
        let read_only = *self.state.borrow() == SessionState::ConnectedReadOnly;
        let current = self.server.borrow().clone().unwrap_or_default();
        let start_probe = |s: &Session| {
            Probe(tokio::spawn(find_read_write_server(
                s.config.clone(),
                s.hosts.clone(),
                current.clone(),
            )))
        };
        let mut probe = read_only.then(|| start_probe(self));
        let mut probed_hosts = self.hosts.clone();
        // The server list changed and this client leaves for another server: it takes
        // no more requests here, and goes once those in flight are answered (so that a
        // move costs no ConnectionLoss).
        let mut moving = false;

        // Identities first, then the watches, before anything else.
        for auth in &self.auths {
            encode(&mut out, xid::AUTH, &Request::Auth(auth.clone()));
            auth_waiters.push_back(None);
        }
        for set in self.watches.set_watches(self.last_zxid) {
            encode(&mut out, xid::SET_WATCHES, &Request::SetWatches2(set));
        }
        // Never a close among them (that ends the session before connecting).
        while let Some(command) = self.stash.pop_front() {
            let _ = self.queue(
                Some(command),
                &mut out,
                &mut pending,
                &mut auth_waiters,
                &mut next_xid,
            );
        }
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            // The stash went into `pending`: its callers learn the connection is gone.
            fail_pending(&mut pending, Error::ConnectionLoss);
            return Ended::Lost;
        }
        out.clear();

        loop {
            if moving && pending.is_empty() && auth_waiters.is_empty() {
                info!(from = %current, "leaving the server to rebalance");
                return Ended::Lost;
            }
            let can_send = !moving && pending.len() < self.config.max_in_flight;
            tokio::select! {
                command = commands.recv(), if can_send => {
                    let mut queued = self.queue(command, &mut out, &mut pending, &mut auth_waiters, &mut next_xid);
                    // Batch whatever else is already queued into the same write.
                    while matches!(queued, Queued::Sent) && pending.len() < self.config.max_in_flight {
                        match commands.try_recv() {
                            Ok(command) => {
                                queued = self.queue(Some(command), &mut out, &mut pending, &mut auth_waiters, &mut next_xid);
                            }
                            Err(_) => break,
                        }
                    }
                    if let Queued::Close(done) = queued {
                        let close_xid = next_xid;
                        encode(&mut out, close_xid, &Request::CloseSession);
                        let _ = wr.write_all(&out).await;
                        // Wait (briefly) for the answer: then the session, and its
                        // ephemerals, are gone when close() returns.
                        let _ = timeout(self.negotiated.min(Duration::from_secs(2)), async {
                            loop {
                                while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                                    let mut r = Reader::new(frame.clone());
                                    if ReplyHeader::read(&mut r).is_ok_and(|h| h.xid == close_xid) {
                                        return;
                                    }
                                    // Answers and notifications sent before the close's
                                    // answer still count (as for Java's client: a watch
                                    // on one of our ephemerals sees it go).
                                    let _ = self.on_frame(frame, &mut pending, &mut auth_waiters);
                                }
                                if !matches!(rd.read_buf(&mut buf).await, Ok(n) if n > 0) {
                                    return;
                                }
                            }
                        })
                        .await;
                        fail_pending(&mut pending, Error::Closed);
                        self.set_state(SessionState::Closed);
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                        return Ended::Final(SessionState::Closed);
                    }
                    moving |= matches!(queued, Queued::Move);
                    // A read-only connection looks for a read-write server among the
                    // servers of the list it has now.
                    if probe.is_some() && !moving && probed_hosts != self.hosts {
                        probed_hosts = self.hosts.clone();
                        probe = Some(start_probe(self));
                    }
                    if !out.is_empty() {
                        if wr.write_all(&out).await.is_err() {
                            fail_pending(&mut pending, Error::ConnectionLoss);
                            return Ended::Lost;
                        }
                        out.clear();
                        last_send = Instant::now();
                    }
                }
                read = rd.read_buf(&mut buf) => {
                    match read {
                        Ok(0) | Err(_) => {
                            fail_pending(&mut pending, Error::ConnectionLoss);
                            return Ended::Lost;
                        }
                        Ok(_) => last_recv = Instant::now(),
                    }
                    loop {
                        let frame = match decoder.decode(&mut buf) {
                            Ok(Some(frame)) => frame,
                            Ok(None) => break,
                            Err(e) => {
                                warn!(error = %e, "bad frame from server");
                                fail_pending(&mut pending, Error::ConnectionLoss);
                                return Ended::Lost;
                            }
                        };
                        if let Some(end) = self.on_frame(frame, &mut pending, &mut auth_waiters) {
                            // In flight when the session ended: as Java's client once
                            // CLOSED, they fail with why it ended, not ConnectionLoss.
                            fail_pending(&mut pending, end.error());
                            return end;
                        }
                    }
                }
                _ = sleep_until(last_send + ping_every) => {
                    encode(&mut out, xid::PING, &Request::Ping);
                    if wr.write_all(&out).await.is_err() {
                        fail_pending(&mut pending, Error::ConnectionLoss);
                        return Ended::Lost;
                    }
                    out.clear();
                    last_send = Instant::now();
                }
                found = async { (&mut probe.as_mut().expect("guarded").0).await }, if probe.is_some() => {
                    probe = None;
                    if let Ok(host) = found {
                        info!(%host, "a read-write server is reachable; moving there");
                        self.prefer = Some(host);
                        fail_pending(&mut pending, Error::ConnectionLoss);
                        return Ended::Lost;
                    }
                }
                _ = sleep_until(last_recv + read_timeout) => {
                    warn!("no answer from the server within the read timeout");
                    fail_pending(&mut pending, Error::ConnectionLoss);
                    return Ended::Lost;
                }
            }
        }
    }

    /// Encodes one command into `out`, or acts on it. `None` from the channel means
    /// every handle is gone, which closes the session.
    fn queue(
        &mut self,
        command: Option<Command>,
        out: &mut BytesMut,
        pending: &mut VecDeque<(i32, OpCode, Outgoing)>,
        auth_waiters: &mut VecDeque<Option<oneshot::Sender<Result<()>>>>,
        next_xid: &mut i32,
    ) -> Queued {
        match command {
            None => Queued::Close(None),
            Some(Command::Request(outgoing)) => {
                let xid = *next_xid;
                *next_xid = next_xid.wrapping_add(1).max(1);
                encode(out, xid, &outgoing.request);
                pending.push_back((xid, outgoing.request.opcode(), outgoing));
                Queued::Sent
            }
            Some(Command::AddAuth(packet, done)) => {
                encode(out, xid::AUTH, &Request::Auth(packet.clone()));
                self.auths.push(packet);
                auth_waiters.push_back(Some(done));
                Queued::Sent
            }
            Some(Command::RemoveWatches(path, kind)) => {
                self.watches.remove(&path, kind);
                Queued::Sent
            }
            Some(Command::UpdateServerList(hosts, answer)) => {
                let current = self.server.borrow().clone();
                let moving = self.update_server_list(hosts, current.as_deref());
                let _ = answer.send(moving);
                if moving {
                    Queued::Move
                } else {
                    Queued::Sent
                }
            }
            Some(Command::Close(done)) => Queued::Close(Some(done)),
        }
    }

    /// Handles one frame from the server; `Some` ends the connection.
    fn on_frame(
        &mut self,
        frame: Bytes,
        pending: &mut VecDeque<(i32, OpCode, Outgoing)>,
        auth_waiters: &mut VecDeque<Option<oneshot::Sender<Result<()>>>>,
    ) -> Option<Ended> {
        let mut r = Reader::new(frame);
        let Ok(header) = ReplyHeader::read(&mut r) else {
            return Some(Ended::Lost);
        };
        if header.zxid > 0 {
            self.last_zxid = self.last_zxid.max(header.zxid);
        }
        match header.xid {
            xid::NOTIFICATION => {
                let Ok(event) = WatcherEvent::read(&mut r) else {
                    return Some(Ended::Lost);
                };
                self.notify(event);
                None
            }
            xid::PING | xid::SET_WATCHES if header.err == ErrorCode::SessionExpired.code() => {
                Some(Ended::Final(SessionState::Expired))
            }
            xid::PING | xid::SET_WATCHES => None,
            xid::AUTH => {
                let waiter = auth_waiters.pop_front().flatten();
                if header.err == ErrorCode::AuthFailed.code() {
                    if let Some(w) = waiter {
                        let _ = w.send(Err(Error::AuthFailed));
                    }
                    return Some(Ended::Final(SessionState::AuthFailed));
                }
                if let Some(w) = waiter {
                    let _ = w.send(Ok(()));
                }
                None
            }
            xid => {
                let Some((expected, op, outgoing)) = pending.pop_front() else {
                    warn!(xid, "reply to nothing");
                    return Some(Ended::Lost);
                };
                if expected != xid {
                    warn!(xid, expected, "reply out of order");
                    let _ = outgoing.responder.send(Err(Error::Protocol(format!(
                        "xid {xid}, expected {expected}"
                    ))));
                    return Some(Ended::Lost);
                }
                let result = if header.err == 0 {
                    match Response::decode(op, r.take_rest()) {
                        Ok(response) => {
                            if let Some(w) = outgoing.watch {
                                self.watches.register(w, true);
                            }
                            Ok(response)
                        }
                        Err(e) => Err(Error::Protocol(e.to_string())),
                    }
                } else {
                    let code = ErrorCode::from_code(header.err).unwrap_or(ErrorCode::SystemError);
                    // exists on a missing node leaves a watch for its creation.
                    if code == ErrorCode::NoNode {
                        if let Some(w @ Registration::Exists(..)) = outgoing.watch {
                            self.watches.register(w, false);
                        }
                    }
                    Err(Error::keeper(code, &outgoing.path))
                };
                let expired = matches!(result, Err(Error::SessionExpired));
                let _ = outgoing.responder.send(result);
                expired.then_some(Ended::Final(SessionState::Expired))
            }
        }
    }

    fn notify(&mut self, event: WatcherEvent) {
        let (Ok(event_type), Ok(state)) = (event.event_type(), event.state()) else {
            return;
        };
        let path = self.config.connect.to_client(&event.path);
        let event_path = event.path;
        let event = WatchedEvent {
            event_type,
            state,
            path,
        };
        self.config.notifications.send(&event);
        self.watches.dispatch(&event_path, event);
    }

    /// The session expired and the client renews: everything asked of the old session
    /// fails with `SessionExpired`, its watches end, `Expired` is published, and the
    /// next connection asks for a new session (credentials are presented again).
    /// A close found among them is returned: the client ends instead.
    fn renew(&mut self, commands: &mut mpsc::Receiver<Command>) -> Option<oneshot::Sender<()>> {
        warn!(
            session = format_args!("0x{:x}", self.session_id),
            "session expired; starting a new one"
        );
        self.watches
            .end(KeeperState::Expired, Error::SessionExpired);
        // What was asked before the expiry was seen was meant for the old session.
        let stashed = std::mem::take(&mut self.stash).into_iter();
        let queued = std::iter::from_fn(|| commands.try_recv().ok());
        let mut closing = None;
        for command in stashed.chain(queued) {
            match command {
                Command::Request(o) => {
                    let _ = o.responder.send(Err(Error::SessionExpired));
                }
                Command::AddAuth(packet, done) => {
                    // Credentials belong to the client: keep them for the new session.
                    self.auths.push(packet);
                    let _ = done.send(Ok(()));
                }
                Command::Close(done) => closing = Some(done),
                Command::RemoveWatches(..) => {}
                // The server list belongs to the client too.
                Command::UpdateServerList(hosts, moving) => {
                    let _ = moving.send(self.update_server_list(hosts, None));
                }
            }
        }
        self.session_id = 0;
        self.passwd = Bytes::from_static(&[0; 16]);
        self.seen_rw = false;
        self.identity.send_replace((0, vec![0; 16]));
        self.set_state(SessionState::Expired);
        closing
    }

    /// The session is over: answer everything still waiting, end every watch.
    fn finish(mut self, state: SessionState, commands: &mut mpsc::Receiver<Command>) {
        let error = match state {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        };
        let keeper_state = match state {
            SessionState::Expired => KeeperState::Expired,
            SessionState::AuthFailed => KeeperState::AuthFailed,
            _ => KeeperState::Closed,
        };
        self.watches.end(keeper_state, error.clone());
        commands.close();
        let stashed = std::mem::take(&mut self.stash).into_iter();
        let queued = std::iter::from_fn(|| commands.try_recv().ok());
        for command in stashed.chain(queued) {
            match command {
                Command::Request(o) => {
                    let _ = o.responder.send(Err(error.clone()));
                }
                Command::AddAuth(_, done) => {
                    let _ = done.send(Err(error.clone()));
                }
                Command::Close(done) => {
                    let _ = done.send(());
                }
                Command::RemoveWatches(..) | Command::UpdateServerList(..) => {}
            }
        }
        self.set_state(state);
    }
}

/// Pauses between rounds of failed connection attempts (every host tried once): from
/// 50 ms, doubling with jitter, at most 2 s, never giving up (the session decides when
/// it is over, not the network).
fn reconnect_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(50))
        .with_multiplier(2.0)
        .with_randomization_factor(0.3)
        .with_max_interval(Duration::from_secs(2))
        .with_max_elapsed_time(None)
        .build()
}

/// Java's `ClientCnxn.MAX_SEND_PING_INTERVAL`: never more than this without sending.
const MAX_SEND_PING_INTERVAL_MS: i64 = 10_000;

/// ZooKeeper 3.8's rule (`ClientCnxn.SendThread.run`, read from its bytecode): each
/// time the loop wakes, `timeToNextPing = readTimeout/2 - idleSend - (idleSend > 1000 ?
/// 1000 : 0)`; it pings if `timeToNextPing <= 0 || idleSend > MAX_SEND_PING_INTERVAL`.
/// (Milliseconds, Java's integer arithmetic.) The reference [`ping_after`] is tested
/// against.
#[cfg(test)]
fn java_pings(read_timeout_ms: i64, idle_send_ms: i64) -> bool {
    let slack = if idle_send_ms > 1000 { 1000 } else { 0 };
    read_timeout_ms / 2 - idle_send_ms - slack <= 0 || idle_send_ms > MAX_SEND_PING_INTERVAL_MS
}

/// How long after the last send the ping goes: the earliest idle time at which
/// [`java_pings`] says ping. (Java's loop only looks when something wakes it, so an
/// idle Java client may ping a little later; never earlier.)
fn ping_after(read_timeout: Duration) -> Duration {
    let half = (read_timeout.as_millis().min(i64::MAX as u128) as i64) / 2;
    let ms = if half <= 1000 {
        half.max(0)
    } else {
        (half - 1000).max(1001)
    };
    Duration::from_millis(ms.min(MAX_SEND_PING_INTERVAL_MS + 1) as u64)
}

/// The read-write probe of one read-only connection; stopped when the connection ends.
struct Probe(tokio::task::JoinHandle<String>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// While on a read-only server: asks the other servers `isro` (with growing pauses,
/// as ZooKeeper's client does) until one answers `rw`; over TLS when the client uses it.
async fn find_read_write_server(
    config: SessionConfig,
    hosts: Vec<String>,
    current: String,
) -> String {
    let mut pause = Duration::from_millis(100);
    loop {
        for host in hosts.iter().filter(|h| **h != current) {
            let answer = timeout(Duration::from_millis(500), async {
                let mut s = open(&config, host, Duration::from_millis(500)).await.ok()?;
                s.write_all(b"isro").await.ok()?;
                let mut out = String::new();
                s.read_to_string(&mut out).await.ok()?;
                Some(out)
            })
            .await;
            if matches!(answer, Ok(Some(ref a)) if a == "rw") {
                return host.clone();
            }
        }
        sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

fn encode(out: &mut BytesMut, xid: i32, request: &Request) {
    write_frame(out, |w| {
        RequestHeader::new(xid, request.opcode()).write(w);
        request.write_body(w);
    });
}

fn fail_pending(pending: &mut VecDeque<(i32, OpCode, Outgoing)>, error: Error) {
    for (_, _, outgoing) in pending.drain(..) {
        let _ = outgoing.responder.send(Err(error.clone()));
    }
}

/// The next frame from `stream` (bytes already read kept in `buf`), within `within`;
/// `during` names the exchange in the error when the stream closes or time runs out.
pub(crate) async fn read_frame<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
    buf: &mut BytesMut,
    decoder: &mut FrameDecoder,
    within: Duration,
    during: &str,
) -> std::io::Result<Bytes> {
    let read = async {
        loop {
            if let Some(frame) = decoder.decode(buf).map_err(std::io::Error::other)? {
                return Ok::<_, std::io::Error>(frame);
            }
            if stream.read_buf(buf).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("closed during {during}"),
                ));
            }
        }
    };
    timeout(within, read).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{during} timed out"))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ping goes at the first idle millisecond at which ZooKeeper's own client
    /// would send it, for every read timeout (session timeouts up to 60 s and beyond).
    #[test]
    fn the_ping_schedule_is_zookeepers() {
        for read_timeout in (0..=100_000)
            .step_by(7)
            .chain([1999, 2000, 2001, 2002, 22_002])
        {
            let at = ping_after(Duration::from_millis(read_timeout as u64)).as_millis() as i64;
            assert!(java_pings(read_timeout, at), "rt {read_timeout}: at {at}");
            if at > 0 {
                assert!(
                    !java_pings(read_timeout, at - 1),
                    "rt {read_timeout}: Java would ping at {}",
                    at - 1
                );
            }
        }
        let after = |session_ms: u64| ping_after(Duration::from_millis(session_ms) * 2 / 3);
        // Session 1 s: read timeout 666 ms, ping after 333 ms idle.
        assert_eq!(after(1000), Duration::from_millis(333));
        // Session 4 s: read timeout 2666 ms; past 1000 ms idle the 1 s slack applies.
        assert_eq!(after(4000), Duration::from_millis(1001));
        // Session 30 s: read timeout 20 s, ping after 9 s.
        assert_eq!(after(30_000), Duration::from_millis(9000));
        // Session 60 s: capped by MAX_SEND_PING_INTERVAL.
        assert_eq!(after(60_000), Duration::from_millis(10_001));
    }
}
