//! Service discovery as separate processes against an in-process server: three
//! `discovery_service` instances register themselves, a `discovery_client` spreads its
//! requests over all three round-robin; one service is killed (SIGKILL) mid-run: the
//! client notes the failed requests (at most the down-instance threshold of them
//! before it skips the instance), retries them on the others, and once the killed
//! instance's session has expired it no longer sees it at all; every request is
//! answered.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use zk_server::testing::TestingServer;

const WAIT: Duration = Duration::from_secs(30);
const REQUESTS: usize = 320;

/// Spawns `program` with `args`, its stdout lines sent to `lines` tagged `who`.
fn spawn(
    program: &str,
    args: &[&str],
    who: &str,
    lines: &mpsc::UnboundedSender<(String, String)>,
) -> Child {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, who) = (lines.clone(), who.to_string());
    tokio::spawn(async move {
        let mut out = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = out.next_line().await {
            let _ = tx.send((who.clone(), line));
        }
    });
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spread_over_the_services_and_avoid_a_killed_one() {
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    let (tx, mut lines) = mpsc::unbounded_channel::<(String, String)>();
    let mut transcript: Vec<String> = Vec::new();
    let mut services = Vec::new();
    for i in 0..3 {
        let id = format!("s{i}");
        services.push(spawn(
            env!("CARGO_BIN_EXE_discovery_service"),
            &[&connect, "echo", &id, "0"],
            &id,
            &tx,
        ));
    }
    let mut registered = 0;
    tokio::time::timeout(WAIT, async {
        while registered < 3 {
            let (who, line) = lines.recv().await.unwrap();
            transcript.push(format!("{who}> {line}"));
            if line == format!("{who} registered") {
                registered += 1;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the services did not register:\n{}", transcript.join("\n")));

    let requests = REQUESTS.to_string();
    let mut client = spawn(
        env!("CARGO_BIN_EXE_discovery_client"),
        &[&connect, "echo", &requests, "25"],
        "client",
        &tx,
    );
    let mut answered: Vec<String> = Vec::new();
    let mut killed_at: Option<(Instant, usize)> = None;
    let mut gone_at: Option<(Instant, usize)> = None;
    let mut failures_on_killed = 0;
    let mut after_gone: BTreeMap<String, usize> = BTreeMap::new();
    let run = tokio::time::timeout(Duration::from_secs(120), async {
        while answered.len() < REQUESTS {
            let Some((who, line)) = lines.recv().await else {
                break;
            };
            transcript.push(format!("{who}> {line}"));
            if who != "client" {
                continue;
            }
            if let Some(rest) = line.strip_prefix("request ") {
                let id = rest.rsplit(' ').next().unwrap_or_default().to_string();
                if rest.contains(" answered by ") {
                    if gone_at.is_some() {
                        *after_gone.entry(id.clone()).or_default() += 1;
                    }
                    answered.push(id);
                } else if rest.contains(" failed on s1:") && gone_at.is_none() {
                    failures_on_killed += 1;
                } else {
                    // Any other failure: after the kill only s1 may fail, and only
                    // until its session expired.
                    panic!("unexpected failure: {line}");
                }
            } else if line == "instances: s0,s2" && killed_at.is_some() && gone_at.is_none() {
                gone_at = Some((Instant::now(), answered.len()));
            }
            // Kill s1 once the spread has been seen.
            if answered.len() == 30 && killed_at.is_none() {
                let mut first: BTreeMap<&str, usize> = BTreeMap::new();
                for id in &answered {
                    *first.entry(id.as_str()).or_default() += 1;
                }
                assert_eq!(
                    first,
                    BTreeMap::from([("s0", 10), ("s1", 10), ("s2", 10)]),
                    "the first 30 requests go round-robin over the three"
                );
                services[1].start_kill().unwrap(); // SIGKILL
                let _ = services[1].wait().await;
                killed_at = Some((Instant::now(), answered.len()));
            }
        }
    })
    .await;
    let transcript = transcript.join("\n");
    assert!(run.is_ok(), "the client did not finish:\n{transcript}");
    let status = tokio::time::timeout(WAIT, client.wait())
        .await
        .expect("the client exits")
        .unwrap();
    assert!(
        status.success(),
        "the client failed ({status}):\n{transcript}"
    );
    assert_eq!(answered.len(), REQUESTS, "{transcript}");
    let (killed, killed_after) = killed_at.expect("s1 was killed");
    let Some((gone, gone_after)) = gone_at else {
        panic!("the client never saw s1 leave:\n{transcript}");
    };
    println!(
        "discovery processes: s1 killed after request {killed_after}; {failures_on_killed} \
         requests failed on it (retried elsewhere); the client saw it gone {} ms after the \
         kill (session timeout 2000 ms), after request {gone_after}; then {} requests: {after_gone:?}",
        gone.duration_since(killed).as_millis(),
        REQUESTS - gone_after,
    );
    assert!(
        failures_on_killed <= 2,
        "the down-instance policy skips s1 after 2 errors:\n{transcript}"
    );
    assert!(
        REQUESTS - gone_after >= 20,
        "too few requests after s1 left to tell:\n{transcript}"
    );
    assert!(!after_gone.contains_key("s1"), "{transcript}");
    assert!(
        after_gone.get("s0").is_some_and(|&n| n >= 5)
            && after_gone.get("s2").is_some_and(|&n| n >= 5),
        "the rest spread over s0 and s2: {after_gone:?}"
    );
}
