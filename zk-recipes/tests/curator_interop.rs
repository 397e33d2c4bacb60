//! Apache Curator 5.4 (Debian's jars) and our recipes on the same paths of our server:
//! Curator's `InterProcessMutex` and our `Lock` exclude each other (witnessed outside
//! ZooKeeper, through files both sides write), and Curator's `LeaderLatch` and ours
//! elect one leader at a time through a series of handovers between the two
//! implementations. The Java side is `tests/interop/curator/CuratorInterop.java`,
//! compiled with javac when the test runs; a missing JDK or jar fails the test
//! (scripts/install-test-deps.sh installs them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use zk_client::Client;
use zk_proto::ErrorCode;
use zk_recipes::{CloseMode, LeaderLatch, Lock};
use zk_server::testing::TestingServer;
use zk_tests::java::{self, Transcript};

const WAIT: Duration = Duration::from_secs(20);

/// Curator's jars (`zk_tests::java::CURATOR_JARS`) as a classpath.
fn classpath() -> String {
    java::classpath(
        java::CURATOR_JARS,
        "Apache Curator's Debian packages (libcurator-recipes-java, libcurator-framework-java)",
    )
}

/// This test process's scratch directory under target/tmp.
fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| java::scratch(Path::new(env!("CARGO_TARGET_TMPDIR")), "curator-interop"))
        .clone()
}

/// CuratorInterop.java compiled (once per test process): the directory of its classes.
async fn classes() -> PathBuf {
    static CLASSES: OnceLock<PathBuf> = OnceLock::new();
    tokio::task::spawn_blocking(|| {
        CLASSES
            .get_or_init(|| {
                let source = zk_tests::interop_dir().join("curator/CuratorInterop.java");
                java::compile(&source, &classpath(), &scratch().join("classes"), true)
            })
            .clone()
    })
    .await
    .expect("javac")
}

/// One CuratorInterop process: its stdout lines go to `on_line` (as they come) and to
/// a channel `expect` reads.
struct Java {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    log: Transcript,
}

impl Java {
    async fn spawn(
        name: &str,
        args: &[&str],
        log: &Transcript,
        on_line: impl Fn(&str) + Send + 'static,
    ) -> Java {
        let classes = classes().await;
        let mut child = Command::new("java")
            .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{}:{}", classpath(), classes.display()))
            .arg("CuratorInterop")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("java not runnable ({e}): install a JDK"));
        let (tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let (who, out_log) = (name.to_string(), log.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                out_log.note(format!("{who}> {line}"));
                on_line(&line);
                let _ = tx.send(line);
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let (who, err_log) = (name.to_string(), log.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                err_log.note(format!("{who}! {line}"));
            }
        });
        log.note(format!("started {name}: {}", args.join(" ")));
        Java {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            log: log.clone(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.log.note(format!("{}< {line}", self.name));
        let stdin = self.stdin.as_mut().expect("stdin open");
        let sent = async {
            stdin.write_all(format!("{line}\n").as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(e) = sent.await {
            panic!(
                "{}: cannot send {line:?} ({e}):\n{}",
                self.name,
                self.log.dump()
            );
        }
    }

    /// The next line starting with `prefix` (other lines are skipped), within WAIT.
    async fn expect(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.starts_with(prefix) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!(
                    "{} ended before printing {prefix:?}:\n{}",
                    self.name,
                    self.log.dump()
                ),
                Err(_) => panic!(
                    "{} printed no {prefix:?} within {WAIT:?}:\n{}",
                    self.name,
                    self.log.dump()
                ),
            }
        }
    }

    /// Waits for the process to exit by itself, successfully.
    async fn exits_cleanly(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit:\n{}", self.name, self.log.dump()))
            .unwrap();
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            self.name,
            self.log.dump()
        );
    }

    async fn kill(mut self) {
        self.log.note(format!("killing {}", self.name));
        self.child.start_kill().unwrap();
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("killed")
            .unwrap();
    }
}

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect")
}

/// Whether `name` is `_c_<uuid>-<kind>-<10 digits>`: a protected sequential node as
/// Curator names them.
fn curator_layout(name: &str, kind: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else {
        return false;
    };
    let (Some(uuid), Some(rest)) = (rest.get(..36), rest.get(36..)) else {
        return false;
    };
    let uuid_ok = uuid.char_indices().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => c == '-',
        _ => c.is_ascii_hexdigit(),
    });
    let Some(sequence) = rest.strip_prefix(&format!("-{kind}-")) else {
        return false;
    };
    uuid_ok && sequence.len() == 10 && sequence.bytes().all(|b| b.is_ascii_digit())
}

