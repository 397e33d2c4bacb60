//! Links between members: one TCP connection per pair of members carries everything,
//! multiplexed and pipelined. Requests go out as they are made, each with an id, and
//! replies are matched by id in whatever order they come. A failed connection is
//! remade on the next request, after a backoff that grows while the peer stays
//! unreachable.
//!
//! [`PeerFaults`] cuts chosen members off from their peers (tests, `TestingCluster`),
//! and carries the member's [`PeerTls`] when `sslQuorum=true`: then every link is
//! mutual TLS, each side's certificate verified against the quorum trust store, and a
//! member whose certificate is not trusted can neither reach its peers nor be reached.
//! With `quorum.auth.enableSasl=true` it also carries the member's [`PeerSasl`]: every
//! link starts with a DIGEST-MD5 handshake in both directions ([`super::peer_sasl`])
//! before any other frame, and a link whose handshake fails is dropped. Both ends of
//! a link are set up here: [`PeerLink`] connects, `accept_link` accepts.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::peer_sasl::{self, PeerSasl};
use super::wire::{encode, read_frame, write_frames, PeerReply, PeerRequest};

type NodeId = u64;

/// Members cut off from their peers: every message from or to them is dropped as if
/// the network had failed. Shared by the members of one in-process cluster. Each
/// member's copy also carries its own quorum TLS, if any ([`PeerFaults::with_tls`]).
#[derive(Debug, Clone, Default)]
pub struct PeerFaults {
    isolated: Arc<Mutex<BTreeSet<NodeId>>>,
    tls: Option<Arc<PeerTls>>,
    sasl: Option<Arc<PeerSasl>>,
}

/// A member's TLS for its peer links (`sslQuorum=true`): it presents its certificate
/// both when it connects and when it is connected to, and requires a certificate that
/// chains to the quorum trust store from the other side.
pub struct PeerTls {
    connector: tokio_rustls::TlsConnector,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    /// Reads the `ssl.quorum.*` stores. Peers must present a certificate whatever
    /// `ssl.quorum.clientAuth` says: links between members are always mutual.
    pub fn new(settings: &crate::config::TlsSettings) -> Result<PeerTls, crate::tls::TlsError> {
        let mutual = crate::config::TlsSettings {
            client_auth: crate::config::ClientAuth::Need,
            ..settings.clone()
        };
        Ok(PeerTls {
            connector: tokio_rustls::TlsConnector::from(crate::tls::client_config(&mutual)?),
            acceptor: tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&mutual)?),
        })
    }
}

/// One side of a peer connection: its reading and writing halves.
pub(super) type Halves = (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
);

/// How long a peer may take over its side of a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

impl PeerFaults {
    /// This member's copy: the same faults, and `tls` for its links.
    pub fn with_tls(&self, tls: Option<Arc<PeerTls>>) -> PeerFaults {
        PeerFaults {
            isolated: self.isolated.clone(),
            tls,
            sasl: self.sasl.clone(),
        }
    }

    /// This member's copy with `sasl` for its links (`quorum.auth.enableSasl`).
    pub fn with_sasl(&self, sasl: Option<Arc<PeerSasl>>) -> PeerFaults {
        PeerFaults {
            sasl,
            ..self.clone()
        }
    }

    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<NodeId>> {
        self.isolated.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts `member` off from every peer.
    pub fn isolate(&self, member: NodeId) {
        self.set().insert(member);
    }

    /// Reconnects `member` to its peers.
    pub fn heal(&self, member: NodeId) {
        self.set().remove(&member);
    }

    /// Whether messages between `a` and `b` are dropped.
    pub fn blocked(&self, a: NodeId, b: NodeId) -> bool {
        let set = self.set();
        set.contains(&a) || set.contains(&b)
    }
}

/// The accepting end of a link from `remote`: its halves once the TLS and quorum
/// SASL handshakes that `faults` calls for are done, or `None` (logged) when one
/// fails.
pub(super) async fn accept_link(
    stream: TcpStream,
    remote: SocketAddr,
    faults: &PeerFaults,
) -> Option<Halves> {
    let mut halves: Halves = match faults.tls.clone() {
        None => {
            let (rd, wr) = stream.into_split();
            (Box::new(rd), Box::new(wr))
        }
        Some(tls) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let (rd, wr) = tokio::io::split(tls);
                    (Box::new(rd), Box::new(wr))
                }
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "peer TLS handshake failed; refusing the peer");
                    return None;
                }
                Err(_) => {
                    tracing::info!(%remote, "peer TLS handshake timed out; refusing the peer");
                    return None;
                }
            }
        }
    };
    if let Some(sasl) = faults.sasl.clone() {
        match peer_sasl::accepting(&mut halves.0, &mut halves.1, &sasl).await {
            Ok(user) => tracing::debug!(%remote, user, "peer authenticated (quorum SASL)"),
            Err(e) => {
                tracing::warn!(%remote, error = %e, "quorum SASL failed; refusing the peer");
                return None;
            }
        }
    }
    Some(halves)
}

