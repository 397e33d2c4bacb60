//! Sessions over the wire: negotiation, resumption, refusal, close, expiry, restart.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect_request, RawClient};
use zk_proto::*;
use zk_server::testing::TestingServer;

#[tokio::test]
async fn session_timeout_is_clamped_to_the_configured_bounds() {
    let server = TestingServer::start().await.unwrap();
    // test_config: min 1000, max 60000.
    for (asked, granted) in [(10, 1000), (30000, 30000), (1_000_000, 60000)] {
        let (_, r) = RawClient::handshake(server.addr(), connect_request(asked))
            .await
            .unwrap();
        assert_eq!(r.timeout, granted, "asked {asked}");
        assert_eq!(r.passwd.len(), 16);
        assert_eq!(r.read_only, Some(false));
    }
}

#[tokio::test]
async fn an_old_client_without_the_readonly_flag_gets_an_answer_without_it() {
    let server = TestingServer::start().await.unwrap();
    let mut req = connect_request(30000);
    req.read_only = None;
    let (_, r) = RawClient::handshake(server.addr(), req).await.unwrap();
    assert_eq!(r.read_only, None);
    assert!(r.session_id != 0);
}

#[tokio::test]
async fn a_session_resumes_with_its_password_and_keeps_its_ephemerals() {
    let server = TestingServer::start().await.unwrap();
    let mut a = RawClient::connect(server.addr()).await;
    a.create("/eph", b"x", CreateMode::Ephemeral).await.unwrap();
    let mut resume = connect_request(30000);
    resume.session_id = a.session_id;
    resume.passwd = a.passwd.clone();
    resume.last_zxid_seen = a.last_zxid;
    let (mut b, r) = RawClient::handshake(server.addr(), resume).await.unwrap();
    assert_eq!(
        (r.session_id, r.passwd.clone()),
        (a.session_id, a.passwd.clone())
    );
    assert_eq!(
        b.exists("/eph", false).await.unwrap().ephemeral_owner,
        b.session_id
    );
    // As in ZooKeeper, the connection the session left is closed.
    assert!(a.closed().await);
}

#[tokio::test]
async fn a_wrong_password_is_answered_with_an_expired_session_and_a_close() {
    let server = TestingServer::start().await.unwrap();
    let a = RawClient::connect(server.addr()).await;
    let mut resume = connect_request(30000);
    resume.session_id = a.session_id;
    resume.passwd = Bytes::from_static(&[7; 16]);
    let (mut b, r) = RawClient::handshake(server.addr(), resume).await.unwrap();
    assert_eq!((r.timeout, r.session_id), (0, 0));
    assert_eq!(r.passwd, Bytes::from_static(&[0; 16]));
    assert!(b.closed().await);
}

#[tokio::test]
async fn a_client_that_has_seen_a_later_zxid_is_refused_without_an_answer() {
    let server = TestingServer::start().await.unwrap();
    let mut req = connect_request(30000);
    req.last_zxid_seen = 1 << 40;
    assert!(RawClient::handshake(server.addr(), req).await.is_none());
}

#[tokio::test]
async fn closing_a_session_removes_its_ephemerals_and_closes_the_connection() {
    let server = TestingServer::start().await.unwrap();
    let mut a = RawClient::connect(server.addr()).await;
    let mut watcher = RawClient::connect(server.addr()).await;
    a.create("/e", b"", CreateMode::Ephemeral).await.unwrap();
    watcher.exists("/e", true).await.unwrap();
    assert_eq!(a.call(Request::CloseSession).await, Ok(Response::Empty));
    assert!(a.closed().await);
    let event = watcher.next_event().await.unwrap();
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDeleted.code(), "/e")
    );
    assert_eq!(watcher.exists("/e", false).await, Err(ErrorCode::NoNode));
}

