//! Apache ZooKeeper's C client (libzookeeper_mt 3.8, Debian's `zookeeper-bin` and
//! `libzookeeper-mt-dev`) against our server, side by side with Apache ZooKeeper 3.8:
//!
//! - `cli_mt_session_prints_what_it_prints_against_apache`: the C shell `cli_mt` runs
//!   tests/interop/cli_mt_session.txt against both; the transcripts, normalized (times,
//!   session ids, zxids, ports, the library's log prefixes, children order), must be
//!   equal line for line, or the test fails printing the diff.
//! - `load_gen_cycles_without_errors`: the C load generator `load_gen` runs create,
//!   set, get and delete cycles of 1,000 pipelined requests each against ours, and
//!   cleans up after itself; its log must hold no `ZOO_ERROR`.
//! - `c_program_prints_what_it_prints_against_apache`: tests/interop/c_client_check.c,
//!   compiled here with gcc against libzookeeper_mt, drives watches, multi, ACLs,
//!   versions, ephemeral, sequential, container and TTL nodes, watch removal, refused
//!   session resumes, pings, and watches set again after a reconnection (through a
//!   [`Proxy`] the test cuts) on both; its outputs must be equal.
//!
//! A missing tool fails the test (scripts/install-test-deps.sh installs them all).
//!
//! Why cli_mt and how it is made deterministic: Debian builds only the multi-threaded
//! library, so there is no `cli_st`. cli_mt reads commands on its main thread and prints
//! most answers from the library's completion thread, so a script piped in at once would
//! interleave. The driver sends one command, then `sync /zk-rs-step-N`; the library
//! completes a session's requests in order, so when the marker's completion is printed
//! the command's answer (and any watch event it fired on this session, which the server
//! sends before the answer) has been printed before it. Only then is the next command
//! sent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;
use zk_tests::{diff_lines, interop_dir};

/// Debian's `zookeeper-bin` installs its programs here, off PATH.
const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
const LOAD_GEN: &str = "/usr/lib/zookeeper/bin/load_gen";
/// How long one answer may take before the transcript records its absence.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// `path`, which must exist (else the test fails saying how to install it).
fn tool(path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} is missing: install Debian's zookeeper-bin and libzookeeper-mt-dev (scripts/install-test-deps.sh)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_mt_session_prints_what_it_prints_against_apache() {
    let cli = tool(CLI_MT);
    let script = std::fs::read_to_string(interop_dir().join("cli_mt_session.txt")).unwrap();
    let (ours, apache) = tokio::join!(TestingServer::start(), ApacheZk::start());
    let ours = ours.unwrap();
    let (on_ours, on_apache) = tokio::join!(
        run_cli_mt(cli.clone(), ours.connect_string(), script.clone()),
        run_cli_mt(cli, apache.connect_string(), script),
    );
    let (on_ours, on_apache) = (normalize_cli_mt(&on_ours), normalize_cli_mt(&on_apache));
    if let Some(diff) = diff_lines(&on_apache, &on_ours) {
        panic!(
            "cli_mt printed something else against our server (+) than against Apache ZooKeeper 3.8 (-):\n{diff}"
        );
    }
    // The transcript is long enough to have run the whole script.
    assert!(
        on_ours.iter().any(|l| l == "Quitting..."),
        "the script did not run to its end:\n{}",
        on_ours.join("\n")
    );
}

/// Runs cli_mt against `addr` with `script`, one command at a time (see the module
/// doc), and returns what it printed: `> command` before each command's answer, then
/// its exit status and its standard output (where `myid` prints).
async fn run_cli_mt(cli: PathBuf, addr: String, script: String) -> Vec<String> {
    tokio::task::spawn_blocking(move || run_cli_mt_blocking(&cli, &addr, &script))
        .await
        .expect("join")
}

