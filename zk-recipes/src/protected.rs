//! Protected ephemeral-sequential nodes, as Curator's `withProtection()` makes them:
//! the name starts with `_c_<guid>-`, so after a create whose answer was lost the
//! recipe looks for its GUID among the children instead of creating a second node
//! (which would be orphaned until the session ends). Parents are created as
//! containers (the server deletes them once empty), and nodes are ordered by their
//! sequence suffix, as Curator's `StandardLockInternalsDriver` orders them.

use zk_client::{Client, CreateMode, Stat};
use zk_proto::ErrorCode;

use crate::error::Result;
use crate::retry::with_retries;

/// A node this recipe created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedNode {
    /// Its full path.
    pub path: String,
    /// Its Stat at creation.
    pub stat: Stat,
}

impl CreatedNode {
    /// Its name (last path component).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// A fresh protection prefix: `_c_<guid>-`.
pub fn protection_prefix() -> String {
    format!("_c_{}-", uuid::Uuid::new_v4())
}

/// Creates `dir` and its ancestors as containers where missing.
pub async fn ensure_containers(client: &Client, dir: &str) -> Result<()> {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        return Ok(());
    }
    let made = client
        .create(dir)
        .mode(CreateMode::Container)
        .container_parents(true)
        .await;
    match made {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(ErrorCode::NodeExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates `dir/<prefix><name><sequence>` ephemeral-sequential with `data`, creating
/// missing parents as containers; after a lost answer, finds the node by `prefix`
/// rather than creating another.
pub async fn create_protected(
    client: &Client,
    dir: &str,
    prefix: &str,
    name: &str,
    data: &[u8],
) -> Result<CreatedNode> {
    create_protected_as(
        client,
        dir,
        prefix,
        name,
        data,
        CreateMode::EphemeralSequential,
    )
    .await
}

/// [`create_protected`] with another sequential `mode` (persistent-sequential).
pub async fn create_protected_as(
    client: &Client,
    dir: &str,
    prefix: &str,
    name: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<CreatedNode> {
    let path = format!("{dir}/{prefix}{name}");
    let mut schedule = client.retry_policy().start();
    loop {
        let created = client
            .create(&path)
            .data(data)
            .mode(mode)
            .container_parents(true)
            .with_stat()
            .await;
        match created {
            Ok((path, stat)) => return Ok(CreatedNode { path, stat }),
            Err(e) if e.is_retryable() => {
                let Some(delay) = schedule.next_delay() else {
                    return Err(e.into());
                };
                tokio::time::sleep(delay).await;
                // Did it happen? Our GUID says.
                if let Some(found) = find_protected(client, dir, prefix).await? {
                    return Ok(found);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Our node under `dir`, by its protection prefix, once the connection is back.
pub async fn find_protected(
    client: &Client,
    dir: &str,
    prefix: &str,
) -> Result<Option<CreatedNode>> {
    let children = with_retries(client, || client.get_children(dir)).await;
    let children = match children {
        Ok(c) => c,
        Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(name) = children.into_iter().find(|c| c.starts_with(prefix)) else {
        return Ok(None);
    };
    let path = format!("{dir}/{name}");
    match with_retries(client, || client.exists(&path)).await? {
        Some(stat) => Ok(Some(CreatedNode { path, stat })),
        None => Ok(None),
    }
}

/// The protection prefix (`_c_<guid>-`) a node name starts with, if any.
pub fn protection_prefix_of(name: &str) -> Option<&str> {
    const LEN: usize = 3 + 36 + 1;
    (name.starts_with("_c_") && name.len() > LEN && name.as_bytes()[LEN - 1] == b'-')
        .then(|| &name[..LEN])
}

/// Deletes our node's *twins* under `dir`: nodes among `children` with our node's
/// protection prefix that are not our node. A create whose answer was lost can be
/// applied after we looked for it and created again (it was still on its way through
/// a leader change); its node is ours — no one else has the GUID — and would stand in
/// our own way (or hold a place) until the session ends. Whether any was removed (the
/// caller then lists again).
pub(crate) async fn remove_twins(
    client: &Client,
    dir: &str,
    children: &[String],
    ours: &str,
) -> Result<bool> {
    let Some(prefix) = protection_prefix_of(ours) else {
        return Ok(false);
    };
    let mut removed = false;
    for twin in children
        .iter()
        .filter(|c| c.starts_with(prefix) && *c != ours)
    {
        tracing::warn!(%dir, %twin, %ours, "removing a second node of one create (its answer was lost)");
        match with_retries(client, || client.delete(&format!("{dir}/{twin}"), None)).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
        removed = true;
    }
    Ok(removed)
}

/// The sequence suffix of a node name after the last `name` in it (Curator's
/// `fixForSorting`), as the number ZooKeeper appended.
pub fn sequence_of(node: &str, name: &str) -> Option<u64> {
    let at = node.rfind(name)?;
    node[at + name.len()..].parse().ok()
}

/// `children` that carry `name`, ordered by their sequence (Curator's order).
pub fn sorted_by_sequence(children: Vec<String>, name: &str) -> Vec<String> {
    sorted_by_sequence_of(children, &[name])
}

/// `children` that carry any of `names`, ordered by their sequence (the order of
/// Curator's read-write lock, whose readers and writers share one line).
pub fn sorted_by_sequence_of(children: Vec<String>, names: &[&str]) -> Vec<String> {
    let mut named: Vec<(u64, String)> = children
        .into_iter()
        .filter_map(|c| {
            let sequence = names.iter().find_map(|name| sequence_of(&c, name))?;
            Some((sequence, c))
        })
        .collect();
    named.sort();
    named.into_iter().map(|(_, c)| c).collect()
}

/// Deletes a node this recipe created for something that did not finish (an acquire
/// cancelled, timed out or failed; a lease dropped unreleased): what is dropped leaves
/// no node behind.
#[derive(Debug)]
pub(crate) struct NodeGuard {
    client: Client,
    path: Option<String>,
}

impl NodeGuard {
    /// Guards `path`.
    pub(crate) fn new(client: &Client, path: &str) -> NodeGuard {
        NodeGuard {
            client: client.clone(),
            path: Some(path.to_string()),
        }
    }

    /// The node's path (empty once kept or removed).
    pub(crate) fn path(&self) -> &str {
        self.path.as_deref().unwrap_or_default()
    }

    /// The node stays: it is someone's now.
    pub(crate) fn keep(mut self) {
        self.path = None;
    }

    /// Deletes the node now (already gone is fine), so the caller returns with
    /// nothing left behind.
    pub(crate) async fn remove(mut self) -> Result<()> {
        let Some(path) = self.path.take() else {
            return Ok(());
        };
        match with_retries(&self.client, || self.client.delete(&path, None)).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        let client = self.client.clone();
        // Drop cannot wait; a runtime is there when a recipe future is dropped.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = with_retries(&client, || client.delete(&path, None)).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protection_prefix_is_read_back_from_a_name() {
        let prefix = protection_prefix();
        let name = format!("{prefix}lock-0000000001");
        assert_eq!(protection_prefix_of(&name), Some(prefix.as_str()));
        assert_eq!(protection_prefix_of("lock-0000000001"), None);
        assert_eq!(protection_prefix_of("_c_short-lock-1"), None);
    }

    /// A create applied twice (its first answer lost): the earlier twin goes, ours and
    /// everyone else's stay.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twins_of_our_node_are_removed_and_nothing_else() {
        let server = zk_server::testing::TestingServer::start().await.unwrap();
        let zk = Client::connect(&server.connect_string()).await.unwrap();
        let prefix = protection_prefix();
        let mut made = Vec::new();
        for p in [
            prefix.as_str(),
            prefix.as_str(),
            "_c_00000000-0000-0000-0000-000000000000-",
        ] {
            let node = create_protected(&zk, "/twins", p, "lock-", b"")
                .await
                .unwrap();
            made.push(node.name().to_string());
        }
        let children = zk.get_children("/twins").await.unwrap();
        assert_eq!(children.len(), 3);
        assert!(remove_twins(&zk, "/twins", &children, &made[1])
            .await
            .unwrap());
        let mut left = zk.get_children("/twins").await.unwrap();
        left.sort();
        let mut want = vec![made[1].clone(), made[2].clone()];
        want.sort();
        assert_eq!(left, want);
        assert!(!remove_twins(&zk, "/twins", &left, &made[1]).await.unwrap());
        zk.close().await;
    }

    #[test]
    fn nodes_are_ordered_by_their_sequence_whatever_their_prefix() {
        let children = vec![
            "_c_bbb-lock-0000000012".to_string(),
            "_c_aaa-lock-0000000003".to_string(),
            "lock-0000000007".to_string(),
            "unrelated".to_string(),
        ];
        assert_eq!(
            sorted_by_sequence(children, "lock-"),
            vec![
                "_c_aaa-lock-0000000003",
                "lock-0000000007",
                "_c_bbb-lock-0000000012"
            ]
        );
        assert_eq!(sequence_of("_c_x-lock-0000000042", "lock-"), Some(42));
    }

    #[test]
    fn protection_prefixes_are_curators_and_unique() {
        let (a, b) = (protection_prefix(), protection_prefix());
        assert!(a.starts_with("_c_") && a.ends_with('-') && a.len() == 3 + 36 + 1);
        assert_ne!(a, b);
    }
}
