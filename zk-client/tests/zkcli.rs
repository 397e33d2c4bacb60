//! `zkcli` against Apache ZooKeeper 3.8's own `zkCli.sh`: the same scripts through
//! both, on the same server, compared command by command (stdout and stderr merged,
//! as a terminal shows them); watch events compared as a sequence of their own,
//! since zkCli.sh prints them from another thread. Then one-shot runs (output and
//! exit status), and the interactive mode driven in a pseudo-terminal (tmux).
//!
//! Needs the binary: run with `--features cli` (scripts/test.sh does).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zk_client::{Acl, Client, Id, Perms};
use zk_server::testing::TestingServer;

const ZKCLI: &str = env!("CARGO_BIN_EXE_zkcli");

/// Runs `program -server server [args]` with `script` on stdin, stdout and stderr in
/// one pipe (`2>&1`, as a terminal interleaves them); the output without the JVM's
/// SLF4J warnings, and the exit status.
async fn run(program: &Path, server: &str, args: &[&str], script: &str) -> (String, i32) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec \"$@\" 2>&1")
        .arg("sh")
        .arg(program)
        .arg("-server")
        .arg(server)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let script = script.to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("write script");
        drop(stdin);
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("SLF4J:"))
        .map(|l| format!("{l}\n"))
        .collect();
    (text, out.status.code().unwrap_or(-1))
}

async fn java(server: &str, args: &[&str], script: &str) -> (String, i32) {
    run(&zk_tests::zkcli(), server, args, script).await
}

async fn ours(server: &str, args: &[&str], script: &str) -> (String, i32) {
    run(Path::new(ZKCLI), server, args, script).await
}

/// Takes the watch events out of `text`: the rest, and the events in order. zkCli.sh
/// prints an event as two `println("\n" + …)` calls from its event thread, which
/// other output may come between, so each piece is taken out on its own.
fn take_events(text: &str) -> (String, Vec<String>) {
    let text = text.replace("\nWATCHER::\n", "");
    let mut rest = String::new();
    let mut events = Vec::new();
    let mut s = text.as_str();
    while let Some(i) = s.find("\nWatchedEvent ") {
        rest.push_str(&s[..i]);
        let ev = &s[i + 1..];
        let end = ev.find('\n').map_or(ev.len(), |e| e + 1);
        events.push(ev[..end].trim_end().to_string());
        s = &ev[end..];
    }
    rest.push_str(s);
    (rest, events)
}

/// Java's `Date.toString()` shape: `Thu Jan 01 00:00:00 UTC 1970`.
fn is_java_date(s: &str) -> bool {
    let p: Vec<&str> = s.split(' ').collect();
    p.len() == 6
        && ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].contains(&p[0])
        && p[1].len() == 3
        && p[2].len() == 2
        && p[3].len() == 8
        && p[5].parse::<i32>().is_ok()
}

/// What differs between two sessions running the same writes: zxids, times, session
/// ids (checked for their form, then masked).
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| {
            for key in ["cZxid = 0x", "mZxid = 0x", "pZxid = 0x"] {
                if let Some(v) = l.strip_prefix(key) {
                    assert!(u64::from_str_radix(v, 16).is_ok(), "bad zxid line {l:?}");
                    return format!("{key}*\n");
                }
            }
            for key in ["ctime = ", "mtime = "] {
                if let Some(v) = l.strip_prefix(key) {
                    assert!(is_java_date(v), "bad date line {l:?}");
                    return format!("{key}*\n");
                }
            }
            if let Some(v) = l.strip_prefix("ephemeralOwner = 0x") {
                // A session id (TTL nodes have a fixed 0xff… owner).
                if v != "0" && !v.starts_with("ff") {
                    return "ephemeralOwner = <session>\n".to_string();
                }
            }
            format!("{l}\n")
        })
        .collect()
}

const MARK: &str = "Node does not exist: /zkcli-mark-";

/// A script with a marker command after each command, to split the output by.
fn with_marks(commands: &[&str]) -> String {
    let mut s = String::new();
    for (i, c) in commands.iter().enumerate() {
        s.push_str(&format!("{c}\nget /zkcli-mark-{i}\n"));
    }
    s
}

