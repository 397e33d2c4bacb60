//! The server side of DIGEST-MD5 as Java's `DigestMD5Server` runs it for ZooKeeper:
//! an empty first token gets the challenge (realm `zk-sasl-md5`, qop `auth`,
//! charset `utf-8`, algorithm `md5-sess`); the client's response is checked against
//! the user's password and answered with `rspauth`, which completes the exchange.

use super::digest::DigestInput;
use super::directives::{quote, Directives};
use super::{SaslError, DIGEST_REALM, SERVICE};

/// What the server sends back after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// Send this last token (`rspauth=…`); `user` is authenticated (its authentication
    /// id, which ZooKeeper's `SaslServerCallbackHandler` makes the `sasl` identity).
    Success {
        /// The final token.
        token: Vec<u8>,
        /// The authenticated user name.
        user: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Challenged,
    Finished,
}

/// One connection's DIGEST-MD5 exchange, server side.
#[derive(Debug, Clone)]
pub struct DigestServer {
    nonce: String,
    state: State,
}

impl DigestServer {
    /// A new exchange whose challenge carries `nonce` (random, unguessable: the
    /// caller's job; it must hold no `"` or `\`, base64 or hex will do).
    pub fn new(nonce: impl Into<String>) -> DigestServer {
        DigestServer {
            nonce: nonce.into(),
            state: State::Start,
        }
    }

    /// Whether the exchange is over (succeeded or failed).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Takes the client's next token; `password_of` gives a user's password (None:
    /// unknown user). Any error ends the exchange.
    pub fn step(
        &mut self,
        token: &[u8],
        password_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<ServerStep, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        match state {
            State::Start if !token.is_empty() => Err(SaslError::InitialResponse),
            State::Start => {
                self.state = State::Challenged;
                Ok(ServerStep::Challenge(self.challenge().into_bytes()))
            }
            State::Challenged => self.check_response(token, password_of),
            State::Finished => Err(SaslError::Finished),
        }
    }

    /// `realm="zk-sasl-md5",nonce="…",qop="auth",charset=utf-8,algorithm=md5-sess`.
    fn challenge(&self) -> String {
        format!(
            "realm={},nonce={},qop=\"auth\",charset=utf-8,algorithm=md5-sess",
            quote(DIGEST_REALM),
            quote(&self.nonce)
        )
    }

    fn check_response(
        &self,
        token: &[u8],
        password_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<ServerStep, SaslError> {
        let d = Directives::parse(token)?;
        for once in [
            "username",
            "nonce",
            "cnonce",
            "nc",
            "response",
            "digest-uri",
        ] {
            if d.count(once) > 1 {
                return Err(SaslError::Malformed(format!("{once} repeated")));
            }
        }
        if let Some(charset) = d.get("charset") {
            if !charset.eq_ignore_ascii_case("utf-8") {
                return Err(unacceptable("charset", charset));
            }
        }
        let username = d.require("username")?;
        let realm = d.get("realm").unwrap_or("");
        if !realm.is_empty() && realm != DIGEST_REALM {
            return Err(unacceptable("realm", realm));
        }
        let nonce = d.require("nonce")?;
        if nonce != self.nonce {
            return Err(unacceptable("nonce", nonce));
        }
        let cnonce = d.require("cnonce")?;
        let nc = d.require("nc")?;
        if u32::from_str_radix(nc, 16) != Ok(1) {
            return Err(unacceptable("nc", nc));
        }
        let qop = d.get("qop").unwrap_or("auth");
        if qop != "auth" {
            return Err(unacceptable("qop", qop));
        }
        let digest_uri = d.require("digest-uri")?;
        if !digest_uri.eq_ignore_ascii_case(&format!("{SERVICE}/{DIGEST_REALM}")) {
            return Err(unacceptable("digest-uri", digest_uri));
        }
        let response = d.require("response")?;
        let Some(password) = password_of(username) else {
            return Err(SaslError::UnknownUser(username.to_string()));
        };
        let input = DigestInput {
            username,
            realm,
            password: &password,
            nonce,
            cnonce,
            nc,
            qop,
            digest_uri,
            authzid: d.get("authzid"),
        };
        if !input.response().eq_ignore_ascii_case(response) {
            return Err(SaslError::BadResponse(username.to_string()));
        }
        Ok(ServerStep::Success {
            token: format!("rspauth={}", input.rspauth()).into_bytes(),
            user: username.to_string(),
        })
    }
}

fn unacceptable(name: &'static str, value: &str) -> SaslError {
    SaslError::Unacceptable {
        name,
        value: value.to_string(),
    }
}
