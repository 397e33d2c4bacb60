//! Parents created on the way, `ensure_path` and `delete_recursive`, against our
//! server, our ensemble and Apache ZooKeeper 3.8: what a kazoo (`makepath`,
//! `ensure_path`, `delete(recursive=True)`) or Curator (`creatingParentsIfNeeded`,
//! `deletingChildrenIfNeeded`) user expects.

#[macro_use]
mod common;

use common::Target;
use zk_client::{Acl, Client, CreateMode, ErrorCode, Id, Perms};

async fn client(target: &Target) -> Client {
    Client::connect(&target.connect_string())
        .await
        .expect("connect")
}

async fn parents_and_recursive_delete(target: Target) {
    let zk = client(&target).await;
    // Without parents: NoNode, as ZooKeeper answers.
    let missing = zk.create("/p/a/b").await;
    assert_eq!(missing.unwrap_err().code(), Some(ErrorCode::NoNode));
    // With parents: persistent, open, empty; the node itself as asked.
    let made = zk
        .create("/p/a/b/n-")
        .data(b"x")
        .mode(CreateMode::EphemeralSequential)
        .parents(true)
        .await
        .unwrap();
    assert_eq!(made, "/p/a/b/n-0000000000");
    for parent in ["/p", "/p/a", "/p/a/b"] {
        let (data, stat) = zk.get_data(parent).await.unwrap();
        assert!(data.is_empty(), "{parent}");
        assert_eq!(stat.ephemeral_owner, 0, "{parent} is persistent");
        assert_eq!(zk.get_acl(parent).await.unwrap().0, Acl::open_unsafe());
    }
    // Parents get their own ACL, not the node's: a node only readable by anyone is
    // made under parents that stay open (else its creator could not create it).
    let read_only = [Acl::new(Perms::READ, Id::new("world", "anyone"))];
    zk.create("/q/r/leaf")
        .acl(&read_only)
        .parents(true)
        .await
        .unwrap();
    assert_eq!(zk.get_acl("/q/r").await.unwrap().0, Acl::open_unsafe());
    assert_eq!(zk.get_acl("/q/r/leaf").await.unwrap().0, read_only);
    // An existing node is still NodeExists, parents or not; ensure_path is not.
    let again = zk.create("/q/r/leaf").parents(true).await;
    assert_eq!(again.unwrap_err().code(), Some(ErrorCode::NodeExists));
    zk.ensure_path("/q/r/leaf").await.unwrap();
    zk.ensure_path("/s/t/u").await.unwrap();
    assert!(zk.exists("/s/t/u").await.unwrap().is_some());
    // Container parents are containers: the server reaps them once emptied (ours
    // checks every 200 ms in tests; Apache every minute, so only ours is waited on).
    zk.create("/box/item")
        .container_parents(true)
        .await
        .unwrap();
    assert!(zk.exists("/box").await.unwrap().is_some());
    zk.delete("/box/item", None).await.unwrap();
    if !matches!(target, Target::Apache(_)) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while zk.exists("/box").await.unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "/box was made a container: reaped once emptied"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    // A subtree, three levels deep and a few wide.
    for path in ["/tree/a/1", "/tree/a/2", "/tree/b/1/x", "/tree/c"] {
        zk.create(path).data(b"v").parents(true).await.unwrap();
    }
    let top = zk.exists("/tree").await.unwrap().unwrap();
    // A stale version is refused before anything is deleted.
    let stale = zk.delete_recursive("/tree", Some(top.version + 1)).await;
    assert_eq!(stale.unwrap_err().code(), Some(ErrorCode::BadVersion));
    assert!(zk.exists("/tree/b/1/x").await.unwrap().is_some());
    // The right version: everything goes.
    zk.delete_recursive("/tree", Some(top.version))
        .await
        .unwrap();
    assert!(zk.exists("/tree").await.unwrap().is_none());
    // A missing top: NoNode.
    let gone = zk.delete_recursive("/tree", None).await;
    assert_eq!(gone.unwrap_err().code(), Some(ErrorCode::NoNode));
    // A leaf alone is deleted like `delete`.
    zk.delete_recursive("/s/t/u", None).await.unwrap();
    assert!(zk.exists("/s/t/u").await.unwrap().is_none());
    zk.close().await;
}
against_both!(parents, parents_and_recursive_delete);
