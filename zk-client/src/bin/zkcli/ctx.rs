//! What a server command runs with (`Ctx`): the connection, waited for when first
//! needed, each request bounded by the session timeout, and events that come meanwhile
//! put into the command's output where they came.

use std::future::Future;
use std::time::Duration;

use zk_client::{Client, Error};

use crate::cli_error::{keeper, CliError};
use crate::conn::Conn;
use crate::run::Run;

/// What a command needs from the shell: the connection (waited for when the command
/// first needs the server, as Java's calls wait) and where its output goes.
pub struct Ctx<'a> {
    /// The connection.
    pub conn: &'a mut Conn,
    /// The shell's watches (whose events are printed as they come).
    pub watches: &'a mut crate::watches::WatchTable,
    /// The output.
    pub run: &'a mut Run,
}

impl Ctx<'_> {
    /// The client; reports the connection if it is made now. A failure is reported
    /// for `path`.
    pub async fn zk(&mut self, path: &str) -> Result<Client, CliError> {
        match self.conn.client().await {
            Ok((client, fresh)) => {
                if fresh && self.run.print_watches {
                    self.run
                        .out(crate::events::event_text("SyncConnected", "None", None));
                }
                Ok(client)
            }
            Err(e) => Err(keeper(&e, path)),
        }
    }

    /// Runs one request, giving up (as a lost connection) after the session timeout.
    /// Events that came meanwhile are printed before what the command prints next, as
    /// Java's event thread printed them while the command waited.
    pub async fn rq<T>(
        &mut self,
        fut: impl Future<Output = zk_client::Result<T>>,
    ) -> zk_client::Result<T> {
        let r = match tokio::time::timeout(self.conn.timeout().max(Duration::from_secs(1)), fut)
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::ConnectionLoss),
        };
        crate::events::drain_events(self.conn, self.watches, self.run);
        r
    }
}
