//! One client connection: handshake, then a reader that decodes requests in order and
//! a writer that answers them in the same order.
//!
//! The reader never waits for a reply: writes are submitted to the log at once (so a
//! connection pipelines them) and queued as pending replies; reads are queued too, and
//! the writer runs each read only when every earlier request of the connection has
//! been answered (per-session FIFO: a read sees the session's earlier writes). Before
//! running a read, under the database lock, the writer first sends every notification
//! already queued: a change a read observes has had its watch events sent before it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};
use zk_proto::frame::{write_frame, FrameDecoder};
use zk_proto::{
    xid, AuthPacket, ClientInfo, ConnectRequest, ConnectResponse, ErrorCode, ErrorResponse, Id,
    MultiOp, OpCode, Reader, Record, ReplyHeader, Request, RequestHeader, Response, SyncResponse,
    WatcherEvent, WhoAmIResponse,
};

use super::four_letter;
use crate::acl;
use crate::core::{
    notification_bytes, ConnCounters, ConnEntry, ServerCore, SubmitError, NOTIFICATION_QUEUE,
};
use crate::database::Applied;
use crate::txn::TxnOp;
use crate::watches::ConnId;

/// Requests a connection may have queued for its writer before the reader stops
/// reading (backpressure to the client instead of unbounded memory).
const PENDING_QUEUE: usize = 1024;

/// How long a `sync` may wait for the leader's commit point.
const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Output buffered before a flush is forced.
const FLUSH_AT: usize = 64 * 1024;

/// A request queued for the writer, with its share of `globalOutstandingLimit` (none
/// when it was its connection's only request and the limit was reached).
type Queued = (Pending, Option<tokio::sync::OwnedSemaphorePermit>);

/// A request waiting for its turn to be answered.
pub(crate) enum Pending {
    /// A write submitted to the log; answered when this server has applied it.
    Write {
        xid: i32,
        /// The request's type, for the metrics (set once classified).
        op: Option<OpCode>,
        started: Instant,
        applied: oneshot::Receiver<(i64, Applied)>,
        close_after: bool,
    },
    /// A read, run when its turn comes.
    Read {
        xid: i32,
        /// The request's type, for the metrics (set once classified).
        op: Option<OpCode>,
        started: Instant,
        request: Request,
        auth: Arc<Vec<Id>>,
        /// Told once the read has been evaluated (see [`Pending::track_evaluation`]).
        evaluated: Option<oneshot::Sender<()>>,
    },
    /// A request answered only once `ready` says so (`sync`); a `false` or a dropped
    /// sender closes the connection, as a lost write does.
    Barrier {
        ready: oneshot::Receiver<bool>,
        then: Box<Pending>,
    },
    /// A reply already known (errors, auth).
    Reply {
        header: ReplyHeader,
        body: Option<Response>,
        close_after: bool,
        /// Set the header's zxid to the last applied one when answering.
        stamp: bool,
        /// Told once a stamped reply has been stamped (see
        /// [`Pending::track_evaluation`]).
        evaluated: Option<oneshot::Sender<()>>,
    },
}

impl Pending {
    /// Whether the connection closes once this is answered (the reader stops reading).
    pub(crate) fn closes(&self) -> bool {
        matches!(
            self,
            Pending::Reply {
                close_after: true,
                ..
            } | Pending::Write {
                close_after: true,
                ..
            }
        )
    }

    /// For a read (a sync, a reply stamped when answered), a receiver told once the
    /// writer has evaluated it. The
    /// reader waits on it before submitting a later write of the connection
    /// ([`submits_write`]): a read must not see a write sent after it (ZooKeeper's FIFO
    /// client order), and since writes are submitted as they are read while reads run
    /// when their turn comes, a pipelined write could otherwise be applied first.
    pub(crate) fn track_evaluation(&mut self) -> Option<oneshot::Receiver<()>> {
        match self {
            Pending::Read { evaluated, .. } => {
                let (tx, rx) = oneshot::channel();
                *evaluated = Some(tx);
                Some(rx)
            }
            // A reply stamped with the last zxid when answered is a read of it.
            Pending::Reply {
                stamp: true,
                evaluated,
                ..
            } => {
                let (tx, rx) = oneshot::channel();
                *evaluated = Some(tx);
                Some(rx)
            }
            Pending::Barrier { then, .. } => then.track_evaluation(),
            Pending::Write { .. } | Pending::Reply { .. } => None,
        }
    }

    /// Notes the request's type (for the metrics).
    fn set_op(&mut self, code: OpCode) {
        match self {
            Pending::Write { op, .. } | Pending::Read { op, .. } => *op = Some(code),
            Pending::Barrier { then, .. } => then.set_op(code),
            Pending::Reply { .. } => {}
        }
    }
}

/// Serves one accepted plain connection until it closes.
pub async fn serve(
    core: Arc<ServerCore>,
    stream: TcpStream,
    remote: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    serve_halves(core, rd, wr, remote, Vec::new(), shutdown).await;
}

