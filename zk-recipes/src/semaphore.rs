//! [`Semaphore`]: at most `n` leases held at once across all processes, with the node
//! layout of Curator's `InterProcessSemaphoreV2`: would-be holders take turns through
//! a mutex at `<dir>/locks`; the one whose turn it is creates its lease
//! `<dir>/leases/_c_<guid>-lease-<seq>` and, while more than `n` leases exist, waits
//! (still holding the mutex, so waiters are served in order) for a lease to go.
//!
//! A [`SemaphoreLease`] is returned with [`SemaphoreLease::release`]; one dropped
//! unreleased is deleted in the background (and with its session in any case).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! let pool = zk_recipes::Semaphore::new(&client, "/limits/db-connections", 5);
//! let lease = pool.acquire().await?;
//! // ... one of at most five at once ...
//! lease.release().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::time::Instant;
use zk_client::Client;
use zk_proto::ErrorCode;

use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::lock::Lock;
use crate::protected::{create_protected, protection_prefix, remove_twins, NodeGuard};
use crate::retry::with_retries;

/// The lease node name Curator uses.
pub const LEASE_NAME: &str = "lease-";

/// A counting semaphore on one path.
#[derive(Debug, Clone)]
pub struct Semaphore {
    client: Client,
    dir: String,
    max_leases: usize,
}

/// One lease of a [`Semaphore`].
#[derive(Debug)]
pub struct SemaphoreLease {
    client: Client,
    path: String,
    lease: Lease,
    guard: Option<NodeGuard>,
}

impl SemaphoreLease {
    /// The lease node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The session lease this one is held under: Suspended on a lost connection,
    /// Lost once the session expired (the lease node went with it).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Gives the lease back (deletes its node).
    pub async fn release(mut self) -> Result<()> {
        if let Some(guard) = self.guard.take() {
            guard.keep();
        }
        match with_retries(&self.client, || self.client.delete(&self.path, None)).await {
            Ok(()) => Ok(()),
            // Gone with its session: given back all the same.
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Semaphore {
    /// A semaphore of `max_leases` (at least 1) on `dir`.
    pub fn new(client: &Client, dir: &str, max_leases: usize) -> Semaphore {
        Semaphore {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            max_leases: max_leases.max(1),
        }
    }

    fn leases_dir(&self) -> String {
        format!("{}/leases", self.dir)
    }

    /// Waits for one lease.
    pub async fn acquire(&self) -> Result<SemaphoreLease> {
        match self.acquire_one(None).await? {
            Some(lease) => Ok(lease),
            None => unreachable!("no deadline, no timeout"),
        }
    }

    /// Waits at most `timeout` for one lease; `Ok(None)` if none came.
    pub async fn try_acquire(&self, timeout: Duration) -> Result<Option<SemaphoreLease>> {
        self.acquire_one(Some(Instant::now() + timeout)).await
    }

    /// Waits for `n` leases, all or none (what was taken is given back on failure).
    pub async fn acquire_many(&self, n: usize) -> Result<Vec<SemaphoreLease>> {
        let mut leases = Vec::with_capacity(n);
        for _ in 0..n {
            // Dropped on error: the leases taken so far are given back.
            leases.push(self.acquire().await?);
        }
        Ok(leases)
    }

    /// Waits at most `timeout` for `n` leases, all or none.
    pub async fn try_acquire_many(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Option<Vec<SemaphoreLease>>> {
        let deadline = Instant::now() + timeout;
        let mut leases = Vec::with_capacity(n);
        for _ in 0..n {
            match self.acquire_one(Some(deadline)).await? {
                Some(lease) => leases.push(lease),
                None => return Ok(None),
            }
        }
        Ok(Some(leases))
    }

    /// The lease nodes now held or waited for.
    pub async fn lease_nodes(&self) -> Result<Vec<String>> {
        match with_retries(&self.client, || {
            self.client.get_children(&self.leases_dir())
        })
        .await
        {
            Ok(mut children) => {
                children.sort();
                Ok(children)
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn acquire_one(&self, deadline: Option<Instant>) -> Result<Option<SemaphoreLease>> {
        // Our turn among the would-be holders.
        let mut turn = Lock::new(&self.client, &format!("{}/locks", self.dir));
        let got = match deadline {
            Some(deadline) => {
                turn.try_acquire(deadline.saturating_duration_since(Instant::now()))
                    .await?
            }
            None => Some(turn.acquire().await?),
        };
        let Some(our_turn) = got else {
            return Ok(None);
        };
        let result = self.wait_for_room(deadline).await;
        // Next one's turn, whatever happened to ours.
        let released = our_turn.release().await;
        let lease = result?;
        released?;
        Ok(lease)
    }

    /// Creates our lease and waits until at most `max_leases` exist.
    async fn wait_for_room(&self, deadline: Option<Instant>) -> Result<Option<SemaphoreLease>> {
        let dir = self.leases_dir();
        let node =
            create_protected(&self.client, &dir, &protection_prefix(), LEASE_NAME, b"").await?;
        let guard = NodeGuard::new(&self.client, &node.path);
        let ours = node.name().to_string();
        loop {
            let (listed, changed) = self.client.get_children_and_watch(&dir);
            let children = match listed.await {
                Ok(children) => children,
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if !children.contains(&ours) {
                guard.keep();
                return Err(Error::NodeLost(node.path));
            }
            // A second lease node of our one create would hold a place of its own.
            if remove_twins(&self.client, &dir, &children, &ours).await? {
                continue;
            }
            if children.len() <= self.max_leases {
                return Ok(Some(SemaphoreLease {
                    client: self.client.clone(),
                    path: node.path,
                    lease: Lease::new(&self.client),
                    guard: Some(guard),
                }));
            }
            let woke = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, changed).await {
                    Ok(woke) => woke,
                    Err(_) => {
                        // Out of time: take our lease node away before saying so.
                        guard.remove().await?;
                        return Ok(None);
                    }
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
