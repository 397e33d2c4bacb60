//! `Modeled<T>`, a typed znode, against our server and Apache ZooKeeper 3.8: round
//! trips in JSON and MessagePack, create/set/set_versioned/delete and their errors,
//! concurrent read-modify-write updates from several tasks on two clients adding up
//! exactly, undecodable data reported with its path, and missing nodes read as `None`;
//! and updates through a proxy that loses their answers, still counting exactly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zk_client::{Client, ErrorCode};
use zk_recipes::{Error, Format, Modeled, Versioned};
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    name: String,
    counter: u64,
    tags: Vec<String>,
    limit: Option<u32>,
}

impl Settings {
    fn new(name: &str) -> Settings {
        Settings {
            name: name.to_string(),
            counter: 0,
            tags: vec!["a".into(), "b".into()],
            limit: Some(7),
        }
    }
}

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect")
}

/// The ZooKeeper error code inside a recipe error, if any.
fn code(e: &Error) -> Option<ErrorCode> {
    match e {
        Error::Client(c) => c.code(),
        _ => None,
    }
}

/// Every scenario, on one server.
async fn all(connect: &str) {
    for format in [Format::Json, Format::MsgPack] {
        round_trip(connect, format).await;
        create_twice(connect, format).await;
        versioned_writes(connect, format).await;
        garbage_is_reported(connect, format).await;
        missing_is_none(connect, format).await;
    }
    parents_on_request(connect).await;
    try_update_declines(connect).await;
    delete_clears_left_markers(connect).await;
    concurrent_updates(connect).await;
    updates_through_lost_answers(connect).await;
}

fn base(format: Format) -> &'static str {
    match format {
        Format::Json => "/modeled/json",
        Format::MsgPack => "/modeled/msgpack",
    }
}

async fn round_trip(connect: &str, format: Format) {
    let zk = client(connect).await;
    let path = format!("{}/round-trip", base(format));
    let node: Modeled<Settings> = Modeled::new(&zk, &path, format).parents(true);
    assert_eq!(node.path(), path);
    assert_eq!(node.format(), format);
    let value = Settings::new("round trip");
    node.create(&value).await.expect("create");
    let read = node.get().await.expect("get").expect("exists");
    assert_eq!(read.value, value);
    assert_eq!(read.version, 0);

    // The bytes are the format's own: another reader decodes them with serde alone.
    let (data, _) = zk.get_data(&path).await.expect("raw read");
    let decoded: Settings = match format {
        Format::Json => serde_json::from_slice(&data).expect("JSON"),
        Format::MsgPack => rmp_serde::from_slice(&data).expect("MessagePack"),
    };
    assert_eq!(decoded, value);

    // The shorthands read the same node.
    let again: Modeled<Settings> = match format {
        Format::Json => Modeled::json(&zk, &path),
        Format::MsgPack => Modeled::msgpack(&zk, &path),
    };
    assert_eq!(
        again.get().await.expect("get").map(|v| v.value),
        Some(value)
    );

    // set: unconditional, answers the new version.
    let mut changed = Settings::new("changed");
    changed.limit = None;
    assert_eq!(node.set(&changed).await.expect("set"), 1);
    assert_eq!(
        node.get().await.expect("get"),
        Some(Versioned {
            value: changed.clone(),
            version: 1
        })
    );

    // update on an existing node.
    let written = node
        .update(|current| {
            let mut s = current.expect("the node exists");
            s.counter += 41;
            s.tags.push("c".into());
            s
        })
        .await
        .expect("update");
    assert_eq!(written.version, 2);
    assert_eq!(written.value.counter, 41);
    assert_eq!(
        node.get().await.expect("get"),
        Some(Versioned {
            value: written.value.clone(),
            version: 2
        })
    );
    // No write markers stay behind.
    assert!(zk.get_children(&path).await.expect("children").is_empty());

    // watch(): the value as it changes.
    let cache = node.watch();
    cache.initialized().await;
    assert_eq!(cache.get().as_deref(), Some(&written.value));
    let mut values = cache.watch();
    node.set(&Settings::new("watched")).await.expect("set");
    tokio::time::timeout(
        WAIT,
        values.wait_for(|v| v.as_ref().is_some_and(|s| s.name == "watched")),
    )
    .await
    .expect("in time")
    .expect("the cache runs");
    cache.close().await;

    node.delete().await.expect("delete");
    assert_eq!(node.get().await.expect("get"), None);
    zk.close().await;
}

