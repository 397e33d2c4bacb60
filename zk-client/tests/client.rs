//! The client's integration suite. Every scenario runs twice: against our server and
//! against a real Apache ZooKeeper 3.8.

mod common;

use std::time::Duration;

use common::Target;
use futures::StreamExt;
use zk_client::*;

const WAIT: Duration = Duration::from_secs(15);

/// A client that reaches `target` through a proxy the test can cut or stall.
async fn through_proxy(target: &Target, session_timeout: Duration) -> (common::Proxy, Client) {
    let proxy = common::Proxy::start(target.first_addr()).await;
    let zk = Client::builder(&proxy.addr.to_string())
        .session_timeout(session_timeout)
        .connect()
        .await
        .unwrap();
    (proxy, zk)
}

/// Waits until `zk` has noticed that its connection is gone.
async fn until_disconnected(zk: &Client) {
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, async {
        while zk.state() == SessionState::Connected {
            let _ = tokio::time::timeout(Duration::from_millis(20), states.next()).await;
        }
    })
    .await
    .expect("the client noticed the cut");
}

async fn client(target: &Target) -> Client {
    Client::builder(&target.connect_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

fn code(e: Error) -> Option<ErrorCode> {
    e.code()
}

async fn crud_with_versions(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    assert_eq!(zk.create("/c").data(b"one").acl(&open).await.unwrap(), "/c");
    let (data, stat) = zk.get_data("/c").await.unwrap();
    assert_eq!(
        (data.as_slice(), stat.version, stat.data_length),
        (&b"one"[..], 0, 3)
    );
    let stat = zk.set_data("/c", b"two", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(
        code(zk.set_data("/c", b"x", Some(0)).await.unwrap_err()),
        Some(ErrorCode::BadVersion)
    );
    assert_eq!(
        code(zk.create("/c").acl(&open).await.unwrap_err()),
        Some(ErrorCode::NodeExists)
    );
    assert_eq!(
        code(zk.get_data("/none").await.unwrap_err()),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(zk.exists("/none").await.unwrap(), None);
    assert_eq!(zk.exists("/c").await.unwrap().map(|s| s.version), Some(1));
    let seq = zk
        .create("/c/s-")
        .acl(&open)
        .mode(CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/c/s-0000000000");
    let (path, stat) = zk
        .create("/c/e")
        .data(b"e")
        .acl(&open)
        .mode(CreateMode::Ephemeral)
        .with_stat()
        .await
        .unwrap();
    assert_eq!(
        (path.as_str(), stat.ephemeral_owner),
        ("/c/e", zk.session_id())
    );
    let mut children = zk.get_children("/c").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["e", "s-0000000000"]);
    let (_, stat) = zk.get_children_with_stat("/c").await.unwrap();
    assert_eq!(stat.num_children, 2);
    assert_eq!(zk.get_all_children_number("/c").await.unwrap(), 2);
    assert_eq!(
        zk.get_ephemerals("/").await.unwrap(),
        vec!["/c/e".to_string()]
    );
    assert_eq!(
        code(zk.delete("/c", None).await.unwrap_err()),
        Some(ErrorCode::NotEmpty)
    );
    zk.delete("/c/e", Some(0)).await.unwrap();
    zk.sync("/c").await.unwrap();
    assert!(matches!(zk.exists("bad").await, Err(Error::InvalidPath(_))));
    zk.close().await;
    assert_eq!(zk.state(), SessionState::Closed);
    assert!(matches!(zk.exists("/c").await, Err(Error::Closed)));
}
against_both!(crud_with_versions_and_errors, crud_with_versions);

async fn requests_are_answered_in_the_order_they_were_made(target: Target) {
    let zk = client(&target).await;
    zk.create("/fifo").await.unwrap();
    // Issue 200 versioned writes without awaiting; each expects the previous version.
    let futures: Vec<_> = (0..200)
        .map(|v| zk.set_data("/fifo", format!("{v}").as_bytes(), Some(v)))
        .collect();
    for (v, f) in futures.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().version, v as i32 + 1);
    }
}
against_both!(
    fifo_order,
    requests_are_answered_in_the_order_they_were_made
);

async fn watches_of_every_kind(target: Target) {
    let zk = client(&target).await;
    let other = client(&target).await;
    let open = Acl::open_unsafe();
    let (exists, created) = zk.exists_and_watch("/w");
    assert_eq!(exists.await.unwrap(), None);
    other.create("/w").acl(&open).await.unwrap();
    let e = tokio::time::timeout(WAIT, created).await.unwrap().unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/w")
    );

    let (read, changed) = zk.get_data_and_watch("/w");
    read.await.unwrap();
    let (list, children) = zk.get_children_and_watch("/w");
    list.await.unwrap();
    other.set_data("/w", b"x", None).await.unwrap();
    other.create("/w/k").acl(&open).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, changed)
            .await
            .unwrap()
            .unwrap()
            .event_type,
        EventType::NodeDataChanged
    );
    assert_eq!(
        tokio::time::timeout(WAIT, children)
            .await
            .unwrap()
            .unwrap()
            .event_type,
        EventType::NodeChildrenChanged
    );

    let mut stream = zk
        .add_watch("/w", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    other.create("/w/k/deep").acl(&open).await.unwrap();
    other.set_data("/w", b"y", None).await.unwrap();
    let a = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    let b = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.event_type, a.path.as_str()),
        (EventType::NodeCreated, "/w/k/deep")
    );
    assert_eq!(
        (b.event_type, b.path.as_str()),
        (EventType::NodeDataChanged, "/w")
    );
    zk.remove_watches("/w", WatcherType::Any).await.unwrap();
    assert_eq!(
        code(zk.check_watches("/w", WatcherType::Any).await.unwrap_err()),
        Some(ErrorCode::NoWatcher)
    );
}
against_both!(watches, watches_of_every_kind);

