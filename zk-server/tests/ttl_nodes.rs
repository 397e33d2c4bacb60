//! TTL nodes on a running server: reaped by the container checker once untouched for
//! their TTL (an exists watch sees NodeDeleted), and refused with Unimplemented unless
//! `zookeeper.extendedTypesEnabled` is set, as ZooKeeper 3.8 does.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::RawClient;
use zk_proto::*;
use zk_server::testing::{test_config, TestingServer};

fn ttl_create(path: &str, ttl: i64) -> Request {
    Request::CreateTtl(CreateTtlRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"t")),
        acl: Acl::open_unsafe(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl,
    })
}

#[tokio::test]
async fn a_ttl_node_is_reaped_and_its_exists_watch_sees_node_deleted() {
    // test_config: extended types on, containers and TTL nodes checked every 200 ms.
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    let created = Instant::now();
    match c.call(ttl_create("/ttl", 300)).await {
        Ok(Response::Create2(r)) => assert_eq!(r.path, "/ttl"),
        other => panic!("createTTL: {other:?}"),
    }
    // A TTL node with a child is kept whatever its age.
    match c.call(ttl_create("/ttl-parent", 300)).await {
        Ok(Response::Create2(_)) => {}
        other => panic!("createTTL: {other:?}"),
    }
    c.create("/ttl-parent/child", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.exists("/ttl", true).await.unwrap();
    let event = c.next_event().await.expect("a NodeDeleted event");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDeleted.code(), "/ttl")
    );
    assert!(
        created.elapsed() >= Duration::from_millis(300),
        "reaped before its TTL ran out"
    );
    assert_eq!(c.exists("/ttl", false).await, Err(ErrorCode::NoNode));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        c.exists("/ttl-parent", false).await.is_ok(),
        "a TTL node with children is not reaped"
    );
}

#[tokio::test]
async fn ttl_creates_are_unimplemented_without_extended_types() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.extended_types_enabled = false;
    let server = TestingServer::start_with(config).await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    assert_eq!(
        c.call(ttl_create("/ttl", 1000)).await,
        Err(ErrorCode::Unimplemented)
    );
    // The same in a multi: the whole multi fails on it.
    let multi = Request::Multi(MultiRequest {
        ops: vec![MultiOp::CreateTtl(CreateTtlRequest {
            path: "/ttl".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.code(),
            ttl: 1000,
        })],
    });
    match c.call(multi).await {
        Ok(Response::Multi(r)) => {
            assert_eq!(r.results, vec![OpResult::error(ErrorCode::Unimplemented)])
        }
        other => panic!("multi: {other:?}"),
    }
    assert_eq!(c.exists("/ttl", false).await, Err(ErrorCode::NoNode));
    // The session is unharmed and other node types still work.
    c.create("/plain", b"", CreateMode::Persistent)
        .await
        .unwrap();
}
