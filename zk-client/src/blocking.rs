//! The same client for programs without an async runtime (ZooKeeper's synchronous API).
//! It runs its own small tokio runtime; do not call it from inside an async task.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A server on a runtime of its own (in production: your ensemble).
//! # let runtime = tokio::runtime::Runtime::new()?;
//! # let server = runtime.block_on(zk_server::testing::TestingServer::start())?;
//! # let connect_string = server.connect_string();
//! use zk_client::blocking;
//! let zk = blocking::Client::connect(&connect_string)?;
//! zk.create("/job").data(b"queued").run()?;
//! let (data, stat, watch) = zk.get_data_and_watch("/job")?;
//! zk.set_data("/job", b"running", Some(stat.version))?;
//! let event = watch.wait()?;
//! # let _ = (data, event);
//! # zk.close();
//! # runtime.block_on(async move { drop(server) });
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use zk_proto::{Acl, AddWatchMode, ClientInfo, Stat, WatcherType};

use crate::client::{ReadOp, ReadResult};
use crate::create::{Create, CreateOutput, Handle, ModeUnset};
use crate::error::{Error, Result};
use crate::multi::OpResult;
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

/// Every state transition of the session, each `next()` blocking until the next one;
/// ends after a terminal state (see [`crate::Client::state_changes`]).
#[derive(Debug)]
pub struct StateChanges {
    runtime: Arc<tokio::runtime::Runtime>,
    inner: crate::StateChanges,
}

impl StateChanges {
    /// The state now.
    pub fn current(&self) -> SessionState {
        self.inner.current()
    }

    /// Blocks until `want` holds for the state (now or after later transitions), or
    /// `timeout` passes; returns the state then, `None` on timeout or after a
    /// terminal state that did not satisfy `want`.
    pub fn wait_until(
        &mut self,
        want: impl FnMut(SessionState) -> bool,
        timeout: Duration,
    ) -> Option<SessionState> {
        let inner = &mut self.inner;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, inner.wait_for(want))
                .await
                .ok()
                .flatten()
        })
    }
}

impl Iterator for StateChanges {
    type Item = SessionState;

    fn next(&mut self) -> Option<SessionState> {
        let inner = &mut self.inner;
        self.runtime.block_on(inner.next())
    }
}

impl<'c, Out: CreateOutput, Mode> Create<'c, Out, Mode, Client> {
    /// Sends the create and blocks for the answer.
    pub fn run(self) -> Result<Out> {
        let runtime = self.handle().runtime.clone();
        runtime.block_on(self.send_now())
    }
}

impl Handle for Client {
    fn async_client(&self) -> &crate::Client {
        &self.inner
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

    /// See [`crate::Client::session_password`].
    pub fn session_password(&self) -> Vec<u8> {
        self.inner.session_password()
    }

    /// See [`crate::Client::connected_server`].
    pub fn connected_server(&self) -> Option<String> {
        self.inner.connected_server()
    }

    /// See [`crate::Client::servers`].
    pub fn servers(&self) -> Vec<String> {
        self.inner.servers()
    }

    /// See [`crate::Client::update_server_list`].
    pub fn update_server_list(&self, connect_string: &str) -> Result<bool> {
        self.runtime
            .block_on(self.inner.update_server_list(connect_string))
    }

    /// See [`crate::Client::renews_expired_sessions`].
    pub fn renews_expired_sessions(&self) -> bool {
        self.inner.renews_expired_sessions()
    }

    /// Every state transition from now on (see [`crate::Client::state_changes`]).
    pub fn state_changes(&self) -> StateChanges {
        StateChanges {
            runtime: self.runtime.clone(),
            inner: self.inner.state_changes(),
        }
    }

    /// Every watch notification from now on, each `next()` blocking until the next one
    /// (see [`crate::Client::notifications`]).
    pub fn notifications(&self) -> impl Iterator<Item = WatchedEvent> + Send + 'static {
        let mut stream = self.inner.notifications();
        let runtime = self.runtime.clone();
        std::iter::from_fn(move || runtime.block_on(stream.next()))
    }

    /// Runs an idempotent operation, retrying it under the client's retry policy while
    /// it fails with a retryable error (see [`crate::Client::retry`]); waits block the
    /// calling thread.
    pub fn retry<T>(&self, mut op: impl FnMut(&Client) -> Result<T>) -> Result<T> {
        let mut schedule = self.inner.retry_policy().start();
        loop {
            match op(self) {
                Err(e) if e.is_retryable() => match schedule.next_delay() {
                    Some(delay) => std::thread::sleep(delay),
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    /// See [`crate::Client::create`]; `.run()` sends it:
    /// `zk.create("/a").data(b"x").parents(true).run()?`.
    pub fn create(&self, path: &str) -> Create<'_, String, ModeUnset, Client> {
        Create::new(self, path)
    }

    /// See [`crate::Client::ensure_path`].
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        self.runtime.block_on(self.inner.ensure_path(path))
    }

    /// See [`crate::Client::delete_recursive`].
    pub fn delete_recursive(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.runtime
            .block_on(self.inner.delete_recursive(path, version))
    }

    /// See [`crate::Client::delete`].
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.runtime.block_on(self.inner.delete(path, version))
    }

    /// See [`crate::Client::exists`].
    pub fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.runtime.block_on(self.inner.exists(path))
    }