fn run_cli_mt_blocking(cli: &Path, addr: &str, script: &str) -> Vec<String> {
    let mut child = Command::new(cli)
        .args(["-h", addr])
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", cli.display()));
    let mut stdin = child.stdin.take().expect("cli_mt's stdin");
    let lines = line_channel(child.stderr.take().expect("cli_mt's stderr"));
    let mut stdout = child.stdout.take().expect("cli_mt's stdout");
    let stdout = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stdout.read_to_string(&mut all);
        all
    });

    let mut transcript = Vec::new();
    let connected = wait_for(&lines, &mut transcript, |l| {
        l.starts_with("Got a new session id")
    });
    // Apache answers `ruok` a little before it takes sessions: the library's log of
    // refused first attempts says how fast the server started, not how it behaves.
    transcript.retain(|l| !l.contains("):ZOO_"));
    let commands = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for (step, line) in commands.enumerate() {
        if !connected {
            break;
        }
        let (command, until) = match line.split_once(" ==> ") {
            Some((command, until)) => (command, Some(until)),
            None => (line, None),
        };
        transcript.push(format!("> {command}"));
        let marker = format!("/zk-rs-step-{step}");
        // One write for the command and its marker: cli_mt loses the start of a line
        // that a read returns only part of (it resets its buffer offset after each
        // line), and a pipe write this small is never split.
        let input = match until {
            Some(_) => format!("{command}\n"),
            None => format!("{command}\nsync {marker}\n"),
        };
        stdin
            .write_all(input.as_bytes())
            .expect("a command to cli_mt");
        let answered = match until {
            Some(until) => wait_for(&lines, &mut transcript, |l| l == until),
            None => {
                let head = format!("[{marker}]: rc = ");
                let done = wait_for(&lines, &mut transcript, |l| l.starts_with(&head));
                // "[marker]: rc = 0" and "\tname = marker" say nothing about the command.
                if done && transcript.last().is_some_and(|l| *l == format!("{head}0")) {
                    transcript.pop();
                    let name = format!("\tname = {marker}");
                    let mut rest = Vec::new();
                    wait_for(&lines, &mut rest, |l| l == name);
                    rest.retain(|l| *l != name);
                    transcript.extend(rest);
                }
                done
            }
        };
        if !answered {
            break;
        }
    }
    drop(stdin);
    // cli_mt says "bye" on end of input and closes its session.
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cli_mt's status") {
            break status.to_string();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break "killed: still running 10 s after its input ended".to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    transcript.extend(lines.iter());
    transcript.push(format!("exit: {status}"));
    transcript.push("stdout:".to_string());
    transcript.extend(
        stdout
            .join()
            .expect("stdout reader")
            .lines()
            .map(String::from),
    );
    transcript
}