async fn create_twice(connect: &str, format: Format) {
    let zk = client(connect).await;
    let path = format!("{}/create-twice", base(format));
    let node: Modeled<Settings> = Modeled::new(&zk, &path, format).parents(true);
    node.create(&Settings::new("first")).await.expect("create");
    let err = node
        .create(&Settings::new("second"))
        .await
        .expect_err("a second create fails");
    assert_eq!(code(&err), Some(ErrorCode::NodeExists), "{err}");
    assert!(err.to_string().contains(&path), "{err}");
    // The first value stays.
    let read = node.get().await.expect("get").expect("exists");
    assert_eq!(read.value.name, "first");
    assert_eq!(read.version, 0);
    node.delete().await.expect("delete");
    zk.close().await;
}

async fn versioned_writes(connect: &str, format: Format) {
    let zk = client(connect).await;
    let path = format!("{}/versioned", base(format));
    let node: Modeled<Settings> = Modeled::new(&zk, &path, format).parents(true);

    // set_versioned of a missing node: NoNode, naming the node.
    let err = node
        .set_versioned(&Settings::new("x"), 0)
        .await
        .expect_err("no node");
    assert_eq!(code(&err), Some(ErrorCode::NoNode), "{err}");
    assert!(err.to_string().contains(&path), "{err}");
    // delete of a missing node: NoNode.
    let err = node.delete().await.expect_err("no node");
    assert_eq!(code(&err), Some(ErrorCode::NoNode), "{err}");

    // set creates a missing node.
    assert_eq!(node.set(&Settings::new("v0")).await.expect("set"), 0);
    let read = node.get().await.expect("get").expect("exists");
    let v1 = node
        .set_versioned(&Settings::new("v1"), read.version)
        .await
        .expect("versioned set at the version read");
    assert_eq!(v1, read.version + 1);
    // The version read is stale now.
    let err = node
        .set_versioned(&Settings::new("stale"), read.version)
        .await
        .expect_err("stale version");
    assert_eq!(code(&err), Some(ErrorCode::BadVersion), "{err}");
    assert_eq!(
        node.get().await.expect("get").map(|v| v.value.name),
        Some("v1".to_string())
    );
    // A negative version ("any") is refused: that is set.
    let err = node
        .set_versioned(&Settings::new("any"), -1)
        .await
        .expect_err("-1");
    assert_eq!(code(&err), Some(ErrorCode::BadArguments), "{err}");
    // delete_versioned compares too.
    let err = node.delete_versioned(v1 - 1).await.expect_err("stale");
    assert_eq!(code(&err), Some(ErrorCode::BadVersion), "{err}");
    node.delete_versioned(v1)
        .await
        .expect("delete at the version");
    assert_eq!(node.get().await.expect("get"), None);
    zk.close().await;
}

async fn garbage_is_reported(connect: &str, format: Format) {
    let zk = client(connect).await;
    let path = format!("{}/garbage", base(format));
    zk.create(&path)
        .data(b"\xc1 not a value {")
        .parents(true)
        .await
        .expect("create");
    let node: Modeled<Settings> = Modeled::new(&zk, &path, format);
    let err = node.get().await.expect_err("does not decode");
    let message = err.to_string();
    assert!(matches!(err, Error::Codec(_)), "{err:?}");
    assert!(message.contains(&path), "{message}");
    let name = match format {
        Format::Json => "JSON",
        Format::MsgPack => "MessagePack",
    };
    assert!(message.contains(name), "{message}");
    // update does not overwrite what it cannot read.
    let err = node
        .update(|_| Settings::new("overwritten"))
        .await
        .expect_err("update of garbage");
    assert!(err.to_string().contains(&path), "{err}");
    let (data, stat) = zk.get_data(&path).await.expect("raw read");
    assert_eq!(data, b"\xc1 not a value {");
    assert_eq!(stat.version, 0);

    // A value of another shape does not decode either (a missing field).
    zk.set_data(
        &path,
        &Format::Json.encode(&("a", 1)).expect("encode"),
        None,
    )
    .await
    .expect("set");
    let err = Modeled::<Settings>::json(&zk, &path)
        .get()
        .await
        .expect_err("wrong shape");
    assert!(err.to_string().contains(&path), "{err}");
    zk.delete(&path, None).await.expect("delete");
    zk.close().await;
}

