//! Bad input gets a clear error or a closed connection for that client only; the
//! server keeps serving everyone else and loses nothing.

mod common;

use bytes::BytesMut;
use common::RawClient;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zk_proto::frame::write_frame;
use zk_proto::*;
use zk_server::testing::TestingServer;

/// A new session is served, and the acknowledged /keep is there with its data.
async fn healthy(server: &TestingServer) {
    let mut c = RawClient::connect(server.addr()).await;
    let (data, _) = c
        .get("/keep", false)
        .await
        .unwrap_or_else(|e| panic!("server stopped serving /keep: {e:?}"));
    assert_eq!(data.as_deref(), Some(&b"safe"[..]), "/keep's data changed");
}

async fn setup() -> TestingServer {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/keep", b"safe", CreateMode::Persistent)
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn garbage_before_the_handshake_is_closed() {
    let server = setup().await;
    for garbage in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        &[0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 5, 1, 2, 3, 4, 5],
        &[0x7f, 0, 0, 0],
    ] {
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut c = RawClient::from_stream(s);
        assert!(c.closed().await, "{garbage:?}");
    }
    healthy(&server).await;
}

#[tokio::test]
async fn an_unknown_opcode_is_answered_unimplemented_then_closed_but_the_session_lives() {
    let server = setup().await;
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| {
        RequestHeader {
            xid: 77,
            opcode: 999,
        }
        .write(w)
    });
    c.send_raw(&out).await;
    let frame = c.recv_frame().await.expect("a reply");
    let header = ReplyHeader::from_bytes(frame).unwrap();
    assert_eq!(
        (header.xid, header.zxid, header.err),
        (77, -1, ErrorCode::Unimplemented.code())
    );
    assert!(c.closed().await);
    let mut other = RawClient::connect(server.addr()).await;
    assert!(
        other.exists("/mine", false).await.is_ok(),
        "the session and its ephemeral survive"
    );
}

#[tokio::test]
async fn a_truncated_body_is_a_marshalling_error_and_the_connection_stays() {
    let server = setup().await;
    let mut c = RawClient::connect(server.addr()).await;
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| {
        RequestHeader::new(5, OpCode::GetData).write(w);
        w.extend_from_slice(&[0, 0, 0, 9, b'/']);
    });
    c.send_raw(&out).await;
    let header = ReplyHeader::from_bytes(c.recv_frame().await.unwrap()).unwrap();
    assert_eq!(
        (header.xid, header.err),
        (5, ErrorCode::MarshallingError.code())
    );
    assert!(c.exists("/keep", false).await.is_ok());
}

#[tokio::test]
async fn oversize_negative_zero_and_short_frames_close_only_that_connection() {
    let server = setup().await;
    for frame in [
        (2_000_000i32).to_be_bytes().to_vec(),
        (-5i32).to_be_bytes().to_vec(),
        0i32.to_be_bytes().to_vec(),
        vec![0, 0, 0, 3, 1, 2, 3],
    ] {
        let mut c = RawClient::connect(server.addr()).await;
        c.send_raw(&frame).await;
        assert!(c.closed().await, "{frame:?}");
    }
    healthy(&server).await;
}

#[tokio::test]
async fn requests_after_close_session_are_not_served() {
    let server = setup().await;
    let mut c = RawClient::connect(server.addr()).await;
    let close = c.send(&Request::CloseSession).await;
    let _ = c
        .send(&Request::Exists(ExistsRequest {
            path: "/keep".into(),
            watch: false,
        }))
        .await;
    let (_, result) = c.reply(close, OpCode::CloseSession).await.unwrap();
    assert_eq!(result, Ok(Response::Empty));
    assert!(c.closed().await);
    healthy(&server).await;
}

#[tokio::test]
async fn hostile_vector_counts_do_not_take_the_server_down() {
    let server = setup().await;
    let mut c = RawClient::connect(server.addr()).await;
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| {
        RequestHeader::new(3, OpCode::SetWatches2).write(w);
        w.extend_from_slice(&0i64.to_be_bytes());
        w.extend_from_slice(&i32::MAX.to_be_bytes()); // a billion paths, four bytes long
    });
    c.send_raw(&out).await;
    let header = ReplyHeader::from_bytes(c.recv_frame().await.unwrap()).unwrap();
    assert_eq!(header.err, ErrorCode::MarshallingError.code());
    healthy(&server).await;
}

