//! [`Modeled`]: a typed znode — one path whose data is the app's own type through
//! serde, in a [`Format`] (JSON or MessagePack), with reads that validate, creates and
//! writes that tell for sure whether they applied, and a read-modify-write
//! [`Modeled::update`] that retries through contention (Curator's `ModeledFramework`,
//! plus the update loop and exactly-once writes it leaves to the app).
//!
//! - [`Modeled::get`]: the value and the data version it was read at
//!   ([`Versioned`]), `None` if the node does not exist. Data that does not decode as
//!   the type is an [`Error::Codec`] naming the path, the format and the type; it is
//!   never taken for a missing node.
//! - [`Modeled::create`]: creates the node, failing with NodeExists if it is there
//!   (parents created on the way with [`Modeled::parents`]).
//! - [`Modeled::set`]: writes the value whatever the node holds (creating it if
//!   missing); [`Modeled::set_versioned`] only if the node is still at a version.
//! - [`Modeled::update`] and [`Modeled::try_update`]: read, apply a function, write
//!   back only if nobody wrote in between (a versioned write, or a create when the
//!   node was missing), and on a conflict (BadVersion, or NodeExists when another
//!   creator won, or NoNode when it was deleted) start over, at most
//!   [`Modeled::max_attempts`] times, then [`Error::TooManyConflicts`].
//! - [`Modeled::delete`] and [`Modeled::delete_versioned`].
//! - [`Modeled::watch`]: the value as it changes — a [`ConfigCache`] on the same path
//!   and format.
//!
//! # Lost answers
//!
//! Reads are retried under the client's retry policy ([`Client::retry`]). So is the
//! unconditional [`Modeled::set`]: sending the same bytes again cannot do harm. A
//! versioned write or a create whose answer is lost to a connection loss cannot simply
//! be sent again (a retry of one that applied fails with BadVersion or NodeExists, and
//! a re-read cannot tell our write from someone else's writing the same bytes: two
//! updates incrementing a counter from 4 both write 5). So [`Modeled::create`],
//! [`Modeled::set_versioned`] and the writes of [`Modeled::update`] go as
//! [`crate::atomic_long`] writes go: a `multi` that also creates a marker node
//! `<path>/_op-<guid>`, resent after a lost answer, the marker telling whether an
//! earlier send applied, deleted once the outcome is known. Each applies exactly once
//! or not at all, and an update never applies twice. While a write is in flight its
//! marker is a child of the node (so the node must be persistent and its ACL must let
//! the writer create children); [`Modeled::delete`] deletes markers left behind by a
//! writer that failed mid-write.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! use serde::{Deserialize, Serialize};
//! use zk_client::Client;
//! use zk_recipes::Modeled;
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! struct Limits {
//!     max_connections: u32,
//!     hosts: Vec<String>,
//! }
//!
//! let zk = Client::connect(&server.connect_string()).await?;
//! let limits: Modeled<Limits> = Modeled::json(&zk, "/config/limits").parents(true);
//! assert!(limits.get().await?.is_none());
//!
//! limits.create(&Limits { max_connections: 10, hosts: vec![] }).await?;
//! // A read-modify-write, retried if someone else writes in between.
//! let now = limits
//!     .update(|current| {
//!         let mut l = current.unwrap_or(Limits { max_connections: 0, hosts: vec![] });
//!         l.max_connections += 5;
//!         l.hosts.push("10.0.0.7".into());
//!         l
//!     })
//!     .await?;
//! assert_eq!(now.value.max_connections, 15);
//!
//! // A compare-and-set against the version read.
//! let read = limits.get().await?.expect("the node exists");
//! assert_eq!(read.version, now.version);
//! let next = Limits { max_connections: 20, ..read.value };
//! limits.set_versioned(&next, read.version).await?;
//! // The stale version is refused now.
//! assert!(limits.set_versioned(&next, read.version).await.is_err());
//!
//! // Data that is not a Limits is an error naming the node, never a missing value.
//! zk.set_data("/config/limits", b"{oops", None).await?;
//! let err = limits.get().await.unwrap_err();
//! assert!(err.to_string().contains("/config/limits"));
//! limits.delete().await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use zk_client::{Acl, Client, CreateMode, Error as ClientError, OpResult, Stat, Transaction};
use zk_proto::ErrorCode;

use crate::atomic_long::{commit_once, op_marker, MarkerAt, Once, OP_MARKER_PREFIX};
use crate::error::{Error, Result};
use crate::node_cache::{ConfigCache, Format};
use crate::retry::with_retries;

/// How many times [`Modeled::update`] (and the other loops: a `set` whose node is
/// deleted and created under it, a `delete` that finds markers) tries before giving
/// up, unless [`Modeled::max_attempts`] says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 100;

/// A value with the node's data version it was read at or written as: what
/// [`Modeled::set_versioned`] and [`Modeled::delete_versioned`] compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The node's data version holding it (`Stat::version`).
    pub version: i32,
}

