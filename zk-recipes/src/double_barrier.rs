//! [`DoubleBarrier`]: `n` members enter together and leave together, with the node
//! layout of Curator's `DistributedDoubleBarrier` (ZooKeeper's double-barrier
//! recipe): each member creates an ephemeral `<dir>/<uuid>`; the one that sees `n`
//! members creates `<dir>/ready`, which lets everyone in. To leave, the lowest member
//! waits for the highest to go and every other member deletes its node and waits
//! for the lowest; the last one out deletes `ready`.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! # let (c2, c3) = (client.clone(), client.clone());
//! # let others: Vec<_> = [c2, c3].into_iter().map(|c| tokio::spawn(async move {
//! #     let mut round = zk_recipes::DoubleBarrier::new(&c, "/jobs/round-7", 3);
//! #     round.enter().await.unwrap();
//! #     round.leave().await.unwrap();
//! # })).collect();
//! let mut round = zk_recipes::DoubleBarrier::new(&client, "/jobs/round-7", 3);
//! round.enter().await?; // all three are here
//! // ... compute together ...
//! round.leave().await?; // all three are done
//! # for other in others { other.await?; }
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::time::Instant;
use zk_client::{Client, CreateMode};
use zk_proto::ErrorCode;

use crate::error::{Error, Result};
use crate::protected::ensure_containers;
use crate::retry::with_retries;

/// The node that lets members in, as Curator names it.
pub const READY_NODE: &str = "ready";

/// One member of a double barrier of `n`.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    dir: String,
    members: usize,
    name: String,
}

impl DoubleBarrier {
    /// A member of the barrier at `dir` for `members` members.
    pub fn new(client: &Client, dir: &str, members: usize) -> DoubleBarrier {
        DoubleBarrier {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            members: members.max(1),
            name: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn our_path(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }

    fn ready_path(&self) -> String {
        format!("{}/{READY_NODE}", self.dir)
    }

    /// Waits until all members have entered.
    pub async fn enter(&mut self) -> Result<()> {
        self.enter_until(None).await.map(|_| ())
    }

    /// Waits at most `timeout` for all members to enter: whether they did. On
    /// `false` this member has left again (its node is deleted).
    pub async fn enter_within(&mut self, timeout: Duration) -> Result<bool> {
        self.enter_until(Some(Instant::now() + timeout)).await
    }

    async fn enter_until(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let ours = self.our_path();
        loop {
            match self.client.create(&ours).mode(CreateMode::Ephemeral).await {
                Ok(_) => break,
                // Ours from an attempt whose answer was lost.
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => break,
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                    ensure_containers(&self.client, &self.dir).await?;
                }
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            let (ready, ready_changed) = self.client.exists_and_watch(&self.ready_path());
            let (listed, members_changed) = self.client.get_children_and_watch(&self.dir);
            let (ready, listed) = match (ready.await, listed.await) {
                (Ok(ready), Ok(listed)) => (ready, listed),
                (Err(e), _) | (_, Err(e)) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                (Err(e), _) | (_, Err(e)) => return Err(e.into()),
            };
            if ready.is_some() {
                return Ok(true);
            }
            let count = listed.iter().filter(|c| *c != READY_NODE).count();
            if count >= self.members {
                match with_retries(&self.client, || self.client.create(&self.ready_path())).await {
                    Ok(_) => return Ok(true),
                    Err(e) if e.code() == Some(ErrorCode::NodeExists) => return Ok(true),
                    Err(e) => return Err(e.into()),
                }
            }
            let woke = async {
                tokio::select! {
                    r = ready_changed => r,
                    r = members_changed => r,
                }
            };
            let woke = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, woke).await {
                    Ok(w) => w,
                    Err(_) => {
                        // Gave up: do not count as entered.
                        delete_if_there(&self.client, &ours).await?;
                        return Ok(false);
                    }
                },
                None => woke.await,
            };
            if let Err(e) = woke {
                if e.is_session_lost() {
                    return Err(e.into());
                }
            }
        }
    }

    /// Waits until all members have left.
    pub async fn leave(&mut self) -> Result<()> {
        self.leave_until(None).await.map(|_| ())
    }

    /// Waits at most `timeout` for all members to leave: whether they did.
    pub async fn leave_within(&mut self, timeout: Duration) -> Result<bool> {
        self.leave_until(Some(Instant::now() + timeout)).await
    }

    async fn leave_until(&mut self, deadline: Option<Instant>) -> Result<bool> {
        let ours = self.our_path();
        let mut ours_should_exist = true;
        loop {
            let mut members =
                match with_retries(&self.client, || self.client.get_children(&self.dir)).await {
                    Ok(children) => children,
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
            members.retain(|m| m != READY_NODE);
            members.sort();
            if members.is_empty() {
                break;
            }
            let index = members.iter().position(|m| *m == self.name);
            if index.is_none() && ours_should_exist {
                return Err(Error::NodeLost(ours));
            }
            if members.len() == 1 {
                // Only ours is left (or only someone else's, once ours is gone).
                if ours_should_exist {
                    delete_if_there(&self.client, &ours).await?;
                }
                break;
            }
            // The lowest waits for the highest to go; the others go, then wait for
            // the lowest.
            let lowest = index == Some(0);
            let other = match lowest {
                true => &members[members.len() - 1],
                false => &members[0],
            };
            let (read, changed) = self
                .client
                .exists_and_watch(&format!("{}/{other}", self.dir));
            let watched = match read.await {
                Ok(stat) => stat,
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if !lowest && ours_should_exist {
                delete_if_there(&self.client, &ours).await?;
                ours_should_exist = false;
            }
            if watched.is_none() {
                continue;
            }
            let woke = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, changed).await {
                    Ok(w) => w,
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
        delete_if_there(&self.client, &self.ready_path()).await?;
        Ok(true)
    }
}

async fn delete_if_there(client: &Client, path: &str) -> Result<()> {
    match with_retries(client, || client.delete(path, None)).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
