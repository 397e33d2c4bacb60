//! A node kept in place until closed, the part under [`PersistentNode`], a
//! discovery registration and a group membership: made as soon as the client is
//! connected, made again if deleted, after a reconnection that finds it gone and after
//! a session expiry on a client that renews sessions; its data put back if an update
//! was lost. Sequential nodes carry a protection GUID, so a create retried after a
//! lost answer finds its own node.
//!
//! A node at the path that is not ours (another session's ephemeral, or a persistent
//! node when we keep an ephemeral) is either taken over (its data set to ours, as
//! Curator's `PersistentNode` does) or waited out (it goes with its session), as the
//! owner chooses. Data is written only when the node holds something else than the
//! latest data, and then only over the version read, so older data is never put
//! back over an update that raced with it.
//!
//! [`PersistentNode`]: crate::PersistentNode

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{watch, Notify};
use zk_client::{Client, CreateMode, SessionState};
use zk_proto::{ErrorCode, EventType, Stat};

use crate::error::Result;
use crate::lease::client_is_over;
use crate::protected::{create_protected_as, find_protected, protection_prefix};
use crate::retry::is_transient;
use crate::task::Background;

/// What to do with a node at our path that is not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Foreign {
    /// Keep it, with our data.
    TakeOver,
    /// Wait until it goes (with its session), then make ours.
    WaitOut,
}

/// One node kept by a background task.
#[derive(Debug)]
pub(crate) struct KeptNode {
    client: Client,
    data: Arc<Mutex<Vec<u8>>>,
    /// The node's path while it is there, ours, with our latest data.
    actual: watch::Receiver<Option<String>>,
    /// Asks the keeper to look at the node again (new data it could not write).
    wake: Arc<Notify>,
    task: Background,
}

impl KeptNode {
    /// A node at `path` (for sequential modes, the name's prefix) of `mode` with
    /// `data`, kept once started.
    pub(crate) fn new(
        client: &Client,
        path: &str,
        mode: CreateMode,
        data: &[u8],
        foreign: Foreign,
    ) -> KeptNode {
        let data = Arc::new(Mutex::new(data.to_vec()));
        let (actual_tx, actual) = watch::channel(None);
        let wake = Arc::new(Notify::new());
        let keeper = Keeper {
            wake: wake.clone(),
            client: client.clone(),
            path: path.to_string(),
            mode,
            foreign,
            data: data.clone(),
            actual: actual_tx,
            prefix: protection_prefix(),
        };
        KeptNode {
            client: client.clone(),
            data,
            actual,
            wake,
            task: Background::new(move |stopped| keeper.run(stopped)),
        }
    }

    /// Starts keeping the node (again: nothing).
    pub(crate) fn start(&self) {
        self.task.start();
    }

    /// The node's path while it is there with our data (as far as the keeper knows).
    pub(crate) fn actual_path(&self) -> Option<String> {
        self.actual.borrow().clone()
    }

