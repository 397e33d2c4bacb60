//! [`LeaderLatch`]: leader election with Curator's `LeaderLatch` node layout
//! (`<path>/_c_<guid>-latch-<sequence>`, the participant id as data): the lowest
//! sequence leads, everyone else watches only the node before theirs.
//!
//! Leadership is claimed only after checking that the node's `ephemeralOwner` is this
//! client's session, and it is given up as soon as the session is in doubt (the
//! connection is lost: another participant may lead once the session expires); on
//! reconnection the latch looks again and may lead again. An expired session ends
//! the latch, unless the client renews sessions: then it joins again with the new
//! session.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! let latch = zk_recipes::LeaderLatch::new(&client, "/fleet/leader", "worker-7");
//! latch.start();
//! latch.await_leadership().await?;
//! // ... lead while latch.has_leadership() ...
//! latch.close().await;
//! # Ok(()) }
//! ```

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use zk_client::{Client, SessionState, StateChanges};
use zk_proto::ErrorCode;

use crate::contention::Line;
use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::protected::{
    create_protected, protection_prefix, remove_twins, sorted_by_sequence, CreatedNode, NodeGuard,
};
use crate::retry::with_retries;
use crate::task::Background;

/// The node name Curator's `LeaderLatch` uses.
pub const LATCH_NAME: &str = "latch-";

/// How `close` ends leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// Leadership ends without a change being published to `leadership()` watchers.
    Silent,
    /// Watchers see leadership go to `false`.
    NotifyLeader,
}

/// One participant in an election on a path.
#[derive(Debug)]
pub struct LeaderLatch {
    client: Client,
    dir: String,
    leader: watch::Receiver<bool>,
    publish: watch::Sender<bool>,
    task: Background<Option<CloseMode>>,
    ended: watch::Receiver<Option<Error>>,
    /// Our node's path, while we have one.
    ours: watch::Receiver<Option<String>>,
}

/// Leadership of a [`LeaderLatch`], handed out by [`LeaderLatch::lead`]: the lease it
/// is held under, and an explicit way to give it up. Giving it up (or dropping the
/// guard, which does so in the background) deletes this participant's node: the next
/// in line leads, and the latch rejoins at the end of the line. While the guard is
/// kept, leadership lasts as long as the latch keeps it (see
/// [`LatchLeadership::is_current`]).
#[derive(Debug)]
#[must_use = "leadership is given up when the guard is dropped"]
pub struct LatchLeadership {
    /// Our node while leadership is held (taken by `release`).
    node: Option<NodeGuard>,
    lease: Lease,
    /// The latch's leadership flag: cleared the moment leadership is given up, before
    /// the node goes (the latch's task would only learn it from the node's watch).
    leader: watch::Sender<bool>,
    ours: watch::Receiver<Option<String>>,
}

impl LatchLeadership {
    /// The session lease leadership is held under: Suspended on a lost connection
    /// (stop acting as the leader), Lost once the session expired.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Whether this participant still leads with the node it led with.
    pub fn is_current(&self) -> bool {
        let path = self.node.as_ref().map(NodeGuard::path);
        *self.leader.borrow() && self.ours.borrow().as_deref() == path
    }

    /// Gives leadership up: the latch stops claiming it at once, our node is deleted
    /// (the next in line leads) and the latch rejoins at the end of the line.
    pub async fn release(mut self) -> Result<()> {
        self.give_up();
        match self.node.take() {
            Some(node) => node.remove().await,
            None => Ok(()),
        }
    }

    /// Clears the latch's flag if this guard's node is still the one it leads with
    /// (a stale guard leaves a later leadership alone).
    fn give_up(&self) {
        let path = self.node.as_ref().map(NodeGuard::path);
        if path.is_some() && self.ours.borrow().as_deref() == path {
            self.leader
                .send_if_modified(|leading| std::mem::replace(leading, false));
        }
    }
}

impl Drop for LatchLeadership {
    fn drop(&mut self) {
        // Not leading from now on; the node goes in the background (NodeGuard).
        self.give_up();
    }
}

impl LeaderLatch {
    /// A participant in the election on `dir` as `id` (stored in the node, as
    /// Curator does); it joins when [`LeaderLatch::start`]ed.
    pub fn new(client: &Client, dir: &str, id: &str) -> LeaderLatch {
        let dir = dir.trim_end_matches('/').to_string();
        let (publish, leader) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(None);
        let run_client = client.clone();
        let run_dir = dir.clone();
        let data = id.as_bytes().to_vec();
        let run_publish = publish.clone();
        let (ours_tx, ours) = watch::channel(None);
        let task = Background::with_signal(None, Some(CloseMode::Silent), move |stopped| {
            run(
                run_client,
                run_dir,
                data,
                run_publish,
                stopped,
                ended_tx,
                ours_tx,
            )
        });
        LeaderLatch {
            client: client.clone(),
            dir,
            leader,
            publish,
            task,
            ended,
            ours,
        }
    }

