//! `GroupMember` against our server and Apache ZooKeeper 3.8: every member sees the
//! whole group with payloads, joins, updates and departures arrive as events, a
//! member whose session expired (cut off by a proxy) rejoins with a new session, and
//! a deleted member node is recreated.

use std::time::Duration;

use futures::StreamExt;
use zk_client::Client;
use zk_recipes::{GroupMember, MemberEvent};
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);
const DIR: &str = "/group/workers";

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
        .expect("connect")
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next event, waiting at most `WAIT`.
async fn next(
    changes: &mut (impl futures::Stream<Item = MemberEvent> + Unpin),
    step: u32,
) -> MemberEvent {
    tokio::time::timeout(WAIT, changes.next())
        .await
        .unwrap_or_else(|_| panic!("step {step}: no event within {WAIT:?}"))
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_on_ours() {
    let server = TestingServer::start().await.unwrap();
    membership(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    membership(&server.connect_string()).await;
}

async fn membership(connect: &str) {
    let (za, zb) = (client(connect).await, client(connect).await);
    let a = GroupMember::new(&za, DIR, "a", b"10.0.0.1");
    a.start();
    let b = GroupMember::new(&zb, DIR, "b", b"10.0.0.2");
    b.start();
    a.ready().await;
    b.ready().await;
    eventually("both see both", || {
        a.members().len() == 2 && b.members().len() == 2
    })
    .await;
    assert_eq!(a.members()["b"], b"10.0.0.2");
    let mut changes = a.changes();

    // A third member joins through a proxy we can cut.
    let proxy = Proxy::start(connect.split(',').next().unwrap().to_string()).await;
    let zc = client(&proxy.addr.to_string()).await;
    let c = GroupMember::new(&zc, DIR, "c", b"10.0.0.3");
    c.start();
    assert_eq!(
        next(&mut changes, 1).await,
        MemberEvent::Joined("c".into(), b"10.0.0.3".to_vec())
    );
    c.set_payload(b"10.0.0.33").await.unwrap();
    assert_eq!(
        next(&mut changes, 2).await,
        MemberEvent::Updated("c".into(), b"10.0.0.33".to_vec())
    );
    // c's session expires while it is cut off; it rejoins with a new one (with the
    // payload it last set).
    let old_session = zc.session_id();
    proxy.cut();
    assert_eq!(next(&mut changes, 5).await, MemberEvent::Left("c".into()));
    proxy.restore();
    assert_eq!(
        next(&mut changes, 6).await,
        MemberEvent::Joined("c".into(), b"10.0.0.33".to_vec())
    );
    assert_ne!(zc.session_id(), old_session);
    let (_, stat) = za.get_data(&format!("{DIR}/c")).await.unwrap();
    assert_eq!(stat.ephemeral_owner, zc.session_id());
    eventually("c sees everyone again", || c.members().len() == 3).await;
    // Leaving deletes the node.
    c.close().await;
    assert_eq!(next(&mut changes, 7).await, MemberEvent::Left("c".into()));
    // Someone deletes b's node: b puts it back (a may see it go and come back, or
    // not at all if b was quicker than a's look: the stream gives net changes).
    let path_b = format!("{DIR}/b");
    let (_, before) = za.get_data(&path_b).await.unwrap();
    za.delete(&path_b, None).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match za.get_data(&path_b).await {
            Ok((data, stat)) if stat.czxid != before.czxid => {
                assert_eq!(data, b"10.0.0.2");
                assert_eq!(stat.ephemeral_owner, zb.session_id());
                break;
            }
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "b recreated");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    eventually("a sees b back", || a.members().contains_key("b")).await;
    b.close().await;
    eventually("a sees b leave", || !a.members().contains_key("b")).await;
    assert_eq!(a.members().keys().collect::<Vec<_>>(), ["a"]);
    a.close().await;
}
