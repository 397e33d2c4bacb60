//! A network-free server for coverage-guided fuzzing (feature `fuzzing`): the body of
//! the `server_requests` target under `fuzz/`, and of its stable corpus replay
//! (`tests/fuzz_corpus.rs`).
//!
//! [`server_requests`] reads a structured input (with `arbitrary`): a few connections,
//! and a sequence of steps — handshakes (new sessions, resumed ones with the right or a
//! wrong password, garbage), requests (mostly well formed, with paths, data, versions,
//! ACLs, flags and credentials drawn to collide with each other), raw bytes into a
//! connection's stream, pipelined batches, disconnects, session expiry, clock ticks,
//! container/TTL reaping, snapshot round trips and losing the quorum.
//!
//! Everything runs through the server's own code: the connection's `handshake`,
//! `receive` (frame → request header → routing, auth, writes submitted to the log) and
//! `answer` (reads under the database lock, replies and notifications encoded),
//! [`ServerCore::apply_committed`] for every committed write, and the expiry and reaper
//! proposals. Only consensus is replaced: a queue applies each submitted transaction in
//! order with the next zxid and a fuzzed clock (as a one-member Raft group would), on a
//! current-thread tokio runtime made for the input.
//!
//! After every step it checks what must always hold: the tree's own consistency
//! ([`ZkDatabase::check_consistency`]: parents and children agree, indices and sizes
//! match, no multi left open, every ephemeral owned by a live session), stored cversions
//! and the zxid never go back, every reply decodes as the reply to its request (and
//! re-encodes to the same bytes), reply zxids never go back on a connection, and a
//! request that failed, a read, or a multi that was rolled back leaves the tree exactly
//! as it was. A snapshot round trip gives the same database.
//!
//! With `ZK_FUZZ_DEBUG` set in the environment, the decoded input and every reply
//! header are printed (to read a crash found by the fuzzer).
//!
//! The submodules hold the bodies of the other server-side targets:
//! [`four_letter::four_letter_words`] (the first bytes of a client connection: a
//! four-letter word or a handshake), [`config::zoo_cfg`] (zoo.cfg, system properties
//! and JAAS text), [`peer::peer_frames`] (the peer port's frames and messages) and
//! [`storage::storage_files`] (the log, snapshot and Apache data file readers fed
//! damaged files).

mod chunked;
pub mod config;
pub mod four_letter;
pub mod peer;
pub mod storage;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zk_proto::frame::{write_frame, FrameDecoder};
use zk_proto::{
    Acl, AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, ConnectRequest,
    ConnectResponse, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, ExistsRequest,
    GetAclRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest,
    GetDataRequest, GetEphemeralsRequest, GetSaslRequest, Id, MultiOp, MultiRequest, OpCode,
    OpResult, Reader, ReconfigRequest, Record, RemoveWatchesRequest, ReplyHeader, Request,
    RequestHeader, Response, SetAclRequest, SetDataRequest, SetWatches, SetWatches2, SyncRequest,
    WatcherEvent,
};

use crate::acl;
use crate::config::ServerConfig;
use crate::core::{Replicator, ServerCore, SubmitError};
use crate::database::ZkDatabase;
use crate::net::connection::Output;
use crate::net::dispatch::Dispatcher;
use crate::net::handshake::handshake;
use crate::role::{QuorumView, Role};
use crate::session_order::{Outgoing, Ticket};
use crate::txn::{zxid_of, Txn, TxnOp};

/// Runs one fuzz input against a fresh in-process server; panics on any broken
/// invariant (a finding). Inputs that do not parse are ignored.
pub fn server_requests(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    if std::env::var_os("ZK_FUZZ_DEBUG").is_some() {
        eprintln!("{input:#?}");
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    runtime.block_on(run(input));
}

/// Connection slots an input can use.
const SLOTS: usize = 4;
/// Steps of one input at most (longer inputs are cut: executions stay fast).
const MAX_STEPS: usize = 48;
/// Where the fuzzed clock starts (ms since the epoch).
const EPOCH_MS: i64 = 1_700_000_000_000;

/// Node names paths are made of: ordinary ones that collide often, the system nodes,
/// the quota nodes, and names ZooKeeper refuses.
const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "zookeeper",
    "quota",
    "config",
    "zookeeper_limits",
    "zookeeper_stats",
    "",
    ".",
    "..",
    "x\u{0}",
    "é",
    "\u{1f600}",
];

/// Credentials for digest auth and digest ACLs; `super:test` is the configured super
/// user.
const CREDENTIALS: &[&str] = &["u1:p1", "u2:p2", "super:test", "u1:wrong", ":", "", "a:b:c"];

/// `ip` ACL ids (the slots connect from 10.0.0.1–4).
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.0/24",
    "10.0.0.2/32",
    "127.0.0.1",
    "::1",
    "10.0.0.0/33",
    "10.0.0.0/0",
    "nonsense",
];

