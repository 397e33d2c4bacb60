//! The fault helpers of `zk_server::testing` do what their docs say, as a real
//! `zk_client::Client` sees it: a session expired by `expire_session` is `Expired` and
//! its ephemeral is gone for everyone; a session cut off by `disconnect_session(_for)`
//! is `Disconnected`, then `Connected` again with the same session and its ephemeral
//! (or `Expired`, when it was cut off for longer than its timeout); a member cut off by
//! `partition` serves no write while the others go on, and catches up once healed.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::{timeout, Instant};
use zk_client::{Client, CreateMode, EventType, SessionState};
use zk_server::role::Role;
use zk_server::testing::{TestingCluster, TestingError, TestingServer};

/// The longest any single thing is waited for.
const WAIT: Duration = Duration::from_secs(10);

/// A client of `connect` with a session timeout of `session_timeout`.
async fn client_with(connect: &str, session_timeout: Duration) -> Client {
    timeout(
        WAIT,
        Client::builder(connect)
            .session_timeout(session_timeout)
            .connect(),
    )
    .await
    .expect("connected in time")
    .expect("connected")
}

/// A client whose session outlives every test here unless it is expired on purpose.
async fn client(connect: &str) -> Client {
    client_with(connect, Duration::from_secs(30)).await
}

/// Creates `path` (the one place these tests create nodes).
async fn create(zk: &Client, path: &str, mode: CreateMode) {
    timeout(WAIT, zk.create(path).mode(mode))
        .await
        .expect("create answered in time")
        .expect("created");
}

/// Whether `path` exists, as `zk` sees it.
async fn exists(zk: &Client, path: &str) -> bool {
    timeout(WAIT, zk.exists(path))
        .await
        .expect("exists answered in time")
        .expect("exists answered")
        .is_some()
}

type States = Pin<Box<dyn Stream<Item = SessionState> + Send>>;

/// `zk`'s state changes from now on.
fn states(zk: &Client) -> States {
    Box::pin(zk.state_changes())
}