/// `notifications()`: every notification once, in the server's order, across watches
/// whose own handles cannot tell that order.
async fn notifications_come_in_order_once_each(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/nt").acl(&open).await.unwrap();
    let mut feed = zk.notifications();
    let _persistent = zk.add_watch("/nt", AddWatchMode::Persistent).await.unwrap();
    let _recursive = zk
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let (read, _exists) = zk.exists_and_watch("/nt/a");
    read.await.unwrap();
    zk.create("/nt/a").acl(&open).await.unwrap();
    zk.set_data("/nt", b"x", None).await.unwrap();
    zk.delete("/nt/a", None).await.unwrap();
    let want = [
        (EventType::NodeCreated, "/nt/a"),
        (EventType::NodeChildrenChanged, "/nt"),
        (EventType::NodeDataChanged, "/nt"),
        (EventType::NodeDeleted, "/nt/a"),
        (EventType::NodeChildrenChanged, "/nt"),
    ];
    for (event_type, path) in want {
        let ev = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("a notification")
            .expect("the stream goes on");
        assert_eq!((ev.event_type, ev.path.as_str()), (event_type, path));
    }
    // Nothing twice: the next one is the next change.
    zk.set_data("/nt", b"y", None).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/nt")
    );
    zk.close().await;
    drop(zk);
    assert!(tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .expect("the stream ends with the client")
        .is_none());
}
against_both!(notifications, notifications_come_in_order_once_each);

async fn chroot_applies_to_every_path_in_and_out(target: Target) {
    let root = client(&target).await;
    root.create("/app").await.unwrap();
    let zk = Client::connect(&format!("{}/app", target.connect_string()))
        .await
        .unwrap();
    assert_eq!(zk.create("/x").data(b"1").await.unwrap(), "/x");
    // Another session (maybe on another member of an ensemble) sees it after a sync.
    root.sync("/app").await.unwrap();
    assert_eq!(root.get_data("/app/x").await.unwrap().0, b"1");
    let seq = zk
        .create("/s-")
        .mode(CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert!(seq.starts_with("/s-"), "{seq}");
    assert_eq!(zk.get_ephemerals("/").await.unwrap(), vec![seq]);
    let (read, changed) = zk.get_data_and_watch("/x");
    read.await.unwrap();
    root.set_data("/app/x", b"2", None).await.unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, changed)
            .await
            .unwrap()
            .unwrap()
            .path,
        "/x"
    );
    let mut children = zk.get_children("/").await.unwrap();
    children.sort();
    assert_eq!(children.len(), 2);
    let results = zk
        .transaction()
        .create("/t", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .commit()
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![OpResult::Create {
            path: "/t".into(),
            stat: None
        }]
    );
}
against_both!(chroot, chroot_applies_to_every_path_in_and_out);

async fn digest_auth_and_acls(target: Target) {
    let zk = Client::builder(&target.connect_string())
        .auth("digest", b"bob:pw")
        .connect()
        .await
        .unwrap();
    zk.create("/private")
        .data(b"s")
        .acl(&Acl::creator_all())
        .await
        .unwrap();
    let (acl, _) = zk.get_acl("/private").await.unwrap();
    assert_eq!(
        acl,
        vec![Acl::new(
            Perms::ALL,
            Id::new("digest", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=")
        )]
    );
    let who = zk.whoami().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "digest" && c.user == "bob"),
        "{who:?}"
    );
    let stranger = client(&target).await;
    assert_eq!(
        code(stranger.get_data("/private").await.unwrap_err()),
        Some(ErrorCode::NoAuth)
    );
    stranger.add_auth("digest", b"bob:pw").await.unwrap();
    assert_eq!(stranger.get_data("/private").await.unwrap().0, b"s");
    zk.set_acl("/private", &Acl::read_unsafe(), Some(0))
        .await
        .unwrap();
}
against_both!(auth, digest_auth_and_acls);