#[derive(Debug, Arbitrary)]
struct Input {
    enforce_quota: bool,
    small_frames: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Connect(ConnectStep),
    Request {
        slot: u8,
        xid: i32,
        request: FuzzRequest,
    },
    /// Several requests sent back to back, answered after all were received.
    Pipeline {
        slot: u8,
        requests: Vec<FuzzRequest>,
    },
    /// A well-formed header with an arbitrary opcode and body.
    Frame {
        slot: u8,
        xid: i32,
        opcode: FuzzOpcode,
        body: Vec<u8>,
    },
    /// Raw bytes into the connection's stream (length prefixes included, or not).
    Bytes {
        slot: u8,
        bytes: Vec<u8>,
    },
    Disconnect {
        slot: u8,
    },
    /// The leader's expiry of a known session (closeSession with xid 0).
    Expire {
        session: u8,
    },
    Tick {
        ms: u32,
    },
    /// The container/TTL reaper's proposals at the current clock.
    Reap,
    /// Snapshot the database, restore it and carry on with the restored copy.
    Snapshot,
    /// Lose (true) or regain the quorum: read-only connections, NotReadOnly.
    Partition(bool),
}

#[derive(Debug, Arbitrary)]
struct ConnectStep {
    slot: u8,
    /// Resume a known session (by index) instead of starting one.
    resume: Option<u8>,
    right_password: bool,
    timeout: i32,
    last_zxid_ahead: bool,
    read_only: Option<bool>,
    /// Send these bytes as the ConnectRequest instead.
    garbage: Option<Vec<u8>>,
}

#[derive(Debug, Arbitrary)]
enum FuzzOpcode {
    Known(u8),
    Raw(i32),
}