    /// Waits until this participant leads and hands out the leadership as a guard
    /// ([`LatchLeadership`]), to give up explicitly (`release().await`) or by
    /// dropping it; fails as [`LeaderLatch::await_leadership`] does.
    pub async fn lead(&self) -> Result<LatchLeadership> {
        loop {
            self.await_leadership().await?;
            let path = self.ours.borrow().clone();
            if let (Some(path), true) = (path, self.has_leadership()) {
                return Ok(LatchLeadership {
                    node: Some(NodeGuard::new(&self.client, &path)),
                    lease: Lease::new(&self.client),
                    leader: self.publish.clone(),
                    ours: self.ours.clone(),
                });
            }
            tokio::task::yield_now().await;
        }
    }

    /// Joins the election in the background (again: nothing).
    pub fn start(&self) {
        self.task.start();
    }

    /// Whether this participant leads now.
    pub fn has_leadership(&self) -> bool {
        *self.leader.borrow()
    }

    /// Leadership as it changes (`true` while leading).
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// Waits until this participant leads; fails once the latch can never lead again,
    /// saying why: [`Error::Closed`] (the latch was closed), or the client's error
    /// (`SessionExpired` on a client that does not renew sessions, `AuthFailed`, or
    /// `Closed` for a closed client).
    pub async fn await_leadership(&self) -> Result<()> {
        let mut leader = self.leader.clone();
        let mut ended = self.ended.clone();
        loop {
            if *leader.borrow_and_update() {
                return Ok(());
            }
            if let Some(why) = ended.borrow_and_update().clone() {
                return Err(why);
            }
            tokio::select! {
                r = leader.changed() => if r.is_err() { return Err(Error::Closed) },
                r = ended.changed() => if r.is_err() { return Err(Error::Closed) },
            }
        }
    }

    /// [`LeaderLatch::await_leadership`] for at most `timeout`: whether it leads.
    pub async fn await_leadership_within(&self, timeout: Duration) -> Result<bool> {
        match tokio::time::timeout(timeout, self.await_leadership()).await {
            Ok(r) => r.map(|_| true),
            Err(_) => Ok(false),
        }
    }

