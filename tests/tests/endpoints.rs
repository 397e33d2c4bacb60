//! The operator endpoints of a running server: `/metrics` (Prometheus text) and the
//! admin endpoint's `/commands/…` (JSON), scraped while a load runs, their values
//! checked to move with it; then a 3-member ensemble's leader reporting its followers;
//! and the bounds on what a client may send them (head and body sizes, time).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zk_client::Client;
use zk_proto::Acl;
use zk_server::testing::{test_config, TestingCluster, TestingServer};

/// `GET path` on `addr`: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    zk_tests::http::get(addr, path).await.expect("GET")
}

/// Raw bytes to `addr`, for requests no well-behaved client sends; what comes back
/// before the server closes.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// The samples of a Prometheus text, by series (name and labels).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    samples(&body)
}

fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no {series} among {:?}", m.keys().collect::<Vec<_>>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_admin_commands_move_with_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.admin_enabled = true;
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let server = TestingServer::start_with(config).await.unwrap();
    let running = server.server().expect("running");
    let metrics = running.metrics_addr().expect("a metrics port");
    let admin = running.admin_addr().expect("an admin port");

    let before = scrape(metrics).await;
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    let open = Acl::open_unsafe();
    zk.create("/m").acl(&open).await.unwrap();
    for i in 0..50 {
        zk.create(&format!("/m/n{i}"))
            .data(b"0123456789")
            .acl(&open)
            .await
            .unwrap();
    }
    for i in 0..30 {
        zk.get_data(&format!("/m/n{i}")).await.unwrap();
    }
    // Awaited: the watch is on the server once the read is answered, not before (a
    // scrape racing an unanswered read saw no watch on a loaded machine).
    let (read, watch) = zk.get_data_and_watch("/m/n0");
    read.await.unwrap();
    let after = scrape(metrics).await;

    let create = "zk_requests_total{op=\"create2\"}";
    let created = value(&after, create) - before.get(create).copied().unwrap_or(0.0);
    assert!(created >= 51.0, "{created} creates counted");
    let reads = value(&after, "zk_requests_total{op=\"getData\"}");
    assert!(reads >= 31.0, "{reads} reads counted");
    assert_eq!(
        value(&after, "zk_request_latency_seconds_count{op=\"create2\"}"),
        value(&after, create)
    );
    assert!(value(&after, "zk_znode_count") >= value(&before, "zk_znode_count") + 51.0);
    assert!(value(&after, "zk_approximate_data_size") > value(&before, "zk_approximate_data_size"));
    assert!(value(&after, "zk_global_sessions") >= 1.0);
    assert!(value(&after, "zk_num_alive_connections") >= 1.0);
    assert!(value(&after, "zk_watch_count") >= 1.0);
    assert!(value(&after, "zk_fsync_seconds_count") > value(&before, "zk_fsync_seconds_count"));
    assert!(value(&after, "zk_commit_index") > value(&before, "zk_commit_index"));
    assert!(value(&after, "zk_last_applied_index") >= value(&after, "zk_commit_index") - 1.0);

    // The admin endpoint: the list, JSON answers, an unknown command.
    let (status, list) = get(admin, "/commands").await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert!(list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "monitor"));
    let (status, ruok) = get(admin, "/commands/ruok").await;
    assert_eq!(status, 200);
    let ruok: serde_json::Value = serde_json::from_str(&ruok).unwrap();
    assert_eq!(ruok["command"], "ruok");
    assert!(ruok["error"].is_null());
    let (_, monitor) = get(admin, "/commands/monitor").await;
    let monitor: serde_json::Value = serde_json::from_str(&monitor).unwrap();
    assert_eq!(monitor["server_state"], "standalone");
    let znodes = monitor["znode_count"].as_i64().unwrap();
    zk.create("/m/one-more").acl(&open).await.unwrap();
    let (_, mntr) = get(admin, "/commands/mntr").await;
    let mntr: serde_json::Value = serde_json::from_str(&mntr).unwrap();
    assert_eq!(mntr["command"], "monitor");
    assert_eq!(mntr["znode_count"].as_i64().unwrap(), znodes + 1);
    assert!(mntr["watch_count"].as_i64().unwrap() >= 1);
    let (_, conf) = get(admin, "/commands/configuration").await;
    let conf: serde_json::Value = serde_json::from_str(&conf).unwrap();
    assert_eq!(
        conf["clientPort"].as_i64().unwrap(),
        i64::from(server.addr().port())
    );
    let (_, stats) = get(admin, "/commands/stats").await;
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["output"]
        .as_str()
        .unwrap()
        .contains("Mode: standalone"));
    let (_, ro) = get(admin, "/commands/is_read_only").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ro).unwrap()["read_only"],
        false
    );
    // `hash`: the tree's digest at the last applied zxid, as the server computes it.
    let (status, hash) = get(admin, "/commands/hash").await;
    assert_eq!(status, 200, "{hash}");
    let hash: serde_json::Value = serde_json::from_str(&hash).unwrap();
    let entry = &hash["digests"][0];
    let (digest, zxid) = {
        let db = server.server().expect("running").core().db();
        (db.tree().digest(), db.last_zxid())
    };
    assert_eq!(entry["zxid"].as_i64(), Some(zxid), "{hash}");
    assert_eq!(entry["digest"].as_u64(), Some(digest), "{hash}");
    let (status, unknown) = get(admin, "/commands/frobnicate").await;
    assert_eq!(status, 404, "{unknown}");
    assert!(unknown.contains("Unknown command: frobnicate"));
    drop(watch);
    zk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_is_off_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    assert!(!config.admin_enabled && config.metrics_addr.is_none());
    let server = TestingServer::start_with(config).await.unwrap();
    let running = server.server().expect("running");
    assert!(running.admin_addr().is_none());
    assert!(running.metrics_addr().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_leader_reports_its_followers() {
    let cluster = TestingCluster::start_configured(3, 0, |c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader");
    let zk = Client::connect(&cluster.connect_string()).await.unwrap();
    for i in 0..20 {
        zk.create(&format!("/e{i}")).data(b"x").await.unwrap();
    }
    let at = cluster
        .server(leader)
        .and_then(|s| s.metrics_addr())
        .expect("the leader's metrics port");
    let m = scrape(at).await;
    for id in cluster.ids().into_iter().filter(|id| *id != leader) {
        let lag = value(
            &m,
            &format!("zk_replication_lag_entries{{follower=\"{id}\"}}"),
        );
        assert!((0.0..1000.0).contains(&lag), "follower {id} lags {lag}");
    }
    // Twenty writes, one after another: twenty log entries at least.
    assert!(value(&m, "zk_commit_index") >= 20.0);
    assert!(value(&m, "zk_leader_changes_total") >= 1.0);
    zk.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_requests_and_stalled_clients_are_refused() {
    use zk_server::net::http::{MAX_BODY, MAX_HEAD, READ_WITHIN};
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.admin_enabled = true;
    config.admin_addr = "127.0.0.1:0".parse().unwrap();
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let server = TestingServer::start_with(config).await.unwrap();
    let running = server.server().expect("running");
    for addr in [running.admin_addr(), running.metrics_addr()] {
        let addr = addr.expect("a port");
        // A header past the bound (exactly MAX_HEAD bytes, the head never ending, so
        // the server reads all that was sent before it answers and closes).
        let mut head = b"GET /commands/ruok HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
        head.resize(MAX_HEAD, b'a');
        let refused = raw(addr, &head).await;
        assert!(refused.starts_with("HTTP/1.1 431 "), "{refused}");
        // A body past the bound.
        let body = format!(
            "GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let refused = raw(addr, body.as_bytes()).await;
        assert!(refused.starts_with("HTTP/1.1 413 "), "{refused}");
    }
    // A client that never finishes its head is dropped, unanswered, after READ_WITHIN.
    let admin = running.admin_addr().expect("an admin port");
    let mut stalled = tokio::net::TcpStream::connect(admin).await.unwrap();
    stalled
        .write_all(b"GET /commands/ruok HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // Meanwhile everyone else is served.
    assert_eq!(get(admin, "/commands/ruok").await.0, 200);
    let mut out = Vec::new();
    let read = tokio::time::timeout(READ_WITHIN * 2, stalled.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "still connected after {:?}", READ_WITHIN * 2);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(
        started.elapsed() >= READ_WITHIN / 2,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(admin, "/commands/ruok").await.0, 200);
}
