//! `LeaderLatch` against our server and ensemble: one leader at a time (sampled by an
//! independent monitor) through a leader's close, its session's expiry and the loss of
//! the member it is connected to; time to a new leader printed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zk_client::Client;
use zk_recipes::{CloseMode, LeaderLatch};
use zk_server::testing::{TestingCluster, TestingServer};

const WAIT: Duration = Duration::from_secs(20);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("connect")
}

/// Samples the latches every few milliseconds; remembers if two ever led at once.
struct Monitor {
    stop: Arc<AtomicBool>,
    overlap: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    fn watch(latches: Vec<tokio::sync::watch::Receiver<bool>>) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let overlap = Arc::new(AtomicUsize::new(0));
        let (s, o) = (stop.clone(), overlap.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let leading = latches.iter().filter(|l| *l.borrow()).count();
                if leading > 1 {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Monitor {
            stop,
            overlap,
            task,
        }
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        assert_eq!(
            self.overlap.load(Ordering::SeqCst),
            0,
            "two leaders at once"
        );
    }
}

async fn single_leader(latches: &[&LeaderLatch]) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        let leading: Vec<usize> = latches
            .iter()
            .enumerate()
            .filter(|(_, l)| l.has_leadership())
            .map(|(i, _)| i)
            .collect();
        if leading.len() == 1 {
            return leading[0];
        }
        assert!(leading.len() <= 1, "two leaders: {leading:?}");
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_through_close_and_expiry() {
    let server = TestingServer::start().await.unwrap();
    let clients = [
        client(&server.connect_string()).await,
        client(&server.connect_string()).await,
        client(&server.connect_string()).await,
    ];
    let a = LeaderLatch::new(&clients[0], "/fleet/leader", "a");
    a.start();
    a.await_leadership().await.unwrap();
    let b = LeaderLatch::new(&clients[1], "/fleet/leader", "b");
    b.start();
    // In line in this order: c joins once b is there.
    let deadline = Instant::now() + WAIT;
    while a.participants().await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let c = LeaderLatch::new(&clients[2], "/fleet/leader", "c");
    c.start();
    let monitor = Monitor::watch(vec![a.leadership(), b.leadership(), c.leadership()]);
    let deadline = Instant::now() + WAIT;
    while a.participants().await.unwrap().len() < 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.participants().await.unwrap(), vec!["a", "b", "c"]);
    assert_eq!(
        c.leader().await.unwrap().as_deref(),
        Some("a"),
        "who leads, from any participant"
    );
    assert!(!b
        .await_leadership_within(Duration::from_millis(200))
        .await
        .unwrap());

    // The leader leaves: the next in line takes over.
    let mut changes = a.leadership();
    let closed_at = Instant::now();
    a.close_with(CloseMode::NotifyLeader).await;
    assert!(!*changes.borrow_and_update(), "a close notifies the leader");
    b.await_leadership().await.unwrap();
    println!(
        "leader latch: new leader {} ms after the leader closed",
        closed_at.elapsed().as_millis()
    );
    assert_eq!(single_leader(&[&b, &c]).await, 0);

    // The leader's session expires: it knows it no longer leads, and c takes over.
    let expired_at = Instant::now();
    server
        .expire_session(clients[1].session_id())
        .await
        .unwrap();
    c.await_leadership().await.unwrap();
    println!(
        "leader latch: new leader {} ms after the leader's session expired",
        expired_at.elapsed().as_millis()
    );
    assert!(!b.has_leadership());
    assert_eq!(
        b.await_leadership().await,
        Err(zk_recipes::Error::Client(zk_client::Error::SessionExpired)),
        "an expired latch is over, and says why"
    );
    monitor.finish().await;
    c.close_with(CloseMode::Silent).await;
}

