//! `SharedCount` and `DistributedAtomicLong`, each against our server and Apache
//! ZooKeeper 3.8: Curator's bytes (4 and 8 bytes big-endian), seeds and missing nodes,
//! compare-and-set semantics, a remote change reaching the change stream, concurrent
//! writers on several sessions ending at the exact sum, and increments through a
//! connection whose answers a proxy keeps swallowing before cutting it (so writes are
//! applied and their answers lost) still counted exactly once. Apache Curator 5.4
//! (Debian's jars, a small Java program compiled when the test runs) reads and
//! changes the values we wrote, and we read what it wrote.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use zk_client::retry::{ExponentialBackoff, RetryNTimes};
use zk_client::Client;
use zk_recipes::atomic_long::{DistributedAtomicLong, PromotedToLock};
use zk_recipes::shared_count::SharedCount;
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);

/// The Java side of the interop test: reads and changes a `SharedCount` and a
/// `DistributedAtomicLong` at the paths given, printing what it sees.
const CURATOR_COUNTERS: &str = r#"
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.RetryNTimes;

public class CuratorCounters {
    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], new RetryNTimes(5, 100));
        client.start();
        client.blockUntilConnected();
        SharedCount count = new SharedCount(client, args[1], 999);
        count.start();
        System.out.println("shared " + count.getCount());
        VersionedValue<Integer> seen = count.getVersionedValue();
        System.out.println("shared-set " + count.trySetCount(seen, seen.getValue() + 1));
        count.close();
        DistributedAtomicLong number = new DistributedAtomicLong(client, args[2], new RetryNTimes(10, 10));
        System.out.println("long " + number.get().postValue());
        AtomicValue<Long> added = number.add(5L);
        System.out.println("long-add " + added.succeeded() + " " + added.postValue());
        client.close();
    }
}
"#;

/// Compiles `source` (class `class`) against Debian's Curator jars and runs it with
/// `args`; its standard output lines.
async fn run_curator(class: &str, source: &str, args: &[&str]) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    zk_tests::java::run_curator(root, class, source, args, WAIT).await
}
const SESSIONS: usize = 8;

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

fn contention_policy() -> ExponentialBackoff {
    ExponentialBackoff::bounded(Duration::from_millis(1), Duration::from_millis(20), 50)
}

