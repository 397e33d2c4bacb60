//! [`Lock`]: a distributed mutex with the node layout of Curator's `InterProcessMutex`,
//! so a Curator process and ours exclude each other on the same path: each contender
//! creates `<dir>/_c_<guid>-lock-<sequence>` (ephemeral, sequential, protected), the
//! lowest sequence holds the lock, and every other contender watches only the node just
//! before its own.
//!
//! ```no_run
//! # async fn demo(client: zk_client::Client) -> zk_recipes::Result<()> {
//! let mut lock = zk_recipes::Lock::new(&client, "/locks/invoices");
//! lock.acquire().await?;
//! let token = lock.fencing_token().expect("held"); // pass to the storage you guard
//! // ... critical section; watch lock.lease() if it runs long ...
//! lock.release().await?;
//! # let _ = token; Ok(()) }
//! ```

use std::time::Duration;

use zk_client::Client;
use zk_proto::ErrorCode;

use crate::contention::{first_in_line, Line};
use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::protected::{retrying, sequence_of};

/// The node name Curator's `InterProcessMutex` uses.
pub const LOCK_NAME: &str = "lock-";

/// What a holder can hand to the storage it guards, so that a write from a holder
/// whose lease has passed is refused there: later holders have larger tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken {
    /// The zxid that created the lock node (ordered across all holders).
    pub czxid: i64,
    /// The node's sequence number under the lock path.
    pub sequence: u64,
}

/// A reentrant distributed mutex (Curator's `InterProcessMutex`). One `Lock` is one
/// holder: acquiring it again while held only counts, and it is released when
/// `release` was called as often. Hold it in one task (`&mut self`).
#[derive(Debug)]
pub struct Lock {
    client: Client,
    dir: String,
    data: Vec<u8>,
    held: Option<Held>,
}

#[derive(Debug)]
struct Held {
    path: String,
    count: usize,
    token: FencingToken,
    lease: Lease,
}

impl Lock {
    /// A lock on `dir` (created, with its parents, as containers when needed).
    pub fn new(client: &Client, dir: &str) -> Lock {
        Lock::with_data(client, dir, b"")
    }

    /// A lock whose node carries `data` (Curator's lock node data; its
    /// `LeaderSelector` puts the participant id there).
    pub fn with_data(client: &Client, dir: &str, data: &[u8]) -> Lock {
        Lock {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            data: data.to_vec(),
            held: None,
        }
    }

    /// Waits until this holder has the lock.
    pub async fn acquire(&mut self) -> Result<()> {
        self.acquire_within(None).await.map(|_| ())
    }

    /// Waits at most `timeout` for the lock; `Ok(false)` if it did not come (nothing
    /// of this attempt is left behind).
    pub async fn try_acquire(&mut self, timeout: Duration) -> Result<bool> {
        self.acquire_within(Some(tokio::time::Instant::now() + timeout))
            .await
    }

    async fn acquire_within(&mut self, deadline: Option<tokio::time::Instant>) -> Result<bool> {
        if let Some(held) = &mut self.held {
            held.count += 1;
            return Ok(true);
        }
        let line = Line {
            client: &self.client,
            dir: &self.dir,
            names: &[LOCK_NAME],
        };
        let Some(node) = line
            .wait_turn(LOCK_NAME, &self.data, deadline, first_in_line)
            .await?
        else {
            return Ok(false);
        };
        let sequence = sequence_of(node.name(), LOCK_NAME).unwrap_or(0);
        self.held = Some(Held {
            path: node.path,
            count: 1,
            token: FencingToken {
                czxid: node.stat.czxid,
                sequence,
            },
            lease: Lease::new(&self.client),
        });
        Ok(true)
    }

    /// Releases one acquire; the last one deletes the lock node.
    pub async fn release(&mut self) -> Result<()> {
        let Some(held) = &mut self.held else {
            return Err(Error::NotHeld);
        };
        if held.count > 1 {
            held.count -= 1;
            return Ok(());
        }
        let path = held.path.clone();
        self.held = None;
        match retrying(|| self.client.delete(&path, None)).await {
            Ok(()) => Ok(()),
            // Already gone (the session expired): released all the same.
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this holder has the lock.
    pub fn is_acquired(&self) -> bool {
        self.held.is_some()
    }

    /// This holder's fencing token, while it holds the lock.
    pub fn fencing_token(&self) -> Option<FencingToken> {
        self.held.as_ref().map(|h| h.token)
    }

    /// The lease the lock is held under, while held: Suspended on a lost connection
    /// (stop acting as the holder), Lost once the session expired.
    pub fn lease(&self) -> Option<Lease> {
        self.held.as_ref().map(|h| h.lease.clone())
    }

    /// The contenders' node names, holder first.
    pub async fn participants(&self) -> Result<Vec<String>> {
        Line {
            client: &self.client,
            dir: &self.dir,
            names: &[LOCK_NAME],
        }
        .members()
        .await
    }
}
