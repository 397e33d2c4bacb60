//! [`MultiLock`]: several [`Lock`]s held as one (Curator's `InterProcessMultiLock`),
//! all or none. The locks are taken in one global order (sorted by path), so two
//! multi-locks over overlapping paths, given in any order, cannot deadlock; a failed,
//! timed-out or cancelled acquire gives back what it had taken.
//!
//! ```no_run
//! # async fn demo(client: zk_client::Client) -> zk_recipes::Result<()> {
//! let mut both = zk_recipes::MultiLock::new(&client, &["/locks/from", "/locks/to"]);
//! both.acquire().await?;
//! // ... move something from one to the other ...
//! both.release().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::time::Instant;
use zk_client::Client;

use crate::error::{Error, Result};
use crate::lock::Lock;

/// Several locks as one; reentrant like [`Lock`].
#[derive(Debug)]
pub struct MultiLock {
    client: Client,
    dirs: Vec<String>,
    held: Option<(Taken, usize)>,
}

/// Locks taken so far; given back in the background if dropped still holding any
/// (an acquire that failed, timed out or was cancelled).
#[derive(Debug, Default)]
struct Taken(Vec<Lock>);

impl Taken {
    /// Releases every lock taken, last first; the first failure after trying all.
    async fn give_back(&mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(mut lock) = self.0.pop() {
            if let Err(e) = lock.release().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let mut locks = std::mem::take(&mut self.0);
        if locks.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                while let Some(mut lock) = locks.pop() {
                    let _ = lock.release().await;
                }
            });
        }
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
            held: None,
        }
    }

    /// Waits until every lock is held.
    pub async fn acquire(&mut self) -> Result<()> {
        self.acquire_within(None).await.map(|_| ())
    }

    /// Waits at most `timeout` for all of them; `Ok(false)` (none held) otherwise.
    pub async fn try_acquire(&mut self, timeout: Duration) -> Result<bool> {
        self.acquire_within(Some(Instant::now() + timeout)).await
    }

    async fn acquire_within(&mut self, deadline: Option<Instant>) -> Result<bool> {
        if let Some((_, count)) = &mut self.held {
            *count += 1;
            return Ok(true);
        }
        let mut taken = Taken::default();
        for dir in &self.dirs {
            let mut lock = Lock::new(&self.client, dir);
            let got = match deadline {
                Some(deadline) => {
                    lock.try_acquire(deadline.saturating_duration_since(Instant::now()))
                        .await?
                }
                None => lock.acquire().await.map(|_| true)?,
            };
            if !got {
                // Out of time: give back the others before saying so.
                taken.give_back().await?;
                return Ok(false);
            }
            taken.0.push(lock);
        }
        self.held = Some((taken, 1));
        Ok(true)
    }

    /// Releases one acquire; the last one releases every lock (in reverse order),
    /// reporting the first failure after trying them all.
    pub async fn release(&mut self) -> Result<()> {
        let Some((taken, count)) = &mut self.held else {
            return Err(Error::NotHeld);
        };
        if *count > 1 {
            *count -= 1;
            return Ok(());
        }
        let mut taken = std::mem::take(taken);
        self.held = None;
        taken.give_back().await
    }

    /// Whether every lock is held.
    pub fn is_acquired(&self) -> bool {
        self.held.is_some()
    }

    /// The paths locked, in the order they are taken.
    pub fn paths(&self) -> &[String] {
        &self.dirs
    }
}
