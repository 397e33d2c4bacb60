//! Accepts client connections on a bound listener until shutdown, enforcing
//! `maxClientCnxns` per client address. On the secure client port each connection
//! first completes a TLS handshake; one that fails (no trusted certificate, plaintext
//! sent to the TLS port, a client that stalls) closes that connection only. A client
//! that presented a certificate gets the `x509` identity of its subject, as with
//! Apache ZooKeeper's `X509AuthenticationProvider`. With `client.portUnification`
//! the plain port takes both: a connection whose first byte is a TLS handshake record
//! (0x16) is served over TLS, any other in plaintext (a ZooKeeper request frame starts
//! with its length's high byte, 0x00; a four-letter word with a letter).

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

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// How a port's connections are served.
#[derive(Clone)]
pub enum Mode {
    /// Plaintext.
    Plain,
    /// TLS, every connection.
    Tls(TlsAcceptor),
    /// TLS or plaintext, told apart by the first byte (`client.portUnification`).
    Unified(TlsAcceptor),
}

/// Serves clients on `listener` until `shutdown` is cancelled, as `mode` says.
pub async fn run(
    core: Arc<ServerCore>,
    listener: TcpListener,
    mode: Mode,
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
        match &mode {
            Mode::Plain => {
                tokio::spawn(connection::serve(
                    core.clone(),
                    stream,
                    remote,
                    shutdown.clone(),
                ));
            }
            Mode::Tls(acceptor) => {
                tokio::spawn(serve_tls(
                    core.clone(),
                    acceptor.clone(),
                    stream,
                    remote,
                    shutdown.clone(),
                ));
            }
            Mode::Unified(acceptor) => {
                tokio::spawn(serve_either(
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

/// Waits (within the handshake timeout) for the first byte, without consuming it,
/// and serves the connection over TLS if it starts a TLS handshake.
async fn serve_either(
    core: Arc<ServerCore>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
    shutdown: CancellationToken,
) {
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        _ = shutdown.cancelled() => return,
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)) => done,
    };
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
            serve_tls(core, acceptor, stream, remote, shutdown).await
        }
        Ok(Ok(1)) => connection::serve(core, stream, remote, shutdown).await,
        Ok(Ok(_)) => debug!(%remote, "closed before its first byte"),
        Ok(Err(e)) => debug!(%remote, error = %e, "cannot read the first byte"),
        Err(_) => debug!(%remote, "sent nothing; closing the connection"),
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
        .and_then(|leaf| crate::tls::x509::subject_rfc2253(leaf))
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
