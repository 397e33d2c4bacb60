//! Limits under load, on the real server process: 10,000 concurrent sessions on one
//! server, each connected and answering, while another client still gets through; then
//! all of them closed and the server still serving.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use zk_client::{Acl, Client, CreateMode};

const SESSIONS: usize = 10_000;

/// A `mntr` value.
fn mntr_value(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sessions_on_one_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = zk_server::testing::free_port().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\nmaxSessionTimeout=120000\nadmin.enableServer=false\n\
             4lw.commands.whitelist=*\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zk-server");
    let connect = format!("127.0.0.1:{port}");
    let addr = connect.parse().unwrap();
    let mut up = false;
    for _ in 0..200 {
        if zk_server::testing::four_letter_word(addr, "ruok")
            .await
            .as_deref()
            == Some("imok")
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not come up");

    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    let connect = Arc::new(connect);
    let clients: Vec<Client> = stream::iter(0..SESSIONS)
        .map(|_| {
            let connect = connect.clone();
            async move {
                loop {
                    let made = Client::builder(&connect)
                        .session_timeout(Duration::from_secs(60))
                        .connect()
                        .await;
                    match made {
                        Ok(c) => return c,
                        Err(e) => {
                            assert!(Instant::now() < deadline, "could not connect: {e}");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connected_in = started.elapsed();
    let mut ids: Vec<i64> = clients.iter().map(Client::session_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), SESSIONS, "distinct sessions");

    let mntr = zk_server::testing::four_letter_word(addr, "mntr")
        .await
        .expect("mntr");
    assert!(
        mntr_value(&mntr, "zk_num_alive_connections") >= SESSIONS as u64,
        "{mntr}"
    );
    assert!(
        mntr_value(&mntr, "zk_global_sessions") >= SESSIONS as u64,
        "{mntr}"
    );

    // Every session answers (a read each, 256 at a time), and a newcomer gets through.
    let answered = stream::iter(clients.iter())
        .map(|c| async move { c.exists("/").await.is_ok() })
        .buffer_unordered(256)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    assert_eq!(answered, SESSIONS);
    let newcomer = Client::connect(&connect).await.unwrap();
    newcomer
        .create(
            "/still-serving",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();

    // All closed: every session ends, the server goes on.
    stream::iter(clients)
        .for_each_concurrent(256, |c| async move { c.close().await })
        .await;
    let mut sessions_left = u64::MAX;
    for _ in 0..100 {
        let mntr = zk_server::testing::four_letter_word(addr, "mntr")
            .await
            .expect("mntr");
        sessions_left = mntr_value(&mntr, "zk_global_sessions");
        if sessions_left <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sessions_left <= 1,
        "{sessions_left} sessions left after closing"
    );
    assert!(newcomer.exists("/still-serving").await.unwrap().is_some());
    newcomer.close().await;
    let _ = server.kill();
    let _ = server.wait();
    eprintln!("{SESSIONS} sessions connected in {connected_in:?}");
}