/// Serves one connection, given as the two halves of its byte stream (a TCP socket's,
/// or a TLS session's once its handshake is done), until it closes. `identities` are
/// the connection's own besides its `ip` one (a TLS client's `x509` identity).
pub async fn serve_halves<R, W>(
    core: Arc<ServerCore>,
    mut rd: R,
    wr: W,
    remote: SocketAddr,
    identities: Vec<Id>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 4];
    if rd.read_exact(&mut first).await.is_err() {
        return;
    }
    if let Some(cmd) = four_letter::command(first) {
        four_letter::serve(&core, cmd, remote, wr).await;
        return;
    }
    let len = i32::from_be_bytes(first);
    let max = core.config.jute_max_buffer;
    let Ok(len) = usize::try_from(len) else {
        debug!(%remote, len, "negative length before handshake; closing");
        return;
    };
    if len == 0 || len > max {
        debug!(%remote, len, "implausible handshake length; closing");
        return;
    }
    let mut body = vec![0u8; len];
    if rd.read_exact(&mut body).await.is_err() {
        return;
    }
    let Some(accepted) = handshake(&core, remote, identities, &shutdown, Bytes::from(body)).await
    else {
        return;
    };
    let Accepted {
        conn,
        session_id,
        read_only,
        mut auth,
        close,
        counters,
        notifications: notify_rx,
        response,
    } = accepted;
    let mut wr = wr;
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| response.write(w));
    if wr.write_all(&out).await.is_err() || session_id == 0 {
        core.unregister_connection(conn);
        return;
    }
    core.stats.record_sent();
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let span =
        tracing::info_span!("connection", session = format_args!("0x{session_id:x}"), %remote);
    debug!(parent: &span, "session established");

    let (pending_tx, pending_rx) = mpsc::channel::<Queued>(PENDING_QUEUE);
    let writer = tokio::spawn(
        write_loop(
            core.clone(),
            conn,
            session_id,
            wr,
            pending_rx,
            notify_rx,
            close.clone(),
            counters.clone(),
        )
        .instrument(span.clone()),
    );
    read_loop(
        &core, conn, session_id, read_only, &mut auth, rd, pending_tx, &close, &counters,
    )
    .instrument(span.clone())
    .await;
    // The reader is done (client closed, protocol error, or told to close): let the
    // writer finish what is queued, then forget the connection. The session lives on
    // until it expires or is closed.
    let _ = writer.await;
    core.unregister_connection(conn);
    debug!(parent: &span, "connection closed");
}

/// A connection past its handshake: registered with the core, with the session it
/// carries (0 when refused: the response still goes out, then the connection closes).
pub(crate) struct Accepted {
    pub(crate) conn: ConnId,
    pub(crate) session_id: i64,
    pub(crate) read_only: bool,
    pub(crate) auth: Vec<Id>,
    pub(crate) close: CancellationToken,
    pub(crate) counters: Arc<ConnCounters>,
    pub(crate) notifications: mpsc::Receiver<WatcherEvent>,
    pub(crate) response: ConnectResponse,
}

/// The handshake after the ConnectRequest frame (`body`) has been read: `None` when
/// the connection is closed without an answer (malformed request, no quorum, a client
/// ahead of this server), else the registered connection and its ConnectResponse.
pub(crate) async fn handshake(
    core: &Arc<ServerCore>,
    remote: SocketAddr,
    identities: Vec<Id>,
    shutdown: &CancellationToken,
    body: Bytes,
) -> Option<Accepted> {
    let connect = match ConnectRequest::read(&mut Reader::new(body)) {
        Ok(c) => c,
        Err(e) => {
            debug!(%remote, error = %e, "malformed ConnectRequest; closing");
            return None;
        }
    };
    // A session a test cut off (`ServerCore::disconnect_session`) finds this server
    // unreachable: its connection is closed without an answer.
    if core.session_held_off(connect.session_id) {
        debug!(
            %remote,
            session = format_args!("0x{:x}", connect.session_id),
            "session held off; closing the connection"
        );
        return None;
    }
    // Cut off from the quorum, only clients that accept read-only service are served,
    // and only with readonlymode.enabled; ZooKeeper closes the others' connections.
    let read_only = !core.role().serving();
    if read_only && !(core.config.read_only_mode && connect.read_only == Some(true)) {
        debug!(%remote, "no leader; refusing the connection");
        return None;
    }
    let last_zxid = core.db().last_zxid();
    if connect.last_zxid_seen > last_zxid {
        info!(
            %remote,
            client_zxid = format_args!("0x{:x}", connect.last_zxid_seen),
            our_zxid = format_args!("0x{last_zxid:x}"),
            "refusing session request: client has seen a later zxid than this server"
        );
        return None;
    }

    let close = shutdown.child_token();
    let counters = Arc::new(ConnCounters::default());
    let (notify_tx, notify_rx) = mpsc::channel(NOTIFICATION_QUEUE);
    let mut auth = vec![Id::new("ip", remote.ip().to_string())];
    auth.extend(identities);
    let conn = core.register_connection(ConnEntry {
        session_id: 0,
        remote,
        auth: auth.clone(),
        notifications: notify_tx,
        close: close.clone(),
        since: Instant::now(),
        counters: counters.clone(),
        read_only,
        sasl: None,
    });

    let (session_id, accepted) = if read_only {
        read_only_session(core, conn, &connect)
    } else {
        establish_session(core, conn, &close, &connect).await
    };
    Some(Accepted {
        conn,
        session_id,
        read_only,
        auth,
        close,
        counters,
        notifications: notify_rx,
        response: accepted,
    })
}