/// The output of each command (the text before the first mark is the banner).
fn by_command(text: &str, n: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut rest = text;
    for i in 0..n {
        let mark = format!("{MARK}{i}\n");
        match rest.find(&mark) {
            Some(at) => {
                chunks.push(rest[..at].to_string());
                rest = &rest[at + mark.len()..];
            }
            None => {
                chunks.push(format!("<no mark {i}> {rest}"));
                rest = "";
            }
        }
    }
    chunks.push(rest.to_string());
    chunks
}

/// Compares two runs of `commands` chunk by chunk, then their events.
fn compare(commands: &[&str], java: &str, ours: &str, normalized: bool) {
    let (j, mut j_events) = take_events(java);
    let (o, mut o_events) = take_events(ours);
    for events in [&mut j_events, &mut o_events] {
        events.retain(|e| !e.ends_with(" path:/t/off"));
        // zkCli.sh's `quit` may exit before its event thread prints the last Closed.
        if events.last().map(String::as_str)
            == Some("WatchedEvent state:Closed type:None path:null")
        {
            events.pop();
        }
    }
    let (j, o) = if normalized {
        (normalize(&j), normalize(&o))
    } else {
        (j, o)
    };
    let (jc, oc) = (
        by_command(&j, commands.len()),
        by_command(&o, commands.len()),
    );
    for (i, (a, b)) in jc.iter().zip(&oc).enumerate() {
        let what = if i == 0 {
            "(banner)"
        } else {
            commands.get(i - 1).copied().unwrap_or("(end)")
        };
        assert_eq!(
            a, b,
            "output of {what:?} differs: zkCli.sh printed\n{a}\nzkcli printed\n{b}\n--- whole zkCli.sh output:\n{java}\n--- whole zkcli output:\n{ours}"
        );
    }
    assert_eq!(
        j_events, o_events,
        "watch events differ\n--- zkCli.sh:\n{java}\n--- zkcli:\n{ours}"
    );
}

/// Writes, errors, ACLs, auth, quotas, watches, history — through zkCli.sh, then the
/// same through zkcli on the same server (the script removes what it made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_session_prints_what_zkcli_sh_prints() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let commands: Vec<&str> = vec![
        "create /t top",
        "create /t again",
        "create /t/a alpha",
        "create /t/n",
        "get /t/n",
        "get /t/a",
        "get -s /t/a",
        "get /t/missing",
        "ls /t",
        "ls -s /t",
        "ls -R /t",
        "ls /t extra",
        "stat /t/a",
        "stat /t/missing",
        "set /t/a beta",
        "set -s /t/a gamma",
        "set -v 7 /t/a delta",
        "set -s -v 2 /t/a delta",
        "set /t/a",
        "create -e /t/eph e",
        "create -s /t/seq- s",
        "create -s /t/seq- s",
        "create -e -s /t/eseq- x",
        "create -c /t/cont",
        "create -t 60000 /t/ttl x",
        "stat /t/ttl",
        "create -e /t/eph/child",
        "create /t/x/y",
        "create t/rel",
        "create /t/bad/ x",
        "create /t//b x",
        "create -c -e /t/c2",
        "create -t abc /t/t2",
        "create -t 0 /t/t2",
        "create /t/q2 d bogus",
        "getEphemerals /t",
        "getAllChildrenNumber /t",
        "getAllChildrenNumber",
        "delete /t",
        "delete -v 5 /t/a",
        "delete /t/missing",
        "delete -v 3 /t/a",
        "create /t/acl d",
        "getAcl /t/acl",
        "setAcl /t/acl world:anyone:r",
        "getAcl -s /t/acl",
        "set /t/acl x",
        "setAcl /t/acl world:anyone:rxz",
        "setAcl /t/acl bogus",
        "addauth digest bob:pw",
        "create /t/dig d digest:bob:ikIaKsbtGweaHnb/jKn7OHqbunM=:cdrwa",
        "getAcl /t/dig",
        "get /t/dig",
        "setAcl -s /t/dig auth:bob:pw:cdra",
        "getAcl /t/dig",
        "create /t/dig/c x",
        "whoami",
        "sync /t",
        "config",
        "getAcl /t/missing",
        "create /t/q",
        "setquota /t/q",
        "setquota -n 5 -b 10 /t/q",
        "setquota -n 0 /t/q",
        "setquota -n 5 /t/q",
        "listquota /t/q",
        "create /t/q/1 12345",
        "listquota /t/q",
        "setquota -b 100 /t/q",
        "setquota -N 1 /t/q",
        "listquota /t/q",
        "setquota -n 2 /t/q/1",
        "setquota -n 2 /t/nope",
        "delquota -n /t/q",
        "listquota /t/q",
        "delquota /t/q",
        "listquota /t/q",
        "delquota /t/q",
        "history",
        "redo 72",
        "redo 999",
        "printwatches",
        "printwatches off",
        "create /t/off",
        "get -w /t/off",
        "set /t/off unseen",
        "printwatches on",
        "get -w /t",
        "set /t seen",
        "ls -w /t",
        "create /t/w",
        "addWatch /t",
        "set /t/w x",
        "removewatches /t",
        "removewatches /t/nothing",
        "stat -w /t/later",
        "create /t/later",
        "foo",
        "get",
        "ls -x /t",
        "deleteall /t -b 2",
        "ls /t",
    ];
    let mut script = with_marks(&commands);
    script.push_str("quit\n");
    let (j, j_code) = java(&addr, &[], &script).await;
    let (o, o_code) = ours(&addr, &[], &script).await;
    // zkCli.sh decides whether to print an event when its event thread gets to it,
    // which may be after the next `printwatches on`: /t/off's event is left out of
    // the comparison (zkcli never prints it, checked below).
    assert!(
        !o.contains("path:/t/off"),
        "printed while printwatches was off:\n{o}"
    );
    compare(&commands, &j, &o, true);
    assert_eq!(j_code, o_code, "exit status\n{j}\n{o}");
    // Not vacuous: the runs did what the script says.
    for want in [
        "Created /t/seq-0000000004",
        "Node not empty: /t",
        "version No is not valid : /t/a",
        "Insufficient permission : /t/acl",
        "Output quota for /t/q count=5,bytes=100=;byteHardLimit=-1;countHardLimit=1",
        "[/t/eph, /t/eseq-0000000005]",
        "'digest,'bob:ikIaKsbtGweaHnb/jKn7OHqbunM=",
    ] {
        assert!(o.contains(want), "zkcli output lacks {want:?}:\n{o}");
    }
    let (_, events) = take_events(&o);
    assert!(
        events.contains(
            &"WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/t".to_string()
        ),
        "{events:?}"
    );
}

