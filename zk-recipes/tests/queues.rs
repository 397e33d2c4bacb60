//! `DistributedQueue` and `DistributedPriorityQueue`, against our server and Apache
//! ZooKeeper 3.8: Curator's node names and item bytes, FIFO order for one producer
//! and one consumer, priority order (FIFO within a priority), timed takes that leave
//! nothing behind, and several producers and consumers on several sessions with every
//! item delivered exactly once — also while a proxy swallows answers and cuts
//! connections (so puts and takes are applied and their answers lost), and on a
//! 3-member ensemble whose leader is killed and restarted mid-run while a consumer's
//! connection is cut. Apache Curator 5.4 (Debian's jars, a small Java program compiled
//! when the test runs) consumes what we put, and we take what it puts, in its FIFO
//! and priority queues.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use zk_client::Client;
use zk_recipes::distributed_queue::{
    serializer::decode_items, DistributedPriorityQueue, DistributedQueue, PUT_DIR, TAKEN_DIR,
};
use zk_server::testing::{TestingCluster, TestingServer};
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(200);

/// The Java side of the interop test: consumes `count` items from our queue, then
/// puts items into a FIFO queue and a priority queue for us (items are UTF-8 strings).
const CURATOR_QUEUES: &str = r#"
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.RetryNTimes;

public class CuratorQueues {
    static final QueueSerializer<String> UTF8 = new QueueSerializer<String>() {
        public byte[] serialize(String item) { return item.getBytes(StandardCharsets.UTF_8); }
        public String deserialize(byte[] bytes) { return new String(bytes, StandardCharsets.UTF_8); }
    };

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], new RetryNTimes(5, 100));
        client.start();
        client.blockUntilConnected();
        int count = Integer.parseInt(args[2]);
        CountDownLatch taken = new CountDownLatch(count);
        QueueConsumer<String> consumer = new QueueConsumer<String>() {
            public void consumeMessage(String item) {
                System.out.println("took " + item);
                taken.countDown();
            }
            public void stateChanged(CuratorFramework c, ConnectionState s) {}
        };
        DistributedQueue<String> ours = QueueBuilder.builder(client, consumer, UTF8, args[1]).buildQueue();
        ours.start();
        System.out.println("consumed " + taken.await(20, TimeUnit.SECONDS));
        ours.close();
        DistributedQueue<String> fifo = QueueBuilder.builder(client, null, UTF8, args[3]).putInBackground(false).buildQueue();
        fifo.start();
        for (int i = 1; i <= 3; i++) fifo.put("java-" + i);
        fifo.close();
        DistributedPriorityQueue<String> priority = QueueBuilder.builder(client, null, UTF8, args[4]).putInBackground(false).buildPriorityQueue(0);
        priority.start();
        priority.put("low", 10);
        priority.put("high", -5);
        priority.put("mid", 0);
        priority.put("mid-2", 0);
        priority.close();
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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Job {
    producer: usize,
    n: usize,
}

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

/// Every job taken, by who took it; checks each was taken once and none is missing.
#[derive(Default)]
struct Ledger {
    taken: Mutex<Vec<(Job, usize)>>,
    count: AtomicUsize,
}

