//! A connection's order, driven through its real dispatch with a log that applies
//! writes only when told: answers in request order, reads evaluated against the tree
//! as of the session's last earlier write, a reader that never waits, and watch
//! events after the answers that set them.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use proptest::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zk_proto::{
    Acl, CreateRequest, DeleteRequest, ErrorCode, EventType, ExistsRequest, GetDataRequest, Id,
    OpCode, ReconfigRequest, Record, ReplyHeader, Request, RequestHeader, Response, SetDataRequest,
    SyncRequest, WatcherEvent,
};

use super::{Outgoing, Ticket};
use crate::config::ServerConfig;
use crate::core::{ConnCounters, ConnEntry, Replicator, ServerCore, SubmitError};
use crate::database::ZkDatabase;
use crate::net::dispatch::Dispatcher;
use crate::txn::{zxid_of, Txn, TxnOp};

/// A log that holds what is submitted until the test applies it.
struct HeldLog {
    queued: Arc<Mutex<VecDeque<Txn>>>,
    applied: Arc<AtomicI64>,
}

impl Replicator for HeldLog {
    fn submit(&self, txn: Txn) -> Result<(), SubmitError> {
        self.queued
            .lock()
            .map_err(|_| SubmitError::Unavailable("poisoned".into()))?
            .push_back(txn);
        Ok(())
    }

    fn read_index(&self) -> BoxFuture<'static, Result<i64, SubmitError>> {
        let zxid = self.applied.load(Ordering::SeqCst);
        Box::pin(async move { Ok(zxid) })
    }

    fn revalidate(
        &self,
        _session: i64,
        _owner: u64,
    ) -> BoxFuture<'static, Result<Option<bool>, SubmitError>> {
        Box::pin(async { Ok(Some(true)) })
    }

    fn reconfigure(&self, _request: ReconfigRequest) -> BoxFuture<'static, Result<i64, ErrorCode>> {
        Box::pin(async { Err(ErrorCode::ReconfigDisabled) })
    }
}

struct Rig {
    core: Arc<ServerCore>,
    queued: Arc<Mutex<VecDeque<Txn>>>,
    applied: Arc<AtomicI64>,
    index: u64,
    /// Every transaction applied, with its zxid.
    log: Vec<(i64, Txn)>,
}

impl Rig {
    fn new() -> Rig {
        let core = ServerCore::new(ServerConfig::default(), 0, ZkDatabase::new());
        let queued = Arc::new(Mutex::new(VecDeque::new()));
        let applied = Arc::new(AtomicI64::new(0));
        core.set_replicator(Arc::new(HeldLog {
            queued: queued.clone(),
            applied: applied.clone(),
        }));
        Rig {
            core,
            queued,
            applied,
            index: 0,
            log: Vec::new(),
        }
    }

    fn queued(&self) -> usize {
        self.queued.lock().expect("queue").len()
    }

    /// Applies up to `n` queued writes, in order; how many were.
    fn apply(&mut self, n: usize) -> usize {
        let mut done = 0;
        while done < n {
            let Some(txn) = self.queued.lock().expect("queue").pop_front() else {
                break;
            };
            self.index += 1;
            let zxid = zxid_of(self.index, 0);
            self.core.apply_committed(zxid, &txn);
            self.applied.store(zxid, Ordering::SeqCst);
            self.log.push((zxid, txn));
            done += 1;
        }
        done
    }

    fn apply_all(&mut self) {
        while self.apply(usize::MAX) > 0 {}
    }

