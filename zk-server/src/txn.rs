//! The replicated log's payload: a client's write *request* (not its outcome), with
//! what every server needs to apply it identically — the session, the xid, the
//! proposer's clock and the session's identities at the time of the request.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zk_proto::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, Id, MultiOp,
    MultiRequest, OpCode, Request, SetAclRequest, SetDataRequest,
};

/// Which server proposed a transaction, and its own sequence number for it: the
/// proposer answers its client when it applies the entry carrying its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Origin {
    /// The proposing server's id (0 standalone).
    pub server: u64,
    /// Unique per proposer (restarts included: it starts from the clock).
    pub seq: u64,
}

/// One transaction of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Who proposed it (reply routing; not part of the state).
    pub origin: Origin,
    /// The session that asked (0 for server-internal transactions such as reaping).
    pub session_id: i64,
    /// The request's xid, so the server holding the connection can answer it.
    pub xid: i32,
    /// Milliseconds since the epoch on the proposer: ctime/mtime of what it creates.
    pub time: i64,
    /// The session's identities when it asked (ACL checks, `auth:` expansion).
    pub auth: Vec<Id>,
    /// Enforce quotas as hard limits (`zookeeper.enforceQuota` on the proposer).
    pub enforce_quota: bool,
    /// TTL nodes allowed (`zookeeper.extendedTypesEnabled` on the proposer).
    pub extended_types: bool,
    /// `x509:` ACLs are valid: the proposer authenticates TLS clients by certificate
    /// (it serves a secure client port), as ZooKeeper's x509 provider does.
    #[serde(default)]
    pub x509_provider: bool,
    /// `sasl:` ACLs are valid: the proposer has ZooKeeper's SASL provider
    /// (`authProvider.N=…SASLAuthenticationProvider`), so every member judges alike.
    #[serde(default)]
    pub sasl_provider: bool,
    /// What to do.
    pub op: TxnOp,
}

/// The payload of one replicated log entry: transactions the leader took from its
/// queue together (group commit: one entry, one fsync, one round of replication for
/// all of them). The `i`-th transaction of the entry at log index `n` gets zxid
/// [`zxid_of`]`(n, i)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnBatch(pub Vec<Txn>);

/// Bits of a zxid below the log index: the position of a transaction in its entry.
pub const ZXID_POSITION_BITS: u32 = 16;

/// Transactions in one entry at most.
pub const MAX_BATCH_TXNS: usize = (1 << ZXID_POSITION_BITS) - 1;

/// The zxid of the `position`-th transaction of the log entry at `index` (for an
/// entry without transactions — a leader's blank entry, a membership — position 0).
pub fn zxid_of(index: u64, position: usize) -> i64 {
    ((index << ZXID_POSITION_BITS) | position as u64) as i64
}

impl Txn {
    /// Roughly how many bytes it carries (what bounds a batch).
    pub fn approx_bytes(&self) -> usize {
        let ops = match &self.op {
            TxnOp::Create { request, .. } => request.data.as_ref().map_or(0, |d| d.len()),
            TxnOp::CreateTtl(request) => request.data.as_ref().map_or(0, |d| d.len()),
            TxnOp::SetData(request) => request.data.as_ref().map_or(0, |d| d.len()),
            TxnOp::Multi(request) => {
                let mut encoded = bytes::BytesMut::new();
                zk_proto::Record::write(request, &mut encoded);
                encoded.len()
            }
            _ => 0,
        };
        128 + ops
    }

    /// Whether a client's connection asked for this (not the server itself: session
    /// creation at handshake, expiry's closeSession with xid 0, reaping).
    pub fn from_connection(&self) -> bool {
        self.session_id != 0
            && !matches!(self.op, TxnOp::CreateSession { .. })
            && !(self.xid == 0 && self.op == TxnOp::CloseSession)
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Txn {
    /// For tests and fuzz targets (test builds and feature `fuzzing`): `op` from
    /// `session_id`'s request `xid`, proposed by `origin` at `time` (ms since the
    /// epoch), with no identities, quotas not enforced, TTL nodes allowed, and neither
    /// the x509 nor the SASL provider.
    pub fn for_test(origin: Origin, session_id: i64, xid: i32, time: i64, op: TxnOp) -> Txn {
        Txn {
            origin,
            session_id,
            xid,
            time,
            auth: Vec::new(),
            enforce_quota: false,
            extended_types: true,
            x509_provider: false,
            sasl_provider: false,
            op,
        }
    }
}

/// What a client request is to the log ([`TxnOp::from_request`]).
#[derive(Debug)]
pub enum ClientRequest {
    /// A write: the transaction it proposes.
    Write(TxnOp),
    /// A write refused as sent (a multi holding reads: MarshallingError, as ZooKeeper
    /// refuses it whole).
    Refused(ErrorCode),
    /// Not a write of the tree: the request back.
    Other(Request),
}

/// The write a transaction performs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// Open a session with this id, timeout and password.
    CreateSession {
        /// Negotiated timeout in milliseconds.
        timeout: i32,
        /// The password a resuming client must present.
        passwd: Bytes,
    },
    /// Close the session: its ephemerals go, then the session.
    CloseSession,
    /// create, create2 or createContainer.
    Create {
        /// Which of the three (it decides the reply's shape).
        opcode: OpCode,
        /// The request.
        request: CreateRequest,
    },
    /// createTTL.
    CreateTtl(CreateTtlRequest),
    /// delete.
    Delete(DeleteRequest),
    /// setData.
    SetData(SetDataRequest),
    /// setACL.
    SetAcl(SetAclRequest),
    /// A standalone version check.
    Check(CheckVersionRequest),
    /// An all-or-nothing transaction.
    Multi(MultiRequest),
    /// Delete a container that is still empty and has had children (the reaper's).
    ReapContainer {
        /// The container.
        path: String,
    },
    /// A new ensemble membership (reconfig): `/zookeeper/config` becomes these
    /// `server.N` lines and `version=<this entry's zxid in hex>`.
    SetConfig {
        /// The `server.N=…` lines, newline separated.
        servers: String,
    },
    /// Delete a TTL node that is still childless and unmodified for its TTL.
    ReapTtl {
        /// The TTL node.
        path: String,
    },
}

impl TxnOp {
    /// The transaction a client's request proposes, when it is a write of the tree
    /// (create, delete, setData, setACL, check, multi). closeSession, reconfig and the
    /// reads are [`ClientRequest::Other`]; a multi holding reads, or a multiRead
    /// holding writes, is refused.
    pub fn from_request(request: Request) -> ClientRequest {
        let op = match request {
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
            Request::Multi(m) if m.ops.iter().any(MultiOp::is_read) => {
                return ClientRequest::Refused(ErrorCode::MarshallingError)
            }
            Request::Multi(m) => TxnOp::Multi(m),
            Request::MultiRead(ref m) if m.ops.iter().any(|o| !o.is_read()) => {
                return ClientRequest::Refused(ErrorCode::MarshallingError)
            }
            other => return ClientRequest::Other(other),
        };
        ClientRequest::Write(op)
    }
}