#[tokio::test]
async fn an_expired_session_loses_its_ephemerals_and_cannot_resume() {
    let server = TestingServer::start().await.unwrap();
    let mut a = RawClient::connect(server.addr()).await;
    let mut other = RawClient::connect(server.addr()).await;
    a.create("/gone", b"", CreateMode::Ephemeral).await.unwrap();
    other.exists("/gone", true).await.unwrap();
    server.expire_session(a.session_id).await.unwrap();
    let event = other.next_event().await.unwrap();
    assert_eq!(event.event_type, EventType::NodeDeleted.code());
    assert!(
        a.closed().await,
        "the expired session's connection is closed"
    );
    let mut resume = connect_request(30000);
    resume.session_id = a.session_id;
    resume.passwd = a.passwd.clone();
    let (_, r) = RawClient::handshake(server.addr(), resume).await.unwrap();
    assert_eq!(r.timeout, 0);
}

#[tokio::test]
async fn a_silent_client_expires_after_its_timeout() {
    let server = TestingServer::start().await.unwrap();
    let (mut quiet, r) = RawClient::handshake(server.addr(), connect_request(1000))
        .await
        .unwrap();
    assert_eq!(r.timeout, 1000);
    quiet
        .create("/quiet", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut observer = RawClient::connect(server.addr()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match observer.exists("/quiet", false).await {
            Err(ErrorCode::NoNode) => break,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("ephemeral still there after 10 s: {other:?}"),
        }
    }
}

#[tokio::test]
async fn pings_keep_a_session_alive_and_answer_with_the_last_zxid() {
    let server = TestingServer::start().await.unwrap();
    let (mut c, _) = RawClient::handshake(server.addr(), connect_request(1000))
        .await
        .unwrap();
    c.create("/alive", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    let created_zxid = c.last_zxid;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let xid = c.send(&Request::Ping).await;
        let (header, result) = c.reply(xid, OpCode::Ping).await.unwrap();
        assert_eq!(header.xid, zk_proto::xid::PING);
        assert!(header.zxid >= created_zxid);
        assert_eq!(result, Ok(Response::Empty));
    }
    assert!(c.exists("/alive", false).await.is_ok());
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart() {
    let mut server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/durable", b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    for i in 0..50 {
        c.create(&format!("/durable/n{i}"), b"x", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let stat = c.set("/durable", b"v2", 0).await.unwrap();
    drop(c);
    server.restart().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    let (data, after) = c.get("/durable", false).await.unwrap();
    assert_eq!(data.as_deref(), Some(&b"v2"[..]));
    assert_eq!(after, stat);
    assert_eq!(c.children("/durable", false).await.unwrap().len(), 50);
}

#[tokio::test]
async fn connections_beyond_max_client_cnxns_from_one_address_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = zk_server::testing::test_config(dir.path());
    config.max_client_cnxns = 2;
    let server = TestingServer::start_with(config).await.unwrap();
    let _a = RawClient::connect(server.addr()).await;
    let _b = RawClient::connect(server.addr()).await;
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut third = RawClient::from_stream(stream);
    assert!(third.closed().await);
}

#[tokio::test]
async fn snapshots_are_taken_the_log_is_purged_and_restart_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = zk_server::testing::test_config(dir.path());
    config.snap_count = 50;
    let mut server = TestingServer::start_with(config).await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    for i in 0..400 {
        c.create(
            &format!("/s{i}"),
            format!("{i}").as_bytes(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    }
    let snapshots = dir.path().join("snapshots");
    let log = dir.path().join("log");
    // Snapshots are built in the background, each written beside the last before the
    // last is removed: give the newest a moment to replace the others.
    let kept = || {
        std::fs::read_dir(&snapshots).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                .count()
        })
    };
    let mut waited = 0;
    while kept() != 1 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(kept(), 1, "only the newest snapshot is kept");
    assert!(
        log.join("raft-purged").exists(),
        "the log behind the snapshot was purged"
    );
    drop(c);
    server.restart().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    for i in (0..400).step_by(37) {
        let (data, _) = c.get(&format!("/s{i}"), false).await.unwrap();
        assert_eq!(data.as_deref(), Some(format!("{i}").as_bytes()));
    }
    assert_eq!(c.children("/", false).await.unwrap().len(), 401);
}
