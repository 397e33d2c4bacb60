//! `PersistentNode` against our server and Apache ZooKeeper 3.8: the node is made once
//! connected, made again after someone deletes it and after its session expires (the
//! client renews it), carries the latest data, and is deleted on close.

use std::time::Duration;

use zk_client::Client;
use zk_recipes::{NodeMode, PersistentNode};
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
        .expect("connect")
}

/// Polls until `path` holds `data` owned by `owner`'s session as it is at that poll
/// (`None`: persistent). Read each time: on a loaded machine a 2 s session may expire
/// and be renewed while we wait, and the node then belongs to the new session.
async fn until_there(observer: &Client, path: &str, data: &[u8], owner: Option<&Client>) -> i64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = observer.get_data(path).await;
        let want = owner.map_or(0, Client::session_id);
        if let Ok((d, stat)) = &seen {
            if d == data && stat.ephemeral_owner == want {
                return stat.czxid;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never came back as {:?} owned by {want:#x}; last seen: {:?}",
            String::from_utf8_lossy(data),
            seen.map(|(d, s)| (
                String::from_utf8_lossy(&d).into_owned(),
                format!("{:#x}", s.ephemeral_owner)
            ))
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_node_on_ours() {
    let server = TestingServer::start().await.unwrap();
    scenarios(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_node_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    scenarios(&server.connect_string()).await;
}

async fn scenarios(connect: &str) {
    let observer = client(connect).await;
    // Ephemeral, through a proxy we cut to expire its session.
    let proxy = Proxy::start(connect.split(',').next().unwrap().to_string()).await;
    let zk = client(&proxy.addr.to_string()).await;
    let node = PersistentNode::new(&zk, "/pn/svc/host-1", NodeMode::Ephemeral, b"v1");
    node.start();
    assert!(node.wait_for_initial_create(WAIT).await);
    assert_eq!(node.actual_path().as_deref(), Some("/pn/svc/host-1"));
    let first = until_there(&observer, "/pn/svc/host-1", b"v1", Some(&zk)).await;
    observer.delete("/pn/svc/host-1", None).await.unwrap();
    let second = until_there(&observer, "/pn/svc/host-1", b"v1", Some(&zk)).await;
    assert!(second > first, "made again after a delete");
    node.set_data(b"v2").await.unwrap();
    until_there(&observer, "/pn/svc/host-1", b"v2", Some(&zk)).await;
    let old_session = zk.session_id();
    proxy.cut();
    // Gone with the session...
    let deadline = tokio::time::Instant::now() + WAIT;
    while observer.exists("/pn/svc/host-1").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.restore();
    // ... and back with the new one, with the latest data.
    let deadline = tokio::time::Instant::now() + WAIT;
    while zk.session_id() == old_session || !zk.state().is_connected() {
        assert!(tokio::time::Instant::now() < deadline, "a new session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until_there(&observer, "/pn/svc/host-1", b"v2", Some(&zk)).await;
    node.close().await;
    assert!(observer.exists("/pn/svc/host-1").await.unwrap().is_none());

    // Ephemeral-sequential: protected, a new node after a delete.
    let seq = PersistentNode::new(
        &observer,
        "/pn/seq/member-",
        NodeMode::EphemeralSequential,
        b"s",
    );
    seq.start();
    assert!(seq.wait_for_initial_create(WAIT).await);
    let path = seq.actual_path().unwrap();
    let name = path.rsplit('/').next().unwrap();
    assert!(
        name.starts_with("_c_") && name.contains("-member-"),
        "{name}"
    );
    observer.delete(&path, None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let children = observer.get_children("/pn/seq").await.unwrap_or_default();
        if children.len() == 1 && format!("/pn/seq/{}", children[0]) != path {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "made again: {children:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seq.close().await;

    // Persistent over an existing node: kept, with our data.
    observer.create("/pn/conf").data(b"theirs").await.unwrap();
    let conf = PersistentNode::new(&observer, "/pn/conf", NodeMode::Persistent, b"ours");
    conf.start();
    assert!(conf.wait_for_initial_create(WAIT).await);
    until_there(&observer, "/pn/conf", b"ours", None).await;
    conf.close().await;
    assert!(observer.exists("/pn/conf").await.unwrap().is_none());
}
