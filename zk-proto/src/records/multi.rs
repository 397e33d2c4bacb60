//! multi and multiRead: a sequence of ops, each behind a [`MultiHeader`], closed by a
//! header with `done = true`; the response mirrors it with one result per op.

use bytes::{Bytes, BytesMut};

use crate::jute::{jute_record, DecodeError, DecodeResult, Reader, Record};
use crate::records::node::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, GetChildrenRequest, GetChildrenResponse, GetDataRequest, GetDataResponse,
    SetDataRequest, SetDataResponse,
};
use crate::records::session::ErrorResponse;
use crate::{ErrorCode, OpCode, Stat};

jute_record! {
    /// Precedes each op of a multi request and each result of a multi response.
    pub struct MultiHeader {
        /// The op's opcode (or -1 for an error result and for the terminator).
        pub op_type: i32,
        /// True only on the terminating header.
        pub done: bool,
        /// -1 in requests; the result code in responses.
        pub err: i32,
    }
}

impl MultiHeader {
    /// The header that ends a multi request or response.
    pub const TERMINATOR: MultiHeader = MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    };
}

/// One op of a multi (create/delete/setData/check) or multiRead (getChildren/getData).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MultiOp {
    /// create, create2 or createContainer, told apart by `opcode`.
    Create {
        /// [`OpCode::Create`], [`OpCode::Create2`] or [`OpCode::CreateContainer`].
        opcode: OpCode,
        /// The create.
        request: CreateRequest,
    },
    /// createTTL.
    CreateTtl(CreateTtlRequest),
    /// delete.
    Delete(DeleteRequest),
    /// setData.
    SetData(SetDataRequest),
    /// check (version check).
    Check(CheckVersionRequest),
    /// getChildren (multiRead only).
    GetChildren(GetChildrenRequest),
    /// getData (multiRead only).
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The op's opcode, as written in its header.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create { opcode, .. } => *opcode,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// The path the op works on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { request, .. } => &request.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    /// Whether the op is a read (allowed only in multiRead).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    fn write_body(&self, w: &mut BytesMut) {
        match self {
            MultiOp::Create { request, .. } => request.write(w),
            MultiOp::CreateTtl(r) => r.write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
            MultiOp::GetChildren(r) => r.write(w),
            MultiOp::GetData(r) => r.write(w),
        }
    }

    fn read_body(op_type: i32, r: &mut Reader) -> DecodeResult<MultiOp> {
        let opcode = OpCode::from_code(op_type).ok_or(DecodeError::InvalidValue {
            what: "multi op type",
            value: i64::from(op_type),
        })?;
        Ok(match opcode {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => MultiOp::Create {
                opcode,
                request: CreateRequest::read(r)?,
            },
            OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            OpCode::Delete => MultiOp::Delete(DeleteRequest::read(r)?),
            OpCode::SetData => MultiOp::SetData(SetDataRequest::read(r)?),
            OpCode::Check => MultiOp::Check(CheckVersionRequest::read(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            OpCode::GetData => MultiOp::GetData(GetDataRequest::read(r)?),
            _ => {
                return Err(DecodeError::InvalidValue {
                    what: "multi op type",
                    value: i64::from(op_type),
                })
            }
        })
    }
}

/// The body of a multi or multiRead request (`MultiOperationRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MultiRequest {
    /// The ops, in order.
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    const MIN_SIZE: usize = MultiHeader::MIN_SIZE;

    fn write(&self, w: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader {
                op_type: op.opcode().code(),
                done: false,
                err: -1,
            }
            .write(w);
            op.write_body(w);
        }
        MultiHeader::TERMINATOR.write(w);
    }

    fn read(r: &mut Reader) -> DecodeResult<Self> {
        let mut ops = Vec::new();
        loop {
            let header = MultiHeader::read(r)?;
            if header.done {
                return Ok(MultiRequest { ops });
            }
            ops.push(MultiOp::read_body(header.op_type, r)?);
        }
    }
}

/// The result of one op in a multi or multiRead response (`OpResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OpResult {
    /// A create answered with its path only (opcode create).
    Create {
        /// The created path.
        path: String,
    },
    /// A create answered with path and Stat (opcode create2).
    Create2 {
        /// The created path.
        path: String,
        /// The new znode's Stat.
        stat: Stat,
    },
    /// A delete succeeded.
    Delete,
    /// A setData succeeded.
    SetData {
        /// The Stat after the change.
        stat: Stat,
    },
    /// A check succeeded.
    Check,
    /// A getChildren in a multiRead.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// A getData in a multiRead.
    GetData {
        /// The data.
        data: Option<Bytes>,
        /// The Stat.
        stat: Stat,
    },
    /// The op failed with this code, or (code 0) succeeded but the multi was rolled
    /// back because another op failed.
    Error {
        /// The raw result code.
        err: i32,
    },
}

impl OpResult {
    /// An error result with `code`.
    pub fn error(code: ErrorCode) -> OpResult {
        OpResult::Error { err: code.code() }
    }

    /// The opcode written in the result's header.
    pub fn opcode(&self) -> OpCode {
        match self {
            OpResult::Create { .. } => OpCode::Create,
            OpResult::Create2 { .. } => OpCode::Create2,
            OpResult::Delete => OpCode::Delete,
            OpResult::SetData { .. } => OpCode::SetData,
            OpResult::Check => OpCode::Check,
            OpResult::GetChildren { .. } => OpCode::GetChildren,
            OpResult::GetData { .. } => OpCode::GetData,
            OpResult::Error { .. } => OpCode::Error,
        }
    }

