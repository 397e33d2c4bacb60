//! [`Barrier`]: a gate held closed by one node (Curator's `DistributedBarrier`): set
//! it, and everyone waiting on it waits until it is removed.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! let gate = zk_recipes::Barrier::new(&client, "/deploy/gate");
//! gate.set().await?;
//! // elsewhere: gate.wait().await? returns once someone calls gate.remove()
//! gate.remove().await?;
//! # Ok(()) }
//! ```
//!
//! A waiter reads the node on the server it is connected to, which may lag the leader
//! by a few milliseconds: a waiter told *out of band* that the barrier was just set
//! (a message, an RPC) calls `client.sync(path)` before `wait()`, or it may pass a
//! barrier it cannot see yet. Waiters that learn of the barrier through ZooKeeper
//! need no sync (see the guide's "Reading another session's write").

use std::time::Duration;

use tokio::time::Instant;
use zk_client::Client;
use zk_proto::ErrorCode;

use crate::error::Result;
use crate::protected::ensure_containers;
use crate::retry::with_retries;

/// A barrier on one path: closed while the node exists.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier at `path` (its parents are created as containers).
    pub fn new(client: &Client, path: &str) -> Barrier {
        Barrier {
            client: client.clone(),
            path: path.trim_end_matches('/').to_string(),
        }
    }

    /// Closes the barrier (creates its node; already closed is fine).
    pub async fn set(&self) -> Result<()> {
        if let Some((parent, _)) = self.path.rsplit_once('/') {
            if !parent.is_empty() {
                ensure_containers(&self.client, parent).await?;
            }
        }
        let created = with_retries(&self.client, || self.client.create(&self.path)).await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(ErrorCode::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the barrier (deletes its node; already open is fine).
    pub async fn remove(&self) -> Result<()> {
        match with_retries(&self.client, || self.client.delete(&self.path, None)).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the barrier is open.
    pub async fn wait(&self) -> Result<()> {
        self.wait_until(None).await.map(|_| ())
    }

    /// Waits at most `timeout` for the barrier to open: whether it did.
    pub async fn wait_within(&self, timeout: Duration) -> Result<bool> {
        self.wait_until(Some(Instant::now() + timeout)).await
    }

    async fn wait_until(&self, deadline: Option<Instant>) -> Result<bool> {
        loop {
            let (read, changed) = self.client.exists_and_watch(&self.path);
            match read.await {
                Ok(None) => return Ok(true),
                Ok(Some(_)) => {}
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let woke = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, changed).await {
                    Ok(woke) => woke,
                    Err(_) => return Ok(false),
                },
                None => changed.await,
            };
            if let Err(e) = woke {
                if e.is_session_lost() {
                    return Err(e.into());
                }
            }
        }
    }
}
