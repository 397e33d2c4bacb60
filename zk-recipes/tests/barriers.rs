//! `Barrier` and `DoubleBarrier` against our server and Apache ZooKeeper 3.8: waiters
//! pass only once the barrier is removed; double-barrier members enter only when all
//! `n` are there and leave only when all have left; a timed-out enter is not counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{Barrier, DoubleBarrier};
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;

const WAIT: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(300);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barriers_on_ours() {
    let server = TestingServer::start().await.unwrap();
    barrier(&server.connect_string()).await;
    double_barrier(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barriers_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    barrier(&server.connect_string()).await;
    double_barrier(&server.connect_string()).await;
}

async fn barrier(connect: &str) {
    let zk = client(connect).await;
    let gate = Barrier::new(&zk, "/barrier/gate");
    assert!(gate.wait_within(SHORT).await.unwrap(), "open before set");
    gate.set().await.unwrap();
    gate.set().await.unwrap();
    assert!(!gate.wait_within(SHORT).await.unwrap(), "closed once set");
    let passed = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let zk = client(connect).await;
        let passed = passed.clone();
        waiters.push(tokio::spawn(async move {
            Barrier::new(&zk, "/barrier/gate").wait().await.unwrap();
            passed.fetch_add(1, Ordering::SeqCst);
        }));
    }
    tokio::time::sleep(SHORT).await;
    assert_eq!(passed.load(Ordering::SeqCst), 0);
    gate.remove().await.unwrap();
    gate.remove().await.unwrap();
    for w in waiters {
        tokio::time::timeout(WAIT, w).await.unwrap().unwrap();
    }
    assert_eq!(passed.load(Ordering::SeqCst), 3);
}

async fn double_barrier(connect: &str) {
    const N: usize = 3;
    // A lone member gives up entering and is not counted.
    let zk = client(connect).await;
    let mut early = DoubleBarrier::new(&zk, "/barrier/double", N);
    assert!(!early.enter_within(SHORT).await.unwrap());
    assert_eq!(
        zk.get_children("/barrier/double").await.unwrap(),
        Vec::<String>::new()
    );

    let arrived = Arc::new(AtomicUsize::new(0));
    let leaving = Arc::new(AtomicUsize::new(0));
    let mut members = Vec::new();
    for i in 0..N {
        let zk = client(connect).await;
        let (arrived, leaving) = (arrived.clone(), leaving.clone());
        members.push(tokio::spawn(async move {
            // Arrive one after another.
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            let mut member = DoubleBarrier::new(&zk, "/barrier/double", N);
            arrived.fetch_add(1, Ordering::SeqCst);
            member.enter().await.unwrap();
            assert_eq!(
                arrived.load(Ordering::SeqCst),
                N,
                "entered before all arrived"
            );
            // Finish one after another.
            tokio::time::sleep(Duration::from_millis(150 * (N - i) as u64)).await;
            leaving.fetch_add(1, Ordering::SeqCst);
            member.leave().await.unwrap();
            assert_eq!(
                leaving.load(Ordering::SeqCst),
                N,
                "left before all were done"
            );
        }));
    }
    for m in members {
        tokio::time::timeout(WAIT, m).await.unwrap().unwrap();
    }
    assert_eq!(
        zk.get_children("/barrier/double").await.unwrap(),
        Vec::<String>::new(),
        "members and ready node cleaned up"
    );
}
