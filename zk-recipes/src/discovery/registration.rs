//! The keeper of one registration's node: made as soon as the client is connected,
//! made again if deleted, after a reconnection that finds it gone and after a session
//! expiry on a client that renews sessions; its data put back after a reconnection if
//! an update was lost. A node of the same path owned by another session is waited out
//! (it goes with its session).
//!
//! Unlike [`PersistentNode`](crate::PersistentNode), whose keeper writes its data
//! again after every change of the node, this keeper writes only when the node holds
//! something else than the latest data, and then only over the version it read, so
//! it never puts back older data over an update that raced with it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{Client, CreateMode, SessionState};
use zk_proto::{ErrorCode, EventType};

use crate::error::Result;
use crate::lease::client_is_over;
use crate::protected::ensure_containers;

/// One registration's node, kept until closed.
#[derive(Debug)]
pub(crate) struct Registrar {
    client: Client,
    path: String,
    data: Arc<Mutex<Vec<u8>>>,
    made: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Registrar {
    /// Starts keeping a node at `path` (`mode`: ephemeral or persistent) with `data`.
    pub(crate) fn start(client: &Client, path: &str, mode: CreateMode, data: &[u8]) -> Registrar {
        let data = Arc::new(Mutex::new(data.to_vec()));
        let (made_tx, made) = watch::channel(false);
        let (stop, stopped) = watch::channel(false);
        let keeper = Keeper {
            client: client.clone(),
            path: path.to_string(),
            mode,
            data: data.clone(),
            made: made_tx,
        };
        let task = tokio::spawn(keeper.run(stopped));
        Registrar {
            client: client.clone(),
            path: path.to_string(),
            data,
            made,
            stop,
            task: Some(task),
        }
    }

    /// Waits at most `timeout` for the node to be there with our data: whether it is.
    pub(crate) async fn wait_made(&self, timeout: Duration) -> bool {
        let mut made = self.made.clone();
        tokio::time::timeout(timeout, made.wait_for(|m| *m))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Changes the node's data: now, or (without a connection, or while the node is
    /// not there) when the keeper next makes or checks it.
    pub(crate) async fn set_data(&self, data: &[u8]) -> Result<()> {
        if let Ok(mut d) = self.data.lock() {
            *d = data.to_vec();
        }
        if !*self.made.borrow() {
            return Ok(());
        }
        match self.client.set_data(&self.path, data, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(ErrorCode::NoNode) || e.is_retryable() => Ok(()),
            Err(e)
                if e == zk_client::Error::SessionExpired
                    && self.client.renews_expired_sessions() =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stops keeping the node and deletes it (if it is ours).
    pub(crate) async fn close(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Keeper {
    client: Client,
    path: String,
    mode: CreateMode,
    data: Arc<Mutex<Vec<u8>>>,
    made: watch::Sender<bool>,
}

/// Whose the node at the path is.
enum Found {
    Ours,
    Theirs,
}

impl Keeper {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut states = self.client.state_changes();
        loop {
            let connected = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                s = states.wait_for(|s| s == SessionState::Connected || client_is_over(&self.client, s)) => s,
            };
            if !matches!(connected, Some(SessionState::Connected)) {
                break;
            }
            match self.ensure().await {
                Ok(Found::Ours) => {
                    self.made.send_replace(true);
                }
                Ok(Found::Theirs) => {
                    self.made.send_replace(false);
                }
                Err(e) => {
                    tracing::debug!(error = %e, path = %self.path, "registration: not made yet");
                    self.made.send_replace(false);
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            }
            // Wait for it to change or go, the connection to change, or the close.
            let (read, changed) = self.client.exists_and_watch(&self.path);
            match read.await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.made.send_replace(false);
                    continue;
                }
                Err(_) => continue,
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                event = changed => {
                    if matches!(event, Ok(ref e) if e.event_type == EventType::NodeDeleted) {
                        self.made.send_replace(false);
                    }
                }
                _ = states.next() => {}
            }
        }
        self.remove().await;
        self.made.send_replace(false);
    }

    fn wanted(&self) -> Vec<u8> {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Whether the node at the path, if any, is this registration's to keep.
    fn is_ours(&self, owner: i64) -> bool {
        match self.mode {
            CreateMode::Ephemeral => owner == self.client.session_id(),
            _ => owner == 0,
        }
    }

    /// Makes the node, or finds it (ours with our latest data, or someone else's).
    async fn ensure(&self) -> Result<Found> {
        let dir = self.path.rsplit_once('/').map_or("", |(dir, _)| dir);
        for _ in 0..10 {
            let want = self.wanted();
            let created = self
                .client
                .create(&self.path)
                .data(&want)
                .mode(self.mode)
                .await;
            match created {
                Ok(_) => return Ok(Found::Ours),
                Err(e) if e.code() == Some(ErrorCode::NoNode) && !dir.is_empty() => {
                    ensure_containers(&self.client, dir).await?;
                }
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => {
                    let (have, stat) = match self.client.get_data(&self.path).await {
                        Ok(found) => found,
                        Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if !self.is_ours(stat.ephemeral_owner) {
                        return Ok(Found::Theirs);
                    }
                    // The data wanted now (read after the node: an update made since
                    // is either in it or wanted here), written over what was read only.
                    let want = self.wanted();
                    if have == want {
                        return Ok(Found::Ours);
                    }
                    match self
                        .client
                        .set_data(&self.path, &want, Some(stat.version))
                        .await
                    {
                        Ok(_) => return Ok(Found::Ours),
                        Err(e)
                            if matches!(
                                e.code(),
                                Some(ErrorCode::BadVersion | ErrorCode::NoNode)
                            ) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(crate::Error::Client(zk_client::Error::Protocol(format!(
            "{} keeps changing under the registration",
            self.path
        ))))
    }

    /// Deletes the node if it is ours.
    async fn remove(&self) {
        match self.client.get_data(&self.path).await {
            Ok((_, stat)) if self.is_ours(stat.ephemeral_owner) => {
                let _ = self.client.delete(&self.path, None).await;
            }
            _ => {}
        }
    }
}