async fn transactions_are_all_or_nothing(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    let results = zk
        .transaction()
        .create("/tx", b"", &open, CreateMode::Persistent)
        .create("/tx/a", b"a", &open, CreateMode::Persistent)
        .set_data("/tx/a", b"b", Some(0))
        .check("/tx", 0)
        .commit()
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    let failed = zk
        .transaction()
        .create("/tx/b", b"", &open, CreateMode::Persistent)
        .delete("/tx/a", Some(7))
        .commit()
        .await
        .unwrap_err();
    assert_eq!(
        failed,
        Error::Keeper {
            code: ErrorCode::BadVersion,
            path: "/tx/a".into()
        }
    );
    assert_eq!(zk.exists("/tx/b").await.unwrap(), None);
    // Every op's result of a refused multi (Java's KeeperException.getResults()): Ok
    // before the op that failed, its code, RuntimeInconsistency after it.
    let results = zk
        .transaction()
        .create("/tx/c", b"", &open, CreateMode::Persistent)
        .check("/tx/a", 9)
        .set_data("/tx", b"", None)
        .commit_results()
        .await
        .unwrap();
    let codes: Vec<ErrorCode> = results
        .iter()
        .map(|r| match r {
            OpResult::Error { code } => *code,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::Ok,
            ErrorCode::BadVersion,
            ErrorCode::RuntimeInconsistency
        ]
    );
    assert_eq!(
        zk_client::multi::first_error(&results),
        Some((1, ErrorCode::BadVersion))
    );
    assert_eq!(zk.exists("/tx/c").await.unwrap(), None);
}
against_both!(transactions, transactions_are_all_or_nothing);

/// A multi is queued when `commit` is called: a write called after it, even one
/// awaited first, reaches the server after it.
async fn a_multi_is_ordered_before_the_calls_after_it(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    for round in 0..20 {
        let path = format!("/order-{round}");
        let multi = zk
            .transaction()
            .create(&path, b"0", &open, CreateMode::Persistent)
            .commit();
        let after = zk.set_data(&path, b"1", Some(0));
        let read = zk.get_data(&path);
        // Awaited in the opposite order: the order of the calls still holds.
        assert_eq!(read.await.unwrap().0, b"1", "round {round}");
        assert_eq!(after.await.unwrap().version, 1);
        assert_eq!(multi.await.unwrap().len(), 1);
    }
}
against_both!(multi_ordering, a_multi_is_ordered_before_the_calls_after_it);

async fn the_session_and_its_watches_survive_a_server_restart(mut target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/r").acl(&open).await.unwrap();
    zk.create("/r/eph")
        .acl(&open)
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (read, changed) = zk.get_data_and_watch("/r");
    read.await.unwrap();
    let mut states = zk.state_changes();
    let mut changes = Box::pin(zk.state_changes());
    let session = zk.session_id();
    target.outage(Duration::from_millis(500)).await;
    // The client notices, reconnects by itself and keeps its session.
    let mut last_error = None;
    let reconnected = tokio::time::timeout(WAIT, async {
        loop {
            if zk.state() == SessionState::Connected {
                match zk.exists("/r").await {
                    Ok(_) => break,
                    Err(e) => last_error = Some(e),
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), states.next()).await;
        }
    })
    .await;
    assert!(
        reconnected.is_ok(),
        "not reconnected within {WAIT:?}: state {:?}, last error {last_error:?}; server log:\n{}",
        zk.state(),
        target.diagnostics()
    );
    assert_eq!(zk.session_id(), session);
    // The state stream told the story: Disconnected, then Connected again.
    let first = tokio::time::timeout(WAIT, changes.next()).await.unwrap();
    assert_eq!(first, Some(SessionState::Disconnected));
    let mut last = first;
    while last != Some(SessionState::Connected) {
        last = tokio::time::timeout(WAIT, changes.next()).await.unwrap();
    }
    assert!(
        zk.exists("/r/eph").await.unwrap().is_some(),
        "ephemeral kept"
    );
    // The watch was re-registered with setWatches2.
    let other = client(&target).await;
    other.set_data("/r", b"after", None).await.unwrap();
    let e = tokio::time::timeout(WAIT, changed).await.unwrap().unwrap();
    assert_eq!(e.event_type, EventType::NodeDataChanged);
}
against_both!(
    reconnect,
    the_session_and_its_watches_survive_a_server_restart
);