/// Creates or resumes the session; returns its id (0 = refused) and the response.
async fn establish_session(
    core: &ServerCore,
    conn: ConnId,
    close: &CancellationToken,
    req: &ConnectRequest,
) -> (i64, ConnectResponse) {
    let timeout = core.config.negotiate_session_timeout(req.timeout);
    let refused = ConnectResponse {
        protocol_version: 0,
        timeout: 0,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: req.read_only.map(|_| false),
    };
    if req.session_id == 0 {
        let session_id = core.next_session_id();
        let passwd = Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let op = TxnOp::CreateSession {
            timeout,
            passwd: passwd.clone(),
        };
        let Ok(rx) = core.submit_on(close, session_id, 0, Vec::new(), op) else {
            return (0, refused);
        };
        match rx.await {
            Ok((_, applied)) if applied.result.is_ok() => {}
            _ => return (0, refused),
        }
        core.attach_session(conn, session_id);
        let response = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id,
            passwd,
            read_only: req.read_only.map(|_| false),
        };
        return (session_id, response);
    }
    let valid = core
        .db()
        .session(req.session_id)
        .is_some_and(|s| s.passwd == req.passwd);
    if !valid {
        info!(
            session = format_args!("0x{:x}", req.session_id),
            "invalid session or password on reconnect"
        );
        return (0, refused);
    }
    // The leader learns the session is here now (and says if it is being closed).
    if !core.revalidate_session(req.session_id).await {
        info!(
            session = format_args!("0x{:x}", req.session_id),
            "the leader is closing this session; refusing the reconnect"
        );
        return (0, refused);
    }
    core.attach_session(conn, req.session_id);
    core.tracker().touch(req.session_id, Instant::now());
    let passwd = req.passwd.clone();
    (
        req.session_id,
        ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id: req.session_id,
            passwd,
            read_only: req.read_only.map(|_| false),
        },
    )
}

/// A session on a member cut off from its quorum: the client's own session when this
/// member knows it (password checked), else a new session local to this member, never
/// replicated, as ZooKeeper's read-only server makes.
fn read_only_session(
    core: &ServerCore,
    conn: ConnId,
    req: &ConnectRequest,
) -> (i64, ConnectResponse) {
    let timeout = core.config.negotiate_session_timeout(req.timeout);
    let known = req.session_id != 0
        && core
            .db()
            .session(req.session_id)
            .is_some_and(|s| s.passwd == req.passwd);
    let (session_id, passwd) = if known {
        (req.session_id, req.passwd.clone())
    } else {
        (
            core.next_session_id(),
            Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes()),
        )
    };
    core.attach_session(conn, session_id);
    info!(
        session = format_args!("0x{session_id:x}"),
        known, "serving a read-only session"
    );
    (
        session_id,
        ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id,
            passwd,
            read_only: Some(true),
        },
    )
}

/// Reads and decodes requests, submitting writes and queueing everything in order.
#[allow(clippy::too_many_arguments)]
async fn read_loop<R: AsyncRead + Unpin>(
    core: &Arc<ServerCore>,
    conn: ConnId,
    session_id: i64,
    read_only: bool,
    auth: &mut Vec<Id>,
    mut rd: R,
    pending: mpsc::Sender<Queued>,
    close: &CancellationToken,
    counters: &ConnCounters,
) {
    let mut decoder = FrameDecoder::new(core.config.jute_max_buffer);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut shared_auth = Arc::new(auth.clone());
    // The last read queued and not yet evaluated by the writer.
    let mut last_read: Option<oneshot::Receiver<()>> = None;
    loop {
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                tokio::select! {
                    _ = close.cancelled() => return,
                    n = rd.read_buf(&mut buf) => match n {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    },
                }
            }
            Err(e) => {
                info!(error = %e, "closing connection: bad frame");
                return;
            }
        };
        if submits_write(&frame) {
            if let Some(read) = last_read.take() {
                tokio::select! {
                    _ = close.cancelled() => return,
                    // An error: the writer stopped, and the connection with it.
                    _ = read => {}
                }
            }
        }
        // Held until the request is answered: with `globalOutstandingLimit` requests
        // outstanding, a connection that has requests of its own outstanding waits
        // here (reads nothing more); one with none goes on, as in ZooKeeper, so a
        // client that stopped reading its replies cannot stall everyone else.
        let permit = if counters.outstanding.load(Ordering::SeqCst) == 0 {
            core.try_outstanding_permit()
        } else {
            tokio::select! {
                _ = close.cancelled() => return,
                permit = core.outstanding_permit() => match permit {
                    Some(p) => Some(p),
                    None => return,
                },
            }
        };
        counters.outstanding.fetch_add(1, Ordering::SeqCst);
        let Some(mut item) = receive(
            core,
            conn,
            session_id,
            read_only,
            auth,
            &mut shared_auth,
            close,
            counters,
            frame,
        ) else {
            return;
        };
        if let Some(read) = item.track_evaluation() {
            last_read = Some(read);
        }
        let stop = item.closes();
        if pending.send((item, permit)).await.is_err() || stop {
            return;
        }
    }
}

