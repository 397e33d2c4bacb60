//! The server process's logs: `--log-json` writes one JSON object per line, `RUST_LOG`
//! sets the level, and a write's line carries its connection's session, its xid and
//! its zxid.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use zk_client::Client;

/// `zk-server ARGS zoo.cfg` (standalone, data under `dir`) with `RUST_LOG=filter`
/// and NO_COLOR unset, its stdout piped; the child and its client port.
fn spawn(dir: &std::path::Path, args: &[&str], filter: &str) -> (std::process::Child, u16) {
    let port = zk_server::testing::free_port().unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .args(args)
        .arg(&cfg)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zk-server");
    (child, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_session_xid_and_zxid() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn(dir.path(), &["--log-json"], "zk_server=debug");
    let connect = format!("127.0.0.1:{port}");
    let mut zk = None;
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&connect).await {
            zk = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let zk = zk.expect("the server came up");
    let (path, stat) = zk.create("/logged").data(b"x").with_stat().await.unwrap();
    assert_eq!(path, "/logged");
    let session = format!("0x{:x}", zk.session_id());
    zk.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.kill();
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "RUST_LOG=debug: {out}"
    );
    let write = lines
        .iter()
        .find(|l| {
            l["fields"]["message"] == "write answered" && l["fields"]["op"] == "Some(Create2)"
        })
        .unwrap_or_else(|| panic!("no line for the create:\n{out}"));
    assert_eq!(write["span"]["session"], session.as_str(), "{write}");
    assert_eq!(write["fields"]["xid"], 1, "{write}");
    assert_eq!(
        write["fields"]["zxid"],
        format!("0x{:x}", stat.czxid).as_str(),
        "{write}"
    );
}

/// Text logs written into a pipe (a file, journald) are plain: no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_into_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = spawn(dir.path(), &[], "info");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if zk_server::testing::four_letter_word(addr, "srvr")
            .await
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    assert!(out.contains(" INFO "), "no info lines: {out}");
    assert!(!out.contains('\u{1b}'), "colour codes in piped logs: {out}");
}