    /// A client connection with a session of its own.
    fn client(&mut self, n: u8) -> Client {
        let session_id = self.core.next_session_id();
        let op = TxnOp::CreateSession {
            timeout: 30_000,
            passwd: Bytes::from_static(&[1; 16]),
        };
        let _created = self
            .core
            .submit(session_id, 0, Vec::new(), op)
            .expect("session submitted");
        self.apply_all();
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let close = CancellationToken::new();
        let counters = Arc::new(ConnCounters::default());
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 4000);
        let auth = vec![Id::new("ip", remote.ip().to_string())];
        let conn = self.core.register_connection(ConnEntry {
            session_id: 0,
            remote,
            auth: auth.clone(),
            outbox: outbox.clone(),
            close: close.clone(),
            since: Instant::now(),
            counters: counters.clone(),
            read_only: false,
            sasl: None,
        });
        self.core.attach_session(conn, session_id);
        Client {
            dispatch: Dispatcher::new(
                self.core.clone(),
                conn,
                session_id,
                false,
                auth,
                close,
                counters,
                outbox,
            ),
            outbox: outbox_rx,
            next_xid: 1,
        }
    }

    /// A session for the test's own writes.
    fn admin_session(&mut self) -> i64 {
        let session_id = self.core.next_session_id();
        let op = TxnOp::CreateSession {
            timeout: 30_000,
            passwd: Bytes::from_static(&[2; 16]),
        };
        let _created = self
            .core
            .submit(session_id, 0, Vec::new(), op)
            .expect("session submitted");
        self.apply_all();
        session_id
    }

    /// Creates `path` with `data` (through the log, applied at once).
    fn create(&mut self, path: &str, data: &[u8]) {
        let session = self.admin_session();
        let op = TxnOp::Create {
            opcode: OpCode::Create,
            request: create_request(path, data),
        };
        let mut created = self
            .core
            .submit(session, 1, Vec::new(), op)
            .expect("create submitted");
        self.apply_all();
        let (_, applied) = created.try_recv().expect("create applied");
        assert!(
            applied.result.is_ok(),
            "create {path}: {:?}",
            applied.result
        );
    }
}

fn create_request(path: &str, data: &[u8]) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags: 0,
    }
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        version: -1,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

struct Client {
    dispatch: Dispatcher,
    outbox: mpsc::UnboundedReceiver<Outgoing>,
    next_xid: i32,
}

/// What a client received, decoded.
#[derive(Debug)]
enum Received {
    Answer(ReplyHeader, Option<Response>),
    Event(WatcherEvent),
}

impl Client {
    /// Sends one request as its reader would; its xid. The reader must never be told
    /// to wait or stop.
    fn send(&mut self, request: Request) -> i32 {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut frame = BytesMut::new();
        RequestHeader::new(xid, request.opcode()).write(&mut frame);
        request.write_body(&mut frame);
        self.send_frame(frame.freeze());
        xid
    }

    fn send_frame(&mut self, frame: Bytes) {
        self.dispatch
            .counters
            .outstanding
            .fetch_add(1, Ordering::SeqCst);
        assert!(
            self.dispatch.frame(frame, Ticket::new()),
            "the reader stopped"
        );
    }

    fn received(&mut self) -> Vec<Received> {
        let mut got = Vec::new();
        while let Ok(outgoing) = self.outbox.try_recv() {
            match outgoing {
                Outgoing::Event(e) => got.push(Received::Event(e)),
                Outgoing::Answer(a) => got.push(Received::Answer(a.header, a.body)),
                Outgoing::End => panic!("the connection ended"),
            }
        }
        got
    }

    fn answers(&mut self) -> Vec<(ReplyHeader, Option<Response>)> {
        self.received()
            .into_iter()
            .map(|r| match r {
                Received::Answer(h, b) => (h, b),
                Received::Event(e) => panic!("unexpected event {e:?}"),
            })
            .collect()
    }
}

fn data_of(body: &Option<Response>) -> Vec<u8> {
    match body {
        Some(Response::GetData(d)) => d.data.as_deref().unwrap_or_default().to_vec(),
        other => panic!("not a getData answer: {other:?}"),
    }
}

#[test]
fn pipelined_reads_see_the_writes_sent_before_them_and_not_those_after() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    a.send(set("/x", b"v1"));
    a.send(get("/x", false));
    a.send(set("/x", b"v2"));
    a.send(get("/x", false));
    assert_eq!(rig.queued(), 2, "both writes were submitted at once");
    assert!(
        a.answers().is_empty(),
        "nothing answered before the writes apply"
    );
    // Both writes applied back to back: the first read still sees v1.
    rig.apply_all();
    let answers = a.answers();
    let xids: Vec<i32> = answers.iter().map(|(h, _)| h.xid).collect();
    assert_eq!(xids, [1, 2, 3, 4]);
    assert_eq!(data_of(&answers[1].1), b"v1");
    assert_eq!(answers[1].0.zxid, answers[0].0.zxid);
    assert_eq!(data_of(&answers[3].1), b"v2");
    assert_eq!(answers[3].0.zxid, answers[2].0.zxid);
    assert!(answers[2].0.zxid > answers[0].0.zxid);
}