    /// Waits at most `timeout` for the node to be there with our data: whether it is.
    pub(crate) async fn wait_made(&self, timeout: Duration) -> bool {
        let mut actual = self.actual.clone();
        tokio::time::timeout(timeout, actual.wait_for(|a| a.is_some()))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Changes the node's data: now, or (without a connection, or while the node is
    /// not there) when the keeper next makes or checks it.
    pub(crate) async fn set_data(&self, data: &[u8]) -> Result<()> {
        *self.data.lock().unwrap_or_else(PoisonError::into_inner) = data.to_vec();
        let Some(path) = self.actual_path() else {
            // Being made (or waited out): the keeper looks again and writes it.
            self.wake.notify_one();
            return Ok(());
        };
        match self.client.set_data(&path, data, None).await {
            Ok(_) => Ok(()),
            // Gone or cut off: the keeper writes it when it makes or checks the node.
            Err(e) if e.code() == Some(ErrorCode::NoNode) || is_transient(&self.client, &e) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stops keeping the node and deletes it (if it is ours); waits until done.
    /// Dropping a kept node does the same in the background.
    pub(crate) async fn close(self) {
        self.task.close().await
    }
}

struct Keeper {
    client: Client,
    path: String,
    mode: CreateMode,
    foreign: Foreign,
    data: Arc<Mutex<Vec<u8>>>,
    actual: watch::Sender<Option<String>>,
    /// Set when data changed that the owner could not write itself.
    wake: Arc<Notify>,
    /// The protection prefix of a sequential node (a fresh one per session).
    prefix: String,
}

impl Keeper {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut states = self.client.state_changes();
        let mut session = self.client.session_id();
        loop {
            let connected = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                s = states.wait_for(|s| s == SessionState::Connected || client_is_over(&self.client, s)) => s,
            };
            if !matches!(connected, Some(SessionState::Connected)) {
                break;
            }
            if self.client.session_id() != session {
                // A new session: an ephemeral of the old one is gone; a sequential
                // node is looked for under a fresh GUID.
                session = self.client.session_id();
                if self.mode.is_sequential() {
                    self.actual.send_replace(None);
                    self.prefix = protection_prefix();
                }
            }
            let path = match self.ensure().await {
                Ok(Some(path)) => {
                    self.actual.send_replace(Some(path.clone()));
                    path
                }
                // Someone else's, waited out: watch it go.
                Ok(None) => {
                    self.actual.send_replace(None);
                    self.path.clone()
                }
                Err(e) => {
                    tracing::debug!(error = %e, path = %self.path, "kept node: not made yet");
                    self.actual.send_replace(None);
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            // Wait for it to change or go, the connection to change, or the close.
            let (read, changed) = self.client.exists_and_watch(&path);
            match read.await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.actual.send_replace(None);
                    continue;
                }
                Err(_) => continue,
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                event = changed => {
                    if matches!(event, Ok(ref e) if e.event_type == EventType::NodeDeleted) {
                        self.actual.send_replace(None);
                    }
                }
                _ = states.next() => {}
                // New data to write: look again (ensure writes it over what is there).
                _ = self.wake.notified() => {}
            }
        }
        self.remove().await;
        self.actual.send_replace(None);
    }

    fn wanted(&self) -> Vec<u8> {
        self.data
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the node found at our path is ours to keep.
    fn is_ours(&self, stat: &Stat) -> bool {
        if self.mode.is_ephemeral() {
            stat.ephemeral_owner == self.client.session_id()
        } else {
            stat.ephemeral_owner == 0 || self.foreign == Foreign::TakeOver
        }
    }

    /// Makes the node, or finds it: its path when it is ours with our latest data,
    /// `None` when someone else's is there to wait out.
    async fn ensure(&self) -> Result<Option<String>> {
        if self.mode.is_sequential() {
            return self.ensure_sequential().await.map(Some);
        }
        for _ in 0..10 {
            let want = self.wanted();
            match self
                .client
                .create(&self.path)
                .data(&want)
                .mode(self.mode)
                .container_parents(true)
                .await
            {
                Ok(_) => return Ok(Some(self.path.clone())),
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => {
                    let (have, stat) = match self.client.get_data(&self.path).await {
                        Ok(found) => found,
                        Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    // Not ours: waited out, or taken over (its data set to ours, as
                    // Curator's PersistentNode does).
                    if !self.is_ours(&stat) && self.foreign == Foreign::WaitOut {
                        return Ok(None);
                    }
                    if self.write_over(&have, &stat).await? {
                        return Ok(Some(self.path.clone()));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(crate::Error::Client(zk_client::Error::Protocol(format!(
            "{} keeps changing under the kept node",
            self.path
        ))))
    }

    /// Our sequential node: the one we know of if it is still there, else the one
    /// our GUID names, else a new one; its data made current.
    async fn ensure_sequential(&self) -> Result<String> {
        let (dir, name) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        let known = self.actual.borrow().clone();
        let found = match known {
            Some(path) => self
                .client
                .get_data(&path)
                .await
                .ok()
                .map(|(have, stat)| (path, have, stat)),
            None => None,
        };
        let found = match found {
            Some(found) => Some(found),
            None => match find_protected(&self.client, dir, &self.prefix).await? {
                Some(node) => self
                    .client
                    .get_data(&node.path)
                    .await
                    .ok()
                    .map(|(have, stat)| (node.path, have, stat)),
                None => None,
            },
        };
        if let Some((path, have, stat)) = found {
            let _ = self.write_over_at(&path, &have, &stat).await?;
            return Ok(path);
        }
        let want = self.wanted();
        let made =
            create_protected_as(&self.client, dir, &self.prefix, name, &want, self.mode).await?;
        Ok(made.path)
    }

    async fn write_over(&self, have: &[u8], stat: &Stat) -> Result<bool> {
        self.write_over_at(&self.path, have, stat).await
    }

    /// Puts the latest data over what was read (only over that version): whether the
    /// node holds it now (`false`: it changed meanwhile; look again).
    async fn write_over_at(&self, path: &str, have: &[u8], stat: &Stat) -> Result<bool> {
        // The data wanted now (read after the node: an update made since is either in
        // it or wanted here), written over what was read only.
        let want = self.wanted();
        if have == want.as_slice() {
            return Ok(true);
        }
        match self.client.set_data(path, &want, Some(stat.version)).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code(), Some(ErrorCode::BadVersion | ErrorCode::NoNode)) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the node if it is ours.
    async fn remove(&self) {
        let path = self
            .actual
            .borrow()
            .clone()
            .unwrap_or_else(|| self.path.clone());
        match self.client.get_data(&path).await {
            Ok((_, stat)) if self.is_ours(&stat) => {
                let _ = self.client.delete(&path, None).await;
            }
            _ => {}
        }
    }
}
