//! [`SharedCount`]: an integer every process sees (Curator's `SharedCount` /
//! `SharedValue`), stored as 4 bytes big-endian at one path — a Java `SharedCount` on
//! the same path reads and writes the same bytes. [`SharedCount::start`] creates the
//! node with a seed if it is missing; the current value is then kept in memory by a
//! background task (a data watch, re-read after every change, every reconnection and
//! a renewed session) and offered as a [`tokio::sync::watch`] receiver and a stream.
//!
//! [`SharedCount::try_set_count`] is a versioned write: it applies only if the node is
//! still at the version of the [`VersionedValue`] given, and answers `false` otherwise
//! (the local value is then re-read). A write whose answer was lost is settled as
//! [`crate::atomic_long`] settles it (a `multi` with a marker node
//! `<path>/_op-<guid>`, deleted once the outcome is known), so `true` means it applied
//! exactly once and `false` that it did not apply: a try-set loop never counts twice.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use zk_recipes::shared_count::SharedCount;
//! let count = SharedCount::new(&client, "/config/workers", 4);
//! count.start().await?;
//! loop {
//!     let seen = count.get_versioned_value();
//!     if count.try_set_count(seen.value + 1, seen).await? {
//!         break;
//!     }
//! }
//! assert_eq!(count.get_count(), 5);
//! // Other processes' changes arrive by watch.
//! let changes = count.watch();
//! println!("now {}", changes.borrow().value);
//! count.close().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::watch;
use zk_client::{Client, Error as ClientError, OpResult, SessionState, Stat};
use zk_proto::ErrorCode;

use crate::atomic_long::{commit_once, create_with_parents, MarkerAt, Once};
use crate::error::{Error, Result};
use crate::lease::client_is_over;
use crate::retry::{is_transient, with_retries};
use crate::task::Background;

/// A value with the node version it was read at (Curator's `VersionedValue`): what
/// [`SharedCount::try_set_count`] compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionedValue<T> {
    /// The value.
    pub value: T,
    /// The node's data version when it had this value (-1: not read yet).
    pub version: i32,
    /// The zxid of the change that wrote it (the node's mzxid; -1: not read yet).
    pub zxid: i64,
}

/// A shared `i32` at one path, its current value kept in memory.
#[derive(Debug)]
pub struct SharedCount {
    client: Client,
    path: String,
    seed: i32,
    current: Arc<watch::Sender<VersionedValue<i32>>>,
    task: Background,
}

/// Curator's encoding: 4 bytes big-endian.
pub fn count_to_bytes(value: i32) -> [u8; 4] {
    value.to_be_bytes()
}

/// Curator's decoding: the first 4 bytes big-endian (`None` if there are fewer).
pub fn count_from_bytes(data: &[u8]) -> Option<i32> {
    let bytes = <[u8; 4]>::try_from(data.get(..4)?).ok()?;
    Some(i32::from_be_bytes(bytes))
}

impl SharedCount {
    /// The count at `path`, shared once [`SharedCount::start`]ed, which creates the
    /// node with `seed` if it is missing.
    pub fn new(client: &Client, path: &str, seed: i32) -> SharedCount {
        let path = path.trim_end_matches('/').to_string();
        let current = Arc::new(
            watch::channel(VersionedValue {
                value: seed,
                version: -1,
                zxid: 0,
            })
            .0,
        );
        let (run_client, run_path, run_current) = (client.clone(), path.clone(), current.clone());
        SharedCount {
            client: client.clone(),
            path,
            seed,
            current,
            task: Background::new(move |stopped| {
                keep_current(run_client, run_path, run_current, stopped)
            }),
        }
    }

