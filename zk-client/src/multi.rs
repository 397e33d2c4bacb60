//! Transactions: several writes applied all or nothing (`multi`), and what each op
//! answered ([`OpResult`]).

use bytes::Bytes;
use zk_proto::{
    Acl, CheckVersionRequest, CreateMode, CreateRequest, DeleteRequest, ErrorCode, MultiOp,
    MultiRequest, OpCode, SetDataRequest, Stat,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::reply::Reply;

/// A transaction being built; [`Transaction::commit`] sends it as one `multi`: every
/// op applies, or none does.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> zk_client::Result<()> {
/// # let server = zk_server::testing::TestingServer::start().await.expect("a server");
/// use zk_client::{Acl, Client, CreateMode, Error, ErrorCode, OpResult};
/// let zk = Client::connect(&server.connect_string()).await?;
/// let open = Acl::open_unsafe();
/// zk.transaction()
///     .create("/jobs", b"", &open, CreateMode::Persistent)
///     .create("/jobs/1", b"todo", &open, CreateMode::Persistent)
///     .commit()
///     .await?;
/// // Claim job 1 only if nobody changed it: version check and write, atomically.
/// let refused = zk
///     .transaction()
///     .check("/jobs/1", 7)
///     .set_data("/jobs/1", b"mine", None)
///     .commit()
///     .await;
/// assert!(matches!(refused, Err(Error::Keeper { code: ErrorCode::BadVersion, .. })));
/// // Every op's result, also of a refused transaction.
/// let results = zk
///     .transaction()
///     .check("/jobs/1", 7)
///     .set_data("/jobs/1", b"mine", None)
///     .commit_results()
///     .await?;
/// assert_eq!(
///     zk_client::multi::first_error(&results),
///     Some((0, ErrorCode::BadVersion))
/// );
/// assert_eq!(
///     results[1],
///     OpResult::Error { code: ErrorCode::RuntimeInconsistency }
/// );
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    client: Client,
    ops: Vec<MultiOp>,
    paths: Vec<String>,
    error: Option<Error>,
}

impl Transaction {
    pub(crate) fn new(client: Client) -> Transaction {
        Transaction {
            client,
            ops: Vec::new(),
            paths: Vec::new(),
            error: None,
        }
    }