async fn missing_is_none(connect: &str, format: Format) {
    let zk = client(connect).await;
    let path = format!("{}/never/created", base(format));
    let node: Modeled<Settings> = Modeled::new(&zk, &path, format);
    assert_eq!(node.get().await.expect("get"), None);
    zk.close().await;
}

async fn parents_on_request(connect: &str) {
    let zk = client(connect).await;
    let path = "/modeled/parents/a/b/c";
    let without: Modeled<Settings> = Modeled::json(&zk, path);
    let err = without
        .create(&Settings::new("x"))
        .await
        .expect_err("no parent");
    assert_eq!(code(&err), Some(ErrorCode::NoNode), "{err}");
    let err = without
        .update(|_| Settings::new("x"))
        .await
        .expect_err("no parent");
    assert_eq!(code(&err), Some(ErrorCode::NoNode), "{err}");
    let err = without
        .set(&Settings::new("x"))
        .await
        .expect_err("no parent");
    assert_eq!(code(&err), Some(ErrorCode::NoNode), "{err}");

    // update creates the node (and, asked to, its parents) when it is missing.
    let with = without.clone().parents(true);
    let written = with
        .update(|current| {
            assert!(current.is_none());
            Settings::new("made")
        })
        .await
        .expect("update creates");
    assert_eq!(written.version, 0);
    assert_eq!(
        without.get().await.expect("get").map(|v| v.value.name),
        Some("made".to_string())
    );
    zk.delete_recursive("/modeled/parents", None)
        .await
        .expect("clean up");
    zk.close().await;
}

async fn try_update_declines(connect: &str) {
    let zk = client(connect).await;
    let owner: Modeled<String> = Modeled::msgpack(&zk, "/modeled/owner").parents(true);
    let claim = |me: &'static str| {
        let owner = owner.clone();
        async move {
            owner
                .try_update(|current| match current {
                    None => Some(me.to_string()),
                    Some(_) => None,
                })
                .await
                .expect("try_update")
        }
    };
    let first = claim("alice").await.expect("claimed");
    assert_eq!(first.value, "alice");
    assert_eq!(claim("bob").await, None);
    assert_eq!(
        owner.get().await.expect("get").map(|v| v.value),
        Some("alice".to_string())
    );
    owner.delete().await.expect("delete");
    zk.close().await;
}

/// A writer that failed mid-write leaves its marker under the node; delete clears it,
/// but not a child that is not a marker.
async fn delete_clears_left_markers(connect: &str) {
    let zk = client(connect).await;
    let node: Modeled<u32> = Modeled::json(&zk, "/modeled/left").parents(true);
    node.create(&1).await.expect("create");
    zk.create("/modeled/left/_op-left-behind")
        .await
        .expect("marker");
    node.delete().await.expect("delete with a marker under it");
    assert_eq!(node.get().await.expect("get"), None);

    node.create(&1).await.expect("create");
    zk.create("/modeled/left/child").await.expect("child");
    let err = node.delete().await.expect_err("a real child");
    assert_eq!(code(&err), Some(ErrorCode::NotEmpty), "{err}");
    zk.delete_recursive("/modeled/left", None)
        .await
        .expect("clean up");
    zk.close().await;
}

