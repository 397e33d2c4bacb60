//! [`PersistentNode`]: a node that stays there until closed (Curator's
//! `PersistentNode`): created in the background as soon as the client is connected,
//! created again if someone deletes it, after a reconnection that finds it gone, and
//! after a session expiry on a client that renews sessions (an ephemeral one goes
//! with its session). Sequential nodes are created with a protection GUID, so a
//! create retried after a lost answer finds its own node.
//!
//! ```no_run
//! # async fn demo(client: zk_client::Client) {
//! use zk_recipes::{NodeMode, PersistentNode};
//! let node = PersistentNode::start(&client, "/services/api/host-1", NodeMode::Ephemeral, b"10.0.0.1:80");
//! node.wait_for_initial_create(std::time::Duration::from_secs(10)).await;
//! // ... the node is kept while this process runs ...
//! node.close().await;
//! # }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zk_client::{Client, CreateMode, SessionState};
use zk_proto::ErrorCode;

use crate::error::Result;
use crate::lease::client_is_over;
use crate::protected::{create_protected_as, ensure_containers, find_protected, protection_prefix};

/// What kind of node a [`PersistentNode`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMode {
    /// A persistent node at the path.
    Persistent,
    /// An ephemeral node at the path (gone with the session, then made again).
    Ephemeral,
    /// A persistent node named `<path><sequence>` (protected).
    PersistentSequential,
    /// An ephemeral node named `<path><sequence>` (protected).
    EphemeralSequential,
}

impl NodeMode {
    fn create_mode(self) -> CreateMode {
        match self {
            NodeMode::Persistent => CreateMode::Persistent,
            NodeMode::Ephemeral => CreateMode::Ephemeral,
            NodeMode::PersistentSequential => CreateMode::PersistentSequential,
            NodeMode::EphemeralSequential => CreateMode::EphemeralSequential,
        }
    }
}

