//! SASL as ZooKeeper speaks it on the client port (the `sasl` request, opcode 102,
//! carries the tokens) and between members: the DIGEST-MD5 mechanism (RFC 2831) as
//! Java's `DigestMD5Server`/`DigestMD5Client` run it for ZooKeeper, sans-IO.
//!
//! - [`directives`]: the `name=value,…` lists both sides exchange.
//! - [`digest`]: the RFC's hashes (`response=` and `rspauth=`).
//! - [`server`]: the server's state machine ([`DigestServer`]): challenge, check the
//!   client's response, answer `rspauth`.
//! - [`client`]: the client's ([`DigestClient`]): answer the challenge, check `rspauth`.
//!
//! Nonces come from the caller, so both machines are deterministic and testable.

pub mod client;
pub mod digest;
pub mod directives;
pub mod server;

pub use client::{ClientStep, DigestClient};
pub use server::{DigestServer, ServerStep};

/// The SASL service name ZooKeeper uses (`zookeeper`; digest-uri's first half).
pub const SERVICE: &str = "zookeeper";

/// The server name (and realm) ZooKeeper fixes for DIGEST-MD5 (`zk-sasl-md5`, from
/// `SaslServerCallbackHandler`'s and `ZooKeeperSaslClient`'s callers).
pub const DIGEST_REALM: &str = "zk-sasl-md5";

/// The mechanism's name.
pub const DIGEST_MD5: &str = "DIGEST-MD5";

/// Why a DIGEST-MD5 exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// A token is not a well-formed directive list.
    #[error("DIGEST-MD5: malformed token: {0}")]
    Malformed(String),
    /// A directive the step needs is missing.
    #[error("DIGEST-MD5: missing directive {0}")]
    Missing(&'static str),
    /// A directive has a value this side does not accept.
    #[error("DIGEST-MD5: unacceptable {name}: {value:?}")]
    Unacceptable {
        /// The directive.
        name: &'static str,
        /// Its value as received.
        value: String,
    },
    /// The server does not know the user.
    #[error("DIGEST-MD5: unknown user {0:?}")]
    UnknownUser(String),
    /// The client's `response=` does not prove the password (wrong password).
    #[error("DIGEST-MD5: authentication failed for user {0:?} (wrong password)")]
    BadResponse(String),
    /// The server's `rspauth=` does not prove it knows the password.
    #[error("DIGEST-MD5: the server's rspauth does not match")]
    BadRspAuth,
    /// The server answered DIGEST-MD5's first step with a non-empty initial token.
    #[error("DIGEST-MD5 must not have an initial response")]
    InitialResponse,
    /// A token arrived after the exchange was over (or after it failed).
    #[error("DIGEST-MD5: exchange already finished")]
    Finished,
}

/// Encodes `s` as RFC 2831 asks under `charset=utf-8`: ISO 8859-1 when every
/// character fits, UTF-8 otherwise (Java's `DigestMD5Base.stringToByte_8859_1`).
pub(crate) fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) <= 0xff) {
        s.chars().map(|c| c as u32 as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_hash_as_latin1_when_they_fit() {
        assert_eq!(latin1_or_utf8("abc"), b"abc");
        assert_eq!(latin1_or_utf8("é"), vec![0xe9]);
        assert_eq!(latin1_or_utf8("€"), "€".as_bytes());
    }

    #[test]
    fn client_and_server_agree() {
        let mut server = DigestServer::new("servernonce");
        let mut client = DigestClient::new("bob", "pw", "clientnonce");
        let ServerStep::Challenge(challenge) = server.step(b"", |_| None).unwrap() else {
            panic!("first step must challenge");
        };
        let ClientStep::Respond(response) = client.step(&challenge).unwrap() else {
            panic!("client must respond");
        };
        let step = server
            .step(&response, |u| (u == "bob").then(|| "pw".to_string()))
            .unwrap();
        let ServerStep::Success { token, user } = step else {
            panic!("server must succeed");
        };
        assert_eq!(user, "bob");
        assert_eq!(client.step(&token).unwrap(), ClientStep::Complete);
        assert!(client.is_complete());
    }

    #[test]
    fn wrong_password_is_refused() {
        let mut server = DigestServer::new("n1");
        let mut client = DigestClient::new("bob", "wrong", "c1");
        let ServerStep::Challenge(challenge) = server.step(b"", |_| None).unwrap() else {
            panic!("first step must challenge");
        };
        let ClientStep::Respond(response) = client.step(&challenge).unwrap() else {
            panic!("client must respond");
        };
        let err = server
            .step(&response, |_| Some("pw".to_string()))
            .unwrap_err();
        assert_eq!(err, SaslError::BadResponse("bob".into()));
        // A failed exchange stays failed.
        assert_eq!(server.step(&response, |_| None), Err(SaslError::Finished));
    }

    #[test]
    fn unknown_user_is_refused() {
        let mut server = DigestServer::new("n1");
        let mut client = DigestClient::new("nobody", "pw", "c1");
        let ServerStep::Challenge(challenge) = server.step(b"", |_| None).unwrap() else {
            panic!("first step must challenge");
        };
        let ClientStep::Respond(response) = client.step(&challenge).unwrap() else {
            panic!("client must respond");
        };
        assert_eq!(
            server.step(&response, |_| None).unwrap_err(),
            SaslError::UnknownUser("nobody".into())
        );
    }

    #[test]
    fn tampered_response_or_rspauth_is_refused() {
        let mut server = DigestServer::new("n1");
        let mut client = DigestClient::new("bob", "pw", "c1");
        let ServerStep::Challenge(challenge) = server.step(b"", |_| None).unwrap() else {
            panic!("first step must challenge");
        };
        let ClientStep::Respond(response) = client.step(&challenge).unwrap() else {
            panic!("client must respond");
        };
        // Another user name with the same response hash.
        let tampered = String::from_utf8(response.clone())
            .unwrap()
            .replace("username=\"bob\"", "username=\"eve\"");
        let err = server
            .step(tampered.as_bytes(), |_| Some("pw".to_string()))
            .unwrap_err();
        assert_eq!(err, SaslError::BadResponse("eve".into()));
        // A forged rspauth.
        assert_eq!(
            client.step(b"rspauth=00000000000000000000000000000000"),
            Err(SaslError::BadRspAuth)
        );
    }

    #[test]
    fn initial_response_and_replayed_nonce_are_refused() {
        let mut server = DigestServer::new("n1");
        assert_eq!(
            server.step(b"username=\"x\"", |_| None),
            Err(SaslError::InitialResponse)
        );
        let mut server = DigestServer::new("n1");
        server.step(b"", |_| None).unwrap();
        let mut client = DigestClient::new("bob", "pw", "c1");
        // A challenge with another nonce than the server's.
        let ClientStep::Respond(response) = client
            .step(b"realm=\"zk-sasl-md5\",nonce=\"other\",qop=\"auth\",charset=utf-8,algorithm=md5-sess")
            .unwrap()
        else {
            panic!("client must respond");
        };
        assert!(matches!(
            server.step(&response, |_| Some("pw".to_string())),
            Err(SaslError::Unacceptable { name: "nonce", .. })
        ));
    }
}