/// Reads state changes until `until` is seen (within `within`); returns every state
/// read, `until` last.
async fn states_until(
    states: &mut States,
    until: SessionState,
    within: Duration,
) -> Vec<SessionState> {
    let mut seen = Vec::new();
    let read = timeout(within, async {
        while let Some(state) = states.next().await {
            seen.push(state);
            if state == until {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(read, Ok(true), "never {until:?}; saw {seen:?}");
    seen
}

/// Waits until `check` holds, for at most `within`.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_session_on_a_server_ends_the_session_as_its_expiry_would() {
    let server = TestingServer::start().await.unwrap();
    let zk = client(&server.connect_string()).await;
    let other = client(&server.connect_string()).await;
    create(&zk, "/eph", CreateMode::Ephemeral).await;
    let (found, deleted) = other.exists_and_watch("/eph");
    assert!(found.await.unwrap().is_some());
    let mut changes = states(&zk);
    let session = zk.session_id();

    server.expire_session(session).await.unwrap();
    // Closed on the server by the time it returns.
    let core = server.server().unwrap().core().clone();
    assert!(core.db().session(session).is_none());
    assert!(core.db().tree().get("/eph").is_none());
    // The watch on the ephemeral fired; another client no longer sees it.
    let event = timeout(WAIT, deleted)
        .await
        .expect("the watch fired")
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDeleted);
    assert!(!exists(&other, "/eph").await);
    // The client lost its connection, and was told its session expired.
    let seen = states_until(&mut changes, SessionState::Expired, WAIT).await;
    assert_eq!(seen.first(), Some(&SessionState::Disconnected), "{seen:?}");
    assert_eq!(zk.state(), SessionState::Expired);
    // A session no longer there cannot be expired again.
    assert!(matches!(
        server.expire_session(session).await,
        Err(TestingError::NoSuchSession(s)) if s == session
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_session_on_a_cluster_is_agreed_by_every_member() {
    let cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    // The session is on a follower; the watcher on the leader.
    let zk = client(&cluster.client_addr(follower).unwrap().to_string()).await;
    let other = client(&cluster.client_addr(leader).unwrap().to_string()).await;
    create(&zk, "/eph", CreateMode::Ephemeral).await;
    let session = zk.session_id();
    eventually("the ephemeral reached every member", WAIT, || {
        cluster
            .ids()
            .into_iter()
            .all(|id| cluster.core(id).unwrap().db().tree().get("/eph").is_some())
    })
    .await;
    let (found, deleted) = other.exists_and_watch("/eph");
    assert!(found.await.unwrap().is_some());
    let mut changes = states(&zk);

    cluster.expire_session(session).await.unwrap();
    // Every member closed the session and deleted its ephemeral.
    for id in cluster.ids() {
        let core = cluster.core(id).unwrap();
        let db = core.db();
        assert!(db.session(session).is_none(), "member {id} has the session");
        assert!(db.tree().get("/eph").is_none(), "member {id} has the node");
    }
    let event = timeout(WAIT, deleted)
        .await
        .expect("the watch fired")
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDeleted);
    assert!(!exists(&other, "/eph").await);
    states_until(&mut changes, SessionState::Expired, WAIT).await;
    assert!(matches!(
        cluster.expire_session(session).await,
        Err(TestingError::NoSuchSession(_))
    ));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_session_drops_the_connection_and_the_session_resumes() {
    let server = TestingServer::start().await.unwrap();
    let zk = client(&server.connect_string()).await;
    let other = client(&server.connect_string()).await;
    create(&zk, "/eph", CreateMode::Ephemeral).await;
    let session = zk.session_id();

    // Dropped: the client reconnects at once with its session.
    let mut changes = states(&zk);
    assert_eq!(server.disconnect_session(session), 1);
    let seen = states_until(&mut changes, SessionState::Connected, WAIT).await;
    assert_eq!(seen.first(), Some(&SessionState::Disconnected), "{seen:?}");
    assert_eq!(zk.session_id(), session);
    assert!(exists(&zk, "/eph").await);
    assert!(exists(&other, "/eph").await);

    // Cut off for a while: refused until then, other clients served meanwhile.
    const HOLD: Duration = Duration::from_secs(2);
    let cut_at = Instant::now();
    assert_eq!(server.disconnect_session_for(session, HOLD), 1);
    states_until(&mut changes, SessionState::Disconnected, WAIT).await;
    assert!(exists(&other, "/eph").await);
    tokio::time::sleep(HOLD / 2).await;
    assert_eq!(
        zk.state(),
        SessionState::Disconnected,
        "back before its time"
    );
    let seen = states_until(&mut changes, SessionState::Connected, HOLD + WAIT).await;
    assert!(
        cut_at.elapsed() >= HOLD,
        "back after {:?}: {seen:?}",
        cut_at.elapsed()
    );
    assert!(!seen.contains(&SessionState::Expired), "{seen:?}");
    assert_eq!(zk.session_id(), session);
    assert!(exists(&zk, "/eph").await);
    assert!(exists(&other, "/eph").await);
    // Nothing to drop for a session without a connection.
    assert_eq!(server.disconnect_session(0x7777), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_off_for_longer_than_its_timeout_expires() {
    let server = TestingServer::start().await.unwrap();
    let zk = client_with(&server.connect_string(), Duration::from_millis(1500)).await;
    let other = client(&server.connect_string()).await;
    create(&zk, "/eph", CreateMode::Ephemeral).await;
    let session = zk.session_id();
    let mut changes = states(&zk);
    assert_eq!(
        server.disconnect_session_for(session, Duration::from_secs(4)),
        1
    );
    // The server expires the silent session while it is cut off.
    let core = server.server().unwrap().core().clone();
    eventually("the session expired on the server", WAIT, || {
        core.db().session(session).is_none()
    })
    .await;
    assert!(!exists(&other, "/eph").await);
    // Through again, the client learns it expired.
    let seen = states_until(&mut changes, SessionState::Expired, WAIT).await;
    assert!(!seen.contains(&SessionState::Connected), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_session_for_on_a_cluster_holds_the_session_off_every_member() {
    let cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let zk = client(&cluster.connect_string()).await;
    create(&zk, "/eph", CreateMode::Ephemeral).await;
    let session = zk.session_id();
    let mut changes = states(&zk);

    const HOLD: Duration = Duration::from_secs(2);
    let cut_at = Instant::now();
    assert_eq!(cluster.disconnect_session_for(session, HOLD), 1);
    // The client tries every member in turn; none takes it before its time.
    let seen = states_until(&mut changes, SessionState::Connected, HOLD + WAIT).await;
    assert_eq!(seen.first(), Some(&SessionState::Disconnected), "{seen:?}");
    assert!(
        cut_at.elapsed() >= HOLD,
        "back after {:?}",
        cut_at.elapsed()
    );
    assert_eq!(zk.session_id(), session);
    assert!(exists(&zk, "/eph").await);

    // Plain disconnects move it too.
    assert_eq!(cluster.disconnect_session(session), 1);
    let seen = states_until(&mut changes, SessionState::Connected, WAIT).await;
    assert_eq!(seen.first(), Some(&SessionState::Disconnected), "{seen:?}");
    assert_eq!(zk.session_id(), session);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_follower_serves_no_writes_and_catches_up_when_healed() {
    let cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let cut = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let cut_addr = cluster.client_addr(cut).unwrap().to_string();
    let others = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != cut)
        .map(|id| cluster.client_addr(id).unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let pinned = client(&cut_addr).await;
    let writer = client(&others).await;
    create(&writer, "/before", CreateMode::Persistent).await;
    let mut pinned_changes = states(&pinned);

    cluster.partition(cut);
    assert!(cluster.is_partitioned(cut));
    // It notices it lost its leader, and drops its clients.
    eventually("the partitioned member stopped following", WAIT, || {
        cluster.core(cut).unwrap().role() == Role::Looking
    })
    .await;
    states_until(&mut pinned_changes, SessionState::Disconnected, WAIT).await;
    // It takes no client, so no write through it.
    let refused = Client::builder(&cut_addr)
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await;
    assert!(refused.is_err(), "the partitioned member took a client");
    // The others take writes; the partitioned member does not get them.
    create(&writer, "/during", CreateMode::Persistent).await;
    assert!(exists(&writer, "/during").await);
    let leader_now = cluster.wait_for_leader(WAIT).await.expect("a leader");
    assert_ne!(leader_now, cut);
    assert!(cluster
        .core(cut)
        .unwrap()
        .db()
        .tree()
        .get("/during")
        .is_none());

    cluster.heal(cut);
    assert!(!cluster.is_partitioned(cut));
    eventually("the healed member caught up", WAIT, || {
        cluster
            .core(cut)
            .unwrap()
            .db()
            .tree()
            .get("/during")
            .is_some()
    })
    .await;
    // Its client is back with the same session, and reads what was written meanwhile.
    states_until(&mut pinned_changes, SessionState::Connected, WAIT).await;
    assert_eq!(pinned.state(), SessionState::Connected);
    assert!(exists(&pinned, "/during").await);
    assert_eq!(cluster.wait_for_leader(WAIT).await, Some(leader_now));
    cluster.shutdown().await;
}
