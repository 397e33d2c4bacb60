//! `ReadWriteLock`, `Semaphore` and `MultiLock`, each against our server and Apache
//! ZooKeeper 3.8: readers share and writers exclude (an in-test monitor counts who is
//! inside), a downgrade lets no queued writer in, at most `n` semaphore leases at once,
//! timed-out and dropped acquires leave no node, and multi-locks over the same paths
//! in opposite orders neither deadlock nor overlap.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{Downgrade, Error, Lock, MultiLock, ReadWriteLock, Semaphore};
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

/// Polls `check` until it holds (or fails the test after `WAIT`).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_lock_on_ours() {
    let server = TestingServer::start().await.unwrap();
    read_write_lock(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_write_lock_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    read_write_lock(&server.connect_string()).await;
}

async fn read_write_lock(connect: &str) {
    readers_share_and_writers_exclude(connect).await;
    a_downgrade_lets_waiting_readers_in_but_no_queued_writer(connect).await;
    readers_and_writers_under_contention(connect).await;
}

async fn readers_share_and_writers_exclude(connect: &str) {
    let dir = "/rw/basic";
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut rw = ReadWriteLock::new(&client(connect).await, dir);
        let read = rw.try_acquire_read(WAIT).await.unwrap();
        readers.push((rw, read.expect("readers share")));
    }
    let writer_zk = client(connect).await;
    let mut writer = ReadWriteLock::new(&writer_zk, dir);
    assert!(writer.try_acquire_write(SHORT).await.unwrap().is_none());
    assert_eq!(
        writer.participants().await.unwrap().len(),
        3,
        "a timed-out writer leaves no node"
    );
    // Curator's layout.
    for name in writer.participants().await.unwrap() {
        assert!(
            name.starts_with("_c_") && name.contains("-__READ__"),
            "{name}"
        );
    }
    let mut readers: Vec<ReadWriteLock> = {
        let mut locks = Vec::new();
        for (rw, read) in readers.drain(..) {
            read.release().await.unwrap();
            locks.push(rw);
        }
        locks
    };
    let write = writer.try_acquire_write(WAIT).await.unwrap().expect("free");
    let token = write.fencing_token();
    assert!(token.czxid > 0);
    assert!(readers[0].try_acquire_read(SHORT).await.unwrap().is_none());
    // Reentrant per side; no upgrade, no read while writing (each would wait for itself).
    let again = writer.acquire_write().await.unwrap();
    assert_eq!(again.fencing_token(), token);
    assert!(matches!(
        writer.acquire_read().await,
        Err(Error::WouldDeadlock(_))
    ));
    write.release().await.unwrap();
    assert!(writer.holds_write());
    again.release().await.unwrap();
    assert!(!writer.holds_write());
    let mut reader = ReadWriteLock::new(&writer_zk, dir);
    let read = reader.acquire_read().await.unwrap();
    assert!(matches!(
        reader.acquire_write().await,
        Err(Error::WouldDeadlock(_))
    ));
    read.release().await.unwrap();
    assert!(!reader.holds_read());
    assert!(reader.participants().await.unwrap().is_empty());
}

