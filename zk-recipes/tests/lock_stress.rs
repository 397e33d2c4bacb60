//! Mutual exclusion under stress: six tasks on three sessions take turns on one
//! `Lock` over a 3-member ensemble, incrementing a counter kept outside ZooKeeper,
//! while the leader member is killed and restarted and one session is cut off until
//! it expires (its client renews it and goes on). An independent monitor checks that
//! never two tasks are inside at once and that fencing tokens only grow; the counter
//! checks that no update was lost; no lock node is left once all have released.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{LeaseState, Lock};
use zk_server::testing::TestingCluster;
use zk_tests::lock_monitor::Monitor;
use zk_tests::proxy::Proxy;

const DIR: &str = "/stress/lock";
/// The least each task takes; tasks go on until the run's phases are over.
const TURNS: usize = 8;
const RUN_FOR: Duration = Duration::from_secs(90);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
        .expect("connect")
}

/// One task: successful turns (a turn whose lease wavered does not count and
/// writes nothing), whatever happens to its session, until `stop` is set and it has
/// taken at least `TURNS`; returns how many it took.
async fn take_turns(
    zk: Client,
    who: String,
    monitor: Arc<Monitor>,
    sessions: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let deadline = tokio::time::Instant::now() + 2 * RUN_FOR;
    let mut done = 0;
    while done < TURNS || !stop.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "{who} starved");
        let mut lock = Lock::new(&zk, DIR);
        let guard = match lock.try_acquire(Duration::from_secs(5)).await {
            Ok(Some(guard)) => guard,
            Ok(None) => continue,
            Err(_) => {
                // The session expired or the connection stayed down past the retries.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (lease, token) = (guard.lease().clone(), guard.fencing_token());
        if lease.state() == LeaseState::Held {
            monitor.enter(&who, token);
            let seen = monitor.counter.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            // Write only while the lease still holds (what a holder must do).
            if lease.state() == LeaseState::Held {
                monitor.counter.store(seen + 1, Ordering::SeqCst);
                monitor.turns.fetch_add(1, Ordering::SeqCst);
                done += 1;
                if let Ok(mut s) = sessions.lock() {
                    s.push(zk.session_id());
                }
            }
            monitor.exit();
        }
        let _ = guard.release().await;
    }
    done as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusion_holds_through_member_kill_and_session_expiry() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader");
    // Session 0 reaches one follower through a proxy we cut to expire it; the
    // others use the whole ensemble.
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let proxy = Proxy::start(cluster.client_addr(follower).unwrap().to_string()).await;
    let connect = cluster.connect_string();
    let clients = [
        client(&proxy.addr.to_string()).await,
        client(&connect).await,
        client(&connect).await,
    ];
    let expiring_session = clients[0].session_id();
    let monitor = Arc::new(Monitor::default());
    let sessions_seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (s, zk) in clients.iter().enumerate() {
        for t in 0..2 {
            tasks.push(tokio::spawn(take_turns(
                zk.clone(),
                format!("s{s}t{t}"),
                monitor.clone(),
                sessions_seen.clone(),
                stop.clone(),
            )));
        }
    }
    let progress = |n: u64| {
        let monitor = monitor.clone();
        async move {
            while monitor.turns.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    tokio::time::timeout(RUN_FOR, progress(6))
        .await
        .expect("turns taken");
    // Kill the leader mid-run; bring it back.
    cluster.kill(leader).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.restart(leader).await.unwrap();
    // Cut session 0 off until the ensemble expires it; its client renews it.
    let before = monitor.turns.load(Ordering::SeqCst);
    tokio::time::timeout(RUN_FOR, progress(before + 4))
        .await
        .expect("turns after the failover");
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.restore();
    // Session 0's client renews its session and its tasks take turns on it.
    let renewed_turns = async {
        loop {
            let renewed = clients[0].session_id();
            let seen = sessions_seen.lock().map(|s| s.clone()).unwrap_or_default();
            if renewed != expiring_session && seen.contains(&renewed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(RUN_FOR, renewed_turns)
        .await
        .expect("turns on session 0's renewed session");
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for t in tasks {
        total += tokio::time::timeout(RUN_FOR, t)
            .await
            .expect("every task finishes its turns")
            .unwrap();
    }
    let violations = monitor.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:?}");
    assert!(total >= (clients.len() * 2 * TURNS) as u64);
    assert_eq!(monitor.turns.load(Ordering::SeqCst), total);
    assert_eq!(
        monitor.counter.load(Ordering::SeqCst),
        total,
        "a lost update: two holders wrote at once"
    );
    assert_ne!(
        clients[0].session_id(),
        expiring_session,
        "session 0 expired"
    );
    let renewed = clients[0].session_id();
    assert!(
        sessions_seen.lock().unwrap().contains(&renewed),
        "session 0's tasks took turns on their renewed session"
    );
    // Nothing orphaned: every node went with its release or its session.
    let observer = client(&connect).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = observer.get_children(DIR).await.unwrap_or_default();
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "orphaned lock nodes: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.shutdown().await;
}
