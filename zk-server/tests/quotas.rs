//! Hard quotas (`zookeeper.enforceQuota`) on a running server, judged as Apache
//! ZooKeeper 3.8.0 judges them: each limit only when its dimension changes (checked
//! side by side on Apache ZooKeeper 3.8.0 with the same quota nodes).

mod common;

use common::RawClient;
use zk_proto::*;
use zk_server::config::ServerConfig;
use zk_server::testing::{test_config, TestingServer};

/// What zkCli.sh's `setquota` writes: the limits node, then a stats node.
async fn set_quota(c: &mut RawClient, root: &str, limits: &str) {
    let mut path = String::from("/zookeeper/quota");
    for part in root.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        let _ = c.create(&path, b"", CreateMode::Persistent).await;
    }
    c.create(
        &format!("{path}/zookeeper_limits"),
        limits.as_bytes(),
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    c.create(
        &format!("{path}/zookeeper_stats"),
        b"count=0,bytes=0",
        CreateMode::Persistent,
    )
    .await
    .unwrap();
}

async fn enforcing_server() -> (tempfile::TempDir, TestingServer) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.enforce_quota = true;
    let server = TestingServer::start_with(config).await.unwrap();
    (dir, server)
}

#[tokio::test]
async fn a_create_past_a_hard_count_limit_is_quota_exceeded() {
    let (_dir, server) = enforcing_server().await;
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/q", b"", CreateMode::Persistent).await.unwrap();
    set_quota(
        &mut c,
        "/q",
        "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
    )
    .await;
    c.create("/q/a", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(
        c.create("/q/b", b"", CreateMode::Persistent).await,
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(c.exists("/q/b", false).await, Err(ErrorCode::NoNode));
    // A soft limit alone never refuses.
    c.create("/s", b"", CreateMode::Persistent).await.unwrap();
    set_quota(
        &mut c,
        "/s",
        "count=1,bytes=1=;byteHardLimit=-1;countHardLimit=-1",
    )
    .await;
    c.create("/s/a", b"xyz", CreateMode::Persistent)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_set_data_past_a_hard_byte_limit_is_quota_exceeded() {
    let (_dir, server) = enforcing_server().await;
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/r", b"abc", CreateMode::Persistent)
        .await
        .unwrap();
    set_quota(
        &mut c,
        "/r",
        "count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=-1",
    )
    .await;
    assert_eq!(
        c.set("/r", b"abcde", -1).await,
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        c.get("/r", false).await.unwrap().0.as_deref(),
        Some(&b"abc"[..])
    );
    // Quota before version, as PrepRequestProcessor checks them.
    assert_eq!(
        c.set("/r", b"abcde", 7).await,
        Err(ErrorCode::QuotaExceeded)
    );
    c.set("/r", b"abcd", -1).await.unwrap();
    // A create with data past the limit is refused, an empty one is not.
    assert_eq!(
        c.create("/r/x", b"z", CreateMode::Persistent).await,
        Err(ErrorCode::QuotaExceeded)
    );
    c.create("/r/empty", b"", CreateMode::Persistent)
        .await
        .unwrap();
}

#[tokio::test]
async fn each_limit_is_checked_only_when_its_dimension_changes() {
    let (_dir, server) = enforcing_server().await;
    let mut c = RawClient::connect(server.addr()).await;
    for p in ["/q", "/q/a", "/q/b", "/q/c"] {
        c.create(p, b"", CreateMode::Persistent).await.unwrap();
    }
    // 4 nodes under a limit of 2: already over.
    set_quota(
        &mut c,
        "/q",
        "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
    )
    .await;
    c.set("/q/a", b"zz", -1)
        .await
        .expect("setData does not change the count: accepted, as by ZooKeeper 3.8");
    assert_eq!(
        c.create("/q/d", b"", CreateMode::Persistent).await,
        Err(ErrorCode::QuotaExceeded)
    );
    // 5 bytes under a limit of 2: already over.
    c.create("/r", b"abcde", CreateMode::Persistent)
        .await
        .unwrap();
    set_quota(
        &mut c,
        "/r",
        "count=-1,bytes=-1=;byteHardLimit=2;countHardLimit=-1",
    )
    .await;
    c.create("/r/x", b"", CreateMode::Persistent)
        .await
        .expect("an empty create does not change the bytes: accepted");
    c.set("/r", b"vwxyz", -1)
        .await
        .expect("same length: accepted");
    assert_eq!(
        c.set("/r", b"abcd", -1).await,
        Err(ErrorCode::QuotaExceeded),
        "shrinking but still over the limit is refused, as by ZooKeeper 3.8"
    );
    c.set("/r", b"ab", -1).await.unwrap();
}

#[tokio::test]
async fn the_zoo_cfg_key_turns_enforcement_on_and_its_absence_leaves_it_off() {
    for (line, enforced) in [
        ("zookeeper.enforceQuota=true\n", true),
        ("enforceQuota=true\n", true),
        ("", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::parse(&format!(
            "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n{line}",
            dir.path().display()
        ))
        .unwrap();
        let server = TestingServer::start_with(config).await.unwrap();
        let mut c = RawClient::connect(server.addr()).await;
        c.create("/q", b"", CreateMode::Persistent).await.unwrap();
        set_quota(
            &mut c,
            "/q",
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1",
        )
        .await;
        let result = c.create("/q/a", b"", CreateMode::Persistent).await;
        if enforced {
            assert_eq!(result, Err(ErrorCode::QuotaExceeded), "{line:?}");
        } else {
            assert_eq!(result.as_deref(), Ok("/q/a"), "{line:?}");
        }
    }
}
