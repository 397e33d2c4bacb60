//! `TreeCache`, `NodeCache` and `ConfigCache` against our server and Apache ZooKeeper
//! 3.8, with persistent recursive watches and with one-shot watches: the mirror and
//! its events (added/updated/removed with old and new data, children removed before
//! parents), typed config values, a full re-sync after session expiry, and — under
//! churn while the member the cache is on is killed — a mirror equal to the server's
//! tree once writes stop, equal also to its initial snapshot with every event replayed.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use zk_client::Client;
use zk_recipes::tree_cache::apply_event;
use zk_recipes::{ConfigCache, Format, NodeCache, Tree, TreeCache, TreeEvent, WatchStrategy};
use zk_server::testing::{TestingCluster, TestingServer};
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
        .expect("connect")
}

async fn create(zk: &Client, path: &str, data: &[u8]) {
    zk.create(path)
        .data(data)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

/// What a mirror and the server must agree on: path → (data, czxid, mzxid, version).
type Shape = BTreeMap<String, (Vec<u8>, i64, i64, i32)>;

fn shape(tree: &Tree) -> Shape {
    tree.iter()
        .map(|(p, n)| {
            let s = &n.stat;
            (p.clone(), (n.data.clone(), s.czxid, s.mzxid, s.version))
        })
        .collect()
}

/// The server's subtree at `root`, read after a sync.
async fn server_shape(zk: &Client, root: &str) -> Shape {
    zk.sync(root).await.unwrap();
    let mut out = Shape::new();
    let mut work = vec![root.to_string()];
    while let Some(path) = work.pop() {
        let Ok((data, s)) = zk.get_data(&path).await else {
            continue;
        };
        out.insert(path.clone(), (data, s.czxid, s.mzxid, s.version));
        for name in zk.get_children(&path).await.unwrap_or_default() {
            work.push(format!("{path}/{name}"));
        }
    }
    out
}

/// The next event that is not a connection event.
async fn next_change(events: &mut futures::stream::BoxStream<'static, TreeEvent>) -> TreeEvent {
    loop {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on");
        if matches!(
            event,
            TreeEvent::Added(_) | TreeEvent::Updated { .. } | TreeEvent::Removed(_)
        ) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_on_ours() {
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    for strategy in [WatchStrategy::Auto, WatchStrategy::OneShot] {
        tree_events(&connect, strategy).await;
        resync_after_expiry(&connect, strategy).await;
    }
    node_and_config(&connect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    let connect = server.connect_string();
    for strategy in [WatchStrategy::Auto, WatchStrategy::OneShot] {
        tree_events(&connect, strategy).await;
        resync_after_expiry(&connect, strategy).await;
    }
    node_and_config(&connect).await;
}

async fn tree_events(connect: &str, strategy: WatchStrategy) {
    let root = format!("/cache-{strategy:?}");
    let zk = client(connect).await;
    create(&zk, &root, b"r").await;
    create(&zk, &format!("{root}/a"), b"1").await;
    let cache = TreeCache::builder(&zk, &root).strategy(strategy).build();
    cache.start();
    // The initial load, as events: parents first, then Initialized.
    let (_, mut events) = cache.subscribe();
    let mut loaded = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
        {
            TreeEvent::Added(n) => loaded.push(n.path),
            TreeEvent::Initialized => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(loaded, [root.clone(), format!("{root}/a")]);
    cache.initialized().await;
    assert_eq!(cache.children(&root), ["a"]);
    assert_eq!(cache.get(&format!("{root}/a")).unwrap().data, b"1");
    let writer = client(connect).await;
    // Added, parents first.
    create(&writer, &format!("{root}/b"), b"2").await;
    create(&writer, &format!("{root}/b/c"), b"3").await;
    let mut added = Vec::new();
    while added.len() < 2 {
        match next_change(&mut events).await {
            TreeEvent::Added(n) => added.push(n.path),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, [format!("{root}/b"), format!("{root}/b/c")]);
    // Updated, with old and new.
    writer
        .set_data(&format!("{root}/a"), b"1b", None)
        .await
        .unwrap();
    match next_change(&mut events).await {
        TreeEvent::Updated { old, new } => {
            assert_eq!((old.data, new.data), (b"1".to_vec(), b"1b".to_vec()));
            assert_eq!(new.stat.version, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Removed, children first.
    writer.delete(&format!("{root}/b/c"), None).await.unwrap();
    writer.delete(&format!("{root}/b"), None).await.unwrap();
    assert!(
        matches!(next_change(&mut events).await, TreeEvent::Removed(n) if n.path == format!("{root}/b/c"))
    );
    assert!(
        matches!(next_change(&mut events).await, TreeEvent::Removed(n) if n.path == format!("{root}/b"))
    );
    assert_eq!(shape(&cache.snapshot()), server_shape(&writer, &root).await);
    cache.close().await;
}

async fn resync_after_expiry(connect: &str, strategy: WatchStrategy) {
    let root = format!("/resync-{strategy:?}");
    let writer = client(connect).await;
    create(&writer, &root, b"").await;
    for i in 0..5 {
        create(&writer, &format!("{root}/k{i}"), b"v").await;
    }
    let proxy = Proxy::start(connect.split(',').next().unwrap().to_string()).await;
    let zk = client(&proxy.addr.to_string()).await;
    let cache = TreeCache::builder(&zk, &root).strategy(strategy).build();
    cache.start();
    let (snapshot, mut events) = cache.subscribe();
    cache.initialized().await;
    let mut replayed = snapshot;
    let old_session = zk.session_id();
    proxy.cut();
    // Changes while the cache's session expires.
    writer.delete(&format!("{root}/k0"), None).await.unwrap();
    writer
        .set_data(&format!("{root}/k1"), b"changed", None)
        .await
        .unwrap();
    create(&writer, &format!("{root}/k9"), b"new").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.restore();
    // Suspended, the differences, then Resynced.
    let mut saw_suspended = false;
    loop {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap();
        apply_event(&mut replayed, &event);
        match event {
            TreeEvent::Suspended => saw_suspended = true,
            TreeEvent::Resynced => break,
            TreeEvent::Lost => panic!("a renewing client's cache goes on"),
            _ => {}
        }
    }
    assert!(saw_suspended);
    assert_ne!(zk.session_id(), old_session);
    let server = server_shape(&writer, &root).await;
    assert_eq!(shape(&cache.snapshot()), server);
    assert_eq!(shape(&replayed), server);
    cache.close().await;
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Limits {
    max_connections: u32,
    name: String,
}

/// `ConfigCache::initialized()` returns only once `get()` has the value: 200 caches
/// started on an existing node, each asked right after `initialized()`, on a
/// multi-threaded runtime (where the value's publisher runs on another thread).
async fn config_is_there_once_initialized(connect: &str) {
    let writer = client(connect).await;
    let zk = client(connect).await;
    let value = Limits {
        max_connections: 7,
        name: "ready".into(),
    };
    create(
        &writer,
        "/config-ready",
        &Format::Json.encode(&value).unwrap(),
    )
    .await;
    let mut missing = 0;
    for _ in 0..200 {
        let config = ConfigCache::<Limits>::new(&zk, "/config-ready", Format::Json);
        config.start();
        tokio::time::timeout(WAIT, config.initialized())
            .await
            .expect("initialized");
        match config.get() {
            Some(got) => assert_eq!(*got, value),
            None => missing += 1,
        }
        config.close().await;
    }
    assert_eq!(missing, 0, "get() was None right after initialized()");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_cache_has_its_value_once_initialized_on_ours() {
    let server = TestingServer::start().await.unwrap();
    config_is_there_once_initialized(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_cache_has_its_value_once_initialized_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    config_is_there_once_initialized(&server.connect_string()).await;
}

async fn node_and_config(connect: &str) {
    let writer = client(connect).await;
    let zk = client(connect).await;
    // A node that does not exist yet.
    let node = NodeCache::new(&zk, "/nodecache/key");
    node.start();
    let mut events = node.events();
    node.initialized().await;
    assert!(node.current().is_none());
    create(&writer, "/nodecache", b"").await;
    create(&writer, "/nodecache/key", b"hello").await;
    assert!(matches!(next_change(&mut events).await, TreeEvent::Added(n) if n.data == b"hello"));
    assert_eq!(node.current_text().as_deref(), Some("hello"));
    // Children are not mirrored by a node cache.
    create(&writer, "/nodecache/key/child", b"").await;
    writer
        .set_data("/nodecache/key", b"bye", None)
        .await
        .unwrap();
    assert!(
        matches!(next_change(&mut events).await, TreeEvent::Updated { new, .. } if new.data == b"bye")
    );
    node.close().await;

    for format in [Format::Json, Format::MsgPack] {
        let path = format!("/config-{format:?}");
        let config = ConfigCache::<Limits>::new(&zk, &path, format);
        config.start();
        config.initialized().await;
        assert!(config.get().is_none());
        let mut values = config.watch();
        let first = Limits {
            max_connections: 10,
            name: "a".into(),
        };
        create(&writer, &path, &format.encode(&first).unwrap()).await;
        let seen = tokio::time::timeout(WAIT, values.wait_for(|v| v.is_some()))
            .await
            .unwrap()
            .unwrap()
            .clone();
        assert_eq!(*seen.unwrap(), first);
        // A bad value: the last good one stays, the error says why.
        writer
            .set_data(&path, b"\xff not a value", None)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while config.last_error().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "decode error reported"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*config.get().unwrap(), first);
        let second = Limits {
            max_connections: 20,
            name: "b".into(),
        };
        writer
            .set_data(&path, &format.encode(&second).unwrap(), None)
            .await
            .unwrap();
        let seen = tokio::time::timeout(WAIT, values.wait_for(|v| v.as_deref() == Some(&second)))
            .await
            .expect("the new value arrives")
            .unwrap()
            .clone();
        assert!(seen.is_some());
        assert!(config.last_error().is_none());
        writer.delete(&path, None).await.unwrap();
        tokio::time::timeout(WAIT, values.wait_for(|v| v.is_none()))
            .await
            .expect("deletion seen")
            .unwrap();
        config.close().await;
    }
}

/// Thousands of random changes to a subtree while the member the caches are on is
/// killed and restarted: once writes stop, each cache equals the server's tree, and
/// its initial snapshot with every event replayed equals it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_converge_under_churn_through_a_member_kill() {
    let mut cluster = TestingCluster::start(3).await.unwrap();
    let leader = cluster.wait_for_leader(WAIT).await.expect("a leader");
    let victim = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let others: Vec<String> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != victim)
        .map(|id| cluster.client_addr(id).unwrap().to_string())
        .collect();
    // The caches are on the victim alone: they are cut off while it is down, and
    // reconnect (same session) once it is back.
    let cache_connect = cluster.client_addr(victim).unwrap().to_string();
    let writer = client(&others.join(",")).await;
    create(&writer, "/churn", b"").await;
    let mut caches = Vec::new();
    for strategy in [WatchStrategy::Auto, WatchStrategy::OneShot] {
        let zk = Client::builder(&cache_connect)
            .session_timeout(Duration::from_secs(10))
            .connect()
            .await
            .unwrap();
        let cache = TreeCache::builder(&zk, "/churn").strategy(strategy).build();
        cache.start();
        cache.initialized().await;
        let (snapshot, events) = cache.subscribe();
        caches.push((cache, snapshot, events, zk));
    }
    // Random creates, sets and deletes over 2 levels of 8 keys each.
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const CHANGES: usize = 2000;
    for i in 0..CHANGES {
        if i == CHANGES / 3 {
            cluster.kill(victim).await;
        }
        if i == 2 * CHANGES / 3 {
            cluster.restart(victim).await.unwrap();
        }
        let a = next() % 8;
        let b = next() % 8;
        let path = if next() % 3 == 0 {
            format!("/churn/k{a}")
        } else {
            format!("/churn/k{a}/k{b}")
        };
        let data = format!("v{i}");
        let result = match next() % 3 {
            0 => writer.create(&path).data(data.as_bytes()).await.map(|_| ()),
            1 => writer
                .set_data(&path, data.as_bytes(), None)
                .await
                .map(|_| ()),
            _ => writer.delete(&path, None).await,
        };
        // NoNode/NodeExists/NotEmpty are part of random churn; anything else is not.
        if let Err(e) = result {
            assert!(e.code().is_some(), "change {i} on {path}: {e}");
        }
    }
    let server = server_shape(&writer, "/churn").await;
    assert!(server.len() > 5, "the churn left a tree: {}", server.len());
    for (cache, mut replayed, mut events, _zk) in caches {
        let deadline = tokio::time::Instant::now() + WAIT;
        while shape(&cache.snapshot()) != server {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cache did not converge: {} nodes vs {}",
                cache.snapshot().len(),
                server.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Every event so far, replayed over the snapshot.
        let mut seen = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(300), events.next()).await
        {
            apply_event(&mut replayed, &event);
            seen.push(event);
        }
        assert_eq!(shape(&replayed), server, "replayed events give the tree");
        assert!(seen.contains(&TreeEvent::Suspended) && seen.contains(&TreeEvent::Reconnected));
        cache.close().await;
    }
    cluster.shutdown().await;
}
