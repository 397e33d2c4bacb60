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
//! ```no_run
//! # async fn demo(client: zk_client::Client) -> zk_recipes::Result<()> {
//! let mut rw = zk_recipes::ReadWriteLock::new(&client, "/locks/catalog");
//! rw.acquire_write().await?;
//! // ... change the catalog ...
//! if rw.downgrade().await? {
//!     // ... keep reading what we wrote; other readers may read too ...
//!     rw.release_read().await?;
//! } else {
//!     // A writer was already queued behind us: we still hold the write lock.
//!     rw.release_write().await?;
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::Client;
use zk_proto::ErrorCode;

use crate::contention::{first_in_line, Line, Turn};
use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::lock::FencingToken;
use crate::protected::{
    create_protected, protection_prefix, retrying, sequence_of, CreatedNode, NodeGuard,
};

/// The reader node name Curator uses.
pub const READ_NAME: &str = "__READ__";
/// The writer node name Curator uses.
pub const WRITE_NAME: &str = "__WRIT__";

/// A read-write lock on one path. One `ReadWriteLock` is one holder, reentrant on
/// each side: acquiring a side it already holds only counts.
#[derive(Debug)]
pub struct ReadWriteLock {
    client: Client,
    dir: String,
    read: Option<Held>,
    write: Option<Held>,
}

#[derive(Debug)]
struct Held {
    node: CreatedNode,
    count: usize,
    lease: Lease,
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
            read: None,
            write: None,
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
    pub async fn acquire_read(&mut self) -> Result<()> {
        self.acquire(false, None).await.map(|_| ())
    }

    /// Waits at most `timeout` to read; `Ok(false)` if it did not come.
    pub async fn try_acquire_read(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.acquire(false, Some(deadline)).await
    }

    /// Waits until this holder may write (no one else reads or writes).
    pub async fn acquire_write(&mut self) -> Result<()> {
        self.acquire(true, None).await.map(|_| ())
    }

    /// Waits at most `timeout` to write; `Ok(false)` if it did not come.
    pub async fn try_acquire_write(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.acquire(true, Some(deadline)).await
    }

    async fn acquire(
        &mut self,
        write: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<bool> {
        let (mine, other) = match write {
            true => (&mut self.write, &self.read),
            false => (&mut self.read, &self.write),
        };
        if let Some(held) = mine {
            held.count += 1;
            return Ok(true);
        }
        if other.is_some() {
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
        let Some(node) = node else {
            return Ok(false);
        };
        let held = Some(Held {
            node,
            count: 1,
            lease: Lease::new(&self.client),
        });
        match write {
            true => self.write = held,
            false => self.read = held,
        }
        Ok(true)
    }

    /// Turns the write lock into a read lock, with no writer getting in between: a
    /// reader node is made, and the writer node deleted, only if no other writer
    /// joined the line between the two (it would write while we read). `Ok(false)`
    /// if one did: the write lock is still held (release it, then read, if that
    /// will do). Readers waiting behind us may read once it returns `Ok(true)`.
    pub async fn downgrade(&mut self) -> Result<bool> {
        let Some(write) = &self.write else {
            return Err(Error::NotHeld);
        };
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
            return Ok(false);
        }
        guard.keep();
        let write = self.write.take().expect("checked above");
        self.read = Some(Held {
            node: reader,
            count: 1,
            lease: write.lease.clone(),
        });
        delete(&self.client, &write.node.path).await?;
        Ok(true)
    }

    /// Releases one read acquire; the last one deletes the reader node.
    pub async fn release_read(&mut self) -> Result<()> {
        release(&self.client, &mut self.read).await
    }

    /// Releases one write acquire; the last one deletes the writer node.
    pub async fn release_write(&mut self) -> Result<()> {
        release(&self.client, &mut self.write).await
    }

    /// Whether this holder may read now.
    pub fn holds_read(&self) -> bool {
        self.read.is_some()
    }

    /// Whether this holder may write now.
    pub fn holds_write(&self) -> bool {
        self.write.is_some()
    }

    /// The write holder's fencing token, while it holds the write lock.
    pub fn write_fencing_token(&self) -> Option<FencingToken> {
        self.write.as_ref().map(|h| FencingToken {
            czxid: h.node.stat.czxid,
            sequence: sequence_of(h.node.name(), WRITE_NAME).unwrap_or(0),
        })
    }

    /// The lease either side is held under, while held.
    pub fn lease(&self) -> Option<Lease> {
        self.write
            .as_ref()
            .or(self.read.as_ref())
            .map(|h| h.lease.clone())
    }

    /// The line's node names (readers and writers), first first.
    pub async fn participants(&self) -> Result<Vec<String>> {
        self.line().members().await
    }
}

async fn release(client: &Client, side: &mut Option<Held>) -> Result<()> {
    let Some(held) = side else {
        return Err(Error::NotHeld);
    };
    if held.count > 1 {
        held.count -= 1;
        return Ok(());
    }
    let path = held.node.path.clone();
    *side = None;
    delete(client, &path).await
}

/// Deletes a node of ours; already gone (the session expired) is released too.
async fn delete(client: &Client, path: &str) -> Result<()> {
    match retrying(|| client.delete(path, None)).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
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
