//! Watches over the wire: ZooKeeper's trigger rules, persistent watches, re-registration
//! after reconnect, and the ordering guarantee (an event before any later read).

mod common;

use common::{connect_request, RawClient};
use zk_proto::*;
use zk_server::testing::TestingServer;

fn kind(e: &WatcherEvent) -> (i32, &str) {
    (e.event_type, e.path.as_str())
}

const CREATED: i32 = EventType::NodeCreated.code();
const DELETED: i32 = EventType::NodeDeleted.code();
const CHANGED: i32 = EventType::NodeDataChanged.code();
const CHILDREN: i32 = EventType::NodeChildrenChanged.code();

#[tokio::test]
async fn one_shot_watches_fire_once_with_zookeepers_events() {
    let server = TestingServer::start().await.unwrap();
    let mut w = RawClient::connect(server.addr()).await;
    let mut c = RawClient::connect(server.addr()).await;
    assert_eq!(w.exists("/x", true).await, Err(ErrorCode::NoNode));
    c.create("/x", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(kind(&w.next_event().await.unwrap()), (CREATED, "/x"));
    w.get("/x", true).await.unwrap();
    w.children("/x", true).await.unwrap();
    c.set("/x", b"1", -1).await.unwrap();
    assert_eq!(kind(&w.next_event().await.unwrap()), (CHANGED, "/x"));
    c.set("/x", b"2", -1).await.unwrap(); // the data watch is spent
    c.create("/x/k", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(kind(&w.next_event().await.unwrap()), (CHILDREN, "/x"));
    // A child watch on a node that is deleted sees NodeDeleted.
    w.children("/x/k", true).await.unwrap();
    w.get("/x/k", true).await.unwrap();
    c.delete("/x/k", -1).await.unwrap();
    assert_eq!(kind(&w.next_event().await.unwrap()), (DELETED, "/x/k"));
    // Told once though both a data and a child watch were set.
    let r = w
        .call(Request::CheckWatches(CheckWatchesRequest {
            path: "/x/k".into(),
            watcher_type: WatcherType::Any.code(),
        }))
        .await;
    assert_eq!(r, Err(ErrorCode::NoWatcher));
    assert!(w.events.is_empty());
}

#[tokio::test]
async fn an_event_is_delivered_before_the_reply_to_any_later_read() {
    let server = TestingServer::start().await.unwrap();
    let mut w = RawClient::connect(server.addr()).await;
    let mut c = RawClient::connect(server.addr()).await;
    w.create("/order", b"0", CreateMode::Persistent)
        .await
        .unwrap();
    for i in 1..=30u8 {
        w.get("/order", true).await.unwrap();
        c.set("/order", &[i], -1).await.unwrap();
        // The read that sees the new value must come after the event for it.
        let (data, _) = w.get("/order", false).await.unwrap();
        if data.as_deref() == Some(&[i][..]) {
            assert_eq!(
                w.events.len(),
                1,
                "round {i}: the read saw the change before its event"
            );
        }
        assert_eq!(kind(&w.next_event().await.unwrap()), (CHANGED, "/order"));
    }
}

#[tokio::test]
async fn persistent_and_recursive_watches() {
    let server = TestingServer::start().await.unwrap();
    let mut w = RawClient::connect(server.addr()).await;
    let mut c = RawClient::connect(server.addr()).await;
    let add = |path: &str, mode: AddWatchMode| {
        Request::AddWatch(AddWatchRequest {
            path: path.into(),
            mode: mode.code(),
        })
    };
    assert_eq!(
        w.call(add("/pp", AddWatchMode::Persistent)).await,
        Ok(Response::AddWatch(ErrorResponse { err: 0 }))
    );
    w.call(add("/rr", AddWatchMode::PersistentRecursive))
        .await
        .unwrap();
    c.create("/pp", b"", CreateMode::Persistent).await.unwrap();
    c.create("/pp/c", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.set("/pp", b"1", -1).await.unwrap();
    c.set("/pp", b"2", -1).await.unwrap();
    c.create("/pp/c/g", b"", CreateMode::Persistent)
        .await
        .unwrap(); // not seen by /pp
    c.create("/rr", b"", CreateMode::Persistent).await.unwrap();
    c.create("/rr/c", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/rr/c/g", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.set("/rr/c/g", b"x", -1).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..8 {
        let e = w.next_event().await.unwrap();
        got.push((e.event_type, e.path));
    }
    let want: Vec<(i32, String)> = vec![
        (CREATED, "/pp"),
        (CHILDREN, "/pp"),
        (CHANGED, "/pp"),
        (CHANGED, "/pp"),
        (CREATED, "/rr"),
        (CREATED, "/rr/c"),
        (CREATED, "/rr/c/g"),
        (CHANGED, "/rr/c/g"),
    ]
    .into_iter()
    .map(|(t, p)| (t, p.to_string()))
    .collect();
    assert_eq!(got, want);
    let remove = Request::RemoveWatches(RemoveWatchesRequest {
        path: "/rr".into(),
        watcher_type: WatcherType::Any.code(),
    });
    assert_eq!(w.call(remove.clone()).await, Ok(Response::Empty));
    assert_eq!(w.call(remove).await, Err(ErrorCode::NoWatcher));
}

#[tokio::test]
async fn watches_re_registered_after_reconnect_fire_for_what_was_missed() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/seen", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/will-change", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/will-go", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let relative_zxid = c.last_zxid;
    let (session, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    // While the client was away:
    let mut other = RawClient::connect(server.addr()).await;
    other.set("/will-change", b"new", -1).await.unwrap();
    other.delete("/will-go", -1).await.unwrap();
    other
        .create("/appeared", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mut resume = connect_request(30000);
    resume.session_id = session;
    resume.passwd = passwd;
    resume.last_zxid_seen = relative_zxid;
    let (mut c, _) = RawClient::handshake(server.addr(), resume).await.unwrap();
    let set = Request::SetWatches2(SetWatches2 {
        relative_zxid,
        data_watches: vec!["/seen".into(), "/will-change".into(), "/will-go".into()],
        exist_watches: vec!["/appeared".into()],
        child_watches: vec![],
        persistent_watches: vec![],
        persistent_recursive_watches: vec![],
    });
    let xid = c.send(&set).await;
    let (header, result) = c.reply(xid, OpCode::SetWatches2).await.unwrap();
    assert_eq!((header.xid, result), (-8, Ok(Response::Empty)));
    let mut fired: Vec<(i32, String)> =
        c.events.drain(..).map(|e| (e.event_type, e.path)).collect();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            (CREATED, "/appeared".to_string()),
            (DELETED, "/will-go".to_string()),
            (CHANGED, "/will-change".to_string()),
        ]
    );
    // The watch on the unchanged node was registered and still fires.
    other.set("/seen", b"now", -1).await.unwrap();
    assert_eq!(kind(&c.next_event().await.unwrap()), (CHANGED, "/seen"));
}

#[tokio::test]
async fn events_need_read_permission_on_the_node() {
    let server = TestingServer::start().await.unwrap();
    let mut owner = RawClient::connect(server.addr()).await;
    let mut outsider = RawClient::connect(server.addr()).await;
    owner
        .create("/p", b"", CreateMode::Persistent)
        .await
        .unwrap();
    outsider.exists("/p/private", true).await.unwrap_err();
    owner
        .call(Request::Create(CreateRequest {
            path: "/p/private".into(),
            data: None,
            acl: vec![Acl::new(Perms::ALL, Id::new("digest", "nobody:x"))],
            flags: 0,
        }))
        .await
        .unwrap();
    outsider.children("/p", true).await.unwrap();
    owner
        .create("/p/public", b"", CreateMode::Persistent)
        .await
        .unwrap();
    // Only the child event on the world-readable parent arrives.
    assert_eq!(
        kind(&outsider.next_event().await.unwrap()),
        (CHILDREN, "/p")
    );
    assert!(outsider.events.is_empty());
}

/// setWatches (opcode 101), the form older clients such as kazoo 2.11 send on
/// reconnect: no persistent watches, the same firing of what was missed.
#[tokio::test]
async fn set_watches_the_old_opcode_fires_missed_events_on_reconnect() {
    let server = TestingServer::start().await.unwrap();
    let mut c = RawClient::connect(server.addr()).await;
    for p in ["/seen", "/will-change", "/will-go", "/parent"] {
        c.create(p, b"", CreateMode::Persistent).await.unwrap();
    }
    let relative_zxid = c.last_zxid;
    let (session, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    // While the client was away:
    let mut other = RawClient::connect(server.addr()).await;
    other.set("/will-change", b"new", -1).await.unwrap();
    other.delete("/will-go", -1).await.unwrap();
    other
        .create("/appeared", b"", CreateMode::Persistent)
        .await
        .unwrap();
    other
        .create("/parent/kid", b"", CreateMode::Persistent)
        .await
        .unwrap();
    let mut resume = connect_request(30000);
    resume.session_id = session;
    resume.passwd = passwd;
    resume.last_zxid_seen = other.last_zxid;
    let (mut c, response) = RawClient::handshake(server.addr(), resume).await.unwrap();
    assert_eq!(response.session_id, session, "the session resumed");
    let set = Request::SetWatches(SetWatches {
        relative_zxid,
        data_watches: vec!["/seen".into(), "/will-change".into(), "/will-go".into()],
        exist_watches: vec!["/appeared".into(), "/not-yet".into()],
        child_watches: vec!["/parent".into()],
    });
    assert_eq!(set.opcode().code(), 101);
    let xid = c.send(&set).await;
    let (header, result) = c.reply(xid, OpCode::SetWatches).await.unwrap();
    assert_eq!((header.xid, result), (-8, Ok(Response::Empty)));
    let mut fired: Vec<(i32, String)> =
        c.events.drain(..).map(|e| (e.event_type, e.path)).collect();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            (CREATED, "/appeared".to_string()),
            (DELETED, "/will-go".to_string()),
            (CHANGED, "/will-change".to_string()),
            (CHILDREN, "/parent".to_string()),
        ]
    );
    // The watches on what had not changed were registered and still fire.
    other.set("/seen", b"now", -1).await.unwrap();
    assert_eq!(kind(&c.next_event().await.unwrap()), (CHANGED, "/seen"));
    other
        .create("/not-yet", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(kind(&c.next_event().await.unwrap()), (CREATED, "/not-yet"));
}
