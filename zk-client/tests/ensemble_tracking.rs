//! The client follows the ensemble (Curator's `EnsembleTracker`, ZooKeeper's
//! `updateServerList`), against a 3-member ensemble of ours: a client given one member
//! learns the others from `/zookeeper/config`; a reconfig that removes a member takes it
//! out of the clients' lists; and `update_server_list` moves a client whose server is
//! no longer listed, with the same session.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use zk_client::{Client, CreateMode, Error, SessionState};
use zk_server::testing::TestingCluster;

const WAIT: Duration = Duration::from_secs(30);

/// Logs to the test's output when RUST_LOG is set.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

async fn connect(connect: &str, follow: bool) -> Client {
    init_logging();
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .follow_ensemble(follow)
        .connect()
        .await
        .expect("connect to the ensemble")
}

/// Polls `done` until it holds, failing after [`WAIT`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn addr(cluster: &TestingCluster, id: u64) -> String {
    cluster.client_addr(id).expect("a member").to_string()
}

fn id_of(cluster: &TestingCluster, server: &str) -> u64 {
    cluster
        .ids()
        .into_iter()
        .find(|id| addr(cluster, *id) == server)
        .unwrap_or_else(|| panic!("{server} is no member"))
}

fn set(hosts: Vec<String>) -> BTreeSet<String> {
    hosts.into_iter().collect()
}

/// The member a client is on once everything it asked before has been answered (a
/// move decided before goes first: requests wait for it).
async fn settled_on(cluster: &TestingCluster, zk: &Client) -> u64 {
    tokio::time::timeout(WAIT, zk.sync("/"))
        .await
        .expect("sync in time")
        .expect("sync");
    let server = zk.connected_server().expect("connected");
    id_of(cluster, &server)
}