/// Turns one received frame into its pending reply, as the reader does for every frame
/// after the handshake: `None` when the connection must close at once (a truncated
/// header, a session moved elsewhere). Writes are submitted to the log here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn receive(
    core: &Arc<ServerCore>,
    conn: ConnId,
    session_id: i64,
    read_only: bool,
    auth: &mut Vec<Id>,
    shared_auth: &mut Arc<Vec<Id>>,
    close: &CancellationToken,
    counters: &ConnCounters,
    frame: Bytes,
) -> Option<Pending> {
    core.stats.record_received();
    counters.received.fetch_add(1, Ordering::Relaxed);
    if core.moved_away(session_id) {
        info!("the session moved to another member; closing this connection");
        return None;
    }
    core.tracker().touch(session_id, Instant::now());
    let mut r = Reader::new(frame);
    let Ok(header) = RequestHeader::read(&mut r) else {
        info!("closing connection: truncated request header");
        return None;
    };
    let started = Instant::now();
    let body = r.take_rest();
    Some(match header.op() {
        None => {
            warn!(
                opcode = header.opcode,
                "unknown request type; answering Unimplemented and closing"
            );
            error_reply(header.xid, -1, ErrorCode::Unimplemented, true)
        }
        Some(OpCode::Auth) => {
            let reply = authenticate(core, conn, auth, body);
            *shared_auth = Arc::new(auth.clone());
            reply
        }
        Some(OpCode::Sasl) => {
            let reply = super::sasl::step(core, conn, auth, header.xid, body);
            *shared_auth = Arc::new(auth.clone());
            reply
        }
        // enforce.auth: an unauthenticated connection's request is refused, and closes it.
        Some(_) => match super::sasl::enforce(core, auth, header.xid) {
            Some(refused) => refused,
            None => {
                return receive_authenticated(
                    core,
                    conn,
                    session_id,
                    read_only,
                    shared_auth,
                    close,
                    header,
                    body,
                    started,
                )
            }
        },
    })
}

/// [`receive`]'s part for a request that may be made (see [`super::sasl::enforce`]).
#[allow(clippy::too_many_arguments)]
fn receive_authenticated(
    core: &Arc<ServerCore>,
    conn: ConnId,
    session_id: i64,
    read_only: bool,
    shared_auth: &Arc<Vec<Id>>,
    close: &CancellationToken,
    header: RequestHeader,
    body: Bytes,
    started: Instant,
) -> Option<Pending> {
    Some(match header.op() {
        None => return None,
        Some(op) if read_only && refused_read_only(op) => {
            core.stats.request_started();
            stamped_reply(header.xid, ErrorCode::NotReadOnly, false)
        }
        // A read-only session is local: closing it is only closing the connection.
        Some(OpCode::CloseSession) if read_only => stamped_reply(header.xid, ErrorCode::Ok, true),
        Some(op) => {
            let _request = tracing::debug_span!("request", xid = header.xid, op = ?op).entered();
            let mut item = classify(
                core,
                conn,
                close,
                session_id,
                shared_auth,
                header.xid,
                op,
                body,
                started,
            );
            item.set_op(op);
            item
        }
    })
}

/// Whether a frame is a request the reader submits to the log (a write): before it,
/// the connection's earlier reads must have been evaluated (see
/// [`Pending::track_evaluation`]).
pub(crate) fn submits_write(frame: &Bytes) -> bool {
    RequestHeader::read(&mut Reader::new(frame.clone()))
        .ok()
        .and_then(|h| h.op())
        .is_some_and(OpCode::is_write)
}

/// What a read-only server answers NotReadOnly, as ZooKeeper's
/// `ReadOnlyRequestProcessor` does: every write, and sync.
fn refused_read_only(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Sync
            | OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::Reconfig
            | OpCode::SetAcl
            | OpCode::Multi
            | OpCode::Check
    )
}

