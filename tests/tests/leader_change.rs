//! The leader killed under load, round after round, on 3 and on 5 members: the clients
//! of the members that survive see nothing of it. Not one of their requests fails and
//! not one of them sees its connection drop, every sequential create (each carrying a
//! unique number) is applied at most once and is there if it was acknowledged, and
//! reads, writes and compare-and-sets stay linearizable.
//!
//! One scenario, two kinds of ensemble ([`Ensemble`]): an in-process
//! `TestingCluster`, whose leader is killed as `RunningServer::kill` does (no task
//! waited for), and real `zk-server` processes
//! ([`zk_tests::process_ensemble::ProcessEnsemble`]), whose leader gets `kill -9`
//! (SIGKILL) and is started again on its ports and data. The process tests run the
//! binary cargo built beside this test: `cargo build -p zk-server` first.
//!
//! `ZK_LEADER_KILL_ROUNDS` sets the number of leader kills per ensemble (default 3 on
//! 3 members and 2 on 5; the full run is 20). A failure prints the test's
//! steps (seconds since its start and the UTC time of day, as the members' logs stamp
//! theirs) and, for processes, the logs of the members involved.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use zk_client::{Client, SessionState};
use zk_proto::{Acl, CreateMode, ErrorCode};
use zk_server::testing::TestingCluster;
use zk_tests::linearizability::{check, Event, Op, Outcome, Register};
use zk_tests::process_ensemble::{utc, ProcessEnsemble};

const WAIT: Duration = Duration::from_secs(20);
const KEYS: usize = 3;
/// Clients connected to each member.
const PER_MEMBER: usize = 2;
/// Log lines shown per member on a failure.
const LOG_LINES: usize = 60;

