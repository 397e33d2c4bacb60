//! [`Response`]: the body of a successful reply, whose shape is fixed by the opcode of
//! the request it answers (replies do not name their type; the client matches the xid).

use bytes::{Bytes, BytesMut};

use crate::jute::{DecodeError, DecodeResult, Reader, Record};
use crate::records::acl_ops::{GetAclResponse, SetAclResponse};
use crate::records::auth::{SetSaslResponse, WhoAmIResponse};
use crate::records::multi::MultiResponse;
use crate::records::node::{
    Create2Response, CreateResponse, ExistsResponse, GetAllChildrenNumberResponse,
    GetChildren2Response, GetChildrenResponse, GetDataResponse, GetEphemeralsResponse,
    SetDataResponse, SyncResponse,
};
use crate::records::session::ErrorResponse;
use crate::OpCode;

/// The body of a reply with `err == 0`. Replies with an error carry no body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Response {
    /// No body: delete, ping, auth, setWatches(2), checkWatches, removeWatches,
    /// closeSession.
    Empty,
    /// create.
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists.
    Exists(ExistsResponse),
    /// getData, and reconfig (the new configuration).
    GetData(GetDataResponse),
    /// setData, and a standalone check.
    SetData(SetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// setACL.
    SetAcl(SetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// sasl.
    Sasl(SetSaslResponse),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// addWatch (ZooKeeper answers it with a zero `ErrorResponse`).
    AddWatch(ErrorResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
}

impl Response {
    /// Appends the body.
    pub fn write(&self, w: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.write(w),
            Response::Create2(r) => r.write(w),
            Response::Exists(r) => r.write(w),
            Response::GetData(r) => r.write(w),
            Response::SetData(r) => r.write(w),
            Response::GetAcl(r) => r.write(w),
            Response::SetAcl(r) => r.write(w),
            Response::GetChildren(r) => r.write(w),
            Response::GetChildren2(r) => r.write(w),
            Response::Sync(r) => r.write(w),
            Response::Multi(r) => r.write(w),
            Response::Sasl(r) => r.write(w),
            Response::GetEphemerals(r) => r.write(w),
            Response::GetAllChildrenNumber(r) => r.write(w),
            Response::AddWatch(r) => r.write(w),
            Response::WhoAmI(r) => r.write(w),
        }
    }

    /// Decodes the body of a successful reply to a request sent with `opcode`. Bytes
    /// after the record are ignored, as Apache ZooKeeper's client ignores them.
    pub fn decode(opcode: OpCode, body: Bytes) -> DecodeResult<Response> {
        let r = &mut Reader::new(body);
        let response = match opcode {
            OpCode::Delete
            | OpCode::Ping
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::CloseSession => Response::Empty,
            OpCode::Create => Response::Create(Record::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Record::read(r)?)
            }
            OpCode::Exists => Response::Exists(Record::read(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Record::read(r)?),
            OpCode::SetData | OpCode::Check => Response::SetData(Record::read(r)?),
            OpCode::GetAcl => Response::GetAcl(Record::read(r)?),
            OpCode::SetAcl => Response::SetAcl(Record::read(r)?),
            OpCode::GetChildren => Response::GetChildren(Record::read(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Record::read(r)?),
            OpCode::Sync => Response::Sync(Record::read(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(Record::read(r)?),
            OpCode::Sasl => Response::Sasl(Record::read(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Record::read(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Record::read(r)?),
            OpCode::AddWatch => Response::AddWatch(Record::read(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Record::read(r)?),
            OpCode::Notification
            | OpCode::DeleteContainer
            | OpCode::CreateSession
            | OpCode::Error => {
                return Err(DecodeError::InvalidValue {
                    what: "response opcode",
                    value: i64::from(opcode.code()),
                })
            }
        };
        Ok(response)
    }
}