    /// See [`crate::Client::exists_and_watch`].
    pub fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, Watcher)> {
        let (read, watch) = self.inner.exists_and_watch(path);
        let stat = self.runtime.block_on(read)?;
        Ok((stat, self.watcher(watch)))
    }

    /// See [`crate::Client::get_data`].
    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        self.runtime.block_on(self.inner.get_data(path))
    }

    /// See [`crate::Client::get_data_and_watch`].
    pub fn get_data_and_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watcher)> {
        let (read, watch) = self.inner.get_data_and_watch(path);
        let (data, stat) = self.runtime.block_on(read)?;
        Ok((data, stat, self.watcher(watch)))
    }

    /// See [`crate::Client::get_data_nullable`].
    pub fn get_data_nullable(&self, path: &str) -> Result<(Option<Vec<u8>>, Stat)> {
        self.runtime.block_on(self.inner.get_data_nullable(path))
    }

    /// See [`crate::Client::get_data_nullable_and_watch`].
    pub fn get_data_nullable_and_watch(
        &self,
        path: &str,
    ) -> Result<(Option<Vec<u8>>, Stat, Watcher)> {
        let (read, watch) = self.inner.get_data_nullable_and_watch(path);
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

    /// See [`crate::Client::get_children_and_watch`].
    pub fn get_children_and_watch(&self, path: &str) -> Result<(Vec<String>, Watcher)> {
        let (read, watch) = self.inner.get_children_and_watch(path);
        let children = self.runtime.block_on(read)?;
        Ok((children, self.watcher(watch)))
    }

    /// See [`crate::Client::get_children_with_stat`].
    pub fn get_children_with_stat(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        self.runtime
            .block_on(self.inner.get_children_with_stat(path))
    }

    /// See [`crate::Client::get_children_with_stat_and_watch`].
    pub fn get_children_with_stat_and_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, Watcher)> {
        let (read, watch) = self.inner.get_children_with_stat_and_watch(path);
        let (children, stat) = self.runtime.block_on(read)?;
        Ok((children, stat, self.watcher(watch)))
    }

    /// See [`crate::Client::get_all_children_number`].
    pub fn get_all_children_number(&self, path: &str) -> Result<i32> {
        self.runtime
            .block_on(self.inner.get_all_children_number(path))
    }

    /// See [`crate::Client::get_ephemerals`].
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        self.runtime.block_on(self.inner.get_ephemerals(prefix))
    }

    /// See [`crate::Client::multi_read`].
    pub fn multi_read(&self, reads: &[ReadOp]) -> Result<Vec<ReadResult>> {
        self.runtime.block_on(self.inner.multi_read(reads))
    }

    /// See [`crate::Client::get_config`].
    pub fn get_config(&self) -> Result<(Vec<u8>, Stat)> {
        self.runtime.block_on(self.inner.get_config())
    }

    /// See [`crate::Client::get_config_and_watch`].
    pub fn get_config_and_watch(&self) -> Result<(Vec<u8>, Stat, Watcher)> {
        let (read, watch) = self.inner.get_config_and_watch();
        let (config, stat) = self.runtime.block_on(read)?;
        Ok((config, stat, self.watcher(watch)))
    }

    /// See [`crate::Client::reconfig`].
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: Option<i64>,
    ) -> Result<(Vec<u8>, Stat)> {
        self.runtime.block_on(
            self.inner
                .reconfig(joining, leaving, new_members, from_config),
        )
    }

    /// See [`crate::Client::remove_watches`].
    pub fn remove_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        self.runtime.block_on(self.inner.remove_watches(path, kind))
    }

    /// See [`crate::Client::check_watches`].
    pub fn check_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        self.runtime.block_on(self.inner.check_watches(path, kind))
    }

    /// See [`crate::Client::whoami`].
    pub fn whoami(&self) -> Result<Vec<ClientInfo>> {
        self.runtime.block_on(self.inner.whoami())
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
        let mut stream = self.runtime.block_on(self.inner.add_watch(path, mode))?;
        let runtime = self.runtime.clone();
        Ok(std::iter::from_fn(move || runtime.block_on(stream.next())))
    }

    /// Closes the session.
    pub fn close(&self) {
        self.runtime.block_on(self.inner.close());
    }
}