/// Turns one request into its pending reply: submits writes, defers reads.
#[allow(clippy::too_many_arguments)]
fn classify(
    core: &Arc<ServerCore>,
    conn: ConnId,
    close: &CancellationToken,
    session_id: i64,
    auth: &Arc<Vec<Id>>,
    xid: i32,
    op: OpCode,
    body: Bytes,
    started: Instant,
) -> Pending {
    let request = match Request::decode(op, body) {
        Ok(r) => r,
        Err(e) => {
            debug!(?op, error = %e, "malformed request body");
            return stamped_reply(xid, ErrorCode::MarshallingError, false);
        }
    };
    let write = match request {
        Request::Create(r) => TxnOp::Create {
            opcode: OpCode::Create,
            request: r,
        },
        Request::Create2(r) => TxnOp::Create {
            opcode: OpCode::Create2,
            request: r,
        },
        Request::CreateContainer(r) => TxnOp::Create {
            opcode: OpCode::CreateContainer,
            request: r,
        },
        Request::CreateTtl(r) => TxnOp::CreateTtl(r),
        Request::Delete(r) => TxnOp::Delete(r),
        Request::SetData(r) => TxnOp::SetData(r),
        Request::SetAcl(r) => TxnOp::SetAcl(r),
        Request::Check(r) => TxnOp::Check(r),
        Request::Multi(m) => {
            // ZooKeeper refuses a multi holding reads as a whole (MarshallingError).
            if m.ops.iter().any(MultiOp::is_read) {
                return stamped_reply(xid, ErrorCode::MarshallingError, false);
            }
            TxnOp::Multi(m)
        }
        Request::MultiRead(ref m) if m.ops.iter().any(|o| !o.is_read()) => {
            return stamped_reply(xid, ErrorCode::MarshallingError, false);
        }
        Request::CloseSession => {
            core.detach_session(conn);
            return submit(
                core,
                close,
                session_id,
                xid,
                auth,
                TxnOp::CloseSession,
                started,
                true,
            );
        }
        // Without reconfigEnabled (and always standalone) ZooKeeper 3.8 answers
        // ReconfigDisabled.
        Request::Reconfig(_)
            if !core.config.reconfig_enabled || core.role() == crate::role::Role::Standalone =>
        {
            return stamped_reply(xid, ErrorCode::ReconfigDisabled, false);
        }
        Request::Reconfig(r) => {
            // As ZooKeeper 3.8's PrepRequestProcessor: the request is judged first (a
            // config version that is not the current one: BadVersion; a malformed or
            // impossible membership: BadArguments), and only then may a super user
            // alone (unless skipACL) write /zookeeper/config. The leader judges the
            // request again against the configuration it holds.
            let (config_acl, config_data) = {
                let db = core.db();
                let node = db.tree().get(crate::tree::CONFIG_PATH);
                (
                    node.map(|n| n.acl().to_vec()).unwrap_or_default(),
                    node.and_then(|n| n.data()).unwrap_or_default(),
                )
            };
            let (current, version) = crate::replication::reconfig::parse_config_data(&config_data);
            if let Err(code) = crate::replication::reconfig::next_membership(&current, version, &r)
            {
                return stamped_reply(xid, code, false);
            }
            if !core.config.skip_acl
                && acl::check(&config_acl, zk_proto::Perms::WRITE, auth).is_err()
            {
                return stamped_reply(xid, ErrorCode::NoAuth, false);
            }
            core.stats.request_started();
            let (tx, applied) = oneshot::channel();
            let core = Arc::clone(core);
            tokio::spawn(async move {
                let outcome = core.reconfigure(r).await;
                let db = core.db();
                let zxid = db.last_zxid();
                let result = outcome.and_then(|_| {
                    let node = db
                        .tree()
                        .get(crate::tree::CONFIG_PATH)
                        .ok_or(ErrorCode::SystemError)?;
                    Ok(Response::GetData(zk_proto::GetDataResponse {
                        data: node.data(),
                        stat: node.stat(),
                    }))
                });
                let _ = tx.send((
                    zxid,
                    Applied {
                        result,
                        events: Vec::new(),
                    },
                ));
            });
            return Pending::Write {
                xid,
                op: None,
                started,
                applied,
                close_after: false,
            };
        }
        // Answered in `receive` (`super::sasl`); kept for exhaustiveness: Ok with a
        // null token, as ZooKeeper 3.8 without a SASL login answers.
        Request::Sasl(_) => {
            return Pending::Reply {
                header: ReplyHeader::new(xid, 0, ErrorCode::Ok),
                body: Some(Response::Sasl(zk_proto::SetSaslResponse { token: None })),
                close_after: false,
                stamp: false,
                evaluated: None,
            };
        }
        // setWatches is setWatches2 without persistent watches.
        Request::SetWatches(s) => {
            core.stats.request_started();
            return Pending::Read {
                xid,
                op: None,
                started,
                request: Request::SetWatches2(zk_proto::SetWatches2 {
                    relative_zxid: s.relative_zxid,
                    data_watches: s.data_watches,
                    exist_watches: s.exist_watches,
                    child_watches: s.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                }),
                auth: auth.clone(),
                evaluated: None,
            };
        }
        // sync: answered once this server has applied the leader's commit point.
        Request::Sync(r) => {
            core.stats.request_started();
            let (tx, ready) = oneshot::channel();
            let waiter = Arc::clone(core);
            tokio::spawn(async move {
                let _ = tx.send(waiter.sync_point(SYNC_TIMEOUT).await);
            });
            return Pending::Barrier {
                ready,
                then: Box::new(Pending::Read {
                    xid,
                    op: None,
                    started,
                    request: Request::Sync(r),
                    auth: auth.clone(),
                    evaluated: None,
                }),
            };
        }
        other => {
            core.stats.request_started();
            return Pending::Read {
                xid,
                op: None,
                started,
                request: other,
                auth: auth.clone(),
                evaluated: None,
            };
        }
    };
    submit(core, close, session_id, xid, auth, write, started, false)
}

#[allow(clippy::too_many_arguments)]
fn submit(
    core: &ServerCore,
    close: &CancellationToken,
    session_id: i64,
    xid: i32,
    auth: &Arc<Vec<Id>>,
    op: TxnOp,
    started: Instant,
    close_after: bool,
) -> Pending {
    match core.submit_on(close, session_id, xid, auth.as_ref().clone(), op) {
        Ok(applied) => {
            core.stats.request_started();
            Pending::Write {
                xid,
                op: None,
                started,
                applied,
                close_after,
            }
        }
        Err(e @ SubmitError::DiskFull(_)) => {
            // The client keeps its session and may read; the write was not done.
            warn!(error = %e, "write refused");
            error_reply(xid, core.db().last_zxid(), ErrorCode::SystemError, false)
        }
        Err(e) => {
            warn!(error = %e, "write refused");
            stamped_reply(xid, ErrorCode::ConnectionLoss, true)
        }
    }
}

