//! The blocking facade, from plain threads, against our server, a 3-member ensemble of
//! ours and Apache ZooKeeper 3.8: every operation of the async client, watches to
//! wait on, and state changes and notifications as blocking iterators.

mod common;

use std::time::Duration;

use common::Target;
use zk_client::{
    blocking, retry, Acl, ClientBuilder, CreateMode, Error, ErrorCode, EventType, ReadOp,
    ReadResult, SessionState, WatcherType,
};

const WAIT: Duration = Duration::from_secs(15);

/// Runs `scenario` on a thread of its own (no async runtime on it, as in a program
/// without async), while the async test keeps the server alive.
async fn on_a_plain_thread(target: Target, scenario: fn(String)) {
    let connect = target.connect_string();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || scenario(connect))
            .join()
            .expect("the scenario passed")
    })
    .await
    .unwrap();
    drop(target);
}

fn connect(connect: &str) -> blocking::Client {
    blocking::Client::connect_with(
        ClientBuilder::new(connect)
            .session_timeout(Duration::from_secs(10))
            .retry_policy(retry::RetryNTimes {
                n: 3,
                delay: Duration::from_millis(10),
            }),
    )
    .unwrap()
}

fn a_program_without_async_uses_the_blocking_client(connect_string: String) {
    let zk = connect(&connect_string);
    let open = Acl::open_unsafe();
    assert_eq!(zk.state(), SessionState::Connected);
    assert!(zk.connected_server().is_some());
    assert_eq!(zk.session_password().len(), 16);
    assert!(!zk.renews_expired_sessions());
    let mut notifications = zk.notifications();

    zk.create("/job").data(b"queued").acl(&open).run().unwrap();
    let (data, stat, watch) = zk.get_data_and_watch("/job").unwrap();
    assert_eq!(data, b"queued");
    let other = connect(&connect_string);
    let session = zk.session_id();
    let worker = std::thread::spawn(move || {
        other
            .set_data("/job", b"running", Some(stat.version))
            .unwrap();
        other.close();
    });
    let event = watch.wait().unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    worker.join().unwrap();
    let seen = notifications.next().unwrap();
    assert_eq!(
        (seen.event_type, seen.path.as_str()),
        (EventType::NodeDataChanged, "/job")
    );

    let results = zk
        .transaction(|t| {
            t.create("/job/a", b"", &open, CreateMode::Persistent)
                .check("/job", 1)
        })
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(zk.get_children("/job").unwrap(), vec!["a"]);
    let (children, stat, child_watch) = zk.get_children_with_stat_and_watch("/job").unwrap();
    assert_eq!((children.len(), stat.num_children), (1, 1));
    assert_eq!(zk.get_children_with_stat("/job").unwrap().1.num_children, 1);

    // Null data, TTL nodes, ephemerals, descendants.
    zk.create("/job/null")
        .null_data()
        .acl(&open)
        .with_stat()
        .run()
        .unwrap();
    assert_eq!(child_watch.wait().unwrap().path, "/job");
    assert_eq!(zk.get_data_nullable("/job/null").unwrap().0, None);
    let (data, _, null_watch) = zk.get_data_nullable_and_watch("/job/null").unwrap();
    assert_eq!(data, None);
    let (path, _) = zk
        .create("/job/ttl-")
        .acl(&open)
        .ttl(Duration::from_secs(600))
        .sequential()
        .with_stat()
        .run()
        .unwrap();
    assert!(path.starts_with("/job/ttl-"), "{path}");
    zk.create("/job/eph")
        .acl(&open)
        .mode(CreateMode::Ephemeral)
        .run()
        .unwrap();
    assert_eq!(zk.get_ephemerals("/job").unwrap(), vec!["/job/eph"]);
    assert_eq!(zk.get_all_children_number("/job").unwrap(), 4);
    let reads = zk
        .multi_read(&[
            ReadOp::GetData("/job".into()),
            ReadOp::GetData("/no".into()),
        ])
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data(d, _) if d == b"running"));
    assert!(matches!(&reads[1], ReadResult::Error(e) if e.code() == Some(ErrorCode::NoNode)));

    // Watches: checked, removed (the waiter learns so).
    zk.check_watches("/job/null", WatcherType::Data).unwrap();
    zk.remove_watches("/job/null", WatcherType::Data).unwrap();
    assert_eq!(null_watch.wait(), Err(Error::WatchRemoved));
    assert_eq!(
        zk.check_watches("/job/null", WatcherType::Data)
            .unwrap_err()
            .code(),
        Some(ErrorCode::NoWatcher)
    );

    // Identity and configuration.
    zk.add_auth("digest", b"blocking:pw").unwrap();
    assert!(zk
        .whoami()
        .unwrap()
        .iter()
        .any(|c| c.auth_scheme == "digest" && c.user == "blocking"));
    let (config, _, _config_watch) = zk.get_config_and_watch().unwrap();
    assert_eq!(zk.get_config().unwrap().0, config);
    assert_eq!(
        zk.reconfig(Some("server.9=127.0.0.1:1:2"), None, None, None)
            .unwrap_err()
            .code(),
        Some(ErrorCode::ReconfigDisabled)
    );

    // retry: gives up on what is not retryable, passes what succeeds.
    let mut calls = 0;
    let missing = zk.retry(|c| {
        calls += 1;
        c.get_data("/missing")
    });
    assert_eq!(
        (missing.unwrap_err().code(), calls),
        (Some(ErrorCode::NoNode), 1)
    );
    assert_eq!(zk.retry(|c| c.get_data("/job")).unwrap().0, b"running");

    // States: a watcher to wait on, and the transitions as an iterator.
    let mut states = zk.state_changes();
    assert_eq!(states.current(), SessionState::Connected);
    let changes = zk.state_changes();
    let same = zk.clone();
    assert_eq!(same.session_id(), session);
    let closer = std::thread::spawn(move || same.close());
    assert_eq!(
        states.wait_until(|s| s == SessionState::Closed, WAIT),
        Some(SessionState::Closed)
    );
    closer.join().unwrap();
    assert_eq!(changes.last(), Some(SessionState::Closed));
    assert_eq!(zk.exists("/job").unwrap_err(), Error::Closed);
}

async fn blocking_scenario(target: Target) {
    on_a_plain_thread(target, a_program_without_async_uses_the_blocking_client).await;
}
against_both!(blocking_client, blocking_scenario);
