//! Accepts client connections on a bound listener until shutdown, enforcing
//! `maxClientCnxns` per client address.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::connection;
use crate::core::ServerCore;

/// Serves clients on `listener` until `shutdown` is cancelled.
pub async fn run(core: Arc<ServerCore>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let max = core.config.max_client_cnxns as usize;
        if max > 0 && core.connections_from(remote.ip()) >= max {
            info!(%remote, max, "too many connections from this address; closing");
            drop(stream);
            continue;
        }
        tokio::spawn(connection::serve(
            core.clone(),
            stream,
            remote,
            shutdown.clone(),
        ));
    }
}
