//! Routine operations on an ensemble of real `zk-server` processes cause no needless
//! leader election (issue 18): a follower restarted (`kill -9` or SIGTERM) or paused
//! (SIGSTOP for a few seconds) rejoins under the leader in office; a steady light load
//! keeps its leader; a rolling restart with the leader last changes the leader exactly
//! once.
//!
//! Throughout, every member has a client of its own (connected to that member only)
//! writing every 20 ms. After each round:
//! - the member that led keeps leading (every member's `zk_server_state`, now and as a
//!   poller saw it every 200 ms during the round);
//! - no client of a member the round did not touch saw its connection drop;
//! - every member's `zk_raft_term` is what it was, and so is `zk_leader_changes` (a
//!   member restarted in the round counts from zero again: it must report what any
//!   member rejoining a leader in office reports, at most 1).
//!
//! When the rolling restart stops the leader, the others elect one of themselves, and
//! the old leader, started again, follows it: every term is exactly one higher, every
//! other member's `zk_leader_changes` exactly one higher, and the old leader reports
//! what any member rejoining a leader in office reports; the poller saw no leader but
//! the old one, then the new one.
//!
//! At the end, every acknowledged write is on every member.
//!
//! A failure names the phase, round and member, what was expected and what was seen,
//! and ends with the logs of the members concerned (each member's stdout and stderr
//! are kept in its `server.log`; set `ZK_TEST_KEEP_DIRS=1` to keep the directories of
//! a failed run).
//!
//! Rounds: `ZK_QUIET_ROUNDS` for every kind (default: 3 `kill -9` restarts, 2 SIGTERM
//! restarts and 3 pauses of three members, 2 `kill -9` restarts of five; the full run
//! sets 20); the steady load lasts `ZK_QUIET_STEADY_SECONDS` (default 15; the full run
//! 600). The two tests run one after the other: on a small machine, two ensembles
//! under load at once would starve each other's heartbeats.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, Mntr};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use zk_client::{Client, SessionState};
use zk_proto::Acl;

/// The clients' session timeout (the most tickTime=500 allows): a member down for a
/// few seconds does not expire its client's session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Each client writes this often (one create or one set).
const WRITE_EVERY: Duration = Duration::from_millis(20);
/// A write without a reply this long is counted as failed.
const WRITE_WITHIN: Duration = Duration::from_secs(15);
/// At most this many writes per client, whatever the durations.
const MAX_WRITES: u64 = 2_000_000;
const QUORUM_WITHIN: Duration = Duration::from_secs(30);
/// A restarted or resumed member reports itself a follower within this.
const REJOIN_WITHIN: Duration = Duration::from_secs(30);
/// The leader counts a rejoined member in sync within this.
const SYNC_WITHIN: Duration = Duration::from_secs(20);
/// A client whose member came back is connected again within this (its reconnect
/// backoff tops out at 2 s).
const RECONNECT_WITHIN: Duration = Duration::from_secs(20);
/// A member's mntr answers within this (retried).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// SIGTERM ends a member within this.
const EXIT_WITHIN: Duration = Duration::from_secs(15);
/// A killed or stopped follower stays down this long before it is started again.
const DOWN_FOR: Duration = Duration::from_secs(2);
/// A paused follower stays stopped this long...
const PAUSED_FOR: Duration = Duration::from_secs(3);
/// ...and the round goes on this long after it resumes.
const AFTER_RESUME: Duration = Duration::from_secs(1);
/// The poller asks every member's state this often.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// A task records the clients' state changes: the victim's may be noted this long
/// after its round.
const GRACE: Duration = Duration::from_secs(1);
/// Lines of a member's log in a failure message.
const LOG_LINES: usize = 40;

/// One ensemble under load at a time (see the module doc).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How many rounds of each kind, and how long the steady load.
struct Plan {
    kills: usize,
    terms: usize,
    pauses: usize,
    five_kills: usize,
    steady: Duration,
}

impl Plan {
    fn from_env() -> Plan {
        let rounds = env_number("ZK_QUIET_ROUNDS").map(|n| n as usize);
        Plan {
            kills: rounds.unwrap_or(3),
            terms: rounds.unwrap_or(2),
            pauses: rounds.unwrap_or(3),
            five_kills: rounds.unwrap_or(2),
            steady: Duration::from_secs(env_number("ZK_QUIET_STEADY_SECONDS").unwrap_or(15)),
        }
    }

