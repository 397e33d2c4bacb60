//! A client connection's handshake: the ConnectRequest judged (a session held off, no
//! quorum, a client ahead of this server), the connection registered with the core, and
//! its session created (through the log), resumed (password checked, revalidated with
//! the leader) or, on a member cut off from its quorum, served read-only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use zk_proto::{ConnectRequest, ConnectResponse, Id, Reader, Record};

use crate::core::{ConnCounters, ConnEntry, ServerCore};
use crate::session_order::{Outbox, Outgoing};
use crate::txn::TxnOp;
use crate::watches::ConnId;

/// A connection past its handshake: registered with the core, with the session it
/// carries (0 when refused: the response still goes out, then the connection closes).
pub(crate) struct Accepted {
    pub(crate) conn: ConnId,
    pub(crate) session_id: i64,
    pub(crate) read_only: bool,
    pub(crate) auth: Vec<Id>,
    pub(crate) close: CancellationToken,
    pub(crate) counters: Arc<ConnCounters>,
    /// Its writer's end of the outbox ([`crate::session_order`]).
    pub(crate) outbox: mpsc::UnboundedReceiver<Outgoing>,
    /// Its answers' end of the outbox.
    pub(crate) outbox_tx: Outbox,
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
    let (outbox, outbox_rx) = mpsc::unbounded_channel();
    let mut auth = vec![Id::new("ip", remote.ip().to_string())];
    auth.extend(identities);
    let conn = core.register_connection(ConnEntry {
        session_id: 0,
        remote,
        auth: auth.clone(),
        outbox: outbox.clone(),
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
        outbox: outbox_rx,
        outbox_tx: outbox,
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
