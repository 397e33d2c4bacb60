//! Real third-party clients of a follower that survives its leader's `kill -9`:
//! kazoo (Python) and Apache Curator 5.4 (Java), each connected to one follower of a
//! 3-member ensemble of `zk-server` processes, create sequential nodes with unique
//! payloads one after another for eight seconds; two seconds in, the leader process
//! is killed with SIGKILL. The client sees nothing of it: no state change after its
//! first connect (kazoo's SUSPENDED or LOST; Curator's SUSPENDED, LOST or
//! RECONNECTED, and no Disconnected from the ZooKeeper handle under it), no second
//! connection, the same session, not one failed write, and writes acknowledged
//! after the kill. Read back afterwards, every acknowledged payload is in exactly
//! one node, the one the client was told, and nothing else is there.
//!
//! Apache ZooKeeper drops every client when its leader changes (kazoo goes SUSPENDED
//! then CONNECTED); ours keeps the survivors' connections. `leader_change.rs` checks
//! the same of our own client, in process and with processes, round after round.
//!
//! The servers are the `zk-server` binary cargo built beside this test
//! (`cargo build -p zk-server` first; `cargo test --workspace` builds it), run by
//! [`zk_tests::process_ensemble::ProcessEnsemble`]. Members
//! log at RUST_LOG=info into their directories; a failure prints the client's whole
//! output, the test's own steps (times in ms since the Unix epoch, as the client's
//! lines) and the end of every member's log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use zk_client::Client;
use zk_tests::java::{classpath, compile, scratch, CURATOR_JARS};
use zk_tests::process_ensemble::ProcessEnsemble;
use zk_tests::{interop_dir, python_with_kazoo};

/// How long the client writes.
const WRITE_SECONDS: u64 = 8;
/// How long after the client's first write the leader is killed.
const KILL_AFTER: Duration = Duration::from_secs(2);
/// The bound on each wait: a quorum, a new leader, the client's start.
const WAIT: Duration = Duration::from_secs(30);
const MEMBERS: usize = 3;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------
// The client process and what it printed.