/// Reads of one tree, byte for byte (times and zxids included): Stat lines with
/// Java's dates, ACLs, listings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_byte_identical() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let zk = Client::connect(&addr).await.unwrap();
    let open = Acl::open_unsafe();
    zk.create("/r").data(b"root").acl(&open).await.unwrap();
    zk.create("/r/a")
        .data("dätä\n2".as_bytes())
        .acl(&open)
        .await
        .unwrap();
    zk.create("/r/b")
        .null_data()
        .acl(&open)
        .with_stat()
        .await
        .unwrap();
    zk.create("/r/b/c").acl(&open).await.unwrap();
    let acl = vec![
        Acl::new(Perms::READ | Perms::ADMIN, Id::new("ip", "127.0.0.1")),
        Acl::new(Perms::ALL, Id::new("digest", "u:abc%,=")),
        Acl::new(Perms::READ, Id::anyone()),
    ];
    zk.create("/r/acl").data(b"x").acl(&acl).await.unwrap();
    zk.set_data("/r/a", b"v2", None).await.unwrap();
    let commands = [
        "ls /r",
        "ls -s /r",
        "ls -R /r",
        "ls -R /",
        "get -s /r/a",
        "get /r/b",
        "get -s /r/b/c",
        "stat /r",
        "stat /",
        "getAcl -s /r/acl",
        "getAcl /",
        "getAllChildrenNumber /r",
        "ls /zookeeper",
        "get -s /zookeeper/quota",
        "config -s",
        "config -c",
        "getEphemerals /",
        "version",
    ];
    let script = with_marks(&commands);
    let (j, _) = java(&addr, &[], &script).await;
    let (o, _) = ours(&addr, &[], &script).await;
    // `version` is ours to say; everything else must match exactly.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("ZooKeeper CLI version: "))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    compare(&commands, &strip(&j), &strip(&o), false);
    assert!(o.contains("ctime = Thu Jan 01 00:00:00 UTC 1970"), "{o}");
    assert!(o.contains("ZooKeeper CLI version: zkcli"), "{o}");
    zk.close().await;
}