fn error_reply(xid: i32, zxid: i64, err: ErrorCode, close_after: bool) -> Pending {
    Pending::Reply {
        header: ReplyHeader::new(xid, zxid, err),
        body: None,
        close_after,
        stamp: false,
        evaluated: None,
    }
}

/// A reply without a body whose zxid is the last one applied *when it is answered*,
/// as ZooKeeper's final processor stamps it: stamped when read, it could carry a zxid
/// below that of an earlier write of the connection still being applied.
fn stamped_reply(xid: i32, err: ErrorCode, close_after: bool) -> Pending {
    Pending::Reply {
        header: ReplyHeader::new(xid, 0, err),
        body: None,
        close_after,
        stamp: true,
        evaluated: None,
    }
}

/// addauth: digest (and ip) are understood; anything else fails and closes, as in
/// ZooKeeper without that provider.
fn authenticate(core: &ServerCore, conn: ConnId, auth: &mut Vec<Id>, body: Bytes) -> Pending {
    let Ok(packet) = AuthPacket::read(&mut Reader::new(body)) else {
        return error_reply(xid::AUTH, 0, ErrorCode::AuthFailed, true);
    };
    let credentials = String::from_utf8_lossy(&packet.auth).into_owned();
    match packet.scheme.as_str() {
        "digest" => {
            let id = acl::digest(&credentials);
            if core.config.super_digest.as_deref() == Some(id.as_str()) {
                push_unique(auth, acl::super_id());
            }
            push_unique(auth, Id::new("digest", id));
        }
        "ip" => {}
        other => {
            warn!(
                scheme = other,
                "authentication with an unknown scheme; closing"
            );
            return error_reply(xid::AUTH, 0, ErrorCode::AuthFailed, true);
        }
    }
    let snapshot = auth.clone();
    core.with_connections(|conns| {
        if let Some(entry) = conns.get_mut(&conn) {
            entry.auth = snapshot;
        }
    });
    Pending::Reply {
        header: ReplyHeader::new(xid::AUTH, 0, ErrorCode::Ok),
        body: None,
        close_after: false,
        stamp: false,
        evaluated: None,
    }
}

fn push_unique(ids: &mut Vec<Id>, id: Id) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// Answers queued requests in order and delivers notifications.
#[allow(clippy::too_many_arguments)]
async fn write_loop<W: AsyncWrite + Unpin>(
    core: Arc<ServerCore>,
    conn: ConnId,
    session_id: i64,
    mut wr: W,
    mut pending: mpsc::Receiver<Queued>,
    mut notifications: mpsc::Receiver<WatcherEvent>,
    close: CancellationToken,
    counters: Arc<ConnCounters>,
) {
    let mut out = Output::new(core.clone(), counters);
    loop {
        let item = tokio::select! {
            biased;
            _ = close.cancelled() => break,
            Some(event) = notifications.recv() => {
                out.notification(&event);
                None
            }
            item = pending.recv() => match item {
                Some(item) => Some(item),
                None => break,
            },
        };
        let mut close_after = false;
        // The permit goes back once the request is answered.
        if let Some((item, _permit)) = item {
            let answered = answer(
                &core,
                conn,
                session_id,
                item,
                &mut notifications,
                &mut out,
                &close,
            )
            .await;
            out.counters.outstanding.fetch_sub(1, Ordering::SeqCst);
            match answered {
                Some(c) => close_after = c,
                None => break,
            }
        }
        if (pending.is_empty() && notifications.is_empty())
            || out.buf.len() >= FLUSH_AT
            || close_after
        {
            // A client that stopped reading blocks this write; it ends when the
            // connection is closed (its session expired, or it fell too far behind).
            let written = tokio::select! {
                r = wr.write_all(&out.buf) => r.is_ok(),
                _ = close.cancelled() => false,
            };
            if !written {
                break;
            }
            out.buf.clear();
        }
        if close_after {
            break;
        }
    }
    if !out.buf.is_empty() {
        let _ = wr.write_all(&out.buf).await;
    }
    let _ = wr.shutdown().await;
    close.cancel();
}

/// Frames waiting to be written, and the counters they move.
pub(crate) struct Output {
    pub(crate) buf: BytesMut,
    core: Arc<ServerCore>,
    counters: Arc<ConnCounters>,
}

impl Output {
    /// An empty output for a connection with these counters.
    pub(crate) fn new(core: Arc<ServerCore>, counters: Arc<ConnCounters>) -> Output {
        Output {
            buf: BytesMut::with_capacity(16 * 1024),
            core,
            counters,
        }
    }