async fn a_downgrade_lets_waiting_readers_in_but_no_queued_writer(connect: &str) {
    let dir = "/rw/downgrade";
    let zk = client(connect).await;
    let mut owner = ReadWriteLock::new(&zk, dir);
    let write = owner.acquire_write().await.unwrap();
    // A reader waits behind the writer.
    let reader_zk = client(connect).await;
    let reader = tokio::spawn(async move {
        let mut rw = ReadWriteLock::new(&reader_zk, dir);
        let read = rw.acquire_read().await.unwrap();
        (rw, read)
    });
    eventually("the reader queued", || async {
        owner.participants().await.unwrap().len() == 2
    })
    .await;
    let Downgrade::Read(owner_read) = owner.downgrade(write).await.unwrap() else {
        panic!("nothing in between, yet the downgrade was refused");
    };
    assert!(owner.holds_read() && !owner.holds_write());
    let (reader, read) = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the reader got in after the downgrade")
        .unwrap();
    assert!(owner.holds_read() && reader.holds_read(), "both read now");
    read.release().await.unwrap();
    owner_read.release().await.unwrap();

    // With a writer queued behind ours, a downgrade would let it write while we read:
    // refused, and the write lock is still ours.
    let write = owner.acquire_write().await.unwrap();
    let inside = Arc::new(AtomicBool::new(true));
    let writer_zk = client(connect).await;
    let seen_inside = inside.clone();
    let writer = tokio::spawn(async move {
        let mut rw = ReadWriteLock::new(&writer_zk, dir);
        let write = rw.acquire_write().await.unwrap();
        let overlapped = seen_inside.load(Ordering::SeqCst);
        write.release().await.unwrap();
        overlapped
    });
    eventually("the writer queued", || async {
        owner.participants().await.unwrap().len() == 2
    })
    .await;
    let Downgrade::StillWriting(write) = owner.downgrade(write).await.unwrap() else {
        panic!("a downgrade let a queued writer in");
    };
    assert!(owner.holds_write() && !owner.holds_read());
    assert_eq!(
        owner.participants().await.unwrap().len(),
        2,
        "the refused downgrade left no reader node"
    );
    tokio::time::sleep(SHORT).await;
    assert!(!writer.is_finished(), "still excluded");
    inside.store(false, Ordering::SeqCst);
    write.release().await.unwrap();
    let overlapped = tokio::time::timeout(WAIT, writer).await.unwrap().unwrap();
    assert!(
        !overlapped,
        "the queued writer got in while we held the lock"
    );
}