/// The children of `dir` with their data, in Curator's order (`LockInternals.
/// getSortedChildren`: by the text after the last `<kind>-`); empty if `dir` is gone.
async fn nodes_in_curator_order(zk: &Client, dir: &str, kind: &str) -> Vec<(String, String)> {
    let children = match zk.get_children(dir).await {
        Ok(c) => c,
        Err(e) if e.code() == Some(ErrorCode::NoNode) => return Vec::new(),
        Err(e) => panic!("get_children {dir}: {e}"),
    };
    let marker = format!("{kind}-");
    let suffix = |name: &str| match name.rfind(&marker) {
        Some(at) => name[at + marker.len()..].to_string(),
        None => name.to_string(),
    };
    let mut named: Vec<(String, String)> = children.into_iter().map(|c| (suffix(&c), c)).collect();
    named.sort();
    let mut nodes = Vec::new();
    for (_, name) in named {
        match zk.get_data(&format!("{dir}/{name}")).await {
            Ok((data, _)) => nodes.push((name, String::from_utf8_lossy(&data).into_owned())),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
            Err(e) => panic!("get_data {dir}/{name}: {e}"),
        }
    }
    nodes
}

// ---------------------------------------------------------------------------------
// Lock

const LOCK_PATH: &str = "/interop/locks/shared";
const LOCK_TURNS: usize = 15;

/// One of our holders taking `turns` turns, witnessing exclusion through the same
/// files as CuratorInterop.java: `holder` created with O_EXCL while inside, and a
/// read-sleep-write of `counter`.
async fn our_turns(
    zk: Client,
    witness: PathBuf,
    who: String,
    log: Transcript,
) -> Result<(), String> {
    let holder = witness.join("holder");
    let counter = witness.join("counter");
    let mut lock = Lock::new(&zk, LOCK_PATH);
    for turn in 0..LOCK_TURNS {
        let guard = match tokio::time::timeout(Duration::from_secs(60), lock.acquire()).await {
            Ok(Ok(guard)) => guard,
            Ok(Err(e)) => return Err(format!("{who}: acquire failed on turn {turn}: {e}")),
            Err(_) => return Err(format!("{who}: waited 60 s for the lock on turn {turn}")),
        };
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&holder);
        match created {
            Ok(mut file) => std::io::Write::write_all(&mut file, who.as_bytes()).unwrap(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let other = std::fs::read_to_string(&holder).unwrap_or_default();
                log.note(format!("OVERLAP {who} {other}"));
                return Err(format!(
                    "two holders at once: {who} got the lock while {other} was inside"
                ));
            }
            Err(e) => panic!("{}: {e}", holder.display()),
        }
        let text = std::fs::read_to_string(&counter).unwrap();
        let seen: u64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{who}: counter holds {text:?} (a torn write: two holders)"))?;
        tokio::time::sleep(Duration::from_millis(3)).await;
        std::fs::write(&counter, (seen + 1).to_string()).unwrap();
        std::fs::remove_file(&holder).unwrap();
        guard
            .release()
            .await
            .map_err(|e| format!("{who}: release failed on turn {turn}: {e}"))?;
    }
    log.note(format!("{who}: done {LOCK_TURNS} turns"));
    zk.close().await;
    Ok(())
}