    fn count(&self) {
        self.core.stats.record_sent();
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A watch notification taken from the connection's queue: written, it no longer
    /// counts against the connection's queued output.
    pub(crate) fn notification(&mut self, event: &WatcherEvent) {
        self.event(event);
        self.counters
            .queued_bytes
            .fetch_sub(notification_bytes(event), Ordering::Relaxed);
    }

    /// A watch event: xid -1, zxid -1 (as ZooKeeper 3.8 sends them).
    fn event(&mut self, event: &WatcherEvent) {
        write_frame(&mut self.buf, |w| {
            ReplyHeader::new(xid::NOTIFICATION, -1, ErrorCode::Ok).write(w);
            event.write(w);
        });
        self.count();
    }

    /// A reply; the body goes out only with `err == 0`.
    fn reply(&mut self, header: ReplyHeader, body: Option<&Response>) {
        write_frame(&mut self.buf, |w| {
            header.write(w);
            // ZooKeeper sends a refused sasl request's (null) token too.
            if header.err == 0 || matches!(body, Some(Response::Sasl(_))) {
                if let Some(body) = body {
                    body.write(w);
                }
            }
        });
        self.count();
    }
}

/// Answers one pending request; `None` when the connection must stop, else whether to
/// close after this reply.
pub(crate) async fn answer(
    core: &ServerCore,
    conn: ConnId,
    session_id: i64,
    item: Pending,
    notifications: &mut mpsc::Receiver<WatcherEvent>,
    out: &mut Output,
    close: &CancellationToken,
) -> Option<bool> {
    match item {
        Pending::Barrier { mut ready, then } => {
            let passed = loop {
                tokio::select! {
                    biased;
                    _ = close.cancelled() => return None,
                    Some(event) = notifications.recv() => out.notification(&event),
                    r = &mut ready => break r.unwrap_or(false),
                }
            };
            if !passed {
                return None;
            }
            Box::pin(answer(
                core,
                conn,
                session_id,
                *then,
                notifications,
                out,
                close,
            ))
            .await
        }
        Pending::Reply {
            mut header,
            body,
            close_after,
            stamp,
            evaluated,
        } => {
            if stamp {
                header.zxid = core.db().last_zxid();
            }
            if let Some(evaluated) = evaluated {
                let _ = evaluated.send(());
            }
            out.reply(header, body.as_ref());
            Some(close_after)
        }
        Pending::Write {
            xid,
            op,
            started,
            mut applied,
            close_after,
        } => {
            // Keep delivering notifications while the write commits.
            let result = loop {
                tokio::select! {
                    biased;
                    _ = close.cancelled() => return None,
                    Some(event) = notifications.recv() => out.notification(&event),
                    r = &mut applied => break r,
                }
            };
            core.stats
                .request_finished(started.elapsed().as_micros() as u64);
            core.metrics.request(op, started.elapsed());
            let Ok((zxid, applied)) = result else {
                // The write path went away; the client will reconnect and retry.
                return None;
            };
            let (err, body) = match applied.result {
                Ok(body) => (ErrorCode::Ok, Some(body)),
                Err(code) => (code, None),
            };
            debug!(
                xid,
                zxid = format_args!("0x{zxid:x}"),
                ?op,
                ?err,
                took_us = started.elapsed().as_micros() as u64,
                "write answered"
            );
            out.reply(ReplyHeader::new(xid, zxid, err), body.as_ref());
            Some(close_after)
        }
        Pending::Read {
            xid,
            op,
            started,
            request,
            auth,
            evaluated,
        } => {
            let (header, body) = {
                // Under the database lock: every change applied so far has queued its
                // notifications; send them before this read's answer.
                let db = core.db();
                while let Ok(event) = notifications.try_recv() {
                    out.notification(&event);
                }
                let zxid = db.last_zxid();
                let mut watches = core.watches();
                let (reply_xid, result, fired) =
                    run_read(&db, &mut watches, conn, session_id, xid, &request, &auth);
                // Fired by the read itself (never queued).
                for (_, event) in fired {
                    out.event(&event);
                }
                let (err, body) = match result {
                    Ok(body) => (ErrorCode::Ok, Some(body)),
                    Err(code) => (code, None),
                };
                (ReplyHeader::new(reply_xid, zxid, err), body)
            };
            if let Some(evaluated) = evaluated {
                let _ = evaluated.send(());
            }
            core.stats
                .request_finished(started.elapsed().as_micros() as u64);
            core.metrics.request(op, started.elapsed());
            out.reply(header, body.as_ref());
            Some(false)
        }
    }
}

type ReadOutcome = (
    i32,
    Result<Response, ErrorCode>,
    Vec<crate::watches::Notification>,
);

/// Runs a read and registers the watches it asks for, with ZooKeeper's rules: exists
/// always leaves its watch (a missing node is watched for creation), getData and
/// getChildren only when they succeed.
fn run_read(
    db: &crate::database::ZkDatabase,
    watches: &mut crate::watches::WatchManager,
    conn: ConnId,
    session_id: i64,
    xid: i32,
    request: &Request,
    auth: &[Id],
) -> ReadOutcome {
    let none = Vec::new();
    match request {
        Request::Ping => (xid::PING, Ok(Response::Empty), none),
        Request::Sync(r) => (
            xid,
            Ok(Response::Sync(SyncResponse {
                path: r.path.clone(),
            })),
            none,
        ),
        Request::WhoAmI => (xid, Ok(Response::WhoAmI(who_am_i(auth))), none),
        Request::SetWatches2(s) => {
            let fired = watches.set_watches(
                db.tree(),
                conn,
                s.relative_zxid,
                &s.data_watches,
                &s.exist_watches,
                &s.child_watches,
                &s.persistent_watches,
                &s.persistent_recursive_watches,
            );
            (xid::SET_WATCHES, Ok(Response::Empty), fired)
        }
        Request::AddWatch(r) => match r.mode() {
            Ok(mode) => {
                watches.add_persistent_watch(&r.path, conn, mode);
                (xid, Ok(Response::AddWatch(ErrorResponse { err: 0 })), none)
            }
            Err(_) => (xid, Err(ErrorCode::MarshallingError), none),
        },
        Request::CheckWatches(r) => {
            let result = match r.watcher_type() {
                Ok(kind) if watches.contains(&r.path, conn, kind) => Ok(Response::Empty),
                Ok(_) => Err(ErrorCode::NoWatcher),
                Err(_) => Err(ErrorCode::MarshallingError),
            };
            (xid, result, none)
        }
        Request::RemoveWatches(r) => {
            let result = match r.watcher_type() {
                Ok(kind) if watches.remove(&r.path, conn, kind) => Ok(Response::Empty),
                Ok(_) => Err(ErrorCode::NoWatcher),
                Err(_) => Err(ErrorCode::MarshallingError),
            };
            (xid, result, none)
        }
        _ => {
            let result = db.read(session_id, auth, request);
            match request {
                Request::Exists(r)
                    if r.watch && matches!(result, Ok(_) | Err(ErrorCode::NoNode)) =>
                {
                    watches.add_data_watch(&r.path, conn)
                }
                Request::GetData(r) if r.watch && result.is_ok() => {
                    watches.add_data_watch(&r.path, conn)
                }
                Request::GetChildren(r) if r.watch && result.is_ok() => {
                    watches.add_child_watch(&r.path, conn)
                }
                Request::GetChildren2(r) if r.watch && result.is_ok() => {
                    watches.add_child_watch(&r.path, conn)
                }
                _ => {}
            }
            (xid, result, none)
        }
    }
}

/// whoAmI: the connection's identities in the order ZooKeeper 3.8 lists them. Its
/// `ServerCnxn.authInfo` is a set over a `ConcurrentHashMap`, so they come in the map's
/// bucket order (by the jute `Id.hashCode`), and in the order added within a bucket:
/// `digest:bob` before `ip:127.0.0.1` before `sasl:jaasuser` (observed on 3.8.0).
fn who_am_i(auth: &[Id]) -> WhoAmIResponse {
    let info = |id: &Id| ClientInfo {
        auth_scheme: id.scheme.clone(),
        user: match id.scheme.as_str() {
            "digest" => id.id.split(':').next().unwrap_or("").to_string(),
            _ => id.id.clone(),
        },
    };
    // The table doubles from 16 buckets once it holds three quarters of them.
    let mut buckets = 16usize;
    while auth.len() >= buckets * 3 / 4 {
        buckets *= 2;
    }
    let mut ordered: Vec<&Id> = auth.iter().collect();
    ordered.sort_by_key(|id| java_bucket(id, buckets));
    WhoAmIResponse {
        client_info: ordered.into_iter().map(info).collect(),
    }
}

/// The `ConcurrentHashMap` bucket of `id` in a table of `buckets` (a power of two).
fn java_bucket(id: &Id, buckets: usize) -> usize {
    let java_string_hash = |s: &str| {
        s.encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
    };
    // jute's generated Id.hashCode.
    let h = 17i32
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.scheme))
        .wrapping_mul(37)
        .wrapping_add(java_string_hash(&id.id));
    // ConcurrentHashMap.spread.
    let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
    spread as usize & (buckets - 1)
}