/// One command from the command line: its output and exit status, as zkCli.sh's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_match_and_set_the_exit_status() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let zk = Client::connect(&addr).await.unwrap();
    zk.create("/o").data(b"one").await.unwrap();
    zk.create("/o/k").data(b"kid").await.unwrap();
    let cases: &[(&str, &[&str], i32)] = &[
        ("", &["get", "/o"], 0),
        ("", &["get", "-s", "/o"], 0),
        ("", &["get", "/o/missing"], 1),
        ("", &["create", "/o", "x"], 1),
        ("", &["ls"], 1),
        ("", &["get", "o"], 1),
        ("", &["frobnicate"], 127),
        ("", &["set", "-v", "9", "/o", "x"], 1),
        ("/o", &["ls", "/"], 0),
        ("/o", &["get", "/k"], 0),
    ];
    for (chroot, args, want) in cases {
        let server = format!("{addr}{chroot}");
        let (j, j_code) = java(&server, args, "").await;
        let (o, o_code) = ours(&server, args, "").await;
        let (j_text, _) = take_events(&normalize(&j));
        let (o_text, _) = take_events(&normalize(&o));
        assert_eq!(j_text, o_text, "zkcli -server {server} {args:?}");
        assert_eq!(
            (j_code, o_code),
            (*want, *want),
            "exit status of {args:?}\n{j}\n{o}"
        );
    }
    // Under a chroot (zkCli.sh's getEphemerals ignores it: prefixes and answers are
    // full paths); each session quits, taking its ephemeral with it.
    let commands = [
        "create -e /e1 x",
        "getEphemerals",
        "getEphemerals /",
        "getEphemerals /o",
        "getEphemerals /o/e",
        "getEphemerals /e",
        "ls /",
        "whoami",
    ];
    let mut script = with_marks(&commands);
    script.push_str("quit\n");
    let chrooted = format!("{addr}/o");
    let (j, _) = java(&chrooted, &[], &script).await;
    let (o, _) = ours(&chrooted, &[], &script).await;
    compare(&commands, &j, &o, false);
    assert!(o.contains("[/o/e1]"), "{o}");
    // Piped: the status of the last command.
    let (_, code) = ours(&addr, &[], "get /o\nget /nope\n").await;
    assert_eq!(code, 1);
    let (_, code) = ours(&addr, &[], "get /nope\nget /o\n").await;
    assert_eq!(code, 0);
    zk.close().await;
}

