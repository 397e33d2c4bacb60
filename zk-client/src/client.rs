//! [`Client`]: a cheap, clonable handle to one ZooKeeper session.
//!
//! Every operation is a plain `fn` returning a future: the request is queued when the
//! method is *called* (not when the future is first polled), so calls made one after
//! another reach the server in that order — ZooKeeper's per-session FIFO guarantee
//! survives async code. (If the bounded queue is full, the request waits in an
//! overflow FIFO that later calls queue behind: still in call order.)

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, Either};
use tokio::sync::{mpsc, oneshot, watch};
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, AuthPacket, CheckWatchesRequest, ClientInfo, CreateMode,
    CreateRequest, CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest,
    GetAllChildrenNumberRequest, GetChildren2Request, GetDataRequest, GetEphemeralsRequest,
    MultiRequest, OpResult, Request, Response, SetAclRequest, SetDataRequest, Stat, SyncRequest,
    WatcherType,
};

use crate::connect_string::ConnectString;
use crate::create::{Create, CreateSpec};
use crate::error::{Error, Result};
use crate::multi::Transaction;
use crate::queue::CommandQueue;
use crate::reply::Reply;
use crate::retry::{ExponentialBackoff, RetryPolicy};
use crate::session::{self, Command, Outgoing, Reports, SessionConfig};
use crate::state::{SessionState, StateChanges};
use crate::watch::{
    oneshot_pair, persistent_pair, NotificationTaps, OneshotWatcher, PersistentWatcher,
    Registration,
};

/// Where ZooKeeper publishes the ensemble configuration.
const CONFIG_NODE: &str = "/zookeeper/config";

/// One read of a [`Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// getData of a path.
    GetData(String),
    /// getChildren of a path.
    GetChildren(String),
}

/// The answer to one [`ReadOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Vec<u8>, Stat),
    /// Child names.
    Children(Vec<String>),
    /// This read failed (the others may not have).
    Error(Error),
}

/// Requests that may wait in the client's queue before callers are slowed down.
const QUEUE: usize = 16 * 1024;

/// Configures and connects a [`Client`]: session timeout, connect timeout, credentials
/// presented on every (re)connection, read-only servers, backpressure, retry policy.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = zk_server::testing::TestingServer::start().await?;
/// # let setup = Client::connect(&server.connect_string()).await?;
/// # setup.create("/app/config").data(b"x").parents(true).await?;
/// # let hosts = server.connect_string(); // in production: "zk1:2181,zk2:2181,zk3:2181"
/// use std::time::Duration;
/// use zk_client::{retry::ExponentialBackoff, Client};
/// let zk = Client::builder(&format!("{hosts}/app"))
///     .session_timeout(Duration::from_secs(10))
///     .connect_timeout(Duration::from_secs(5))
///     .auth("digest", b"app:secret")
///     .retry_policy(ExponentialBackoff::bounded(
///         Duration::from_millis(100),
///         Duration::from_secs(5),
///         10,
///     ))
///     .connect()
///     .await?;
/// // Paths are relative to the chroot `/app`.
/// let (config, _) = zk.retry(|| zk.get_data("/config")).await?;
/// # let _ = config; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect: String,
    session_timeout: Duration,
    connect_timeout: Duration,
    read_only: bool,
    max_in_flight: usize,
    auth: Vec<(String, Vec<u8>)>,
    session: Option<(i64, Vec<u8>)>,
    retry: Arc<dyn RetryPolicy>,
    renew_expired: bool,
    follow_ensemble: bool,
    sasl: Option<crate::sasl::SaslLogin>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsConfig>,
}

impl std::fmt::Debug for dyn RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryPolicy")
    }
}

