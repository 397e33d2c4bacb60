//! Read-only mode against an ensemble of ours: a client that accepts read-only service
//! is served by a member cut off from its quorum, and moves to a read-write member on
//! its own as soon as one is reachable.

mod common;

use futures::StreamExt;
use std::time::Duration;

use zk_client::{Client, SessionState};
use zk_server::role::Role;
use zk_server::testing::TestingCluster;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_moves_to_a_read_write_member_when_one_is_reachable() {
    let cluster = TestingCluster::start_configured(3, 0, |c| c.read_only_mode = true)
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let cut = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let writer = Client::connect(&cluster.client_addr(leader).unwrap().to_string())
        .await
        .unwrap();
    writer.create("/ro").data(b"v").await.unwrap();
    // The member about to be cut off has the write before it goes.
    let deadline = tokio::time::Instant::now() + WAIT;
    while cluster.core(cut).unwrap().db().tree().get("/ro").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never replicated");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The read-write member is behind a proxy that refuses connections for now.
    let proxy = common::Proxy::start(cluster.client_addr(leader).unwrap().to_string()).await;
    proxy.cut();
    cluster.isolate(cut);
    let deadline = tokio::time::Instant::now() + WAIT;
    while cluster.core(cut).unwrap().role() != Role::Looking {
        assert!(tokio::time::Instant::now() < deadline, "never cut off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cut_addr = cluster.client_addr(cut).unwrap();
    let zk = Client::builder(&format!("{cut_addr},{}", proxy.addr))
        .read_only(true)
        .connect()
        .await
        .unwrap();
    assert_eq!(zk.state(), SessionState::ConnectedReadOnly);
    assert_eq!(zk.get_data("/ro").await.unwrap().0, b"v");

    // A read-write member becomes reachable: the client finds it by itself.
    proxy.restore();
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, async {
        while zk.state() != SessionState::Connected {
            let _ = tokio::time::timeout(Duration::from_millis(50), states.next()).await;
        }
    })
    .await
    .expect("moved to the read-write member");
    assert_eq!(zk.connected_server(), Some(proxy.addr.to_string()));
    zk.create("/rw-again").await.unwrap();
    cluster.shutdown().await;
}