/// A way to one peer over the shared, multiplexed connection from this member to it.
/// Cheap to clone; every clone and every purpose shares the one connection.
#[derive(Debug, Clone)]
pub struct PeerLink {
    me: NodeId,
    target: NodeId,
    addr: String,
    faults: PeerFaults,
}

/// A request already sent: its reply (or failure) to come.
pub type InFlight =
    std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<PeerReply>> + Send>>;

impl PeerLink {
    /// A link from `me` to `target` at `addr` (connected on first use).
    pub fn new(me: NodeId, target: NodeId, addr: String, faults: PeerFaults) -> PeerLink {
        PeerLink {
            me,
            target,
            addr,
            faults,
        }
    }

    /// Sends one request and waits for its reply, within `timeout`.
    pub async fn exchange(
        &self,
        request: &PeerRequest,
        timeout: Duration,
    ) -> io::Result<PeerReply> {
        self.send(request, timeout, None).await?.1.await
    }

    /// Sends one request now (after every request sent before it on this connection)
    /// and returns the connection's id and the reply to come. With `same_connection`,
    /// refuses to send over any other connection than that one (a sender that needs
    /// its requests to arrive in order, as forwarded writes must).
    pub async fn send(
        &self,
        request: &PeerRequest,
        timeout: Duration,
        same_connection: Option<u64>,
    ) -> io::Result<(u64, InFlight)> {
        if self.faults.blocked(self.me, self.target) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("member {} is cut off from member {}", self.me, self.target),
            ));
        }
        let mux = connection(
            self.me,
            self.target,
            &self.addr,
            self.faults.tls.as_deref(),
            self.faults.sasl.as_deref(),
        )
        .await?;
        if same_connection.is_some_and(|id| id != mux.id) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the connection requests were in flight on is gone",
            ));
        }
        let reply = mux.call(request)?;
        let id = mux.id;
        let faults = self.faults.clone();
        let (me, target) = (self.me, self.target);
        Ok((
            id,
            Box::pin(async move {
                let reply = tokio::time::timeout(timeout, reply).await.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "peer request timed out")
                })??;
                // A reply that crossed a cut made meanwhile is dropped, as the network
                // would have dropped it.
                if faults.blocked(me, target) {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "cut off while waiting",
                    ));
                }
                Ok(reply)
            }),
        ))
    }
}

/// One multiplexed connection to a peer.
#[derive(Debug)]
struct Mux {
    id: u64,
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<PeerReply>>>>,
    next: AtomicU64,
    closed: CancellationToken,
}

impl Drop for Mux {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl Mux {
    async fn connect(
        addr: &str,
        tls: Option<&PeerTls>,
        sasl: Option<&PeerSasl>,
    ) -> io::Result<Mux> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut rd, wr): Halves = match tls {
            None => {
                let (rd, wr) = stream.into_split();
                (Box::new(rd), Box::new(wr))
            }
            Some(tls) => {
                let name = crate::tls::server_name(addr)?;
                let session = tls.connector.connect(name, stream).await.map_err(|e| {
                    tracing::info!(peer = addr, error = %e, "peer TLS handshake failed");
                    e
                })?;
                let (rd, wr) = tokio::io::split(session);
                (Box::new(rd), Box::new(wr))
            }
        };
        let mut wr = wr;
        if let Some(sasl) = sasl {
            if let Err(e) = peer_sasl::connecting(&mut rd, &mut wr, sasl).await {
                tracing::warn!(peer = addr, error = %e, "quorum SASL failed; not connected");
                return Err(e);
            }
        }
        let (out, frames) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<PeerReply>>>> = Arc::default();
        tokio::spawn(write_frames(wr, frames, closed.clone()));
        let (waiting, done) = (pending.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    _ = done.cancelled() => break,
                    f = read_frame::<PeerReply>(&mut rd) => f,
                };
                let Ok((id, reply)) = frame else { break };
                let waiter = waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(reply);
                }
            }
            done.cancel();
            // Every request still waiting fails now.
            waiting.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(Mux {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            out,
            pending,
            next: AtomicU64::new(1),
            closed,
        })
    }

    fn call(
        &self,
        request: &PeerRequest,
    ) -> io::Result<impl std::future::Future<Output = io::Result<PeerReply>>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let frame = encode(id, request)?;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        if self.closed.is_cancelled() || self.out.send(frame).is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "peer connection closed",
            ));
        }
        Ok(async move {
            rx.await
                .map_err(|_| io::Error::new(io::ErrorKind::ConnectionReset, "peer connection lost"))
        })
    }
}