/// 8 tasks on 2 clients, each incrementing the counter field 25 times: exactly 200,
/// the node created by whichever update came first.
async fn concurrent_updates(connect: &str) {
    const TASKS: usize = 8;
    const EACH: u64 = 25;
    let clients = [client(connect).await, client(connect).await];
    let path = "/modeled/concurrent/counter";
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let node: Modeled<Settings> = Modeled::json(&clients[i % 2], path).parents(true);
        tasks.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for _ in 0..EACH {
                let written = node
                    .update(|current| {
                        let mut s = current.unwrap_or_else(|| Settings::new("counter"));
                        s.counter += 1;
                        s
                    })
                    .await
                    .expect("update");
                versions.push(written.version);
            }
            versions
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.extend(
            tokio::time::timeout(WAIT, task)
                .await
                .expect("updates in time")
                .expect("the task"),
        );
    }
    let node: Modeled<Settings> = Modeled::json(&clients[0], path);
    let end = node.get().await.expect("get").expect("exists");
    assert_eq!(end.value.counter, TASKS as u64 * EACH);
    // Each update wrote its own version: 0 (the create) to 199.
    versions.sort_unstable();
    assert_eq!(versions, (0..200).collect::<Vec<i32>>());
    assert_eq!(end.version, 199);
    assert!(clients[0]
        .get_children(path)
        .await
        .expect("children")
        .is_empty());
    node.delete().await.expect("delete");
    for zk in clients {
        zk.close().await;
    }
}

/// Writers on a proxied session (and one direct session competing with them) while
/// the proxy swallows answers and drops the connection, again and again: an update
/// whose answer was lost is settled, never applied twice, so the counter ends at
/// exactly the number of updates reported done.
async fn updates_through_lost_answers(connect: &str) {
    const WRITERS: usize = 3;
    let path = "/modeled/lossy/counter";
    let proxy = Proxy::start(connect.to_string()).await;
    let proxied = client(&proxy.addr.to_string()).await;
    let direct = client(connect).await;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..=WRITERS {
        let zk = if w < WRITERS { &proxied } else { &direct };
        let node: Modeled<Settings> = Modeled::msgpack(zk, path).parents(true);
        let (done, stop) = (done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                node.update(|current| {
                    let mut s = current.unwrap_or_else(|| Settings::new("lossy"));
                    s.counter += 1;
                    s
                })
                .await
                .expect("update");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.lose_answers(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        tokio::time::timeout(WAIT, task)
            .await
            .expect("writers finish")
            .expect("a writer");
    }
    assert!(proxy.swallowed() > 0, "no answer was lost");
    let node: Modeled<Settings> = Modeled::msgpack(&direct, path);
    let total = done.load(Ordering::SeqCst);
    let end = node.get().await.expect("get").expect("exists");
    assert_eq!(
        end.value.counter, total,
        "an update applied twice or was lost"
    );
    assert!(direct
        .get_children(path)
        .await
        .expect("children")
        .is_empty());
    node.delete().await.expect("delete");
    proxied.close().await;
    direct.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modeled_on_our_server() {
    let server = TestingServer::start().await.expect("server");
    all(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modeled_on_apache() {
    let server = ApacheZk::start().await;
    all(&server.connect_string()).await;
}

/// Exhausted attempts give a clear error: an update that always conflicts (another
/// writer changes the node between its read and its write, every time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_attempts() {
    let server = TestingServer::start().await.expect("server");
    let zk = client(&server.connect_string()).await;
    let rival = client(&server.connect_string()).await;
    let node: Modeled<u64> = Modeled::json(&zk, "/exhausted").max_attempts(3);
    node.create(&0).await.expect("create");
    let mut calls = 0;
    let err = node
        .update(|current| {
            calls += 1;
            // A rival write lands between this read and the write below.
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(rival.set_data(
                    "/exhausted",
                    b"100",
                    None,
                ))
            })
            .expect("rival write");
            current.unwrap_or(0) + 1
        })
        .await
        .expect_err("every attempt conflicts");
    assert_eq!(calls, 3);
    assert!(
        matches!(&err, Error::TooManyConflicts { path, attempts: 3 } if path == "/exhausted"),
        "{err:?}"
    );
    assert!(err.to_string().contains("/exhausted"), "{err}");
    assert_eq!(node.get().await.expect("get").map(|v| v.value), Some(100));
    zk.close().await;
    rival.close().await;
}
