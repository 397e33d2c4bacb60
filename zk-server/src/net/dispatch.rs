//! Dispatch of one connection's requests, past its handshake: each frame the reader
//! reads is decoded, checked (session moved away, `enforce.auth`, read-only mode,
//! auth and SASL requests) and handed to the connection's [`SessionOrder`] — a write
//! to be submitted, a read to be evaluated in its turn, an answer known at once — or,
//! for `sync` and `reconfig`, to a task that completes its gate.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use zk_proto::{
    xid, AuthPacket, ErrorCode, Id, OpCode, Reader, ReconfigRequest, Record, ReplyHeader, Request,
    RequestHeader, Response,
};

use crate::acl;
use crate::core::{ConnCounters, ServerCore};
use crate::session_order::{Answer, Outbox, ReadRequest, SharedOrder, Ticket, Turn, WriteRequest};
use crate::txn::{ClientRequest, TxnOp};
use crate::watches::ConnId;

/// How long a `sync` may wait for the leader's commit point.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// What one request becomes once decoded.
#[derive(Debug)]
pub(crate) enum Step {
    /// An answer known now (errors, auth, SASL). With `stamp`, its zxid is the last
    /// applied one when its turn comes.
    Ready {
        header: ReplyHeader,
        body: Option<Response>,
        close_after: bool,
        stamp: bool,
    },
    /// A read, evaluated in its turn.
    Read(Request),
    /// A write for the log.
    Write { op: TxnOp, close_after: bool },
    /// `sync`: answered once this server has applied the leader's commit point.
    Sync(String),
    /// `reconfig`, judged and allowed: carried out through the leader.
    Reconfig(ReconfigRequest),
}

impl Step {
    /// An answer known now, with the zxid given.
    pub(crate) fn reply(
        xid: i32,
        zxid: i64,
        err: ErrorCode,
        body: Option<Response>,
        close_after: bool,
    ) -> Step {
        Step::Ready {
            header: ReplyHeader::new(xid, zxid, err),
            body,
            close_after,
            stamp: false,
        }
    }

    /// A reply without a body whose zxid is the last one applied *when it is
    /// answered*, as ZooKeeper's final processor stamps it.
    pub(crate) fn stamped(xid: i32, err: ErrorCode, close_after: bool) -> Step {
        Step::Ready {
            header: ReplyHeader::new(xid, 0, err),
            body: None,
            close_after,
            stamp: true,
        }
    }

    /// Whether the connection closes once this is answered (the reader stops reading).
    pub(crate) fn closes(&self) -> bool {
        matches!(
            self,
            Step::Ready {
                close_after: true,
                ..
            } | Step::Write {
                close_after: true,
                ..
            }
        )
    }
}

/// One connection's request dispatch: what its reader knows of it.
pub(crate) struct Dispatcher {
    pub(crate) core: Arc<ServerCore>,
    pub(crate) conn: ConnId,
    pub(crate) session_id: i64,
    pub(crate) read_only: bool,
    /// The connection's identities (auth and SASL add to them).
    pub(crate) auth: Vec<Id>,
    /// The same, shared with the requests read since they last changed.
    shared_auth: Arc<Vec<Id>>,
    pub(crate) close: CancellationToken,
    pub(crate) counters: Arc<ConnCounters>,
    pub(crate) order: SharedOrder,
}

