//! Session establishment and the headers framing every request and reply.

use bytes::{Bytes, BytesMut};

use crate::jute::{jute_record, DecodeResult, JuteWrite, Reader, Record};
use crate::{ErrorCode, OpCode};

/// The first frame a client sends: open a new session (`session_id` 0) or resume one.
///
/// The trailing `readOnly` flag arrived with ZooKeeper 3.4; older clients omit it, so
/// it is optional on input and `None` means "absent" (and is re-encoded as absent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The highest zxid the client has seen; a server behind it must refuse the client.
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds.
    pub timeout: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session's password (16 zero bytes for a new session).
    pub passwd: Bytes,
    /// Whether the client accepts a read-only server; `None` for pre-3.4 clients.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const MIN_SIZE: usize = 4 + 8 + 4 + 8 + 4;

    fn write(&self, w: &mut BytesMut) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.timeout);
        w.write_i64(self.session_id);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    fn read(r: &mut Reader) -> DecodeResult<Self> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Bytes::read(r)?,
            read_only: read_optional_flag(r)?,
        })
    }
}

/// The server's answer to a [`ConnectRequest`]. A refused or expired session is
/// answered with timeout 0, session id 0 and a zero password.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// The negotiated session timeout in milliseconds (0 = session invalid).
    pub timeout: i32,
    /// The session id.
    pub session_id: i64,
    /// The session's password (16 bytes).
    pub passwd: Bytes,
    /// Whether the server is read-only; `None` when answering a pre-3.4 client, which
    /// does not expect the flag.
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    const MIN_SIZE: usize = 4 + 4 + 8 + 4;

    fn write(&self, w: &mut BytesMut) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout);
        w.write_i64(self.session_id);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    fn read(r: &mut Reader) -> DecodeResult<Self> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Bytes::read(r)?,
            read_only: read_optional_flag(r)?,
        })
    }
}

fn read_optional_flag(r: &mut Reader) -> DecodeResult<Option<bool>> {
    if r.remaining() == 0 {
        Ok(None)
    } else {
        r.read_bool().map(Some)
    }
}

jute_record! {
    /// Precedes every request after the handshake.
    pub struct RequestHeader {
        /// Client-chosen id echoed in the reply (or one of [`crate::xid`]).
        pub xid: i32,
        /// The request's [`OpCode`], raw: unknown opcodes must still be answered.
        pub opcode: i32,
    }
}

impl RequestHeader {
    /// A header for `opcode`.
    pub fn new(xid: i32, opcode: OpCode) -> RequestHeader {
        RequestHeader {
            xid,
            opcode: opcode.code(),
        }
    }

    /// The opcode, if the protocol defines it.
    pub fn op(&self) -> Option<OpCode> {
        OpCode::from_code(self.opcode)
    }
}

jute_record! {
    /// Precedes every reply and watch notification.
    pub struct ReplyHeader {
        /// The request's xid (or -1 for a notification, -2 ping, -4 auth, -8 setWatches).
        pub xid: i32,
        /// The zxid of the last change the server had applied when it replied.
        pub zxid: i64,
        /// The result: 0 or an [`ErrorCode`], raw. A body follows only when 0.
        pub err: i32,
    }
}

impl ReplyHeader {
    /// A header for a reply with result `err`.
    pub fn new(xid: i32, zxid: i64, err: ErrorCode) -> ReplyHeader {
        ReplyHeader {
            xid,
            zxid,
            err: err.code(),
        }
    }

    /// The result code, if the protocol defines it.
    pub fn error(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.err)
    }
}

jute_record! {
    /// A bare result code: the body of addWatch replies and of failed ops in a multi.
    pub struct ErrorResponse {
        /// The code (0 for success).
        pub err: i32,
    }
}

#[cfg(test)]
mod arbitrary_impls {
    use super::*;
    use crate::arbitrary::ArbitraryRecord;
    use proptest::prelude::*;

    impl ArbitraryRecord for ConnectRequest {
        fn strategy() -> BoxedStrategy<Self> {
            (
                any::<i32>(),
                any::<i64>(),
                any::<i32>(),
                any::<i64>(),
                Bytes::strategy(),
                proptest::option::of(any::<bool>()),
            )
                .prop_map(
                    |(protocol_version, last_zxid_seen, timeout, session_id, passwd, read_only)| {
                        ConnectRequest {
                            protocol_version,
                            last_zxid_seen,
                            timeout,
                            session_id,
                            passwd,
                            read_only,
                        }
                    },
                )
                .boxed()
        }
    }

    impl ArbitraryRecord for ConnectResponse {
        fn strategy() -> BoxedStrategy<Self> {
            (
                any::<i32>(),
                any::<i32>(),
                any::<i64>(),
                Bytes::strategy(),
                proptest::option::of(any::<bool>()),
            )
                .prop_map(
                    |(protocol_version, timeout, session_id, passwd, read_only)| ConnectResponse {
                        protocol_version,
                        timeout,
                        session_id,
                        passwd,
                        read_only,
                    },
                )
                .boxed()
        }
    }
}
