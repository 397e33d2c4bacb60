//! [`Request`]: the body of a client request, for every opcode a client may send.

use bytes::{Bytes, BytesMut};

use crate::jute::{DecodeError, DecodeResult, Reader, Record};
use crate::records::acl_ops::{GetAclRequest, SetAclRequest};
use crate::records::auth::{AuthPacket, GetSaslRequest};
use crate::records::multi::MultiRequest;
use crate::records::node::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ExistsRequest,
    GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetDataRequest,
    GetEphemeralsRequest, SetDataRequest, SyncRequest,
};
use crate::records::reconfig::ReconfigRequest;
use crate::records::watches::{
    AddWatchRequest, CheckWatchesRequest, RemoveWatchesRequest, SetWatches, SetWatches2,
};
use crate::OpCode;

/// The body of a request, tagged by opcode. Ping, whoAmI and closeSession have no body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is named after its opcode (see `OpCode`)
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(MultiRequest),
    MultiRead(MultiRequest),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(GetSaslRequest),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    /// The opcode this request is sent with.
    pub fn opcode(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Appends the body (not the header).
    pub fn write_body(&self, w: &mut BytesMut) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.write(w),
            Request::CreateTtl(r) => r.write(w),
            Request::Delete(r) => r.write(w),
            Request::Exists(r) => r.write(w),
            Request::GetData(r) => r.write(w),
            Request::SetData(r) => r.write(w),
            Request::GetAcl(r) => r.write(w),
            Request::SetAcl(r) => r.write(w),
            Request::GetChildren(r) => r.write(w),
            Request::GetChildren2(r) => r.write(w),
            Request::Sync(r) => r.write(w),
            Request::Check(r) => r.write(w),
            Request::Multi(r) | Request::MultiRead(r) => r.write(w),
            Request::Reconfig(r) => r.write(w),
            Request::CheckWatches(r) => r.write(w),
            Request::RemoveWatches(r) => r.write(w),
            Request::Auth(r) => r.write(w),
            Request::SetWatches(r) => r.write(w),
            Request::SetWatches2(r) => r.write(w),
            Request::Sasl(r) => r.write(w),
            Request::GetEphemerals(r) => r.write(w),
            Request::GetAllChildrenNumber(r) => r.write(w),
            Request::AddWatch(r) => r.write(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// Decodes the body of a request sent with `opcode`.
    ///
    /// Bytes after the record are ignored, as Apache ZooKeeper ignores them (a newer
    /// client may append fields). Opcodes a client never sends (notification,
    /// deleteContainer, createSession, error) are [`DecodeError::InvalidValue`]; a server
    /// answers those, like unknown opcodes, with `Unimplemented`.
    pub fn decode(opcode: OpCode, body: Bytes) -> DecodeResult<Request> {
        let r = &mut Reader::new(body);
        Ok(match opcode {
            OpCode::Create => Request::Create(Record::read(r)?),
            OpCode::Create2 => Request::Create2(Record::read(r)?),
            OpCode::CreateContainer => Request::CreateContainer(Record::read(r)?),
            OpCode::CreateTtl => Request::CreateTtl(Record::read(r)?),
            OpCode::Delete => Request::Delete(Record::read(r)?),
            OpCode::Exists => Request::Exists(Record::read(r)?),
            OpCode::GetData => Request::GetData(Record::read(r)?),
            OpCode::SetData => Request::SetData(Record::read(r)?),
            OpCode::GetAcl => Request::GetAcl(Record::read(r)?),
            OpCode::SetAcl => Request::SetAcl(Record::read(r)?),
            OpCode::GetChildren => Request::GetChildren(Record::read(r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Record::read(r)?),
            OpCode::Sync => Request::Sync(Record::read(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(Record::read(r)?),
            OpCode::Multi => Request::Multi(Record::read(r)?),
            OpCode::MultiRead => Request::MultiRead(Record::read(r)?),
            OpCode::Reconfig => Request::Reconfig(Record::read(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Record::read(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Record::read(r)?),
            OpCode::Auth => Request::Auth(Record::read(r)?),
            OpCode::SetWatches => Request::SetWatches(Record::read(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(Record::read(r)?),
            OpCode::Sasl => Request::Sasl(Record::read(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Record::read(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Record::read(r)?),
            OpCode::AddWatch => Request::AddWatch(Record::read(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification
            | OpCode::DeleteContainer
            | OpCode::CreateSession
            | OpCode::Error => {
                return Err(DecodeError::InvalidValue {
                    what: "request opcode",
                    value: i64::from(opcode.code()),
                })
            }
        })
    }
}
