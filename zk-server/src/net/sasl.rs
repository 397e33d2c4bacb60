//! The client port's SASL: the `sasl` request (opcode 102) runs one DIGEST-MD5
//! exchange per connection (ZooKeeper's `ZooKeeperServer.processSasl`), and
//! `enforce.auth.*` refuses the requests of connections that have not authenticated
//! (its `AuthenticationHelper`).
//!
//! - Success gives the connection the identity `sasl:<user>` (the authentication id,
//!   as `SaslServerCallbackHandler` sets it), and `super` too when the user is a
//!   `zookeeper.superUser`.
//! - Failure answers the request with AuthFailed (SessionClosedRequireSaslAuth when
//!   `enforce.auth.schemes` requires `sasl`) and a null token, then closes the
//!   connection (the session lives on until it expires), unless
//!   `zookeeper.allowSaslFailedClients` keeps it (answered Ok, null token).
//! - Without a JAAS section for the client port, every token is answered Ok with a
//!   null token, as ZooKeeper without a SASL login does.

use bytes::Bytes;
use tracing::{info, warn};
use zk_proto::sasl::{DigestServer, ServerStep};
use zk_proto::{ErrorCode, GetSaslRequest, Id, Reader, Record, Response, SetSaslResponse};

use super::dispatch::{push_unique, Step};
use crate::core::ServerCore;
use crate::watches::ConnId;

/// Answers one `sasl` request of connection `conn`, whose identities are `auth`.
pub(crate) fn step(
    core: &ServerCore,
    conn: ConnId,
    auth: &mut Vec<Id>,
    xid: i32,
    body: Bytes,
) -> Step {
    let Ok(request) = GetSaslRequest::read(&mut Reader::new(body)) else {
        info!("closing connection: malformed sasl request");
        return reply(xid, ErrorCode::MarshallingError, None, true);
    };
    let logins = core.sasl_logins();
    if !logins.client_port_enabled() {
        return reply(xid, ErrorCode::Ok, None, false);
    }
    let (exchange, remote) = core.with_connections(|conns| match conns.get_mut(&conn) {
        Some(entry) => (entry.sasl.take(), Some(entry.remote)),
        None => (None, None),
    });
    let mut exchange = exchange.unwrap_or_else(|| DigestServer::new(crate::sasl::nonce()));
    let token: &[u8] = &request.token;
    match exchange.step(token, |user| logins.client_password(user)) {
        Ok(ServerStep::Challenge(challenge)) => {
            core.with_connections(|conns| {
                if let Some(entry) = conns.get_mut(&conn) {
                    entry.sasl = Some(exchange);
                }
            });
            reply(xid, ErrorCode::Ok, Some(challenge), false)
        }
        Ok(ServerStep::Success { token, user }) => {
            info!(user, "adding SASL authorization");
            push_unique(auth, Id::new("sasl", user.clone()));
            if core.config.sasl.super_users.contains(&user) {
                info!(user, "authenticated as super user");
                push_unique(auth, crate::acl::super_id());
            }
            let snapshot = auth.clone();
            core.with_connections(|conns| {
                if let Some(entry) = conns.get_mut(&conn) {
                    entry.auth = snapshot;
                }
            });
            reply(xid, ErrorCode::Ok, Some(token), false)
        }
        Err(e) => {
            let remote = remote.map(|r| r.to_string()).unwrap_or_default();
            warn!(%remote, error = %e, "client failed to SASL authenticate");
            let settings = &core.config.sasl;
            if settings.allow_failed_clients && !settings.sasl_required() {
                warn!("maintaining client connection despite SASL authentication failure");
                return reply(xid, ErrorCode::Ok, None, false);
            }
            let err = if settings.sasl_required() {
                ErrorCode::SessionClosedRequireSaslAuth
            } else {
                ErrorCode::AuthFailed
            };
            warn!("closing client connection due to SASL authentication failure");
            reply(xid, err, None, true)
        }
    }
}

/// Whether a connection with identities `auth` may make request `op`: with
/// `enforce.auth.enabled`, only once it has an identity of an enforced scheme (its
/// `ip` one counts when `ip` is enforced); `auth` and `sasl` requests always may.
/// A refused request is answered SessionClosedRequireSaslAuth and the connection
/// closes, whatever the scheme, as ZooKeeper 3.8's `AuthenticationHelper` does.
pub(crate) fn enforce(core: &ServerCore, auth: &[Id], xid: i32) -> Option<Step> {
    let settings = &core.config.sasl;
    if !settings.enforce_auth
        || auth
            .iter()
            .any(|id| settings.enforce_schemes.contains(&id.scheme))
    {
        return None;
    }
    let schemes: Vec<&str> = auth.iter().map(|i| i.scheme.as_str()).collect();
    warn!(
        ?schemes,
        enforced = ?settings.enforce_schemes,
        "client authentication scheme(s) do not match the enforced ones; closing session"
    );
    Some(Step::reply(
        xid,
        0,
        ErrorCode::SessionClosedRequireSaslAuth,
        None,
        true,
    ))
}

fn reply(xid: i32, err: ErrorCode, token: Option<Vec<u8>>, close_after: bool) -> Step {
    // ZooKeeper sends the (null) token with an error too.
    let body = Response::Sasl(SetSaslResponse {
        token: token.map(Bytes::from),
    });
    Step::reply(xid, 0, err, Some(body), close_after)
}