/// Four sessions mix reads and writes; the monitor counts who is inside.
async fn readers_and_writers_under_contention(connect: &str) {
    let readers = Arc::new(AtomicUsize::new(0));
    let writers = Arc::new(AtomicUsize::new(0));
    let max_readers = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for session in 0..4 {
        let zk = client(connect).await;
        let (readers, writers, max_readers) =
            (readers.clone(), writers.clone(), max_readers.clone());
        tasks.push(tokio::spawn(async move {
            let mut rw = ReadWriteLock::new(&zk, "/rw/contended");
            for turn in 0..8 {
                if (session + turn) % 3 == 0 {
                    let write = rw.acquire_write().await.unwrap();
                    assert_eq!(writers.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                    assert_eq!(readers.load(Ordering::SeqCst), 0, "a reader during a write");
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    writers.fetch_sub(1, Ordering::SeqCst);
                    write.release().await.unwrap();
                } else {
                    let read = rw.acquire_read().await.unwrap();
                    let now = readers.fetch_add(1, Ordering::SeqCst) + 1;
                    max_readers.fetch_max(now, Ordering::SeqCst);
                    assert_eq!(writers.load(Ordering::SeqCst), 0, "a write during a read");
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    readers.fetch_sub(1, Ordering::SeqCst);
                    read.release().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT * 2, t)
            .await
            .expect("contenders finish")
            .unwrap();
    }
    let zk = client(connect).await;
    assert!(ReadWriteLock::new(&zk, "/rw/contended")
        .participants()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_on_ours() {
    let server = TestingServer::start().await.unwrap();
    semaphore(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    semaphore(&server.connect_string()).await;
}

async fn semaphore(connect: &str) {
    let dir = "/sem/pool";
    let zk = client(connect).await;
    let pool = Semaphore::new(&zk, dir, 2);
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    // Curator's layout: leases under `leases`, protected `lease-` nodes.
    let nodes = pool.lease_nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(nodes
        .iter()
        .all(|n| n.starts_with("_c_") && n.contains("-lease-")));
    assert!(a.path().starts_with("/sem/pool/leases/"));
    // Full: a try times out and leaves nothing behind.
    let other = Semaphore::new(&client(connect).await, dir, 2);
    assert!(other.try_acquire(SHORT).await.unwrap().is_none());
    assert_eq!(pool.lease_nodes().await.unwrap().len(), 2);
    // A waiter gets the lease given back.
    let waiter = tokio::spawn(async move { other.acquire().await.unwrap() });
    tokio::time::sleep(SHORT).await;
    assert!(!waiter.is_finished());
    a.release().await.unwrap();
    let c = tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
    // A lease dropped unreleased is given back too.
    drop(b);
    eventually("the dropped lease went", || async {
        pool.lease_nodes().await.unwrap().len() == 1
    })
    .await;
    // All or none.
    assert!(pool.try_acquire_many(2, SHORT).await.unwrap().is_none());
    eventually("the partial acquire gave back what it took", || async {
        pool.lease_nodes().await.unwrap().len() == 1
    })
    .await;
    c.release().await.unwrap();
    let two = pool.acquire_many(2).await.unwrap();
    for lease in two {
        lease.release().await.unwrap();
    }

    // Five sessions, at most two inside at once, every turn taken.
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let turns = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let zk = client(connect).await;
        let (inside, most, turns) = (inside.clone(), most.clone(), turns.clone());
        tasks.push(tokio::spawn(async move {
            let pool = Semaphore::new(&zk, "/sem/contended", 2);
            for _ in 0..5 {
                let lease = pool.acquire().await.unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(now <= 2, "{now} holders of a 2-lease semaphore");
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                turns.fetch_add(1, Ordering::SeqCst);
                lease.release().await.unwrap();
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT * 2, t)
            .await
            .expect("holders finish")
            .unwrap();
    }
    assert_eq!(turns.load(Ordering::SeqCst), 25);
    assert!(Semaphore::new(&zk, "/sem/contended", 2)
        .lease_nodes()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_lock_on_ours() {
    let server = TestingServer::start().await.unwrap();
    multi_lock(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_lock_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    multi_lock(&server.connect_string()).await;
}

async fn multi_lock(connect: &str) {
    let zk = client(connect).await;
    // One of the locks is held elsewhere: a try gets none of them.
    let mut blocker = Lock::new(&client(connect).await, "/multi/b");
    let blocked = blocker.acquire().await.unwrap();
    let mut both = MultiLock::new(&zk, &["/multi/b", "/multi/a"]);
    assert_eq!(both.paths(), ["/multi/a", "/multi/b"]);
    assert!(both.try_acquire(SHORT).await.unwrap().is_none());
    assert!(!both.is_acquired());
    let mut a = Lock::new(&client(connect).await, "/multi/a");
    a.try_acquire(WAIT)
        .await
        .unwrap()
        .expect("the timed-out multi-lock gave back /multi/a")
        .release()
        .await
        .unwrap();
    blocked.release().await.unwrap();
    let first = both.acquire().await.unwrap();
    let second = both.acquire().await.unwrap();
    assert!(
        a.try_acquire(SHORT).await.unwrap().is_none(),
        "held as part of the multi-lock"
    );
    first.release().await.unwrap();
    assert!(both.is_acquired(), "reentrant");
    second.release().await.unwrap();
    assert!(!both.is_acquired());
    assert!(
        a.try_acquire(WAIT).await.unwrap().is_some(),
        "all given back"
    );

    // Opposite orders, several sessions, a plain lock on one of the paths too: no
    // deadlock, never two inside.
    let inside = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let zk = client(connect).await;
        let inside = inside.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..6 {
                let enter = |inside: &AtomicBool| {
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                };
                if i == 3 {
                    let mut lock = Lock::new(&zk, "/multi/x");
                    let guard = lock.acquire().await.unwrap();
                    enter(&inside);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.store(false, Ordering::SeqCst);
                    guard.release().await.unwrap();
                } else {
                    let paths = if i % 2 == 0 {
                        ["/multi/x", "/multi/y"]
                    } else {
                        ["/multi/y", "/multi/x"]
                    };
                    let mut lock = MultiLock::new(&zk, &paths);
                    let guard = lock.acquire().await.unwrap();
                    enter(&inside);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.store(false, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT * 2, t)
            .await
            .expect("no deadlock")
            .unwrap();
    }
}
