//! Quorum SASL (`quorum.auth.enableSasl=true`): a DIGEST-MD5 handshake at the start
//! of every peer link, before any other frame, in both directions. The connecting
//! member first proves itself with its `QuorumLearner` login against the accepting
//! member's `QuorumServer` users; then the accepting member proves itself the same
//! way. ZooKeeper's learner always connects to its leader; our leader also connects
//! to its followers, so authenticating only the connecting side would let a member
//! with a wrong password follow over links the others opened: both sides prove their
//! login, and a member with a wrong password can neither reach nor be reached.
//!
//! Handshake frames use the link's framing (length, rmp-serde `(0, frame)`).

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use zk_proto::sasl::{ClientStep, DigestClient, DigestServer, ServerStep};

use super::wire::{encode, read_frame};
use crate::sasl::QuorumLogins;

/// How long a peer's whole handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A member's quorum SASL: whom it accepts and who it is.
#[derive(Debug)]
pub struct PeerSasl {
    logins: QuorumLogins,
}

impl PeerSasl {
    /// From the JAAS file's `QuorumServer` and `QuorumLearner` sections.
    pub fn new(logins: QuorumLogins) -> PeerSasl {
        PeerSasl { logins }
    }
}

/// One handshake frame.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SaslFrame {
    /// A mechanism token (the empty initial one, a challenge, a response).
    Token(Vec<u8>),
    /// Authenticated; the last token (`rspauth`).
    Success(Vec<u8>),
    /// Refused, and why.
    Refused(String),
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

async fn send(wr: &mut (impl AsyncWrite + Unpin), frame: &SaslFrame) -> io::Result<()> {
    wr.write_all(&encode(0, frame)?).await?;
    wr.flush().await
}

async fn receive(rd: &mut (impl AsyncRead + Unpin)) -> io::Result<SaslFrame> {
    Ok(read_frame::<SaslFrame>(rd).await?.1)
}

/// The connecting side: proves its login, then checks the accepting member's.
/// Returns the accepting member's user name.
pub async fn connecting(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    sasl: &PeerSasl,
) -> io::Result<String> {
    let exchange = async {
        prove(rd, wr, &sasl.logins, true).await?;
        check(rd, wr, &sasl.logins, false).await
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "quorum SASL handshake timed out"))?
}

/// The accepting side: checks the connecting member's login, then proves its own.
/// Returns the connecting member's user name.
pub async fn accepting(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    sasl: &PeerSasl,
) -> io::Result<String> {
    let exchange = async {
        let user = check(rd, wr, &sasl.logins, true).await?;
        prove(rd, wr, &sasl.logins, false).await?;
        Ok(user)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "quorum SASL handshake timed out"))?
}

/// The mechanism's client role with this member's `QuorumLearner` login; `opens`:
/// this side sends the empty first token (else the other side challenges at once).
async fn prove(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    logins: &QuorumLogins,
    opens: bool,
) -> io::Result<()> {
    let (user, password) = &logins.login;
    let mut client = DigestClient::new(user.clone(), password.clone(), crate::sasl::nonce());
    if opens {
        send(wr, &SaslFrame::Token(client.initial())).await?;
    }
    loop {
        match receive(rd).await? {
            SaslFrame::Token(challenge) => match client.step(&challenge) {
                Ok(ClientStep::Respond(response)) => {
                    send(wr, &SaslFrame::Token(response)).await?;
                }
                Ok(ClientStep::Complete) => {
                    return Err(refused("peer sent a token after rspauth".into()))
                }
                Err(e) => return Err(refused(e.to_string())),
            },
            SaslFrame::Success(token) => {
                return match client.step(&token) {
                    Ok(ClientStep::Complete) => Ok(()),
                    Ok(ClientStep::Respond(_)) => Err(refused("peer ended too soon".into())),
                    Err(e) => Err(refused(e.to_string())),
                }
            }
            SaslFrame::Refused(why) => {
                return Err(refused(format!(
                    "the peer refused our quorum SASL login as {user:?}: {why}"
                )))
            }
        }
    }
}

/// The mechanism's server role against this member's `QuorumServer` users; `opened`:
/// the other side sends the empty first token. Returns the user authenticated.
async fn check(
    rd: &mut (impl AsyncRead + Unpin),
    wr: &mut (impl AsyncWrite + Unpin),
    logins: &QuorumLogins,
    opened: bool,
) -> io::Result<String> {
    let mut server = DigestServer::new(crate::sasl::nonce());
    let first = if opened {
        match receive(rd).await? {
            SaslFrame::Token(t) => t,
            _ => return Err(refused("peer did not start quorum SASL".into())),
        }
    } else {
        Vec::new()
    };
    let mut token = first;
    loop {
        match server.step(&token, |u| logins.users.get(u).cloned()) {
            Ok(ServerStep::Challenge(challenge)) => {
                send(wr, &SaslFrame::Token(challenge)).await?;
            }
            Ok(ServerStep::Success { token, user }) => {
                send(wr, &SaslFrame::Success(token)).await?;
                return Ok(user);
            }
            Err(e) => {
                let _ = send(wr, &SaslFrame::Refused(e.to_string())).await;
                return Err(refused(format!("quorum SASL: {e}")));
            }
        }
        token = match receive(rd).await? {
            SaslFrame::Token(t) => t,
            _ => return Err(refused("peer broke off quorum SASL".into())),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn member(password: &str) -> PeerSasl {
        PeerSasl::new(QuorumLogins {
            users: BTreeMap::from([("zk".to_string(), "secret".to_string())]),
            login: ("zk".to_string(), password.to_string()),
        })
    }

    async fn link(a: PeerSasl, b: PeerSasl) -> (io::Result<String>, io::Result<String>) {
        let (x, y) = tokio::io::duplex(4096);
        let (mut xr, mut xw) = tokio::io::split(x);
        let (mut yr, mut yw) = tokio::io::split(y);
        tokio::join!(
            async move { connecting(&mut xr, &mut xw, &a).await },
            async move { accepting(&mut yr, &mut yw, &b).await }
        )
    }

    #[tokio::test]
    async fn members_with_the_password_authenticate_each_other() {
        let (c, a) = link(member("secret"), member("secret")).await;
        assert_eq!(c.unwrap(), "zk");
        assert_eq!(a.unwrap(), "zk");
    }

    #[tokio::test]
    async fn a_wrong_password_is_refused_whichever_side_connects() {
        let (c, a) = link(member("wrong"), member("secret")).await;
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(a.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        let (c, a) = link(member("secret"), member("wrong")).await;
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(a.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }
}
