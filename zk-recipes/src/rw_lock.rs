//! [`ReadWriteLock`]: readers share, writers exclude, with the node layout of
//! Curator's `InterProcessReadWriteLock`: readers create `<dir>/_c_<guid>-__READ__<seq>`
//! and writers `<dir>/_c_<guid>-__WRIT__<seq>` in one line ordered by sequence. A
//! writer holds the lock when first in line; a reader when no writer is before it.
//! A writer waits for the node just before its own, a reader for the first writer
//! before it.
//!
//! A writer can downgrade to a reader without letting a writer in between
//! ([`ReadWriteLock::downgrade`]); a reader cannot upgrade (it would wait for itself).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use zk_recipes::rw_lock::Downgrade;
//! let mut rw = zk_recipes::ReadWriteLock::new(&client, "/locks/catalog");
//! let write = rw.acquire_write().await?;
//! // ... change the catalog ...
//! match rw.downgrade(write).await? {
//!     Downgrade::Read(read) => {
//!         // ... keep reading what we wrote; other readers may read too ...
//!         read.release().await?;
//!     }
//!     // A writer was already queued behind us: we still hold the write lock.
//!     Downgrade::StillWriting(write) => write.release().await?,
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::Client;

use crate::contention::{first_in_line, Line, Turn};
use crate::error::{Error, Result};
use crate::held::{Hold, Holding, Release};
use crate::lease::Lease;
use crate::lock::FencingToken;
use crate::protected::{create_protected, protection_prefix, sequence_of, CreatedNode, NodeGuard};

/// The reader node name Curator uses.
pub const READ_NAME: &str = "__READ__";
/// The writer node name Curator uses.
pub const WRITE_NAME: &str = "__WRIT__";

/// A read-write lock on one path. One `ReadWriteLock` is one holder, reentrant on
/// each side: acquiring a side it already holds hands out another guard on the same
/// node, deleted when the last guard of that side is released.
#[derive(Debug)]
pub struct ReadWriteLock {
    client: Client,
    dir: String,
    read: Holding<SideNode>,
    write: Holding<SideNode>,
}

/// A reader or writer node while held.
#[derive(Debug)]
struct SideNode {
    owned: NodeGuard,
    node: CreatedNode,
    lease: Lease,
}

impl Release for SideNode {
    async fn release(self) -> Result<()> {
        self.owned.release().await
    }
}

/// One read acquire of a [`ReadWriteLock`]. [`ReadGuard::release`] gives it back; a
/// guard dropped unreleased does so in the background.
#[derive(Debug)]
#[must_use = "the read lock is released when the guard is dropped"]
pub struct ReadGuard {
    hold: Hold<SideNode>,
    lease: Lease,
}

/// One write acquire of a [`ReadWriteLock`]. [`WriteGuard::release`] gives it back
/// ([`ReadWriteLock::downgrade`] turns it into a read); a guard dropped unreleased is
/// released in the background.
#[derive(Debug)]
#[must_use = "the write lock is released when the guard is dropped"]
pub struct WriteGuard {
    hold: Hold<SideNode>,
    node: CreatedNode,
    lease: Lease,
}

impl ReadGuard {
    /// The session lease the read lock is held under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Releases this acquire; the last read acquire deletes the reader node.
    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
}

impl WriteGuard {
    /// The fencing token to hand to the storage the lock guards.
    pub fn fencing_token(&self) -> FencingToken {
        FencingToken {
            czxid: self.node.stat.czxid,
            sequence: sequence_of(self.node.name(), WRITE_NAME).unwrap_or(0),
        }
    }

    /// The session lease the write lock is held under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Releases this acquire; the last write acquire deletes the writer node.
    pub async fn release(self) -> Result<()> {
        self.hold.release().await
    }
}

/// What [`ReadWriteLock::downgrade`] ended with.
#[derive(Debug)]
pub enum Downgrade {
    /// Reading now; the write lock was given back with no writer in between.
    Read(ReadGuard),
    /// A writer had queued behind ours: still writing (release, then read, if that
    /// will do).
    StillWriting(WriteGuard),
}

/// A reader's rule: it reads when no writer is before it, else it waits for the first.
fn no_writer_before(line: &[String], index: usize) -> Turn {
    match line[..index].iter().find(|n| n.contains(WRITE_NAME)) {
        None => Turn::Ours,
        Some(writer) => Turn::After(writer.clone()),
    }
}

impl ReadWriteLock {
    /// A read-write lock on `dir` (created, with its parents, as containers).
    pub fn new(client: &Client, dir: &str) -> ReadWriteLock {
        ReadWriteLock {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            read: Holding::default(),
            write: Holding::default(),
        }
    }

