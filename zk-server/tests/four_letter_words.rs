//! Four-letter words in ZooKeeper 3.8's formats, honouring the whitelist.

mod common;

use std::net::SocketAddr;

use common::RawClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::*;
use zk_server::config::FourLetterWhitelist;
use zk_server::testing::{test_config, TestingServer};

async fn word(addr: SocketAddr, cmd: &str) -> String {
    tokio::time::timeout(common::WAIT, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(cmd.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to {cmd}"))
}

fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
        .trim()
}

#[tokio::test]
async fn words_report_the_servers_state() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.addr();
    assert_eq!(word(addr, "ruok").await, "imok");
    assert_eq!(word(addr, "isro").await, "rw");
    let mut c = RawClient::connect(addr).await;
    c.create("/a", b"12345", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/a/e", b"", CreateMode::Ephemeral).await.unwrap();
    c.get("/a", true).await.unwrap();

    let srvr = word(addr, "srvr").await;
    assert!(srvr.starts_with("Zookeeper version: 3.8.0"), "{srvr}");
    assert_eq!(value(&srvr, "Mode:"), "standalone");
    // Root counted twice, as ZooKeeper counts it: / /zookeeper(+2) /a /a/e + 1.
    assert_eq!(value(&srvr, "Node count:"), "7");
    assert_eq!(value(&srvr, "Zxid:"), format!("0x{:x}", c.last_zxid));

    let stat = word(addr, "stat").await;
    assert!(stat.contains("Clients:\n /127.0.0.1:"), "{stat}");

    let mntr = word(addr, "mntr").await;
    for (key, expected) in [
        ("zk_server_state\t", "standalone"),
        ("zk_znode_count\t", "7"),
        ("zk_ephemerals_count\t", "1"),
        ("zk_watch_count\t", "1"),
        ("zk_global_sessions\t", "1"),
        ("zk_outstanding_requests\t", "0"),
    ] {
        assert_eq!(value(&mntr, key), expected, "{key}");
    }
    assert!(mntr.contains("zk_approximate_data_size\t"));
    assert!(value(&mntr, "zk_avg_latency\t").contains('.'));

    assert_eq!(
        word(addr, "wchs").await,
        "1 connections watching 1 paths\nTotal watches:1\n"
    );
    assert_eq!(
        word(addr, "wchc").await,
        format!("0x{:x}\n\t/a\n\n", c.session_id)
    );
    assert_eq!(
        word(addr, "wchp").await,
        format!("/a\n\t0x{:x}\n\n", c.session_id)
    );
    let dump = word(addr, "dump").await;
    assert!(
        dump.contains(&format!("0x{:x}:\n\t/a/e\n", c.session_id)),
        "{dump}"
    );
    let conf = word(addr, "conf").await;
    assert_eq!(value(&conf, "clientPort="), addr.port().to_string());
    assert_eq!(value(&conf, "tickTime="), "500");
    assert!(word(addr, "cons")
        .await
        .contains(&format!("sid=0x{:x}", c.session_id)));
    assert_eq!(word(addr, "srst").await, "Server stats reset.\n");
    assert!(word(addr, "envi")
        .await
        .starts_with("Environment:\nzookeeper.version=3.8.0"));
    assert!(word(addr, "dirs").await.starts_with("datadir_size: "));
}

#[tokio::test]
async fn words_outside_the_whitelist_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.four_letter_whitelist = FourLetterWhitelist::Only(["srvr".to_string()].into());
    let server = TestingServer::start_with(config).await.unwrap();
    assert_eq!(
        word(server.addr(), "stat").await,
        "stat is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        word(server.addr(), "ruok").await,
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(word(server.addr(), "srvr")
        .await
        .contains("Mode: standalone"));
}

#[tokio::test]
async fn srvr_always_answers_and_isro_does_in_read_only_mode_whatever_the_whitelist() {
    // ZooKeeper 3.8 with `4lw.commands.whitelist=stat` still answers srvr (checked).
    for read_only in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        config.four_letter_whitelist = FourLetterWhitelist::Only(["stat".to_string()].into());
        config.read_only_mode = read_only;
        let server = TestingServer::start_with(config).await.unwrap();
        let addr = server.addr();
        assert_eq!(value(&word(addr, "srvr").await, "Mode:"), "standalone");
        assert!(word(addr, "stat").await.contains("Clients:"));
        assert_eq!(
            word(addr, "ruok").await,
            "ruok is not executed because it is not in the whitelist.\n"
        );
        let isro = word(addr, "isro").await;
        if read_only {
            assert_eq!(isro, "rw");
        } else {
            assert_eq!(
                isro,
                "isro is not executed because it is not in the whitelist.\n"
            );
        }
    }
}

fn number(text: &str, key: &str) -> u64 {
    value(text, key)
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {text}: {e}"))
}