impl Ledger {
    fn record(&self, job: Job, consumer: usize) {
        self.taken.lock().unwrap().push((job, consumer));
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn check(&self, producers: usize, each: usize) -> BTreeMap<usize, usize> {
        let taken = self.taken.lock().unwrap().clone();
        let mut seen = BTreeMap::new();
        let mut duplicates = Vec::new();
        let mut per_consumer = BTreeMap::new();
        for (job, consumer) in &taken {
            *per_consumer.entry(*consumer).or_insert(0) += 1;
            if seen.insert(job.clone(), *consumer).is_some() {
                duplicates.push(job.clone());
            }
        }
        assert!(duplicates.is_empty(), "delivered twice: {duplicates:?}");
        let missing: Vec<Job> = (0..producers)
            .flat_map(|producer| (0..each).map(move |n| Job { producer, n }))
            .filter(|job| !seen.contains_key(job))
            .collect();
        assert!(missing.is_empty(), "never delivered: {missing:?}");
        assert_eq!(taken.len(), producers * each);
        per_consumer
    }
}

/// Puts `each` jobs of `producer` (some one by one, some in batches, a few ms apart).
async fn produce(queue: DistributedQueue<Job>, producer: usize, each: usize) {
    let mut n = 0;
    while n < each {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if n % 3 == 0 && n + 2 < each {
            let batch: Vec<Job> = (n..n + 2).map(|n| Job { producer, n }).collect();
            queue.put_many(&batch).await.unwrap();
            n += 2;
        } else {
            queue.put(&Job { producer, n }).await.unwrap();
            n += 1;
        }
    }
}

/// Takes until the ledger holds `total` jobs, or the producers are `done` and the
/// queue is empty (short timed takes, so the consumer notices; a timed take never
/// drops an item it began to take).
async fn consume(
    queue: DistributedQueue<Job>,
    consumer: usize,
    ledger: Arc<Ledger>,
    total: usize,
    done: Arc<AtomicBool>,
) {
    while ledger.count.load(Ordering::SeqCst) < total {
        match queue.try_take(SHORT).await.unwrap() {
            Some(job) => ledger.record(job, consumer),
            None if done.load(Ordering::SeqCst) && queue.item_names().await.unwrap().is_empty() => {
                return
            }
            None => {}
        }
    }
}

async fn assert_nothing_left(zk: &Client, dir: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let items: Vec<String> = zk
            .get_children(dir)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.starts_with("queue-"))
            .collect();
        let put = zk.get_children(&format!("{dir}/{PUT_DIR}")).await.unwrap();
        let taken = zk
            .get_children(&format!("{dir}/{TAKEN_DIR}"))
            .await
            .unwrap();
        if items.is_empty() && put.is_empty() && taken.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left in {dir}: items {items:?}, put markers {put:?}, take markers {taken:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_on_ours() {
    let server = TestingServer::start().await.unwrap();
    queues(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    queues(&server.connect_string()).await;
}

async fn queues(connect: &str) {
    fifo_for_one_producer_and_one_consumer(connect).await;
    priority_order(connect).await;
    many_producers_and_consumers(connect, "/queues/many", None).await;
}

async fn fifo_for_one_producer_and_one_consumer(connect: &str) {
    let dir = "/queues/fifo/jobs";
    let zk = client(connect).await;
    let producer = DistributedQueue::<Job>::json(&zk, dir);
    let consumer = DistributedQueue::<Job>::json(&client(connect).await, dir);
    // Empty: a timed take gives up, leaving nothing.
    let started = tokio::time::Instant::now();
    assert_eq!(consumer.try_take(SHORT).await.unwrap(), None);
    assert!(started.elapsed() >= SHORT);
    // A waiting take gets the first item put.
    let waiting = {
        let consumer = consumer.clone();
        tokio::spawn(async move { consumer.take().await.unwrap() })
    };
    tokio::time::sleep(SHORT).await;
    assert!(!waiting.is_finished());
    producer.put(&Job { producer: 0, n: 0 }).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap(),
        Job { producer: 0, n: 0 }
    );
    // Curator's layout: `queue-<sequence>` nodes holding Curator's item envelope.
    for n in 1..30 {
        producer.put(&Job { producer: 0, n }).await.unwrap();
    }
    let names = producer.item_names().await.unwrap();
    assert_eq!(names.len(), 29);
    assert!(names
        .iter()
        .all(|n| n.starts_with("queue-") && n.len() == 16));
    let (data, _) = zk.get_data(&format!("{dir}/{}", names[0])).await.unwrap();
    assert_eq!(&data[..5], [0, 1, 0, 1, 1], "Curator's envelope");
    assert_eq!(
        decode_items(&data).unwrap(),
        vec![br#"{"producer":0,"n":1}"#.to_vec()]
    );
    // A consumer stream yields them in order, while more come in.
    let more = {
        let producer = producer.clone();
        tokio::spawn(async move {
            for n in 30..40 {
                producer.put(&Job { producer: 0, n }).await.unwrap();
            }
        })
    };
    let got: Vec<usize> = consumer
        .stream()
        .take(39)
        .map(|job| job.unwrap().n)
        .collect()
        .await;
    assert_eq!(got, (1..40).collect::<Vec<_>>(), "first in, first out");
    more.await.unwrap();
    assert_nothing_left(&zk, dir).await;
}

async fn priority_order(connect: &str) {
    let dir = "/queues/priority";
    let zk = client(connect).await;
    let queue = DistributedPriorityQueue::<String>::json(&zk, dir);
    let items = [
        ("p5-a", 5),
        ("p-3-a", -3),
        ("p0-a", 0),
        ("p5-b", 5),
        ("p100", 100),
        ("p-3-b", -3),
        ("p0-b", 0),
    ];
    for (item, priority) in items {
        queue.put(&item.to_string(), priority).await.unwrap();
    }
    queue
        .put_many(&["p1-a".to_string(), "p1-b".to_string()], 1)
        .await
        .unwrap();
    // Curator's names: queue-<sign><8 hex digits><sequence>.
    let names = queue.item_names().await.unwrap();
    assert!(names[0].starts_with("queue-0FFFFFFFD"), "{names:?}");
    assert!(
        names.last().unwrap().starts_with("queue-100000064"),
        "{names:?}"
    );
    let consumer = DistributedPriorityQueue::<String>::json(&client(connect).await, dir);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(consumer.take().await.unwrap());
    }
    // An urgent item put now is taken before those already seen.
    queue.put(&"urgent".to_string(), -100).await.unwrap();
    while let Some(item) = consumer.try_take(SHORT).await.unwrap() {
        got.push(item);
    }
    assert_eq!(
        got,
        ["p-3-a", "p-3-b", "p0-a", "p0-b", "urgent", "p1-a", "p1-b", "p5-a", "p5-b", "p100"]
    );
    assert_nothing_left(&zk, dir).await;
}

/// Three producers and three consumers, each on its own session (`lossy`: all but one
/// producer go through a proxy that keeps losing answers, and the test checks that
/// puts and takes were applied with their answers lost): every job delivered exactly
/// once.
async fn many_producers_and_consumers(connect: &str, dir: &str, lossy: Option<&Proxy>) {
    const PRODUCERS: usize = 3;
    const CONSUMERS: usize = 3;
    const EACH: usize = 60;
    let total = PRODUCERS * EACH;
    let ledger = Arc::new(Ledger::default());
    let done = Arc::new(AtomicBool::new(false));
    let via = |direct: bool| match lossy {
        Some(proxy) if !direct => proxy.addr.to_string(),
        _ => connect.to_string(),
    };
    let mut handles = Vec::new();
    let mut consumers = Vec::new();
    for c in 0..CONSUMERS {
        let queue = DistributedQueue::<Job>::msgpack(&client(&via(false)).await, dir);
        handles.push(queue.clone());
        consumers.push(tokio::spawn(consume(
            queue,
            c,
            ledger.clone(),
            total,
            done.clone(),
        )));
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let queue = DistributedQueue::<Job>::msgpack(&client(&via(p == 1)).await, dir);
        handles.push(queue.clone());
        producers.push(tokio::spawn(produce(queue, p, EACH)));
    }
    let started = tokio::time::Instant::now();
    let mut cuts = 0;
    if let Some(proxy) = lossy {
        // Lose answers 20 times, and on until a put and a take were each applied
        // unanswered (what the test is about), while jobs remain; at most 60 times.
        let exercised = || {
            let (puts, takes) = handles.iter().map(|q| q.stats()).fold((0, 0), |s, q| {
                (s.0 + q.recovered_puts, s.1 + q.recovered_takes)
            });
            puts > 0 && takes > 0
        };
        while ledger.count.load(Ordering::SeqCst) < total
            && cuts < 60
            && (cuts < 20 || !exercised())
        {
            tokio::time::sleep(Duration::from_millis(60)).await;
            proxy.lose_answers(Duration::from_millis(40)).await;
            cuts += 1;
        }
    }
    for task in producers {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("producers finish")
            .unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for task in consumers {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("consumers finish")
            .unwrap();
    }
    let per_consumer = ledger.check(PRODUCERS, EACH);
    let stats = handles.iter().map(|q| q.stats()).fold((0, 0, 0), |s, q| {
        (
            s.0 + q.lost_answers,
            s.1 + q.recovered_puts,
            s.2 + q.recovered_takes,
        )
    });
    eprintln!(
        "{dir}: {total} jobs in {:?}, taken per consumer {per_consumer:?}; {cuts} cuts: \
         {} lost answers, {} puts and {} takes applied unanswered",
        started.elapsed(),
        stats.0,
        stats.1,
        stats.2
    );
    if lossy.is_some() {
        assert!(
            stats.1 > 0 && stats.2 > 0,
            "puts and takes applied with their answer lost: the scenario was exercised"
        );
    }
    assert_nothing_left(&client(connect).await, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_lost_answers_on_ours() {
    let server = TestingServer::start().await.unwrap();
    let proxy = Proxy::start(server.connect_string()).await;
    many_producers_and_consumers(&server.connect_string(), "/queues/lossy", Some(&proxy)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_lost_answers_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    let proxy = Proxy::start(server.connect_string()).await;
    many_producers_and_consumers(&server.connect_string(), "/queues/lossy", Some(&proxy)).await;
}

/// Producers and consumers on a 3-member ensemble; the leader is killed mid-run and
/// restarted, then the new leader too, and a consumer reaching a follower through a
/// proxy is cut off for a while: every job delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_leader_failover() {
    const PRODUCERS: usize = 2;
    const CONSUMERS: usize = 3;
    const EACH: usize = 80;
    let total = PRODUCERS * EACH;
    let dir = "/queues/failover";
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let proxy = Proxy::start(cluster.client_addr(follower).unwrap().to_string()).await;
    let connect = cluster.connect_string();
    let started = tokio::time::Instant::now();
    let ledger = Arc::new(Ledger::default());
    let done = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut consumers = Vec::new();
    for c in 0..CONSUMERS {
        let zk = if c == 0 {
            client(&proxy.addr.to_string()).await
        } else {
            client(&connect).await
        };
        let queue = DistributedQueue::<Job>::json(&zk, dir);
        handles.push(queue.clone());
        consumers.push(tokio::spawn(consume(
            queue,
            c,
            ledger.clone(),
            total,
            done.clone(),
        )));
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let queue = DistributedQueue::<Job>::json(&client(&connect).await, dir);
        handles.push(queue.clone());
        producers.push(tokio::spawn(async move {
            for n in 0..EACH {
                queue.put(&Job { producer: p, n }).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let progress = |n: usize| {
        let ledger = ledger.clone();
        async move {
            while ledger.count.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    tokio::time::timeout(WAIT, progress(total / 5))
        .await
        .expect("jobs taken before the failover");
    cluster.kill(leader).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.restart(leader).await.unwrap();
    tokio::time::timeout(WAIT, progress(total * 2 / 5))
        .await
        .expect("jobs taken after the failover");
    let second = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a new leader");
    cluster.kill(second).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.restart(second).await.unwrap();
    tokio::time::timeout(WAIT, progress(total * 3 / 5))
        .await
        .expect("jobs taken after the second failover");
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore();
    for task in producers {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("producers finish")
            .unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for task in consumers {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("consumers finish")
            .unwrap();
    }
    let per_consumer = ledger.check(PRODUCERS, EACH);
    let lost: u32 = handles.iter().map(|q| q.stats().lost_answers).sum();
    let recovered: u32 = handles
        .iter()
        .map(|q| q.stats().recovered_puts + q.stats().recovered_takes)
        .sum();
    eprintln!(
        "failover: {total} jobs in {:?}, taken per consumer {per_consumer:?}; {lost} lost \
         answers, {recovered} writes applied unanswered",
        started.elapsed()
    );
    assert_nothing_left(&client(&connect).await, dir).await;
    cluster.shutdown().await;
}

/// Curator consumes what we put; we take what Curator puts, FIFO and by priority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_and_we_share_queues() {
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    let zk = client(&connect).await;
    let (to_java, from_java, by_priority) = (
        "/interop/queues/to-java",
        "/interop/queues/from-java",
        "/interop/queues/priority",
    );
    let ours = DistributedQueue::new(&zk, to_java);
    ours.put(&b"rust-1".to_vec()).await.unwrap();
    ours.put_many(&[b"rust-2".to_vec(), b"rust-3".to_vec()])
        .await
        .unwrap();
    let lines = run_curator(
        "CuratorQueues",
        CURATOR_QUEUES,
        &[&connect, to_java, "3", from_java, by_priority],
    )
    .await;
    assert_eq!(
        lines,
        ["took rust-1", "took rust-2", "took rust-3", "consumed true"],
        "what Curator took from our queue"
    );
    let fifo = DistributedQueue::new(&zk, from_java);
    let mut got = Vec::new();
    while let Some(item) = fifo.try_take(SHORT).await.unwrap() {
        got.push(String::from_utf8(item).unwrap());
    }
    assert_eq!(got, ["java-1", "java-2", "java-3"]);
    let priority = DistributedPriorityQueue::new(&zk, by_priority);
    let mut got = Vec::new();
    while let Some(item) = priority.try_take(SHORT).await.unwrap() {
        got.push(String::from_utf8(item).unwrap());
    }
    assert_eq!(got, ["high", "mid", "mid-2", "low"]);
    assert!(ours.item_names().await.unwrap().is_empty());
}
