//! [`Create`]: the one way to create a znode, as a builder — data, ACL, mode, TTL,
//! Stat, and parents created on the way.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> zk_client::Result<()> {
//! # let server = zk_server::testing::TestingServer::start().await.expect("a server");
//! use std::time::Duration;
//! use zk_client::{Acl, Client, CreateMode};
//! let zk = Client::connect(&server.connect_string()).await?;
//! // Parents created as needed (persistent), then an ephemeral-sequential node.
//! let path = zk
//!     .create("/app/workers/w-")
//!     .data(b"10.0.0.7:8080")
//!     .mode(CreateMode::EphemeralSequential)
//!     .parents(true)
//!     .await?;
//! assert!(path.starts_with("/app/workers/w-00000000"));
//! // Defaults: empty data, open ACL, persistent; `with_stat` answers the Stat too.
//! let (_, stat) = zk.create("/app/flag").with_stat().await?;
//! assert_eq!(stat.data_length, 0);
//! // A TTL picks the TTL mode itself: `.mode(..)` after `.ttl(..)` does not compile.
//! # let _ = Duration::from_secs(1);
//! # let _ = Acl::open_unsafe();
//! # Ok(()) }
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use zk_proto::{Acl, CreateMode, ErrorCode, Stat};

use crate::client::Client;
use crate::error::Result;
use crate::reply::Reply;

/// How many times a create with [`Create::parents`] creates missing parents again
/// when they keep disappearing under it (container parents the server reaped).
const PARENT_ATTEMPTS: usize = 8;

/// A znode being created: a builder, and the future of its answer (see the
/// [module](self) docs).
///
/// Built by [`Client::create`]. The request is queued when the future is first polled
/// (awaited, joined, selected), and per-session order counts from there; a create that
/// is never polled sends nothing. [`Create::send`] queues it at once instead, for
/// pipelining in call order.
#[derive(Debug)]
#[must_use = "a create does nothing until awaited"]
pub struct Create<'c, Out = String, Mode = ModeUnset, On: Handle = Client> {
    on: &'c On,
    path: String,
    spec: CreateSpec,
    /// The request, once sent (at the first poll).
    sent: Option<Reply<Out>>,
    _out: PhantomData<fn() -> Mode>,
}

/// What a [`Create`] asks for, whatever answers it.
#[derive(Debug, Clone)]
pub(crate) struct CreateSpec {
    pub(crate) data: Option<Bytes>,
    pub(crate) acl: Option<Vec<Acl>>,
    pub(crate) mode: CreateMode,
    pub(crate) ttl: Option<Duration>,
    pub(crate) parents: Option<CreateMode>,
    pub(crate) parent_acl: Option<Vec<Acl>>,
}

impl Default for CreateSpec {
    /// Empty data, the open ACL, persistent, no parents.
    fn default() -> Self {
        CreateSpec {
            data: Some(Bytes::new()),
            acl: None,
            mode: CreateMode::Persistent,
            ttl: None,
            parents: None,
            parent_acl: None,
        }
    }
}

/// Marker: no mode chosen yet (persistent unless [`Create::mode`] or [`Create::ttl`]
/// says otherwise).
#[derive(Debug)]
pub enum ModeUnset {}
/// Marker: a mode chosen with [`Create::mode`].
#[derive(Debug)]
pub enum ModeSet {}
/// Marker: a TTL node, chosen with [`Create::ttl`].
#[derive(Debug)]
pub enum WithTtl {}

/// What a create answers: the created path (`String`), or the path and the new
/// znode's Stat (`(String, Stat)`, after [`Create::with_stat`]).
pub trait CreateOutput: sealed::Sealed + Send + 'static {
    /// Builds the answer from the path and Stat.
    fn from_created(path: String, stat: Stat) -> Self;
}

impl CreateOutput for String {
    fn from_created(path: String, _stat: Stat) -> Self {
        path
    }
}

impl CreateOutput for (String, Stat) {
    fn from_created(path: String, stat: Stat) -> Self {
        (path, stat)
    }
}

mod sealed {
    pub trait SealedHandle {}
    impl SealedHandle for crate::Client {}
    impl SealedHandle for crate::blocking::Client {}
    pub trait Sealed {}
    impl Sealed for String {}
    impl Sealed for (String, zk_proto::Stat) {}
}

/// The client a [`Create`] is sent by: [`Client`] (`.await` it) or
/// [`blocking::Client`](crate::blocking::Client) (`.run()` it).
pub trait Handle: sealed::SealedHandle + std::fmt::Debug {
    /// The async client underneath.
    fn async_client(&self) -> &Client;
}

impl Handle for Client {
    fn async_client(&self) -> &Client {
        self
    }
}

impl<'c, On: Handle> Create<'c, String, ModeUnset, On> {
    pub(crate) fn new(on: &'c On, path: &str) -> Create<'c, String, ModeUnset, On> {
        Create {
            on,
            path: path.to_string(),
            spec: CreateSpec::default(),
            sent: None,
            _out: PhantomData,
        }
    }
}

impl<'c, Out, Mode, On: Handle> Create<'c, Out, Mode, On> {
    fn retype<O2, M2>(self) -> Create<'c, O2, M2, On> {
        Create {
            on: self.on,
            path: self.path,
            spec: self.spec,
            sent: None,
            _out: PhantomData,
        }
    }