#[test]
fn the_reader_never_waits_for_a_stalled_write() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    a.send(set("/x", b"v1"));
    for _ in 0..50 {
        a.send(get("/x", false));
    }
    a.send(set("/x", b"v2"));
    assert_eq!(a.dispatch.counters.received.load(Ordering::SeqCst), 52);
    assert_eq!(rig.queued(), 2);
    assert!(a.answers().is_empty());
    rig.apply(1);
    let answers = a.answers();
    assert_eq!(answers.len(), 51, "the first write and the reads behind it");
    assert!(answers[1..].iter().all(|(_, b)| data_of(b) == b"v1"));
    rig.apply(1);
    assert_eq!(a.answers().len(), 1);
}

#[test]
fn a_session_with_nothing_pending_is_answered_at_once() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    let mut b = rig.client(2);
    a.send(set("/x", b"v1"));
    b.send(get("/x", false));
    let answers = b.answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        data_of(&answers[0].1),
        b"v0",
        "a's write is not applied yet"
    );
    assert!(a.answers().is_empty());
}

#[test]
fn a_watch_set_behind_a_write_fires_after_its_answer() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    let mut b = rig.client(2);
    a.send(set("/x", b"v1"));
    a.send(get("/x", true));
    b.send(set("/x", b"v2"));
    // a's write alone: its read is answered, and its own write fires nothing for it.
    rig.apply(1);
    let got = a.received();
    assert_eq!(got.len(), 2, "{got:?}");
    // Then b's write fires the watch a's read set.
    rig.apply(1);
    let got = a.received();
    match &got[..] {
        [Received::Event(e)] => {
            assert_eq!(e.event_type().ok(), Some(EventType::NodeDataChanged));
            assert_eq!(e.path, "/x");
        }
        other => panic!("expected one NodeDataChanged, got {other:?}"),
    }
    assert_eq!(b.answers().len(), 1);

    // Both applied back to back: the answer still comes before the event.
    a.send(set("/x", b"v3"));
    a.send(get("/x", true));
    b.send(set("/x", b"v4"));
    rig.apply_all();
    let got = a.received();
    match &got[..] {
        [Received::Answer(..), Received::Answer(_, body), Received::Event(e)] => {
            assert_eq!(data_of(body), b"v3");
            assert_eq!(e.event_type().ok(), Some(EventType::NodeDataChanged));
        }
        other => panic!("expected set, get, then the event; got {other:?}"),
    }
}

/// Found by the `server_requests` fuzz target: a request refused when read (here a
/// malformed body) behind a pipelined write of the same connection carried the zxid
/// of the moment it was read, below the write's, so the connection's reply zxids
/// went back (ZooKeeper's client then lowers its lastZxidSeen).
#[test]
fn a_refusal_behind_a_pipelined_write_carries_the_zxid_of_its_answer() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    a.send(set("/x", b"v1"));
    let mut malformed = BytesMut::new();
    RequestHeader::new(7, OpCode::GetData).write(&mut malformed);
    malformed.extend_from_slice(&[0, 0, 0, 9, b'/']);
    a.send_frame(malformed.freeze());
    rig.apply_all();
    let answers = a.answers();
    assert_eq!(answers.len(), 2);
    assert_eq!(
        answers[1].0,
        ReplyHeader::new(7, answers[0].0.zxid, ErrorCode::MarshallingError)
    );
}

