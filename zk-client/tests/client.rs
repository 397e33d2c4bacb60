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
    let mut states = zk.state_watcher();
    tokio::time::timeout(WAIT, async {
        while zk.state() == SessionState::Connected {
            let _ = tokio::time::timeout(Duration::from_millis(20), states.changed()).await;
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
    assert_eq!(
        zk.create("/c", b"one", &open, CreateMode::Persistent)
            .await
            .unwrap(),
        "/c"
    );
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
        code(
            zk.create("/c", b"", &open, CreateMode::Persistent)
                .await
                .unwrap_err()
        ),
        Some(ErrorCode::NodeExists)
    );
    assert_eq!(
        code(zk.get_data("/none").await.unwrap_err()),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(zk.exists("/none").await.unwrap(), None);
    assert_eq!(zk.exists("/c").await.unwrap().map(|s| s.version), Some(1));
    let seq = zk
        .create("/c/s-", b"", &open, CreateMode::PersistentSequential)
        .await
        .unwrap();
    assert_eq!(seq, "/c/s-0000000000");
    let (path, stat) = zk
        .create2("/c/e", b"e", &open, CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(
        (path.as_str(), stat.ephemeral_owner),
        ("/c/e", zk.session_id())
    );
    let mut children = zk.get_children("/c").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["e", "s-0000000000"]);
    let (_, stat) = zk.get_children2("/c").await.unwrap();
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
    zk.create("/fifo", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
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
    let (exists, created) = zk.exists_w("/w");
    assert_eq!(exists.await.unwrap(), None);
    other
        .create("/w", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
    let e = tokio::time::timeout(WAIT, created).await.unwrap().unwrap();
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/w")
    );

    let (read, changed) = zk.get_data_w("/w");
    read.await.unwrap();
    let (list, children) = zk.get_children_w("/w");
    list.await.unwrap();
    other.set_data("/w", b"x", None).await.unwrap();
    other
        .create("/w/k", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
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
    other
        .create("/w/k/deep", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
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
    zk.create("/nt", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
    let mut feed = zk.notifications();
    let _persistent = zk.add_watch("/nt", AddWatchMode::Persistent).await.unwrap();
    let _recursive = zk
        .add_watch("/", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let (read, _exists) = zk.exists_w("/nt/a");
    read.await.unwrap();
    zk.create("/nt/a", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
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
    root.create("/app", b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let zk = Client::connect(&format!("{}/app", target.connect_string()))
        .await
        .unwrap();
    assert_eq!(
        zk.create("/x", b"1", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap(),
        "/x"
    );
    // Another session (maybe on another member of an ensemble) sees it after a sync.
    root.sync("/app").await.unwrap();
    assert_eq!(root.get_data("/app/x").await.unwrap().0, b"1");
    let seq = zk
        .create(
            "/s-",
            b"",
            &Acl::open_unsafe(),
            CreateMode::EphemeralSequential,
        )
        .await
        .unwrap();
    assert!(seq.starts_with("/s-"), "{seq}");
    assert_eq!(zk.get_ephemerals("/").await.unwrap(), vec![seq]);
    let (read, changed) = zk.get_data_w("/x");
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
    assert_eq!(results, vec![OpResult::Create { path: "/t".into() }]);
}
against_both!(chroot, chroot_applies_to_every_path_in_and_out);

async fn digest_auth_and_acls(target: Target) {
    let zk = Client::builder(&target.connect_string())
        .auth("digest", b"bob:pw")
        .connect()
        .await
        .unwrap();
    zk.create(
        "/private",
        b"s",
        &Acl::creator_all(),
        CreateMode::Persistent,
    )
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
}
against_both!(transactions, transactions_are_all_or_nothing);

async fn the_session_and_its_watches_survive_a_server_restart(mut target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/r", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
    zk.create("/r/eph", b"", &open, CreateMode::Ephemeral)
        .await
        .unwrap();
    let (read, changed) = zk.get_data_w("/r");
    read.await.unwrap();
    let mut states = zk.state_watcher();
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
            let _ = tokio::time::timeout(Duration::from_millis(200), states.changed()).await;
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
    zk.create("/gone", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, watcher) = zk.exists_w("/gone");
    let mut states = zk.state_watcher();
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
        while *states.borrow() != SessionState::Expired {
            states.changed().await.unwrap();
        }
    })
    .await
    .expect("Expired reported");
    assert!(matches!(zk.get_data("/").await, Err(Error::SessionExpired)));
    assert!(watcher.await.is_err());
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
    zk.create(
        "/renew-eph",
        b"",
        &Acl::open_unsafe(),
        CreateMode::Ephemeral,
    )
    .await
    .unwrap();
    let (_, watcher) = zk.exists_w("/renew-eph");
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
    assert!(watcher.await.is_err(), "the old session's watch ended");
    assert_ne!(zk.session_id(), old_session);
    assert_ne!(zk.session_id(), 0);
    // The new session works, and it carries the credentials.
    zk.create(
        "/renew-eph",
        b"",
        &Acl::open_unsafe(),
        CreateMode::Ephemeral,
    )
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
    let first = zk.create("/queued", b"1", &open, CreateMode::Persistent);
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
    let queued = zk.create("/never", b"", &Acl::open_unsafe(), CreateMode::Persistent);
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
    zk.create("/kept", b"", &Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let stalled_at = std::time::Instant::now();
    proxy.stall();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    proxy.resume();
    let mut states = zk.state_watcher();
    tokio::time::timeout(WAIT, async {
        while zk.state() != SessionState::Connected || zk.exists("/kept").await.is_err() {
            let _ = tokio::time::timeout(Duration::from_millis(20), states.changed()).await;
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
    zk.create("/mr", b"d", &open, CreateMode::Persistent)
        .await
        .unwrap();
    zk.create("/mr/c", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
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
/// the client never retries it by itself: every name it reports is real and distinct,
/// and nothing is created twice.
async fn sequential_creates_survive_connection_loss_without_duplicates(mut target: Target) {
    let zk = client(&target).await;
    let open = Acl::open_unsafe();
    zk.create("/seq", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
    let creates: Vec<_> = (0..500)
        .map(|_| zk.create("/seq/n-", b"", &open, CreateMode::PersistentSequential))
        .collect();
    target.restart().await;
    let mut acknowledged = Vec::new();
    let mut lost = 0;
    for create in creates {
        match create.await {
            Ok(path) => acknowledged.push(path),
            Err(Error::ConnectionLoss) => lost += 1,
            Err(e) => panic!("a create failed with {e:?}"),
        }
    }
    let mut last_error = None;
    let children = tokio::time::timeout(WAIT, async {
        loop {
            match zk.get_children("/seq").await {
                Ok(c) => return c,
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let Ok(children) = children else {
        panic!(
            "not reconnected within {WAIT:?}: state {:?}, last error {last_error:?}; server log:\n{}",
            zk.state(),
            target.diagnostics()
        );
    };
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
    assert!(
        children.len() <= 500,
        "{} children from 500 creates",
        children.len()
    );
    assert_eq!(acknowledged.len() + lost, 500);
}
against_both!(
    sequential_under_connection_loss,
    sequential_creates_survive_connection_loss_without_duplicates
);