    /// The znode's data (empty by default).
    pub fn data(mut self, data: impl AsRef<[u8]>) -> Self {
        self.spec.data = Some(Bytes::copy_from_slice(data.as_ref()));
        self
    }

    /// Leaves the znode's data *null*, as Java's `create(path, null, …)` (and so
    /// zkCli.sh's `create /path`) does: readers see it empty,
    /// [`Client::get_data_nullable`] sees `None`.
    pub fn null_data(mut self) -> Self {
        self.spec.data = None;
        self
    }

    /// The znode's ACL ([`Acl::open_unsafe`] by default).
    pub fn acl(mut self, acl: &[Acl]) -> Self {
        self.spec.acl = Some(acl.to_vec());
        self
    }

    /// Creates missing parents on the way, as persistent znodes with an open ACL
    /// (Curator's `creatingParentsIfNeeded`, kazoo's `makepath`); see
    /// [`Create::container_parents`] and [`Create::parent_acl`].
    pub fn parents(mut self, create: bool) -> Self {
        self.spec.parents = create.then_some(CreateMode::Persistent);
        self
    }

    /// Creates missing parents on the way as containers, which the server deletes
    /// once they have had children and have none left (Curator's
    /// `creatingParentContainersIfNeeded`).
    pub fn container_parents(mut self, create: bool) -> Self {
        self.spec.parents = create.then_some(CreateMode::Container);
        self
    }

    /// The ACL of parents created on the way ([`Acl::open_unsafe`] by default, as in
    /// Curator: the node's own ACL may not let its creator create children).
    pub fn parent_acl(mut self, acl: &[Acl]) -> Self {
        self.spec.parent_acl = Some(acl.to_vec());
        self
    }

    /// Answers the new znode's Stat with its path (ZooKeeper's create2).
    pub fn with_stat(self) -> Create<'c, (String, Stat), Mode, On> {
        self.retype()
    }
}

impl<'c, Out, On: Handle> Create<'c, Out, ModeUnset, On> {
    /// The create mode (persistent by default). TTL nodes are made with
    /// [`Create::ttl`]; a TTL mode given here is refused with
    /// [`Error::BadArguments`].
    pub fn mode(mut self, mode: CreateMode) -> Create<'c, Out, ModeSet, On> {
        self.spec.mode = mode;
        self.retype()
    }

    /// A persistent znode the server deletes once it has had no children and no
    /// change for `ttl` (the server must allow TTL nodes, `extendedTypesEnabled`).
    pub fn ttl(mut self, ttl: Duration) -> Create<'c, Out, WithTtl, On> {
        self.spec.mode = CreateMode::PersistentWithTtl;
        self.spec.ttl = Some(ttl);
        self.retype()
    }
}

impl<'c, Out, On: Handle> Create<'c, Out, WithTtl, On> {
    /// Gives the TTL node a sequential suffix.
    pub fn sequential(mut self) -> Self {
        self.spec.mode = CreateMode::PersistentSequentialWithTtl;
        self
    }
}

impl<'c, Out: CreateOutput, Mode, On: Handle> Create<'c, Out, Mode, On> {
    /// The client this create goes through.
    pub(crate) fn handle(&self) -> &'c On {
        self.on
    }

    /// Sends the create now.
    pub(crate) fn send_now(self) -> Reply<Out> {
        run(self.on.async_client(), &self.path, self.spec)
            .map(|(path, stat)| Out::from_created(path, stat))
    }
}

impl<'c, Out: CreateOutput, Mode> Create<'c, Out, Mode, Client> {
    /// Queues the create *now* and returns its [`Reply`], for pipelining: requests
    /// called after `send` reach the server after it, whenever the reply is awaited
    /// (plain `.await` queues at the first poll instead).
    pub fn send(self) -> Reply<Out> {
        self.send_now()
    }
}

impl<'c, Out: CreateOutput, Mode> Future for Create<'c, Out, Mode, Client> {
    type Output = Result<Out>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Out>> {
        let this = &mut *self;
        let sent = this.sent.get_or_insert_with(|| {
            // Sent once: the spec is not needed again.
            run(this.on, &this.path, std::mem::take(&mut this.spec))
                .map(|(path, stat)| Out::from_created(path, stat))
        });
        Pin::new(sent).poll(cx)
    }
}

/// Sends the create now; with parents asked for, creates the missing ones after a
/// NoNode and tries again.
pub(crate) fn run(client: &Client, path: &str, spec: CreateSpec) -> Reply<(String, Stat)> {
    let first = client.create_request(path, &spec);
    let Some(parent_mode) = spec.parents else {
        return first;
    };
    let client = client.clone();
    let path = path.to_string();
    Reply::new(async move {
        let mut outcome = first.await;
        for _ in 0..PARENT_ATTEMPTS {
            match outcome {
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {
                    let acl = spec.parent_acl.clone().unwrap_or_else(Acl::open_unsafe);
                    create_ancestors(&client, &path, parent_mode, &acl).await?;
                    outcome = client.create_request(&path, &spec).await;
                }
                other => return other,
            }
        }
        outcome
    })
}

/// Creates every missing ancestor of `path` (not `path` itself), top down.
pub(crate) async fn create_ancestors(
    client: &Client,
    path: &str,
    mode: CreateMode,
    acl: &[Acl],
) -> Result<()> {
    let spec = CreateSpec {
        acl: Some(acl.to_vec()),
        mode,
        ..CreateSpec::default()
    };
    for ancestor in crate::paths::ancestors(path) {
        match client.create_request(ancestor, &spec).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