#[tokio::test]
async fn a_write_behind_a_sync_waits_for_it_and_the_read_behind_sees_the_write() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    a.send(Request::Sync(SyncRequest { path: "/x".into() }));
    a.send(set("/x", b"v1"));
    a.send(get("/x", false));
    assert_eq!(rig.queued(), 0, "the write waits for the sync ahead of it");
    // The sync's task completes its gate, releasing the write.
    for _ in 0..100 {
        if rig.queued() > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(rig.queued(), 1, "the sync completed and the write went out");
    let answers = a.answers();
    assert_eq!(answers.len(), 1);
    assert!(matches!(answers[0].1, Some(Response::Sync(_))));
    rig.apply_all();
    let answers = a.answers();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].0.xid, 2);
    assert_eq!(data_of(&answers[1].1), b"v1");
}

#[test]
fn a_write_dropped_unapplied_closes_its_connection_and_nothing_behind_it_is_answered() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    a.send(set("/x", b"v1"));
    a.send(get("/x", false));
    assert!(!a.dispatch.close.is_cancelled());
    // The leader changed: every owed answer is failed.
    rig.core.abandon_all("test");
    assert!(a.dispatch.close.is_cancelled());
    assert!(
        a.answers().is_empty(),
        "a read behind a lost write is never answered"
    );
}

#[test]
fn the_end_waits_behind_the_writes_still_owed() {
    let mut rig = Rig::new();
    rig.create("/x", b"v0");
    let mut a = rig.client(1);
    a.send(set("/x", b"v1"));
    a.dispatch.end();
    assert!(a.outbox.try_recv().is_err());
    rig.apply_all();
    assert!(matches!(a.outbox.try_recv(), Ok(Outgoing::Answer(_))));
    assert!(matches!(a.outbox.try_recv(), Ok(Outgoing::End)));
}

// ---------------------------------------------------------------------------------
// Property: many sessions pipelining reads and writes, the log applied in random
// steps; every answer checked against a model replaying the log.

const PATHS: [&str; 3] = ["/p0", "/p1", "/p2"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8),
    Delete(usize),
    Set(usize, u8),
    Get(usize, bool),
    Exists(usize, bool),
}

#[derive(Debug, Clone)]
enum Action {
    Send(usize, Op),
    Apply(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        (p.clone(), any::<u8>()).prop_map(|(p, v)| Op::Create(p, v)),
        p.clone().prop_map(Op::Delete),
        (p.clone(), any::<u8>()).prop_map(|(p, v)| Op::Set(p, v)),
        (p.clone(), any::<bool>()).prop_map(|(p, w)| Op::Get(p, w)),
        (p, any::<bool>()).prop_map(|(p, w)| Op::Exists(p, w)),
    ]
}

fn action(sessions: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..sessions, op()).prop_map(|(s, o)| Action::Send(s, o)),
        1 => (1..4usize).prop_map(Action::Apply),
    ]
}

fn request(op: &Op) -> Request {
    match op {
        Op::Create(p, v) => Request::Create(create_request(PATHS[*p], &[*v])),
        Op::Delete(p) => Request::Delete(DeleteRequest {
            path: PATHS[*p].into(),
            version: -1,
        }),
        Op::Set(p, v) => set(PATHS[*p], &[*v]),
        Op::Get(p, w) => get(PATHS[*p], *w),
        Op::Exists(p, w) => Request::Exists(ExistsRequest {
            path: PATHS[*p].into(),
            watch: *w,
        }),
    }
}

/// The tree (data of each path) after the log's transactions up to `zxid`.
fn model_at(log: &[(i64, Txn)], zxid: i64) -> BTreeMap<String, Vec<u8>> {
    let mut tree = BTreeMap::new();
    for (_, txn) in log.iter().take_while(|(z, _)| *z <= zxid) {
        match &txn.op {
            TxnOp::Create { request, .. } => {
                tree.entry(request.path.clone())
                    .or_insert_with(|| request.data.as_deref().unwrap_or_default().to_vec());
            }
            TxnOp::Delete(r) => {
                tree.remove(&r.path);
            }
            TxnOp::SetData(r) => {
                if let Some(data) = tree.get_mut(&r.path) {
                    *data = r.data.as_deref().unwrap_or_default().to_vec();
                }
            }
            _ => {}
        }
    }
    tree
}

/// One session's answered requests: xid, op, reply header and body.
type History = Vec<(i32, Op, ReplyHeader, Option<Response>)>;