/// Bytes of the files under `dir`, recursively.
fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        du(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Writes until a snapshot exists.
async fn write_until_snapshot(addr: SocketAddr, snapshots: &std::path::Path) {
    let mut c = RawClient::connect(addr).await;
    for i in 0..200 {
        c.create(&format!("/d{i}"), b"some data", CreateMode::Persistent)
            .await
            .unwrap();
        if du(snapshots) > 0 {
            return;
        }
    }
    panic!("no snapshot in {}", snapshots.display());
}

#[tokio::test]
async fn dirs_and_conf_report_the_sizes_of_the_log_and_the_snapshots() {
    // One directory (no dataLogDir): ZooKeeper 3.8 reports the same total twice.
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.snap_count = 5;
    let server = TestingServer::start_with(config).await.unwrap();
    write_until_snapshot(server.addr(), &dir.path().join("snapshots")).await;
    let dirs = word(server.addr(), "dirs").await;
    let (data, log) = (
        number(&dirs, "datadir_size:"),
        number(&dirs, "logdir_size:"),
    );
    assert!(data > 0 && data == log, "{dirs}");
    let conf = word(server.addr(), "conf").await;
    assert!(number(&conf, "dataDirSize=") > 0, "{conf}");
    assert!(number(&conf, "dataLogSize=") > 0, "{conf}");

    // dataLogDir apart: datadir_size is the log's bytes, logdir_size the snapshots'
    // (ZooKeeper 3.8 crosses the names: checked on 3.8.0).
    let data_dir = tempfile::tempdir().unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path());
    config.data_log_dir = Some(log_dir.path().to_path_buf());
    config.snap_count = 5;
    let server = TestingServer::start_with(config).await.unwrap();
    write_until_snapshot(server.addr(), &data_dir.path().join("snapshots")).await;
    // Let a snapshot being written finish.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dirs = word(server.addr(), "dirs").await;
    let (logs, snapshots) = (
        number(&dirs, "datadir_size:"),
        number(&dirs, "logdir_size:"),
    );
    assert_eq!(logs, du(&log_dir.path().join("log")), "{dirs}");
    assert_eq!(snapshots, du(&data_dir.path().join("snapshots")), "{dirs}");
    assert!(logs > 0 && snapshots > 0, "{dirs}");
    let conf = word(server.addr(), "conf").await;
    assert_eq!(number(&conf, "dataDirSize="), logs, "{conf}");
    assert_eq!(number(&conf, "dataLogSize="), snapshots, "{conf}");
    assert_eq!(
        value(&conf, "dataLogDir="),
        log_dir.path().display().to_string()
    );
}

/// `cons`'s line for the connection of `session`.
fn cons_line(cons: &str, session: i64) -> String {
    cons.lines()
        .find(|l| l.contains(&format!("sid=0x{session:x}")))
        .unwrap_or_else(|| panic!("no line for 0x{session:x} in:\n{cons}"))
        .to_string()
}

fn counter(line: &str, key: &str) -> u64 {
    line.split(['(', ',', ')'])
        .find_map(|part| part.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn crst_resets_the_connection_counters() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.addr();
    let mut c = RawClient::connect(addr).await;
    for i in 0..5 {
        c.create(&format!("/c{i}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    let before = cons_line(&word(addr, "cons").await, c.session_id);
    assert!(counter(&before, "recved=") >= 5, "{before}");
    assert!(counter(&before, "sent=") >= 5, "{before}");
    assert_eq!(word(addr, "crst").await, "Connection stats reset.\n");
    let after = cons_line(&word(addr, "cons").await, c.session_id);
    assert_eq!(
        (counter(&after, "recved="), counter(&after, "sent=")),
        (0, 0),
        "{after}"
    );
    // They count again from there.
    c.exists("/c0", false).await.unwrap();
    let again = cons_line(&word(addr, "cons").await, c.session_id);
    assert_eq!(
        (counter(&again, "recved="), counter(&again, "sent=")),
        (1, 1),
        "{again}"
    );
}

#[tokio::test]
async fn mntr_srvr_and_stat_have_zookeepers_shape() {
    let server = TestingServer::start().await.unwrap();
    let addr = server.addr();
    let mut c = RawClient::connect(addr).await;
    c.create("/x", b"", CreateMode::Persistent).await.unwrap();

    let mntr = word(addr, "mntr").await;
    assert!(value(&mntr, "zk_version\t").starts_with("3.8.0"), "{mntr}");
    // Every line is `key<TAB>value`; every value but the version and state a number
    // (monitoring scripts parse them so).
    for line in mntr.lines() {
        let (key, val) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("not key<TAB>value: {line:?}"));
        assert!(key.starts_with("zk_"), "{line}");
        if !matches!(key, "zk_version" | "zk_server_state") {
            assert!(val.parse::<f64>().is_ok(), "{line}");
        }
    }
    // One client plus the asking connection, as ZooKeeper counts them.
    assert_eq!(value(&mntr, "zk_num_alive_connections\t"), "2");

    // `Latency min/avg/max: 0/3.2232/60`: the average as a Java double.
    let srvr = word(addr, "srvr").await;
    let latency = value(&srvr, "Latency min/avg/max:");
    let parts: Vec<&str> = latency.split('/').collect();
    assert_eq!(parts.len(), 3, "{srvr}");
    assert!(parts[0].parse::<u64>().is_ok() && parts[2].parse::<u64>().is_ok());
    assert!(
        parts[1].contains('.') && parts[1].parse::<f64>().is_ok(),
        "{srvr}"
    );
    assert_eq!(value(&srvr, "Connections:"), "2");

    // stat lists every client connection and, as ZooKeeper 3.8 does, the asking one:
    //  /127.0.0.1:35704[0](queued=0,recved=1,sent=0)
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let asking = s.local_addr().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"stat")
        .await
        .unwrap();
    let mut stat = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut stat)
        .await
        .unwrap();
    let clients: Vec<&str> = stat
        .split("Clients:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no Clients section in:\n{stat}"))
        .lines()
        .collect();
    assert_eq!(clients.len(), 2, "{stat}");
    assert!(
        clients.contains(&format!(" /{asking}[0](queued=0,recved=1,sent=0)").as_str()),
        "the asking connection {asking} is not listed:\n{stat}"
    );
    assert_eq!(value(&stat, "Connections:"), "2");
}
