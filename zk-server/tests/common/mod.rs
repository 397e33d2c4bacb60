//! Shared by the server's integration tests: here, a bare protocol client (frames,
//! xids and notifications, nothing more; the real client is the zk-client crate); in
//! [`ensemble`], an ensemble of real `zk-server` processes.

#![allow(dead_code)]

pub mod ensemble;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::frame::{write_frame, FrameDecoder};
use zk_proto::*;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    pub session_id: i64,
    pub passwd: Bytes,
    pub timeout: i32,
    xid: i32,
    pub events: Vec<WatcherEvent>,
    pub last_zxid: i64,
}

pub fn connect_request(timeout: i32) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    }
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let (client, response) = RawClient::handshake(addr, connect_request(30000))
            .await
            .expect("handshake");
        assert!(response.timeout > 0, "session refused: {response:?}");
        client
    }

    /// Sends `request` as the handshake; `None` if the server closed without a reply.
    /// A client around a stream that has not done a handshake.
    pub fn from_stream(stream: TcpStream) -> RawClient {
        RawClient {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
            session_id: 0,
            passwd: Bytes::new(),
            timeout: 0,
            xid: 0,
            events: Vec::new(),
            last_zxid: 0,
        }
    }

    /// Sends `request` as the handshake; `None` if the server closed without a reply.
    pub async fn handshake(
        addr: SocketAddr,
        request: ConnectRequest,
    ) -> Option<(RawClient, ConnectResponse)> {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut client = RawClient::from_stream(stream);
        let mut out = BytesMut::new();
        write_frame(&mut out, |w| request.write(w));
        client.stream.write_all(&out).await.expect("write");
        let frame = client.recv_frame().await?;
        let response = ConnectResponse::from_bytes(frame).expect("ConnectResponse");
        client.session_id = response.session_id;
        client.passwd = response.passwd.clone();
        client.timeout = response.timeout;
        Some((client, response))
    }

    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Ok(Some(frame)) = self.decoder.decode(&mut self.buf) {
                return Some(frame);
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a request with the next xid; returns the xid.
    pub async fn send(&mut self, request: &Request) -> i32 {
        self.xid += 1;
        let xid = match request {
            Request::Ping => zk_proto::xid::PING,
            Request::Auth(_) => zk_proto::xid::AUTH,
            Request::SetWatches(_) | Request::SetWatches2(_) => zk_proto::xid::SET_WATCHES,
            _ => self.xid,
        };
        let mut out = BytesMut::new();
        write_frame(&mut out, |w| {
            RequestHeader::new(xid, request.opcode()).write(w);
            request.write_body(w);
        });
        self.stream.write_all(&out).await.expect("send");
        xid
    }

    /// Reads replies until the one for `xid`; notifications on the way are kept.
    pub async fn reply(
        &mut self,
        xid: i32,
        op: OpCode,
    ) -> Option<(ReplyHeader, Result<Response, ErrorCode>)> {
        loop {
            let frame = self.recv_frame().await?;
            let mut r = Reader::new(frame);
            let header = ReplyHeader::read(&mut r).expect("reply header");
            if header.xid == zk_proto::xid::NOTIFICATION {
                self.events.push(WatcherEvent::read(&mut r).expect("event"));
                continue;
            }
            assert_eq!(header.xid, xid, "replies must come in request order");
            if header.zxid > 0 {
                self.last_zxid = header.zxid;
            }
            let result = if header.err == 0 {
                Ok(Response::decode(op, r.take_rest()).expect("response body"))
            } else {
                Err(ErrorCode::from_code(header.err).expect("known error code"))
            };
            return Some((header, result));
        }
    }

    pub async fn call(&mut self, request: Request) -> Result<Response, ErrorCode> {
        let op = request.opcode();
        let xid = self.send(&request).await;
        self.reply(xid, op).await.expect("reply").1
    }

    /// The next notification (already received or arriving within the wait).
    pub async fn next_event(&mut self) -> Option<WatcherEvent> {
        if !self.events.is_empty() {
            return Some(self.events.remove(0));
        }
        let frame = self.recv_frame().await?;
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r).expect("header");
        assert_eq!(
            header.xid,
            zk_proto::xid::NOTIFICATION,
            "expected a notification"
        );
        assert_eq!(header.zxid, -1);
        Some(WatcherEvent::read(&mut r).expect("event"))
    }

    /// True once the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(WAIT, self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    // ---- conveniences ----

    pub async fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ErrorCode> {
        let r = self
            .call(Request::Create(CreateRequest {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data)),
                acl: Acl::open_unsafe(),
                flags: mode.code(),
            }))
            .await?;
        match r {
            Response::Create(c) => Ok(c.path),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn get(
        &mut self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<Bytes>, Stat), ErrorCode> {
        match self
            .call(Request::GetData(GetDataRequest {
                path: path.into(),
                watch,
            }))
            .await?
        {
            Response::GetData(r) => Ok((r.data, r.stat)),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn exists(&mut self, path: &str, watch: bool) -> Result<Stat, ErrorCode> {
        match self
            .call(Request::Exists(ExistsRequest {
                path: path.into(),
                watch,
            }))
            .await?
        {
            Response::Exists(r) => Ok(r.stat),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn set(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ErrorCode> {
        match self
            .call(Request::SetData(SetDataRequest {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data)),
                version,
            }))
            .await?
        {
            Response::SetData(r) => Ok(r.stat),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn delete(&mut self, path: &str, version: i32) -> Result<(), ErrorCode> {
        self.call(Request::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))
        .await
        .map(|_| ())
    }

    pub async fn children(&mut self, path: &str, watch: bool) -> Result<Vec<String>, ErrorCode> {
        match self
            .call(Request::GetChildren(GetChildrenRequest {
                path: path.into(),
                watch,
            }))
            .await?
        {
            Response::GetChildren(r) => {
                let mut c = r.children;
                c.sort();
                Ok(c)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn close_session(&mut self) {
        let _ = self.call(Request::CloseSession).await;
    }
}