fn run_interleaving(sessions: usize, actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut rig = Rig::new();
    let mut clients: Vec<Client> = (0..sessions).map(|i| rig.client(i as u8 + 1)).collect();
    // Per session: what was sent (xid → op), in order.
    let mut sent: Vec<VecDeque<(i32, Op)>> = vec![VecDeque::new(); sessions];
    let mut history: Vec<History> = vec![Vec::new(); sessions];
    // Per session: paths with a watch set by an answered read and not yet fired.
    let mut watching: Vec<HashSet<String>> = vec![HashSet::new(); sessions];
    let mut collect = |clients: &mut Vec<Client>,
                       sent: &mut Vec<VecDeque<(i32, Op)>>|
     -> Result<(), TestCaseError> {
        for (s, client) in clients.iter_mut().enumerate() {
            for got in client.received() {
                match got {
                    Received::Answer(header, body) => {
                        let Some((xid, op)) = sent[s].pop_front() else {
                            return Err(TestCaseError::fail("an answer nobody asked for"));
                        };
                        prop_assert_eq!(header.xid, xid, "answers out of order");
                        let no_node = ErrorCode::NoNode.code();
                        let watched = match &op {
                            Op::Get(p, true) if header.err == 0 => Some(*p),
                            Op::Exists(p, true) if header.err == 0 || header.err == no_node => {
                                Some(*p)
                            }
                            _ => None,
                        };
                        if let Some(p) = watched {
                            watching[s].insert(PATHS[p].to_string());
                        }
                        history[s].push((xid, op, header, body));
                    }
                    Received::Event(event) => {
                        prop_assert!(
                            watching[s].remove(&event.path),
                            "an event for {} before the answer that set its watch",
                            event.path
                        );
                    }
                }
            }
        }
        Ok(())
    };
    for action in actions {
        match action {
            Action::Send(s, op) => {
                let xid = clients[s].send(request(&op));
                sent[s].push_back((xid, op));
            }
            Action::Apply(n) => {
                rig.apply(n);
            }
        }
        collect(&mut clients, &mut sent)?;
    }
    rig.apply_all();
    collect(&mut clients, &mut sent)?;
    for unanswered in &sent {
        prop_assert!(unanswered.is_empty(), "requests left unanswered");
    }
    // Every answer against the model, and each session's order.
    let write_zxids: HashSet<i64> = rig.log.iter().map(|(z, _)| *z).collect();
    for session in &history {
        let mut last_write = 0i64;
        for (i, (_, op, header, body)) in session.iter().enumerate() {
            prop_assert!(header.zxid >= last_write, "a reply zxid went back");
            let is_write = matches!(op, Op::Create(..) | Op::Delete(_) | Op::Set(..));
            if is_write {
                prop_assert!(write_zxids.contains(&header.zxid));
                last_write = header.zxid;
                continue;
            }
            // A read sees no write the session sent after it.
            if let Some((_, _, later, _)) = session[i + 1..]
                .iter()
                .find(|(_, o, _, _)| matches!(o, Op::Create(..) | Op::Delete(_) | Op::Set(..)))
            {
                prop_assert!(header.zxid < later.zxid, "a read saw a later write");
            }
            let tree = model_at(&rig.log, header.zxid);
            match op {
                Op::Get(p, _) => match tree.get(PATHS[*p]) {
                    Some(data) => {
                        prop_assert_eq!(header.err, 0);
                        prop_assert_eq!(&data_of(body), data);
                    }
                    None => prop_assert_eq!(header.err, ErrorCode::NoNode.code()),
                },
                Op::Exists(p, _) => {
                    let exists = tree.contains_key(PATHS[*p]);
                    prop_assert_eq!(header.err == 0, exists);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sessions_interleaving_reads_and_writes_keep_fifo_and_read_their_writes(
        sessions in 1..4usize,
        actions in proptest::collection::vec(action(3), 1..80),
    ) {
        let actions = actions
            .into_iter()
            .map(|a| match a {
                Action::Send(s, op) => Action::Send(s % sessions, op),
                other => other,
            })
            .collect();
        run_interleaving(sessions, actions)?;
    }
}