/// The leader's member is cut off from the ensemble: the leader's client is dropped,
/// the latch gives up leadership while in doubt, reconnects to another member with its
/// session intact, and leads again (it is still first in line); never two leaders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_in_doubt_gives_up_and_leads_again_after_reconnecting() {
    let cluster = TestingCluster::start(3).await.unwrap();
    cluster
        .wait_for_leader(WAIT)
        .await
        .expect("a quorum leader");
    let connect = cluster.connect_string();
    let (first, second) = (client(&connect).await, client(&connect).await);
    let a = LeaderLatch::new(&first, "/workers/leader", "a");
    a.start();
    a.await_leadership().await.unwrap();
    let b = LeaderLatch::new(&second, "/workers/leader", "b");
    b.start();
    let monitor = Monitor::watch(vec![a.leadership(), b.leadership()]);
    let on = first.connected_server().unwrap();
    let member = cluster
        .ids()
        .into_iter()
        .find(|id| cluster.client_addr(*id).unwrap().to_string() == on)
        .unwrap();
    let mut changes = a.leadership();
    let _ = changes.borrow_and_update();
    cluster.isolate(member);
    // Leadership goes while the session is in doubt (the latch publishes only real
    // changes, so any change from `true` went through `false`, however briefly)...
    tokio::time::timeout(WAIT, changes.changed())
        .await
        .expect("gave up leadership")
        .unwrap();
    // ...and comes back once reconnected elsewhere with the same session.
    tokio::time::timeout(WAIT, a.await_leadership())
        .await
        .expect("leads again")
        .unwrap();
    assert!(!b.has_leadership());
    cluster.heal(member);
    monitor.finish().await;
    a.close_with(CloseMode::Silent).await;
    b.close_with(CloseMode::Silent).await;
    cluster.shutdown().await;
}

/// Against Apache ZooKeeper 3.8: the leader's connection is cut until its session
/// expires for real; it gives up leadership as soon as the connection goes, the next
/// participant leads only after the expiry, and never two at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_through_a_real_expiry_on_apache_zookeeper() {
    let server = zk_tests::apache::ApacheZk::start().await;
    let proxy = zk_tests::proxy::Proxy::start(server.connect_string()).await;
    let first = client(&proxy.addr.to_string()).await;
    let second = client(&server.connect_string()).await;
    let a = LeaderLatch::new(&first, "/apache/leader", "a");
    a.start();
    a.await_leadership().await.unwrap();
    let b = LeaderLatch::new(&second, "/apache/leader", "b");
    b.start();
    let deadline = Instant::now() + WAIT;
    while b.participants().await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let monitor = Monitor::watch(vec![a.leadership(), b.leadership()]);
    let cut_at = Instant::now();
    proxy.cut();
    b.await_leadership().await.unwrap();
    println!(
        "leader latch on Apache ZooKeeper: new leader {} ms after the leader's connection was cut (session timeout 4 s)",
        cut_at.elapsed().as_millis()
    );
    assert!(!a.has_leadership());
    proxy.restore();
    assert!(
        tokio::time::timeout(WAIT, a.await_leadership())
            .await
            .expect("the latch learns it is over")
            .is_err(),
        "an expired latch is over"
    );
    monitor.finish().await;
    b.close_with(CloseMode::Silent).await;
}

/// Leadership as a guard: `lead()` hands it out once leading; `release()` gives it up
/// (the next in line leads, the latch rejoins at the end of the line), and so does
/// dropping the guard, in the background.
async fn leadership_guard(connect: &str) {
    let (za, zb) = (client(connect).await, client(connect).await);
    let a = LeaderLatch::new(&za, "/guarded/leader", "a");
    a.start();
    let held = tokio::time::timeout(WAIT, a.lead())
        .await
        .expect("a leads")
        .unwrap();
    assert!(held.is_current());
    assert_eq!(held.lease().state(), zk_recipes::LeaseState::Held);
    let b = LeaderLatch::new(&zb, "/guarded/leader", "b");
    b.start();
    let deadline = Instant::now() + WAIT;
    while a.participants().await.unwrap() != ["a", "b"] {
        assert!(Instant::now() < deadline, "b queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.release().await.unwrap();
    let b_leads = tokio::time::timeout(WAIT, b.lead())
        .await
        .expect("b leads once a gave up")
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while a.participants().await.unwrap() != ["b", "a"] {
        assert!(
            Instant::now() < deadline,
            "a rejoined at the end of the line"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!a.has_leadership());
    // Dropped: given up in the background; a leads again.
    drop(b_leads);
    let again = tokio::time::timeout(WAIT, a.lead())
        .await
        .expect("a leads again")
        .unwrap();
    assert!(again.is_current());
    assert!(!b.has_leadership());
    drop(again);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_is_a_guard_on_ours() {
    let server = TestingServer::start().await.unwrap();
    leadership_guard(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_is_a_guard_on_apache_zookeeper() {
    let server = zk_tests::apache::ApacheZk::start().await;
    leadership_guard(&server.connect_string()).await;
}