impl ClientBuilder {
    /// A builder for `connect_string` (`host:port[,…][/chroot]`).
    pub fn new(connect_string: &str) -> ClientBuilder {
        ClientBuilder {
            connect: connect_string.to_string(),
            session_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            read_only: false,
            max_in_flight: 1000,
            auth: Vec::new(),
            session: None,
            retry: Arc::new(ExponentialBackoff::new(Duration::from_millis(100), 5)),
            renew_expired: false,
            follow_ensemble: false,
            sasl: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The policy [`Client::retry`] uses (default: exponential from 100 ms, 5 retries).
    pub fn retry_policy(mut self, policy: impl RetryPolicy + 'static) -> Self {
        self.retry = Arc::new(policy);
        self
    }

    /// Joins an existing session instead of creating one (as Java's
    /// `ZooKeeper(connectString, timeout, watcher, sessionId, passwd)`).
    pub fn session(mut self, session_id: i64, password: &[u8]) -> Self {
        self.session = Some((session_id, password.to_vec()));
        self
    }

    /// Requested session timeout (the server clamps it to its bounds).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`ClientBuilder::connect`] tries before giving up.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Accept read-only servers (cut off from their quorum).
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// Requests on the wire at once before further ones wait (backpressure).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Credentials presented on every (re)connection, e.g. `("digest", b"user:pw")`.
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> Self {
        self.auth.push((scheme.to_string(), auth.to_vec()));
        self
    }

    /// After the session expires, start a new one instead of ending the client (as
    /// Curator does; Java's `ZooKeeper` ends). `Expired` is still published, every call
    /// and watch of the old session fails with [`Error::SessionExpired`], and the state
    /// goes on to `Connecting` and `Connected` with a new [`Client::session_id`].
    /// Credentials are presented again. Default: off.
    pub fn renew_expired_sessions(mut self, renew: bool) -> Self {
        self.renew_expired = renew;
        self
    }

    /// Follow the ensemble's configuration, as Curator's `EnsembleTracker` does: after
    /// every connection, and whenever it changes (a reconfig), the client reads
    /// `/zookeeper/config` and makes the servers' client addresses its server list
    /// ([`Client::update_server_list`], with ZooKeeper's rebalancing: the client may
    /// move to another server, keeping its session). A client given one server learns
    /// the others; a server removed from the ensemble is left. A configuration without
    /// client addresses (a standalone server's, an ensemble whose `server.N` lines name
    /// no client port) is not followed; a TLS client follows the secure client
    /// addresses, if the configuration has them. The chroot stays.
    ///
    /// Default: off, unlike Curator (`ensembleTracker(true)`): this client is
    /// ZooKeeper's `ZooKeeper`, which does not follow, and following would make a
    /// client given one member of an ensemble (to watch that member, or a diagnostic
    /// tool's connection) move to another member right after connecting, with
    /// probability `1 - 1/n`.
    pub fn follow_ensemble(mut self, follow: bool) -> Self {
        self.follow_ensemble = follow;
        self
    }

    /// Connects with TLS, on every connection and reconnection (the servers' secure
    /// client port, `secureClientPort`). The server's certificate must chain to a CA of
    /// `tls` and name the host of the connect string entry (or
    /// [`crate::TlsConfig::server_name`]). A TLS setting that cannot be used fails
    /// [`ClientBuilder::connect`] with [`Error::Tls`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticates every connection with SASL DIGEST-MD5 as `user` (a server's JAAS
    /// `Server` section lists it as `user_<user>="<password>"`), right after the session
    /// handshake and before any queued request, as Java's `ZooKeeperSaslClient` does;
    /// the server then knows the session as `sasl:<user>`. A refused login ends the
    /// session in [`crate::SessionState::AuthFailed`] ([`ClientBuilder::connect`] fails
    /// with [`Error::AuthFailed`]).
    pub fn sasl_digest(mut self, user: &str, password: &str) -> Self {
        self.sasl = Some(crate::sasl::SaslLogin {
            user: user.to_string(),
            password: password.to_string(),
        });
        self
    }

    /// Connects; resolves once a session is established.
    pub async fn connect(self) -> Result<Client> {
        let connect = ConnectString::parse(&self.connect)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let commands = CommandQueue::new(tx, tokio::runtime::Handle::current());
        let (state_tx, state_rx) = watch::channel(SessionState::Connecting);
        let (first_tx, first_rx) = oneshot::channel();
        let (session_tx, session_rx) = watch::channel((0i64, Vec::new()));
        let (server_tx, server_rx) = watch::channel(None);
        let (servers_tx, servers_rx) = watch::channel(Vec::new());
        let (events_tx, _) = tokio::sync::broadcast::channel(64);
        let config = SessionConfig {
            connect: connect.clone(),
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            read_only: self.read_only,
            max_in_flight: self.max_in_flight,
            session: self.session.clone(),
            renew_expired: self.renew_expired,
            notifications: NotificationTaps::default(),
            sasl: self.sasl.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls.as_ref().map(|t| t.connector()).transpose()?,
        };
        let notifications = config.notifications.clone();
        #[cfg(feature = "tls")]
        let secure = config.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let secure = false;
        tokio::spawn(session::run(
            config,
            rx,
            Reports {
                state: state_tx,
                state_events: events_tx.clone(),
                identity: session_tx,
                server: server_tx,
                servers: servers_tx,
            },
            first_tx,
        ));
        first_rx.await.map_err(|_| Error::Closed)??;
        let client = Client {
            inner: Arc::new(Inner {
                commands,
                state: state_rx,
                connect,
                session: session_rx,
                server: server_rx,
                servers: servers_rx,
                state_events: events_tx,
                renews_expired: self.renew_expired,
                notifications,
            }),
            retry: self.retry.clone(),
        };
        // Subscribed before the first read: no later connection goes unseen.
        let states = self.follow_ensemble.then(|| client.state_changes());
        for (scheme, auth) in self.auth {
            client.add_auth(&scheme, &auth).await?;
        }
        if let Some(states) = states {
            tokio::spawn(crate::ensemble::track(client.downgrade(), states, secure));
        }
        Ok(client)
    }
}

#[derive(Debug)]
struct Inner {
    commands: CommandQueue,
    state: watch::Receiver<SessionState>,
    connect: ConnectString,
    session: watch::Receiver<(i64, Vec<u8>)>,
    server: watch::Receiver<Option<String>>,
    servers: watch::Receiver<Vec<String>>,
    state_events: tokio::sync::broadcast::Sender<SessionState>,
    renews_expired: bool,
    notifications: NotificationTaps,
}

/// A handle to one ZooKeeper session. Clones share the session.
///
/// Every operation is queued when it is *called* and returns a [`Reply`], the future
/// of the answer: calls made one after another reach the server in that order,
/// whenever (and in whatever order) their replies are awaited. The builders
/// ([`Client::create`]) queue when awaited. Reads named `…_and_watch` leave a watch and
/// return the read and a [`OneshotWatcher`].
///
/// Clones share one session; when the last clone is dropped the session is closed
/// (its ephemerals go), as by [`Client::close`] without waiting for the answer.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> zk_client::Result<()> {
/// # let server = zk_server::testing::TestingServer::start().await.expect("a server");
/// # let connect_string = server.connect_string();
/// use zk_client::{Client, EventType};
/// let zk = Client::connect(&connect_string).await?;
/// zk.create("/app").data(b"v1").await?;
///
/// // Pipelined: both are queued now, in this order.
/// let update = zk.set_data("/app", b"v2", Some(0));
/// let (read, changed) = zk.get_data_and_watch("/app");
/// let (data, stat) = read.await?; // answered after the update...
/// assert_eq!((data.as_slice(), stat.version), (&b"v2"[..], 1));
/// update.await?; // ...which was sent first
///
/// // The watch fires on the next change, from any client.
/// zk.set_data("/app", b"v3", None).await?;
/// assert_eq!(changed.await?.event_type, EventType::NodeDataChanged);
/// zk.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// The policy [`Client::retry`] follows (and the recipes built on this handle).
    retry: Arc<dyn RetryPolicy>,
}

/// Data that may be null, and the Stat.
type NullableData = (Option<Vec<u8>>, Stat);

/// A [`Client`] that does not keep its session open (the ensemble tracker's).
#[derive(Debug, Clone)]
pub(crate) struct WeakClient(Weak<Inner>, Arc<dyn RetryPolicy>);

impl WeakClient {
    /// The client, unless every handle to it is gone.
    pub(crate) fn upgrade(&self) -> Option<Client> {
        self.0.upgrade().map(|inner| Client {
            inner,
            retry: self.1.clone(),
        })
    }
}

impl Client {
    /// Connects to `connect_string` with default settings.
    pub async fn connect(connect_string: &str) -> Result<Client> {
        ClientBuilder::new(connect_string).connect().await
    }

