//! The client side of DIGEST-MD5 as ZooKeeper's clients run it: send an empty first
//! token, answer the server's challenge with `response=`, check its `rspauth`.

use super::digest::DigestInput;
use super::directives::{quote, Directives};
use super::{SaslError, DIGEST_REALM, SERVICE};

/// What the client does after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientStep {
    /// Send this token; the exchange goes on.
    Respond(Vec<u8>),
    /// The server proved it knows the password: authenticated, nothing more to send.
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    AwaitChallenge,
    AwaitRspAuth(String),
    Complete,
    Failed,
}

/// One DIGEST-MD5 exchange, client side. Start it by sending an empty token (the
/// mechanism has no initial response); feed every server token to [`step`](Self::step).
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    cnonce: String,
    state: State,
}

impl std::fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DigestClient {
    /// A new exchange for `username`/`password` with client nonce `cnonce` (random,
    /// without `"` or `\`).
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        cnonce: impl Into<String>,
    ) -> DigestClient {
        DigestClient {
            username: username.into(),
            password: password.into(),
            cnonce: cnonce.into(),
            state: State::AwaitChallenge,
        }
    }

    /// The token that opens the exchange: empty (DIGEST-MD5 has no initial response).
    pub fn initial(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the server has been authenticated in turn (the exchange succeeded).
    pub fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// Takes the server's next token. Any error ends the exchange.
    pub fn step(&mut self, token: &[u8]) -> Result<ClientStep, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        match state {
            State::AwaitChallenge => {
                let (response, rspauth) = self.respond(token)?;
                self.state = State::AwaitRspAuth(rspauth);
                Ok(ClientStep::Respond(response.into_bytes()))
            }
            State::AwaitRspAuth(expected) => {
                let d = Directives::parse(token)?;
                let got = d.require("rspauth")?;
                if !got.eq_ignore_ascii_case(&expected) {
                    return Err(SaslError::BadRspAuth);
                }
                self.state = State::Complete;
                Ok(ClientStep::Complete)
            }
            State::Complete | State::Failed => Err(SaslError::Finished),
        }
    }

    /// The response to a challenge, and the rspauth the server must answer with.
    fn respond(&self, challenge: &[u8]) -> Result<(String, String), SaslError> {
        let d = Directives::parse(challenge)?;
        let nonce = d.require("nonce")?;
        if nonce.contains(['"', '\\']) {
            return Err(SaslError::Unacceptable {
                name: "nonce",
                value: nonce.to_string(),
            });
        }
        let realm = d.get("realm").unwrap_or("");
        let qops = d.get("qop").unwrap_or("auth");
        if !qops.split(',').any(|q| q.trim() == "auth") {
            return Err(SaslError::Unacceptable {
                name: "qop",
                value: qops.to_string(),
            });
        }
        let algorithm = d.require("algorithm")?;
        if !algorithm.eq_ignore_ascii_case("md5-sess") {
            return Err(SaslError::Unacceptable {
                name: "algorithm",
                value: algorithm.to_string(),
            });
        }
        let digest_uri = format!("{SERVICE}/{DIGEST_REALM}");
        let input = DigestInput {
            username: &self.username,
            realm,
            password: &self.password,
            nonce,
            cnonce: &self.cnonce,
            nc: "00000001",
            qop: "auth",
            digest_uri: &digest_uri,
            authzid: None,
        };
        let mut response = String::new();
        if d.get("charset").is_some() {
            response.push_str("charset=utf-8,");
        }
        response.push_str(&format!(
            "username={},realm={},nonce={},nc=00000001,cnonce={},digest-uri={},maxbuf=65536,response={},qop=auth",
            quote(&self.username),
            quote(realm),
            quote(nonce),
            quote(&self.cnonce),
            quote(&digest_uri),
            input.response(),
        ));
        Ok((response, input.rspauth()))
    }
}