impl Dispatcher {
    /// The dispatch of a connection past its handshake, answering into `outbox` (its
    /// writer's channel) in the connection's own order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        core: Arc<ServerCore>,
        conn: ConnId,
        session_id: i64,
        read_only: bool,
        auth: Vec<Id>,
        close: CancellationToken,
        counters: Arc<ConnCounters>,
        outbox: Outbox,
    ) -> Dispatcher {
        let order = SharedOrder::new(conn, session_id, outbox, close.clone(), counters.clone());
        Dispatcher {
            core,
            conn,
            session_id,
            read_only,
            shared_auth: Arc::new(auth.clone()),
            auth,
            close,
            counters,
            order,
        }
    }

    /// Takes one frame the reader read, holding `ticket` until it is answered; false
    /// when the connection must stop reading (it closes once what was read before is
    /// answered).
    pub(crate) fn frame(&mut self, frame: Bytes, ticket: Ticket) -> bool {
        let Some((xid, op, step)) = self.receive(frame) else {
            return false;
        };
        let stop = step.closes();
        self.handle(xid, op, step, ticket);
        !stop
    }

    /// Hands a decoded request ([`Dispatcher::receive`]) to the connection's order.
    pub(crate) fn handle(&mut self, xid: i32, op: Option<OpCode>, step: Step, mut ticket: Ticket) {
        ticket.op = op;
        self.core.stats.request_started();
        let _request = tracing::debug_span!("request", xid, op = ?op).entered();
        self.route(xid, step, ticket);
    }

    /// The reader is done: the writer stops once everything read is answered.
    pub(crate) fn end(&self) {
        self.take(Turn::End);
    }

    fn take(&self, turn: Turn) {
        let db = self.core.db();
        self.order.lock().take(turn, &db, &self.core);
    }

    fn route(&mut self, xid: i32, step: Step, ticket: Ticket) {
        match step {
            Step::Ready {
                header,
                body,
                close_after,
                stamp,
            } => self.take(Turn::Ready {
                answer: Answer {
                    header,
                    body,
                    close_after,
                    ticket,
                },
                stamp,
            }),
            Step::Read(request) => self.take(Turn::Read(ReadRequest {
                xid,
                request,
                auth: self.shared_auth.clone(),
                ticket,
            })),
            Step::Write { op, close_after } => self.take(Turn::Write(WriteRequest {
                xid,
                op,
                auth: self.shared_auth.clone(),
                close_after,
                ticket,
            })),
            Step::Sync(path) => {
                let gate = self.open_task(xid, ticket);
                let (core, order, close) =
                    (self.core.clone(), self.order.clone(), self.close.clone());
                tokio::spawn(async move {
                    match core.sync_answer(path, SYNC_TIMEOUT).await {
                        Some(response) => {
                            let db = core.db();
                            let zxid = db.last_zxid();
                            order.lock().complete(gate, zxid, Ok(response), &db, &core);
                        }
                        // As a lost write: the client reconnects and syncs again.
                        None => close.cancel(),
                    }
                });
            }
            Step::Reconfig(request) => {
                let gate = self.open_task(xid, ticket);
                let (core, order) = (self.core.clone(), self.order.clone());
                tokio::spawn(async move {
                    let result = core.reconfig_answer(request).await;
                    let db = core.db();
                    let zxid = db.last_zxid();
                    order.lock().complete(gate, zxid, result, &db, &core);
                });
            }
        }
    }

    fn open_task(&self, xid: i32, ticket: Ticket) -> u64 {
        self.order.lock().open_task(Answer {
            header: ReplyHeader::new(xid, 0, ErrorCode::Ok),
            body: None,
            close_after: false,
            ticket,
        })
    }

    /// Decodes one frame: its xid, its type when known, and what it becomes; `None`
    /// when the connection must close at once (a truncated header, a session moved
    /// elsewhere).
    pub(crate) fn receive(&mut self, frame: Bytes) -> Option<(i32, Option<OpCode>, Step)> {
        let core = &self.core;
        core.stats.record_received();
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        if core.moved_away(self.session_id) {
            info!("the session moved to another member; closing this connection");
            return None;
        }
        core.tracker().touch(self.session_id, Instant::now());
        let mut r = Reader::new(frame);
        let Ok(header) = RequestHeader::read(&mut r) else {
            info!("closing connection: truncated request header");
            return None;
        };
        let body = r.take_rest();
        let op = header.op();
        let step = match op {
            None => {
                warn!(
                    opcode = header.opcode,
                    "unknown request type; answering Unimplemented and closing"
                );
                Step::reply(header.xid, -1, ErrorCode::Unimplemented, None, true)
            }
            Some(OpCode::Auth) => {
                let step = authenticate(core, self.conn, &mut self.auth, body);
                self.shared_auth = Arc::new(self.auth.clone());
                step
            }
            Some(OpCode::Sasl) => {
                let step = super::sasl::step(core, self.conn, &mut self.auth, header.xid, body);
                self.shared_auth = Arc::new(self.auth.clone());
                step
            }
            // enforce.auth: an unauthenticated connection's request is refused, and
            // closes it.
            Some(op) => match super::sasl::enforce(core, &self.auth, header.xid) {
                Some(refused) => refused,
                None if self.read_only && refused_read_only(op) => {
                    Step::stamped(header.xid, ErrorCode::NotReadOnly, false)
                }
                // A read-only session is local: closing it is only closing the
                // connection.
                None if self.read_only && op == OpCode::CloseSession => {
                    Step::stamped(header.xid, ErrorCode::Ok, true)
                }
                None => self.classify(header.xid, op, body),
            },
        };
        Some((header.xid, op, step))
    }

    /// What a request that may be made becomes.
    fn classify(&self, xid: i32, op: OpCode, body: Bytes) -> Step {
        let core = &self.core;
        let request = match Request::decode(op, body) {
            Ok(r) => r,
            Err(e) => {
                debug!(?op, error = %e, "malformed request body");
                return Step::stamped(xid, ErrorCode::MarshallingError, false);
            }
        };
        let request = match TxnOp::from_request(request) {
            ClientRequest::Write(op) => {
                return Step::Write {
                    op,
                    close_after: false,
                }
            }
            ClientRequest::Refused(code) => return Step::stamped(xid, code, false),
            ClientRequest::Other(request) => request,
        };
        match request {
            Request::CloseSession => {
                // Detached first, so the close does not cut this connection off before
                // its answer is written.
                core.detach_session(self.conn);
                Step::Write {
                    op: TxnOp::CloseSession,
                    close_after: true,
                }
            }
            Request::Reconfig(r) => match core.check_reconfig(&r, &self.shared_auth) {
                Ok(()) => Step::Reconfig(r),
                Err(code) => Step::stamped(xid, code, false),
            },
            // Answered in `receive` (`super::sasl`); kept for exhaustiveness: Ok with a
            // null token, as ZooKeeper 3.8 without a SASL login answers.
            Request::Sasl(_) => Step::reply(
                xid,
                0,
                ErrorCode::Ok,
                Some(Response::Sasl(zk_proto::SetSaslResponse { token: None })),
                false,
            ),
            // setWatches is setWatches2 without persistent watches.
            Request::SetWatches(s) => Step::Read(Request::SetWatches2(zk_proto::SetWatches2 {
                relative_zxid: s.relative_zxid,
                data_watches: s.data_watches,
                exist_watches: s.exist_watches,
                child_watches: s.child_watches,
                persistent_watches: Vec::new(),
                persistent_recursive_watches: Vec::new(),
            })),
            Request::Sync(r) => Step::Sync(r.path),
            other => Step::Read(other),
        }
    }
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

/// addauth: digest (and ip) are understood; anything else fails and closes, as in
/// ZooKeeper without that provider.
fn authenticate(core: &ServerCore, conn: ConnId, auth: &mut Vec<Id>, body: Bytes) -> Step {
    let Ok(packet) = AuthPacket::read(&mut Reader::new(body)) else {
        return Step::reply(xid::AUTH, 0, ErrorCode::AuthFailed, None, true);
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
            return Step::reply(xid::AUTH, 0, ErrorCode::AuthFailed, None, true);
        }
    }
    let snapshot = auth.clone();
    core.with_connections(|conns| {
        if let Some(entry) = conns.get_mut(&conn) {
            entry.auth = snapshot;
        }
    });
    Step::reply(xid::AUTH, 0, ErrorCode::Ok, None, false)
}

/// Adds `id` unless present.
pub(crate) fn push_unique(ids: &mut Vec<Id>, id: Id) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}