/// A node kept in place until [`PersistentNode::close`].
#[derive(Debug)]
pub struct PersistentNode {
    client: Client,
    data: Arc<Mutex<NodeData>>,
    actual: watch::Receiver<Option<String>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl PersistentNode {
    /// Starts keeping a node at `path` of `mode` with `data`.
    pub fn start(client: &Client, path: &str, mode: NodeMode, data: &[u8]) -> PersistentNode {
        let data = Arc::new(Mutex::new(NodeData {
            bytes: data.to_vec(),
            generation: 0,
            written: 0,
        }));
        let (actual_tx, actual) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let keeper = Keeper {
            client: client.clone(),
            path: path.trim_end_matches('/').to_string(),
            mode,
            data: data.clone(),
            actual: actual_tx,
            prefix: protection_prefix(),
        };
        let task = tokio::spawn(keeper.run(stopped));
        PersistentNode {
            client: client.clone(),
            data,
            actual,
            stop,
            task: Some(task),
        }
    }

    /// Waits at most `timeout` for the node to exist: whether it does.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        let mut actual = self.actual.clone();
        tokio::time::timeout(timeout, actual.wait_for(|a| a.is_some()))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The node's path as created (with its sequence), while it exists as far as
    /// this keeper knows.
    pub fn actual_path(&self) -> Option<String> {
        self.actual.borrow().clone()
    }

    /// Changes the node's data (kept for every re-creation).
    pub async fn set_data(&self, data: &[u8]) -> Result<()> {
        let generation = match self.data.lock() {
            Ok(mut d) => {
                d.generation += 1;
                d.bytes = data.to_vec();
                d.generation
            }
            Err(_) => 0,
        };
        let Some(path) = self.actual_path() else {
            // The keeper makes it, or has just made it, and then writes what is newer
            // than what it made it with.
            return Ok(());
        };
        match self.client.set_data(&path, data, None).await {
            Ok(_) => {
                mark_written(&self.data, generation);
                Ok(())
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) || e.is_retryable() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops keeping the node and deletes it.
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The node's data, with how many times set_data changed it and which change the
/// node last got.
#[derive(Debug)]
struct NodeData {
    bytes: Vec<u8>,
    generation: u64,
    written: u64,
}

/// Records that the node holds the data of `generation` (or later).
fn mark_written(data: &Mutex<NodeData>, generation: u64) {
    if let Ok(mut d) = data.lock() {
        d.written = d.written.max(generation);
    }
}

struct Keeper {
    client: Client,
    path: String,
    mode: NodeMode,
    data: Arc<Mutex<NodeData>>,
    actual: watch::Sender<Option<String>>,
    prefix: String,
}

impl Keeper {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
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
                if self.mode == NodeMode::EphemeralSequential {
                    self.actual.send_replace(None);
                }
            }
            let path = match self.ensure().await {
                Ok(path) => path,
                Err(e) => {
                    tracing::debug!(error = %e, path = %self.path, "persistent node: not made yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            self.actual.send_replace(Some(path.clone()));
            // Data set while the node was being made (set_data saw no path) is written
            // now; set_data writes itself from here on, as the path is published.
            self.write_newer_data(&path).await;
            // Wait for it to go, the connection to change, or the close.
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
                    if matches!(event, Ok(ref e) if e.event_type == zk_proto::EventType::NodeDeleted) {
                        self.actual.send_replace(None);
                    }
                }
                _ = states.next() => {}
            }
        }
        let last = self.actual.borrow().clone();
        if let Some(path) = last {
            let _ = self.client.delete(&path, None).await;
        }
        self.actual.send_replace(None);
    }

    /// Writes the node's data if set_data changed it since it was last written.
    async fn write_newer_data(&self, path: &str) {
        let newer = match self.data.lock() {
            Ok(d) if d.generation > d.written => Some((d.generation, d.bytes.clone())),
            _ => None,
        };
        if let Some((generation, bytes)) = newer {
            match self.client.set_data(path, &bytes, None).await {
                Ok(_) => mark_written(&self.data, generation),
                // Gone or cut off: the next round makes it again with the new data.
                Err(e) => {
                    tracing::debug!(error = %e, path, "persistent node: data not written yet")
                }
            }
        }
    }

    /// Makes sure the node is there (with our data); its path.
    async fn ensure(&self) -> Result<String> {
        let (data, generation) = self
            .data
            .lock()
            .map(|d| (d.bytes.clone(), d.generation))
            .unwrap_or_default();
        let (dir, name) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        match self.mode {
            NodeMode::PersistentSequential | NodeMode::EphemeralSequential => {
                let known = self.actual.borrow().clone();
                if let Some(path) = known {
                    if self.client.exists(&path).await?.is_some() {
                        return Ok(path);
                    }
                }
                if let Some(found) = find_protected(&self.client, dir, &self.prefix).await? {
                    return Ok(found.path);
                }
                let made = create_protected_as(
                    &self.client,
                    dir,
                    &self.prefix,
                    name,
                    &data,
                    self.mode.create_mode(),
                )
                .await?;
                mark_written(&self.data, generation);
                Ok(made.path)
            }
            NodeMode::Persistent | NodeMode::Ephemeral => {
                let created = self
                    .client
                    .create(&self.path)
                    .data(&data)
                    .mode(self.mode.create_mode())
                    .await;
                match created {
                    Ok(_) => {
                        mark_written(&self.data, generation);
                        Ok(self.path.clone())
                    }
                    Err(e) if e.code() == Some(ErrorCode::NodeExists) => {
                        // There already (ours from before, or made by someone else):
                        // keep it, with our data (as Curator does).
                        match self.client.set_data(&self.path, &data, None).await {
                            Ok(_) => {
                                mark_written(&self.data, generation);
                                Ok(self.path.clone())
                            }
                            Err(e) if e.code() == Some(ErrorCode::NoNode) => Err(e.into()),
                            Err(e) => Err(e.into()),
                        }
                    }
                    Err(e) if e.code() == Some(ErrorCode::NoNode) && !dir.is_empty() => {
                        ensure_containers(&self.client, dir).await?;
                        Err(e.into())
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}