    /// A bound for everything a test does: the loads and the poller stop by then.
    fn budget(&self) -> Duration {
        let rounds = self.kills + self.terms + self.pauses + self.five_kills + 5;
        Duration::from_secs(300 + 90 * rounds as u64) + self.steady
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ---- the load: one client per member ----

/// What one client's writes came to.
#[derive(Default)]
struct WriterLog {
    /// Writes acknowledged (creates and sets).
    acked: u64,
    /// Acknowledged creates: `c{seq}` under the client's node.
    created: BTreeSet<u64>,
    /// The last acknowledged set (the node's data is a sequence number).
    set_acked: Option<u64>,
    /// The last set sent, acknowledged or not.
    set_sent: Option<u64>,
    /// Failed writes, and the last few of them.
    failed: u64,
    errors: Vec<(Instant, String)>,
}

/// A client's session state change, as its watcher task saw it.
struct StateEvent {
    at: Instant,
    client: usize,
    state: SessionState,
}

struct Load {
    clients: Vec<Client>,
    logs: Vec<Arc<Mutex<WriterLog>>>,
    events: Arc<Mutex<Vec<StateEvent>>>,
    stop: Arc<AtomicBool>,
    writers: Vec<JoinHandle<()>>,
    watchers: Vec<JoinHandle<()>>,
}

/// The node client `i` writes under and sets.
fn node(i: usize) -> String {
    format!("/quiet/m{}", i + 1)
}

impl Load {
    async fn start(ensemble: &Ensemble, until: Instant) -> Load {
        let setup = connect(&ensemble.connect_string()).await;
        create(&setup, "/quiet").await;
        for i in 0..ensemble.members.len() {
            create(&setup, &node(i)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), setup.close()).await;

        let stop = Arc::new(AtomicBool::new(false));
        let events: Arc<Mutex<Vec<StateEvent>>> = Arc::default();
        let mut load = Load {
            clients: Vec::new(),
            logs: Vec::new(),
            events: events.clone(),
            stop: stop.clone(),
            writers: Vec::new(),
            watchers: Vec::new(),
        };
        for (i, member) in ensemble.members.iter().enumerate() {
            let zk = connect(&member.client.to_string()).await;
            let mut changes = Box::pin(zk.state_changes());
            let events = events.clone();
            load.watchers.push(tokio::spawn(async move {
                while let Some(state) = changes.next().await {
                    lock(&events).push(StateEvent {
                        at: Instant::now(),
                        client: i,
                        state,
                    });
                }
            }));
            let log: Arc<Mutex<WriterLog>> = Arc::default();
            load.writers.push(tokio::spawn(write_loop(
                zk.clone(),
                node(i),
                log.clone(),
                stop.clone(),
                until,
            )));
            load.clients.push(zk);
            load.logs.push(log);
        }
        load
    }

    fn acked(&self) -> Vec<u64> {
        self.logs.iter().map(|l| lock(l).acked).collect()
    }

    /// Client `i`'s failed writes: how many, and the last few (time since `since`).
    fn errors(&self, i: usize, since: Instant) -> String {
        let log = lock(&self.logs[i]);
        let last: Vec<String> = log
            .errors
            .iter()
            .rev()
            .take(5)
            .map(|(at, e)| format!("{} {e}", rel(*at, since)))
            .collect();
        format!("{} failed writes, the last: {last:?}", log.failed)
    }

    /// Stops the writers (each within its reply bound) and closes the clients.
    async fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.writers.drain(..) {
            let abort = w.abort_handle();
            if tokio::time::timeout(WRITE_WITHIN + Duration::from_secs(5), w)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        for zk in &self.clients {
            let _ = tokio::time::timeout(Duration::from_secs(5), zk.close()).await;
        }
        for w in self.watchers.drain(..) {
            w.abort();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.writers.iter().chain(&self.watchers) {
            task.abort();
        }
    }
}

async fn connect(connect_string: &str) -> Client {
    tokio::time::timeout(
        Duration::from_secs(30),
        Client::builder(connect_string)
            .session_timeout(SESSION_TIMEOUT)
            .renew_expired_sessions(true)
            .connect(),
    )
    .await
    .unwrap_or_else(|_| panic!("no session with {connect_string} within 30 s"))
    .unwrap_or_else(|e| panic!("connecting to {connect_string}: {e}"))
}

async fn create(zk: &Client, path: &str) {
    zk.create(path)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

/// Every `WRITE_EVERY`: a create of `{node}/c{seq}` (even seq) or a set of `node` to
/// `seq` (odd), each acknowledged one recorded in `log`.
async fn write_loop(
    zk: Client,
    node: String,
    log: Arc<Mutex<WriterLog>>,
    stop: Arc<AtomicBool>,
    until: Instant,
) {
    let mut tick = tokio::time::interval(WRITE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for seq in 0..MAX_WRITES {
        tick.tick().await;
        if stop.load(Ordering::SeqCst) || Instant::now() >= until {
            return;
        }
        let reply = if seq % 2 == 0 {
            let path = format!("{node}/c{seq:010}");
            let open = Acl::open_unsafe();
            tokio::time::timeout(WRITE_WITHIN, zk.create(&path).data(b"q").acl(&open))
                .await
                .map(|r| r.map(drop))
        } else {
            lock(&log).set_sent = Some(seq);
            tokio::time::timeout(
                WRITE_WITHIN,
                zk.set_data(&node, seq.to_string().as_bytes(), None),
            )
            .await
            .map(|r| r.map(drop))
        };
        let mut log = lock(&log);
        let error = match reply {
            Ok(Ok(())) => {
                log.acked += 1;
                if seq % 2 == 0 {
                    log.created.insert(seq);
                } else {
                    log.set_acked = Some(seq);
                }
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no reply within {WRITE_WITHIN:?}"),
        };
        log.failed += 1;
        log.errors.push((Instant::now(), error));
        if log.errors.len() > 20 {
            log.errors.remove(0);
        }
    }
}

// ---- the poller: every member's state every 200 ms ----

/// A change in what a member answered.
struct Observation {
    at: Instant,
    member: usize,
    /// Its `zk_server_state`; `None` if it did not answer or answered without one.
    state: Option<String>,
    /// What it answered, for a message.
    shown: String,
}

struct Poller {
    seen: Arc<Mutex<Vec<Observation>>>,
    task: JoinHandle<()>,
}

impl Poller {
    fn start(addrs: Vec<SocketAddr>, until: Instant) -> Poller {
        let seen: Arc<Mutex<Vec<Observation>>> = Arc::default();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut last: Vec<Option<String>> = vec![None; addrs.len()];
            while Instant::now() < until {
                let answers = futures::future::join_all(
                    addrs
                        .iter()
                        .map(|a| zk_server::testing::four_letter_word(*a, "mntr")),
                )
                .await;
                let at = Instant::now();
                for (member, answer) in answers.into_iter().enumerate() {
                    let (state, shown) = match answer {
                        None => (None, "(no answer)".to_string()),
                        Some(text) => match Mntr::parse(&text).state() {
                            Some(state) => (Some(state.to_string()), state.to_string()),
                            // e.g. "This ZooKeeper instance is not currently serving requests"
                            None => {
                                let first: String =
                                    text.lines().next().unwrap_or("").chars().take(70).collect();
                                (None, format!("(answered {first:?})"))
                            }
                        },
                    };
                    if last[member].as_ref() != Some(&shown) {
                        last[member] = Some(shown.clone());
                        lock(&record).push(Observation {
                            at,
                            member,
                            state,
                            shown,
                        });
                    }
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        });
        Poller { seen, task }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rel(at: Instant, since: Instant) -> String {
    match at.checked_duration_since(since) {
        Some(d) => format!("+{}", secs(d)),
        None => format!("-{}", secs(since - at)),
    }
}

// ---- the harness ----

/// What the members' mntr must show: per member, its term and leader-change count.
#[derive(Clone)]
struct Expect {
    terms: Vec<u64>,
    changes: Vec<u64>,
}

/// How a round's metrics must have moved.
enum Rule {
    /// No election: terms and counts unchanged, but `restarted` counts afresh.
    Quiet { restarted: Option<usize> },
    /// Exactly one election: every term one higher, every member's count one higher,
    /// but `old_leader` (restarted) counts afresh.
    OneElection { old_leader: usize },
}

#[derive(Clone, Copy)]
enum Fault {
    Kill,
    Terminate,
    Pause,
}

impl Fault {
    fn verb(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9 then restart",
            Fault::Terminate => "SIGTERM then restart",
            Fault::Pause => "SIGSTOP then SIGCONT",
        }
    }
}

/// Client events of `client` in `from..=to` are expected (its member was down);
/// `None`: every client's (the leader changed).
struct Excuse {
    client: Option<usize>,
    from: Instant,
    to: Instant,
}

struct Quiet {
    name: String,
    ensemble: Ensemble,
    load: Load,
    poller: Poller,
    /// The index of the member in office.
    leader: usize,
    /// The member the current round acts on.
    victim: Option<usize>,
    started: Instant,
    /// Every member's mntr once the load ran, before any fault.
    baseline: Vec<Mntr>,
    /// Set by the first metrics check (from `baseline`), then kept up to date.
    expect: Option<Expect>,
    /// `zk_leader_changes` of a member just rejoined after a restart.
    fresh_join: Option<(u64, String)>,
    excused: Vec<Excuse>,
    /// Client state events before this index are judged.
    judged: usize,
}

impl Quiet {
    async fn start(size: usize, plan: &Plan) -> Quiet {
        let name = format!("{size} members");
        let until = Instant::now() + plan.budget();
        let ensemble = Ensemble::start(size);
        let leader = ensemble.wait_for_quorum(QUORUM_WITHIN).await;
        let addrs = ensemble.members.iter().map(|m| m.client).collect();
        let load = Load::start(&ensemble, until).await;
        let poller = Poller::start(addrs, until);
        let mut quiet = Quiet {
            name,
            ensemble,
            load,
            poller,
            leader,
            victim: None,
            started: Instant::now(),
            baseline: Vec::new(),
            expect: None,
            fresh_join: None,
            excused: Vec::new(),
            judged: 0,
        };
        // The load runs on every member before anything else happens.
        let deadline = Instant::now() + Duration::from_secs(30);
        while quiet.load.acked().iter().any(|n| *n < 10) {
            if Instant::now() > deadline {
                let acked = quiet.load.acked();
                let i = (0..acked.len()).find(|i| acked[*i] < 10).unwrap_or(0);
                let errors = quiet.load.errors(i, quiet.started);
                quiet.fail(
                    "start",
                    &[i],
                    format!("the load did not get going within 30 s: acknowledged writes per member {acked:?}; member {}'s client: {errors}", i + 1),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        quiet.check_states("start").await;
        quiet.baseline = quiet.mntr_all("start").await;
        quiet.started = Instant::now();
        eprintln!(
            "[{}] quorum with member {} leading; load running",
            quiet.name,
            leader + 1
        );
        quiet
    }

    /// Panics with `what`, prefixed by where, and followed by the logs of `members`,
    /// of the round's victim and of the leader.
    fn fail(&self, at: &str, members: &[usize], what: String) -> ! {
        let mut msg = format!("[{}] {at}: {what}", self.name);
        let mut shown = members.to_vec();
        for m in self.victim.into_iter().chain([self.leader]) {
            if !shown.contains(&m) {
                shown.push(m);
            }
        }
        for m in shown {
            let member = &self.ensemble.members[m];
            let _ = write!(
                msg,
                "\n---- last {LOG_LINES} lines of member {}'s log ({}) ----\n{}",
                member.id,
                member.log_path().display(),
                member.log_tail(LOG_LINES)
            );
        }
        panic!("{msg}");
    }

    fn id(&self, m: usize) -> u64 {
        self.ensemble.members[m].id
    }

    fn followers(&self) -> Vec<usize> {
        (0..self.ensemble.members.len())
            .filter(|m| *m != self.leader)
            .collect()
    }

    /// Every member's mntr, each retried up to `ANSWER_WITHIN`.
    async fn mntr_all(&self, at: &str) -> Vec<Mntr> {
        let mut all = Vec::new();
        for (i, m) in self.ensemble.members.iter().enumerate() {
            let deadline = Instant::now() + ANSWER_WITHIN;
            loop {
                let answer = m.mntr().await;
                // Not serving (no leader, say): its answer is one line without a state.
                if let Some(answer) = answer.clone().filter(|a| a.state().is_some()) {
                    all.push(answer);
                    break;
                }
                if Instant::now() > deadline {
                    self.fail(
                        at,
                        &[i],
                        format!(
                            "member {} gave no mntr answer with a zk_server_state within {ANSWER_WITHIN:?} (last answer: {answer:?})",
                            m.id
                        ),
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        all
    }

    /// The member in office leads and every other member follows (a member that
    /// gives no answer is asked again, up to `ANSWER_WITHIN`).
    async fn check_states(&self, at: &str) {
        let deadline = Instant::now() + ANSWER_WITHIN;
        let states = loop {
            let states = self.ensemble.states().await;
            if states.iter().all(Option::is_some) || Instant::now() > deadline {
                break states;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for (m, state) in states.iter().enumerate() {
            let expected = if m == self.leader {
                "leader"
            } else {
                "follower"
            };
            if state.as_deref() != Some(expected) {
                self.fail(
                    at,
                    &[m],
                    format!(
                        "member {} is {}, expected {expected:?} (member {} should lead); states by member id: {states:?}",
                        self.id(m),
                        state.as_deref().map_or("without a state (no mntr answer, or one without zk_server_state)".to_string(), |s| format!("{s:?}")),
                        self.leader + 1
                    ),
                );
            }
        }
    }

    /// What the poller saw since `since`, for a message.
    fn observed(&self, since: Instant) -> String {
        let seen = lock(&self.poller.seen);
        let list: Vec<String> = seen
            .iter()
            .filter(|o| o.at >= since)
            .map(|o| format!("{} member {} {}", rel(o.at, since), o.member + 1, o.shown))
            .collect();
        format!("[{}]", list.join(", "))
    }

    /// While nothing should have moved since `since`: the poller saw the leader in
    /// office lead, the other members follow, and `victim` (which may be down) never
    /// lead.
    fn check_observed_quiet(&self, at: &str, since: Instant, victim: Option<usize>) {
        let bad = {
            let seen = lock(&self.poller.seen);
            seen.iter().filter(|o| o.at >= since).find_map(|o| {
                let state = o.state.as_deref()?;
                let ok = if o.member == self.leader {
                    state == "leader"
                } else if Some(o.member) == victim {
                    state != "leader"
                } else {
                    state == "follower"
                };
                (!ok).then(|| (o.member, state.to_string(), o.at))
            })
        };
        if let Some((member, state, when)) = bad {
            self.fail(
                at,
                &[member],
                format!(
                    "member {} reported {state:?} at {} (member {} led when this began and should lead throughout); states the poller saw since: {}",
                    member + 1,
                    rel(when, since),
                    self.leader + 1,
                    self.observed(since)
                ),
            );
        }
    }

    /// No client saw its session leave the connected state since the last check,
    /// unless excused.
    fn check_clients(&mut self, at: &str, since: Instant) {
        let bad = {
            let events = lock(&self.load.events);
            let bad = events[self.judged..]
                .iter()
                .find(|e| {
                    !e.state.is_connected()
                        && !self.excused.iter().any(|x| {
                            x.client.is_none_or(|c| c == e.client) && x.from <= e.at && e.at <= x.to
                        })
                })
                .map(|e| {
                    let history: Vec<String> = events
                        .iter()
                        .filter(|o| o.client == e.client && o.at >= since)
                        .map(|o| format!("{} {:?}", rel(o.at, since), o.state))
                        .collect();
                    (e.client, e.state, e.at, history)
                });
            self.judged = events.len();
            bad
        };
        if let Some((client, state, when, history)) = bad {
            self.fail(
                at,
                &[client],
                format!(
                    "the client connected to member {} (a member this did not touch) went {state:?} at {}; its state changes since: {history:?}; {}; what the poller saw: {}",
                    client + 1,
                    rel(when, since),
                    self.load.errors(client, since),
                    self.observed(since)
                ),
            );
        }
    }

    /// `key` of member `m`'s `mntr` as a number; the test fails if it is absent.
    fn metric(&self, at: &str, m: usize, answer: &Mntr, key: &str, when: &str) -> u64 {
        let Some(value) = answer.get(key) else {
            let keys: Vec<&String> = answer.0.keys().collect();
            self.fail(
                at,
                &[m],
                format!(
                    "member {}'s mntr {when} has no `{key}` line, which this test needs (with `zk_raft_term` and `zk_leader_changes` it tells an election from none); the keys it has: {keys:?}",
                    self.id(m)
                ),
            );
        };
        value.parse().unwrap_or_else(|_| {
            self.fail(
                at,
                &[m],
                format!(
                    "member {}'s mntr {when}: `{key}` is {value:?}, not a number",
                    self.id(m)
                ),
            )
        })
    }

    /// Every member's term and leader-change count moved as `rule` says.
    async fn check_metrics(&mut self, at: &str, rule: Rule) {
        let expect = match self.expect.clone() {
            Some(e) => e,
            None => {
                let n = self.baseline.len();
                let terms = (0..n)
                    .map(|m| self.metric(at, m, &self.baseline[m], "zk_raft_term", "at the start"))
                    .collect();
                let changes = (0..n)
                    .map(|m| {
                        let b = &self.baseline[m];
                        self.metric(at, m, b, "zk_leader_changes", "at the start")
                    })
                    .collect();
                Expect { terms, changes }
            }
        };
        let now = self.mntr_all(at).await;
        let n = now.len();
        let terms: Vec<u64> = (0..n)
            .map(|m| self.metric(at, m, &now[m], "zk_raft_term", "now"))
            .collect();
        let changes: Vec<u64> = (0..n)
            .map(|m| self.metric(at, m, &now[m], "zk_leader_changes", "now"))
            .collect();
        let table: String = (0..n)
            .map(|m| {
                format!(
                    "\n  member {}: {}, zk_raft_term {} (was {}), zk_leader_changes {} (was {})",
                    m + 1,
                    now[m].state().unwrap_or("?"),
                    terms[m],
                    expect.terms[m],
                    changes[m],
                    expect.changes[m]
                )
            })
            .collect();
        let (term_step, change_step, fresh) = match rule {
            Rule::Quiet { restarted } => (0, 0, restarted),
            Rule::OneElection { old_leader } => (1, 1, Some(old_leader)),
        };
        for (m, &term) in terms.iter().enumerate() {
            let want = expect.terms[m] + term_step;
            if term != want {
                let why = if term_step == 0 {
                    "its term moved: an election was held"
                } else {
                    "one election moves every term by exactly one"
                };
                self.fail(
                    at,
                    &[m],
                    format!(
                        "member {} is at zk_raft_term {term}, expected {want} ({why});{table}",
                        m + 1
                    ),
                );
            }
        }
        for (m, &seen) in changes.iter().enumerate() {
            if Some(m) == fresh {
                // Restarted: its count starts again, and it joined a leader in office.
                if seen > 1 {
                    self.fail(
                        at,
                        &[m],
                        format!(
                            "member {} was restarted and rejoined the leader in office, so it can have seen at most that one leader take office, yet zk_leader_changes is {seen};{table}",
                            m + 1
                        ),
                    );
                }
                match &self.fresh_join {
                    Some((before, when)) if *before != seen => self.fail(
                        at,
                        &[m],
                        format!(
                            "member {} rejoined after a restart with zk_leader_changes {seen}, but a member rejoining after a restart reported {before} before ({when}): a member joining a leader in office should count the same every time;{table}",
                            m + 1
                        ),
                    ),
                    Some(_) => {}
                    None => self.fresh_join = Some((seen, at.to_string())),
                }
            } else {
                let want = expect.changes[m] + change_step;
                if seen != want {
                    let why = if change_step == 0 {
                        "it saw a new leader take office"
                    } else {
                        "it should have seen exactly one new leader take office"
                    };
                    self.fail(
                        at,
                        &[m],
                        format!(
                            "member {} has zk_leader_changes {seen}, expected {want} ({why});{table}",
                            m + 1
                        ),
                    );
                }
            }
        }
        self.expect = Some(Expect { terms, changes });
    }

    /// Waits until member `m` says it follows.
    async fn wait_follows(&self, at: &str, m: usize, since: Instant) {
        let deadline = Instant::now() + REJOIN_WITHIN;
        loop {
            let state = self.ensemble.members[m].mntr().await;
            if state.as_ref().and_then(Mntr::state) == Some("follower") {
                return;
            }
            if Instant::now() > deadline {
                self.fail(
                    at,
                    &[m],
                    format!(
                        "member {} did not report itself a follower within {REJOIN_WITHIN:?}: it says {:?}; states now by member id: {:?}; the poller saw: {}",
                        m + 1,
                        state.as_ref().and_then(Mntr::state),
                        self.ensemble.states().await,
                        self.observed(since)
                    ),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the leader counts every follower in sync.
    async fn wait_synced(&self, at: &str) {
        let want = (self.ensemble.members.len() - 1).to_string();
        let deadline = Instant::now() + SYNC_WITHIN;
        loop {
            let answer = self.ensemble.members[self.leader].mntr().await;
            let synced = answer
                .as_ref()
                .and_then(|a| a.get("zk_synced_followers"))
                .map(str::to_string);
            if synced.as_deref() == Some(want.as_str()) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(
                    at,
                    &[],
                    format!(
                        "the leader, member {}, did not count {want} followers in sync within {SYNC_WITHIN:?}: zk_synced_followers is {synced:?}, its state {:?}",
                        self.leader + 1,
                        answer.as_ref().and_then(Mntr::state)
                    ),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until client `i` is connected again and its watcher saw it so.
    async fn wait_reconnected(&self, at: &str, i: usize, since: Instant) {
        let deadline = Instant::now() + RECONNECT_WITHIN;
        loop {
            let last = lock(&self.load.events)
                .iter()
                .rev()
                .find(|e| e.client == i && e.at >= since)
                .map(|e| e.state);
            let state = self.load.clients[i].state();
            if state.is_connected() && last.is_none_or(SessionState::is_connected) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(
                    at,
                    &[i],
                    format!(
                        "the client of member {} was not connected again within {RECONNECT_WITHIN:?}: it is {state:?}; {}",
                        i + 1,
                        self.load.errors(i, since)
                    ),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM to member `m`: it must exit, with status 0, within `EXIT_WITHIN`.
    async fn terminate(&mut self, at: &str, m: usize) {
        match self.ensemble.members[m].terminate(EXIT_WITHIN).await {
            Ok(status) if status.success() => {}
            Ok(status) => self.fail(
                at,
                &[m],
                format!("member {} exited with {status} after SIGTERM", m + 1),
            ),
            Err(e) => self.fail(at, &[m], e),
        }
    }

    /// One follower (`victim`) killed, terminated or paused, then back; nothing else
    /// may move.
    async fn follower_round(&mut self, at: &str, victim: usize, fault: Fault) {
        assert_ne!(victim, self.leader, "{at}: the victim must be a follower");
        eprintln!("[{}] {at}", self.name);
        self.victim = Some(victim);
        let start = Instant::now();
        match fault {
            Fault::Kill => {
                self.ensemble.members[victim].kill();
                tokio::time::sleep(DOWN_FOR).await;
                self.ensemble.members[victim].spawn();
            }
            Fault::Terminate => {
                self.terminate(at, victim).await;
                tokio::time::sleep(DOWN_FOR).await;
                self.ensemble.members[victim].spawn();
            }
            Fault::Pause => {
                self.ensemble.members[victim].signal(libc::SIGSTOP);
                tokio::time::sleep(PAUSED_FOR).await;
                self.ensemble.members[victim].signal(libc::SIGCONT);
                tokio::time::sleep(AFTER_RESUME).await;
            }
        }
        self.wait_follows(at, victim, start).await;
        self.check_observed_quiet(at, start, Some(victim));
        self.check_states(at).await;
        self.wait_synced(at).await;
        self.wait_reconnected(at, victim, start).await;
        self.excused.push(Excuse {
            client: Some(victim),
            from: start,
            to: Instant::now() + GRACE,
        });
        self.check_observed_quiet(at, start, Some(victim));
        self.check_clients(at, start);
        let restarted = match fault {
            Fault::Kill | Fault::Terminate => Some(victim),
            Fault::Pause => None,
        };
        self.check_metrics(at, Rule::Quiet { restarted }).await;
    }

    /// `rounds` rounds of `fault`, each on the next follower in turn.
    async fn follower_rounds(&mut self, phase: &str, rounds: usize, fault: Fault) {
        for n in 1..=rounds {
            let followers = self.followers();
            let victim = followers[(n - 1) % followers.len()];
            let at = format!(
                "phase `{phase}`, round {n} of {rounds} ({} member {})",
                fault.verb(),
                victim + 1
            );
            self.follower_round(&at, victim, fault).await;
        }
    }

    /// `length` without a fault: nothing may move, and every client's writes go on.
    async fn steady(&mut self, length: Duration) {
        let at = format!("phase `steady load for {}`", secs(length));
        eprintln!("[{}] {at}", self.name);
        self.victim = None;
        let start = Instant::now();
        let acked = self.load.acked();
        while start.elapsed() < length {
            tokio::time::sleep(Duration::from_secs(1).min(length)).await;
            self.check_observed_quiet(&at, start, None);
            self.check_clients(&at, start);
        }
        self.check_states(&at).await;
        self.check_metrics(&at, Rule::Quiet { restarted: None })
            .await;
        let now = self.load.acked();
        for i in 0..now.len() {
            if now[i] <= acked[i] {
                self.fail(
                    &at,
                    &[i],
                    format!(
                        "the client of member {} had no write acknowledged during the phase ({} before and after); {}",
                        i + 1,
                        acked[i],
                        self.load.errors(i, start)
                    ),
                );
            }
        }
    }

    /// Every member restarted (SIGTERM, start, back in the ensemble) in turn, the
    /// leader last: exactly one leader change, when the leader stops.
    async fn rolling_restart(&mut self) {
        let phase = "rolling restart, leader last";
        let n = self.ensemble.members.len();
        let followers = self.followers();
        for (k, victim) in followers.iter().enumerate() {
            let at = format!(
                "phase `{phase}`, step {} of {n} (SIGTERM then restart follower {})",
                k + 1,
                victim + 1
            );
            self.follower_round(&at, *victim, Fault::Terminate).await;
        }

        let old = self.leader;
        let at = format!(
            "phase `{phase}`, step {n} of {n} (SIGTERM then restart the leader, member {})",
            old + 1
        );
        eprintln!("[{}] {at}", self.name);
        self.victim = Some(old);
        let start = Instant::now();
        self.terminate(&at, old).await;
        // The others elect one of themselves.
        let deadline = Instant::now() + QUORUM_WITHIN;
        let new = loop {
            let states = self.ensemble.states().await;
            let leaders: Vec<usize> = (0..n)
                .filter(|m| *m != old && states[*m].as_deref() == Some("leader"))
                .collect();
            let followers = (0..n)
                .filter(|m| *m != old && states[*m].as_deref() == Some("follower"))
                .count();
            if leaders.len() == 1 && followers == n - 2 {
                break leaders[0];
            }
            if Instant::now() > deadline {
                self.fail(
                    &at,
                    &[],
                    format!(
                        "no new leader among the other members within {QUORUM_WITHIN:?} of the leader's exit: states by member id {states:?}"
                    ),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.ensemble.members[old].spawn();
        self.leader = new;
        self.wait_follows(&at, old, start).await;

        // The poller saw leaders in this order: the old one, then the new one.
        let leaders: Vec<usize> = {
            let seen = lock(&self.poller.seen);
            let mut leaders: Vec<usize> = Vec::new();
            for o in seen.iter().filter(|o| o.at >= start) {
                if o.state.as_deref() == Some("leader") && leaders.last() != Some(&o.member) {
                    leaders.push(o.member);
                }
            }
            leaders
        };
        if !(leaders == [new] || leaders == [old, new] || leaders.is_empty()) {
            self.fail(
                &at,
                &[old, new],
                format!(
                    "one leader change from member {} to member {} expected; the poller saw leaders in turn: {:?} (one reporting `leader` again after another took office: two leaders at once, as seen from outside); all it saw: {}",
                    old + 1,
                    new + 1,
                    leaders.iter().map(|m| m + 1).collect::<Vec<_>>(),
                    self.observed(start)
                ),
            );
        }
        self.check_states(&at).await;
        self.wait_synced(&at).await;
        // A member that loses its leader may drop its clients: every client may
        // reconnect here, and all must.
        for i in 0..n {
            self.wait_reconnected(&at, i, start).await;
        }
        self.excused.push(Excuse {
            client: None,
            from: start,
            to: Instant::now() + GRACE,
        });
        self.check_clients(&at, start);
        self.check_metrics(&at, Rule::OneElection { old_leader: old })
            .await;
    }

    /// Stops the load and reads every acknowledged write back from every member.
    async fn finish(mut self) {
        let at = "end";
        let since = self.started;
        self.victim = None;
        self.check_clients(at, since);
        self.load.stop().await;
        for m in 0..self.ensemble.members.len() {
            let addr = self.ensemble.members[m].client.to_string();
            let zk = connect(&addr).await;
            if let Err(e) = zk.sync("/").await {
                self.fail(at, &[m], format!("sync on member {}: {e}", m + 1));
            }
            for (w, log) in self.load.logs.iter().enumerate() {
                let (created, set_acked, set_sent, acked) = {
                    let log = lock(log);
                    (log.created.clone(), log.set_acked, log.set_sent, log.acked)
                };
                let children = zk.get_children(&node(w)).await.unwrap_or_else(|e| {
                    self.fail(
                        at,
                        &[m],
                        format!("get_children {} on member {}: {e}", node(w), m + 1),
                    )
                });
                let present: BTreeSet<u64> = children
                    .iter()
                    .filter_map(|c| c.strip_prefix('c')?.parse().ok())
                    .collect();
                let missing: Vec<&u64> = created.difference(&present).collect();
                if !missing.is_empty() {
                    self.fail(
                        at,
                        &[m],
                        format!(
                            "member {} lacks {} of the {} acknowledged creates of member {}'s client ({acked} writes acknowledged), e.g. {}/c{:010}",
                            m + 1,
                            missing.len(),
                            created.len(),
                            w + 1,
                            node(w),
                            missing[0]
                        ),
                    );
                }
                let (data, _) = zk.get_data(&node(w)).await.unwrap_or_else(|e| {
                    self.fail(
                        at,
                        &[m],
                        format!("get_data {} on member {}: {e}", node(w), m + 1),
                    )
                });
                let value: Option<u64> =
                    std::str::from_utf8(&data).ok().and_then(|s| s.parse().ok());
                let fits = match (value, set_acked, set_sent) {
                    (None, None, _) => data.is_empty(),
                    (Some(v), acked, Some(sent)) => acked.is_none_or(|a| a <= v) && v <= sent,
                    _ => false,
                };
                if !fits {
                    self.fail(
                        at,
                        &[m],
                        format!(
                            "member {} has {:?} in {}, but its client's last acknowledged set wrote {set_acked:?} and its last set sent {set_sent:?}",
                            m + 1,
                            String::from_utf8_lossy(&data),
                            node(w)
                        ),
                    );
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), zk.close()).await;
        }
        let acked = self.load.acked();
        eprintln!(
            "[{}] done in {}: writes acknowledged per member's client {acked:?}, all present on every member",
            self.name,
            secs(self.started.elapsed())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_keep_their_leader_through_follower_restarts_pauses_and_steady_load() {
    let _one_at_a_time = SERIAL.lock().await;
    let plan = Plan::from_env();
    let mut quiet = Quiet::start(3, &plan).await;
    quiet
        .follower_rounds("follower restarts (kill -9)", plan.kills, Fault::Kill)
        .await;
    quiet
        .follower_rounds("follower restarts (SIGTERM)", plan.terms, Fault::Terminate)
        .await;
    quiet
        .follower_rounds("follower paused", plan.pauses, Fault::Pause)
        .await;
    quiet.steady(plan.steady).await;
    quiet.rolling_restart().await;
    quiet.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_keep_their_leader_through_follower_restarts() {
    let _one_at_a_time = SERIAL.lock().await;
    let plan = Plan::from_env();
    let mut quiet = Quiet::start(5, &plan).await;
    quiet
        .follower_rounds("follower restarts (kill -9)", plan.five_kills, Fault::Kill)
        .await;
    quiet.finish().await;
}
