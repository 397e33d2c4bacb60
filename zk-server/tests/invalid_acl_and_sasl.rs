//! Answers compared with Apache ZooKeeper 3.8.0 request by request: which ACLs are
//! InvalidACL (create and setACL), and the answer to a sasl request on a server
//! without SASL.

mod common;

use bytes::{Bytes, BytesMut};
use common::RawClient;
use zk_proto::frame::write_frame;
use zk_proto::*;
use zk_server::testing::TestingServer;

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

/// Each ACL list with ZooKeeper 3.8.0's answer to a create carrying it (a server with
/// its default providers, ip and digest; no super digest; the session unauthenticated).
fn cases() -> Vec<(&'static str, Vec<Acl>, ErrorCode)> {
    use ErrorCode::{InvalidAcl, Ok};
    vec![
        ("empty list", vec![], InvalidAcl),
        ("unknown scheme", vec![acl(31, "foo", "bar")], InvalidAcl),
        (
            "world, not anyone",
            vec![acl(31, "world", "nobody")],
            InvalidAcl,
        ),
        ("world anyone", vec![acl(31, "world", "anyone")], Ok),
        (
            "digest without a colon",
            vec![acl(31, "digest", "nocolon")],
            InvalidAcl,
        ),
        (
            "digest with two colons",
            vec![acl(31, "digest", "u:a:b")],
            InvalidAcl,
        ),
        ("digest", vec![acl(31, "digest", "u:abc")], Ok),
        (
            "ip out of range",
            vec![acl(31, "ip", "300.1.1.1")],
            InvalidAcl,
        ),
        (
            "ip with bad bits",
            vec![acl(31, "ip", "10.0.0.0/99")],
            InvalidAcl,
        ),
        (
            "ip as a host name",
            vec![acl(31, "ip", "localhost")],
            InvalidAcl,
        ),
        ("ip network", vec![acl(31, "ip", "10.0.0.0/8")], Ok),
        (
            "auth without authentication",
            vec![acl(31, "auth", "")],
            InvalidAcl,
        ),
        ("no permissions", vec![acl(0, "world", "anyone")], Ok),
        (
            "unknown permission bits",
            vec![acl(99, "world", "anyone")],
            Ok,
        ),
        (
            "one good, one bad",
            vec![acl(31, "world", "anyone"), acl(31, "foo", "x")],
            InvalidAcl,
        ),
        (
            "sasl without a provider",
            vec![acl(31, "sasl", "user")],
            InvalidAcl,
        ),
        (
            "x509 without a provider",
            vec![acl(31, "x509", "CN=a")],
            InvalidAcl,
        ),
        ("super", vec![acl(31, "super", "x")], InvalidAcl),
    ]
}

#[tokio::test]
async fn creates_with_invalid_acls_are_refused_as_zookeeper_refuses_them() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    for (i, (what, acl, expected)) in cases().into_iter().enumerate() {
        let path = format!("/acl{i}");
        let result = c
            .call(Request::Create(CreateRequest {
                path: path.clone(),
                data: None,
                acl,
                flags: 0,
            }))
            .await;
        match expected {
            ErrorCode::Ok => assert!(result.is_ok(), "{what}: {result:?}"),
            code => {
                assert_eq!(result, Err(code), "{what}");
                assert_eq!(
                    c.exists(&path, false).await,
                    Err(ErrorCode::NoNode),
                    "{what}"
                );
            }
        }
    }
    // InvalidACL comes before NoNode: the parent is looked up after the ACL is fixed up.
    let result = c
        .call(Request::Create(CreateRequest {
            path: "/missing/child".into(),
            data: None,
            acl: vec![],
            flags: 0,
        }))
        .await;
    assert_eq!(result, Err(ErrorCode::InvalidAcl));
}

#[tokio::test]
async fn set_acl_with_invalid_acls_is_refused_and_changes_nothing() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/sa", b"", CreateMode::Persistent).await.unwrap();
    for (what, acl, expected) in cases() {
        if expected == ErrorCode::Ok {
            continue;
        }
        let result = c
            .call(Request::SetAcl(SetAclRequest {
                path: "/sa".into(),
                acl,
                version: -1,
            }))
            .await;
        assert_eq!(result, Err(expected), "{what}");
    }
    assert_eq!(c.exists("/sa", false).await.unwrap().aversion, 0);
    // On a missing node too: the ACL is judged first.
    let result = c
        .call(Request::SetAcl(SetAclRequest {
            path: "/nonexistent".into(),
            acl: vec![],
            version: -1,
        }))
        .await;
    assert_eq!(result, Err(ErrorCode::InvalidAcl));
}

#[tokio::test]
async fn sasl_without_sasl_is_answered_ok_with_a_null_token_and_the_session_goes_on() {
    // ZooKeeper 3.8.0 (no SASL configured) answers a GetSASLRequest with
    // ReplyHeader{xid, zxid 0, err 0} and SetSASLResponse{token: null}: the int -1.
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/before", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| {
        RequestHeader::new(41, OpCode::Sasl).write(w);
        GetSaslRequest {
            token: Bytes::from_static(b"token"),
        }
        .write(w);
    });
    c.send_raw(&out).await;
    let frame = c.recv_frame().await.expect("a reply to sasl");
    assert_eq!(
        &frame[..],
        &[
            0, 0, 0, 41, // xid
            0, 0, 0, 0, 0, 0, 0, 0, // zxid 0
            0, 0, 0, 0, // Ok
            0xff, 0xff, 0xff, 0xff, // token: null
        ][..]
    );
    assert!(
        c.exists("/before", false).await.is_ok(),
        "the connection and session go on"
    );
}
