//! Crash safety of the real server process: acknowledged creates, `kill -9` in the
//! middle of a write load, restart on the same dataDir — every acknowledged znode is
//! there with its data and Stat.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::RawClient;
use zk_proto::*;

/// Creates the server acknowledged: path, data, Stat.
type Acked = Arc<Mutex<Vec<(String, Vec<u8>, Stat)>>>;

fn free_port() -> u16 {
    zk_server::testing::free_port().expect("a free loopback port")
}

fn start(dir: &Path, port: u16) -> Child {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zk-server")
}

async fn wait_ready(addr: SocketAddr) {
    for _ in 0..200 {
        if zk_server::testing::four_letter_word(addr, "ruok")
            .await
            .as_deref()
            == Some("imok")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server on {addr} did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = start(dir.path(), port);
    wait_ready(addr).await;

    // Writers record each create only once the server acknowledged it.
    let acked: Acked = Arc::default();
    let mut writers = Vec::new();
    for w in 0..3 {
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut c = RawClient::connect(addr).await;
            for i in 0..10_000 {
                let path = format!("/w{w}-{i}");
                let data = format!("value-{w}-{i}").into_bytes();
                let request = Request::Create2(CreateRequest {
                    path: path.clone(),
                    data: Some(data.clone().into()),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                });
                let op = request.opcode();
                let xid = c.send(&request).await;
                match c.reply(xid, op).await {
                    Some((_, Ok(Response::Create2(r)))) => {
                        acked.lock().unwrap().push((path, data, r.stat))
                    }
                    _ => return, // the server died
                }
            }
        }));
    }
    // Kill mid-load.
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    let mut child = start(dir.path(), port);
    wait_ready(addr).await;
    let mut c = RawClient::connect(addr).await;
    for (path, data, stat) in &acked {
        let (got, got_stat) = c
            .get(path, false)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {path} lost after kill -9: {e:?}"));
        assert_eq!(got.as_deref(), Some(&data[..]), "{path}");
        assert_eq!(&got_stat, stat, "{path}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `signal` (`TERM`, `INT`) to a running server process: it must exit 0 within
/// 5 s, disconnect its clients, and start again on the same data with everything.
async fn a_signal_stops_the_server_cleanly_and_keeps_its_data(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = start(dir.path(), port);
    wait_ready(addr).await;
    let mut c = RawClient::connect(addr).await;
    c.create("/kept", b"yes", CreateMode::Persistent)
        .await
        .unwrap();
    // The signal straight from the test, not through a `kill` program a minimal
    // system may lack (procps).
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid");
    let sig = match signal {
        "TERM" => rustix::process::Signal::TERM,
        "INT" => rustix::process::Signal::INT,
        other => panic!("no signal {other} here"),
    };
    rustix::process::kill_process(pid, sig).expect("signal the server");
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status =
        exited.unwrap_or_else(|| panic!("zk-server did not exit within 5 s of SIG{signal}"));
    assert!(status.success(), "exit status {status} after SIG{signal}");
    assert!(c.closed().await, "clients are disconnected on shutdown");
    let mut child = start(dir.path(), port);
    wait_ready(addr).await;
    let mut c = RawClient::connect(addr).await;
    assert_eq!(
        c.get("/kept", false).await.unwrap().0.as_deref(),
        Some(&b"yes"[..])
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly_and_keeps_its_data() {
    a_signal_stops_the_server_cleanly_and_keeps_its_data("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_server_cleanly_and_keeps_its_data() {
    a_signal_stops_the_server_cleanly_and_keeps_its_data("INT").await;
}
