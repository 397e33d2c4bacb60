//! [`GroupMember`]: membership of a group (Curator's `GroupMember`): this member is an
//! ephemeral `<dir>/<id>` node carrying its payload, kept there — recreated if it is
//! deleted, and after a session expiry on a client that renews sessions — until the
//! member leaves; the current members are mirrored in memory (one persistent
//! recursive watch on the group, re-read after every change and reconnection), as a
//! map and as a stream of joins, updates and departures.
//!
//! ```no_run
//! # async fn demo(client: zk_client::Client) -> zk_recipes::Result<()> {
//! use futures::StreamExt;
//! let me = zk_recipes::GroupMember::join(&client, "/fleet/members", "worker-7", b"10.0.0.7:80");
//! let mut changes = me.changes();
//! while let Some(change) = changes.next().await {
//!     println!("{change:?}; now {:?}", me.members().keys().collect::<Vec<_>>());
//! }
//! me.leave().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{AddWatchMode, Client, CreateMode, SessionState};
use zk_proto::{ErrorCode, EventType};

use crate::error::Result;
use crate::lease::client_is_over;
use crate::protected::ensure_containers;

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

/// This process's membership of a group.
#[derive(Debug)]
pub struct GroupMember {
    client: Client,
    path: String,
    payload: Arc<Mutex<Vec<u8>>>,
    view: watch::Receiver<Option<Members>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl GroupMember {
    /// Joins the group at `dir` as `id` with `payload`; the membership is kept in the
    /// background until [`GroupMember::leave`].
    pub fn join(client: &Client, dir: &str, id: &str, payload: &[u8]) -> GroupMember {
        let dir = dir.trim_end_matches('/').to_string();
        let path = format!("{dir}/{id}");
        let payload = Arc::new(Mutex::new(payload.to_vec()));
        let (view_tx, view) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep_membership(
            client.clone(),
            dir,
            path.clone(),
            payload.clone(),
            view_tx,
            stopped,
        ));
        GroupMember {
            client: client.clone(),
            path,
            payload,
            view,
            stop,
            task: Some(task),
        }
    }

    /// The members as last seen (empty until the first read).
    pub fn members(&self) -> Members {
        self.view.borrow().clone().unwrap_or_default()
    }

    /// Waits until the group has been read once (this member in it); the members then.
    pub async fn ready(&self) -> Members {
        let mut view = self.view.clone();
        let name = self.path.rsplit('/').next().unwrap_or_default().to_string();
        let seen = view
            .wait_for(|v| v.as_ref().is_some_and(|m| m.contains_key(&name)))
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
        if let Ok(mut p) = self.payload.lock() {
            *p = payload.to_vec();
        }
        match self.client.set_data(&self.path, payload, None).await {
            Ok(_) => Ok(()),
            // Not there right now: the keeper recreates it with the new payload.
            Err(e) if e.code() == Some(ErrorCode::NoNode) || e.is_retryable() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Leaves the group: the node is deleted, the mirror stops.
    pub async fn leave(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
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

/// Keeps our node there and the mirror current until stopped (or the client ends).
async fn keep_membership(
    client: Client,
    dir: String,
    path: String,
    payload: Arc<Mutex<Vec<u8>>>,
    view: watch::Sender<Option<Members>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut states = client.state_changes();
    'session: loop {
        // Connected (on a renewing client, possibly with a new session).
        let connected = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break 'session,
            s = states.wait_for(|s| s == SessionState::Connected || client_is_over(&client, s)) => s,
        };
        match connected {
            Some(SessionState::Connected) => {}
            _ => break 'session,
        }
        let session = client.session_id();
        let mut events = match client
            .add_watch(&dir, AddWatchMode::PersistentRecursive)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, %dir, "group: cannot watch the group yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Look, then wait for a change under the group or a change of the session.
        loop {
            let data = payload.lock().map(|p| p.clone()).unwrap_or_default();
            let looked = async {
                ensure_member(&client, &dir, &path, &data).await?;
                read_group(&client, &dir).await
            };
            match looked.await {
                Ok(members) => {
                    view.send_if_modified(|v| {
                        let changed = v.as_ref() != Some(&members);
                        *v = Some(members);
                        changed
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, %dir, "group: look failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if client.session_id() != session || !client.state().is_connected() {
                        continue 'session;
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => break 'session,
                event = events.next() => match event {
                    // A change under the group: look again.
                    Some(e) if e.event_type != EventType::None => {}
                    // The watch ended with the session.
                    _ => continue 'session,
                },
                changed = states.next() => {
                    if changed.is_none() {
                        break 'session;
                    }
                    // Reconnected: changes made meanwhile sent no event; look again.
                    // Anything else: wait for the connection (or a new session).
                    if states.current() != SessionState::Connected || client.session_id() != session {
                        continue 'session;
                    }
                }
            }
        }
    }
    let _ = client
        .remove_watches(&dir, zk_proto::WatcherType::Any)
        .await;
    match client.get_data(&path).await {
        Ok((_, stat)) if stat.ephemeral_owner == client.session_id() => {
            let _ = client.delete(&path, None).await;
        }
        _ => {}
    }
    view.send_replace(None);
}

/// Our node, created if missing. A node of our id owned by another session (ours
/// before an expiry, or a duplicate id) is waited out: it goes with its session.
async fn ensure_member(client: &Client, dir: &str, path: &str, payload: &[u8]) -> Result<()> {
    match client.exists(path).await? {
        // Ours, or another session's: that one goes with its session, and the
        // group's watch says so (then we look, and create ours).
        Some(_) => Ok(()),
        None => {
            match client
                .create(path)
                .data(payload)
                .mode(CreateMode::Ephemeral)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => Ok(()),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                    ensure_containers(client, dir).await?;
                    Err(e.into())
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Every member and its payload.
async fn read_group(client: &Client, dir: &str) -> Result<Members> {
    let children = match client.get_children(dir).await {
        Ok(c) => c,
        Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(Members::new()),
        Err(e) => return Err(e.into()),
    };
    let mut members = Members::new();
    for id in children {
        match client.get_data(&format!("{dir}/{id}")).await {
            Ok((data, _)) => {
                members.insert(id, data);
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(members)
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