    /// Starts sharing: creates the node with the seed if it is missing (parents as
    /// containers), reads it, and keeps the local value current in the background
    /// until [`SharedCount::close`]. Starting again only reads the value again.
    pub async fn start(&self) -> Result<()> {
        let seed_bytes = count_to_bytes(self.seed);
        let client = &self.client;
        match with_retries(client, || {
            create_with_parents(client, &self.path, &seed_bytes)
        })
        .await
        {
            Ok(()) => {}
            // There already (perhaps made by our own create whose answer was lost).
            Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
        let (data, stat) = with_retries(client, || client.get_data(&self.path)).await?;
        let first = versioned(&self.path, &data, &stat).unwrap_or(VersionedValue {
            value: self.seed,
            version: stat.version,
            zxid: stat.mzxid,
        });
        self.update(first);
        self.task.start();
        Ok(())
    }

    /// The count's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current count (as last seen).
    pub fn get_count(&self) -> i32 {
        self.current.borrow().value
    }

    /// The current count with its version: what [`SharedCount::try_set_count`] takes.
    pub fn get_versioned_value(&self) -> VersionedValue<i32> {
        *self.current.borrow()
    }

    /// The current value as it changes (`changed().await`, then `borrow()`).
    pub fn watch(&self) -> watch::Receiver<VersionedValue<i32>> {
        self.current.subscribe()
    }

    /// Every value seen from now on (between two looks, only the latest).
    pub fn changes(&self) -> BoxStream<'static, VersionedValue<i32>> {
        let mut rx = self.current.subscribe();
        rx.mark_unchanged();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let now = *rx.borrow_and_update();
            Some((now, rx))
        })
        .boxed()
    }

    /// Sets the count whatever it was (Curator's `setCount`; the node must exist).
    pub async fn set_count(&self, value: i32) -> Result<()> {
        let stat = with_retries(&self.client, || {
            self.client
                .set_data(&self.path, &count_to_bytes(value), None)
        })
        .await?;
        self.update(VersionedValue {
            value,
            version: stat.version,
            zxid: stat.mzxid,
        });
        Ok(())
    }

    /// Sets the count to `value` only if the node is still at `expected.version`:
    /// `false` if someone changed it since (the local value is then re-read, so
    /// [`SharedCount::get_versioned_value`] gives what to try next). Exactly once
    /// through lost answers (see the module docs). A version of -1 (never read, or
    /// overflowed) cannot be compared: `Error::Client(BadArguments)`.
    pub async fn try_set_count(&self, value: i32, expected: VersionedValue<i32>) -> Result<bool> {
        if expected.version == -1 {
            return Err(Error::Client(ClientError::BadArguments(
                "a version of -1 cannot be compared (Curator's IllegalTrySetVersionException)"
                    .into(),
            )));
        }
        let marker = format!(
            "{}/{}{}",
            self.path,
            crate::atomic_long::OP_MARKER_PREFIX,
            uuid::Uuid::new_v4()
        );
        let path = self.path.clone();
        let data = count_to_bytes(value);
        let set = move |t: zk_client::Transaction| t.set_data(&path, &data, Some(expected.version));
        match commit_once(&self.client, &marker, MarkerAt::First, &set).await? {
            Once::Applied { results, .. } => {
                let stat = results.into_iter().flatten().find_map(|r| match r {
                    OpResult::SetData { stat } => Some(stat),
                    _ => None,
                });
                match stat {
                    Some(stat) => self.update(VersionedValue {
                        value,
                        version: stat.version,
                        zxid: stat.mzxid,
                    }),
                    None => self.refresh().await,
                }
                Ok(true)
            }
            Once::Refused(e)
                if matches!(e.code(), Some(ErrorCode::BadVersion | ErrorCode::NoNode)) =>
            {
                self.refresh().await;
                Ok(false)
            }
            Once::Refused(e) => Err(e.into()),
        }
    }

    /// Stops keeping the value current and waits until it has; dropping stops it
    /// without waiting.
    pub async fn close(self) {
        self.task.close().await
    }

    /// Re-reads the value now (errors leave it to the background task).
    async fn refresh(&self) {
        match with_retries(&self.client, || self.client.get_data(&self.path)).await {
            Ok((data, stat)) => {
                if let Some(v) = versioned(&self.path, &data, &stat) {
                    self.update(v);
                }
            }
            Err(e) => {
                tracing::debug!(path = %self.path, error = %e, "shared count: re-read failed")
            }
        }
    }

    fn update(&self, value: VersionedValue<i32>) {
        update(&self.current, value);
    }
}

/// The value in `data` with `stat`'s version, or `None` (logged) if it is not a count.
fn versioned(path: &str, data: &[u8], stat: &Stat) -> Option<VersionedValue<i32>> {
    match count_from_bytes(data) {
        Some(value) => Some(VersionedValue {
            value,
            version: stat.version,
            zxid: stat.mzxid,
        }),
        None => {
            tracing::warn!(%path, ?data, "shared count: the node does not hold a 4-byte count");
            None
        }
    }
}

/// Takes `value` if it is newer than what is held (Curator's `updateValue`).
fn update(current: &watch::Sender<VersionedValue<i32>>, value: VersionedValue<i32>) {
    current.send_if_modified(|held| {
        if held.zxid >= value.zxid {
            return false;
        }
        let changed = *held != value;
        *held = value;
        changed
    });
}

/// Keeps `current` up to date: reads with a data watch (an exists watch while the
/// node is missing), and reads again after each change, each reconnection and a
/// renewed session, until stopped or the client is over.
async fn keep_current(
    client: Client,
    path: String,
    current: Arc<watch::Sender<VersionedValue<i32>>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut states = client.state_changes();
    loop {
        let connected = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            s = states.wait_for(|s| s == SessionState::Connected || client_is_over(&client, s)) => s,
        };
        if !matches!(connected, Some(SessionState::Connected)) {
            return;
        }
        let (read, changed) = client.get_data_and_watch(&path);
        let changed = match read.await {
            Ok((data, stat)) => {
                if let Some(v) = versioned(&path, &data, &stat) {
                    update(&current, v);
                }
                changed
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                // Deleted: keep the last value, wait for it to come back.
                let (exists, created) = client.exists_and_watch(&path);
                match exists.await {
                    Ok(Some(_)) => continue,
                    Ok(None) => created,
                    Err(e) => {
                        tracing::debug!(%path, error = %e, "shared count: exists failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            Err(e) => {
                if !is_transient(&client, &e) {
                    tracing::debug!(%path, error = %e, "shared count: read failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Until the node changes, the connection drops (re-read once back) or we stop.
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = changed => {}
            _ = states.wait_for(|s| s != SessionState::Connected) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_curators_four_big_endian_bytes() {
        assert_eq!(count_to_bytes(258), [0, 0, 1, 2]);
        assert_eq!(count_to_bytes(-1), [0xff; 4]);
        assert_eq!(count_from_bytes(&[0, 0, 1, 2]), Some(258));
        assert_eq!(count_from_bytes(&[0, 0, 1]), None);
    }

    #[test]
    fn older_values_do_not_replace_newer_ones() {
        let (tx, rx) = watch::channel(VersionedValue {
            value: 1,
            version: 3,
            zxid: 10,
        });
        update(
            &tx,
            VersionedValue {
                value: 0,
                version: 2,
                zxid: 9,
            },
        );
        assert_eq!(rx.borrow().value, 1);
        update(
            &tx,
            VersionedValue {
                value: 5,
                version: 4,
                zxid: 12,
            },
        );
        assert_eq!(rx.borrow().value, 5);
    }
}
