//! The same client for programs without an async runtime (ZooKeeper's synchronous API).
//! It runs its own small tokio runtime; do not call it from inside an async task.
//!
//! ```no_run
//! # fn demo() -> zk_client::Result<()> {
//! use zk_client::{blocking, Acl, CreateMode};
//! let zk = blocking::Client::connect("127.0.0.1:2181")?;
//! zk.create("/job", b"queued", &Acl::open_unsafe(), CreateMode::Persistent)?;
//! let (data, stat, watch) = zk.get_data_w("/job")?;
//! zk.set_data("/job", b"running", Some(stat.version))?;
//! let event = watch.wait()?;
//! # let _ = (data, event); Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use zk_proto::{Acl, AddWatchMode, CreateMode, OpResult, Stat};

use crate::error::{Error, Result};
use crate::state::SessionState;
use crate::watch::{OneshotWatcher, WatchedEvent};
use crate::ClientBuilder;

/// A blocking handle to one session. Clones share it.
#[derive(Debug, Clone)]
pub struct Client {
    runtime: Arc<tokio::runtime::Runtime>,
    inner: crate::Client,
}

/// A one-shot watch to wait on.
#[derive(Debug)]
pub struct Watcher {
    runtime: Arc<tokio::runtime::Runtime>,
    inner: OneshotWatcher,
}

impl Watcher {
    /// Blocks until the watch fires (or the session ends).
    pub fn wait(self) -> Result<WatchedEvent> {
        self.runtime.block_on(self.inner)
    }

    /// Blocks at most `timeout`; `None` if nothing happened by then.
    pub fn wait_timeout(self, timeout: Duration) -> Option<Result<WatchedEvent>> {
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.inner).await.ok() })
    }
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("zk-client")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::ConnectFailed(format!("cannot start the client runtime: {e}")))
}

impl Client {
    /// Connects with default settings.
    pub fn connect(connect_string: &str) -> Result<Client> {
        Client::connect_with(ClientBuilder::new(connect_string))
    }

    /// Connects with a configured builder.
    pub fn connect_with(builder: ClientBuilder) -> Result<Client> {
        let runtime = runtime()?;
        let inner = runtime.block_on(builder.connect())?;
        Ok(Client { runtime, inner })
    }

    /// The async client underneath (for use from async code).
    pub fn async_client(&self) -> &crate::Client {
        &self.inner
    }

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.inner.state()
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.inner.session_id()
    }

    fn watcher(&self, inner: OneshotWatcher) -> Watcher {
        Watcher {
            runtime: self.runtime.clone(),
            inner,
        }
    }

    /// See [`crate::Client::create`].
    pub fn create(&self, path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Result<String> {
        self.runtime
            .block_on(self.inner.create(path, data, acl, mode))
    }

    /// See [`crate::Client::create2`].
    pub fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.runtime
            .block_on(self.inner.create2(path, data, acl, mode))
    }

    /// See [`crate::Client::delete`].
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.runtime.block_on(self.inner.delete(path, version))
    }

    /// See [`crate::Client::exists`].
    pub fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.runtime.block_on(self.inner.exists(path))
    }

    /// See [`crate::Client::exists_w`].
    pub fn exists_w(&self, path: &str) -> Result<(Option<Stat>, Watcher)> {
        let (read, watch) = self.inner.exists_w(path);
        let stat = self.runtime.block_on(read)?;
        Ok((stat, self.watcher(watch)))
    }

    /// See [`crate::Client::get_data`].
    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.runtime.block_on(self.inner.get_data(path))
    }

    /// See [`crate::Client::get_data_w`].
    pub fn get_data_w(&self, path: &str) -> Result<(Vec<u8>, Stat, Watcher)> {
        let (read, watch) = self.inner.get_data_w(path);
        let (data, stat) = self.runtime.block_on(read)?;
        Ok((data, stat, self.watcher(watch)))
    }

    /// See [`crate::Client::set_data`].
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        self.runtime
            .block_on(self.inner.set_data(path, data, version))
    }

    /// See [`crate::Client::get_children`].
    pub fn get_children(&self, path: &str) -> Result<Vec<String>> {
        self.runtime.block_on(self.inner.get_children(path))
    }

    /// See [`crate::Client::get_children_w`].
    pub fn get_children_w(&self, path: &str) -> Result<(Vec<String>, Watcher)> {
        let (read, watch) = self.inner.get_children_w(path);
        let children = self.runtime.block_on(read)?;
        Ok((children, self.watcher(watch)))
    }

    /// See [`crate::Client::get_acl`].
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        self.runtime.block_on(self.inner.get_acl(path))
    }

    /// See [`crate::Client::set_acl`].
    pub fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
        self.runtime
            .block_on(self.inner.set_acl(path, acl, version))
    }

    /// See [`crate::Client::sync`].
    pub fn sync(&self, path: &str) -> Result<()> {
        self.runtime.block_on(self.inner.sync(path))
    }

    /// Builds and commits a transaction: `f` adds the ops.
    pub fn transaction(
        &self,
        f: impl FnOnce(crate::Transaction) -> crate::Transaction,
    ) -> Result<Vec<OpResult>> {
        let tx = f(self.inner.transaction());
        self.runtime.block_on(tx.commit())
    }

    /// See [`crate::Client::add_auth`].
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.runtime.block_on(self.inner.add_auth(scheme, auth))
    }

    /// A persistent watch; the returned iterator blocks for each event and ends with
    /// the session.
    pub fn add_watch(
        &self,
        path: &str,
        mode: AddWatchMode,
    ) -> Result<impl Iterator<Item = WatchedEvent>> {
        use futures::StreamExt;
        let mut stream = self.runtime.block_on(self.inner.add_watch(path, mode))?;
        let runtime = self.runtime.clone();
        Ok(std::iter::from_fn(move || runtime.block_on(stream.next())))
    }

    /// Closes the session.
    pub fn close(&self) {
        self.runtime.block_on(self.inner.close());
    }
}
