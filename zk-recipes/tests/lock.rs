//! `Lock` against our server (standalone and a 3-member ensemble) and, for the
//! scenarios that need no server control, Apache ZooKeeper 3.8: reentrancy, mutual
//! exclusion under contention with an independent monitor, no herd effect, cancel
//! safety, fencing tokens, and the lease through session expiry and member failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{LeaseState, Lock};
use zk_server::testing::{four_letter_word, TestingCluster, TestingServer};
use zk_tests::apache::ApacheZk;

const WAIT: Duration = Duration::from_secs(20);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_reentrant_and_released_as_often_as_acquired() {
    let server = TestingServer::start().await.unwrap();
    reentrancy(&server.connect_string()).await;
    // Parents were made as containers: the server reaps them once empty (ours checks
    // every 200 ms in tests; Apache ZooKeeper every minute).
    let zk = client(&server.connect_string()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while zk.exists("/app/locks/a").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lock's parent was not a container"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_reentrant_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    reentrancy(&server.connect_string()).await;
}

async fn reentrancy(connect: &str) {
    let zk = client(connect).await;
    let mut lock = Lock::new(&zk, "/app/locks/a");
    assert!(!lock.is_acquired());
    let first = lock.acquire().await.unwrap();
    let again = lock.acquire().await.unwrap();
    assert_eq!(first.path(), again.path());
    assert_eq!(first.fencing_token(), again.fencing_token());
    let nodes = lock.participants().await.unwrap();
    assert_eq!(nodes.len(), 1, "reentry makes no second node");
    // Curator's layout: a protected ephemeral-sequential `lock-` node.
    assert!(
        nodes[0].starts_with("_c_") && nodes[0].contains("-lock-"),
        "{nodes:?}"
    );
    let owner = zk
        .exists(&format!("/app/locks/a/{}", nodes[0]))
        .await
        .unwrap()
        .unwrap()
        .ephemeral_owner;
    assert_eq!(owner, zk.session_id());
    first.release().await.unwrap();
    assert!(lock.is_acquired());
    assert_eq!(lock.participants().await.unwrap().len(), 1);
    again.release().await.unwrap();
    assert!(!lock.is_acquired());
    assert!(lock.participants().await.unwrap().is_empty());
}

/// Tasks on several sessions take turns on one lock; a monitor outside ZooKeeper
/// sees never two of them inside at once, and every turn happened.
async fn contend(connect: &str, sessions: usize, per_session: usize, turns: u64) {
    let inside = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let zk = client(connect).await;
        for _ in 0..per_session {
            let (zk, inside, counter) = (zk.clone(), inside.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut lock = Lock::new(&zk, "/contended");
                let mut last_token = None;
                for _ in 0..turns {
                    let guard = lock.acquire().await.unwrap();
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    let token = guard.fencing_token();
                    assert!(Some(token) > last_token, "fencing tokens only grow");
                    last_token = Some(token);
                    let seen = counter.load(Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    counter.store(seen + 1, Ordering::SeqCst);
                    inside.store(false, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("contenders finish")
            .unwrap();
    }
    assert_eq!(
        counter.load(Ordering::SeqCst),
        (sessions * per_session) as u64 * turns,
        "a lost update: the lock let two through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_on_several_sessions_exclude_each_other() {
    let server = TestingServer::start().await.unwrap();
    contend(&server.connect_string(), 3, 2, 10).await;
    let zk = client(&server.connect_string()).await;
    assert!(Lock::new(&zk, "/contended")
        .participants()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_exclude_each_other_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    contend(&server.connect_string(), 3, 2, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_exclude_each_other_on_an_ensemble() {
    let cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    contend(&cluster.connect_string(), 3, 2, 8).await;
    cluster.shutdown().await;
}

/// Fifty waiters each watch only the node before theirs: one watch per waiter, no
/// node watched twice, and a release lets exactly one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_waiters_watch_only_their_predecessors() {
    let server = TestingServer::start().await.unwrap();
    no_herd(&server.connect_string(), server.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_waiters_watch_only_their_predecessors_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    no_herd(&server.connect_string(), server.addr).await;
}

async fn no_herd(connect: &str, addr: std::net::SocketAddr) {
    let zk = client(connect).await;
    let mut holder = Lock::new(&zk, "/herd");
    let held = holder.acquire().await.unwrap();
    let acquired = Arc::new(AtomicU64::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut waiters = Vec::new();
    for i in 0..50 {
        let zk = client(connect).await;
        let (acquired, release) = (acquired.clone(), release.clone());
        waiters.push(tokio::spawn(async move {
            let mut lock = Lock::new(&zk, "/herd");
            let guard = lock.acquire().await.unwrap();
            acquired.fetch_add(1, Ordering::SeqCst);
            release.notified().await;
            guard.release().await.unwrap();
            let _ = i;
        }));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let watched = loop {
        let wchp = four_letter_word(addr, "wchp").await.unwrap();
        let mut watchers: BTreeMap<String, usize> = BTreeMap::new();
        let mut path = String::new();
        for line in wchp.lines() {
            if line.starts_with('/') {
                path = line.to_string();
            } else if line.trim_start().starts_with("0x") {
                *watchers.entry(path.clone()).or_default() += 1;
            }
        }
        if watchers.len() == 50 || tokio::time::Instant::now() > deadline {
            break watchers;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        watched.len(),
        50,
        "one watched node per waiter: {watched:?}"
    );
    assert!(
        watched.values().all(|n| *n == 1),
        "a node watched twice: {watched:?}"
    );
    assert_eq!(acquired.load(Ordering::SeqCst), 0);
    held.release().await.unwrap();
    tokio::time::timeout(WAIT, async {
        while acquired.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        acquired.load(Ordering::SeqCst),
        1,
        "a release woke more than one"
    );
    // Let them all through, one by one.
    for n in 1..=50 {
        release.notify_one();
        tokio::time::timeout(WAIT, async {
            while acquired.load(Ordering::SeqCst) < (n + 1).min(50) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    }
    for w in waiters {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_or_timed_out_acquire_leaves_no_node() {
    let server = TestingServer::start().await.unwrap();
    cancel_safety(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_acquire_leaves_no_node_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    cancel_safety(&server.connect_string()).await;
}

async fn cancel_safety(connect: &str) {
    let zk = client(connect).await;
    let mut holder = Lock::new(&zk, "/cancel");
    let held = holder.acquire().await.unwrap();
    let mut other = Lock::new(&zk, "/cancel");
    assert!(other
        .try_acquire(Duration::from_millis(200))
        .await
        .unwrap()
        .is_none());
    {
        let mut dropped = Lock::new(&zk, "/cancel");
        let acquire = dropped.acquire();
        // Dropped mid-wait.
        assert!(tokio::time::timeout(Duration::from_millis(200), acquire)
            .await
            .is_err());
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while holder.participants().await.unwrap().len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an abandoned node stayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    held.release().await.unwrap();
    let taken = other.try_acquire(Duration::from_secs(5)).await.unwrap();
    taken.expect("free once released").release().await.unwrap();
}

/// The lease: Held while connected; when the holder's session expires it turns Lost,
/// its node goes, and the next contender gets the lock with a larger fencing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_holder_loses_its_lease_and_the_next_takes_over() {
    let server = TestingServer::start().await.unwrap();
    let first = client(&server.connect_string()).await;
    let second = client(&server.connect_string()).await;
    let mut lock = Lock::new(&first, "/expiring");
    let guard = lock.acquire().await.unwrap();
    let token = guard.fencing_token();
    let mut lease = guard.lease().clone();
    assert_eq!(lease.state(), LeaseState::Held);
    let mut next = Lock::new(&second, "/expiring");
    let waiting = tokio::spawn(async move { next.acquire().await.unwrap().fencing_token() });
    server.expire_session(first.session_id()).await.unwrap();
    // In doubt first (the connection goes), then lost (the server says expired).
    let mut seen = vec![];
    let mut state = LeaseState::Held;
    while state != LeaseState::Lost {
        state = tokio::time::timeout(WAIT, lease.changed_from(state))
            .await
            .expect("the lease moves on");
        seen.push(state);
    }
    assert!(
        seen.iter().all(|s| *s != LeaseState::Held),
        "never held again: {seen:?}"
    );
    let next_token = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert!(next_token > token);
}

/// Holders on an ensemble keep excluding each other while the member some of them
/// are connected to is killed and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusion_holds_through_a_member_failure() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let connect = cluster.connect_string();
    let contenders = tokio::spawn(async move { contend(&connect, 3, 1, 15).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = cluster.leader().unwrap_or(1);
    cluster.kill(victim).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.restart(victim).await.unwrap();
    tokio::time::timeout(Duration::from_secs(120), contenders)
        .await
        .expect("contenders finish")
        .unwrap();
    cluster.shutdown().await;
}
