//! [`MultiLock`]: several [`Lock`]s held as one (Curator's `InterProcessMultiLock`),
//! all or none. The locks are taken in one global order (sorted by path), so two
//! multi-locks over overlapping paths, given in any order, cannot deadlock; a failed,
//! timed-out or cancelled acquire gives back what it had taken.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! let mut both = zk_recipes::MultiLock::new(&client, &["/locks/from", "/locks/to"]);
//! let guard = both.acquire().await?;
//! // ... move something from one to the other ...
//! guard.release().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::time::Instant;
use zk_client::Client;

use crate::error::{Error, Result};
use crate::held::{Hold, Holding, Release};
use crate::lock::{Lock, LockGuard};

/// Several locks as one; reentrant like [`Lock`].
#[derive(Debug)]
pub struct MultiLock {
    client: Client,
    dirs: Vec<String>,
    held: Holding<Taken>,
}

/// The guards of the locks taken, in the order taken; given back last first.
#[derive(Debug, Default)]
struct Taken(Vec<LockGuard>);

impl Release for Taken {
    /// Releases every lock taken, last first; the first failure after trying all.
    async fn release(mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(guard) = self.0.pop() {
            if let Err(e) = guard.release().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// One acquire of a [`MultiLock`]: every lock is held while any guard of its holder
/// is. [`MultiLockGuard::release`] gives them back (last taken first); a guard dropped
/// unreleased does so in the background.
#[derive(Debug)]
#[must_use = "the locks are released when the guard is dropped"]
pub struct MultiLockGuard {
    hold: Hold<Taken>,
}

impl MultiLockGuard {
    /// Releases this acquire; the last one releases every lock, reporting the first
    /// failure after trying them all.
    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
}

impl MultiLock {
    /// One lock over every path in `dirs` (duplicates count once).
    pub fn new(client: &Client, dirs: &[&str]) -> MultiLock {
        let mut dirs: Vec<String> = dirs
            .iter()
            .map(|d| d.trim_end_matches('/').to_string())
            .collect();
        dirs.sort();
        dirs.dedup();
        MultiLock {
            client: client.clone(),
            dirs,
            held: Holding::default(),
        }
    }

    /// Waits until every lock is held.
    pub async fn acquire(&mut self) -> Result<MultiLockGuard> {
        self.acquire_within(None)
            .await?
            .ok_or(Error::Client(zk_client::Error::Closed))
    }

    /// Waits at most `timeout` for all of them; `Ok(None)` (none held) otherwise.
    pub async fn try_acquire(&mut self, timeout: Duration) -> Result<Option<MultiLockGuard>> {
        self.acquire_within(Some(Instant::now() + timeout)).await
    }

    async fn acquire_within(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<MultiLockGuard>> {
        if let Some((hold, ())) = self.held.reenter(|_| ()) {
            return Ok(Some(MultiLockGuard { hold }));
        }
        // Guards taken so far are given back if this future is dropped or fails
        // (each dropped guard releases in the background).
        let mut taken = Taken::default();
        for dir in &self.dirs {
            let mut lock = Lock::new(&self.client, dir);
            let got = match deadline {
                Some(deadline) => {
                    lock.try_acquire(deadline.saturating_duration_since(Instant::now()))
                        .await?
                }
                None => Some(lock.acquire().await?),
            };
            let Some(guard) = got else {
                // Out of time: give back the others before saying so.
                taken.release().await?;
                return Ok(None);
            };
            taken.0.push(guard);
        }
        Ok(Some(MultiLockGuard {
            hold: self.held.hold(taken),
        }))
    }

    /// Whether every lock is held (some guard is not released).
    pub fn is_acquired(&self) -> bool {
        self.held.is_held()
    }

    /// The paths locked, in the order they are taken.
    pub fn paths(&self) -> &[String] {
        &self.dirs
    }
}
