//! [`Lock`]: a distributed mutex with the node layout of Curator's `InterProcessMutex`,
//! so a Curator process and ours exclude each other on the same path: each contender
//! creates `<dir>/_c_<guid>-lock-<sequence>` (ephemeral, sequential, protected), the
//! lowest sequence holds the lock, and every other contender watches only the node just
//! before its own.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! let mut lock = zk_recipes::Lock::new(&client, "/locks/invoices");
//! let guard = lock.acquire().await?;
//! let token = guard.fencing_token(); // pass to the storage you guard
//! // ... critical section; watch guard.lease() if it runs long ...
//! guard.release().await?;
//! # let _ = token; Ok(()) }
//! ```

use std::time::Duration;

use zk_client::Client;

use crate::contention::{first_in_line, Line};
use crate::error::{Error, Result};
use crate::held::{Hold, Holding, Release};
use crate::lease::Lease;
use crate::protected::{sequence_of, NodeGuard};

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
/// holder: acquiring it again while held hands out another guard on the same node,
/// and the node is deleted when the last guard is released. Acquire it in one task
/// (`&mut self`); the guards may travel.
#[derive(Debug)]
pub struct Lock {
    client: Client,
    dir: String,
    data: Vec<u8>,
    held: Holding<LockNode>,
}

/// The lock node while held.
#[derive(Debug)]
struct LockNode {
    node: NodeGuard,
    token: FencingToken,
    lease: Lease,
}

impl Release for LockNode {
    async fn release(self) -> Result<()> {
        self.node.release().await
    }
}

/// One acquire of a [`Lock`]: the lock is held while any guard of its holder is.
/// Give it back with [`LockGuard::release`]; a guard dropped unreleased releases in
/// the background (and the node goes with the session in any case).
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    hold: Hold<LockNode>,
    path: String,
    token: FencingToken,
    lease: Lease,
}

impl LockGuard {
    /// The fencing token to hand to the storage this lock guards.
    pub fn fencing_token(&self) -> FencingToken {
        self.token
    }

    /// The session lease the lock is held under: Suspended on a lost connection (stop
    /// acting as the holder), Lost once the session expired.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The lock node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Releases this acquire; the last one deletes the lock node (retried under the
    /// client's retry policy; gone already counts as released).
    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
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
            held: Holding::default(),
        }
    }

    /// Waits until this holder has the lock.
    pub async fn acquire(&mut self) -> Result<LockGuard> {
        self.acquire_within(None)
            .await?
            .ok_or(Error::Client(zk_client::Error::Closed))
    }

    /// Waits at most `timeout` for the lock; `Ok(None)` if it did not come (nothing
    /// of this attempt is left behind).
    pub async fn try_acquire(&mut self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire_within(Some(tokio::time::Instant::now() + timeout))
            .await
    }

    async fn acquire_within(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<LockGuard>> {
        if let Some((hold, (path, token, lease))) = self
            .held
            .reenter(|held| (held.node.path().to_string(), held.token, held.lease.clone()))
        {
            return Ok(Some(LockGuard {
                hold,
                path,
                token,
                lease,
            }));
        }
        let line = Line {
            client: &self.client,
            dir: &self.dir,
            names: &[LOCK_NAME],
        };
        let Some((node, guard)) = line
            .wait_turn(LOCK_NAME, &self.data, deadline, first_in_line)
            .await?
        else {
            return Ok(None);
        };
        let token = FencingToken {
            czxid: node.stat.czxid,
            sequence: sequence_of(node.name(), LOCK_NAME).unwrap_or(0),
        };
        let lease = Lease::new(&self.client);
        let hold = self.held.hold(LockNode {
            node: guard,
            token,
            lease: lease.clone(),
        });
        Ok(Some(LockGuard {
            hold,
            path: node.path,
            token,
            lease,
        }))
    }

    /// Whether this holder has the lock (some guard of it is not released).
    pub fn is_acquired(&self) -> bool {
        self.held.is_held()
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