/// A typed znode at one path (see the [module](self) docs). Cheap to clone; it holds
/// a handle on the client, no state of the node.
pub struct Modeled<T> {
    client: Client,
    path: String,
    format: Format,
    parents: bool,
    max_attempts: u32,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Modeled<T> {
    fn clone(&self) -> Self {
        Modeled {
            client: self.client.clone(),
            path: self.path.clone(),
            format: self.format,
            parents: self.parents,
            max_attempts: self.max_attempts,
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Modeled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Modeled")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("type", &std::any::type_name::<T>())
            .field("parents", &self.parents)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl<T> Modeled<T> {
    /// The node at `path`, its data a `T` in `format`. Nothing is sent until an
    /// operation is called.
    pub fn new(client: &Client, path: &str, format: Format) -> Modeled<T> {
        let path = match path.trim_end_matches('/') {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Modeled {
            client: client.clone(),
            path,
            format,
            parents: false,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            _type: PhantomData,
        }
    }

    /// The node at `path`, its data JSON.
    pub fn json(client: &Client, path: &str) -> Modeled<T> {
        Modeled::new(client, path, Format::Json)
    }

    /// The node at `path`, its data MessagePack (struct fields by name).
    pub fn msgpack(client: &Client, path: &str) -> Modeled<T> {
        Modeled::new(client, path, Format::MsgPack)
    }

    /// Whether creating the node (by [`Modeled::create`], [`Modeled::set`] or
    /// [`Modeled::update`]) creates its missing parents too, as persistent nodes with
    /// an open ACL (off by default: a missing parent is NoNode).
    pub fn parents(mut self, create: bool) -> Self {
        self.parents = create;
        self
    }

    /// How many attempts [`Modeled::update`] makes before
    /// [`Error::TooManyConflicts`] ([`DEFAULT_MAX_ATTEMPTS`] by default; at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How the value is stored.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The error when every attempt met a conflict.
    fn exhausted(&self) -> Error {
        Error::TooManyConflicts {
            path: self.path.clone(),
            attempts: self.max_attempts,
        }
    }

    /// Reads the raw node: its data and Stat, `None` if it does not exist.
    async fn read_raw(&self) -> Result<Option<(Vec<u8>, Stat)>> {
        match with_retries(&self.client, || self.client.get_data(&self.path)).await {
            Ok(read) => Ok(Some(read)),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the node holding `data`, exactly once (see the module docs): `Ok(Ok)`
    /// if this call created it, `Ok(Err(NodeExists))` if it was there, `Ok(Err(NoNode))`
    /// if its parent is missing (and not to be created).
    async fn create_once(&self, data: &[u8]) -> Result<std::result::Result<(), ClientError>> {
        let open = Acl::open_unsafe();
        let build = |t: Transaction| t.create(&self.path, data, &open, CreateMode::Persistent);
        let mut made_parents = false;
        loop {
            match commit_once(&self.client, &self.marker(), MarkerAt::Last, &build).await? {
                Once::Applied { .. } => return Ok(Ok(())),
                Once::Refused(e)
                    if e.code() == Some(ErrorCode::NoNode) && self.parents && !made_parents =>
                {
                    self.create_parents().await?;
                    made_parents = true;
                }
                Once::Refused(e) => return Ok(Err(e)),
            }
        }
    }

    /// Creates the node's missing ancestors (persistent, open ACL).
    async fn create_parents(&self) -> Result<()> {
        let parent = zk_proto::path::parent(&self.path);
        if parent == "/" {
            return Ok(());
        }
        with_retries(&self.client, || self.client.ensure_path(parent))
            .await
            .map_err(Error::from)
    }

    /// Sets the node to `data` if it is at `version`, exactly once: `Ok(Ok(new
    /// version))`, or `Ok(Err(BadVersion or NoNode))` if it was not applied.
    async fn set_once(
        &self,
        data: &[u8],
        version: i32,
    ) -> Result<std::result::Result<i32, ClientError>> {
        let build = |t: Transaction| t.set_data(&self.path, data, Some(version));
        match commit_once(&self.client, &self.marker(), MarkerAt::First, &build).await? {
            Once::Applied { results, .. } => {
                let stat = results.into_iter().flatten().find_map(|r| match r {
                    OpResult::SetData { stat } => Some(stat),
                    _ => None,
                });
                // A versioned setData that applied moved the version by one.
                Ok(Ok(stat.map_or(version.wrapping_add(1), |s| s.version)))
            }
            // The marker's create fails first when the node is gone: say so of the node.
            Once::Refused(e) if e.code() == Some(ErrorCode::NoNode) => {
                Ok(Err(self.keeper(ErrorCode::NoNode)))
            }
            Once::Refused(e) => Ok(Err(e)),
        }
    }

    /// A fresh marker path for one write.
    fn marker(&self) -> String {
        op_marker(&self.path)
    }

    /// A server error about the node.
    fn keeper(&self, code: ErrorCode) -> ClientError {
        ClientError::Keeper {
            code,
            path: self.path.clone(),
        }
    }

    /// Deletes the node whatever its version: NoNode if it does not exist (a delete
    /// resent after a lost answer that finds the node gone succeeds). Markers of
    /// writes in flight, or left behind by a writer that failed, are deleted with it;
    /// other children make it NotEmpty.
    pub async fn delete(&self) -> Result<()> {
        self.delete_inner(None).await
    }

    /// Deletes the node only if it is at `version`: BadVersion if it is not, NoNode
    /// if it does not exist.
    pub async fn delete_versioned(&self, version: i32) -> Result<()> {
        self.delete_inner(Some(version)).await
    }

    async fn delete_inner(&self, version: Option<i32>) -> Result<()> {
        for _ in 0..self.max_attempts {
            let mut sends = 0u32;
            let outcome = with_retries(&self.client, || {
                sends += 1;
                self.client.delete(&self.path, version)
            })
            .await;
            match outcome {
                Ok(()) => return Ok(()),
                // Gone: by our own first send, whose answer was lost, or by someone.
                Err(e) if e.code() == Some(ErrorCode::NoNode) && sends > 1 => return Ok(()),
                Err(e) if e.code() == Some(ErrorCode::NotEmpty) => {
                    if !self.delete_markers().await? {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(self.exhausted())
    }

    /// Deletes the write markers under the node: `false` if it has other children.
    async fn delete_markers(&self) -> Result<bool> {
        let children =
            match with_retries(&self.client, || self.client.get_children(&self.path)).await {
                Ok(children) => children,
                Err(e) if e.code() == Some(ErrorCode::NoNode) => return Ok(true),
                Err(e) => return Err(e.into()),
            };
        if !children.iter().all(|c| c.starts_with(OP_MARKER_PREFIX)) {
            return Ok(false);
        }
        if !children.is_empty() {
            // A marker of a write in flight is deleted with the node anyway; give it a
            // moment to be deleted by its writer first.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for child in children {
            let marker = zk_client::paths::join(&self.path, &child);
            match with_retries(&self.client, || self.client.delete(&marker, None)).await {
                Ok(()) => {}
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}

impl<T: Serialize + DeserializeOwned> Modeled<T> {
    /// The value and its data version, or `None` if the node does not exist. Data that
    /// does not decode as a `T` is an [`Error::Codec`] naming the path and format.
    /// Retried under the client's retry policy.
    pub async fn get(&self) -> Result<Option<Versioned<T>>> {
        match self.read_raw().await? {
            Some((data, stat)) => Ok(Some(Versioned {
                value: self.decode(&data)?,
                version: stat.version,
            })),
            None => Ok(None),
        }
    }

    /// Creates the node holding `value` (persistent, open ACL; parents too with
    /// [`Modeled::parents`]). Fails with NodeExists if it exists, NoNode if its parent
    /// does not (and parents are not created). Exactly once through lost answers: a
    /// create whose answer was lost is never reported as NodeExists.
    pub async fn create(&self, value: &T) -> Result<()> {
        let data = self.encode(value)?;
        self.create_once(&data).await?.map_err(Error::from)
    }

    /// Writes `value` whatever the node holds, creating the node if it does not exist;
    /// answers the new data version. (Resent as it is after a lost answer: writing the
    /// same bytes twice leaves the node as once.)
    pub async fn set(&self, value: &T) -> Result<i32> {
        let data = self.encode(value)?;
        for _ in 0..self.max_attempts {
            let set = with_retries(&self.client, || {
                self.client.set_data(&self.path, &data, None)
            })
            .await;
            match set {
                Ok(stat) => return Ok(stat.version),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
            let create = with_retries(&self.client, || {
                self.client
                    .create(&self.path)
                    .data(&data)
                    .parents(self.parents)
            })
            .await;
            match create {
                Ok(_) => return Ok(0),
                // Created meanwhile (perhaps by our own create, its answer lost): set it.
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(self.exhausted())
    }

    /// Writes `value` only if the node is still at `version` (from [`Modeled::get`] or
    /// an earlier write); answers the new data version. Fails with BadVersion if
    /// someone wrote since, NoNode if the node does not exist. Exactly once through
    /// lost answers (see the module docs). A negative version (ZooKeeper's "any") is
    /// refused: that is [`Modeled::set`].
    pub async fn set_versioned(&self, value: &T, version: i32) -> Result<i32> {
        if version < 0 {
            return Err(Error::Client(ClientError::BadArguments(format!(
                "version {version} for {}: a versioned write needs a version read (use set for any)",
                self.path
            ))));
        }
        let data = self.encode(value)?;
        self.set_once(&data, version).await?.map_err(Error::from)
    }

    /// Read-modify-write: reads the value (`None` if the node does not exist), calls
    /// `f` on it and writes what it returns — a versioned write, or a create (parents
    /// too with [`Modeled::parents`]) if the node did not exist — and if someone wrote,
    /// created or deleted the node in between, starts over with what is there now.
    /// `f` may be called several times; the write that applied is the last call's.
    /// Answers the value written and its version. At most [`Modeled::max_attempts`]
    /// attempts, then [`Error::TooManyConflicts`]; data that does not decode fails at
    /// once ([`Error::Codec`]), as does a missing parent without
    /// [`Modeled::parents`] (NoNode).
    pub async fn update<F>(&self, mut f: F) -> Result<Versioned<T>>
    where
        F: FnMut(Option<T>) -> T,
    {
        let written = self.try_update(|current| Some(f(current))).await?;
        // `f` never declines, so a write was made.
        written.ok_or_else(|| self.exhausted())
    }

    /// [`Modeled::update`] where `f` may decline: `None` leaves the node as it is and
    /// answers `None` (a conditional update: "set the owner if there is none").
    pub async fn try_update<F>(&self, mut f: F) -> Result<Option<Versioned<T>>>
    where
        F: FnMut(Option<T>) -> Option<T>,
    {
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(conflict_pause(attempt)).await;
            }
            let (current, version) = self.read_decoded().await?;
            let Some(new) = f(current) else {
                return Ok(None);
            };
            if let Some(written) = self.write_over(version, new, attempt).await? {
                return Ok(Some(written));
            }
        }
        Err(self.exhausted())
    }

    /// The value and its version, `(None, None)` if the node does not exist.
    async fn read_decoded(&self) -> Result<(Option<T>, Option<i32>)> {
        Ok(match self.read_raw().await? {
            Some((data, stat)) => (Some(self.decode(&data)?), Some(stat.version)),
            None => (None, None),
        })
    }

    /// One attempt's write of an update: `new` over the node read at `version` (a
    /// create if it was missing). `None` on a conflict (someone wrote, created or
    /// deleted it since).
    async fn write_over(
        &self,
        version: Option<i32>,
        new: T,
        attempt: u32,
    ) -> Result<Option<Versioned<T>>> {
        let data = self.encode(&new)?;
        let written = match version {
            Some(version) => match self.set_once(&data, version).await? {
                Ok(version) => Some(version),
                Err(e) if matches!(e.code(), Some(ErrorCode::BadVersion | ErrorCode::NoNode)) => {
                    None
                }
                Err(e) => return Err(e.into()),
            },
            None => match self.create_once(&data).await? {
                Ok(()) => Some(0),
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => None,
                Err(e) => return Err(e.into()),
            },
        };
        if written.is_none() {
            tracing::debug!(path = %self.path, attempt, "update conflicted; reading again");
        }
        Ok(written.map(|version| Versioned {
            value: new,
            version,
        }))
    }

    /// `value` as node data.
    fn encode(&self, value: &T) -> Result<Vec<u8>> {
        self.format.encode(value).map_err(|e| match e {
            Error::Codec(reason) => Error::Codec(format!(
                "a {} for {} does not encode as {}: {reason}",
                std::any::type_name::<T>(),
                self.path,
                self.format.name()
            )),
            other => other,
        })
    }

    /// Node data as a `T`, or an error naming the path and format.
    fn decode(&self, data: &[u8]) -> Result<T> {
        self.format.decode(data).map_err(|e| match e {
            Error::Codec(reason) => Error::Codec(format!(
                "node {} does not hold {} decoding as {}: {reason}",
                self.path,
                self.format.name(),
                std::any::type_name::<T>()
            )),
            other => other,
        })
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Modeled<T> {
    /// The value as it changes: a [`ConfigCache`] on the same path and format, kept
    /// current by watches, started (close it when done).
    pub fn watch(&self) -> ConfigCache<T> {
        let cache = ConfigCache::new(&self.client, &self.path, self.format);
        cache.start();
        cache
    }
}

/// A short random pause before the next attempt after a conflict, growing with the
/// attempts (at most 50 ms), so that contenders drift apart.
fn conflict_pause(attempt: u32) -> Duration {
    let cap = u64::from(attempt.min(25)) * 2 + 1;
    let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % cap;
    Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_short() {
        for attempt in 1..200 {
            assert!(conflict_pause(attempt) <= Duration::from_millis(50));
        }
    }
}
