//! Ensembles of our server (in-process `TestingCluster`s): quorum writes, the failure
//! scenarios users care about under continuous client load, partitions, and the time a
//! failover takes. After every scenario, no acknowledged write may be missing and all
//! members must converge to the same tree (same digest at the same zxid).

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_client::{Client, Error};
use zk_proto::{Acl, CreateMode};
use zk_server::role::Role;
use zk_server::testing::{four_letter_word, TestingCluster};

const WAIT: Duration = Duration::from_secs(20);
/// How long writes may stop after the leader does (see the failover scenario).
const FAILOVER_BOUND: Duration = Duration::from_secs(3);

/// Logs to the test's output when RUST_LOG is set.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

async fn client(connect: &str) -> Client {
    init_logging();
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the ensemble")
}

/// Waits until every running member has applied the same zxid with the same tree.
async fn converged(cluster: &TestingCluster) -> (u64, i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let digests: Vec<(u64, i64)> = cluster
            .ids()
            .into_iter()
            .filter_map(|id| cluster.digest(id))
            .collect();
        if digests.windows(2).all(|w| w[0] == w[1]) {
            return digests[0];
        }
        assert!(
            Instant::now() < deadline,
            "members did not converge: {digests:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clients creating znodes as fast as they are answered; every create that was
/// acknowledged is recorded.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeSet<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(connect: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let setup = client(connect).await;
        match setup.create("/load").await {
            Ok(_) | Err(Error::Keeper { .. }) => {}
            Err(e) => panic!("setup: {e}"),
        }
        let mut tasks = Vec::new();
        for c in 0..clients {
            let zk = client(connect).await;
            let stop = stop.clone();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let path = format!("/load/c{c}-{n}");
                    n += 1;
                    match zk.create(&path).data(b"x").await {
                        Ok(_) => {
                            acked.lock().unwrap().insert(path);
                        }
                        // Unknown outcome (connection lost mid-write): not acknowledged.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }));
        }
        Load { stop, acked, tasks }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` further writes were acknowledged.
    async fn progresses(&self, more: usize) {
        let target = self.acked() + more;
        let deadline = Instant::now() + WAIT;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "the load stalled at {} acknowledged writes",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = tokio::time::timeout(WAIT, t).await;
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Every acknowledged write is on every running member.
fn all_present(cluster: &TestingCluster, acked: &BTreeSet<String>) {
    for id in cluster.ids() {
        let Some(core) = cluster.core(id) else {
            continue;
        };
        let db = core.db();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|p| db.tree().get(p).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "member {id} lost {} acknowledged writes, e.g. {:?}",
            missing.len(),
            missing.first()
        );
    }
}

fn followers(cluster: &TestingCluster, leader: u64) -> Vec<u64> {
    cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader && cluster.is_running(*id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_ensemble_replicates_and_reports_its_roles() {
    let cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let zk = client(&cluster.connect_string()).await;
    let open = Acl::open_unsafe();
    zk.create("/a").data(b"1").acl(&open).await.unwrap();
    let seq = zk
        .create("/a/s-")
        .acl(&open)
        .mode(CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/a/s-0000000000");
    converged(&cluster).await;

    // Every member serves its own clients and reads its own writes.
    for id in cluster.ids() {
        let addr = cluster.client_addr(id).unwrap().to_string();
        let member = client(&addr).await;
        let path = format!("/m{id}");
        member
            .create(&path)
            .acl(&open)
            .mode(CreateMode::Ephemeral)
            .await
            .unwrap();
        assert!(member.exists(&path).await.unwrap().is_some());
        assert_eq!(member.get_data("/a").await.unwrap().0, b"1");
        member.sync("/").await.unwrap();
        // Four-letter words say what each member is.
        let srvr = four_letter_word(cluster.client_addr(id).unwrap(), "srvr")
            .await
            .unwrap();
        let mode = if id == leader { "leader" } else { "follower" };
        assert!(srvr.contains(&format!("Mode: {mode}\n")), "{srvr}");
        // Only the leader reports the sizes of what it proposed.
        let sizes = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Proposal sizes last/min/max: "));
        assert_eq!(sizes.is_some(), id == leader, "{srvr}");
        if let Some(sizes) = sizes {
            let sizes: Vec<i64> = sizes.split('/').map(|n| n.parse().unwrap()).collect();
            assert!(
                sizes.iter().all(|n| *n > 0) && sizes[1] <= sizes[2],
                "{srvr}"
            );
        }
        let mntr = four_letter_word(cluster.client_addr(id).unwrap(), "mntr")
            .await
            .unwrap();
        assert!(mntr.contains("zk_quorum_size\t3\n"), "{mntr}");
        assert_eq!(mntr.contains("zk_learners\t2\n"), id == leader, "{mntr}");
        member.close().await;
    }
    // /zookeeper/config lists the members as ZooKeeper writes a static configuration.
    let (config, stat) = zk.get_data("/zookeeper/config").await.unwrap();
    let config = String::from_utf8(config).unwrap();
    assert!(config.starts_with("server.1=127.0.0.1:"), "{config}");
    assert!(config.ends_with("\nversion=0"), "{config}");
    assert_eq!(config.lines().count(), 4);
    assert_eq!(stat.version, -1);
    cluster.shutdown().await;
}

/// Scenarios (1)-(3) and (5) of the quorum issue on one 3-member ensemble, under load:
/// a follower fails and recovers, a different follower fails and recovers, the leader
/// fails (and the time until writes are accepted again is measured), then the next
/// leader fails too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_and_leaders_fail_and_recover_under_load_without_losing_writes() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let load = Load::start(&cluster.connect_string(), 4).await;
    load.progresses(50).await;

    // (1) and (2): each follower in turn fails and recovers.
    for follower in followers(&cluster, leader) {
        cluster.stop(follower).await;
        load.progresses(50).await;
        cluster.restart(follower).await.unwrap();
        cluster.wait_for_leader(WAIT).await.expect("a leader");
        load.progresses(50).await;
    }

    // (3): the leader fails; writes resume once a new leader is elected.
    let before = load.acked();
    let stopping = Instant::now();
    cluster.stop(leader).await;
    // Measured from the moment the leader is gone (a clean stop takes its own time).
    let lost_at = Instant::now();
    println!(
        "stopping the leader took {} ms",
        stopping.elapsed().as_millis()
    );
    let new_leader = cluster.wait_for_leader(WAIT).await.expect("a new leader");
    let elected = lost_at.elapsed();
    while load.acked() == before {
        assert!(
            lost_at.elapsed() < WAIT,
            "no write accepted after the leader failed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let writes_again = lost_at.elapsed();
    println!(
        "leader failover (3 members, in-process): new leader after {} ms, writes acknowledged again after {} ms",
        elected.as_millis(),
        writes_again.as_millis()
    );
    // Measured here at about 0.2 s for both; the bound leaves room for a loaded 2-core
    // CI machine, where timers and the election round run late, and still fails a
    // failover that waits for a session timeout or a second election.
    assert!(
        writes_again < FAILOVER_BOUND,
        "writes resumed {} ms after the leader stopped (bound {} ms)",
        writes_again.as_millis(),
        FAILOVER_BOUND.as_millis()
    );
    assert_ne!(new_leader, leader);
    cluster.restart(leader).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    load.progresses(50).await;

    // (5): the next leader fails as well, killed this time.
    let next = cluster.wait_for_leader(WAIT).await.expect("a leader");
    cluster.kill(next).await;
    cluster.wait_for_leader(WAIT).await.expect("another leader");
    load.progresses(50).await;
    cluster.restart(next).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    load.progresses(20).await;

    let acked = load.finish().await;
    converged(&cluster).await;
    all_present(&cluster, &acked);
    println!(
        "{} acknowledged writes, all present on every member",
        acked.len()
    );
    cluster.shutdown().await;
}

/// Scenario (4): two followers of a 5-member ensemble fail together and recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_followers_of_five_fail_and_recover_under_load() {
    let mut cluster = TestingCluster::start(5).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let load = Load::start(&cluster.connect_string(), 4).await;
    load.progresses(50).await;
    let down: Vec<u64> = followers(&cluster, leader).into_iter().take(2).collect();
    for id in &down {
        cluster.kill(*id).await;
    }
    load.progresses(100).await;
    for id in &down {
        cluster.restart(*id).await.unwrap();
    }
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    load.progresses(50).await;
    let acked = load.finish().await;
    converged(&cluster).await;
    all_present(&cluster, &acked);
    cluster.shutdown().await;
}

/// A leader cut off from its followers stops accepting writes and drops its clients;
/// the majority elects a new leader and keeps going; healed, the old leader follows and
/// catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_stops_accepting_writes_and_the_majority_keeps_going() {
    let cluster = TestingCluster::start(3).await.unwrap();
    let old = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let minority_addr = cluster.client_addr(old).unwrap().to_string();
    let on_minority = client(&minority_addr).await;
    let open = Acl::open_unsafe();
    on_minority.create("/before").acl(&open).await.unwrap();
    let load = Load::start(
        &followers(&cluster, old)
            .iter()
            .map(|id| cluster.client_addr(*id).unwrap().to_string())
            .collect::<Vec<_>>()
            .join(","),
        2,
    )
    .await;
    load.progresses(20).await;

    cluster.isolate(old);
    // The majority elects a new leader and keeps taking writes.
    let deadline = Instant::now() + WAIT;
    let new = loop {
        if let Some(l) = cluster.leader().filter(|l| *l != old) {
            break l;
        }
        assert!(Instant::now() < deadline, "the majority elected no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    load.progresses(50).await;
    // The cut-off member stops acting as leader and accepts no write.
    let deadline = Instant::now() + WAIT;
    while cluster.core(old).unwrap().role() != Role::Looking {
        assert!(Instant::now() < deadline, "the cut-off leader kept serving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = tokio::time::timeout(
        Duration::from_secs(3),
        on_minority.create("/minority").acl(&open),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a write was acknowledged by a minority"
    );
    assert!(four_letter_word(cluster.client_addr(old).unwrap(), "srvr")
        .await
        .unwrap()
        .contains("not currently serving"));
    // The refused write is still queued in the client (it would go out once its member
    // is back, as ZooKeeper's client would send it); closing the client drops it.
    on_minority.close().await;

    cluster.heal(old);
    assert_eq!(cluster.wait_for_leader(WAIT).await, Some(new));
    load.progresses(20).await;
    let acked = load.finish().await;
    converged(&cluster).await;
    all_present(&cluster, &acked);
    let core = cluster.core(old).unwrap();
    assert!(core.db().tree().get("/minority").is_none());
    assert!(core.db().tree().get("/before").is_some());
    cluster.shutdown().await;
}

/// Concurrent clients read (sync + getData), write and compare-and-set a few keys while
/// members, the leader among them, are stopped and restarted; each key's recorded
/// history, closed by a final read from a fresh session, must be linearizable. The
/// workers run until the last fault has healed, and every fault must have overlapped
/// operations of every worker: a history recorded before or after the faults would
/// prove nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_writes_and_cas_stay_linearizable_while_members_fail() {
    use zk_tests::linearizability::{check, Event, Op, Outcome, Register};
    const KEYS: usize = 3;
    const WORKERS: u64 = 4;
    /// Bounds each worker (and so each key's history, which is checked exhaustively)
    /// should the faults take far longer than usual.
    const MAX_OPS: usize = 1_500;
    /// Each worker pauses this long between operations, so that its operations spread
    /// over the whole fault schedule (about 5 s here) instead of being spent before the
    /// first fault: unpaced, a worker once did all its operations in the first 2 s.
    const PACE: Duration = Duration::from_millis(15);

    let mut cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let connect = cluster.connect_string();
    let setup = client(&connect).await;
    let open = Acl::open_unsafe();
    setup.create("/lin").acl(&open).await.unwrap();
    for k in 0..KEYS {
        setup
            .create(&format!("/lin/k{k}"))
            .data(b"0")
            .acl(&open)
            .await
            .unwrap();
    }
    let epoch = Instant::now();
    let now = move || epoch.elapsed().as_micros() as u64;
    let histories: Arc<Mutex<Vec<Vec<Event>>>> = Arc::new(Mutex::new(vec![Vec::new(); KEYS]));
    // Every operation of each worker, as (call, return): for the overlap check.
    type Spans = Vec<Vec<(u64, u64)>>;
    let spans: Arc<Mutex<Spans>> = Arc::new(Mutex::new(vec![Vec::new(); WORKERS as usize]));
    let faults_over = Arc::new(AtomicBool::new(false));

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let zk = client(&connect).await;
        let histories = histories.clone();
        let spans = spans.clone();
        let faults_over = faults_over.clone();
        workers.push(tokio::spawn(async move {
            // A fixed seed per worker: the same choices every run.
            let mut rng = StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
            let mut known_version = [0i32; KEYS];
            for n in 0..MAX_OPS {
                if faults_over.load(Ordering::SeqCst) {
                    break;
                }
                let k = rng.gen_range(0..KEYS);
                let path = format!("/lin/k{k}");
                let call = now();
                let event = match rng.gen_range(0..3) {
                    0 => {
                        let read = async {
                            zk.sync(&path).await?;
                            zk.get_data(&path).await
                        };
                        match read.await {
                            Ok((data, stat)) => {
                                known_version[k] = stat.version;
                                let value = String::from_utf8_lossy(&data).parse().unwrap();
                                Some((
                                    Op::Read,
                                    Outcome::Read(Register {
                                        value,
                                        version: stat.version,
                                    }),
                                ))
                            }
                            // A read that was not answered says nothing.
                            Err(_) => None,
                        }
                    }
                    choice => {
                        let value = (w + 1) * 1_000_000 + n as u64;
                        let (op, version) = if choice == 1 {
                            (Op::Write(value), None)
                        } else {
                            let expected = known_version[k];
                            (Op::Cas { expected, value }, Some(expected))
                        };
                        let outcome = match zk
                            .set_data(&path, value.to_string().as_bytes(), version)
                            .await
                        {
                            Ok(stat) => Outcome::Written(stat.version),
                            Err(e) if e.code() == Some(zk_proto::ErrorCode::BadVersion) => {
                                Outcome::CasFailed
                            }
                            Err(_) => Outcome::Unknown,
                        };
                        Some((op, outcome))
                    }
                };
                let ret = now();
                spans.lock().unwrap()[w as usize].push((call, ret));
                match event {
                    Some((op, outcome)) => {
                        if outcome == Outcome::Unknown {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        histories.lock().unwrap()[k].push(Event {
                            op,
                            outcome,
                            call,
                            ret,
                        });
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
                tokio::time::sleep(PACE).await;
            }
        }));
    }
    // Meanwhile, members fail and come back, one at a time; twice it is the leader.
    // Each fault lasts from its stop until a leader is back after the restart.
    let mut faults = Vec::new();
    for round in 0..4 {
        let victim = if round % 2 == 0 {
            cluster.wait_for_leader(WAIT).await.expect("a leader")
        } else {
            1 + (round as u64 % 3)
        };
        let from = now();
        cluster.stop(victim).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.restart(victim).await.unwrap();
        cluster.wait_for_leader(WAIT).await.expect("a leader");
        faults.push((victim, from, now()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    faults_over.store(true, Ordering::SeqCst);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .expect("workers finish")
            .unwrap();
    }

    // Every fault overlapped operations of every worker.
    let spans = spans.lock().unwrap().clone();
    for (victim, from, to) in &faults {
        for (w, worker) in spans.iter().enumerate() {
            let overlapping = worker
                .iter()
                .filter(|(call, ret)| call < to && ret > from)
                .count();
            assert!(
                overlapping > 0,
                "worker {w} had no operation during the fault of member {victim} \
                 ({from}..{to} µs): the history would not test it"
            );
        }
        println!(
            "fault of member {victim}: {:.1} s, {} operations overlapped it",
            (to - from) as f64 / 1e6,
            spans
                .iter()
                .flatten()
                .filter(|(call, ret)| call < to && ret > from)
                .count()
        );
    }

    // Each history ends with a read from a fresh session, once everything healed: an
    // acknowledged write that was lost would show there.
    let checker = client(&connect).await;
    let mut histories = histories.lock().unwrap().clone();
    for (k, history) in histories.iter_mut().enumerate() {
        let path = format!("/lin/k{k}");
        let call = now();
        checker.sync(&path).await.expect("final sync");
        let (data, stat) = checker.get_data(&path).await.expect("final read");
        history.push(Event {
            op: Op::Read,
            outcome: Outcome::Read(Register {
                value: String::from_utf8_lossy(&data).parse().unwrap(),
                version: stat.version,
            }),
            call,
            ret: now(),
        });
    }
    let checking = Instant::now();
    for (k, history) in histories.iter().enumerate() {
        let unknown = history
            .iter()
            .filter(|e| e.outcome == Outcome::Unknown)
            .count();
        println!(
            "key {k}: {} operations ({unknown} with unknown outcome)",
            history.len()
        );
        assert!(history.len() >= 20, "too few operations on key {k}");
        if let Err(e) = check(
            history,
            Register {
                value: 0,
                version: 0,
            },
        ) {
            panic!("key {k}: {e}\n{history:#?}");
        }
    }
    println!("checked in {:.2} s", checking.elapsed().as_secs_f64());
    checker.close().await;
    cluster.shutdown().await;
}

/// Per-session FIFO across failover: one client pipelines sequential creates while the
/// leader fails; in sequence order, the creates that took effect are in the order they
/// were sent, and every acknowledged one is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_pipelined_writes_keep_their_order_through_a_leader_failure() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let zk = client(&cluster.connect_string()).await;
    let open = Acl::open_unsafe();
    zk.create("/fifo").acl(&open).await.unwrap();
    let mut acked = Vec::new();
    for round in 0..2 {
        // Start each round on a working connection.
        let deadline = Instant::now() + WAIT;
        while zk.exists("/fifo").await.is_err() {
            assert!(Instant::now() < deadline, "the client did not get back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let creates: Vec<_> = (0..300)
            .map(|i| {
                let data = format!("{}", round * 1000 + i);
                zk.create("/fifo/n-")
                    .data(data.as_bytes())
                    .acl(&open)
                    .mode(CreateMode::PersistentSequential)
                    .send()
            })
            .collect();
        if round == 0 {
            cluster.stop(leader).await;
        }
        for c in creates {
            if let Ok(path) = c.await {
                acked.push(path);
            }
        }
        cluster.wait_for_leader(WAIT).await.expect("a leader");
    }
    cluster.restart(leader).await.unwrap();
    zk.sync("/fifo").await.unwrap();
    let mut children = zk.get_children("/fifo").await.unwrap();
    children.sort();
    let mut last = -1i64;
    for child in &children {
        let (data, _) = zk.get_data(&format!("/fifo/{child}")).await.unwrap();
        let sent: i64 = String::from_utf8_lossy(&data).parse().unwrap();
        assert!(
            sent > last,
            "{child} holds write {sent}, sent before {last}"
        );
        last = sent;
    }
    for path in &acked {
        assert!(
            children.iter().any(|c| path.ends_with(c.as_str())),
            "acknowledged {path} is missing"
        );
    }
    assert!(!acked.is_empty());
    cluster.shutdown().await;
}

/// A client on a follower pipelines a create, a read of it and a watch on it: the
/// reads, evaluated on the follower when it applies the session's write, see the create,
/// and the watch fires on a later change made through the leader (its event after the
/// answer that set it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_pipelined_reads_after_their_sessions_writes() {
    let cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let follower = followers(&cluster, leader)[0];
    let addr = |id| cluster.client_addr(id).expect("running").to_string();
    let on_follower = client(&addr(follower)).await;
    let on_leader = client(&addr(leader)).await;
    let open = Acl::open_unsafe();
    for round in 0..20 {
        let path = format!("/pipelined-{round}");
        let created = on_follower.create(&path).data(b"one").acl(&open).send();
        let read = on_follower.get_data(&path);
        let (exists, changed) = on_follower.exists_and_watch(&path);
        let children = on_follower.get_children("/");
        created.await.expect("created");
        let (data, _) = read.await.expect("the read sees its session's create");
        assert_eq!(data, b"one");
        assert!(exists.await.expect("exists").is_some());
        assert!(children
            .await
            .expect("children")
            .contains(&format!("pipelined-{round}")));
        on_leader
            .set_data(&path, b"two", None)
            .await
            .expect("set through the leader");
        let event = tokio::time::timeout(WAIT, changed)
            .await
            .expect("the watch fires")
            .expect("an event");
        assert_eq!(event.path, path);
    }
    cluster.shutdown().await;
}

/// A member that was down while the leader took a snapshot and purged the log behind
/// it catches up from the snapshot; a client that saw a later zxid is refused by a
/// member that has not caught up (lastZxidSeen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_fell_behind_the_log_catches_up_from_a_snapshot() {
    let mut cluster = TestingCluster::start_configured(3, 0, |c| c.snap_count = 50)
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let behind = followers(&cluster, leader)[0];
    let behind_addr = cluster.client_addr(behind).unwrap().to_string();
    cluster.isolate(behind);
    let others: Vec<String> = followers(&cluster, leader)
        .into_iter()
        .chain([leader])
        .filter(|id| *id != behind)
        .map(|id| cluster.client_addr(id).unwrap().to_string())
        .collect();
    let zk = client(&others.join(",")).await;
    let open = Acl::open_unsafe();
    zk.create("/snap").acl(&open).await.unwrap();
    for i in 0..300 {
        zk.create(&format!("/snap/n{i}"))
            .data(b"x")
            .acl(&open)
            .await
            .unwrap();
    }
    // The member that is behind refuses a session that has seen more than it has.
    let refused = Client::builder(&behind_addr)
        .session(zk.session_id(), &zk.session_password())
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await;
    assert!(
        refused.is_err(),
        "a lagging member took a session from the future"
    );
    let purged = cluster.core(leader).unwrap().db().last_zxid();
    assert!(purged > 300);

    cluster.heal(behind);
    converged(&cluster).await;
    let db_has = |path: &str| {
        cluster
            .core(behind)
            .unwrap()
            .db()
            .tree()
            .get(path)
            .is_some()
    };
    assert!(db_has("/snap/n0") && db_has("/snap/n299"));
    // Restarted from its own data (the installed snapshot), it still has everything.
    cluster.restart(behind).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    converged(&cluster).await;
    let resumed = Client::builder(&behind_addr)
        .session(zk.session_id(), &zk.session_password())
        .connect()
        .await
        .expect("the caught-up member takes the session");
    assert_eq!(resumed.session_id(), zk.session_id());
    assert_eq!(resumed.get_children("/snap").await.unwrap().len(), 300);
    cluster.shutdown().await;
}

/// Observers serve clients and forward writes but do not vote: with the observer up
/// and one of three voters down, writes still commit; with two voters down they do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_serve_and_forward_but_do_not_vote() {
    let mut cluster = TestingCluster::start_with(3, 1).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let observer = 4;
    let observer_addr = cluster.client_addr(observer).unwrap();
    // The leader adds the observer as a learner; then it observes.
    let deadline = Instant::now() + WAIT;
    while cluster.core(observer).unwrap().role() != Role::Observer {
        assert!(Instant::now() < deadline, "the observer never observed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let srvr = four_letter_word(observer_addr, "srvr").await.unwrap();
    assert!(srvr.contains("Mode: observer\n"), "{srvr}");
    let zk = client(&observer_addr.to_string()).await;
    let open = Acl::open_unsafe();
    zk.create("/via-observer").acl(&open).await.unwrap();
    assert!(zk.exists("/via-observer").await.unwrap().is_some());
    let mntr = four_letter_word(cluster.client_addr(leader).unwrap(), "mntr")
        .await
        .unwrap();
    assert!(mntr.contains("zk_quorum_size\t3\n"), "{mntr}");
    assert!(mntr.contains("zk_learners\t3\n"), "{mntr}");

    let voters = followers(&cluster, leader);
    let voters: Vec<u64> = voters.into_iter().filter(|id| *id != observer).collect();
    cluster.stop(voters[0]).await;
    zk.create("/one-voter-down").acl(&open).await.unwrap();
    cluster.stop(voters[1]).await;
    let blocked =
        tokio::time::timeout(Duration::from_secs(3), zk.create("/no-quorum").acl(&open)).await;
    assert!(
        !matches!(blocked, Ok(Ok(_))),
        "a write committed with the observer standing in for a voter"
    );
    cluster.shutdown().await;
}

/// A client whose member fails resumes its session on another member — ephemerals
/// and watches intact — and the time that takes is reported; the session is then kept
/// alive through the new member (touches reach the leader, which alone expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_its_session_on_another_member() {
    init_logging();
    let mut cluster = TestingCluster::start(3).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let zk = Client::builder(&cluster.connect_string())
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let open = Acl::open_unsafe();
    zk.create("/eph")
        .acl(&open)
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (exists, changed) = zk.exists_and_watch("/watched");
    assert!(exists.await.unwrap().is_none());
    let session = zk.session_id();
    let on = zk.connected_server().expect("connected");
    let member = cluster
        .ids()
        .into_iter()
        .find(|id| cluster.client_addr(*id).unwrap().to_string() == on)
        .unwrap();
    let mut states = zk.state_changes();
    // From the moment the member starts going away (its clients are dropped first).
    let lost_at = Instant::now();
    cluster.stop(member).await;
    tokio::time::timeout(WAIT, async {
        loop {
            if zk.state() == zk_client::SessionState::Connected
                && zk.connected_server().is_some_and(|s| s != on)
            {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), states.next()).await;
        }
    })
    .await
    .expect("resumed on another member");
    println!(
        "session resumed on another member {} ms after its member failed",
        lost_at.elapsed().as_millis()
    );
    assert_eq!(zk.session_id(), session);
    // Longer than the session timeout: the session lives on through the new member.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(zk.exists("/eph").await.unwrap().is_some());
    let other = client(&cluster.connect_string()).await;
    other.create("/watched").acl(&open).await.unwrap();
    let event = tokio::time::timeout(WAIT, changed).await.unwrap().unwrap();
    assert_eq!(event.path, "/watched");
    // Closed, its ephemeral goes everywhere.
    zk.close().await;
    other.sync("/").await.unwrap();
    assert!(other.exists("/eph").await.unwrap().is_none());
    cluster.restart(member).await.unwrap();
    cluster.shutdown().await;
}

/// readonlymode.enabled: a member cut off from its quorum serves reads to clients that
/// accept read-only service (NotReadOnly on writes, `isro` = `ro`), and goes back to
/// read-write, dropping them so they reconnect, when the quorum returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_member_serves_reads_in_read_only_mode_until_the_quorum_returns() {
    use zk_client::SessionState;
    let cluster = TestingCluster::start_configured(3, 0, |c| c.read_only_mode = true)
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let cut = followers(&cluster, leader)[0];
    let cut_addr = cluster.client_addr(cut).unwrap();
    let writer = client(&cluster.connect_string()).await;
    let open = Acl::open_unsafe();
    writer
        .create("/ro")
        .data(b"before")
        .acl(&open)
        .await
        .unwrap();
    converged(&cluster).await;
    let zk = Client::builder(&cut_addr.to_string())
        .read_only(true)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    assert_eq!(zk.state(), SessionState::Connected);
    let session = zk.session_id();
    assert_eq!(
        four_letter_word(cut_addr, "isro").await.as_deref(),
        Some("rw")
    );

    cluster.isolate(cut);
    let cut_core = cluster.core(cut).unwrap().clone();
    let wait_state = |want: SessionState| {
        let zk = zk.clone();
        let mut states = zk.state_changes();
        let cut_core = cut_core.clone();
        async move {
            tokio::time::timeout(WAIT, async {
                while zk.state() != want {
                    let _ = tokio::time::timeout(Duration::from_millis(50), states.next()).await;
                }
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "never {want:?}, still {:?}; the cut-off member: {:?}, connected to {:?}",
                    zk.state(),
                    cut_core.quorum(),
                    zk.connected_server()
                )
            });
        }
    };
    wait_state(SessionState::ConnectedReadOnly).await;
    assert_eq!(
        zk.session_id(),
        session,
        "a known session is kept read-only"
    );
    assert_eq!(
        four_letter_word(cut_addr, "isro").await.as_deref(),
        Some("ro")
    );
    assert_eq!(zk.get_data("/ro").await.unwrap().0, b"before");
    let refused = zk
        .set_data("/ro", b"from-minority", None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(zk_proto::ErrorCode::NotReadOnly));
    // A client that never saw a read-write server gets a session local to the member.
    let fresh = Client::builder(&cut_addr.to_string())
        .read_only(true)
        .connect()
        .await
        .unwrap();
    assert_eq!(fresh.state(), SessionState::ConnectedReadOnly);
    assert!(fresh.exists("/ro").await.unwrap().is_some());
    let mntr = four_letter_word(cut_addr, "mntr").await.unwrap();
    assert!(mntr.contains("zk_local_sessions\t1\n"), "{mntr}");
    // A client that insists on read-write service is turned away.
    let rw_only = Client::builder(&cut_addr.to_string())
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await;
    assert!(rw_only.is_err());
    // Meanwhile the majority goes on.
    writer.set_data("/ro", b"after", None).await.unwrap();

    cluster.heal(cut);
    wait_state(SessionState::Connected).await;
    assert_eq!(zk.session_id(), session);
    zk.sync("/ro").await.unwrap();
    assert_eq!(zk.get_data("/ro").await.unwrap().0, b"after");
    cluster.shutdown().await;
}

/// A session that reconnects through another member has moved: a write from its old
/// connection is refused and that connection closed (ZooKeeper closes it rather than
/// answering SessionMoved), on a follower at its next write, on the leader at its next
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_session_loses_its_old_connection() {
    use zk_client::SessionState;
    let cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let follower = followers(&cluster, leader)[0];
    let other = followers(&cluster, leader)[1];
    let open = Acl::open_unsafe();
    for (old_member, new_member) in [(follower, other), (leader, other)] {
        let old_addr = cluster.client_addr(old_member).unwrap().to_string();
        let old = client(&old_addr).await;
        old.create("/moved-eph")
            .acl(&open)
            .mode(CreateMode::Ephemeral)
            .await
            .unwrap();
        let mut states = old.state_changes();
        // The same session, taken over through another member.
        let new = Client::builder(&cluster.client_addr(new_member).unwrap().to_string())
            .session(old.session_id(), &old.session_password())
            .connect()
            .await
            .unwrap();
        assert_eq!(new.session_id(), old.session_id());
        let refused = old.create("/moved-write").acl(&open).await;
        assert_eq!(refused, Err(Error::ConnectionLoss), "member {old_member}");
        new.sync("/").await.unwrap();
        assert!(new.exists("/moved-write").await.unwrap().is_none());
        // The old handle sees its connection go. The server answers the refused write
        // (ConnectionLoss) before it closes the connection, so the client may take the
        // answer in before it reads the end of the stream: wait for that.
        let went =
            tokio::time::timeout(WAIT, states.wait_for(|s| s != SessionState::Connected)).await;
        assert!(
            went.is_ok(),
            "member {old_member}: the old connection stayed open"
        );
        assert!(new.exists("/moved-eph").await.unwrap().is_some());
        new.close().await;
        old.close().await;
    }
    cluster.shutdown().await;
}

/// reconfigEnabled: a super user adds a member (it catches up, then votes) and removes
/// another through the reconfig operation; `/zookeeper/config` follows on every member
/// with the publishing zxid as its version, and the quorum is the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_adds_and_removes_members() {
    let super_digest = zk_server::acl::digest("super:secret");
    let mut cluster = TestingCluster::start_configured(3, 0, |c| {
        c.reconfig_enabled = true;
        c.super_digest = Some(super_digest.clone());
    })
    .await
    .unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let open = Acl::open_unsafe();
    let anyone = client(&cluster.connect_string()).await;
    anyone.create("/before").acl(&open).await.unwrap();
    let (joining_id, joining) = cluster.add_member(false).await.unwrap();
    // Only a super user may reconfigure; but, as in ZooKeeper 3.8 (and kazoo's suite
    // checks it), the request is judged before the ACL: a stale version is BadVersion
    // and a malformed member BadArguments, whoever asks.
    let refused = anyone.reconfig(Some(&joining), None, None, None).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(zk_proto::ErrorCode::NoAuth)
    );
    let refused = anyone.reconfig(Some(&joining), None, None, Some(42)).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(zk_proto::ErrorCode::BadVersion)
    );
    let refused = anyone.reconfig(Some("some thing"), None, None, None).await;
    assert_eq!(
        refused.unwrap_err().code(),
        Some(zk_proto::ErrorCode::BadArguments)
    );
    // On the leader: a member being removed drops its clients, reconfig's among them.
    let admin = client(&cluster.client_addr(leader).unwrap().to_string()).await;
    admin.add_auth("digest", b"super:secret").await.unwrap();
    // A stale config version is refused.
    let stale = admin.reconfig(Some(&joining), None, None, Some(42)).await;
    assert_eq!(
        stale.unwrap_err().code(),
        Some(zk_proto::ErrorCode::BadVersion)
    );

    let (data, stat) = admin
        .reconfig(Some(&joining), None, None, None)
        .await
        .unwrap();
    let config = String::from_utf8(data).unwrap();
    assert!(config.contains(&joining), "{config}");
    assert!(
        config.ends_with(&format!("\nversion={:x}", stat.mzxid)),
        "{config}"
    );
    converged(&cluster).await;
    for id in cluster.ids() {
        let member = client(&cluster.client_addr(id).unwrap().to_string()).await;
        member.sync("/").await.unwrap();
        let (seen, _) = member.get_config().await.unwrap();
        assert_eq!(String::from_utf8(seen).unwrap(), config, "member {id}");
        assert!(member.exists("/before").await.unwrap().is_some());
        member.close().await;
    }
    let leader = cluster.wait_for_leader(WAIT).await.unwrap_or(leader);
    let mntr = four_letter_word(cluster.client_addr(leader).unwrap(), "mntr")
        .await
        .unwrap();
    assert!(mntr.contains("zk_quorum_size\t4\n"), "{mntr}");
    let srvr = four_letter_word(cluster.client_addr(joining_id).unwrap(), "srvr")
        .await
        .unwrap();
    assert!(
        srvr.contains("Mode: follower\n") || srvr.contains("Mode: leader\n"),
        "{srvr}"
    );

    // Remove a member that is not the leader; then it may go without costing a quorum
    // of the remaining three.
    let leaving = followers(&cluster, leader)
        .into_iter()
        .find(|id| *id != joining_id)
        .unwrap();
    let (data, _) = admin
        .reconfig(None, Some(&leaving.to_string()), None, None)
        .await
        .unwrap();
    let config = String::from_utf8(data).unwrap();
    assert!(!config.contains(&format!("server.{leaving}=")), "{config}");
    // The removed member stops serving: it has no leader any more.
    let deadline = Instant::now() + WAIT;
    while cluster.core(leaving).unwrap().role() != Role::Looking {
        assert!(Instant::now() < deadline, "the removed member kept serving");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop(leaving).await;
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let mntr = four_letter_word(cluster.client_addr(leader).unwrap(), "mntr")
        .await
        .unwrap();
    assert!(mntr.contains("zk_quorum_size\t3\n"), "{mntr}");
    let survivor = followers(&cluster, leader)[0];
    cluster.stop(survivor).await;
    // Two of the three voters remain: still a quorum.
    let remaining: Vec<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| cluster.is_running(*id))
        .map(|id| cluster.client_addr(id).unwrap().to_string())
        .collect();
    let zk = client(&remaining.join(",")).await;
    tokio::time::timeout(WAIT, zk.create("/after").acl(&open))
        .await
        .expect("writes commit with the new quorum")
        .unwrap();

    // Observers come and go the same way.
    let (observer, line) = cluster.add_member(true).await.unwrap();
    let (data, _) = admin.reconfig(Some(&line), None, None, None).await.unwrap();
    assert!(String::from_utf8(data).unwrap().contains(&line));
    let deadline = Instant::now() + WAIT;
    while cluster.core(observer).unwrap().role() != Role::Observer {
        assert!(Instant::now() < deadline, "the new observer never observed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let watcher = client(&cluster.client_addr(observer).unwrap().to_string()).await;
    watcher.sync("/").await.unwrap();
    assert!(watcher.exists("/after").await.unwrap().is_some());
    let (data, _) = admin
        .reconfig(None, Some(&observer.to_string()), None, None)
        .await
        .unwrap();
    assert!(!String::from_utf8(data).unwrap().contains(&line));
    let deadline = Instant::now() + WAIT;
    while cluster.core(observer).unwrap().role() != Role::Looking {
        assert!(
            Instant::now() < deadline,
            "the removed observer kept serving"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}

/// Each running member's consensus term and the leaders it saw take office.
fn terms(cluster: &TestingCluster) -> Vec<(u64, u64, u64)> {
    cluster
        .ids()
        .into_iter()
        .filter_map(|id| cluster.core(id).map(|c| (id, c.quorum())))
        .map(|(id, q)| (id, q.term, q.leader_changes))
        .collect()
}

/// A follower cut off from its peers for 10 s (openraft would have it stand for
/// election with a higher term, and depose the leader once healed) comes back without
/// an election: its pre-votes find no majority that lost the leader. Meanwhile it
/// serves as a member without a leader, and the majority goes on under load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_for_ten_seconds_rejoins_without_an_election() {
    let cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let load = Load::start(&cluster.connect_string(), 2).await;
    load.progresses(20).await;
    let before = terms(&cluster);
    assert!(
        before.iter().all(|(_, _, changes)| *changes == 1),
        "{before:?}"
    );
    let cut = followers(&cluster, leader)[0];
    cluster.isolate(cut);
    let cut_core = cluster.core(cut).unwrap().clone();
    let deadline = Instant::now() + WAIT;
    while cut_core.quorum().leader.is_some() {
        assert!(
            Instant::now() < deadline,
            "the cut-off member kept its leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    load.progresses(20).await;
    cluster.heal(cut);
    let deadline = Instant::now() + WAIT;
    while cut_core.quorum().leader != Some(leader) {
        assert!(
            Instant::now() < deadline,
            "the healed member did not rejoin: {:?}",
            cut_core.quorum()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    load.progresses(20).await;
    assert_eq!(cluster.leader(), Some(leader), "the leader changed");
    assert_eq!(terms(&cluster), before, "(member, term, leaders seen)");
    let acked = load.finish().await;
    converged(&cluster).await;
    all_present(&cluster, &acked);
    cluster.shutdown().await;
}
