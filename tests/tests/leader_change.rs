//! The leader killed under load, round after round (in-process `TestingCluster`s of 3
//! and 5 members): the clients of the members that survive see nothing of it. Not one
//! of their requests fails and not one of them sees its connection drop, every
//! sequential create (each carrying a unique number) is applied at most once and is
//! there if it was acknowledged, and reads, writes and compare-and-sets stay
//! linearizable.
//!
//! `ZK_LEADER_KILL_ROUNDS` sets the number of leader kills per ensemble (default 3 on
//! 3 members and 2 on 5; the full run is 20).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use zk_client::{Client, SessionState};
use zk_proto::{Acl, CreateMode, ErrorCode};
use zk_server::testing::TestingCluster;
use zk_tests::linearizability::{check, Event, Op, Outcome, Register};

const WAIT: Duration = Duration::from_secs(20);
const KEYS: usize = 3;
/// Clients connected to each member.
const PER_MEMBER: usize = 2;

fn rounds(default: usize) -> usize {
    std::env::var("ZK_LEADER_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one client saw, with the time of each thing.
#[derive(Default)]
struct Seen {
    /// Session state changes.
    states: Vec<(Instant, SessionState)>,
    /// Requests that failed (other than a compare-and-set's BadVersion).
    failures: Vec<(Instant, String)>,
}

/// A client of one member, writing and reading until told to stop.
struct Worker {
    home: u64,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

/// Everything the workers did.
#[derive(Default)]
struct Record {
    /// Data of sequential creates that were acknowledged.
    acked: BTreeSet<String>,
    /// Register histories, one per key.
    histories: Vec<Vec<Event>>,
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    w: u64,
    home: u64,
    addr: String,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
) -> Worker {
    let zk = Client::builder(&addr)
        .session_timeout(Duration::from_secs(15))
        .connect()
        .await
        .expect("connect to a member");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let states = zk.state_changes();
    let watching = seen.clone();
    tokio::spawn(async move {
        let mut states = std::pin::pin!(states);
        while let Some(state) = states.next().await {
            if let Ok(mut seen) = watching.lock() {
                seen.states.push((Instant::now(), state));
            }
        }
    });
    let now = move || epoch.elapsed().as_micros() as u64;
    let failing = seen.clone();
    let task = tokio::spawn(async move {
        let open = Acl::open_unsafe();
        let mut known_version = [0i32; KEYS];
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let k = (n as usize / 3) % KEYS;
            let path = format!("/lin/k{k}");
            let call = now();
            let failed = |e: &zk_client::Error| {
                failing
                    .lock()
                    .unwrap()
                    .failures
                    .push((Instant::now(), format!("{e}")));
            };
            match n % 3 {
                0 => {
                    let data = format!("w{w}-{n}");
                    match zk
                        .create(
                            "/eo/n-",
                            data.as_bytes(),
                            &open,
                            CreateMode::PersistentSequential,
                        )
                        .await
                    {
                        Ok(_) => {
                            record.lock().unwrap().acked.insert(data);
                        }
                        Err(e) => failed(&e),
                    }
                }
                1 => {
                    let read = async {
                        zk.sync(&path).await?;
                        zk.get_data(&path).await
                    };
                    match read.await {
                        Ok((data, stat)) => {
                            known_version[k] = stat.version;
                            let value = String::from_utf8_lossy(&data).parse().unwrap_or(0);
                            record.lock().unwrap().histories[k].push(Event {
                                op: Op::Read,
                                outcome: Outcome::Read(Register {
                                    value,
                                    version: stat.version,
                                }),
                                call,
                                ret: now(),
                            });
                        }
                        Err(e) => failed(&e),
                    }
                }
                _ => {
                    let value = (w + 1) * 1_000_000 + n;
                    let cas = n.is_multiple_of(2);
                    let (op, version) = if cas {
                        let expected = known_version[k];
                        (Op::Cas { expected, value }, Some(expected))
                    } else {
                        (Op::Write(value), None)
                    };
                    let outcome = match zk
                        .set_data(&path, value.to_string().as_bytes(), version)
                        .await
                    {
                        Ok(stat) => Outcome::Written(stat.version),
                        Err(e) if e.code() == Some(ErrorCode::BadVersion) => Outcome::CasFailed,
                        Err(e) => {
                            failed(&e);
                            Outcome::Unknown
                        }
                    };
                    record.lock().unwrap().histories[k].push(Event {
                        op,
                        outcome,
                        call,
                        ret: now(),
                    });
                }
            }
            if failing.lock().unwrap().failures.len() > 1000 {
                // A member that stays away: slow down, the test is failing anyway.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    Worker { home, seen, task }
}

/// Waits until member `id` follows a leader again after its restart.
async fn rejoined(cluster: &TestingCluster, id: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let q = cluster.core(id).map(|c| c.quorum());
        if q.as_ref().is_some_and(|q| q.leader.is_some()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {id} did not rejoin: {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs to the test's output when RUST_LOG is set.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

async fn kill_leaders(size: usize, rounds: usize) {
    init_logging();
    let mut cluster = TestingCluster::start(size).await.unwrap();
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let setup = Client::builder(&cluster.connect_string())
        .connect()
        .await
        .unwrap();
    let open = Acl::open_unsafe();
    for path in ["/eo", "/lin"] {
        setup
            .create(path, b"", &open, CreateMode::Persistent)
            .await
            .unwrap();
    }
    for k in 0..KEYS {
        setup
            .create(&format!("/lin/k{k}"), b"0", &open, CreateMode::Persistent)
            .await
            .unwrap();
    }
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record {
        acked: BTreeSet::new(),
        histories: vec![Vec::new(); KEYS],
    }));
    let mut workers = Vec::new();
    for id in cluster.ids() {
        let addr = cluster.client_addr(id).unwrap().to_string();
        for _ in 0..PER_MEMBER {
            let w = workers.len() as u64;
            workers.push(worker(w, id, addr.clone(), epoch, stop.clone(), record.clone()).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Each round: the leader is killed, a new one takes over under the load, the old
    // one comes back as a follower. `away` holds, per member, when it was down or
    // rejoining: only its own clients may notice anything then.
    let mut away: Vec<(u64, Instant, Instant)> = Vec::new();
    for round in 0..rounds {
        let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
        let acked_before = record.lock().unwrap().acked.len();
        let killed_at = Instant::now();
        cluster.kill(leader).await;
        let deadline = Instant::now() + WAIT;
        let next = loop {
            if let Some(next) = cluster.leader().filter(|l| *l != leader) {
                break next;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no new leader after member {leader} was killed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        // The survivors' clients go on writing.
        let deadline = Instant::now() + WAIT;
        while record.lock().unwrap().acked.len() < acked_before + 20 {
            assert!(
                Instant::now() < deadline,
                "round {round}: writes stalled after the leader {leader} was killed (new leader {next})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.restart(leader).await.unwrap();
        rejoined(&cluster, leader).await;
        // Its own clients reconnect (their sessions survive).
        let deadline = Instant::now() + WAIT;
        for w in workers.iter().filter(|w| w.home == leader) {
            loop {
                let back = w
                    .seen
                    .lock()
                    .unwrap()
                    .states
                    .last()
                    .is_some_and(|(at, s)| *at > killed_at && *s == SessionState::Connected);
                if back {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: a client of member {leader} did not reconnect"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        away.push((leader, killed_at, Instant::now()));
        println!(
            "round {round}: leader {leader} killed, member {next} took over, {} writes acknowledged so far",
            record.lock().unwrap().acked.len()
        );
    }
    let stopped_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for w in workers {
        tokio::time::timeout(WAIT, w.task)
            .await
            .expect("a worker stops")
            .unwrap();
        seen.push((w.home, w.seen));
    }

    // Survivors' clients saw nothing: no state change, no failed request, outside the
    // times their own member was away.
    for (i, (home, seen)) in seen.iter().enumerate() {
        let seen = seen.lock().unwrap();
        // Closing the clients at the end is not noticing anything either.
        let excused = |at: &Instant| {
            *at >= stopped_at
                || away
                    .iter()
                    .any(|(member, from, to)| member == home && at >= from && at <= to)
        };
        let states: Vec<_> = seen
            .states
            .iter()
            .filter(|(at, _)| !excused(at))
            .map(|(at, s)| (at.duration_since(epoch), *s))
            .collect();
        let failures: Vec<_> = seen
            .failures
            .iter()
            .filter(|(at, _)| !excused(at))
            .map(|(at, e)| (at.duration_since(epoch), e.clone()))
            .collect();
        assert!(
            states.is_empty() && failures.is_empty(),
            "client {i} of member {home} noticed a leader change it should not have: \
             states {states:?}, failures {failures:?} (members away: {:?})",
            away.iter()
                .map(|(m, f, t)| (*m, f.duration_since(epoch), t.duration_since(epoch)))
                .collect::<Vec<_>>()
        );
    }

    // Exactly once: no create applied twice, none acknowledged missing.
    let reader = Client::builder(&cluster.connect_string())
        .connect()
        .await
        .unwrap();
    reader.sync("/eo").await.unwrap();
    let mut applied: BTreeMap<String, usize> = BTreeMap::new();
    for child in reader.get_children("/eo").await.unwrap() {
        let (data, _) = reader.get_data(&format!("/eo/{child}")).await.unwrap();
        *applied
            .entry(String::from_utf8_lossy(&data).into_owned())
            .or_default() += 1;
    }
    let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "creates applied more than once: {twice:?}"
    );
    let record = std::mem::take(&mut *record.lock().unwrap());
    let missing: Vec<_> = record
        .acked
        .iter()
        .filter(|d| !applied.contains_key(*d))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged creates missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    println!(
        "{size} members, {rounds} leader kills: {} creates acknowledged, {} applied, none twice",
        record.acked.len(),
        applied.len()
    );
    // The checker searches depth first: long histories need a deep stack.
    let histories = record.histories.clone();
    let checked = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || {
            for (k, history) in histories.iter().enumerate() {
                let initial = Register {
                    value: 0,
                    version: 0,
                };
                check(history, initial).map_err(|e| format!("key {k}: not linearizable: {e}"))?;
            }
            Ok::<(), String>(())
        })
        .expect("a checker thread")
        .join()
        .expect("the checker finishes");
    if let Err(e) = checked {
        panic!("{e}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_clients_see_nothing_of_leader_kills_on_three_members() {
    kill_leaders(3, rounds(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_clients_see_nothing_of_leader_kills_on_five_members() {
    kill_leaders(5, rounds(2)).await;
}