    /// The leader's id (the participant whose node is first), `None` while nobody
    /// takes part (Curator's `getLeader`). Read from the servers now; for a
    /// participant's own state use [`LeaderLatch::has_leadership`].
    pub async fn leader(&self) -> Result<Option<String>> {
        loop {
            let Some(first) = self.line().members().await?.into_iter().next() else {
                return Ok(None);
            };
            let path = format!("{}/{first}", self.dir);
            match with_retries(&self.client, || self.client.get_data(&path)).await {
                Ok((data, _)) => return Ok(Some(String::from_utf8_lossy(&data).into_owned())),
                // The leader left between the two reads: look again.
                Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The participants' ids, leader first.
    pub async fn participants(&self) -> Result<Vec<String>> {
        self.line().ids().await
    }

    /// The line of participants' nodes.
    fn line(&self) -> Line<'_> {
        Line {
            client: &self.client,
            dir: &self.dir,
            names: &[LATCH_NAME],
        }
    }

    /// Leaves the election silently ([`CloseMode::Silent`]): leadership ends, the
    /// node is deleted; waits until done. Dropping a latch does the same in the
    /// background.
    pub async fn close(self) {
        self.close_with(CloseMode::Silent).await
    }

    /// Leaves the election, `mode` saying whether `leadership()` watchers see it end.
    pub async fn close_with(self, mode: CloseMode) {
        self.task.close_with(Some(mode)).await;
        if mode == CloseMode::NotifyLeader {
            // (Already false if the task published it: no second notification.)
            self.publish
                .send_if_modified(|l| std::mem::replace(l, false));
        }
    }
}

/// What ended a wait in the election loop.
enum Woke {
    /// Look at the election again.
    Look,
    /// The connection is in doubt: give up leadership until it is back.
    Suspended,
    /// The session is over: the latch is done.
    Lost,
    /// Closed by its owner.
    Closed(CloseMode),
}

async fn run(
    client: Client,
    dir: String,
    data: Vec<u8>,
    publish: watch::Sender<bool>,
    mut stopped: watch::Receiver<Option<CloseMode>>,
    ended: watch::Sender<Option<Error>>,
    ours_tx: watch::Sender<Option<String>>,
) {
    let mut prefix = protection_prefix();
    let mut session = client.session_id();
    let renews = client.renews_expired_sessions();
    let mut states = client.state_changes();
    let mut node: Option<CreatedNode> = None;
    let set = |leading: bool| {
        publish.send_if_modified(|l| std::mem::replace(l, leading) != leading);
    };
    let close_mode = loop {
        if let Some(mode) = *stopped.borrow() {
            break Some(mode);
        }
        let state = states.current();
        match state {
            SessionState::Expired if renews => {
                set(false);
                match wait(&mut states, &mut stopped, None, renews).await {
                    Woke::Closed(mode) => break Some(mode),
                    Woke::Lost => break None,
                    _ => continue,
                }
            }
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                break None;
            }
            SessionState::Connected => {}
            _ => {
                set(false);
                match wait(&mut states, &mut stopped, None, renews).await {
                    Woke::Closed(mode) => break Some(mode),
                    Woke::Lost => break None,
                    _ => continue,
                }
            }
        }
        if client.session_id() != session {
            // A new session (the old one expired): our node went with the old one.
            session = client.session_id();
            prefix = protection_prefix();
            node = None;
            ours_tx.send_replace(None);
        }
        if node.is_none() {
            match create_protected(&client, &dir, &prefix, LATCH_NAME, &data).await {
                Ok(created) => {
                    ours_tx.send_replace(Some(created.path.clone()));
                    node = Some(created)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "latch: could not create our node");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some(ours) = node.clone() else { continue };
        let woke = match look(&client, &dir, &ours, session).await {
            Ok(Position::Lead(watch_own)) => {
                set(true);
                let woke = wait(&mut states, &mut stopped, Some(watch_own), renews).await;
                // Whatever woke us (our node changed or went, the connection wavered),
                // leadership is not certain any more: give it up before looking again.
                set(false);
                woke
            }
            Ok(Position::Behind(watch_predecessor)) => {
                set(false);
                wait(&mut states, &mut stopped, Some(watch_predecessor), renews).await
            }
            Ok(Position::Gone) => {
                set(false);
                node = None;
                ours_tx.send_replace(None);
                Woke::Look
            }
            Ok(Position::Again) => Woke::Look,
            Err(_) => {
                // Cannot see the election: do not claim to lead it.
                set(false);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Woke::Look
            }
        };
        match woke {
            Woke::Look => {}
            Woke::Suspended => set(false),
            Woke::Lost => break None,
            Woke::Closed(mode) => break Some(mode),
        }
    };
    if close_mode != Some(CloseMode::Silent) {
        set(false);
    } else {
        // Silent: no published change, but this participant no longer leads.
        publish.send_if_modified(|l| {
            *l = false;
            false
        });
    }
    if let Some(ours) = node {
        let _ = with_retries(&client, || client.delete(&ours.path, None)).await;
    }
    ours_tx.send_replace(None);
    ended.send_replace(Some(match close_mode {
        Some(_) => Error::Closed,
        None => match client.state() {
            SessionState::Expired => Error::Client(zk_client::Error::SessionExpired),
            SessionState::AuthFailed => Error::Client(zk_client::Error::AuthFailed),
            _ => Error::Client(zk_client::Error::Closed),
        },
    }));
}

/// Where our node stands, with the one-shot watch to wait on.
enum Position {
    /// First, and ours: watching our own node (its deletion ends leadership).
    Lead(zk_client::OneshotWatcher),
    /// Not first: watching the node before ours.
    Behind(zk_client::OneshotWatcher),
    /// Our node is not there (or not ours): make another.
    Gone,
    /// The node before ours went meanwhile: look again.
    Again,
}

async fn look(
    client: &Client,
    dir: &str,
    ours: &CreatedNode,
    session: i64,
) -> std::result::Result<Position, zk_client::Error> {
    let children = client.get_children(dir).await?;
    match remove_twins(client, dir, &children, ours.name()).await {
        Ok(true) => return Ok(Position::Again),
        Ok(false) => {}
        Err(crate::Error::Client(e)) => return Err(e),
        Err(_) => return Ok(Position::Again),
    }
    let sorted = sorted_by_sequence(children, LATCH_NAME);
    let Some(index) = sorted.iter().position(|c| c == ours.name()) else {
        return Ok(Position::Gone);
    };
    if index == 0 {
        // Claim only what our own session holds.
        let (read, watcher) = client.exists_and_watch(&ours.path);
        return Ok(match read.await? {
            Some(stat) if stat.ephemeral_owner == session => Position::Lead(watcher),
            _ => Position::Gone,
        });
    }
    let predecessor = format!("{dir}/{}", sorted[index - 1]);
    let (read, watcher) = client.exists_and_watch(&predecessor);
    Ok(match read.await? {
        Some(_) => Position::Behind(watcher),
        // Gone between the listing and the watch: look again at once.
        None => Position::Again,
    })
}

async fn wait(
    states: &mut StateChanges,
    stopped: &mut watch::Receiver<Option<CloseMode>>,
    watcher: Option<zk_client::OneshotWatcher>,
    renews: bool,
) -> Woke {
    let watched = async {
        match watcher {
            Some(w) => {
                let _ = w.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = watched => Woke::Look,
        changed = states.next() => {
            if changed.is_none() {
                return Woke::Lost;
            }
            match states.current() {
                SessionState::Connected => Woke::Look,
                SessionState::Expired if renews => Woke::Suspended,
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => Woke::Lost,
                _ => Woke::Suspended,
            }
        }
        changed = stopped.changed() => match (changed, *stopped.borrow()) {
            (Ok(()), Some(mode)) => Woke::Closed(mode),
            _ => Woke::Closed(CloseMode::Silent),
        },
    }
}