    fn write(&self, w: &mut BytesMut) {
        let err = match self {
            OpResult::Error { err } => *err,
            _ => 0,
        };
        MultiHeader {
            op_type: self.opcode().code(),
            done: false,
            err,
        }
        .write(w);
        match self {
            OpResult::Create { path } => path.write(w),
            OpResult::Create2 { path, stat } => {
                path.write(w);
                stat.write(w);
            }
            OpResult::Delete | OpResult::Check => {}
            OpResult::SetData { stat } => stat.write(w),
            OpResult::GetChildren { children } => children.write(w),
            OpResult::GetData { data, stat } => {
                data.write(w);
                stat.write(w);
            }
            OpResult::Error { err } => ErrorResponse { err: *err }.write(w),
        }
    }

    fn read_body(op_type: i32, r: &mut Reader) -> DecodeResult<OpResult> {
        let invalid = DecodeError::InvalidValue {
            what: "multi result type",
            value: i64::from(op_type),
        };
        let opcode = OpCode::from_code(op_type).ok_or(invalid.clone())?;
        Ok(match opcode {
            OpCode::Create => OpResult::Create {
                path: CreateResponse::read(r)?.path,
            },
            OpCode::Create2 => {
                let Create2Response { path, stat } = Create2Response::read(r)?;
                OpResult::Create2 { path, stat }
            }
            OpCode::Delete => OpResult::Delete,
            OpCode::SetData => OpResult::SetData {
                stat: SetDataResponse::read(r)?.stat,
            },
            OpCode::Check => OpResult::Check,
            OpCode::GetChildren => OpResult::GetChildren {
                children: GetChildrenResponse::read(r)?.children,
            },
            OpCode::GetData => {
                let GetDataResponse { data, stat } = GetDataResponse::read(r)?;
                OpResult::GetData { data, stat }
            }
            OpCode::Error => OpResult::Error {
                err: ErrorResponse::read(r)?.err,
            },
            _ => return Err(invalid),
        })
    }
}

/// The body of a multi or multiRead reply (`MultiResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MultiResponse {
    /// One result per op, in order.
    pub results: Vec<OpResult>,
}

impl Record for MultiResponse {
    const MIN_SIZE: usize = MultiHeader::MIN_SIZE;

    fn write(&self, w: &mut BytesMut) {
        for result in &self.results {
            result.write(w);
        }
        MultiHeader::TERMINATOR.write(w);
    }

    fn read(r: &mut Reader) -> DecodeResult<Self> {
        let mut results = Vec::new();
        loop {
            let header = MultiHeader::read(r)?;
            if header.done {
                return Ok(MultiResponse { results });
            }
            results.push(OpResult::read_body(header.op_type, r)?);
        }
    }
}

#[cfg(test)]
mod arbitrary_impls {
    use super::*;
    use crate::arbitrary::ArbitraryRecord;
    use proptest::prelude::*;

    impl ArbitraryRecord for MultiOp {
        fn strategy() -> BoxedStrategy<Self> {
            prop_oneof![
                (
                    prop_oneof![
                        Just(OpCode::Create),
                        Just(OpCode::Create2),
                        Just(OpCode::CreateContainer)
                    ],
                    CreateRequest::strategy()
                )
                    .prop_map(|(opcode, request)| MultiOp::Create { opcode, request }),
                CreateTtlRequest::strategy().prop_map(MultiOp::CreateTtl),
                DeleteRequest::strategy().prop_map(MultiOp::Delete),
                SetDataRequest::strategy().prop_map(MultiOp::SetData),
                CheckVersionRequest::strategy().prop_map(MultiOp::Check),
                GetChildrenRequest::strategy().prop_map(MultiOp::GetChildren),
                GetDataRequest::strategy().prop_map(MultiOp::GetData),
            ]
            .boxed()
        }
    }

    impl ArbitraryRecord for MultiRequest {
        fn strategy() -> BoxedStrategy<Self> {
            Vec::<MultiOp>::strategy()
                .prop_map(|ops| MultiRequest { ops })
                .boxed()
        }
    }

    impl ArbitraryRecord for OpResult {
        fn strategy() -> BoxedStrategy<Self> {
            prop_oneof![
                String::strategy().prop_map(|path| OpResult::Create { path }),
                (String::strategy(), Stat::strategy())
                    .prop_map(|(path, stat)| OpResult::Create2 { path, stat }),
                Just(OpResult::Delete),
                Stat::strategy().prop_map(|stat| OpResult::SetData { stat }),
                Just(OpResult::Check),
                Vec::<String>::strategy().prop_map(|children| OpResult::GetChildren { children }),
                (Option::<Bytes>::strategy(), Stat::strategy())
                    .prop_map(|(data, stat)| OpResult::GetData { data, stat }),
                any::<i32>().prop_map(|err| OpResult::Error { err }),
            ]
            .boxed()
        }
    }

    impl ArbitraryRecord for MultiResponse {
        fn strategy() -> BoxedStrategy<Self> {
            Vec::<OpResult>::strategy()
                .prop_map(|results| MultiResponse { results })
                .boxed()
        }
    }
}