fn rounds(default: usize) -> usize {
    std::env::var("ZK_LEADER_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Panics with the message and `$context` (evaluated only then) unless `$cond`.
macro_rules! ensure {
    ($cond:expr, $context:expr, $($message:tt)+) => {
        if !$cond {
            panic!("{}\n{}", format!($($message)+), $context);
        }
    };
}

// ---------------------------------------------------------------------------------
// Where the members run.

/// Which kind of ensemble a test runs the scenario on.
#[derive(Clone, Copy)]
enum Kind {
    InProcess,
    Processes,
}

/// The ensemble the scenario drives, whichever kind it is.
enum Ensemble {
    InProcess(TestingCluster),
    Processes(ProcessEnsemble),
}

impl Ensemble {
    async fn start(kind: Kind, size: usize) -> Ensemble {
        match kind {
            Kind::InProcess => Ensemble::InProcess(
                TestingCluster::start(size)
                    .await
                    .expect("start the cluster"),
            ),
            Kind::Processes => Ensemble::Processes(
                ProcessEnsemble::start(size).expect("start the zk-server processes"),
            ),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Ensemble::InProcess(_) => "in process",
            Ensemble::Processes(_) => "processes",
        }
    }

    /// What a kill is.
    fn kill_name(&self) -> &'static str {
        match self {
            Ensemble::InProcess(_) => "killed",
            Ensemble::Processes(_) => "killed with SIGKILL",
        }
    }

    fn ids(&self) -> Vec<u64> {
        match self {
            Ensemble::InProcess(c) => c.ids(),
            Ensemble::Processes(p) => p.ids(),
        }
    }

    fn client_addr(&self, id: u64) -> String {
        match self {
            Ensemble::InProcess(c) => c.client_addr(id),
            Ensemble::Processes(p) => p.client_addr(id),
        }
        .expect("a member's address")
        .to_string()
    }

    fn connect_string(&self) -> String {
        match self {
            Ensemble::InProcess(c) => c.connect_string(),
            Ensemble::Processes(p) => p.connect_string(),
        }
    }

    /// The running member that leads now, if any.
    async fn leader(&self) -> Option<u64> {
        match self {
            Ensemble::InProcess(c) => c.leader(),
            Ensemble::Processes(p) => p.leader().await,
        }
    }

    /// Waits until a running member leads and every other running member follows it.
    async fn wait_for_leader(&self, within: Duration) -> Option<u64> {
        match self {
            Ensemble::InProcess(c) => c.wait_for_leader(within).await,
            Ensemble::Processes(p) => p.wait_for_leader(within).await,
        }
    }

    async fn kill(&mut self, id: u64) {
        match self {
            Ensemble::InProcess(c) => c.kill(id).await,
            Ensemble::Processes(p) => {
                p.kill(id);
            }
        }
    }

    /// Starts a killed member again on its ports and data.
    async fn restart(&mut self, id: u64) -> Result<(), String> {
        match self {
            Ensemble::InProcess(c) => c.restart(id).await.map_err(|e| e.to_string()),
            Ensemble::Processes(p) => p.restart(id, WAIT).await.map_err(|e| e.to_string()),
        }
    }

    /// Whether member `id` is back: it follows a leader (in process, it knows one; as
    /// a process, mntr says `zk_server_state` follower or leader, with a
    /// `zk_raft_term`).
    async fn rejoined(&self, id: u64) -> bool {
        match self {
            Ensemble::InProcess(c) => c
                .core(id)
                .is_some_and(|core| core.quorum().leader.is_some()),
            Ensemble::Processes(p) => p.serving(id).await,
        }
    }

    /// Members that stopped by themselves, and how.
    fn exited(&mut self) -> Vec<(u64, String)> {
        match self {
            Ensemble::InProcess(_) => Vec::new(),
            Ensemble::Processes(p) => p
                .exited()
                .into_iter()
                .map(|(id, status)| (id, status.to_string()))
                .collect(),
        }
    }

    /// The logs of members `ids`: their lines from 3 s before `around` to 1 s after,
    /// or else their last lines.
    fn logs(&self, ids: &[u64], around: Option<SystemTime>) -> String {
        match self {
            Ensemble::InProcess(_) => {
                "(members in process: RUST_LOG=info logs them into the test's output)\n".into()
            }
            Ensemble::Processes(p) => match around {
                Some(t) => ids
                    .iter()
                    .map(|id| {
                        p.log_between(
                            *id,
                            t - Duration::from_secs(3),
                            t + Duration::from_secs(1),
                            LOG_LINES,
                        )
                    })
                    .collect(),
                None => p.log_tails(ids, LOG_LINES),
            },
        }
    }

    async fn shutdown(self) {
        match self {
            Ensemble::InProcess(c) => c.shutdown().await,
            Ensemble::Processes(mut p) => p.kill_all(),
        }
    }
}

// ---------------------------------------------------------------------------------
// The test's own steps, for the failure messages.

/// When the test started, by both clocks, and what it did since.
struct Steps {
    epoch: Instant,
    wall: SystemTime,
    lines: Vec<String>,
}

impl Steps {
    fn new() -> Steps {
        Steps {
            epoch: Instant::now(),
            wall: SystemTime::now(),
            lines: Vec::new(),
        }
    }

    /// `at` by the wall clock.
    fn wall(&self, at: Instant) -> SystemTime {
        self.wall + at.saturating_duration_since(self.epoch)
    }

    /// `at` as seconds since the start and the UTC time of day.
    fn when(&self, at: Instant) -> String {
        let stamp = utc(self.wall(at));
        format!(
            "{:.3}s ({})",
            at.saturating_duration_since(self.epoch).as_secs_f64(),
            &stamp[11..26]
        )
    }

    fn push(&mut self, what: String) {
        let line = format!("{} {what}", self.when(Instant::now()));
        self.lines.push(line);
    }

    /// The steps, then the logs of members `ids` (around `at`, if given).
    fn context(&self, ensemble: &Ensemble, ids: &[u64], at: Option<Instant>) -> String {
        format!(
            "--- the test's steps ({}) ---\n{}\n{}",
            ensemble.name(),
            self.lines.join("\n"),
            ensemble.logs(ids, at.map(|at| self.wall(at)))
        )
    }
}

// ---------------------------------------------------------------------------------
// The clients.

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
    /// Data of sequential creates that were acknowledged, and when.
    acked: BTreeMap<String, Instant>,
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
                        .create("/eo/n-")
                        .data(data.as_bytes())
                        .acl(&open)
                        .mode(CreateMode::PersistentSequential)
                        .await
                    {
                        Ok(_) => {
                            record.lock().unwrap().acked.insert(data, Instant::now());
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

/// One leader kill: who went and who took over, when the leader was killed, how long
/// until another member led, and when the killed member was back with its clients.
struct Round {
    killed: u64,
    next: u64,
    killed_at: Instant,
    took_over: Duration,
    back_at: Instant,
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

/// At most the first `n` of `items`, and how many there were.
fn first<T: std::fmt::Debug>(items: &[T], n: usize) -> String {
    if items.len() <= n {
        format!("{items:?}")
    } else {
        format!("{:?} (the first {n} of {})", &items[..n], items.len())
    }
}

/// The scenario: `rounds` times, the leader of a `size`-member ensemble of `kind` is
/// killed under load and started again; then the checks.
async fn kill_leaders(kind: Kind, size: usize, rounds: usize) {
    // One ensemble at a time: ensembles side by side would share the machine's cores
    // and each other's timing.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    init_logging();
    let mut steps = Steps::new();
    let mut ensemble = Ensemble::start(kind, size).await;
    let ids = ensemble.ids();
    let Some(first_leader) = ensemble.wait_for_leader(WAIT).await else {
        panic!(
            "no leader within {WAIT:?} of the start\n{}",
            steps.context(&ensemble, &ids, None)
        );
    };
    steps.push(format!(
        "{size} members ({}) started, member {first_leader} leads",
        ensemble.name()
    ));
    let setup = Client::builder(&ensemble.connect_string())
        .connect()
        .await
        .expect("connect to the ensemble");
    let open = Acl::open_unsafe();
    for path in ["/eo", "/lin"] {
        setup
            .create(path)
            .acl(&open)
            .await
            .expect("create a parent");
    }
    for k in 0..KEYS {
        setup
            .create(&format!("/lin/k{k}"))
            .data(b"0")
            .acl(&open)
            .await
            .expect("create a register");
    }
    let epoch = steps.epoch;
    let stop = Arc::new(AtomicBool::new(false));
    let record = Arc::new(Mutex::new(Record {
        acked: BTreeMap::new(),
        histories: vec![Vec::new(); KEYS],
    }));
    let mut workers = Vec::new();
    for &id in &ids {
        let addr = ensemble.client_addr(id);
        for _ in 0..PER_MEMBER {
            let w = workers.len() as u64;
            workers.push(worker(w, id, addr.clone(), epoch, stop.clone(), record.clone()).await);
        }
    }
    steps.push(format!("{} clients writing", workers.len()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Each round: the leader is killed, a new one takes over under the load, the old
    // one comes back as a follower. Between its kill and its clients' return a member
    // is away: only its own clients may notice anything then.
    let mut done: Vec<Round> = Vec::new();
    for round in 0..rounds {
        let Some(leader) = ensemble.wait_for_leader(WAIT).await else {
            panic!(
                "round {round}: no leader that every running member follows within {WAIT:?}\n{}",
                steps.context(&ensemble, &ids, None)
            );
        };
        let acked_before = record.lock().unwrap().acked.len();
        let killed_at = Instant::now();
        ensemble.kill(leader).await;
        steps.push(format!(
            "round {round}: leader {leader} {}",
            ensemble.kill_name()
        ));
        let deadline = Instant::now() + WAIT;
        let next = loop {
            if let Some(next) = ensemble.leader().await.filter(|l| *l != leader) {
                break next;
            }
            ensure!(
                Instant::now() < deadline,
                steps.context(&ensemble, &ids, None),
                "round {round}: no new leader within {WAIT:?} after member {leader} was killed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let took_over = killed_at.elapsed();
        steps.push(format!(
            "round {round}: member {next} leads, {} ms after the kill",
            took_over.as_millis()
        ));
        // The survivors' clients go on writing.
        let deadline = Instant::now() + WAIT;
        while record.lock().unwrap().acked.len() < acked_before + 20 {
            ensure!(
                Instant::now() < deadline,
                steps.context(&ensemble, &ids, None),
                "round {round}: writes stalled after the leader {leader} was killed (new leader {next})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        steps.push(format!("round {round}: writes go on"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Err(e) = ensemble.restart(leader).await {
            panic!(
                "round {round}: member {leader} did not start again: {e}\n{}",
                steps.context(&ensemble, &[leader], None)
            );
        }
        steps.push(format!("round {round}: member {leader} started again"));
        let deadline = Instant::now() + WAIT;
        while !ensemble.rejoined(leader).await {
            ensure!(
                Instant::now() < deadline,
                steps.context(&ensemble, &[leader, next], None),
                "round {round}: member {leader} did not rejoin within {WAIT:?} of its restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        steps.push(format!("round {round}: member {leader} rejoined"));
        // Its own clients reconnect (their sessions survive).
        let deadline = Instant::now() + WAIT;
        for (i, w) in workers.iter().enumerate().filter(|(_, w)| w.home == leader) {
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
                ensure!(
                    Instant::now() < deadline,
                    steps.context(&ensemble, &[leader], None),
                    "round {round}: client {i} of member {leader} did not reconnect within {WAIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        steps.push(format!(
            "round {round}: the clients of member {leader} are back"
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let exited = ensemble.exited();
        let gone: Vec<u64> = exited.iter().map(|(id, _)| *id).collect();
        ensure!(
            exited.is_empty(),
            steps.context(&ensemble, &gone, None),
            "round {round}: members stopped by themselves: {exited:?}"
        );
        done.push(Round {
            killed: leader,
            next,
            killed_at,
            took_over,
            back_at: Instant::now(),
        });
        println!(
            "round {round} ({}): leader {leader} {}, member {next} took over in {} ms, {} writes acknowledged so far",
            ensemble.name(),
            ensemble.kill_name(),
            took_over.as_millis(),
            record.lock().unwrap().acked.len()
        );
    }
    let stopped_at = Instant::now();
    stop.store(true, Ordering::SeqCst);
    steps.push("the clients stop".to_string());
    let mut seen = Vec::new();
    for w in workers {
        let Ok(ended) = tokio::time::timeout(WAIT, w.task).await else {
            panic!(
                "a client of member {} did not stop within {WAIT:?}\n{}",
                w.home,
                steps.context(&ensemble, &ids, None)
            );
        };
        ended.expect("a client's task");
        seen.push((w.home, w.seen));
    }

    // Survivors' clients saw nothing: no state change, no failed request, outside the
    // times their own member was away.
    let away = || {
        done.iter()
            .map(|r| {
                format!(
                    "member {} from {} to {}",
                    r.killed,
                    steps.when(r.killed_at),
                    steps.when(r.back_at)
                )
            })
            .collect::<Vec<_>>()
    };
    for (i, (home, seen)) in seen.iter().enumerate() {
        let seen = seen.lock().unwrap();
        // Closing the clients at the end is not noticing anything either.
        let excused = |at: &Instant| {
            *at >= stopped_at
                || done
                    .iter()
                    .any(|r| r.killed == *home && *at >= r.killed_at && *at <= r.back_at)
        };
        let states: Vec<_> = seen.states.iter().filter(|(at, _)| !excused(at)).collect();
        let failures: Vec<_> = seen
            .failures
            .iter()
            .filter(|(at, _)| !excused(at))
            .collect();
        let Some(noticed) = states
            .iter()
            .map(|(at, _)| *at)
            .chain(failures.iter().map(|(at, _)| *at))
            .min()
        else {
            continue;
        };
        // The members of the round it happened in (the last kill before it).
        let mut involved = vec![*home];
        if let Some(r) = done
            .iter()
            .rev()
            .find(|r| r.killed_at <= noticed)
            .or(done.first())
        {
            involved.extend([r.killed, r.next]);
        }
        involved.sort_unstable();
        involved.dedup();
        let states: Vec<_> = states.iter().map(|(at, s)| (steps.when(*at), *s)).collect();
        let failures: Vec<_> = failures
            .iter()
            .map(|(at, e)| (steps.when(*at), e.clone()))
            .collect();
        panic!(
            "client {i} of member {home} noticed a leader change it should not have: \
             states {}, failures {} (members away: {:?})\n{}",
            first(&states, 20),
            first(&failures, 20),
            away(),
            steps.context(&ensemble, &involved, Some(noticed))
        );
    }

    // Exactly once: no create applied twice, none acknowledged missing.
    let reader = Client::builder(&ensemble.connect_string())
        .connect()
        .await
        .expect("connect to read back");
    reader.sync("/eo").await.expect("sync");
    let mut applied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for child in reader.get_children("/eo").await.expect("the creates") {
        let path = format!("/eo/{child}");
        let (data, _) = reader.get_data(&path).await.expect("a create's data");
        applied
            .entry(String::from_utf8_lossy(&data).into_owned())
            .or_default()
            .push(path);
    }
    reader.close().await;
    let record = std::mem::take(&mut *record.lock().unwrap());
    let twice: Vec<_> = applied
        .iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(data, paths)| {
            (
                data,
                paths,
                record.acked.get(data).map(|at| steps.when(*at)),
            )
        })
        .collect();
    ensure!(
        twice.is_empty(),
        steps.context(
            &ensemble,
            &ids,
            applied
                .iter()
                .filter(|(_, paths)| paths.len() > 1)
                .filter_map(|(data, _)| record.acked.get(data).copied())
                .min()
        ),
        "creates applied more than once (data, nodes, acknowledged at): {}",
        first(&twice, 20)
    );
    let missing: Vec<_> = record
        .acked
        .iter()
        .filter(|(data, _)| !applied.contains_key(*data))
        .map(|(data, at)| (data, *at))
        .collect();
    ensure!(
        missing.is_empty(),
        steps.context(&ensemble, &ids, missing.iter().map(|(_, at)| *at).min()),
        "{} acknowledged creates missing (data, acknowledged at): {}",
        missing.len(),
        first(
            &missing
                .iter()
                .map(|(data, at)| (data, steps.when(*at)))
                .collect::<Vec<_>>(),
            20
        )
    );
    println!(
        "{size} members ({}), {rounds} leader kills: {} creates acknowledged, {} applied, none twice, none lost; new leader within {:?} ms of each kill",
        ensemble.name(),
        record.acked.len(),
        applied.len(),
        done.iter().map(|r| r.took_over.as_millis()).collect::<Vec<_>>()
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
        panic!("{e}\n{}", steps.context(&ensemble, &[], None));
    }
    let exited = ensemble.exited();
    ensure!(
        exited.is_empty(),
        steps.context(
            &ensemble,
            &exited.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            None
        ),
        "members stopped by themselves: {exited:?}"
    );
    ensemble.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_clients_see_nothing_of_leader_kills_on_three_members() {
    kill_leaders(Kind::InProcess, 3, rounds(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_clients_see_nothing_of_leader_kills_on_five_members() {
    kill_leaders(Kind::InProcess, 5, rounds(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_clients_see_nothing_of_kill_9_of_leader_processes_on_three_members() {
    kill_leaders(Kind::Processes, 3, rounds(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivors_clients_see_nothing_of_kill_9_of_leader_processes_on_five_members() {
    kill_leaders(Kind::Processes, 5, rounds(2)).await;
}