/// A private tmux server for one test, killed at the end.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (install it: scripts/install-test-deps.sh)")
    }

    fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-J", "-S", "-500", "-t", "zk"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "zk"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// Waits until the screen shows `want` (10 s at most).
    async fn wait_for(&self, want: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(want) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the terminal never showed {want:?}; it shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The interactive shell in a terminal: prompt, a watch event printed as it comes,
/// tab completion of a path, history and redo, the history file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_shell_in_a_terminal() {
    assert!(
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "tmux is needed for this test: scripts/install-test-deps.sh installs it"
    );
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let tmux = Tmux {
        socket: format!("zkcli-test-{}", std::process::id()),
    };
    let shell = format!(
        "ZKCLI_HISTORY='{}' TZ=UTC '{ZKCLI}' -server {addr}",
        history.display()
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "zk",
        "-x",
        "160",
        "-y",
        "50",
        &shell,
    ]);
    assert!(started.status.success(), "{started:?}");
    // Keep the screen when the shell exits, to read its last words.
    tmux.cmd(&["set-option", "-t", "zk", "remain-on-exit", "on"]);
    tmux.wait_for("WatchedEvent state:SyncConnected type:None path:null")
        .await;
    tmux.wait_for("JLine support is enabled").await;

    tmux.keys(&["create /it one", "Enter"]);
    tmux.wait_for("Created /it").await;
    tmux.keys(&["create /it/child-node x", "Enter"]);
    tmux.wait_for("Created /it/child-node").await;
    tmux.wait_for(&format!("[zk: {addr}(CONNECTED) 2] ")).await;

    // A watch, fired by another client while the shell waits at its prompt.
    tmux.keys(&["get -w /it", "Enter"]);
    tmux.wait_for(&format!("[zk: {addr}(CONNECTED) 3] ")).await;
    let zk = Client::connect(&addr).await.unwrap();
    zk.set_data("/it", b"two", None).await.unwrap();
    tmux.wait_for("WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/it")
        .await;

    // Tab completes a znode path from the server.
    tmux.keys(&["ls /it/chi", "Tab"]);
    tmux.wait_for("ls /it/child-node").await;
    tmux.keys(&["Enter"]);
    tmux.wait_for(&format!("[zk: {addr}(CONNECTED) 4] ")).await;
    // And a command name.
    tmux.keys(&["getAllCh", "Tab"]);
    tmux.wait_for("getAllChildrenNumber ").await;
    tmux.keys(&["/it", "Enter"]);
    tmux.wait_for(&format!("[zk: {addr}(CONNECTED) 5] ")).await;

    tmux.keys(&["history", "Enter"]);
    let screen = tmux.wait_for("5 - history").await;
    for want in [
        "0 - create /it one",
        "1 - create /it/child-node x",
        "2 - get -w /it",
        "3 - ls /it/child-node",
        "4 - getAllChildrenNumber /it",
    ] {
        assert!(screen.contains(want), "history lacks {want:?}:\n{screen}");
    }
    tmux.keys(&["redo 2", "Enter"]);
    tmux.wait_for(&format!("two\n[zk: {addr}(CONNECTED) 7] "))
        .await;
    // The up arrow brings back the last line.
    tmux.keys(&["Up"]);
    tmux.wait_for(&format!("[zk: {addr}(CONNECTED) 7] redo 2"))
        .await;
    tmux.keys(&["C-u", "quit", "Enter"]);
    tmux.wait_for("WatchedEvent state:Closed type:None path:null")
        .await;
    let start = Instant::now();
    let saved = loop {
        let saved = std::fs::read_to_string(&history).unwrap_or_default();
        if saved.contains("quit") || start.elapsed() > Duration::from_secs(5) {
            break saved;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for want in ["create /it one", "get -w /it", "redo 2", "quit"] {
        assert!(
            saved.contains(want),
            "history file lacks {want:?}:\n{saved}"
        );
    }
    zk.close().await;
}

/// Watch modes and removals, the configuration node, reconfig refused by a standalone
/// server, and a session closed and reopened — through both, compared as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_config_and_connection_commands_match() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let connect = format!("connect {addr}");
    let commands: Vec<&str> = vec![
        "create /m top",
        "create /m/a x",
        "addWatch -m PERSISTENT /m/a",
        "addWatch -m PERSISTENT_RECURSIVE /m",
        "addWatch -m BOGUS /m",
        "addWatch /m/nothing",
        "addWatch",
        "set /m/a y",
        "create /m/a/b z",
        "removewatches /m/a -c",
        "removewatches /m/a -d",
        "removewatches /m/a -a",
        "removewatches /m -a -l",
        "removewatches /m/zz -a -l",
        "removewatches /m -x",
        "get -w /m/a",
        "removewatches /m/a -d -l",
        "ls -w /m",
        "removewatches /m -c",
        "stat -w /m/a",
        "removewatches /m/a -d",
        "config -w",
        "config -x",
        "reconfig -remove 3",
        "reconfig -add server.5=127.0.0.1:1234:1235;1236",
        "reconfig -members server.1=127.0.0.1:1:2 -remove 2",
        "reconfig -v zz -remove 2",
        "reconfig",
        "close",
        "ls /m",
        "get /m/a",
        &connect,
        "ls /m",
        "deleteall /m",
        "ls /",
    ];
    let mut script = with_marks(&commands);
    script.push_str("quit\n");
    let (j, j_code) = java(&addr, &[], &script).await;
    let (o, o_code) = ours(&addr, &[], &script).await;
    compare(&commands, &j, &o, true);
    assert_eq!(j_code, o_code, "exit status\n{j}\n{o}");
    for want in [
        "KeeperErrorCode = No such watcher for /m/a",
        "KeeperErrorCode = Reconfig is disabled\n",
        "Not connected",
    ] {
        assert!(o.contains(want), "zkcli output lacks {want:?}:\n{o}");
    }
    let (_, events) = take_events(&o);
    for want in [
        "WatchedEvent state:SyncConnected type:NodeCreated path:/m/a/b",
        "WatchedEvent state:SyncConnected type:DataWatchRemoved path:/m/a",
        "WatchedEvent state:SyncConnected type:ChildWatchRemoved path:/m",
        "WatchedEvent state:Closed type:None path:null",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "no {want:?} in {events:?}"
        );
    }
}

