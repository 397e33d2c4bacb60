//! The blocking facade, from plain threads.

use zk_client::{blocking, Acl, CreateMode, EventType};
use zk_server::testing::TestingServer;

#[test]
fn a_program_without_async_uses_the_blocking_client() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestingServer::start()).unwrap();
    let connect = server.connect_string();
    let zk = blocking::Client::connect(&connect).unwrap();
    zk.create(
        "/job",
        b"queued",
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .unwrap();
    let (data, stat, watch) = zk.get_data_w("/job").unwrap();
    assert_eq!(data, b"queued");
    let other = blocking::Client::connect(&connect).unwrap();
    let worker = std::thread::spawn(move || {
        other
            .set_data("/job", b"running", Some(stat.version))
            .unwrap();
        other.close();
    });
    let event = watch.wait().unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    worker.join().unwrap();
    let results = zk
        .transaction(|t| {
            t.create("/job/a", b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .check("/job", 1)
        })
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(zk.get_children("/job").unwrap(), vec!["a"]);
    zk.close();
    drop(server);
}