impl FuzzOpcode {
    fn code(&self) -> i32 {
        match self {
            FuzzOpcode::Known(i) => OpCode::ALL[usize::from(*i) % OpCode::ALL.len()].code(),
            FuzzOpcode::Raw(code) => *code,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum FuzzPath {
    /// `/` followed by names from [`NAMES`].
    Names(Vec<u8>),
    /// An existing child of the parent named so (sequential names included).
    Child {
        parent: Vec<u8>,
        index: u8,
    },
    /// The limits or stats node of a quota on the path named so.
    Quota {
        root: Vec<u8>,
        stats: bool,
    },
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum FuzzData {
    Null,
    Empty,
    Bytes(Vec<u8>),
    /// Quota limits text, as `setquota` writes it.
    Limits {
        count: i8,
        bytes: i16,
        count_hard: i8,
        byte_hard: i16,
    },
}

#[derive(Debug, Arbitrary)]
enum FuzzId {
    Anyone,
    AuthIds,
    Digest(u8),
    Ip(u8),
    Super,
    Raw(String, String),
}

#[derive(Debug, Arbitrary)]
struct FuzzAcl {
    perms: u8,
    id: FuzzId,
}

#[derive(Debug, Arbitrary)]
enum CreateKind {
    Create,
    Create2,
    Container,
}

#[derive(Debug, Arbitrary)]
enum FuzzAuth {
    Digest(u8),
    Ip,
    Raw(String, Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct FuzzCreate {
    path: FuzzPath,
    data: FuzzData,
    acl: Vec<FuzzAcl>,
    flags: i8,
}

#[derive(Debug, Arbitrary)]
enum FuzzMultiOp {
    Create(CreateKind, FuzzCreate),
    CreateTtl(FuzzCreate, i64),
    Delete(FuzzPath, i8),
    SetData(FuzzPath, FuzzData, i8),
    Check(FuzzPath, i8),
    GetChildren(FuzzPath),
    GetData(FuzzPath),
}

#[derive(Debug, Arbitrary)]
enum FuzzRequest {
    Create(CreateKind, FuzzCreate),
    CreateTtl(FuzzCreate, i64),
    Delete(FuzzPath, i8),
    Exists(FuzzPath, bool),
    GetData(FuzzPath, bool),
    SetData(FuzzPath, FuzzData, i8),
    GetAcl(FuzzPath),
    SetAcl(FuzzPath, Vec<FuzzAcl>, i8),
    GetChildren(FuzzPath, bool),
    GetChildren2(FuzzPath, bool),
    Sync(FuzzPath),
    Ping,
    Check(FuzzPath, i8),
    Multi(Vec<FuzzMultiOp>),
    MultiRead(Vec<FuzzMultiOp>),
    Reconfig,
    CheckWatches(FuzzPath, i8),
    RemoveWatches(FuzzPath, i8),
    Auth(FuzzAuth),
    SetWatches {
        zxid: i8,
        data: Vec<FuzzPath>,
        exist: Vec<FuzzPath>,
        child: Vec<FuzzPath>,
    },
    SetWatches2 {
        zxid: i8,
        data: Vec<FuzzPath>,
        exist: Vec<FuzzPath>,
        child: Vec<FuzzPath>,
        persistent: Vec<FuzzPath>,
        recursive: Vec<FuzzPath>,
    },
    Sasl(Vec<u8>),
    GetEphemerals(FuzzPath),
    GetAllChildrenNumber(FuzzPath),
    AddWatch(FuzzPath, i8),
    WhoAmI,
    CloseSession,
}

/// Stands in for consensus: submitted transactions are queued and applied in order by
/// [`apply_loop`].
struct QueueReplicator {
    queue: mpsc::UnboundedSender<Txn>,
    submitted: Arc<AtomicU64>,
    last_zxid: Arc<AtomicI64>,
}

impl Replicator for QueueReplicator {
    fn submit(&self, txn: Txn) -> Result<(), SubmitError> {
        self.queue
            .send(txn)
            .map_err(|_| SubmitError::Unavailable("the apply loop stopped".into()))?;
        self.submitted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn read_index(&self) -> BoxFuture<'static, Result<i64, SubmitError>> {
        let zxid = self.last_zxid.load(Ordering::SeqCst);
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

/// Applies queued transactions in order: zxid from the entry's index, time from the
/// fuzzed clock (the proposer's clock in a real ensemble).
async fn apply_loop(
    core: Arc<ServerCore>,
    mut queue: mpsc::UnboundedReceiver<Txn>,
    clock: Arc<AtomicI64>,
    applied: Arc<AtomicU64>,
    last_zxid: Arc<AtomicI64>,
) {
    let mut index = 0u64;
    while let Some(mut txn) = queue.recv().await {
        index += 1;
        txn.time = clock.load(Ordering::SeqCst);
        let zxid = zxid_of(index, 0);
        core.apply_committed(zxid, &txn);
        last_zxid.store(zxid, Ordering::SeqCst);
        applied.fetch_add(1, Ordering::SeqCst);
    }
}

/// One client connection past its handshake, with the reader's and writer's state.
struct Conn {
    dispatch: Dispatcher,
    outbox: mpsc::UnboundedReceiver<Outgoing>,
    out: Output,
    inbound: BytesMut,
    decoder: FrameDecoder,
    last_reply_zxid: i64,
}

struct Harness {
    core: Arc<ServerCore>,
    shutdown: CancellationToken,
    clock: Arc<AtomicI64>,
    submitted: Arc<AtomicU64>,
    applied: Arc<AtomicU64>,
    slots: Vec<Option<Conn>>,
    /// Sessions handed out (id, password), for resumption and expiry.
    sessions: Vec<(i64, Bytes)>,
    /// Stored cversion by (path, czxid) after the last step.
    cversions: HashMap<String, (i64, i32)>,
    last_zxid: i64,
}

async fn run(input: Input) {
    let config = ServerConfig {
        extended_types_enabled: true,
        super_digest: Some(acl::digest("super:test")),
        enforce_quota: input.enforce_quota,
        read_only_mode: true,
        jute_max_buffer: if input.small_frames {
            256
        } else {
            zk_proto::frame::DEFAULT_MAX_BUFFER
        },
        ..ServerConfig::default()
    };
    let core = ServerCore::new(config, 0, ZkDatabase::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let submitted = Arc::new(AtomicU64::new(0));
    let applied = Arc::new(AtomicU64::new(0));
    let last_zxid = Arc::new(AtomicI64::new(0));
    let clock = Arc::new(AtomicI64::new(EPOCH_MS));
    core.set_replicator(Arc::new(QueueReplicator {
        queue: tx,
        submitted: submitted.clone(),
        last_zxid: last_zxid.clone(),
    }));
    let applier = tokio::spawn(apply_loop(
        core.clone(),
        rx,
        clock.clone(),
        applied.clone(),
        last_zxid,
    ));
    let mut h = Harness {
        core,
        shutdown: CancellationToken::new(),
        clock,
        submitted,
        applied,
        slots: (0..SLOTS).map(|_| None).collect(),
        sessions: Vec::new(),
        cversions: HashMap::new(),
        last_zxid: 0,
    };
    // Most inputs are about requests: slot 0 starts connected.
    h.connect(&ConnectStep {
        slot: 0,
        resume: None,
        right_password: true,
        timeout: 10_000,
        last_zxid_ahead: false,
        read_only: Some(false),
        garbage: None,
    })
    .await;
    h.check_invariants();
    for step in input.steps.iter().take(MAX_STEPS) {
        h.step(step).await;
        h.settle().await;
        h.check_invariants();
    }
    for slot in 0..SLOTS {
        h.disconnect(slot);
    }
    h.shutdown.cancel();
    applier.abort();
}

impl Harness {
    /// Lets the apply loop (and any task a request spawned) catch up with every
    /// submitted write.
    async fn settle(&self) {
        for _ in 0..10_000 {
            if self.applied.load(Ordering::SeqCst) == self.submitted.load(Ordering::SeqCst) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("submitted writes are never applied");
    }

    async fn step(&mut self, step: &Step) {
        match step {
            Step::Connect(c) => self.connect(c).await,
            Step::Request { slot, xid, request } => {
                let mut bytes = BytesMut::new();
                let request = self.request(request);
                encode(&mut bytes, *xid, &request);
                self.send(*slot, &bytes).await;
            }
            Step::Pipeline { slot, requests } => {
                let mut bytes = BytesMut::new();
                for (xid, request) in requests.iter().take(8).enumerate() {
                    let request = self.request(request);
                    encode(&mut bytes, xid as i32 + 1, &request);
                }
                self.send(*slot, &bytes).await;
            }
            Step::Frame {
                slot,
                xid,
                opcode,
                body,
            } => {
                let mut bytes = BytesMut::new();
                write_frame(&mut bytes, |w| {
                    RequestHeader {
                        xid: *xid,
                        opcode: opcode.code(),
                    }
                    .write(w);
                    w.extend_from_slice(body);
                });
                self.send(*slot, &bytes).await;
            }
            Step::Bytes { slot, bytes } => self.send(*slot, bytes).await,
            Step::Disconnect { slot } => self.disconnect(usize::from(*slot) % SLOTS),
            Step::Expire { session } => {
                if let Some((id, _)) = pick(&self.sessions, *session) {
                    // As the leader's expiry loop proposes it.
                    let _ = self.core.submit(*id, 0, Vec::new(), TxnOp::CloseSession);
                }
            }
            Step::Tick { ms } => {
                self.clock.fetch_add(i64::from(*ms), Ordering::SeqCst);
            }
            Step::Reap => {
                let now = self.clock.load(Ordering::SeqCst);
                for op in crate::server::reap_candidates(&self.core, now) {
                    let _ = self.core.submit(0, 0, Vec::new(), op);
                }
            }
            Step::Snapshot => {
                let db = self.core.db().clone();
                let bytes = db.to_snapshot().expect("snapshot encodes");
                let restored = ZkDatabase::from_snapshot(&bytes).expect("snapshot decodes");
                assert_eq!(restored, db, "a snapshot round trip changed the database");
                assert_eq!(restored.tree().digest(), db.tree().digest());
                assert_eq!(
                    restored.tree().approximate_data_size(),
                    db.tree().approximate_data_size()
                );
                self.core.install_database(restored);
            }
            Step::Partition(lost) => {
                let mut view = QuorumView::standalone();
                if *lost {
                    view.role = Role::Looking;
                }
                self.core.set_quorum(view);
                // As the role watcher does: losing the quorum drops every client,
                // regaining it drops the read-only ones.
                if *lost {
                    self.core.close_all_connections();
                } else {
                    self.core.close_read_only_connections();
                }
            }
        }
    }

    async fn connect(&mut self, c: &ConnectStep) {
        let slot = usize::from(c.slot) % SLOTS;
        self.disconnect(slot);
        let body = match &c.garbage {
            Some(bytes) => Bytes::copy_from_slice(bytes),
            None => {
                let last = self.core.db().last_zxid();
                let resumed = c.resume.and_then(|i| pick(&self.sessions, i)).cloned();
                let (session_id, passwd) = match resumed {
                    Some((id, passwd)) if c.right_password => (id, passwd),
                    Some((id, _)) => (id, Bytes::from_static(&[7; 16])),
                    None => (0, Bytes::from_static(&[0; 16])),
                };
                ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: if c.last_zxid_ahead { last + 1 } else { last },
                    timeout: c.timeout,
                    session_id,
                    passwd,
                    read_only: c.read_only,
                }
                .to_bytes()
            }
        };
        // The length check `serve` makes before reading the body.
        if body.is_empty() || body.len() > self.core.config.jute_max_buffer {
            return;
        }
        let octet = u8::try_from(slot + 1).unwrap_or(1);
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet)), 40_000);
        let Some(accepted) = handshake(&self.core, remote, Vec::new(), &self.shutdown, body).await
        else {
            return;
        };
        let response = accepted.response.to_bytes();
        let decoded = ConnectResponse::from_bytes(response.clone()).expect("ConnectResponse");
        assert_eq!(decoded.to_bytes(), response);
        assert_eq!(decoded.session_id, accepted.session_id);
        if accepted.session_id == 0 {
            assert_eq!(decoded.timeout, 0, "a refused session has timeout 0");
            self.core.unregister_connection(accepted.conn);
            return;
        }
        let min = self.core.config.min_session_timeout_ms as i32;
        let max = self.core.config.max_session_timeout_ms as i32;
        assert!((min..=max).contains(&decoded.timeout), "negotiated timeout");
        if !accepted.read_only
            && !self
                .sessions
                .iter()
                .any(|(id, _)| *id == accepted.session_id)
        {
            self.sessions
                .push((accepted.session_id, decoded.passwd.clone()));
        }
        self.slots[slot] = Some(Conn {
            out: Output::new(self.core.clone(), accepted.counters.clone()),
            dispatch: Dispatcher::new(
                self.core.clone(),
                accepted.conn,
                accepted.session_id,
                accepted.read_only,
                accepted.auth,
                accepted.close,
                accepted.counters,
                accepted.outbox_tx,
            ),
            outbox: accepted.outbox,
            inbound: BytesMut::new(),
            decoder: FrameDecoder::new(self.core.config.jute_max_buffer),
            last_reply_zxid: 0,
        });
    }

    /// Closes a connection as `serve` does when its reader and writer stop.
    fn disconnect(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            conn.dispatch.close.cancel();
            self.core.unregister_connection(conn.dispatch.conn);
        }
    }

    /// Bytes arrive on a connection: frames are read as the reader reads them, then
    /// answered in order as the writer answers them.
    async fn send(&mut self, slot: u8, bytes: &[u8]) {
        let slot = usize::from(slot) % SLOTS;
        let Some(mut conn) = self.slots[slot].take() else {
            return;
        };
        let open = self.serve(&mut conn, bytes).await;
        if open && !conn.dispatch.close.is_cancelled() {
            self.slots[slot] = Some(conn);
        } else {
            conn.dispatch.close.cancel();
            self.core.unregister_connection(conn.dispatch.conn);
        }
    }

    async fn serve(&mut self, c: &mut Conn, bytes: &[u8]) -> bool {
        if c.dispatch.close.is_cancelled() {
            return false;
        }
        c.inbound.extend_from_slice(bytes);
        let digest_before = self.core.db().tree().digest();
        // The requests read and not yet answered, in order.
        let mut unanswered: VecDeque<RequestHeader> = VecDeque::new();
        let mut frames = 0;
        let mut open = true;
        loop {
            let frame = match c.decoder.decode(&mut c.inbound) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => {
                    open = false;
                    break;
                }
            };
            frames += 1;
            // As the reader does: each request is dispatched as it is read, without
            // waiting for any answer.
            let header = RequestHeader::read(&mut Reader::new(frame.clone())).ok();
            let Some((xid, op, step)) = c.dispatch.receive(frame) else {
                open = false;
                break;
            };
            let Some(header) = header else {
                panic!("a frame without a header was accepted");
            };
            let stop = step.closes();
            unanswered.push_back(header);
            c.dispatch
                .counters
                .outstanding
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            c.dispatch.handle(xid, op, step, Ticket::new());
            if stop {
                open = false;
                break;
            }
        }
        let Some(changes_allowed) = self.answers(c, unanswered).await else {
            return false;
        };
        if frames == 1 && !changes_allowed {
            assert_eq!(
                self.core.db().tree().digest(),
                digest_before,
                "a read, a failed write or a rolled-back multi changed the tree"
            );
        }
        open
    }

    /// Takes what the connection's writer would write until every request in
    /// `unanswered` is answered, checking each answer against its request and each
    /// notification. `None` when the connection must close; else whether a request
    /// may have changed the tree.
    async fn answers(&self, c: &mut Conn, mut unanswered: VecDeque<RequestHeader>) -> Option<bool> {
        let mut changed = false;
        for _ in 0..10_000 {
            // Writes are applied (their parked reads evaluated), sync tasks run.
            self.settle().await;
            while let Ok(outgoing) = c.outbox.try_recv() {
                match outgoing {
                    Outgoing::Event(event) => {
                        c.out.write(Outgoing::Event(event));
                        check_notifications(c.out.buf.split().freeze());
                    }
                    Outgoing::Answer(answer) => {
                        let Some(header) = unanswered.pop_front() else {
                            panic!("an answer nobody asked for: {:?}", answer.header);
                        };
                        let open = c.out.write(Outgoing::Answer(answer));
                        let out = c.out.buf.split().freeze();
                        changed |= check_replies(c, &header, out);
                        if !open {
                            return None;
                        }
                    }
                    Outgoing::End => return None,
                }
            }
            if c.dispatch.close.is_cancelled() {
                return None;
            }
            if unanswered.is_empty() {
                return Some(changed);
            }
            tokio::task::yield_now().await;
        }
        panic!("requests never answered: {unanswered:?}");
    }

    fn check_invariants(&mut self) {
        let db = self.core.db();
        if let Err(e) = db.check_consistency() {
            panic!("inconsistent database: {e}");
        }
        assert!(db.last_zxid() >= self.last_zxid, "the zxid went back");
        self.last_zxid = db.last_zxid();
        let mut cversions = HashMap::new();
        for (path, node) in db.tree().iter() {
            let stat = node.stored_stat();
            let now = (stat.czxid, stat.cversion);
            if let Some((czxid, cversion)) = self.cversions.get(&path) {
                if *czxid == now.0 {
                    assert!(now.1 >= *cversion, "cversion of {path} went back");
                }
            }
            cversions.insert(path, now);
        }
        self.cversions = cversions;
    }

    /// Turns a structured request into the real one, resolving paths against the tree.
    fn request(&self, r: &FuzzRequest) -> Request {
        let p = |path: &FuzzPath| self.path(path);
        match r {
            FuzzRequest::Create(kind, c) => {
                let request = self.create(c);
                match kind {
                    CreateKind::Create => Request::Create(request),
                    CreateKind::Create2 => Request::Create2(request),
                    CreateKind::Container => Request::CreateContainer(request),
                }
            }
            FuzzRequest::CreateTtl(c, ttl) => Request::CreateTtl(self.create_ttl(c, *ttl)),
            FuzzRequest::Delete(path, v) => Request::Delete(DeleteRequest {
                path: p(path),
                version: i32::from(*v),
            }),
            FuzzRequest::Exists(path, watch) => Request::Exists(ExistsRequest {
                path: p(path),
                watch: *watch,
            }),
            FuzzRequest::GetData(path, watch) => Request::GetData(GetDataRequest {
                path: p(path),
                watch: *watch,
            }),
            FuzzRequest::SetData(path, data, v) => Request::SetData(SetDataRequest {
                path: p(path),
                data: data.bytes(),
                version: i32::from(*v),
            }),
            FuzzRequest::GetAcl(path) => Request::GetAcl(GetAclRequest { path: p(path) }),
            FuzzRequest::SetAcl(path, acl, v) => Request::SetAcl(SetAclRequest {
                path: p(path),
                acl: acls(acl),
                version: i32::from(*v),
            }),
            FuzzRequest::GetChildren(path, watch) => Request::GetChildren(GetChildrenRequest {
                path: p(path),
                watch: *watch,
            }),
            FuzzRequest::GetChildren2(path, watch) => Request::GetChildren2(GetChildren2Request {
                path: p(path),
                watch: *watch,
            }),
            FuzzRequest::Sync(path) => Request::Sync(SyncRequest { path: p(path) }),
            FuzzRequest::Ping => Request::Ping,
            FuzzRequest::Check(path, v) => Request::Check(CheckVersionRequest {
                path: p(path),
                version: i32::from(*v),
            }),
            FuzzRequest::Multi(ops) => Request::Multi(self.multi(ops)),
            FuzzRequest::MultiRead(ops) => Request::MultiRead(self.multi(ops)),
            FuzzRequest::Reconfig => Request::Reconfig(ReconfigRequest {
                joining_servers: Some("server.2=127.0.0.1:2888:3888;2182".into()),
                leaving_servers: None,
                new_members: None,
                cur_config_id: -1,
            }),
            FuzzRequest::CheckWatches(path, kind) => Request::CheckWatches(CheckWatchesRequest {
                path: p(path),
                watcher_type: i32::from(*kind),
            }),
            FuzzRequest::RemoveWatches(path, kind) => {
                Request::RemoveWatches(RemoveWatchesRequest {
                    path: p(path),
                    watcher_type: i32::from(*kind),
                })
            }
            FuzzRequest::Auth(auth) => {
                let (scheme, auth) = match auth {
                    FuzzAuth::Digest(i) => (
                        "digest".to_string(),
                        Bytes::from_static(pick_str(CREDENTIALS, *i).as_bytes()),
                    ),
                    FuzzAuth::Ip => ("ip".to_string(), Bytes::from_static(b"10.0.0.1")),
                    FuzzAuth::Raw(scheme, auth) => (scheme.clone(), Bytes::copy_from_slice(auth)),
                };
                Request::Auth(AuthPacket {
                    auth_type: 0,
                    scheme,
                    auth,
                })
            }
            FuzzRequest::SetWatches {
                zxid,
                data,
                exist,
                child,
            } => Request::SetWatches(SetWatches {
                relative_zxid: self.relative_zxid(*zxid),
                data_watches: data.iter().map(p).collect(),
                exist_watches: exist.iter().map(p).collect(),
                child_watches: child.iter().map(p).collect(),
            }),
            FuzzRequest::SetWatches2 {
                zxid,
                data,
                exist,
                child,
                persistent,
                recursive,
            } => Request::SetWatches2(SetWatches2 {
                relative_zxid: self.relative_zxid(*zxid),
                data_watches: data.iter().map(p).collect(),
                exist_watches: exist.iter().map(p).collect(),
                child_watches: child.iter().map(p).collect(),
                persistent_watches: persistent.iter().map(p).collect(),
                persistent_recursive_watches: recursive.iter().map(p).collect(),
            }),
            FuzzRequest::Sasl(token) => Request::Sasl(GetSaslRequest {
                token: Bytes::copy_from_slice(token),
            }),
            FuzzRequest::GetEphemerals(path) => Request::GetEphemerals(GetEphemeralsRequest {
                prefix_path: p(path),
            }),
            FuzzRequest::GetAllChildrenNumber(path) => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: p(path) })
            }
            FuzzRequest::AddWatch(path, mode) => Request::AddWatch(AddWatchRequest {
                path: p(path),
                mode: i32::from(*mode),
            }),
            FuzzRequest::WhoAmI => Request::WhoAmI,
            FuzzRequest::CloseSession => Request::CloseSession,
        }
    }

    fn relative_zxid(&self, offset: i8) -> i64 {
        self.core.db().last_zxid() + i64::from(offset)
    }

    fn create(&self, c: &FuzzCreate) -> CreateRequest {
        CreateRequest {
            path: self.path(&c.path),
            data: c.data.bytes(),
            acl: acls(&c.acl),
            flags: i32::from(c.flags),
        }
    }

    fn create_ttl(&self, c: &FuzzCreate, ttl: i64) -> CreateTtlRequest {
        CreateTtlRequest {
            path: self.path(&c.path),
            data: c.data.bytes(),
            acl: acls(&c.acl),
            flags: i32::from(c.flags),
            ttl,
        }
    }

    fn multi(&self, ops: &[FuzzMultiOp]) -> MultiRequest {
        let p = |path: &FuzzPath| self.path(path);
        let ops = ops
            .iter()
            .take(16)
            .map(|op| match op {
                FuzzMultiOp::Create(kind, c) => MultiOp::Create {
                    opcode: match kind {
                        CreateKind::Create => OpCode::Create,
                        CreateKind::Create2 => OpCode::Create2,
                        CreateKind::Container => OpCode::CreateContainer,
                    },
                    request: self.create(c),
                },
                FuzzMultiOp::CreateTtl(c, ttl) => MultiOp::CreateTtl(self.create_ttl(c, *ttl)),
                FuzzMultiOp::Delete(path, v) => MultiOp::Delete(DeleteRequest {
                    path: p(path),
                    version: i32::from(*v),
                }),
                FuzzMultiOp::SetData(path, data, v) => MultiOp::SetData(SetDataRequest {
                    path: p(path),
                    data: data.bytes(),
                    version: i32::from(*v),
                }),
                FuzzMultiOp::Check(path, v) => MultiOp::Check(CheckVersionRequest {
                    path: p(path),
                    version: i32::from(*v),
                }),
                FuzzMultiOp::GetChildren(path) => MultiOp::GetChildren(GetChildrenRequest {
                    path: p(path),
                    watch: false,
                }),
                FuzzMultiOp::GetData(path) => MultiOp::GetData(GetDataRequest {
                    path: p(path),
                    watch: false,
                }),
            })
            .collect();
        MultiRequest { ops }
    }

    fn path(&self, path: &FuzzPath) -> String {
        match path {
            FuzzPath::Names(names) => names_path(names),
            FuzzPath::Child { parent, index } => {
                let parent = names_path(parent);
                let db = self.core.db();
                let child = db.tree().get(&parent).and_then(|node| {
                    let n = node.num_children();
                    (n > 0)
                        .then(|| node.children().nth(usize::from(*index) % n))
                        .flatten()
                        .map(|c| crate::tree::child_path(&parent, c))
                });
                child.unwrap_or(parent)
            }
            FuzzPath::Quota { root, stats } => {
                let node = if *stats {
                    crate::tree::quota::STAT_NODE
                } else {
                    crate::tree::quota::LIMIT_NODE
                };
                let root = names_path(root);
                let root = if root == "/" { String::new() } else { root };
                format!("{}{root}/{node}", crate::tree::QUOTA_PATH)
            }
            FuzzPath::Raw(s) => s.clone(),
        }
    }
}

fn names_path(names: &[u8]) -> String {
    if names.is_empty() {
        return "/".into();
    }
    let mut path = String::new();
    for n in names.iter().take(8) {
        path.push('/');
        path.push_str(pick_str(NAMES, *n));
    }
    path
}

fn pick_str(list: &[&'static str], i: u8) -> &'static str {
    list[usize::from(i) % list.len()]
}

fn pick<T>(list: &[T], i: u8) -> Option<&T> {
    if list.is_empty() {
        None
    } else {
        list.get(usize::from(i) % list.len())
    }
}

fn acls(acl: &[FuzzAcl]) -> Vec<Acl> {
    acl.iter()
        .take(4)
        .map(|a| {
            let perms = if a.perms & 0x80 != 0 {
                i32::from(a.perms as i8)
            } else {
                i32::from(a.perms & 31)
            };
            let id = match &a.id {
                FuzzId::Anyone => Id::anyone(),
                FuzzId::AuthIds => Id::auth_ids(),
                FuzzId::Digest(i) => Id::new("digest", acl::digest(pick_str(CREDENTIALS, *i))),
                FuzzId::Ip(i) => Id::new("ip", pick_str(IPS, *i)),
                FuzzId::Super => acl::super_id(),
                FuzzId::Raw(scheme, id) => Id::new(scheme.clone(), id.clone()),
            };
            Acl { perms, id }
        })
        .collect()
}

impl FuzzData {
    fn bytes(&self) -> Option<Bytes> {
        match self {
            FuzzData::Null => None,
            FuzzData::Empty => Some(Bytes::new()),
            FuzzData::Bytes(b) => Some(Bytes::copy_from_slice(b)),
            FuzzData::Limits {
                count,
                bytes,
                count_hard,
                byte_hard,
            } => Some(Bytes::from(format!(
                "count={count},bytes={bytes}=;byteHardLimit={byte_hard};countHardLimit={count_hard}"
            ))),
        }
    }
}

fn encode(out: &mut BytesMut, xid: i32, request: &Request) {
    write_frame(out, |w| {
        RequestHeader::new(xid, request.opcode()).write(w);
        request.write_body(w);
    });
}

/// The xid a reply to `header` carries.
fn reply_xid(header: &RequestHeader) -> i32 {
    match header.op() {
        Some(OpCode::Ping) => zk_proto::xid::PING,
        Some(OpCode::Auth) => zk_proto::xid::AUTH,
        Some(OpCode::SetWatches | OpCode::SetWatches2) => zk_proto::xid::SET_WATCHES,
        _ => header.xid,
    }
}

/// Checks what the writer sent for one request: notifications, then (last) exactly one
/// reply with the request's xid whose body decodes as the answer to its opcode and
/// encodes back to the same bytes. Returns whether the request may have changed the
/// tree (a write that succeeded, multis whose ops all did).
fn check_replies(c: &mut Conn, request: &RequestHeader, out: Bytes) -> bool {
    let mut buf = BytesMut::from(&out[..]);
    let mut decoder = FrameDecoder::default();
    let mut frames = Vec::new();
    while let Some(frame) = decoder
        .decode(&mut buf)
        .expect("the server frames its output")
    {
        frames.push(frame);
    }
    assert!(buf.is_empty(), "a partial frame in the output");
    // The reply is the last frame (a client may send xid -1 itself, so the xid alone
    // does not tell a reply from a notification).
    let Some(reply) = frames.pop() else {
        panic!("no reply to {request:?}");
    };
    for frame in frames {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r).expect("reply header");
        assert_eq!(
            header.xid,
            zk_proto::xid::NOTIFICATION,
            "two replies to one request"
        );
        notification(&r.take_rest());
    }
    let mut r = Reader::new(reply);
    let header = ReplyHeader::read(&mut r).expect("reply header");
    if std::env::var_os("ZK_FUZZ_DEBUG").is_some() {
        eprintln!("{request:?} -> {header:?}");
    }
    let body = r.take_rest();
    // A request refused before it was understood (a malformed body) is answered with
    // the xid it was sent with.
    assert!(
        header.xid == reply_xid(request) || (header.err != 0 && header.xid == request.xid),
        "reply xid {} to {request:?}",
        header.xid
    );
    if header.zxid > 0 {
        assert!(header.zxid >= c.last_reply_zxid, "reply zxids went back");
        c.last_reply_zxid = header.zxid;
    }
    if header.err != 0 {
        // One exception, as in ZooKeeper 3.8: a refused SASL token (AuthFailed,
        // SessionClosedRequireSaslAuth) is answered with a null token after the header.
        let sasl_refusal = request.op() == Some(OpCode::Sasl) && body[..] == [0xff; 4];
        assert!(
            body.is_empty() || sasl_refusal,
            "an error reply carries a body"
        );
        assert!(ErrorCode::from_code(header.err).is_some(), "unknown error");
        return false;
    }
    let Some(op) = request.op() else {
        panic!("an unknown opcode was answered Ok");
    };
    let response = Response::decode(op, body.clone())
        .unwrap_or_else(|e| panic!("reply to {op:?} does not decode: {e}"));
    let mut again = BytesMut::new();
    response.write(&mut again);
    assert_eq!(again.freeze(), body, "reply to {op:?} is not canonical");
    op.is_write()
        && !matches!(&response, Response::Multi(m)
            if m.results.iter().any(|r| matches!(r, OpResult::Error { .. })))
}

fn notification(body: &Bytes) {
    let event = WatcherEvent::from_bytes(body.clone()).expect("notification decodes");
    assert!(event.event_type().is_ok() && event.state().is_ok());
}

fn check_notifications(out: Bytes) {
    let mut buf = BytesMut::from(&out[..]);
    let mut decoder = FrameDecoder::default();
    while let Some(frame) = decoder
        .decode(&mut buf)
        .expect("the server frames its output")
    {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r).expect("reply header");
        assert_eq!(header.xid, zk_proto::xid::NOTIFICATION);
        notification(&r.take_rest());
    }
    assert!(buf.is_empty());
}