/// The lines `from` yields, sent on a channel by a thread.
fn line_channel(from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Moves lines from `lines` to `into` until one satisfies `done` (true) or none comes
/// for [`ANSWER_TIMEOUT`] or the stream ends (false, noted in `into`).
fn wait_for(
    lines: &mpsc::Receiver<String>,
    into: &mut Vec<String>,
    done: impl Fn(&str) -> bool,
) -> bool {
    loop {
        match lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(line) => {
                let hit = done(&line);
                into.push(line);
                if hit {
                    return true;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                into.push(format!("<no answer within {ANSWER_TIMEOUT:?}>"));
                return false;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                into.push("<cli_mt's output ended>".to_string());
                return false;
            }
        }
    }
}

/// Numbers each distinct value in order of first appearance: `<what N>`.
#[derive(Default)]
struct Renamer(HashMap<String, HashMap<u64, usize>>);

impl Renamer {
    fn name(&mut self, what: &str, value: u64) -> String {
        let seen = self.0.entry(what.to_string()).or_default();
        let next = seen.len() + 1;
        let n = *seen.entry(value).or_insert(next);
        format!("<{what} {n}>")
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// cli_mt's transcript without what differs between two correct servers and runs:
/// times, session ids and zxids (renamed in order of first appearance, so which are
/// equal still shows), the library's log-line prefix (date, pid, thread, source line)
/// and ports, and the order of a children listing (which ZooKeeper leaves unspecified:
/// Apache's follows a hash set).
fn normalize_cli_mt(transcript: &[String]) -> Vec<String> {
    let mut names = Renamer::default();
    let mut out: Vec<String> = Vec::new();
    // Where the current run of children lines starts in `out`, while in one.
    let mut children_from: Option<usize> = None;
    for line in transcript {
        let mut line = line.clone();
        if let Some(ms) = line
            .strip_prefix("time = ")
            .and_then(|r| r.strip_suffix(" msec"))
        {
            if ms.parse::<u64>().is_ok() {
                line = "time = <ms> msec".to_string();
            }
        }
        for prefix in ["\tctime = ", "\tmtime="] {
            if let Some(date) = line.strip_prefix(prefix) {
                if date != "Thu Jan  1 00:00:00 1970" {
                    line = format!("{prefix}<time>");
                }
            }
        }
        for prefix in ["\tczxid=", "\tmzxid="] {
            if let Some(zxid) = line.strip_prefix(prefix).and_then(hex) {
                if zxid != 0 {
                    line = format!("{prefix}{}", names.name("zxid", zxid));
                }
            }
        }
        for prefix in [
            "Got a new session id: ",
            "\tephemeralOwner = ",
            "session Id = ",
        ] {
            if let Some(id) = line.strip_prefix(prefix).and_then(hex) {
                if id != 0 {
                    line = format!("{prefix}{}", names.name("session", id));
                }
            }
        }
        if let Some(at) = line.find("):ZOO_") {
            // "2026-01-02 03:04:05,678:123(0x7f…):ZOO_ERROR@function@2071: message"
            let rest = &line[at + 2..];
            let (level_function, message) = rest.split_once(": ").unwrap_or((rest, ""));
            let level_function = match level_function.rsplit_once('@') {
                Some((head, number)) if number.parse::<u32>().is_ok() => head,
                _ => level_function,
            };
            line = format!("{level_function}: {}", normalize_ports(message));
        }
        // Children lines: the tab-indented run right after "/path: rc = N".
        let is_child = line.starts_with('\t');
        match children_from {
            Some(from) if !is_child => {
                out[from..].sort();
                children_from = None;
            }
            _ => {}
        }
        let listing_head = line.starts_with('/')
            && line
                .rsplit_once(": rc = ")
                .is_some_and(|(_, rc)| rc.parse::<i32>().is_ok());
        out.push(line);
        if listing_head {
            children_from = Some(out.len());
        }
    }
    if let Some(from) = children_from {
        out[from..].sort();
    }
    out
}

/// `127.0.0.1:<port>` for every `127.0.0.1:NNNN`.
fn normalize_ports(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..at + "127.0.0.1:".len()]);
        rest = rest[at + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("<port>");
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_gen_cycles_without_errors() {
    let load_gen = tool(LOAD_GEN);
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let log = tokio::task::spawn_blocking(move || run_load_gen(&load_gen, &addr, 3))
        .await
        .expect("join");
    let errors: Vec<&String> = log.iter().filter(|l| l.contains("ZOO_ERROR")).collect();
    assert!(
        errors.is_empty(),
        "load_gen logged errors against our server:\n{}",
        log.join("\n")
    );
}

/// Runs `load_gen addr /load-gen 1000` until it has completed `cycles` cycles (create,
/// set, get, delete 1,000 children, pipelined), kills it, runs `load_gen addr /load-gen
/// clean`, and returns both logs; fails unless both did their part.
fn run_load_gen(load_gen: &Path, addr: &str, cycles: usize) -> Vec<String> {
    let mut child = Command::new(load_gen)
        .args([addr, "/load-gen", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", load_gen.display()));
    let lines = line_channel(child.stderr.take().expect("load_gen's stderr"));
    let mut log = Vec::new();
    // Each cycle starts with "Creating children": cycles + 1 of them mean `cycles` done.
    let mut started = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while started <= cycles && Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                started += usize::from(line.contains("Creating children for path /load-gen"));
                log.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Still running, as it should be (it loops until killed): `None`.
    let exited = child.try_wait().expect("load_gen's status");
    let _ = child.kill();
    let _ = child.wait();
    log.extend(lines.try_iter());
    assert!(
        started > cycles,
        "load_gen completed {} of {cycles} cycles within 40 s ({}):\n{}",
        started.saturating_sub(1),
        exited.map_or("still running".to_string(), |s| format!("it exited: {s}")),
        log.join("\n")
    );
    for phase in ["write", "read", "delete"] {
        let n = log
            .iter()
            .filter(|l| l.contains(&format!("Starting the {phase} cycle")))
            .count();
        assert!(
            n >= cycles,
            "{n} {phase} phases of {cycles}:\n{}",
            log.join("\n")
        );
    }

    let clean = Command::new(load_gen)
        .args([addr, "/load-gen", "clean"])
        .output()
        .expect("load_gen clean");
    let clean_log = String::from_utf8_lossy(&clean.stderr).into_owned();
    assert!(
        clean.status.success()
            && clean_log.contains("Successfully deleted a subtree starting at /load-gen"),
        "load_gen clean failed ({}):\n{clean_log}",
        clean.status
    );
    log.extend(clean_log.lines().map(String::from));
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_program_prints_what_it_prints_against_apache() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c_check(dir.path());
    let (ours, apache) = tokio::join!(TestingServer::start(), ApacheZk::start());
    let ours = ours.unwrap();
    let (ours_proxy, apache_proxy) = tokio::join!(
        Proxy::start(ours.connect_string()),
        Proxy::start(apache.connect_string())
    );
    let (on_ours, on_apache) = tokio::join!(
        run_c_check(program.clone(), ours.connect_string(), ours_proxy),
        run_c_check(program, apache.connect_string(), apache_proxy),
    );
    assert!(
        on_apache.0.last().is_some_and(|l| l == "done"),
        "the C program did not finish against Apache ZooKeeper:\n{}\n{}",
        on_apache.0.join("\n"),
        on_apache.1
    );
    if let Some(diff) = diff_lines(&on_apache.0, &on_ours.0) {
        panic!(
            "the C program printed something else against our server (+) than against Apache ZooKeeper 3.8 (-):\n{diff}\nits stderr against ours:\n{}",
            on_ours.1
        );
    }
}

/// Compiles tests/interop/c_client_check.c into `dir` against libzookeeper_mt.
fn compile_c_check(dir: &Path) -> PathBuf {
    let header = Path::new("/usr/include/zookeeper/zookeeper.h");
    assert!(
        header.exists(),
        "{} is missing: install Debian's libzookeeper-mt-dev (scripts/install-test-deps.sh)",
        header.display()
    );
    let program = dir.join("c_client_check");
    let out = Command::new("gcc")
        .args([
            "-DTHREADED",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O1",
        ])
        .arg("-I/usr/include/zookeeper")
        .arg("-o")
        .arg(&program)
        .arg(interop_dir().join("c_client_check.c"))
        .args(["-lzookeeper_mt", "-lpthread"])
        .output()
        .expect("gcc (install gcc: scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "gcc failed on c_client_check.c:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    program
}

/// Runs the compiled C program against `addr`, and `proxy` (forwarding to the same
/// server) for its reconnection part, cutting and restoring the proxy when it says
/// `CUT` and `RESTORE`: its standard output's lines (without those two) and its
/// standard error (the library's log).
async fn run_c_check(program: PathBuf, addr: String, proxy: Proxy) -> (Vec<String>, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&program)
            .arg(addr)
            .arg(proxy.addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let mut stdin = child.stdin.take().expect("its stdin");
        let stdout = line_channel(child.stdout.take().expect("its stdout"));
        let mut stderr = child.stderr.take().expect("its stderr");
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        // Every wait in the program is bounded, but a synchronous call the server never
        // answers is not: 40 s for the whole run.
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut lines = Vec::new();
        let status = loop {
            match stdout.recv_timeout(Duration::from_millis(20)) {
                Ok(line) if line == "CUT" => {
                    proxy.cut();
                    let _ = stdin.write_all(b"go\n");
                }
                Ok(line) if line == "RESTORE" => {
                    proxy.restore();
                    let _ = stdin.write_all(b"go\n");
                }
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break child.wait().expect("its status").to_string();
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break "killed: still running after 40 s".to_string();
            }
        };
        lines.extend(stdout.try_iter());
        if status != "exit status: 0" {
            lines.push(format!("exit: {status}"));
        }
        (lines, stderr.join().expect("stderr reader"))
    })
    .await
    .expect("join")
}