/// reconfig on an ensemble that allows it: zkcli removes a member and adds it back,
/// and zkCli.sh's `config` then prints what zkcli's does; a stale `-v` is refused by
/// both with the same words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_on_an_ensemble() {
    let cluster = zk_server::testing::TestingCluster::start_configured(3, 0, |c| {
        c.reconfig_enabled = true;
        c.skip_acl = true;
    })
    .await
    .unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader");
    // Removing the member a client is on, or the leader, disconnects the client (as
    // on Apache ZooKeeper): the shells talk to a follower that stays, about the other.
    let followers: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != leader).collect();
    let (stays, victim) = (followers[0], followers[1]);
    let at = |id: u64| cluster.client_addr(id).expect("member").to_string();
    let addr = at(stays);
    let staying = format!("{},{}", at(leader), at(stays));
    let (before, _) = ours(&addr, &["config"], "").await;
    let victim_line = before
        .lines()
        .find(|l| l.starts_with(&format!("server.{victim}=")))
        .unwrap_or_else(|| panic!("no server.{victim} in {before}"))
        .to_string();

    let (removed, code) = ours(&addr, &["reconfig", "-remove", &victim.to_string()], "").await;
    assert_eq!(code, 0, "{removed}");
    assert!(
        removed.contains("Committed new configuration:\n"),
        "{removed}"
    );
    assert!(!removed.contains(&victim_line), "{removed}");
    assert!(removed.contains(&format!("server.{leader}=")), "{removed}");

    let (j, _) = java(&staying, &["config"], "").await;
    let (o, _) = ours(&staying, &["config"], "").await;
    assert_eq!(take_events(&j), take_events(&o), "config after the removal");
    assert!(!o.contains(&victim_line), "{o}");

    let (added, code) = ours(&addr, &["reconfig", "-s", "-add", &victim_line], "").await;
    assert_eq!(code, 0, "{added}");
    assert!(added.contains(&victim_line), "{added}");
    assert!(
        added.contains("numChildren = 0"),
        "-s prints the Stat: {added}"
    );
    let (j, _) = java(&staying, &["config", "-s"], "").await;
    let (o, _) = ours(&staying, &["config", "-s"], "").await;
    assert_eq!(
        take_events(&j),
        take_events(&o),
        "config after the addition"
    );
    assert!(o.contains(&victim_line), "{o}");

    // A version that is not the current one.
    let stale = ["reconfig", "-v", "1", "-remove", "2"];
    let (j, j_code) = java(&addr, &stale, "").await;
    let (o, o_code) = ours(&addr, &stale, "").await;
    assert_eq!(take_events(&j).0, take_events(&o).0, "stale reconfig");
    assert_eq!(j_code, o_code);
    assert!(o.contains("version No is not valid"), "{o}");
    cluster.shutdown().await;
}

/// Our additions: binary data in and out (hex, base64), and the old `ls2` / `rmr`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_data_and_old_commands() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.connect_string();
    let zk = Client::connect(&addr).await.unwrap();
    let script = "create -x /bin 00ff10414243\n\
                  get -x /bin\n\
                  get -b /bin\n\
                  create -x /bad zz\n\
                  create -b /b64 AAEC/w==\n\
                  set -x /b64 0x0a0b\n\
                  ls2 /bin\n\
                  create /bin/kid x\n\
                  rmr /bin\n\
                  ls /\n";
    let (o, _) = ours(&addr, &[], script).await;
    assert!(
        o.contains("|00000000| 00 ff 10 41 42 43                               |...ABC          |"),
        "{o}"
    );
    assert!(o.contains("\nAP8QQUJD\n"), "{o}");
    assert!(o.contains("Invalid hex data"), "{o}");
    assert!(o.contains("'ls2' has been deprecated"), "{o}");
    assert!(o.contains("numChildren = 0"), "{o}");
    assert!(o.contains("[b64, zookeeper]"), "{o}");
    assert!(
        zk.exists("/bin").await.unwrap().is_none(),
        "rmr removed /bin"
    );
    assert_eq!(zk.get_data("/b64").await.unwrap().0, vec![0x0a, 0x0b]);
    // Binary data read back from the command line, as one-shot base64.
    zk.set_data("/b64", &[0, 1, 2, 255], None).await.unwrap();
    let (o, code) = ours(&addr, &["get", "-b", "/b64"], "").await;
    assert_eq!(code, 0);
    assert!(o.ends_with("AAEC/w==\n"), "{o}");
    zk.close().await;
}
