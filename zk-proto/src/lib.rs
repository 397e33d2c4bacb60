//! Apache ZooKeeper's client wire protocol, byte for byte, with no I/O.
//!
//! # Layout
//!
//! - [`jute`]: the serialisation format (big-endian ints, length-prefixed buffers,
//!   strings and vectors) and the [`Record`] trait; bounded, allocation-safe decoding.
//! - [`frame`]: the 4-byte length prefix around every message, with a maximum that is
//!   enforced before a body is read.
//! - [`records`]: every record a client and server exchange, grouped by purpose
//!   (`session`: handshake and headers; `node`: znode ops; `acl_ops`; `watches`;
//!   `multi`; `auth`; `reconfig`).
//! - [`request`] / [`response`]: request and reply bodies as enums keyed by [`OpCode`].
//! - [`opcode`], [`error_code`], [`watch`], [`create_mode`], [`acl`]: the numbered
//!   constants of the protocol (`ZooDefs`, `KeeperException.Code`, `Watcher.Event`,
//!   `CreateMode`, `Perms`) and the well-known ACLs.
//! - [`stat`]: a znode's [`Stat`].
//! - [`path`]: path validation with ZooKeeper's rules and messages.
//! - [`sasl`]: the DIGEST-MD5 mechanism (RFC 2831) both sides of a `sasl` exchange
//!   run, as ZooKeeper's Java client and server speak it.
//! - `fuzzing` (feature `fuzzing`): the bodies of the cargo-fuzz targets under `fuzz/`,
//!   shared with the stable replay of their corpus (`tests/fuzz_corpus.rs`).
//!
//! # A request on the wire
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::{frame, GetDataRequest, OpCode, Record, Request, RequestHeader};
//!
//! let request = Request::GetData(GetDataRequest { path: "/app".into(), watch: true });
//! let mut out = BytesMut::new();
//! frame::write_frame(&mut out, |w| {
//!     RequestHeader::new(1, request.opcode()).write(w);
//!     request.write_body(w);
//! });
//!
//! let payload = frame::FrameDecoder::default().decode(&mut out).unwrap().unwrap();
//! let mut reader = zk_proto::Reader::new(payload);
//! let header = RequestHeader::read(&mut reader).unwrap();
//! assert_eq!(header.op(), Some(OpCode::GetData));
//! let body = Request::decode(OpCode::GetData, reader.take_rest()).unwrap();
//! assert_eq!(body, request);
//! ```
//!
//! Golden vectors produced by Apache ZooKeeper 3.8's own classes (`golden/`) pin the
//! encodings; see `tests/golden.rs`.

#![warn(missing_docs)]

pub mod acl;
pub mod create_mode;
pub mod error_code;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod int_enum;
pub mod jute;
#[cfg(feature = "keystore")]
pub mod keystore;
pub mod opcode;
pub mod path;
pub mod records;
pub mod request;
pub mod response;
pub mod sasl;
pub mod stat;
pub mod watch;

#[cfg(test)]
mod arbitrary;
#[cfg(test)]
mod proptests;

pub use acl::{Acl, Id, Perms};
pub use create_mode::CreateMode;
pub use error_code::ErrorCode;
pub use frame::{FrameDecoder, FrameError};
pub use jute::{DecodeError, DecodeResult, Reader, Record};
pub use opcode::{xid, OpCode};
pub use path::{validate_create_path, validate_path, InvalidPath};
pub use records::acl_ops::{GetAclRequest, GetAclResponse, SetAclRequest, SetAclResponse};
pub use records::auth::{AuthPacket, ClientInfo, GetSaslRequest, SetSaslResponse, WhoAmIResponse};
pub use records::multi::{MultiHeader, MultiOp, MultiRequest, MultiResponse, OpResult};
pub use records::node::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ExistsRequest, ExistsResponse, GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse, GetChildren2Request, GetChildren2Response, GetChildrenRequest,
    GetChildrenResponse, GetDataRequest, GetDataResponse, GetEphemeralsRequest,
    GetEphemeralsResponse, SetDataRequest, SetDataResponse, SyncRequest, SyncResponse,
};
pub use records::reconfig::ReconfigRequest;
pub use records::session::{
    ConnectRequest, ConnectResponse, ErrorResponse, ReplyHeader, RequestHeader,
};
pub use records::watches::{
    AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest, SetWatches, SetWatches2,
    WatcherEvent,
};
pub use request::Request;
pub use response::Response;
pub use stat::Stat;
pub use watch::{AddWatchMode, EventType, KeeperState, WatcherType};
