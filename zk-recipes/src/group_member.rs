//! [`GroupMember`]: membership of a group (Curator's `GroupMember`): this member is an
//! ephemeral `<dir>/<id>` node carrying its payload, kept there — recreated if it is
//! deleted, and after a session expiry on a client that renews sessions — until the
//! member leaves; the current members are mirrored in memory (a [`TreeCache`] of the
//! group, one level deep), as a map and as a stream of joins, updates and
//! departures.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use futures::StreamExt;
//! let me = zk_recipes::GroupMember::new(&client, "/fleet/members", "worker-7", b"10.0.0.7:80");
//! me.start();
//! let mut changes = me.changes();
//! while let Some(change) = changes.next().await {
//!     println!("{change:?}; now {:?}", me.members().keys().collect::<Vec<_>>());
//! #   break; // (our own join)
//! }
//! me.close().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::watch;
use zk_client::{Client, CreateMode};

use crate::error::Result;
use crate::kept_node::{Foreign, KeptNode};
use crate::task::Background;
use crate::tree_cache::{children, follow, Tree, TreeCache};

/// The group as seen now: member id → payload.
pub type Members = BTreeMap<String, Vec<u8>>;

/// A change of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member joined, with its payload.
    Joined(String, Vec<u8>),
    /// A member's payload changed.
    Updated(String, Vec<u8>),
    /// A member left (or its session ended).
    Left(String),
}

/// This process's membership of a group: its node (a kept ephemeral) and a mirror
/// of the group (a tree cache of its children).
#[derive(Debug)]
pub struct GroupMember {
    id: String,
    node: KeptNode,
    cache: TreeCache,
    view: watch::Receiver<Option<Members>>,
    /// Turns the mirror's events into the members' view.
    task: Background,
}

impl GroupMember {
    /// Membership of the group at `dir` as `id` with `payload`, kept in the background
    /// once [`GroupMember::start`]ed, until [`GroupMember::close`]. Another session's
    /// node of the same id (ours before an expiry, or a duplicate id) is waited out.
    pub fn new(client: &Client, dir: &str, id: &str, payload: &[u8]) -> GroupMember {
        let dir = dir.trim_end_matches('/').to_string();
        let node = KeptNode::new(
            client,
            &format!("{dir}/{id}"),
            CreateMode::Ephemeral,
            payload,
            Foreign::WaitOut,
        );
        let cache = TreeCache::builder(client, &dir).max_depth(1).build();
        let (view_tx, view) = watch::channel(None);
        let task = follow(&cache, move |tree| {
            let members = members_in(tree, &dir);
            view_tx.send_if_modified(|v| {
                let changed = v.as_ref() != Some(&members);
                *v = Some(members);
                changed
            });
        });
        GroupMember {
            id: id.to_string(),
            node,
            cache,
            view,
            task,
        }
    }

    /// Joins: keeps the node and mirrors the group in the background (again:
    /// nothing).
    pub fn start(&self) {
        self.task.start();
        self.cache.start();
        self.node.start();
    }

    /// The members as last seen (empty until the first read).
    pub fn members(&self) -> Members {
        self.view.borrow().clone().unwrap_or_default()
    }

    /// Waits until the group has been read with this member in it; the members then.
    pub async fn ready(&self) -> Members {
        let mut view = self.view.clone();
        let seen = view
            .wait_for(|v| v.as_ref().is_some_and(|m| m.contains_key(&self.id)))
            .await
            .map(|v| v.clone());
        match seen {
            Ok(members) => members.unwrap_or_default(),
            Err(_) => self.members(),
        }
    }

    /// The group as it changes: the whole map after each change.
    pub fn view(&self) -> watch::Receiver<Option<Members>> {
        self.view.clone()
    }

    /// Joins, updates and departures from now on (between two looks at the group,
    /// the net change).
    pub fn changes(&self) -> BoxStream<'static, MemberEvent> {
        let view = self.view.clone();
        let start = self.members();
        futures::stream::unfold((view, start), |(mut view, before)| async move {
            view.changed().await.ok()?;
            let now = view.borrow_and_update().clone().unwrap_or_default();
            let events = diff(&before, &now);
            Some((futures::stream::iter(events), (view, now)))
        })
        .flatten()
        .boxed()
    }

    /// Changes this member's payload (kept across rejoins).
    pub async fn set_payload(&self, payload: &[u8]) -> Result<()> {
        self.node.set_data(payload).await
    }

    /// Leaves the group: the node is deleted, the mirror stops; waits until done.
    /// Dropping a `GroupMember` leaves in the background.
    pub async fn close(self) {
        self.node.close().await;
        self.task.close().await;
        self.cache.close().await;
    }
}

/// The members in `tree` (a mirror of `dir` one level deep): id → payload.
fn members_in(tree: &Tree, dir: &str) -> Members {
    children(tree, dir)
        .map(|(id, node)| (id.to_string(), node.data.clone()))
        .collect()
}

/// The events that take `before` to `now`.
fn diff(before: &Members, now: &Members) -> Vec<MemberEvent> {
    let mut events = Vec::new();
    for (id, payload) in now {
        match before.get(id) {
            None => events.push(MemberEvent::Joined(id.clone(), payload.clone())),
            Some(old) if old != payload => {
                events.push(MemberEvent::Updated(id.clone(), payload.clone()))
            }
            Some(_) => {}
        }
    }
    for id in before.keys().filter(|id| !now.contains_key(*id)) {
        events.push(MemberEvent::Left(id.clone()));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_names_joins_updates_and_departures() {
        let before: Members = [("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())].into();
        let now: Members = [("b".into(), b"3".to_vec()), ("c".into(), b"4".to_vec())].into();
        assert_eq!(
            diff(&before, &now),
            vec![
                MemberEvent::Updated("b".into(), b"3".to_vec()),
                MemberEvent::Joined("c".into(), b"4".to_vec()),
                MemberEvent::Left("a".into()),
            ]
        );
    }
}