#[tokio::test]
async fn a_truncated_request_header_closes_that_connection_only() {
    let server = setup().await;
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/mine", b"", CreateMode::Ephemeral).await.unwrap();
    // A frame of 6 bytes: the xid and half an opcode (a header is 8).
    c.send_raw(&[0, 0, 0, 6, 0, 0, 0, 9, 0, 0]).await;
    assert!(
        c.closed().await,
        "a truncated header must close the connection"
    );
    healthy(&server).await;
    let mut other = RawClient::connect(server.addr()).await;
    assert!(
        other.exists("/mine", false).await.is_ok(),
        "the session (and its ephemeral) outlives the connection"
    );
}

#[tokio::test]
async fn a_client_hanging_up_mid_frame_harms_no_one() {
    let server = setup().await;
    let mut watcher = RawClient::connect(server.addr()).await;
    watcher.get("/keep", true).await.unwrap();
    for cut in [2usize, 4, 12, 30] {
        let mut c = RawClient::connect(server.addr()).await;
        c.create(&format!("/acked{cut}"), b"yes", CreateMode::Persistent)
            .await
            .unwrap();
        // A create of /half, announced at full length, cut after `cut` bytes.
        let mut out = BytesMut::new();
        write_frame(&mut out, |w| {
            RequestHeader::new(50, OpCode::Create).write(w);
            CreateRequest {
                path: "/half".into(),
                data: Some(bytes::Bytes::from_static(b"never")),
                acl: Acl::open_unsafe(),
                flags: 0,
            }
            .write(w);
        });
        c.send_raw(&out[..cut]).await;
        drop(c);
    }
    healthy(&server).await;
    let mut c = RawClient::connect(server.addr()).await;
    assert_eq!(c.exists("/half", false).await, Err(ErrorCode::NoNode));
    for cut in [2, 4, 12, 30] {
        let (data, _) = c.get(&format!("/acked{cut}"), false).await.unwrap();
        assert_eq!(data.as_deref(), Some(&b"yes"[..]));
    }
    // The other session's connection and watch were untouched.
    c.set("/keep", b"safe", -1).await.unwrap();
    let event = watcher.next_event().await.expect("the watch still fires");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDataChanged.code(), "/keep")
    );
}

#[tokio::test]
async fn invalid_paths_get_zookeepers_answers_and_others_keep_working() {
    let server = setup().await;
    let mut other = RawClient::connect(server.addr()).await;
    other.get("/keep", true).await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    use ErrorCode::{BadArguments as Bad, NoNode, Ok as Fine};
    // Answers of Apache ZooKeeper 3.8.0, request by request (reads do not validate
    // paths there: a malformed one is simply not found; "" reads as the root).
    let table: [(&str, [ErrorCode; 6]); 8] = [
        //                     create getData exists setData delete getChildren
        ("", [Bad, Fine, Fine, Bad, Bad, Fine]),
        ("noslash", [Bad, NoNode, NoNode, Bad, Bad, NoNode]),
        ("/a//b", [NoNode, NoNode, NoNode, Bad, NoNode, NoNode]),
        ("/a/", [NoNode, NoNode, NoNode, Bad, NoNode, NoNode]),
        ("/a/./b", [NoNode, NoNode, NoNode, Bad, NoNode, NoNode]),
        ("/a/../b", [NoNode, NoNode, NoNode, Bad, NoNode, NoNode]),
        ("/a\0b", [Bad, NoNode, Bad, Bad, Bad, NoNode]),
        (
            "/zookeeper/quota/x/",
            [NoNode, NoNode, NoNode, Bad, NoNode, NoNode],
        ),
    ];
    for (path, expected) in table {
        let requests = [
            Request::Create(CreateRequest {
                path: path.into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
            Request::GetData(GetDataRequest {
                path: path.into(),
                watch: false,
            }),
            Request::Exists(ExistsRequest {
                path: path.into(),
                watch: false,
            }),
            Request::SetData(SetDataRequest {
                path: path.into(),
                data: None,
                version: -1,
            }),
            Request::Delete(DeleteRequest {
                path: path.into(),
                version: -1,
            }),
            Request::GetChildren(GetChildrenRequest {
                path: path.into(),
                watch: false,
            }),
        ];
        for (request, want) in requests.into_iter().zip(expected) {
            let op = request.opcode();
            let got = c.call(request).await.err().unwrap_or(ErrorCode::Ok);
            assert_eq!(got, want, "{op:?} {path:?}");
        }
    }
    // The connection that sent them still works, and so does everyone else's.
    c.create("/after", b"", CreateMode::Persistent)
        .await
        .unwrap();
    healthy(&server).await;
    other.set("/keep", b"safe", -1).await.unwrap();
    let event = other.next_event().await.expect("the watch still fires");
    assert_eq!(event.path, "/keep");
}