/// A client program running, its standard output collected line by line as it
/// comes; killed if dropped.
struct Running {
    child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: tokio::task::JoinHandle<()>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Running {
    fn spawn(mut command: tokio::process::Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the client");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let out = child.stdout.take().expect("the client's stdout");
        let collected = lines.clone();
        let stdout = tokio::spawn(async move {
            let mut out = BufReader::new(out).lines();
            while let Ok(Some(line)) = out.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().expect("the client's stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        Running {
            child,
            lines,
            stdout,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until the client says `READY`; false if it exited or took longer than
    /// [`WAIT`].
    async fn ready(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.lines().iter().any(|l| l.starts_with("READY ")) {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Waits for it to exit (killing it after `within`); returns how it ended, or
    /// `None` if it had to be killed, and everything it printed on stderr.
    async fn finish(mut self, within: Duration) -> (Option<ExitStatus>, Vec<String>, String) {
        let status = match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = self.child.kill().await;
                None
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.stdout).await;
        let stderr = tokio::time::timeout(Duration::from_secs(5), &mut self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let lines = self.lines();
        (status, lines, stderr)
    }
}

/// One write the client made: when it started and ended (ms since the Unix epoch),
/// its payload, and the path it was given (or the error).
#[derive(Debug)]
struct Write {
    start: u64,
    end: u64,
    payload: String,
    outcome: String,
}

/// The client's `ACK` and `FAIL` lines and its summary lines (first word → rest).
struct Report {
    acked: Vec<Write>,
    failed: Vec<Write>,
    summary: BTreeMap<String, String>,
}

fn parse(lines: &[String]) -> Report {
    let mut report = Report {
        acked: Vec::new(),
        failed: Vec::new(),
        summary: BTreeMap::new(),
    };
    for line in lines {
        let words: Vec<&str> = line.splitn(5, ' ').collect();
        match words.as_slice() {
            [kind @ ("ACK" | "FAIL"), start, end, payload, outcome] => {
                let write = Write {
                    start: start.parse().unwrap_or(0),
                    end: end.parse().unwrap_or(0),
                    payload: payload.to_string(),
                    outcome: outcome.to_string(),
                };
                if *kind == "ACK" {
                    report.acked.push(write);
                } else {
                    report.failed.push(write);
                }
            }
            [key @ ("STATES" | "EVENTS" | "CONNECTS" | "HANDLES" | "SESSION" | "ACKED"
            | "FAILED"), ..] => {
                let rest = line[key.len()..].trim().to_string();
                report.summary.insert(key.to_string(), rest);
            }
            _ => {}
        }
    }
    report
}

// ---------------------------------------------------------------------------------
// The scenario, for either client.

/// How to start a client program against `host`, writing under `parent` with
/// payloads `tag-<i>`.
type Launcher = Box<dyn Fn(&str, &str, &str) -> tokio::process::Command>;

/// A third-party client: how to start it, and what its summary must say.
struct ThirdParty {
    name: &'static str,
    command: Launcher,
    /// Summary lines that must read exactly so (no state change past the first
    /// connect, one connection).
    expect: &'static [(&'static str, &'static str)],
    /// A directory of its own to remove at the end (the compiled classes).
    scratch: Option<PathBuf>,
}

fn kazoo() -> ThirdParty {
    let python = python_with_kazoo();
    ThirdParty {
        name: "kazoo",
        command: Box::new(move |host, parent, tag| {
            let mut command = tokio::process::Command::new(&python);
            command
                .arg(interop_dir().join("kazoo_leader_kill.py"))
                .args([host, parent, &WRITE_SECONDS.to_string(), tag]);
            command
        }),
        expect: &[("STATES", "CONNECTED"), ("CONNECTS", "1")],
        scratch: None,
    }
}

async fn curator() -> ThirdParty {
    let classpath = classpath(CURATOR_JARS, "Curator's Debian packages");
    let dir = scratch(&std::env::temp_dir(), "curator-leader-kill");
    let source = interop_dir().join("CuratorLeaderKill.java");
    let (cp, out, scratch_dir) = (classpath.clone(), dir.clone(), dir.clone());
    tokio::task::spawn_blocking(move || compile(&source, &cp, &out, true))
        .await
        .expect("javac");
    ThirdParty {
        name: "Curator",
        command: Box::new(move |host, parent, tag| {
            let mut command = tokio::process::Command::new("java");
            command
                .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                .args([
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                    "-Dorg.slf4j.simpleLogger.showDateTime=true",
                    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                ])
                .arg("-cp")
                .arg(format!("{classpath}:{}", dir.display()))
                .arg("CuratorLeaderKill")
                .args([host, parent, &WRITE_SECONDS.to_string(), tag]);
            command
        }),
        expect: &[
            ("STATES", "CONNECTED"),
            ("EVENTS", "SyncConnected"),
            ("HANDLES", "1"),
        ],
        scratch: Some(scratch_dir),
    }
}

/// The whole scenario; panics, with everything there is to see, if the client
/// noticed the leader's death or a write went missing or twice.
async fn leader_killed_under(client: ThirdParty) {
    // One ensemble at a time: two would share the machine's cores and each other's
    // timing.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut ensemble = ProcessEnsemble::start(MEMBERS).expect("start the ensemble");
    let ids = ensemble.ids();
    let Some(leader) = ensemble.wait_for_leader(WAIT).await else {
        panic!(
            "no quorum formed within {WAIT:?}: {:?}\n{}",
            ensemble.modes().await,
            ensemble.log_tails(&ids, 80)
        );
    };
    let follower = ids
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let host = ensemble
        .client_addr(follower)
        .expect("the follower's address")
        .to_string();
    let parent = format!("/{}", client.name.to_lowercase());
    let tag = format!("{}{}", client.name.to_lowercase(), std::process::id());
    let setup = Client::builder(&host)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the follower");
    setup.create(&parent).await.expect("create the parent");
    setup.close().await;

    let mut steps = vec![format!(
        "{} test: leader m{}, client on follower m{} ({host})",
        now_ms(),
        leader,
        follower
    )];
    let mut running = Running::spawn((client.command)(&host, &parent, &tag));
    let ready = running.ready().await;
    let mut new_leader = None;
    let (mut kill_sent, mut killed, mut elected) = (0, 0, 0);
    if ready {
        tokio::time::sleep(KILL_AFTER).await;
        kill_sent = now_ms();
        ensemble.kill(leader);
        killed = now_ms();
        steps.push(format!(
            "{kill_sent} test: SIGKILL to the leader m{leader}, reaped at {killed}"
        ));
        new_leader = ensemble.wait_for_new_leader(leader, WAIT).await;
        elected = now_ms();
        steps.push(format!(
            "{elected} test: new leader {}",
            new_leader.map_or("none".to_string(), |l| format!("m{l}"))
        ));
    }
    let within = if ready {
        Duration::from_secs(WRITE_SECONDS) + WAIT
    } else {
        Duration::from_secs(1)
    };
    let (status, lines, stderr) = running.finish(within).await;
    steps.push(format!("{} test: the client ended: {status:?}", now_ms()));
    let everything = || {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}\n--- test ---\n{}\n{}",
            client.name,
            lines.join("\n"),
            client.name,
            stderr.trim_end(),
            steps.join("\n"),
            ensemble.log_tails(&ids, 80)
        )
    };
    assert!(ready, "{} never said READY\n{}", client.name, everything());
    assert!(
        new_leader.is_some(),
        "no new leader within {WAIT:?} of the kill\n{}",
        everything()
    );
    // What it saw, before how it ended: a client that lost its connection may not
    // end in time at all. Its summary comes before it closes the client, which is
    // a state change of its own.
    let noticed: Vec<&String> = lines
        .iter()
        .take_while(|l| !l.starts_with("STATES "))
        .filter(|l| l.starts_with("STATE ") || l.starts_with("EVENT "))
        .filter(|l| !l.ends_with(" CONNECTED") && !l.ends_with(" SyncConnected"))
        .collect();
    assert!(
        noticed.is_empty(),
        "{} noticed the leader change (killed at {kill_sent}): {noticed:?}\n{}",
        client.name,
        everything()
    );
    let report = parse(&lines);
    assert!(
        report.failed.is_empty(),
        "{} had writes fail (leader killed at {kill_sent}): {:?}\n{}",
        client.name,
        report.failed,
        everything()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "{} did not end well: {status:?}\n{}",
        client.name,
        everything()
    );
    assert_eq!(
        report.summary.get("FAILED").map(String::as_str),
        Some("0"),
        "{}'s FAILED line\n{}",
        client.name,
        everything()
    );
    assert_eq!(
        report.summary.get("ACKED"),
        Some(&report.acked.len().to_string()),
        "{}'s ACKED line disagrees with its ACK lines\n{}",
        client.name,
        everything()
    );
    for (key, want) in client.expect {
        assert_eq!(
            report.summary.get(*key).map(String::as_str),
            Some(*want),
            "{} noticed the leader change: its {key} line should read {want:?}\n{}",
            client.name,
            everything()
        );
    }
    let sessions: Vec<&str> = report
        .summary
        .get("SESSION")
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    assert!(
        sessions.len() == 2 && sessions[0] == sessions[1],
        "{}'s session changed: {sessions:?}\n{}",
        client.name,
        everything()
    );
    let before = report.acked.iter().filter(|w| w.end < kill_sent).count();
    let after = report.acked.iter().filter(|w| w.start > killed).count();
    let spanning: Vec<&Write> = report
        .acked
        .iter()
        .filter(|w| w.start <= killed && w.end >= kill_sent)
        .collect();
    assert!(
        before > 0 && after > 0,
        "{} should have written on both sides of the kill: {before} writes acknowledged \
         before it, {after} started after it\n{}",
        client.name,
        everything()
    );

    // Read back through a survivor: each acknowledged payload in one node, the one
    // the client was told; nothing else.
    let reader = Client::builder(&host)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to the follower to read back");
    reader.sync(&parent).await.expect("sync");
    let mut applied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for child in reader.get_children(&parent).await.expect("the children") {
        let path = format!("{parent}/{child}");
        let (data, _) = reader.get_data(&path).await.expect("a child's data");
        applied
            .entry(String::from_utf8_lossy(&data).into_owned())
            .or_default()
            .push(path);
    }
    reader.close().await;
    let wrong: Vec<String> = report
        .acked
        .iter()
        .filter(|w| applied.get(&w.payload) != Some(&vec![w.outcome.clone()]))
        .map(|w| {
            format!(
                "{} acked as {}, found at {:?}",
                w.payload,
                w.outcome,
                applied.get(&w.payload)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} acknowledged writes not applied exactly once where it was told: {wrong:?}\n{}",
        client.name,
        everything()
    );
    let acked: std::collections::BTreeSet<&str> =
        report.acked.iter().map(|w| w.payload.as_str()).collect();
    let extra: Vec<(&String, &Vec<String>)> = applied
        .iter()
        .filter(|(payload, _)| !acked.contains(payload.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "nodes under {parent} that {} was never told of: {extra:?}\n{}",
        client.name,
        everything()
    );
    println!(
        "{}: {} writes acknowledged, none failed ({before} before the kill, {after} started after it, \
         {} in flight across it, taking {:?} ms); new leader m{} ({}) seen {} ms after the \
         kill; all {} read back once",
        client.name,
        report.acked.len(),
        spanning.len(),
        spanning.iter().map(|w| w.end - w.start).collect::<Vec<_>>(),
        new_leader.unwrap_or(0),
        if new_leader == Some(follower) {
            "the client's own member"
        } else {
            "the other survivor"
        },
        elected.saturating_sub(kill_sent),
        applied.len()
    );
    if let Some(dir) = &client.scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_on_a_surviving_follower_sees_nothing_of_a_leader_kill() {
    leader_killed_under(kazoo()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_on_a_surviving_follower_sees_nothing_of_a_leader_kill() {
    leader_killed_under(curator().await).await;
}