    /// A builder for non-default settings.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(connect_string)
    }

    /// The session id (0 before the first connection).
    pub fn session_id(&self) -> i64 {
        self.inner.session.borrow().0
    }

    /// The session's password (with the id, it lets another client join the session).
    pub fn session_password(&self) -> Vec<u8> {
        self.inner.session.borrow().1.clone()
    }

    /// The `host:port` this client is connected to, if connected.
    pub fn connected_server(&self) -> Option<String> {
        self.inner.server.borrow().clone()
    }

    /// The servers this client connects to (`host:port`), in the order it tries them:
    /// the connect string's, until [`Client::update_server_list`] or
    /// [`ClientBuilder::follow_ensemble`] replaces them.
    pub fn servers(&self) -> Vec<String> {
        self.inner.servers.borrow().clone()
    }

    /// Replaces the servers this client connects to, as ZooKeeper's
    /// `ZooKeeper.updateServerList` does; `connect_string` is `host:port[,…]` (a chroot
    /// after it is ignored: the client keeps its own). To keep the load balanced the
    /// client may move, with the same session, by ZooKeeper's rule
    /// (`StaticHostProvider.updateServerList`): if its server is not in the new list it
    /// moves; if the list grew, it moves with probability `1 - old/new` to one of the
    /// added servers; otherwise it stays. Answers whether it moves. A move waits for
    /// the requests in flight to be answered (none fails for it); the state goes
    /// `Disconnected`, then `Connected` on the other server. The same list in another
    /// order changes nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = zk_server::testing::TestingCluster::start(3).await?;
    /// # let ids = cluster.ids();
    /// # let at = |i: usize| cluster.client_addr(ids[i]).expect("a member").to_string();
    /// # let (zk1, zk2, zk3) = (at(0), at(1), at(2));
    /// let zk = zk_client::Client::connect(&format!("{zk1},{zk2}")).await?;
    /// // A third server: one client in three moves to it, keeping its session.
    /// let moving = zk.update_server_list(&format!("{zk1},{zk2},{zk3}")).await?;
    /// assert_eq!(zk.servers().len(), 3);
    /// # let _ = moving; Ok(()) }
    /// ```
    pub fn update_server_list(&self, connect_string: &str) -> Reply<bool> {
        match ConnectString::parse(connect_string) {
            Ok(parsed) => self.update_server_hosts(parsed.hosts),
            Err(e) => Self::fail(e),
        }
    }