    fn line(&self) -> Line<'_> {
        Line {
            client: &self.client,
            dir: &self.dir,
            names: &[READ_NAME, WRITE_NAME],
        }
    }

    /// Waits until this holder may read.
    pub async fn acquire_read(&mut self) -> Result<ReadGuard> {
        let (hold, node) = self.acquire(false, None).await?.ok_or(Error::Closed)?;
        Ok(ReadGuard {
            hold,
            lease: node.1,
        })
    }

    /// Waits at most `timeout` to read; `Ok(None)` if it did not come.
    pub async fn try_acquire_read(&mut self, timeout: Duration) -> Result<Option<ReadGuard>> {
        let deadline = tokio::time::Instant::now() + timeout;
        Ok(self
            .acquire(false, Some(deadline))
            .await?
            .map(|(hold, (_, lease))| ReadGuard { hold, lease }))
    }

    /// Waits until this holder may write (no one else reads or writes).
    pub async fn acquire_write(&mut self) -> Result<WriteGuard> {
        let (hold, (node, lease)) = self.acquire(true, None).await?.ok_or(Error::Closed)?;
        Ok(WriteGuard { hold, node, lease })
    }

    /// Waits at most `timeout` to write; `Ok(None)` if it did not come.
    pub async fn try_acquire_write(&mut self, timeout: Duration) -> Result<Option<WriteGuard>> {
        let deadline = tokio::time::Instant::now() + timeout;
        Ok(self
            .acquire(true, Some(deadline))
            .await?
            .map(|(hold, (node, lease))| WriteGuard { hold, node, lease }))
    }

    #[allow(clippy::type_complexity)]
    async fn acquire(
        &mut self,
        write: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<(Hold<SideNode>, (CreatedNode, Lease))>> {
        let (mine, other) = match write {
            true => (&self.write, &self.read),
            false => (&self.read, &self.write),
        };
        if let Some(again) = mine.reenter(|held| (held.node.clone(), held.lease.clone())) {
            return Ok(Some(again));
        }
        if other.is_held() {
            // Our own node would be in the way of the one we ask for.
            return Err(Error::WouldDeadlock(if write {
                "a read lock cannot be upgraded to a write lock"
            } else {
                "holding the write lock: downgrade() to read"
            }));
        }
        let line = self.line();
        let node = match write {
            true => {
                line.wait_turn(WRITE_NAME, b"", deadline, first_in_line)
                    .await?
            }
            false => {
                line.wait_turn(READ_NAME, b"", deadline, no_writer_before)
                    .await?
            }
        };
        let Some((node, guard)) = node else {
            return Ok(None);
        };
        let lease = Lease::new(&self.client);
        let held = SideNode {
            owned: guard,
            node: node.clone(),
            lease: lease.clone(),
        };
        let hold = match write {
            true => self.write.hold(held),
            false => self.read.hold(held),
        };
        Ok(Some((hold, (node, lease))))
    }

    /// Turns a write lock into a read lock with no writer getting in between: a
    /// reader node is made, and `write` released, only if no other writer joined the
    /// line between the two (it would write while we read). If one did, the reader
    /// node goes and the write guard comes back ([`Downgrade::StillWriting`]).
    /// Readers waiting behind us may read once it returns [`Downgrade::Read`] (and
    /// every other write guard of this holder is released).
    pub async fn downgrade(&mut self, write: WriteGuard) -> Result<Downgrade> {
        if self.read.is_held() {
            return Err(Error::WouldDeadlock("already reading"));
        }
        let reader = create_protected(
            &self.client,
            &self.dir,
            &protection_prefix(),
            READ_NAME,
            b"",
        )
        .await?;
        let guard = NodeGuard::new(&self.client, &reader.path);
        let line = self.line().members().await?;
        let from = line.iter().position(|n| *n == write.node.name());
        let to = line.iter().position(|n| *n == reader.name());
        let (Some(from), Some(to)) = (from, to) else {
            // Our writer (or reader) node is gone: the session expired.
            return Err(Error::NodeLost(write.node.path.clone()));
        };
        if line[from + 1..to].iter().any(|n| n.contains(WRITE_NAME)) {
            guard.remove().await?;
            return Ok(Downgrade::StillWriting(write));
        }
        let lease = write.lease.clone();
        let hold = self.read.hold(SideNode {
            owned: guard,
            node: reader,
            lease: lease.clone(),
        });
        write.release().await?;
        Ok(Downgrade::Read(ReadGuard { hold, lease }))
    }

    /// Whether this holder may read now (some read guard is not released).
    pub fn holds_read(&self) -> bool {
        self.read.is_held()
    }

    /// Whether this holder may write now (some write guard is not released).
    pub fn holds_write(&self) -> bool {
        self.write.is_held()
    }

    /// The line's node names (readers and writers), first first.
    pub async fn participants(&self) -> Result<Vec<String>> {
        self.line().members().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn readers_share_until_a_writer_and_writers_wait_for_their_predecessor() {
        let l = line(&[
            "_c_a-__READ__0000000001",
            "_c_b-__READ__0000000002",
            "_c_c-__WRIT__0000000003",
            "_c_d-__READ__0000000004",
            "_c_e-__WRIT__0000000005",
        ]);
        assert_eq!(no_writer_before(&l, 0), Turn::Ours);
        assert_eq!(no_writer_before(&l, 1), Turn::Ours);
        assert_eq!(no_writer_before(&l, 3), Turn::After(l[2].clone()));
        assert_eq!(first_in_line(&l, 2), Turn::After(l[1].clone()));
        assert_eq!(first_in_line(&l, 4), Turn::After(l[3].clone()));
        assert_eq!(first_in_line(&l, 0), Turn::Ours);
    }
}
