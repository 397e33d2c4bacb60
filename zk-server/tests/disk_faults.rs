//! Disk faults, injected through the storage layer's failing-file shim
//! (`zk_server::storage::disk::DiskFaults`) or by damaging files:
//! - an fsync that fails stops the member (it never goes on over a disk in an unknown
//!   state); a restart recovers every acknowledged write. In an ensemble, the member
//!   stops and the others go on (a follower's, then the leader's);
//! - a write that fails (no space) stops the member the same way, without corruption;
//! - a disk with less free space than `diskReserveBytes` refuses client writes with a
//!   clear error while reads and sessions go on, and takes writes again once there is
//!   room;
//! - a snapshot whose bytes changed on disk is refused with a clear error (the server
//!   does not start on it) rather than loaded with wrong data; put back, it loads with
//!   every acknowledged znode. (A torn log tail is cut at recovery: see
//!   `storage::log`'s tests and `crash.rs`.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zk_client::Client;
use zk_proto::ErrorCode;
use zk_server::storage::disk::DiskFaults;
use zk_server::testing::{test_config, TestingCluster, TestingServer};

/// Creates `/{prefix}{i}` for `i` in `range`, each holding its name; all must succeed.
async fn create_all(zk: &Client, prefix: &str, range: std::ops::Range<usize>) {
    for i in range {
        let path = format!("/{prefix}{i}");
        zk.create(&path)
            .data(path.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("create {path}: {e}"));
    }
}