    /// [`Client::update_server_list`] with the hosts already parsed (not empty).
    pub(crate) fn update_server_hosts(&self, hosts: Vec<String>) -> Reply<bool> {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .push(Command::UpdateServerList(hosts, tx))
            .is_err()
        {
            return Self::fail(self.terminal_error());
        }
        let state = self.inner.state.clone();
        Reply::new(async move { rx.await.map_err(|_| terminal(&state)) })
    }

    /// A handle that does not keep the session open.
    pub(crate) fn downgrade(&self) -> WeakClient {
        WeakClient(Arc::downgrade(&self.inner), self.retry.clone())
    }

    /// Runs an idempotent operation, retrying it under the client's retry policy while
    /// it fails with a retryable error (see [`crate::retry::retry`]).
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        crate::retry::retry(self.retry.as_ref(), op).await
    }

    /// The policy [`Client::retry`] follows.
    pub fn retry_policy(&self) -> &dyn RetryPolicy {
        self.retry.as_ref()
    }

    /// A handle on the *same session* whose [`Client::retry`] follows `policy`: how
    /// one recipe (the recipes retry through their client's policy) or one part of a
    /// program gets retries of its own. Closing either handle closes the session.
    pub fn with_retry_policy(&self, policy: impl RetryPolicy + 'static) -> Client {
        Client {
            inner: self.inner.clone(),
            retry: Arc::new(policy),
        }
    }

    /// Every state transition from now on, in order, as a stream; also the state now
    /// and a wait for a state ([`StateChanges::wait_for`]). The one way to follow the
    /// session's state; [`Client::state`] reads it once.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> zk_client::Result<()> {
    /// # let server = zk_server::testing::TestingServer::start().await.expect("a server");
    /// use futures::StreamExt;
    /// use zk_client::{Client, SessionState};
    /// let zk = Client::connect(&server.connect_string()).await?;
    /// let mut changes = zk.state_changes();
    /// let watcher = tokio::spawn(async move {
    ///     while let Some(state) = changes.next().await {
    ///         match state {
    ///             // Curator's SUSPENDED: the session may live, nothing is guaranteed.
    ///             SessionState::Disconnected => { /* pause work that needs a lock */ }
    ///             SessionState::Connected => { /* resume */ }
    ///             // LOST: ephemerals are gone (see ClientBuilder::renew_expired_sessions).
    ///             SessionState::Expired => return state,
    ///             _ => {}
    ///         }
    ///     }
    ///     SessionState::Closed // the stream ended after Closed
    /// });
    /// zk.close().await;
    /// assert_eq!(watcher.await.unwrap(), SessionState::Closed);
    /// # Ok(()) }
    /// ```
    pub fn state_changes(&self) -> StateChanges {
        StateChanges::new(
            self.inner.state.clone(),
            self.inner.state_events.subscribe(),
            self.inner.renews_expired,
        )
    }

    /// Every watch notification this client receives from now on, in the order the
    /// server sent them, each once however many watches it fires (what Java's default
    /// watcher sees): for ordering events across watches, which their own handles
    /// cannot tell. Paths are relative to the chroot; state changes are not in it (see
    /// [`Client::state_changes`]). Unread events queue: read the stream or drop it.
    pub fn notifications(&self) -> crate::watch::Notifications {
        self.inner.notifications.subscribe()
    }

    /// Whether this client starts a new session after an expiry
    /// ([`ClientBuilder::renew_expired_sessions`]).
    pub fn renews_expired_sessions(&self) -> bool {
        self.inner.renews_expired
    }

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    fn path(&self, path: &str) -> Result<String> {
        zk_proto::validate_path(path).map_err(|e| Error::InvalidPath(e.to_string()))?;
        Ok(self.inner.connect.to_server(path))
    }

    pub(crate) fn client_path(&self, server_path: &str) -> String {
        self.inner.connect.to_client(server_path)
    }

    /// Queues `request` now; the future resolves with the answer.
    fn submit(
        &self,
        request: Request,
        path: &str,
        watch: Option<Registration>,
    ) -> impl Future<Output = Result<Response>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let command = Command::Request(Outgoing {
            request,
            path: path.to_string(),
            watch,
            responder: tx,
        });
        if self.inner.commands.push(command).is_err() {
            return Either::Left(future::ready(Err(self.terminal_error())));
        }
        let state = self.inner.state.clone();
        Either::Right(async move { rx.await.map_err(|_| terminal(&state))? })
    }

    /// The shape of most operations: check the path, build the request for the server
    /// path, queue it now, then turn the answer into `T` (`Err(response)` when the answer
    /// is not of the expected kind).
    fn call<T: Send + 'static>(
        &self,
        path: &str,
        build: impl FnOnce(String) -> Request,
        watch: Option<Registration>,
        extract: impl FnOnce(Response) -> std::result::Result<T, Response> + Send + 'static,
    ) -> Reply<T> {
        let server_path = match self.path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(e),
        };
        let fut = self.submit(build(server_path), path, watch);
        Reply::new(async move { extract(fut.await?).map_err(unexpected) })
    }

    fn terminal_error(&self) -> Error {
        terminal(&self.inner.state)
    }

    fn fail<T: Send + 'static>(e: Error) -> Reply<T> {
        Reply::ready(Err(e))
    }

    /// Creates a znode: a builder for data, ACL, mode, TTL, Stat and parents, sent
    /// when awaited (see [`Create`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    /// # async fn main() -> zk_client::Result<()> {
    /// # let server = zk_server::testing::TestingServer::start().await.expect("a server");
    /// use zk_client::{Client, CreateMode};
    /// let zk = Client::connect(&server.connect_string()).await?;
    /// zk.create("/a/b").data(b"x").parents(true).await?;
    /// let lock = zk
    ///     .create("/a/b/lock-")
    ///     .mode(CreateMode::EphemeralSequential)
    ///     .await?;
    /// assert_eq!(lock, "/a/b/lock-0000000000");
    /// # Ok(()) }
    /// ```
    pub fn create(&self, path: &str) -> Create<'_> {
        Create::new(self, path)
    }

    /// Sends one create as `spec` says: containers use the createContainer opcode, TTL
    /// modes createTTL, the rest create2 (as ZooKeeper's own client does).
    pub(crate) fn create_request(&self, path: &str, spec: &CreateSpec) -> Reply<(String, Stat)> {
        let mode = spec.mode;
        let data = spec.data.clone();
        let acl = spec.acl.clone().unwrap_or_else(Acl::open_unsafe);
        // The builder sets a TTL only with a TTL mode; a TTL mode given to `.mode()`
        // has none.
        match (mode.is_ttl(), spec.ttl) {
            (true, Some(ttl)) => {
                let ttl = ttl.as_millis().min(i64::MAX as u128) as i64;
                self.create_with(path, mode, |path| {
                    Request::CreateTtl(CreateTtlRequest {
                        path,
                        data,
                        acl,
                        flags: mode.code(),
                        ttl,
                    })
                })
            }
            (true, None) => Self::fail(Error::BadArguments(format!(
                "{mode:?} is set with .ttl(duration), not .mode(..)"
            ))),
            (false, _) => {
                let request = |path| CreateRequest {
                    path,
                    data,
                    acl,
                    flags: mode.code(),
                };
                if mode.is_container() {
                    self.create_with(path, mode, |p| Request::CreateContainer(request(p)))
                } else {
                    self.create_with(path, mode, |p| Request::Create2(request(p)))
                }
            }
        }
    }

    /// Creates `path` and its missing parents as persistent znodes with an open ACL;
    /// succeeds if it exists already (kazoo's `ensure_path`, Curator's `ZKPaths.mkdirs`).
    pub fn ensure_path(&self, path: &str) -> Reply<()> {
        let create = self.create(path).parents(true).send_now();
        Reply::new(async move {
            match create.await {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(zk_proto::ErrorCode::NodeExists) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// The shared path of the creates: check the path (a sequential one may end in
    /// `/`), build the request for the server path, and answer path (chroot removed)
    /// and Stat.
    fn create_with(
        &self,
        path: &str,
        mode: CreateMode,
        build: impl FnOnce(String) -> Request,
    ) -> Reply<(String, Stat)> {
        if let Err(e) = zk_proto::validate_create_path(path, mode.is_sequential()) {
            return Self::fail(Error::InvalidPath(e.to_string()));
        }
        let this = self.clone();
        let fut = self.submit(build(self.inner.connect.to_server(path)), path, None);
        Reply::new(async move {
            match fut.await? {
                Response::Create2(r) => Ok((this.client_path(&r.path), r.stat)),
                other => Err(unexpected(other)),
            }
        })
    }

    /// Deletes a znode; `version` `None` matches any.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Reply<()> {
        let version = version.unwrap_or(-1);
        self.call(
            path,
            |path| Request::Delete(DeleteRequest { path, version }),
            None,
            |_| Ok(()),
        )
    }

    /// Deletes a znode and everything under it (Curator's `deletingChildrenIfNeeded`,
    /// kazoo's `delete(recursive=True)`). `version` (`None` matches any) is checked on
    /// the top znode *before* anything is deleted, and again by its own delete. Not
    /// atomic: a failure part way leaves part of the subtree; children created
    /// meanwhile are deleted too (a few rounds, then NotEmpty).
    pub fn delete_recursive(&self, path: &str, version: Option<i32>) -> Reply<()> {
        let checked = self.exists(path);
        let this = self.clone();
        let path = path.to_string();
        Reply::new(
            async move { crate::recursive::delete_tree(&this, &path, version, checked).await },
        )
    }

    /// The znode's Stat, or `None` if it does not exist.
    pub fn exists(&self, path: &str) -> Reply<Option<Stat>> {
        self.exists_inner(path, None)
    }

    /// `exists`, leaving a watch: fires on creation if absent, on change or deletion if
    /// present.
    pub fn exists_and_watch(&self, path: &str) -> (Reply<Option<Stat>>, OneshotWatcher) {
        let (tx, watcher) = oneshot_pair();
        let reg = self.path(path).ok().map(|p| Registration::Exists(p, tx));
        (self.exists_inner(path, reg), watcher)
    }

    fn exists_inner(&self, path: &str, watch: Option<Registration>) -> Reply<Option<Stat>> {
        let server_path = match self.path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(e),
        };
        let request = Request::Exists(ExistsRequest {
            path: server_path,
            watch: watch.is_some(),
        });
        let fut = self.submit(request, path, watch);
        Reply::new(async move {
            match fut.await {
                Ok(Response::Exists(r)) => Ok(Some(r.stat)),
                Ok(other) => Err(unexpected(other)),
                Err(e) if e.code() == Some(zk_proto::ErrorCode::NoNode) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// The znode's data (empty for a node created without data) and Stat.
    pub fn get_data(&self, path: &str) -> Reply<(Vec<u8>, Stat)> {
        empty_if_null(self.get_data_inner(path, None))
    }

    /// `get_data`, leaving a data watch.
    pub fn get_data_and_watch(&self, path: &str) -> (Reply<(Vec<u8>, Stat)>, OneshotWatcher) {
        let (read, watcher) = self.get_data_nullable_and_watch(path);
        (empty_if_null(read), watcher)
    }

    /// `get_data`, telling null data (`None`: the znode was created without any, see
    /// [`Create::null_data`]) from empty data.
    pub fn get_data_nullable(&self, path: &str) -> Reply<NullableData> {
        self.get_data_inner(path, None)
    }

    /// `get_data_nullable`, leaving a data watch.
    pub fn get_data_nullable_and_watch(&self, path: &str) -> (Reply<NullableData>, OneshotWatcher) {
        let (tx, watcher) = oneshot_pair();
        let reg = self.path(path).ok().map(|p| Registration::Data(p, tx));
        (self.get_data_inner(path, reg), watcher)
    }

    fn get_data_inner(&self, path: &str, watch: Option<Registration>) -> Reply<NullableData> {
        let w = watch.is_some();
        self.call(
            path,
            |path| Request::GetData(GetDataRequest { path, watch: w }),
            watch,
            |r| match r {
                Response::GetData(r) => Ok((r.data.map(|d| d.to_vec()), r.stat)),
                other => Err(other),
            },
        )
    }

    /// Replaces the data if the version matches (`None`: any); returns the new Stat.
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Reply<Stat> {
        let data = Some(Bytes::copy_from_slice(data));
        let version = version.unwrap_or(-1);
        self.call(
            path,
            |path| {
                Request::SetData(SetDataRequest {
                    path,
                    data,
                    version,
                })
            },
            None,
            |r| match r {
                Response::SetData(r) => Ok(r.stat),
                other => Err(other),
            },
        )
    }

    /// The children's names.
    pub fn get_children(&self, path: &str) -> Reply<Vec<String>> {
        let fut = self.get_children2_inner(path, None);
        Reply::new(async move { fut.await.map(|(c, _)| c) })
    }

    /// The children's names, leaving a child watch.
    pub fn get_children_and_watch(&self, path: &str) -> (Reply<Vec<String>>, OneshotWatcher) {
        let (tx, watcher) = oneshot_pair();
        let reg = self.path(path).ok().map(|p| Registration::Child(p, tx));
        let fut = self.get_children2_inner(path, reg);
        (
            Reply::new(async move { fut.await.map(|(c, _)| c) }),
            watcher,
        )
    }

    /// The children's names and the parent's Stat.
    pub fn get_children_with_stat(&self, path: &str) -> Reply<(Vec<String>, Stat)> {
        self.get_children2_inner(path, None)
    }

    /// The children's names and the parent's Stat, leaving a child watch.
    pub fn get_children_with_stat_and_watch(
        &self,
        path: &str,
    ) -> (Reply<(Vec<String>, Stat)>, OneshotWatcher) {
        let (tx, watcher) = oneshot_pair();
        let reg = self.path(path).ok().map(|p| Registration::Child(p, tx));
        (self.get_children2_inner(path, reg), watcher)
    }

    fn get_children2_inner(
        &self,
        path: &str,
        watch: Option<Registration>,
    ) -> Reply<(Vec<String>, Stat)> {
        let w = watch.is_some();
        self.call(
            path,
            |path| Request::GetChildren2(GetChildren2Request { path, watch: w }),
            watch,
            |r| match r {
                Response::GetChildren2(r) => Ok((r.children, r.stat)),
                other => Err(other),
            },
        )
    }

    /// The ACL and Stat.
    pub fn get_acl(&self, path: &str) -> Reply<(Vec<Acl>, Stat)> {
        self.call(
            path,
            |path| Request::GetAcl(GetAclRequest { path }),
            None,
            |r| match r {
                Response::GetAcl(r) => Ok((r.acl, r.stat)),
                other => Err(other),
            },
        )
    }

    /// Replaces the ACL if the ACL version matches (`None`: any).
    pub fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Reply<Stat> {
        let acl = acl.to_vec();
        let version = version.unwrap_or(-1);
        self.call(
            path,
            |path| Request::SetAcl(SetAclRequest { path, acl, version }),
            None,
            |r| match r {
                Response::SetAcl(r) => Ok(r.stat),
                other => Err(other),
            },
        )
    }

    /// Waits until the server this client is on has caught up with the leader.
    pub fn sync(&self, path: &str) -> Reply<()> {
        self.call(
            path,
            |path| Request::Sync(SyncRequest { path }),
            None,
            |_| Ok(()),
        )
    }

    /// A transaction builder; `commit` runs its ops all or nothing.
    pub fn transaction(&self) -> Transaction {
        Transaction::new(self.clone())
    }

    /// Sends a multi (or multiRead) now; answers the ops' results as sent (created
    /// paths still chrooted: see [`Client::client_path`]).
    pub(crate) fn submit_multi(&self, request: MultiRequest, read: bool) -> Reply<Vec<OpResult>> {
        let request = if read {
            Request::MultiRead(request)
        } else {
            Request::Multi(request)
        };
        let fut = self.submit(request, "", None);
        Reply::new(async move {
            match fut.await? {
                Response::Multi(m) => Ok(m.results),
                other => Err(unexpected(other)),
            }
        })
    }

    pub(crate) fn server_path(&self, path: &str) -> Result<String> {
        self.path(path)
    }

    pub(crate) fn server_create_path(&self, path: &str, sequential: bool) -> Result<String> {
        zk_proto::validate_create_path(path, sequential)
            .map_err(|e| Error::InvalidPath(e.to_string()))?;
        Ok(self.inner.connect.to_server(path))
    }

    /// Several reads in one round trip (multiRead). Each read is answered on its own:
    /// one failing does not fail the others.
    pub fn multi_read(&self, reads: &[ReadOp]) -> Reply<Vec<ReadResult>> {
        let mut ops = Vec::with_capacity(reads.len());
        let mut paths = Vec::with_capacity(reads.len());
        for read in reads {
            let (ReadOp::GetData(path) | ReadOp::GetChildren(path)) = read;
            let server_path = match self.path(path) {
                Ok(p) => p,
                Err(e) => return Self::fail(e),
            };
            ops.push(match read {
                ReadOp::GetData(_) => zk_proto::MultiOp::GetData(GetDataRequest {
                    path: server_path,
                    watch: false,
                }),
                ReadOp::GetChildren(_) => {
                    zk_proto::MultiOp::GetChildren(zk_proto::GetChildrenRequest {
                        path: server_path,
                        watch: false,
                    })
                }
            });
            paths.push(path.clone());
        }
        let fut = self.submit_multi(MultiRequest { ops }, true);
        Reply::new(async move {
            let results = fut.await?;
            Ok(results
                .into_iter()
                .zip(paths)
                .map(|(r, path)| match r {
                    OpResult::GetData { data, stat } => {
                        ReadResult::Data(data.map(|d| d.to_vec()).unwrap_or_default(), stat)
                    }
                    OpResult::GetChildren { children } => ReadResult::Children(children),
                    OpResult::Error { err } => ReadResult::Error(Error::keeper(
                        zk_proto::ErrorCode::from_code(err)
                            .unwrap_or(zk_proto::ErrorCode::SystemError),
                        &path,
                    )),
                    other => {
                        ReadResult::Error(unexpected(Response::Multi(zk_proto::MultiResponse {
                            results: vec![other],
                        })))
                    }
                })
                .collect())
        })
    }

    /// The ensemble's configuration (`/zookeeper/config`, never chrooted) and its Stat.
    pub fn get_config(&self) -> Reply<(Vec<u8>, Stat)> {
        let request = Request::GetData(GetDataRequest {
            path: CONFIG_NODE.to_string(),
            watch: false,
        });
        config_reply(self.submit(request, CONFIG_NODE, None))
    }

    /// `get_config`, leaving a data watch on the configuration node.
    pub fn get_config_and_watch(&self) -> (Reply<(Vec<u8>, Stat)>, OneshotWatcher) {
        let (tx, watcher) = oneshot_pair();
        let request = Request::GetData(GetDataRequest {
            path: CONFIG_NODE.to_string(),
            watch: true,
        });
        let reg = Registration::Data(CONFIG_NODE.to_string(), tx);
        (
            config_reply(self.submit(request, CONFIG_NODE, Some(reg))),
            watcher,
        )
    }

    /// Dynamic reconfiguration: servers joining (`server.N=…` lines, comma separated),
    /// server ids leaving, or a whole new membership; applied only if the current
    /// configuration's version is `from_config` (when given). Returns the new
    /// configuration. Needs a server with reconfiguration enabled and the ADMIN right.
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: Option<i64>,
    ) -> Reply<(Vec<u8>, Stat)> {
        let request = Request::Reconfig(zk_proto::ReconfigRequest {
            joining_servers: joining.map(str::to_string),
            leaving_servers: leaving.map(str::to_string),
            new_members: new_members.map(str::to_string),
            cur_config_id: from_config.unwrap_or(-1),
        });
        config_reply(self.submit(request, CONFIG_NODE, None))
    }

    /// This session's ephemeral znodes under `prefix` ("/" for all).
    pub fn get_ephemerals(&self, prefix: &str) -> Reply<Vec<String>> {
        let request = Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: self.inner.connect.to_server(prefix),
        });
        let this = self.clone();
        let fut = self.submit(request, prefix, None);
        Reply::new(async move {
            match fut.await? {
                Response::GetEphemerals(r) => {
                    Ok(r.ephemerals.iter().map(|p| this.client_path(p)).collect())
                }
                other => Err(unexpected(other)),
            }
        })
    }

    /// The number of descendants of `path`.
    pub fn get_all_children_number(&self, path: &str) -> Reply<i32> {
        self.call(
            path,
            |path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path }),
            None,
            |r| match r {
                Response::GetAllChildrenNumber(r) => Ok(r.total_number),
                other => Err(other),
            },
        )
    }

    /// A persistent (or persistent-recursive) watch, as a stream of events.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> Reply<PersistentWatcher> {
        let server_path = match self.path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(e),
        };
        let (tx, watcher) = persistent_pair();
        let request = Request::AddWatch(AddWatchRequest {
            path: server_path.clone(),
            mode: mode.code(),
        });
        let fut = self.submit(
            request,
            path,
            Some(Registration::Persistent(server_path, mode, tx)),
        );
        Reply::new(async move { fut.await.map(|_| watcher) })
    }

    /// Removes this client's watches of `kind` on `path`, on the server and locally.
    pub fn remove_watches(&self, path: &str, kind: WatcherType) -> Reply<()> {
        let server_path = match self.path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(e),
        };
        // Forget the local half first, in call order with everything else (a command
        // that waits in the queue like any request, never skipped).
        let _ = self
            .inner
            .commands
            .push(Command::RemoveWatches(server_path.clone(), kind));
        let request = Request::RemoveWatches(zk_proto::RemoveWatchesRequest {
            path: server_path,
            watcher_type: kind.code(),
        });
        let fut = self.submit(request, path, None);
        Reply::new(async move { fut.await.map(|_| ()) })
    }

    /// Whether this client holds a watch of `kind` on `path` (NoWatcher if not).
    pub fn check_watches(&self, path: &str, kind: WatcherType) -> Reply<()> {
        let watcher_type = kind.code();
        self.call(
            path,
            |path| Request::CheckWatches(CheckWatchesRequest { path, watcher_type }),
            None,
            |_| Ok(()),
        )
    }

    /// The identities the server holds for this session.
    pub fn whoami(&self) -> Reply<Vec<ClientInfo>> {
        let fut = self.submit(Request::WhoAmI, "", None);
        Reply::new(async move {
            match fut.await? {
                Response::WhoAmI(r) => Ok(r.client_info),
                other => Err(unexpected(other)),
            }
        })
    }

    /// Presents credentials (e.g. `digest`, `user:password`); they are presented again
    /// on every reconnection.
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Reply<()> {
        let (tx, rx) = oneshot::channel();
        let packet = AuthPacket {
            auth_type: 0,
            scheme: scheme.to_string(),
            auth: Bytes::copy_from_slice(auth),
        };
        if self
            .inner
            .commands
            .push(Command::AddAuth(packet, tx))
            .is_err()
        {
            return Self::fail(self.terminal_error());
        }
        let state = self.inner.state.clone();
        Reply::new(async move { rx.await.map_err(|_| terminal(&state))? })
    }

    /// Closes the session (its ephemerals go) and waits for the server to confirm.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        // Behind everything already called for, like any command.
        if self.inner.commands.push(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The error for a request that can no longer be answered.
fn terminal(state: &watch::Receiver<SessionState>) -> Error {
    match *state.borrow() {
        SessionState::Expired => Error::SessionExpired,
        SessionState::AuthFailed => Error::AuthFailed,
        _ => Error::Closed,
    }
}

/// Null data read as empty.
fn empty_if_null(read: Reply<NullableData>) -> Reply<(Vec<u8>, Stat)> {
    Reply::new(async move {
        read.await
            .map(|(data, stat)| (data.unwrap_or_default(), stat))
    })
}

/// The configuration a getConfig or reconfig answers with.
fn config_reply(
    fut: impl Future<Output = Result<Response>> + Send + 'static,
) -> Reply<(Vec<u8>, Stat)> {
    Reply::new(async move {
        match fut.await? {
            Response::GetData(r) => Ok((r.data.map(|d| d.to_vec()).unwrap_or_default(), r.stat)),
            other => Err(unexpected(other)),
        }
    })
}

fn unexpected(response: Response) -> Error {
    Error::Protocol(format!("unexpected response {response:?}"))
}
