//! The examples as separate processes against an in-process server: the lock keeps
//! several `lock_counter` processes from losing an increment of a shared file, the
//! `leader_fleet` workers fail over when the leader's process is killed, and the
//! `group_view` members see each other join and see a killed member leave, and
//! `config_watch` reacts to every change of its configuration key.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use zk_server::testing::TestingServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_counter_processes_lose_no_increment() {
    let server = TestingServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counter");
    let mut children = Vec::new();
    for _ in 0..3 {
        children.push(
            Command::new(env!("CARGO_BIN_EXE_lock_counter"))
                .arg(server.connect_string())
                .arg(&file)
                .arg("20")
                .stdout(Stdio::null())
                .spawn()
                .expect("start lock_counter"),
        );
    }
    for mut child in children {
        let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
            .await
            .expect("lock_counter finishes")
            .unwrap();
        assert!(status.success());
    }
    let count = std::fs::read_to_string(&file).unwrap();
    assert_eq!(count.trim(), "60", "an increment was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_elects_a_new_leader_when_the_leaders_process_is_killed() {
    let server = TestingServer::start().await.unwrap();
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<(usize, String)>();
    let mut workers = Vec::new();
    for i in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_leader_fleet"))
            .arg(server.connect_string())
            .arg(format!("w{i}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start leader_fleet");
        let stdout = child.stdout.take().unwrap();
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = out.next_line().await {
                let _ = tx.send((i, line));
            }
        });
        workers.push(child);
    }
    let leader_of = |line: &str| line.ends_with(" leads");
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (i, line) = lines.recv().await.unwrap();
            if leader_of(&line) {
                return i;
            }
        }
    })
    .await
    .expect("a leader");
    let killed_at = Instant::now();
    workers[first].start_kill().unwrap(); // SIGKILL
    let _ = workers[first].wait().await;
    let next = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (i, line) = lines.recv().await.unwrap();
            if i != first && leader_of(&line) {
                return i;
            }
        }
    })
    .await
    .expect("a new leader after the kill");
    println!(
        "leader_fleet: w{next} leads {} ms after the leader's process was killed (session timeout 2 s)",
        killed_at.elapsed().as_millis()
    );
    assert_ne!(next, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_see_each_other_and_a_killed_member_leave() {
    let server = TestingServer::start().await.unwrap();
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<(usize, String)>();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_group_view"))
            .arg(server.connect_string())
            .arg(format!("m{i}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start group_view");
        let stdout = child.stdout.take().unwrap();
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = out.next_line().await {
                let _ = tx.send((i, line));
            }
        });
        members.push(child);
    }
    // Until each member has printed `expected` as its view.
    let mut until_all_see = async |expected: &str, of: &[usize]| {
        let mut seen = std::collections::BTreeSet::new();
        tokio::time::timeout(Duration::from_secs(20), async {
            while seen.len() < of.len() {
                let (i, line) = lines.recv().await.unwrap();
                if of.contains(&i) && line == format!("m{i} view: {expected}") {
                    seen.insert(i);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("members {of:?} did not all see {expected}"));
    };
    until_all_see("m0,m1,m2", &[0, 1, 2]).await;
    members[1].start_kill().unwrap(); // SIGKILL: the session expires after 2 s
    let _ = members[1].wait().await;
    until_all_see("m0,m2", &[0, 2]).await;
}

/// Reads `out` until `line` comes (fails the test after 20 s).
async fn expect_line(
    out: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    line: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let got = out
                .next_line()
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("the process ended before printing {line:?}"));
            if got.starts_with(line) {
                return got;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never printed {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_watcher_reacts_to_each_change_live() {
    use zk_client::Client;
    let server = TestingServer::start().await.unwrap();
    let mut app = Command::new(env!("CARGO_BIN_EXE_config_watch"))
        .arg(server.connect_string())
        .arg("/examples/app/config")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start config_watch");
    let mut out = BufReader::new(app.stdout.take().unwrap()).lines();
    expect_line(&mut out, "config: missing").await;
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    for dir in ["/examples", "/examples/app"] {
        zk.create(dir).await.unwrap();
    }
    zk.create("/examples/app/config")
        .data(br#"{"greeting":"hello","workers":4}"#)
        .await
        .unwrap();
    expect_line(&mut out, "config: greeting=hello workers=4").await;
    zk.set_data(
        "/examples/app/config",
        br#"{"greeting":"hi","workers":8}"#,
        None,
    )
    .await
    .unwrap();
    expect_line(&mut out, "config: greeting=hi workers=8").await;
    zk.set_data("/examples/app/config", b"{not json", None)
        .await
        .unwrap();
    let line = expect_line(&mut out, "config: bad value").await;
    assert!(line.ends_with("keeping greeting=hi"), "{line}");
    zk.delete("/examples/app/config", None).await.unwrap();
    expect_line(&mut out, "config: missing").await;
}