/// Every `/{prefix}{i}` in `range` is there with its data.
async fn all_there(zk: &Client, prefix: &str, range: std::ops::Range<usize>) {
    for i in range {
        let path = format!("/{prefix}{i}");
        let (data, _) = zk
            .get_data(&path)
            .await
            .unwrap_or_else(|e| panic!("{path} lost: {e}"));
        assert_eq!(data, path.as_bytes());
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fsync_error_stops_the_server_and_a_restart_recovers_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::install(dir.path());
    let mut server = TestingServer::start_with(test_config(dir.path()))
        .await
        .unwrap();
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    create_all(&zk, "n", 0..50).await;

    faults.fail_fsyncs(true);
    let refused = zk.create("/after").data(b"x").await;
    assert!(
        refused.is_err(),
        "a write whose fsync failed was acknowledged"
    );
    let failed = server.server().expect("running").storage_failed();
    wait_until("the server stops", Duration::from_secs(10), || {
        failed.is_cancelled()
    })
    .await;
    // It serves no one any more.
    let late = Client::builder(&server.connect_string())
        .connect_timeout(Duration::from_millis(500))
        .session_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(late.is_err(), "a stopped server took a new session");
    drop(zk);

    faults.fail_fsyncs(false);
    server.restart().await.expect("restart on the same data");
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    all_there(&zk, "n", 0..50).await;
    create_all(&zk, "m", 0..5).await;
    zk.close().await;
    DiskFaults::uninstall(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_stops_the_server_without_corrupting_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::install(dir.path());
    let mut config = test_config(dir.path());
    config.disk_reserve_bytes = 0; // no early refusal: the write itself fails
    let mut server = TestingServer::start_with(config).await.unwrap();
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    create_all(&zk, "n", 0..30).await;
    let stats: BTreeMap<usize, zk_proto::Stat> = {
        let mut m = BTreeMap::new();
        for i in 0..30 {
            m.insert(i, zk.get_data(&format!("/n{i}")).await.unwrap().1);
        }
        m
    };

    faults.fail_writes(true);
    assert!(zk.create("/after").data(b"x").await.is_err());
    let failed = server.server().expect("running").storage_failed();
    wait_until("the server stops", Duration::from_secs(10), || {
        failed.is_cancelled()
    })
    .await;
    drop(zk);

    faults.fail_writes(false);
    server
        .restart()
        .await
        .expect("the log opens: nothing corrupt");
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    for (i, stat) in stats {
        let (_, now) = zk.get_data(&format!("/n{i}")).await.unwrap();
        assert_eq!(now, stat, "/n{i} changed across the failure");
    }
    assert!(zk.exists("/after").await.unwrap().is_none());
    create_all(&zk, "m", 0..5).await;
    zk.close().await;
    DiskFaults::uninstall(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_while_reads_and_sessions_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::install(dir.path());
    let server = TestingServer::start_with(test_config(dir.path()))
        .await
        .unwrap();
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    zk.create("/keep").data(b"kept").await.unwrap();

    faults.report_free_bytes(Some(1024));
    let core = server.server().expect("running").core().clone();
    wait_until("the disk is seen full", Duration::from_secs(5), || {
        core.disk_full()
    })
    .await;
    fn code<T>(r: Result<T, zk_client::Error>) -> Option<ErrorCode> {
        r.err().and_then(|e| e.code())
    }
    assert_eq!(
        code(zk.create("/new").data(b"x").await),
        Some(ErrorCode::SystemError)
    );
    assert_eq!(
        code(zk.set_data("/keep", b"changed", None).await),
        Some(ErrorCode::SystemError)
    );
    assert_eq!(
        code(zk.delete("/keep", None).await),
        Some(ErrorCode::SystemError)
    );
    // The session and reads go on; so does a new session.
    let (data, stat) = zk.get_data("/keep").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"kept"[..], 0));
    assert_eq!(zk.get_children("/").await.unwrap().len(), 2);
    let reader = Client::connect(&server.connect_string()).await.unwrap();
    assert_eq!(reader.get_data("/keep").await.unwrap().0, b"kept");
    reader.close().await;
    assert!(!server
        .server()
        .expect("running")
        .storage_failed()
        .is_cancelled());

    faults.report_free_bytes(None);
    wait_until("writes are taken again", Duration::from_secs(5), || {
        !core.disk_full()
    })
    .await;
    zk.create("/new").data(b"x").await.unwrap();
    assert_eq!(zk.get_data("/keep").await.unwrap().1.version, 0);
    zk.close().await;
    DiskFaults::uninstall(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_fsync_fails_stops_and_the_ensemble_goes_on() {
    const WAIT: Duration = Duration::from_secs(30);
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    // Faults apply to storage opened after they are installed: restart both.
    let mut faults = BTreeMap::new();
    for id in [follower, leader] {
        let data = cluster.core(id).unwrap().config.data_dir.clone();
        faults.insert(id, (DiskFaults::install(&data), data));
        cluster.restart(id).await.unwrap();
    }
    cluster.wait_for_leader(WAIT).await.expect("a leader");
    let zk = Client::connect(&cluster.connect_string()).await.unwrap();
    create_all(&zk, "a", 0..20).await;

    for (round, id) in [follower, leader].into_iter().enumerate() {
        let (fault, _) = &faults[&id];
        fault.fail_fsyncs(true);
        // The others still make a quorum: writes go on (the client moves if it was on
        // the failing member).
        let prefix = format!("r{round}-");
        let deadline = Instant::now() + WAIT;
        let mut written = 0;
        while written < 20 {
            let path = format!("/{prefix}{written}");
            match zk.create(&path).data(path.as_bytes()).await {
                Ok(_) => written += 1,
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => written += 1,
                Err(_) => {
                    assert!(Instant::now() < deadline, "writes did not go on");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let failed = cluster.server(id).expect("running").storage_failed();
        wait_until(
            &format!("member {id} stops"),
            Duration::from_secs(10),
            || failed.is_cancelled(),
        )
        .await;
        fault.fail_fsyncs(false);
        cluster.restart(id).await.expect("restart");
        cluster.wait_for_leader(WAIT).await.expect("a leader");
    }
    all_there(&zk, "a", 0..20).await;
    all_there(&zk, "r0-", 0..20).await;
    all_there(&zk, "r1-", 0..20).await;
    // Every member ends with the same tree.
    let deadline = Instant::now() + WAIT;
    loop {
        let digests: Vec<_> = cluster.ids().iter().map(|id| cluster.digest(*id)).collect();
        if digests.iter().all(|d| d.is_some() && *d == digests[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "members differ: {digests:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    zk.close().await;
    for (_, data) in faults.values() {
        DiskFaults::uninstall(data);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_snapshot_is_refused_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.snap_count = 20;
    let mut server = TestingServer::start_with(config).await.unwrap();
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    for i in 0..100 {
        zk.create(&format!("/n{i}"))
            .data(format!("value {i}").as_bytes())
            .await
            .unwrap();
    }
    zk.close().await;
    let snapshots = server.data_dir().join("snapshots");
    let mut snapshot = None;
    for _ in 0..100 {
        snapshot = std::fs::read_dir(&snapshots)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("snapshot."))
            });
        if snapshot.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot = snapshot.expect("a snapshot after 100 writes with snapCount 20");
    server.stop().await;

    let good = std::fs::read(&snapshot).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    std::fs::write(&snapshot, &bad).unwrap();
    let refused = server.restart().await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("corrupt"),
        "started on a corrupted snapshot: {message:?}"
    );

    // Cut short: refused as well.
    std::fs::write(&snapshot, &good[..good.len() / 3]).unwrap();
    assert!(
        server.restart().await.is_err(),
        "started on a truncated snapshot"
    );

    std::fs::write(&snapshot, &good).unwrap();
    server.restart().await.unwrap();
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    for i in 0..100 {
        let (data, _) = zk.get_data(&format!("/n{i}")).await.unwrap();
        assert_eq!(data, format!("value {i}").as_bytes());
    }
    zk.close().await;
}