/// The connection from one member to one peer, and the backoff while it cannot be
/// made.
#[derive(Default)]
struct Slot {
    open: Option<Arc<Mux>>,
    failing: Option<(std::time::Instant, Duration)>,
}

type SlotKey = (NodeId, NodeId, String);

/// The connections of this process, by (from, to, address); each slot is locked on
/// its own, so a slow connection attempt to one peer holds up no other.
fn slot(key: SlotKey) -> Arc<tokio::sync::Mutex<Slot>> {
    static SLOTS: std::sync::OnceLock<Mutex<HashMap<SlotKey, Arc<tokio::sync::Mutex<Slot>>>>> =
        std::sync::OnceLock::new();
    SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone()
}

/// The open connection from `me` to `target`, made (or remade) if needed, not more
/// often than the backoff of a peer that keeps refusing allows.
async fn connection(
    me: NodeId,
    target: NodeId,
    addr: &str,
    tls: Option<&PeerTls>,
    sasl: Option<&PeerSasl>,
) -> io::Result<Arc<Mux>> {
    let slot = slot((me, target, addr.to_string()));
    let mut slot = slot.lock().await;
    if let Some(mux) = slot.open.as_ref().filter(|m| !m.closed.is_cancelled()) {
        return Ok(mux.clone());
    }
    slot.open = None;
    if let Some((since, wait)) = slot.failing {
        if since.elapsed() < wait {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("member {target} unreachable; retrying later"),
            ));
        }
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, Mux::connect(addr, tls, sasl)).await {
        Ok(Ok(mux)) => {
            let mux = Arc::new(mux);
            slot.failing = None;
            slot.open = Some(mux.clone());
            Ok(mux)
        }
        failed => {
            let wait = slot
                .failing
                .map_or(BACKOFF_FIRST, |(_, w)| (w * 2).min(BACKOFF_MAX));
            slot.failing = Some((std::time::Instant::now(), wait));
            Err(match failed {
                Ok(Err(e)) => e,
                _ => io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"),
            })
        }
    }
}

/// How long making a peer connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first wait after a failed connection attempt, doubled up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// The longest wait between connection attempts to an unreachable peer: below a
/// heartbeat, so that a leader reaches a member that came back before that member's
/// election timer runs out. (A refused attempt on a local network costs a round trip.)
const BACKOFF_MAX: Duration = Duration::from_millis(25);

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A peer that answers ReadIndex requests in the reverse order they came, with the
    /// request's id as the index.
    async fn reversing_peer(listener: TcpListener, requests: usize) {
        let (stream, _) = listener.accept().await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let mut ids = Vec::new();
        for _ in 0..requests {
            let (id, request) = read_frame::<PeerRequest>(&mut rd).await.unwrap();
            assert!(matches!(request, PeerRequest::ReadIndex));
            ids.push(id);
        }
        for id in ids.into_iter().rev() {
            let frame = encode(id, &PeerReply::ReadIndex(Some(id))).unwrap();
            wr.write_all(&frame).await.unwrap();
        }
        // Stay open until the client is done.
        let _ = read_frame::<PeerRequest>(&mut rd).await;
    }

    #[tokio::test]
    async fn requests_are_pipelined_on_one_connection_and_matched_by_id() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(reversing_peer(listener, 3));
        let link = PeerLink::new(101, 102, addr, PeerFaults::default());
        let mut sent = Vec::new();
        for _ in 0..3 {
            // Each is on the wire before the first reply comes.
            let (connection, reply) = link
                .send(&PeerRequest::ReadIndex, Duration::from_secs(5), None)
                .await
                .unwrap();
            sent.push((connection, reply));
        }
        assert!(sent.windows(2).all(|w| w[0].0 == w[1].0), "one connection");
        let mut indexes = Vec::new();
        for (_, reply) in sent {
            match reply.await.unwrap() {
                PeerReply::ReadIndex(Some(i)) => indexes.push(i),
                other => panic!("{other:?}"),
            }
        }
        // Answered last-first, yet each caller got its own answer.
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    }

    #[tokio::test]
    async fn a_cut_off_member_reaches_nobody_and_unreachable_peers_are_backed_off() {
        let faults = PeerFaults::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        faults.isolate(202);
        let cut = PeerLink::new(201, 202, addr.clone(), faults.clone());
        let e = cut
            .exchange(&PeerRequest::ReadIndex, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        faults.heal(202);
        // Nothing listens: the first attempt is refused by the peer's host, the next
        // one at once by the backoff, without a connection attempt.
        let link = PeerLink::new(201, 202, addr, faults);
        assert!(link
            .exchange(&PeerRequest::ReadIndex, Duration::from_secs(1))
            .await
            .is_err());
        let e = link
            .exchange(&PeerRequest::ReadIndex, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("retrying later"), "{e}");
    }
}