/// Two Curator processes and two of our holders (each on its own session) take turns
/// on one lock path. First a Curator process holds the lock while everyone else queues
/// behind it: the four nodes have one layout and our recipe ranks them as Curator does.
/// Then all run freely; the shared witness files see never two holders at once and
/// every turn counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_mutex_and_our_lock_exclude_each_other() {
    let log = Transcript::new();
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    let witness = scratch().join("lock-witness");
    let _ = std::fs::remove_dir_all(&witness);
    std::fs::create_dir_all(&witness).unwrap();
    std::fs::write(witness.join("counter"), "0").unwrap();
    let turns = LOCK_TURNS.to_string();
    let (c, t, w) = (connect.as_str(), turns.as_str(), witness.to_str().unwrap());
    let args = |who: &'static str, gate: &'static str| ["lock", c, LOCK_PATH, t, w, who, gate];

    // java-1 takes the lock first and keeps it until told to go on.
    let mut first = Java::spawn("java-1", &args("java-1", "gate"), &log, |_| {}).await;
    let hold = first.expect("HOLD ").await;
    let first_node = hold.split_whitespace().nth(2).unwrap().to_string();
    let second = Java::spawn("java-2", &args("java-2", "nogate"), &log, |_| {}).await;
    let mut ours = tokio::task::JoinSet::new();
    for who in ["rust-1", "rust-2"] {
        let zk = client(&connect).await;
        ours.spawn(our_turns(zk, witness.clone(), who.to_string(), log.clone()));
    }

    // Everyone queues behind java-1.
    let zk = client(&connect).await;
    let deadline = Instant::now() + WAIT;
    let nodes = loop {
        let nodes = nodes_in_curator_order(&zk, LOCK_PATH, "lock").await;
        if nodes.len() == 4 {
            break nodes;
        }
        assert!(
            nodes.len() < 4 && Instant::now() < deadline,
            "expected java-1 holding and 3 waiters, have {nodes:?}:\n{}",
            log.dump()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    log.note(format!("lock nodes while java-1 holds: {nodes:?}"));
    for (name, _) in &nodes {
        assert!(
            curator_layout(name, "lock"),
            "{name} is not `_c_<uuid>-lock-<10 digits>`: {nodes:?}"
        );
    }
    // Curator's nodes carry their client's default data (the process's name), ours none.
    let mut owners: Vec<&str> = nodes.iter().map(|(_, data)| data.as_str()).collect();
    assert_eq!(
        nodes[0],
        (first_node.clone(), "java-1".to_string()),
        "java-1 holds: {nodes:?}"
    );
    owners.sort();
    assert_eq!(owners, ["", "", "java-1", "java-2"], "{nodes:?}");
    let names: Vec<String> = nodes.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        Lock::new(&zk, LOCK_PATH).participants().await.unwrap(),
        names,
        "our Lock ranks the contenders as Curator does"
    );
    assert!(ours.try_join_next().is_none(), "none of ours got through");

    first.send("go").await;
    let started = Instant::now();
    while let Some(done) = tokio::time::timeout(Duration::from_secs(90), ours.join_next())
        .await
        .unwrap_or_else(|_| panic!("our holders did not finish:\n{}", log.dump()))
    {
        if let Err(e) = done.unwrap() {
            panic!("{e}:\n{}", log.dump());
        }
    }
    for mut java in [first, second] {
        java.expect("DONE ").await;
        java.exits_cleanly().await;
    }
    let total = 4 * LOCK_TURNS;
    println!(
        "curator interop: {total} turns by 2 Curator and 2 of our holders in {} ms",
        started.elapsed().as_millis()
    );
    let count = std::fs::read_to_string(witness.join("counter")).unwrap();
    assert_eq!(
        count.trim(),
        total.to_string(),
        "a lost update: two holders at once:\n{}",
        log.dump()
    );
    assert!(!witness.join("holder").exists());
    let left = match zk.get_children(LOCK_PATH).await {
        Ok(children) => children,
        Err(e) if e.code() == Some(ErrorCode::NoNode) => Vec::new(),
        Err(e) => panic!("{e}"),
    };
    assert!(left.is_empty(), "lock nodes left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&witness);
}

// ---------------------------------------------------------------------------------
// LeaderLatch

const LATCH_PATH: &str = "/interop/election";

/// Who claims to lead, as each participant says it: ours through `leadership()`,
/// Curator's through the `LEADER`/`NOT_LEADER` lines its listener prints (called
/// synchronously as its leadership changes). A Curator participant the test has told
/// to leave (or killed) no longer counts from that moment: Curator's `close()` deletes
/// its node before it drops leadership, so its application must stop leading first.
/// Nothing else makes a participant stop leading in this test, so any moment with two
/// claimants is a real violation.
#[derive(Default)]
struct Board {
    java: HashMap<String, bool>,
    leaving: Vec<String>,
    ours: Vec<(String, watch::Receiver<bool>)>,
    violations: Vec<String>,
    /// When each participant took leadership, for the handover times.
    claims: Vec<(String, Instant)>,
}

impl Board {
    fn leaders(&self) -> Vec<String> {
        let mut leaders: Vec<String> = self
            .ours
            .iter()
            .filter(|(_, l)| *l.borrow())
            .map(|(id, _)| id.clone())
            .collect();
        leaders.extend(
            self.java
                .iter()
                .filter(|(id, leads)| **leads && !self.leaving.contains(id))
                .map(|(id, _)| id.clone()),
        );
        leaders.sort();
        leaders
    }

    fn check(&mut self, when: &str, log: &Transcript) {
        let leaders = self.leaders();
        if leaders.len() > 1 && self.violations.len() < 20 {
            let violation = format!("{when}: {leaders:?} lead at once");
            log.note(&violation);
            self.violations.push(violation);
        }
    }
}

type SharedBoard = Arc<Mutex<Board>>;

struct Election {
    zk: Client,
    log: Transcript,
    board: SharedBoard,
    java: HashMap<String, Java>,
    /// The Curator participants in the election (the others wait for `start`).
    joined: Vec<String>,
    ours: HashMap<String, LeaderLatch>,
    connect: String,
}

impl Election {
    async fn spawn_java(&mut self, id: &str) {
        let (board, log, who) = (self.board.clone(), self.log.clone(), id.to_string());
        let on_line = move |line: &str| {
            let mut board = board.lock().unwrap();
            if line == format!("LEADER {who}") {
                board.java.insert(who.clone(), true);
                board.claims.push((who.clone(), Instant::now()));
                board.check(&format!("{who} printed LEADER"), &log);
            } else if line == format!("NOT_LEADER {who}") {
                board.java.insert(who.clone(), false);
            }
        };
        let mut java = Java::spawn(
            id,
            &["latch", &self.connect, LATCH_PATH, id],
            &self.log,
            on_line,
        )
        .await;
        java.expect("READY ").await;
        self.java.insert(id.to_string(), java);
    }

    /// Joins a (spawned) Curator participant: its node is created when this returns.
    async fn join_java(&mut self, id: &str) {
        let java = self.java.get_mut(id).unwrap();
        java.send("start").await;
        java.expect("JOINED ").await;
        self.joined.push(id.to_string());
    }

    /// Joins one of ours, on its own session; waits until its node is there (`alive`
    /// nodes in all).
    async fn join_ours(&mut self, id: &str, alive: usize) {
        let zk = client(&self.connect).await;
        let latch = LeaderLatch::new(&zk, LATCH_PATH, id);
        latch.start();
        let mut changes = latch.leadership();
        let (board, log, who) = (self.board.clone(), self.log.clone(), id.to_string());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let leads = *changes.borrow_and_update();
                log.note(format!("{who}: leadership {leads}"));
                if leads {
                    let mut board = board.lock().unwrap();
                    board.claims.push((who.clone(), Instant::now()));
                    board.check(&format!("{who} took leadership"), &log);
                }
            }
        });
        self.board
            .lock()
            .unwrap()
            .ours
            .push((id.to_string(), latch.leadership()));
        self.ours.insert(id.to_string(), latch);
        self.log.note(format!("started {id} (ours)"));
        let deadline = Instant::now() + WAIT;
        while self.nodes().await.len() < alive {
            assert!(
                Instant::now() < deadline,
                "{id} made no node:\n{}",
                self.log.dump()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn nodes(&self) -> Vec<(String, String)> {
        nodes_in_curator_order(&self.zk, LATCH_PATH, "latch").await
    }

    /// Waits for one participant, and only one, to claim leadership, the one whose node
    /// is first; `alive` nodes in all. Then checks what each side says: Curator's
    /// `hasLeadership()` of every Curator participant, ours of ours, both sides' ranking
    /// of the participants, and the nodes' layout.
    async fn leader(&mut self, alive: usize) -> String {
        let deadline = Instant::now() + WAIT;
        let (leader, nodes) = loop {
            let leaders = self.board.lock().unwrap().leaders();
            let nodes = self.nodes().await;
            if leaders.len() == 1 && nodes.len() == alive && nodes[0].1 == leaders[0] {
                break (leaders[0].clone(), nodes);
            }
            assert!(
                leaders.len() <= 1 && Instant::now() < deadline,
                "no single leader: {leaders:?} claim to lead, nodes {nodes:?}:\n{}",
                self.log.dump()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        self.log.note(format!("{leader} leads; nodes {nodes:?}"));
        for (name, _) in &nodes {
            assert!(
                curator_layout(name, "latch"),
                "{name} is not `_c_<uuid>-latch-<10 digits>`: {nodes:?}"
            );
        }
        let ranked: Vec<String> = nodes.iter().map(|(_, id)| id.clone()).collect();
        for id in &self.joined {
            let java = self.java.get_mut(id).unwrap();
            java.send("status").await;
            let status = java.expect("STATUS ").await;
            assert_eq!(
                status,
                format!("STATUS {id} {}", *id == leader),
                "Curator's {id} disagrees on the leader ({leader}):\n{}",
                self.log.dump()
            );
            java.send("participants").await;
            let participants = java.expect("PARTICIPANTS ").await;
            assert_eq!(
                participants,
                format!("PARTICIPANTS {id} {}", ranked.join(",")),
                "Curator ranks the participants otherwise:\n{}",
                self.log.dump()
            );
        }
        for (id, latch) in &self.ours {
            assert_eq!(latch.has_leadership(), *id == leader, "{id} vs {leader}");
            assert_eq!(
                latch.participants().await.unwrap(),
                ranked,
                "our LeaderLatch ranks the participants otherwise"
            );
        }
        leader
    }

    /// The leader leaves: ours close (NotifyLeader), Curator's close on a `close` line
    /// or are killed (their node then goes with their session).
    async fn leave(&mut self, id: &str, kill: bool) {
        if let Some(latch) = self.ours.remove(id) {
            let mut leadership = latch.leadership();
            self.log.note(format!("closing {id}"));
            latch.close_with(CloseMode::NotifyLeader).await;
            assert!(
                !*leadership.borrow_and_update(),
                "{id} still leads after close"
            );
            self.board.lock().unwrap().ours.retain(|(o, _)| o != id);
            return;
        }
        let mut java = self.java.remove(id).unwrap();
        self.joined.retain(|j| j != id);
        self.board.lock().unwrap().leaving.push(id.to_string());
        if kill {
            java.kill().await;
        } else {
            java.send("close").await;
            java.expect("CLOSED ").await;
            java.exits_cleanly().await;
        }
    }
}

/// Curator's LeaderLatch and ours take turns leading one election: java-1, rust-1,
/// java-2, rust-2 join in that order (and java-3, rust-3 later), and each leader in
/// turn leaves (closed, or for java-2 killed so that its session has to expire), so
/// leadership passes from one implementation to the other five times. Each time
/// exactly one new leader emerges, the one whose node is first, and both sides agree
/// on who leads and on the order of the participants; an independent board of every
/// participant's claims sees never two leaders at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_latch_and_ours_elect_one_leader_at_a_time() {
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    let log = Transcript::new();
    let board: SharedBoard = Arc::default();
    let sampler = {
        let (board, log) = (board.clone(), log.clone());
        tokio::spawn(async move {
            loop {
                board.lock().unwrap().check("sampled", &log);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut election = Election {
        zk: client(&connect).await,
        log: log.clone(),
        board: board.clone(),
        java: HashMap::new(),
        joined: Vec::new(),
        ours: HashMap::new(),
        connect,
    };
    // JVMs start while nothing waits on them.
    for id in ["java-1", "java-2", "java-3"] {
        election.spawn_java(id).await;
    }
    election.join_java("java-1").await;
    election.join_ours("rust-1", 2).await;
    election.join_java("java-2").await;
    election.join_ours("rust-2", 4).await;

    // (leader expected, how it leaves, who joins after it left, nodes while it leads)
    let script: [(&str, &str, Option<&str>, usize); 6] = [
        ("java-1", "close", Some("java-3"), 4),
        ("rust-1", "close", Some("rust-3"), 4),
        ("java-2", "kill", None, 4),
        ("rust-2", "close", None, 3),
        ("java-3", "close", None, 2),
        ("rust-3", "close", None, 1),
    ];
    let mut left: Option<(String, &str, Instant)> = None;
    for (expected, how, joins, alive) in script {
        let leader = election.leader(alive).await;
        assert_eq!(leader, expected, "leadership goes in the order of joining");
        if let Some((previous, how, at)) = left.take() {
            let claimed = board
                .lock()
                .unwrap()
                .claims
                .iter()
                .rev()
                .find(|(id, _)| *id == leader)
                .map(|(_, t)| *t)
                .unwrap();
            println!(
                "curator interop: {previous} ({how}) -> {leader}: new leader after {} ms",
                claimed.duration_since(at).as_millis()
            );
        }
        let at = Instant::now();
        election.leave(expected, how == "kill").await;
        left = Some((expected.to_string(), how, at));
        if let Some(id) = joins {
            if id.starts_with("java") {
                election.join_java(id).await;
            } else {
                election.join_ours(id, alive).await;
            }
        }
    }
    sampler.abort();
    let violations = std::mem::take(&mut board.lock().unwrap().violations);
    assert!(
        violations.is_empty(),
        "two leaders at once: {violations:?}:\n{}",
        log.dump()
    );
    assert!(
        election.nodes().await.is_empty(),
        "latch nodes left behind: {:?}",
        election.nodes().await
    );
}
