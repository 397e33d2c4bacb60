//! SASL DIGEST-MD5 on a fresh connection, as Java's `ZooKeeperSaslClient` runs it:
//! once the session handshake is answered and before anything else is sent, `sasl`
//! requests carry the mechanism's tokens until the server's `rspauth` has been checked.
//! The server then knows the connection as `sasl:<user>`.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use zk_proto::frame::{write_frame, FrameDecoder};
use zk_proto::sasl::{ClientStep, DigestClient};
use zk_proto::{
    ErrorCode, GetSaslRequest, OpCode, Reader, Record, ReplyHeader, RequestHeader, SetSaslResponse,
};

use crate::session::{read_frame, Stream};

/// A user name and password for DIGEST-MD5 (a JAAS `Client` section's).
#[derive(Clone)]
pub(crate) struct SaslLogin {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why an exchange did not succeed.
#[derive(Debug)]
pub(crate) enum SaslFailure {
    /// The server refused the login (AuthFailed, SessionClosedRequireSaslAuth), or the
    /// mechanism failed: the session cannot go on.
    Refused(String),
    /// The connection failed or timed out: try again, elsewhere.
    Io(std::io::Error),
}

impl From<std::io::Error> for SaslFailure {
    fn from(e: std::io::Error) -> Self {
        SaslFailure::Io(e)
    }
}

/// Most `sasl` round trips an exchange may take (DIGEST-MD5 needs two).
const MAX_ROUNDS: i32 = 8;

/// Runs the exchange on `stream`, each round trip within `within`.
pub(crate) async fn authenticate(
    stream: &mut Box<dyn Stream>,
    login: &SaslLogin,
    max_reply: usize,
    within: Duration,
) -> Result<(), SaslFailure> {
    let cnonce = format!("{:032x}", rand::random::<u128>());
    let mut client = DigestClient::new(login.user.clone(), login.password.clone(), cnonce);
    let mut token = client.initial();
    let mut decoder = FrameDecoder::new(max_reply);
    let mut buf = BytesMut::new();
    for xid in 1..=MAX_ROUNDS {
        let mut out = BytesMut::new();
        write_frame(&mut out, |w| {
            RequestHeader::new(xid, OpCode::Sasl).write(w);
            GetSaslRequest {
                token: token.clone().into(),
            }
            .write(w);
        });
        stream.write_all(&out).await?;
        let frame = read_frame(stream, &mut buf, &mut decoder, within, "SASL").await?;
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r).map_err(std::io::Error::other)?;
        if header.err != i32::from(ErrorCode::Ok) {
            return Err(SaslFailure::Refused(format!(
                "server refused SASL login {:?}: {:?}",
                login.user,
                ErrorCode::try_from(header.err).ok()
            )));
        }
        let reply = SetSaslResponse::read(&mut r).map_err(std::io::Error::other)?;
        let Some(challenge) = reply.token else {
            return Err(SaslFailure::Refused(
                "the server does not do SASL (null token)".into(),
            ));
        };
        match client.step(&challenge) {
            Ok(ClientStep::Respond(next)) => token = next,
            Ok(ClientStep::Complete) => return Ok(()),
            Err(e) => return Err(SaslFailure::Refused(e.to_string())),
        }
    }
    Err(SaslFailure::Refused("SASL exchange did not end".into()))
}
