//! `dataLogDir`: the log store lives there, apart from the snapshots in `dataDir`,
//! and a server recovers from the two directories; a log left in `dataDir` by a
//! server that ran without `dataLogDir` is not silently abandoned.

mod common;

use std::path::Path;

use common::RawClient;
use zk_proto::*;
use zk_server::testing::{test_config, TestingServer};

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn the_log_lives_in_data_log_dir_and_a_restart_recovers_from_it() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut config = test_config(data.path());
    config.data_log_dir = Some(logs.path().to_path_buf());
    let mut server = TestingServer::start_with(config).await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    for i in 0..5 {
        c.create(
            &format!("/n{i}"),
            format!("v{i}").as_bytes(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    }
    let stat_before = c.exists("/n4", false).await.unwrap();

    let log_files = files_under(&logs.path().join("log"));
    assert!(
        !log_files.is_empty(),
        "no log files under dataLogDir: {:?}",
        files_under(logs.path())
    );
    assert!(
        !data.path().join("log").exists(),
        "a log in dataDir too: {:?}",
        files_under(data.path())
    );

    server.restart().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    for i in 0..5 {
        let (value, _) = c.get(&format!("/n{i}"), false).await.unwrap();
        assert_eq!(value.as_deref(), Some(format!("v{i}").as_bytes()));
    }
    assert_eq!(c.exists("/n4", false).await.unwrap(), stat_before);
    server.stop().await;
}

#[tokio::test]
async fn a_log_left_in_data_dir_is_refused_rather_than_lost() {
    let data = tempfile::tempdir().unwrap();
    let config = test_config(data.path());
    let mut server = TestingServer::start_with(config.clone()).await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/acked", b"x", CreateMode::Persistent)
        .await
        .unwrap();
    server.stop().await;

    let logs = tempfile::tempdir().unwrap();
    let mut moved = config;
    moved.data_log_dir = Some(logs.path().to_path_buf());
    let err = match TestingServer::start_with(moved).await {
        Ok(_) => panic!("started on an empty dataLogDir while dataDir holds the log"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("dataLogDir"), "{err}");
}