#[cfg(test)]
mod who_am_i_tests {
    use super::*;

    #[test]
    fn identities_come_in_zookeepers_set_order() {
        let names = |auth: &[Id]| -> Vec<String> {
            who_am_i(auth)
                .client_info
                .into_iter()
                .map(|i| i.auth_scheme)
                .collect()
        };
        let ip = Id::new("ip", "127.0.0.1");
        // As Apache ZooKeeper 3.8.0 answers zkCli.sh's whoami.
        assert_eq!(
            names(&[ip.clone(), Id::new("sasl", "jaasuser")]),
            ["ip", "sasl"]
        );
        assert_eq!(
            names(&[ip, Id::new("digest", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=")]),
            ["digest", "ip"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::database::ZkDatabase;

    /// Found by the `server_requests` fuzz target: a request refused when read (here a
    /// malformed body) behind a pipelined write of the same connection carried the zxid
    /// of the moment it was read, below the write's, so the connection's reply zxids
    /// went back (ZooKeeper's client then lowers its lastZxidSeen).
    #[tokio::test]
    async fn a_refusal_behind_a_pipelined_write_carries_the_zxid_of_its_answer() {
        let core = ServerCore::new(ServerConfig::default(), 0, ZkDatabase::new());
        core.advance_zxid(5);
        let refused = stamped_reply(7, ErrorCode::MarshallingError, false);
        // The connection's earlier write is applied before the refusal is answered.
        core.advance_zxid(9);
        let (_notify, mut notifications) = mpsc::channel(1);
        let mut out = Output::new(core.clone(), Arc::new(ConnCounters::default()));
        let close = CancellationToken::new();
        let answered = answer(&core, 1, 1, refused, &mut notifications, &mut out, &close).await;
        assert_eq!(answered, Some(false));
        let frame = FrameDecoder::default()
            .decode(&mut out.buf)
            .expect("frame")
            .expect("a whole frame");
        let header = ReplyHeader::read(&mut Reader::new(frame)).expect("header");
        assert_eq!(header, ReplyHeader::new(7, 9, ErrorCode::MarshallingError));
    }
}