    fn push(mut self, path: &str, op: Result<MultiOp>) -> Self {
        match op {
            Ok(op) => {
                self.ops.push(op);
                self.paths.push(path.to_string());
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Adds a create.
    pub fn create(self, path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Self {
        let op = self
            .client
            .server_create_path(path, mode.is_sequential())
            .map(|server_path| MultiOp::Create {
                opcode: if mode.is_container() {
                    OpCode::CreateContainer
                } else {
                    OpCode::Create
                },
                request: CreateRequest {
                    path: server_path,
                    data: Some(Bytes::copy_from_slice(data)),
                    acl: acl.to_vec(),
                    flags: mode.code(),
                },
            });
        self.push(path, op)
    }

    /// Adds a delete (`None`: any version).
    pub fn delete(self, path: &str, version: Option<i32>) -> Self {
        let op = self.client.server_path(path).map(|p| {
            MultiOp::Delete(DeleteRequest {
                path: p,
                version: version.unwrap_or(-1),
            })
        });
        self.push(path, op)
    }

    /// Adds a setData (`None`: any version).
    pub fn set_data(self, path: &str, data: &[u8], version: Option<i32>) -> Self {
        let op = self.client.server_path(path).map(|p| {
            MultiOp::SetData(SetDataRequest {
                path: p,
                data: Some(Bytes::copy_from_slice(data)),
                version: version.unwrap_or(-1),
            })
        });
        self.push(path, op)
    }

    /// Adds a version check: the transaction fails unless `path` is at `version`.
    pub fn check(self, path: &str, version: i32) -> Self {
        let op = self
            .client
            .server_path(path)
            .map(|p| MultiOp::Check(CheckVersionRequest { path: p, version }));
        self.push(path, op)
    }

    /// Runs the transaction. On success, one result per op; if any op failed, nothing
    /// was applied and the error names the op that failed (its code and path; see
    /// [`Transaction::commit_results`] for every op's result).
    ///
    /// The multi is queued when `commit` is *called*, like every other operation:
    /// calls made after it reach the server after it.
    pub fn commit(self) -> Reply<Vec<OpResult>> {
        let paths = self.paths.clone();
        let results = self.commit_results();
        Reply::new(async move {
            let results = results.await?;
            match first_error(&results) {
                Some((index, code)) => Err(Error::keeper(code, &paths[index])),
                None => Ok(results),
            }
        })
    }

    /// Runs the transaction and answers every op's result, also when the server refused
    /// it (Java's `KeeperException.getResults()`): then the op that failed carries its
    /// error and every other op `OpResult::Error` with code `RuntimeInconsistency` (ops
    /// after the one that failed) or `Ok` (ops before it); see [`first_error`].
    /// `Err` only when there is no answer (connection loss, session over, an op the
    /// client refused to send). Queued when called, like [`Transaction::commit`].
    pub fn commit_results(self) -> Reply<Vec<OpResult>> {
        let client = self.client.clone();
        let sent = match self.error {
            Some(e) => Err(e),
            None => Ok(self
                .client
                .submit_multi(MultiRequest { ops: self.ops }, false)),
        };
        Reply::new(async move {
            Ok(sent?
                .await?
                .into_iter()
                .map(|r| OpResult::from_wire(r, |p| client.client_path(p)))
                .collect())
        })
    }
}

/// What one op of a transaction answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// A create: the path created (with its sequence suffix, chroot removed).
    Create {
        /// The created path.
        path: String,
        /// The new znode's Stat, when the server sent it (create2 ops).
        stat: Option<Stat>,
    },
    /// A delete.
    Delete,
    /// A setData, with the Stat after it.
    SetData {
        /// The Stat after the change.
        stat: Stat,
    },
    /// A version check.
    Check,
    /// The op did not apply. In a refused transaction every op answers this: the op
    /// that failed its own code, ops before it `Ok`, ops after it
    /// `RuntimeInconsistency` (see [`first_error`]).
    Error {
        /// Why (a code the client does not know reads as `SystemError`).
        code: ErrorCode,
    },
}

impl OpResult {
    /// The client's view of one op's answer on the wire (`client_path` strips the
    /// chroot from created paths).
    pub(crate) fn from_wire(
        result: zk_proto::OpResult,
        client_path: impl Fn(&str) -> String,
    ) -> OpResult {
        match result {
            zk_proto::OpResult::Create { path } => OpResult::Create {
                path: client_path(&path),
                stat: None,
            },
            zk_proto::OpResult::Create2 { path, stat } => OpResult::Create {
                path: client_path(&path),
                stat: Some(stat),
            },
            zk_proto::OpResult::Delete => OpResult::Delete,
            zk_proto::OpResult::SetData { stat } => OpResult::SetData { stat },
            zk_proto::OpResult::Check => OpResult::Check,
            zk_proto::OpResult::Error { err } => OpResult::Error {
                code: ErrorCode::from_code(err).unwrap_or(ErrorCode::SystemError),
            },
            // Reads belong to multiRead, which answers ReadResults instead.
            zk_proto::OpResult::GetChildren { .. } | zk_proto::OpResult::GetData { .. } => {
                OpResult::Error {
                    code: ErrorCode::MarshallingError,
                }
            }
        }
    }
}

/// The op that made a multi fail: its index and code (`None` if every op succeeded).
/// ZooKeeper answers a failed multi with an error result for every op: the culprit's
/// own code, `Ok` before it and `RuntimeInconsistency` after it.
pub fn first_error(results: &[OpResult]) -> Option<(usize, ErrorCode)> {
    results
        .iter()
        .enumerate()
        .find_map(|(index, result)| match result {
            OpResult::Error { code } => (*code != ErrorCode::Ok
                && *code != ErrorCode::RuntimeInconsistency)
                .then_some((index, *code)),
            _ => None,
        })
}