async fn expiry_is_reported_and_final(target: Target) {
    // The client reaches the server through a proxy we can cut: cut for longer than the
    // session timeout, the server expires the session for real.
    let (proxy, zk) = through_proxy(&target, Duration::from_millis(1000)).await;
    zk.create("/gone")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (read, watcher) = zk.exists_and_watch("/gone");
    read.await.unwrap();
    let mut states = zk.state_changes();
    let observer = client(&target).await;
    proxy.cut();
    // The server expires the session: its ephemeral goes.
    tokio::time::timeout(WAIT, async {
        while observer.exists("/gone").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server expired the session");
    assert_eq!(zk.state(), SessionState::Disconnected);
    proxy.restore();
    tokio::time::timeout(WAIT, async {
        states
            .wait_for(|s| s == SessionState::Expired)
            .await
            .unwrap();
    })
    .await
    .expect("Expired reported");
    assert!(matches!(zk.get_data("/").await, Err(Error::SessionExpired)));
    assert_eq!(watcher.await, Err(Error::SessionExpired));
}
against_both!(expiry, expiry_is_reported_and_final);

/// With `renew_expired_sessions`, an expiry is reported (every call and watch of the
/// old session fails with SessionExpired) and the client goes on with a new session,
/// its credentials presented again.
async fn a_renewing_client_starts_a_new_session_after_expiry(target: Target) {
    let proxy = common::Proxy::start(target.first_addr()).await;
    let zk = Client::builder(&proxy.addr.to_string())
        .session_timeout(Duration::from_millis(1000))
        .renew_expired_sessions(true)
        .auth("digest", b"renew:pw")
        .connect()
        .await
        .unwrap();
    assert!(zk.renews_expired_sessions());
    let old_session = zk.session_id();
    zk.create("/renew-eph")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (read, watcher) = zk.exists_and_watch("/renew-eph");
    read.await.unwrap();
    let mut changes = Box::pin(zk.state_changes());
    let observer = client(&target).await;
    proxy.cut();
    tokio::time::timeout(WAIT, async {
        while observer.exists("/renew-eph").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server expired the session");
    proxy.restore();
    // Expired, then a new session: the stream goes on past Expired.
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while seen.last() != Some(&SessionState::Connected)
            || !seen.contains(&SessionState::Expired)
        {
            seen.push(changes.next().await.expect("the stream goes on"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("expired then connected again, saw {seen:?}"));
    assert_eq!(
        watcher.await,
        Err(Error::SessionExpired),
        "the old session's watch ended"
    );
    assert_ne!(zk.session_id(), old_session);
    assert_ne!(zk.session_id(), 0);
    // The new session works, and it carries the credentials.
    zk.create("/renew-eph")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, stat) = zk.get_data("/renew-eph").await.unwrap();
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    let who = zk.whoami().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "digest" && c.user == "renew"),
        "credentials presented again: {who:?}"
    );
    zk.close().await;
}
against_both!(renewal, a_renewing_client_starts_a_new_session_after_expiry);

/// Requests made while the client is reconnecting wait for the connection and go out
/// in the order they were made (none is lost, none overtakes another).
async fn requests_made_while_disconnected_wait_in_order(target: Target) {
    let (proxy, zk) = through_proxy(&target, Duration::from_secs(10)).await;
    proxy.cut();
    until_disconnected(&zk).await;
    let open = Acl::open_unsafe();
    let first = zk.create("/queued").data(b"1").acl(&open).send();
    let second = zk.set_data("/queued", b"2", Some(0));
    let third = zk.get_data("/queued");
    // Let the client try (and fail) to reconnect a few times meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    assert_eq!(first.await.unwrap(), "/queued");
    assert_eq!(second.await.unwrap().version, 1);
    assert_eq!(third.await.unwrap().0, b"2");
}
against_both!(
    queued_while_disconnected,
    requests_made_while_disconnected_wait_in_order
);

/// Closing a client that cannot reach a server returns at once, and what it had
/// queued fails with Closed instead of going out later.
async fn closing_while_disconnected_drops_what_was_queued(target: Target) {
    let (proxy, zk) = through_proxy(&target, Duration::from_secs(10)).await;
    proxy.cut();
    until_disconnected(&zk).await;
    let queued = zk.create("/never").send();
    tokio::time::timeout(Duration::from_secs(5), zk.close())
        .await
        .expect("close returns while disconnected");
    assert_eq!(queued.await, Err(Error::Closed));
    proxy.restore();
    let other = client(&target).await;
    assert!(other.exists("/never").await.unwrap().is_none());
}
against_both!(
    close_while_disconnected,
    closing_while_disconnected_drops_what_was_queued
);

/// A server that accepts connections and never answers them (a JVM still starting,
/// a hung process) must not cost the session: each attempt gives up after a third of
/// the session timeout and the client tries again.
async fn a_hanging_server_does_not_cost_the_session(target: Target) {
    let (proxy, zk) = through_proxy(&target, Duration::from_millis(4000)).await;
    let session = zk.session_id();
    zk.create("/kept")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let stalled_at = std::time::Instant::now();
    proxy.stall();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    proxy.resume();
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, async {
        while zk.state() != SessionState::Connected || zk.exists("/kept").await.is_err() {
            let _ = tokio::time::timeout(Duration::from_millis(20), states.next()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not back: {:?}", zk.state()));
    // Attempts of 4/3 s each: back in the third, well inside the session timeout (an
    // attempt waiting a whole session timeout would come back only after it).
    let back_after = stalled_at.elapsed();
    assert!(
        back_after < Duration::from_millis(3500),
        "back after {back_after:?}"
    );
    assert_eq!(zk.session_id(), session);
    assert!(
        zk.exists("/kept").await.unwrap().is_some(),
        "the session was kept"
    );
}
against_both!(hanging_server, a_hanging_server_does_not_cost_the_session);

async fn multi_read_config_and_reconfig(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/mr").data(b"d").acl(&open).await.unwrap();
    zk.create("/mr/c").acl(&open).await.unwrap();
    let results = zk
        .multi_read(&[
            ReadOp::GetData("/mr".into()),
            ReadOp::GetChildren("/mr".into()),
            ReadOp::GetData("/none".into()),
        ])
        .await
        .unwrap();
    assert!(matches!(&results[0], ReadResult::Data(d, s) if d == b"d" && s.num_children == 1));
    assert_eq!(results[1], ReadResult::Children(vec!["c".into()]));
    assert!(matches!(&results[2], ReadResult::Error(e) if e.code() == Some(ErrorCode::NoNode)));
    // A standalone server publishes an empty configuration, an ensemble its members...
    let (config, _) = zk.get_config().await.unwrap();
    if target.is_ensemble() {
        let config = String::from_utf8(config).unwrap();
        assert!(config.starts_with("server.1=127.0.0.1:"), "{config}");
        assert!(config.ends_with("\nversion=0"), "{config}");
    } else {
        assert!(config.is_empty());
    }
    // ...and both refuse reconfig without reconfigEnabled: ReconfigDisabled.
    let refused = zk
        .reconfig(Some("server.9=127.0.0.1:1:2"), None, None, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::ReconfigDisabled));
    assert_eq!(zk.state(), SessionState::Connected);
}
against_both!(multi_read_and_config, multi_read_config_and_reconfig);

/// A sequential create that fails with ConnectionLoss may or may not have happened, so
/// the client never sends it again by itself. A proxy holds the server's answers back
/// until every create of a round was applied, then cuts the connection: each of those
/// creates fails with ConnectionLoss, and each of their nodes exists exactly once
/// (nothing sent twice), beside the acknowledged ones, whose names are real and
/// distinct.
async fn sequential_creates_survive_connection_loss_without_duplicates(target: Target) {
    const ROUNDS: usize = 4;
    const PER_ROUND: usize = 100;
    let (proxy, zk) = through_proxy(&target, Duration::from_secs(10)).await;
    let observer = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/seq").acl(&open).await.unwrap();
    let count = |prefix: String| {
        let observer = observer.clone();
        async move {
            observer.sync("/seq").await.unwrap();
            let children = observer.get_children("/seq").await.unwrap();
            children.iter().filter(|c| c.starts_with(&prefix)).count()
        }
    };
    let mut acknowledged = Vec::new();
    let mut lost = 0;
    for round in 0..ROUNDS {
        // Acknowledged creates...
        let acked: Vec<_> = (0..PER_ROUND)
            .map(|_| {
                zk.create(&format!("/seq/a{round}-"))
                    .acl(&open)
                    .mode(CreateMode::PersistentSequential)
                    .send()
            })
            .collect();
        for create in acked {
            acknowledged.push(create.await.unwrap());
        }
        // ...then creates whose answers the proxy swallows, until all were applied.
        proxy.mute();
        let unanswered: Vec<_> = (0..PER_ROUND)
            .map(|_| {
                zk.create(&format!("/seq/l{round}-"))
                    .acl(&open)
                    .mode(CreateMode::PersistentSequential)
                    .send()
            })
            .collect();
        tokio::time::timeout(WAIT, async {
            while count(format!("l{round}-")).await < PER_ROUND {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the server applied the round's creates");
        proxy.drop_connections();
        proxy.unmute();
        for create in unanswered {
            match create.await {
                Err(Error::ConnectionLoss) => lost += 1,
                other => panic!("an unanswered create ended with {other:?}"),
            }
        }
    }
    assert_eq!(lost, ROUNDS * PER_ROUND, "every unanswered create was lost");
    // Reconnected, and anything the client might have sent again has landed.
    zk.sync("/seq").await.unwrap();
    let children = observer.get_children("/seq").await.unwrap();
    let mut unique = acknowledged.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        acknowledged.len(),
        "a sequence number was handed out twice"
    );
    for path in &acknowledged {
        let name = path.strip_prefix("/seq/").unwrap();
        assert!(
            children.iter().any(|c| c == name),
            "acknowledged {path} is missing"
        );
    }
    for round in 0..ROUNDS {
        assert_eq!(
            children
                .iter()
                .filter(|c| c.starts_with(&format!("l{round}-")))
                .count(),
            PER_ROUND,
            "round {round}: each applied, unacknowledged create exists exactly once"
        );
    }
    assert_eq!(children.len(), 2 * ROUNDS * PER_ROUND);
}
against_both!(
    sequential_under_connection_loss,
    sequential_creates_survive_connection_loss_without_duplicates
);

/// Waits until `zk` is connected again after a cut.
async fn until_connected(zk: &Client) {
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, async {
        while zk.state() != SessionState::Connected {
            let _ = tokio::time::timeout(Duration::from_millis(20), states.next()).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not reconnected: {:?}", zk.state()));
}

/// Changes made while the client is disconnected fire its one-shot watches once it is
/// back (setWatches2 with the last zxid it saw: the server fires what was missed);
/// persistent watches are set again and see what comes next.
async fn changes_made_while_disconnected_fire_the_watches_on_return(target: Target) {
    let (proxy, zk) = through_proxy(&target, Duration::from_secs(10)).await;
    let other = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/dw").data(b"0").acl(&open).await.unwrap();
    let (read, data_changed) = zk.get_data_and_watch("/dw");
    read.await.unwrap();
    let (read, children_changed) = zk.get_children_and_watch("/dw");
    read.await.unwrap();
    let (read, created) = zk.exists_and_watch("/dw-new");
    assert_eq!(read.await.unwrap(), None);
    let mut recursive = zk
        .add_watch("/dw", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let session = zk.session_id();
    proxy.cut();
    until_disconnected(&zk).await;
    other.set_data("/dw", b"1", None).await.unwrap();
    other.create("/dw/kid").acl(&open).await.unwrap();
    other.create("/dw-new").acl(&open).await.unwrap();
    assert_eq!(zk.state(), SessionState::Disconnected);
    proxy.restore();
    until_connected(&zk).await;
    assert_eq!(zk.session_id(), session);
    let fired = |w: OneshotWatcher| async move {
        let e = tokio::time::timeout(WAIT, w)
            .await
            .expect("the watch fired after reconnecting")
            .unwrap();
        (e.event_type, e.path)
    };
    assert_eq!(
        fired(data_changed).await,
        (EventType::NodeDataChanged, "/dw".into())
    );
    assert_eq!(
        fired(children_changed).await,
        (EventType::NodeChildrenChanged, "/dw".into())
    );
    assert_eq!(
        fired(created).await,
        (EventType::NodeCreated, "/dw-new".into())
    );
    other.set_data("/dw/kid", b"x", None).await.unwrap();
    let e = tokio::time::timeout(WAIT, async {
        loop {
            let e = recursive.next().await.expect("the stream goes on");
            if e.path == "/dw/kid" && e.event_type == EventType::NodeDataChanged {
                return e;
            }
        }
    })
    .await
    .expect("the persistent-recursive watch was set again");
    assert_eq!(e.state, KeeperState::SyncConnected);
}
against_both!(
    watches_catch_up_after_reconnect,
    changes_made_while_disconnected_fire_the_watches_on_return
);

/// An idle client pings often enough (ZooKeeper's schedule) to keep its session and
/// its connection: idle for over twice the session timeout, not a single state change.
async fn an_idle_client_keeps_its_session_and_connection(target: Target) {
    let zk = Client::builder(&target.connect_string())
        .session_timeout(Duration::from_millis(2000))
        .connect()
        .await
        .unwrap();
    zk.create("/idle")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let session = zk.session_id();
    let mut changes = Box::pin(zk.state_changes());
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(
        futures::FutureExt::now_or_never(changes.next()),
        None,
        "no state change while idle"
    );
    assert_eq!(zk.state(), SessionState::Connected);
    assert_eq!(zk.session_id(), session);
    let observer = client(&target).await;
    let (_, stat) = observer.get_data("/idle").await.unwrap();
    assert_eq!(stat.ephemeral_owner, session, "the ephemeral is kept");
}
against_both!(idle_pings, an_idle_client_keeps_its_session_and_connection);

/// Watches on paths adding up to more than jute.maxbuffer (1 MB) go back in several
/// setWatches2 messages (128 K of paths each, as ZooKeeper's client does): one would
/// be refused, and the client could never reconnect.
async fn many_long_watches_are_set_again_in_batches(target: Target) {
    const N: usize = 1100;
    let (proxy, zk) = through_proxy(&target, Duration::from_secs(20)).await;
    let open = Acl::open_unsafe();
    zk.create("/lw").acl(&open).await.unwrap();
    let long = "w".repeat(1000);
    let paths: Vec<String> = (0..N).map(|i| format!("/lw/{long}{i}")).collect();
    let creates: Vec<_> = paths
        .iter()
        .map(|p| zk.create(p).acl(&open).send())
        .collect();
    for c in creates {
        c.await.unwrap();
    }
    let mut watchers = Vec::new();
    for p in &paths {
        let (read, w) = zk.get_data_and_watch(p);
        watchers.push((read, w));
    }
    let mut fired = Vec::new();
    for (read, w) in watchers {
        read.await.unwrap();
        fired.push(w);
    }
    let session = zk.session_id();
    let mut changes = Box::pin(zk.state_changes());
    proxy.drop_connections();
    tokio::time::timeout(WAIT, async {
        while changes.next().await != Some(SessionState::Disconnected) {}
        while changes.next().await != Some(SessionState::Connected) {}
    })
    .await
    .expect("disconnected, then connected again");
    zk.exists("/lw").await.unwrap();
    assert_eq!(zk.session_id(), session);
    let other = client(&target).await;
    let sets: Vec<_> = paths
        .iter()
        .map(|p| other.set_data(p, b"x", None))
        .collect();
    for s in sets {
        s.await.unwrap();
    }
    for (i, w) in fired.into_iter().enumerate() {
        let e = tokio::time::timeout(WAIT, w)
            .await
            .unwrap_or_else(|_| panic!("watch {i} did not fire"))
            .unwrap();
        assert_eq!(e.event_type, EventType::NodeDataChanged);
    }
    assert_eq!(zk.state(), SessionState::Connected);
}
against_both!(
    set_watches_batches,
    many_long_watches_are_set_again_in_batches
);

/// A one-shot watch resolves with why it will not fire: never registered (its read
/// failed), removed, or the client closed.
async fn a_oneshot_watch_says_why_it_will_not_fire(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    let (read, never) = zk.get_data_and_watch("/no-such-node");
    assert_eq!(code(read.await.unwrap_err()), Some(ErrorCode::NoNode));
    assert_eq!(never.await, Err(Error::WatchNotRegistered));
    let (read, never) = zk.get_children_and_watch("/no-such-node");
    assert!(read.await.is_err());
    assert_eq!(never.await, Err(Error::WatchNotRegistered));

    zk.create("/ow").acl(&open).await.unwrap();
    let (read, data) = zk.get_data_and_watch("/ow");
    read.await.unwrap();
    let (read, children) = zk.get_children_and_watch("/ow");
    read.await.unwrap();
    zk.remove_watches("/ow", WatcherType::Data).await.unwrap();
    assert_eq!(data.await, Err(Error::WatchRemoved));
    let (read, exists) = zk.exists_and_watch("/ow");
    read.await.unwrap();
    zk.close().await;
    assert_eq!(children.await, Err(Error::Closed));
    assert_eq!(exists.await, Err(Error::Closed));
}
against_both!(oneshot_outcomes, a_oneshot_watch_says_why_it_will_not_fire);

/// Credentials of an unknown scheme fail authentication: connecting with them fails
/// with AuthFailed; presenting them later ends the session (state AuthFailed, every
/// later call fails).
async fn an_unknown_auth_scheme_fails_authentication(target: Target) {
    let refused = Client::builder(&target.connect_string())
        .auth("no-such-scheme", b"x")
        .connect()
        .await;
    assert_eq!(refused.err(), Some(Error::AuthFailed));
    let zk = client(&target).await;
    assert_eq!(
        zk.add_auth("no-such-scheme", b"x").await,
        Err(Error::AuthFailed)
    );
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, states.wait_for(|s| s == SessionState::AuthFailed))
        .await
        .expect("state AuthFailed")
        .unwrap();
    assert_eq!(zk.exists("/").await, Err(Error::AuthFailed));
    assert_eq!(zk.add_auth("digest", b"a:b").await, Err(Error::AuthFailed));
}
against_both!(auth_failed, an_unknown_auth_scheme_fails_authentication);

/// Digest credentials are presented again when the session is resumed on a new
/// connection: a creator-only node stays readable.
async fn digest_auth_is_kept_across_a_resumed_session(target: Target) {
    let proxy = common::Proxy::start(target.first_addr()).await;
    let zk = Client::builder(&proxy.addr.to_string())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    // Added on the handle (not the builder): kept for reconnections all the same.
    zk.add_auth("digest", b"keeper:pw").await.unwrap();
    zk.create("/kept-auth")
        .data(b"mine")
        .acl(&Acl::creator_all())
        .await
        .unwrap();
    let session = zk.session_id();
    proxy.cut();
    until_disconnected(&zk).await;
    proxy.restore();
    until_connected(&zk).await;
    assert_eq!(zk.session_id(), session, "the same session, resumed");
    assert_eq!(zk.get_data("/kept-auth").await.unwrap().0, b"mine");
    let stranger = client(&target).await;
    assert_eq!(
        code(stranger.get_data("/kept-auth").await.unwrap_err()),
        Some(ErrorCode::NoAuth)
    );
}
against_both!(
    auth_after_resume,
    digest_auth_is_kept_across_a_resumed_session
);

/// TTL nodes (plain and sequential) and containers, with the Stat ZooKeeper gives
/// them (not ephemeral: owner 0; the TTL and the container mark stay server-side).
async fn ttl_and_container_nodes(target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    let ttl = Duration::from_secs(3600);
    let (path, stat) = zk
        .create("/ttl")
        .data(b"t")
        .acl(&open)
        .ttl(ttl)
        .with_stat()
        .await
        .unwrap();
    assert_eq!(path, "/ttl");
    // ZooKeeper keeps the TTL in the stored ephemeralOwner but shows clients 0.
    assert_eq!(stat.ephemeral_owner, 0);
    let (path, _) = zk
        .create("/ttl/s-")
        .acl(&open)
        .ttl(ttl)
        .sequential()
        .with_stat()
        .await
        .unwrap();
    assert_eq!(path, "/ttl/s-0000000000");
    let (path, stat) = zk
        .create("/box")
        .null_data()
        .acl(&open)
        .mode(CreateMode::Container)
        .with_stat()
        .await
        .unwrap();
    assert_eq!(path, "/box");
    assert_eq!(stat.ephemeral_owner, 0, "the container mark is not shown");
    assert_eq!(zk.get_data_nullable("/box").await.unwrap().0, None);
    // A TTL with a non-TTL mode does not compile (`.ttl()` picks the mode); a TTL
    // mode without a TTL is refused before it is sent.
    assert!(matches!(
        zk.create("/x")
            .acl(&open)
            .mode(CreateMode::PersistentWithTtl)
            .with_stat()
            .await,
        Err(Error::BadArguments(_))
    ));
}
against_both!(ttl_and_container, ttl_and_container_nodes);

/// At most `max_in_flight` requests are on the wire: with the answers held back and
/// the connection then cut, exactly that many fail with ConnectionLoss (the rest were
/// still waiting in the client, and go out after the reconnection), and every create
/// exists exactly once.
async fn max_in_flight_bounds_what_is_on_the_wire(target: Target) {
    let proxy = common::Proxy::start(target.first_addr()).await;
    let zk = Client::builder(&proxy.addr.to_string())
        .session_timeout(Duration::from_secs(10))
        .max_in_flight(4)
        .connect()
        .await
        .unwrap();
    let observer = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/mif").acl(&open).await.unwrap();
    proxy.mute();
    let creates: Vec<_> = (0..40)
        .map(|i| zk.create(&format!("/mif/n{i:02}")).acl(&open).send())
        .collect();
    tokio::time::timeout(WAIT, async {
        loop {
            observer.sync("/mif").await.unwrap();
            if observer.get_children("/mif").await.unwrap().len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the first creates were applied");
    // Give the client time to (wrongly) send more: the server would apply them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    observer.sync("/mif").await.unwrap();
    assert_eq!(observer.get_children("/mif").await.unwrap().len(), 4);
    proxy.drop_connections();
    proxy.unmute();
    let mut lost = Vec::new();
    for (i, c) in creates.into_iter().enumerate() {
        match c.await {
            Ok(_) => {}
            Err(Error::ConnectionLoss) => lost.push(i),
            Err(e) => panic!("create {i}: {e:?}"),
        }
    }
    assert_eq!(lost, vec![0, 1, 2, 3], "the four on the wire were lost");
    observer.sync("/mif").await.unwrap();
    assert_eq!(observer.get_children("/mif").await.unwrap().len(), 40);
}
against_both!(max_in_flight, max_in_flight_bounds_what_is_on_the_wire);

/// `Client::retry` retries an idempotent read that failed with ConnectionLoss (its
/// answer held back, then the connection cut) until it succeeds.
async fn retry_gets_through_a_lost_connection(target: Target) {
    let proxy = common::Proxy::start(target.first_addr()).await;
    let zk = Client::builder(&proxy.addr.to_string())
        .session_timeout(Duration::from_secs(10))
        .retry_policy(retry::RetryNTimes {
            n: 20,
            delay: Duration::from_millis(100),
        })
        .connect()
        .await
        .unwrap();
    zk.create("/rt").data(b"v").await.unwrap();
    proxy.mute();
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let cutter = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.drop_connections();
        proxy.unmute();
    };
    let (read, ()) = tokio::join!(
        zk.retry(|| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            zk.get_data("/rt")
        }),
        cutter
    );
    assert_eq!(read.unwrap().0, b"v");
    assert!(attempts.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}
against_both!(retry_across_a_cut, retry_gets_through_a_lost_connection);

/// A server that accepts connections and never answers: connecting gives up after
/// the connect timeout with ConnectFailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_ends_in_connect_failed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold connections, never answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let result = Client::builder(&addr.to_string())
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await;
    assert!(
        matches!(result, Err(Error::ConnectFailed(_))),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    holder.abort();
}

/// A reconfiguration through the client API, on an ensemble of ours with
/// reconfigEnabled: a new member joins, and the configuration the client reads says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfig_adds_a_member_through_the_client() {
    let mut cluster = zk_server::testing::TestingCluster::start_configured(3, 0, |c| {
        c.reconfig_enabled = true;
        c.skip_acl = true;
    })
    .await
    .unwrap();
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader");
    let zk = Client::connect(&cluster.connect_string()).await.unwrap();
    let (before, stat) = zk.get_config().await.unwrap();
    let (_, joining) = cluster.add_member(true).await.unwrap();
    let (config, new_stat) = zk.reconfig(Some(&joining), None, None, None).await.unwrap();
    let config = String::from_utf8(config).unwrap();
    assert!(config.contains(&joining), "{config}");
    assert_ne!(config.as_bytes(), before.as_slice());
    zk.sync("/").await.unwrap();
    let (read, _) = zk.get_config().await.unwrap();
    assert_eq!(String::from_utf8(read).unwrap(), config);
    assert!(new_stat.mzxid > stat.mzxid);
}

/// When a server answers a request with SessionExpired, the requests still in flight
/// on that connection fail with SessionExpired too (as Java's client fails them once
/// CLOSED), not with ConnectionLoss: the session is over, retrying cannot help. A fake
/// server that expires the session on the first request it reads shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_when_the_session_expires_fail_with_session_expired() {
    use bytes::{Bytes, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use zk_proto::frame::{write_frame, FrameDecoder};
    use zk_proto::{ConnectResponse, Reader, Record, ReplyHeader, RequestHeader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let mut decoder = FrameDecoder::default();
        let mut frames = Vec::new();
        // The handshake, then two requests.
        while frames.len() < 3 {
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                if frames.is_empty() {
                    let mut out = BytesMut::new();
                    write_frame(&mut out, |w| {
                        ConnectResponse {
                            protocol_version: 0,
                            timeout: 10_000,
                            session_id: 0x77,
                            passwd: Bytes::from_static(&[7; 16]),
                            read_only: Some(false),
                        }
                        .write(w)
                    });
                    socket.write_all(&out).await.unwrap();
                }
                frames.push(frame);
            }
            if frames.len() < 3 {
                assert!(socket.read_buf(&mut buf).await.unwrap() > 0);
            }
        }
        let first = RequestHeader::read(&mut Reader::new(frames[1].clone())).unwrap();
        let mut out = BytesMut::new();
        write_frame(&mut out, |w| {
            ReplyHeader {
                xid: first.xid,
                zxid: 0,
                err: ErrorCode::SessionExpired.code(),
            }
            .write(w)
        });
        socket.write_all(&out).await.unwrap();
        // Hold the connection open: the second request is never answered.
        let _ = socket.read_buf(&mut buf).await;
    });
    let zk = Client::connect(&addr.to_string()).await.unwrap();
    let first = zk.get_data("/a");
    let second = zk.get_data("/b");
    assert_eq!(first.await, Err(Error::SessionExpired));
    assert_eq!(second.await, Err(Error::SessionExpired));
    let mut states = zk.state_changes();
    tokio::time::timeout(WAIT, states.wait_for(|s| s == SessionState::Expired))
        .await
        .expect("Expired published")
        .unwrap();
    server.abort();
}