/// Every state transition already seen, without waiting.
fn seen(states: &mut zk_client::StateChanges) -> Vec<SessionState> {
    std::iter::from_fn(|| states.next().now_or_never().flatten()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_given_one_member_learns_the_others_and_survives_its_loss() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let first = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let only = addr(&cluster, first);
    let all: BTreeSet<String> = cluster.ids().iter().map(|id| addr(&cluster, *id)).collect();

    let zk = connect(&only, true).await;
    let pinned = connect(&only, false).await;
    until("the client learns every member", || {
        set(zk.servers()) == all
    })
    .await;
    // (It may have moved meanwhile: with probability 2/3, to one of the two others.)
    let on = settled_on(&cluster, &zk).await;
    let session = zk.session_id();
    zk.create("/eph")
        .mode(CreateMode::Ephemeral)
        .await
        .expect("an ephemeral");
    // A client that does not follow keeps its one server.
    pinned.sync("/").await.unwrap();
    assert_eq!(pinned.servers(), vec![only.clone()]);
    assert_eq!(pinned.connected_server(), Some(only.clone()));
    pinned.close().await;

    cluster.stop(on).await;
    let gone = addr(&cluster, on);
    until("the client is on another member", || {
        zk.state() == SessionState::Connected && zk.connected_server().is_some_and(|s| s != gone)
    })
    .await;
    assert_eq!(zk.session_id(), session, "the same session");
    let eph = tokio::time::timeout(WAIT, zk.retry(|| zk.exists("/eph")))
        .await
        .expect("exists in time")
        .expect("exists");
    assert!(eph.is_some(), "the session's ephemeral is still there");
    assert_eq!(set(zk.servers()), all, "a stopped member stays listed");
    zk.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconfig_removing_a_clients_member_moves_it_and_leaves_the_others_in_place() {
    let super_digest = zk_server::acl::digest("super:secret");
    let mut cluster = TestingCluster::start_configured(3, 0, |c| {
        c.reconfig_enabled = true;
        c.super_digest = Some(super_digest.clone());
    })
    .await
    .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let all = cluster.connect_string();
    // A following client on a follower (the member to remove: a leader removing itself
    // is another story), and another on a member that stays. Clients start on a random
    // member of the connect string; the tracker reads the same members and stays.
    let mut on_leaving = None;
    for _ in 0..30 {
        let zk = connect(&all, true).await;
        let on = settled_on(&cluster, &zk).await;
        if on != leader {
            on_leaving = Some((zk, on));
            break;
        }
        zk.close().await;
    }
    let (zk, leaving) = on_leaving.expect("a client on a follower");
    let mut staying = None;
    for _ in 0..30 {
        let other = connect(&all, true).await;
        let on = settled_on(&cluster, &other).await;
        if on != leaving {
            staying = Some((other, on));
            break;
        }
        other.close().await;
    }
    let (other, other_on) = staying.expect("a client on another member");
    let session = zk.session_id();
    zk.create("/eph")
        .mode(CreateMode::Ephemeral)
        .await
        .expect("an ephemeral");
    let mut other_states = other.state_changes();

    let admin = connect(&addr(&cluster, leader), false).await;
    admin.add_auth("digest", b"super:secret").await.unwrap();
    let (config, _) = admin
        .reconfig(None, Some(&leaving.to_string()), None, None)
        .await
        .expect("the reconfig");
    let config = String::from_utf8(config).unwrap();
    assert!(!config.contains(&format!("server.{leaving}=")), "{config}");
    let remaining: BTreeSet<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leaving)
        .map(|id| addr(&cluster, id))
        .collect();

    until(
        "the client left the removed member and lists the others only",
        || {
            zk.state() == SessionState::Connected
                && zk
                    .connected_server()
                    .is_some_and(|s| remaining.contains(&s))
                && set(zk.servers()) == remaining
        },
    )
    .await;
    assert_eq!(zk.session_id(), session, "the same session");
    let eph = tokio::time::timeout(WAIT, zk.retry(|| zk.exists("/eph")))
        .await
        .expect("exists in time")
        .expect("exists");
    assert!(eph.is_some(), "the session's ephemeral is still there");

    // The list shrank and the other client's member is in it: it stays, connected.
    until("the other client drops the removed member", || {
        set(other.servers()) == remaining
    })
    .await;
    other.sync("/").await.unwrap();
    assert_eq!(
        other.connected_server(),
        Some(addr(&cluster, other_on)),
        "the other client stayed"
    );
    assert_eq!(seen(&mut other_states), vec![], "no reconnection");

    zk.close().await;
    other.close().await;
    admin.close().await;
    cluster.stop(leaving).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_server_list_moves_a_client_whose_member_is_not_listed() {
    let cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let ids = cluster.ids();
    let a = addr(&cluster, ids[0]);
    let zk = connect(&a, false).await;
    let session = zk.session_id();
    zk.create("/eph")
        .mode(CreateMode::Ephemeral)
        .await
        .expect("an ephemeral");
    let mut states = zk.state_changes();

    // The same list: nothing to do.
    assert!(!zk.update_server_list(&a).await.unwrap());
    assert!(matches!(
        zk.update_server_list(" , ").await,
        Err(Error::BadArguments(_))
    ));
    assert_eq!(zk.servers(), vec![a.clone()]);

    // The client's member is not in the new list: it moves (a chroot is ignored).
    let others: BTreeSet<String> = ids[1..].iter().map(|id| addr(&cluster, *id)).collect();
    let list = others.iter().cloned().collect::<Vec<_>>().join(",");
    assert!(zk
        .update_server_list(&format!("{list}/ignored"))
        .await
        .unwrap());
    assert_eq!(set(zk.servers()), others);
    until("the client is on a listed member", || {
        zk.state() == SessionState::Connected
            && zk.connected_server().is_some_and(|s| others.contains(&s))
    })
    .await;
    assert_eq!(zk.session_id(), session, "the same session");
    assert!(zk.exists("/eph").await.unwrap().is_some());
    assert_eq!(
        seen(&mut states),
        vec![SessionState::Disconnected, SessionState::Connected]
    );
    assert!(
        cluster.is_running(ids[0]),
        "the member left was not stopped"
    );

    // Down to the member it is on: the list shrank with it in, so it stays.
    let on = zk.connected_server().unwrap();
    assert!(!zk.update_server_list(&on).await.unwrap());
    zk.sync("/").await.unwrap();
    assert_eq!(zk.connected_server(), Some(on.clone()));
    assert_eq!(zk.servers(), vec![on]);
    assert_eq!(seen(&mut states), vec![]);
    zk.close().await;
    cluster.shutdown().await;
}

/// The tracker holds the client weakly: dropping the last handle of a following client
/// still closes its session (its ephemerals go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_client_dropped_closes_its_session() {
    let cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let all: BTreeSet<String> = cluster.ids().iter().map(|id| addr(&cluster, *id)).collect();
    let zk = connect(&addr(&cluster, cluster.ids()[0]), true).await;
    until("the client learns every member", || {
        set(zk.servers()) == all
    })
    .await;
    zk.create("/eph")
        .mode(CreateMode::Ephemeral)
        .await
        .expect("an ephemeral");
    let observer = connect(&cluster.connect_string(), false).await;
    assert!(observer.exists("/eph").await.unwrap().is_some());
    drop(zk);
    // Well within the 10 s session timeout: closed, not expired.
    let deadline = Instant::now() + Duration::from_secs(3);
    while observer.exists("/eph").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the dropped client's session lives on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    observer.close().await;
    cluster.shutdown().await;
}