/// Children left under `path` (write markers that were not cleaned up).
async fn children(zk: &Client, path: &str) -> Vec<String> {
    zk.get_children(path).await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_on_ours() {
    let server = TestingServer::start().await.unwrap();
    counters(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    counters(&server.connect_string()).await;
}

async fn counters(connect: &str) {
    shared_count_basics(connect).await;
    shared_count_concurrent_try_sets(connect).await;
    atomic_long_basics(connect).await;
    atomic_long_concurrent_adds(connect).await;
    atomic_long_promoted_to_lock(connect).await;
}

async fn shared_count_basics(connect: &str) {
    let path = "/counters/shared/basic";
    let (zk_a, zk_b) = (client(connect).await, client(connect).await);
    let a = SharedCount::new(&zk_a, path, 7);
    a.start().await.unwrap();
    assert_eq!(a.get_count(), 7, "seeded");
    let (raw, _) = zk_a.get_data(path).await.unwrap();
    assert_eq!(raw, [0, 0, 0, 7], "Curator's 4 bytes big-endian");
    let b = SharedCount::new(&zk_b, path, 100);
    b.start().await.unwrap();
    assert_eq!(b.get_count(), 7, "a second start does not reseed");

    // A remote set reaches the change stream and the watch receiver.
    let mut changes = a.changes();
    let mut watched = a.watch();
    b.set_count(-2).await.unwrap();
    let seen = tokio::time::timeout(WAIT, changes.next())
        .await
        .expect("the change came")
        .unwrap();
    assert_eq!(seen.value, -2);
    tokio::time::timeout(WAIT, watched.wait_for(|v| v.value == -2))
        .await
        .expect("the receiver saw it")
        .unwrap();
    assert_eq!(a.get_count(), -2);
    let (raw, stat) = zk_a.get_data(path).await.unwrap();
    assert_eq!(raw, [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(a.get_versioned_value().version, stat.version);

    // Versioned sets: a stale version is refused (and the view refreshed).
    let stale = a.get_versioned_value();
    assert!(b.try_set_count(10, b.get_versioned_value()).await.unwrap());
    assert!(!a.try_set_count(11, stale).await.unwrap(), "stale version");
    assert_eq!(a.get_count(), 10, "refreshed after the refusal");
    assert!(a.try_set_count(11, a.get_versioned_value()).await.unwrap());
    tokio::time::timeout(WAIT, b.watch().wait_for(|v| v.value == 11))
        .await
        .expect("b sees a's set")
        .unwrap();
    assert_eq!(
        children(&zk_a, path).await,
        Vec::<String>::new(),
        "no markers left"
    );
    a.close().await;
    b.close().await;
}

async fn shared_count_concurrent_try_sets(connect: &str) {
    const EACH: i32 = 8;
    let path = "/counters/shared/contended";
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let zk = client(connect).await;
        tasks.push(tokio::spawn(async move {
            let count = SharedCount::new(&zk, path, 0);
            count.start().await.unwrap();
            let mut refused = 0;
            for _ in 0..EACH {
                loop {
                    let seen = count.get_versioned_value();
                    if count.try_set_count(seen.value + 1, seen).await.unwrap() {
                        break;
                    }
                    refused += 1;
                }
            }
            count.close().await;
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += tokio::time::timeout(WAIT, t)
            .await
            .expect("incrementers finish")
            .unwrap();
    }
    let zk = client(connect).await;
    let (raw, _) = zk.get_data(path).await.unwrap();
    assert_eq!(
        raw,
        (SESSIONS as i32 * EACH).to_be_bytes(),
        "every increment counted once ({refused} refused tries)"
    );
    assert!(children(&zk, path).await.is_empty());
}

async fn atomic_long_basics(connect: &str) {
    let zk = client(connect).await;
    let path = "/counters/long/basic";
    let n = DistributedAtomicLong::new(&zk, path, contention_policy());
    // Missing reads as 0, and compares as 0.
    assert_eq!(n.get().await.unwrap().post_value, 0);
    assert!(zk.exists(path).await.unwrap().is_none());
    let cas = n.compare_and_set(5, 6).await.unwrap();
    assert!(!cas.succeeded && cas.pre_value == 0 && cas.post_value == 0);
    let cas = n.compare_and_set(0, 41).await.unwrap();
    assert!(cas.succeeded && cas.pre_value == 0 && cas.post_value == 41);
    let (raw, _) = zk.get_data(path).await.unwrap();
    assert_eq!(raw, 41i64.to_be_bytes(), "Curator's 8 bytes big-endian");

    let inc = n.increment().await.unwrap();
    assert!(inc.succeeded);
    assert_eq!((inc.pre_value, inc.post_value), (41, 42));
    assert_eq!(n.decrement().await.unwrap().post_value, 41);
    assert_eq!(n.add(1 << 40).await.unwrap().post_value, 41 + (1 << 40));
    assert_eq!(n.subtract(1 << 40).await.unwrap().post_value, 41);
    // Compare-and-set: refused on a mismatch, nothing written.
    let (_, before) = zk.get_data(path).await.unwrap();
    let cas = n.compare_and_set(40, 100).await.unwrap();
    assert!(!cas.succeeded);
    assert_eq!((cas.pre_value, cas.post_value), (41, 41));
    let (_, after) = zk.get_data(path).await.unwrap();
    assert_eq!(
        after.version, before.version,
        "a refused CAS writes nothing"
    );
    let cas = n.compare_and_set(41, -100).await.unwrap();
    assert!(cas.succeeded && cas.post_value == -100);
    let set = n.try_set(3).await.unwrap();
    assert!(set.succeeded && set.pre_value == -100 && set.post_value == 3);
    assert!(!n.initialize(9).await.unwrap(), "already there");
    // Another session sees it, and someone else's write makes our CAS fail.
    let other = DistributedAtomicLong::new(&client(connect).await, path, contention_policy());
    assert_eq!(other.get().await.unwrap().pre_value, 3);
    other.force_set(-1).await.unwrap();
    assert!(!n.compare_and_set(3, 4).await.unwrap().succeeded);
    let (raw, _) = zk.get_data(path).await.unwrap();
    assert_eq!(raw, [0xff; 8]);
    // force_set and initialize create missing nodes (parents as containers).
    let fresh = DistributedAtomicLong::new(&zk, "/counters/long/fresh/x", contention_policy());
    fresh.force_set(12).await.unwrap();
    assert_eq!(fresh.get().await.unwrap().post_value, 12);
    let init = DistributedAtomicLong::new(&zk, "/counters/long/init", contention_policy());
    assert!(init.initialize(77).await.unwrap());
    assert_eq!(init.get().await.unwrap().pre_value, 77);
    assert!(children(&zk, path).await.is_empty(), "no markers left");
}

async fn atomic_long_concurrent_adds(connect: &str) {
    const EACH: u64 = 15;
    let path = "/counters/long/contended";
    let mut tasks = Vec::new();
    for i in 0..SESSIONS as u64 {
        let zk = client(connect).await;
        tasks.push(tokio::spawn(async move {
            let n = DistributedAtomicLong::new(&zk, path, contention_policy());
            let mut posts = Vec::new();
            for _ in 0..EACH {
                loop {
                    let r = n.add(i as i64 + 1).await.unwrap();
                    if r.succeeded {
                        assert_eq!(r.post_value, r.pre_value + i as i64 + 1);
                        posts.push(r.post_value);
                        break;
                    }
                }
            }
            posts
        }));
    }
    let mut posts = Vec::new();
    for t in tasks {
        posts.extend(
            tokio::time::timeout(WAIT, t)
                .await
                .expect("adders finish")
                .unwrap(),
        );
    }
    let expected: u64 = EACH * (1..=SESSIONS as u64).sum::<u64>();
    let zk = client(connect).await;
    let n = DistributedAtomicLong::new(&zk, path, contention_policy());
    assert_eq!(n.get().await.unwrap().post_value, expected as i64);
    posts.sort();
    posts.dedup();
    assert_eq!(
        posts.len(),
        SESSIONS * EACH as usize,
        "every successful add saw its own value"
    );
    assert!(children(&zk, path).await.is_empty(), "no markers left");
}

async fn atomic_long_promoted_to_lock(connect: &str) {
    const EACH: usize = 5;
    let path = "/counters/long/promoted";
    let promoted = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let zk = client(connect).await;
        let promoted = promoted.clone();
        tasks.push(tokio::spawn(async move {
            // No optimistic retry at all: contention goes to the lock.
            let n = DistributedAtomicLong::new(
                &zk,
                path,
                RetryNTimes {
                    n: 0,
                    delay: Duration::ZERO,
                },
            )
            .promoted_to_lock(PromotedToLock::new(
                "/counters/long/promoted-lock",
                WAIT,
                RetryNTimes {
                    n: 100,
                    delay: Duration::from_millis(2),
                },
            ));
            for _ in 0..EACH {
                let r = n.increment().await.unwrap();
                assert!(r.succeeded, "{r:?}");
                promoted.fetch_add(r.stats.promoted_lock_tries, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT, t)
            .await
            .expect("finish")
            .unwrap();
    }
    let zk = client(connect).await;
    let n = DistributedAtomicLong::new(&zk, path, contention_policy());
    assert_eq!(n.get().await.unwrap().post_value, 4 * EACH as i64);
    assert!(
        promoted.load(Ordering::SeqCst) > 0,
        "some increments went through the lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_through_cut_connections_on_ours() {
    let server = TestingServer::start().await.unwrap();
    counting_through_cut_connections(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_through_cut_connections_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    counting_through_cut_connections(&server.connect_string()).await;
}

/// Writers on a proxied session (and one direct session competing with them) while
/// the proxy swallows answers and cuts the connection again and again (at least 12
/// times, and until some increment was applied with its answer lost): writes whose
/// answers were lost are settled, so the counters end at exactly the number of
/// increments reported done.
async fn counting_through_cut_connections(connect: &str) {
    const WRITERS: usize = 4;
    let long_path = "/counters/cut/long";
    let count_path = "/counters/cut/shared";
    let proxy = Proxy::start(connect.to_string()).await;
    let proxied = client(&proxy.addr.to_string()).await;
    let direct = client(connect).await;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicU32::new(0));
    let recovered = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS + 1 {
        let zk = if w < WRITERS {
            proxied.clone()
        } else {
            direct.clone()
        };
        let (done, lost, recovered) = (done.clone(), lost.clone(), recovered.clone());
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let n = DistributedAtomicLong::new(&zk, long_path, contention_policy());
            let count = SharedCount::new(&zk, count_path, 0);
            count.start().await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                loop {
                    let r = n.increment().await.unwrap();
                    lost.fetch_add(r.stats.lost_answers, Ordering::SeqCst);
                    recovered.fetch_add(r.stats.recovered_writes, Ordering::SeqCst);
                    if r.succeeded {
                        break;
                    }
                }
                loop {
                    let seen = count.get_versioned_value();
                    if count.try_set_count(seen.value + 1, seen).await.unwrap() {
                        break;
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            count.close().await;
        }));
    }
    // Lose answers mid-write, again and again.
    let mut cuts = 0;
    while cuts < 12 || (recovered.load(Ordering::SeqCst) == 0 && cuts < 40) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.lose_answers(Duration::from_millis(50)).await;
        cuts += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        tokio::time::timeout(WAIT * 2, t)
            .await
            .expect("writers finish")
            .unwrap();
    }
    let total = done.load(Ordering::SeqCst);
    let n = DistributedAtomicLong::new(&direct, long_path, contention_policy());
    assert_eq!(
        n.get().await.unwrap().post_value,
        total as i64,
        "atomic long: an increment counted twice or lost ({cuts} cuts)"
    );
    let (raw, _) = direct.get_data(count_path).await.unwrap();
    assert_eq!(
        raw,
        (total as i32).to_be_bytes(),
        "shared count: an increment counted twice or lost ({cuts} cuts)"
    );
    let (lost, recovered) = (
        lost.load(Ordering::SeqCst),
        recovered.load(Ordering::SeqCst),
    );
    eprintln!(
        "{total} increments of each counter; {cuts} cuts; atomic long: {lost} lost answers, \
         {recovered} of them applied"
    );
    assert!(
        recovered > 0,
        "no increment applied with its answer lost: the scenario was not exercised"
    );
    assert!(children(&direct, long_path).await.is_empty());
    assert!(children(&direct, count_path).await.is_empty());
}

/// Curator reads our values and changes them; we see its changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_reads_and_changes_our_counters() {
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    let zk = client(&connect).await;
    let (shared, long) = ("/interop/counters/shared", "/interop/counters/long");
    let count = SharedCount::new(&zk, shared, 41);
    count.start().await.unwrap();
    let number = DistributedAtomicLong::new(&zk, long, contention_policy());
    number.force_set(-7).await.unwrap();
    let lines = run_curator(
        "CuratorCounters",
        CURATOR_COUNTERS,
        &[&connect, shared, long],
    )
    .await;
    assert_eq!(
        lines,
        [
            "shared 41",
            "shared-set true",
            "long -7",
            "long-add true -2"
        ],
        "what Curator saw and did"
    );
    tokio::time::timeout(WAIT, count.watch().wait_for(|v| v.value == 42))
        .await
        .expect("our SharedCount saw Curator's set")
        .unwrap();
    assert_eq!(number.get().await.unwrap().post_value, -2);
    count.close().await;
}
