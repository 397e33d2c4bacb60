//! Accepts client connections on a bound listener until shutdown, enforcing
//! `maxClientCnxns` per client address. On the secure client port each connection
//! first completes a TLS handshake; one that fails (no trusted certificate, plaintext
//! sent to the TLS port, a client that stalls) closes that connection only. A client
//! that presented a certificate gets the `x509` identity of its subject, as with
//! Apache ZooKeeper's `X509AuthenticationProvider`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use zk_proto::Id;

use super::connection;
use crate::core::ServerCore;

/// How long a client may take to complete its TLS handshake (Apache ZooKeeper's
/// `ssl.handshakeDetectionTimeoutMillis` default).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves clients on `listener` until `shutdown` is cancelled; with `tls`, every
/// connection is a TLS session.
pub async fn run(
    core: Arc<ServerCore>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
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
        match &tls {
            None => {
                tokio::spawn(connection::serve(
                    core.clone(),
                    stream,
                    remote,
                    shutdown.clone(),
                ));
            }
            Some(acceptor) => {
                tokio::spawn(serve_tls(
                    core.clone(),
                    acceptor.clone(),
                    stream,
                    remote,
                    shutdown.clone(),
                ));
            }
        }
    }
}

/// Completes the TLS handshake, then serves the connection as any other.
async fn serve_tls(
    core: Arc<ServerCore>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => done,
    };
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            info!(%remote, error = %e, "TLS handshake failed; closing the connection");
            return;
        }
        Err(_) => {
            debug!(%remote, "TLS handshake timed out; closing the connection");
            return;
        }
    };
    let identities = x509_identities(&core, tls.get_ref().1.peer_certificates());
    let (rd, wr) = tokio::io::split(tls);
    connection::serve_halves(core, rd, wr, remote, identities, shutdown).await;
}

/// `x509:<subject>` for a client that presented a (verified) certificate, and `super`
/// too when that subject is `X509AuthenticationProvider.superUser`.
fn x509_identities(
    core: &ServerCore,
    chain: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> Vec<Id> {
    let Some(subject) = chain
        .and_then(|c| c.first())
        .and_then(|leaf| super::x509::subject_rfc2253(leaf))
    else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if core.config.x509_super_user.as_deref() == Some(subject.as_str()) {
        ids.push(crate::acl::super_id());
    }
    ids.push(Id::new("x509", subject));
    ids
}
