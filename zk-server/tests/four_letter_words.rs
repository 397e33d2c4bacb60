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
