//! The hashes of RFC 2831 §2.1.2.1 for `qop=auth` (`algorithm=md5-sess`): the client's
//! `response=` and the server's `rspauth=`, which differ only in A2's prefix.

use md5::{Digest, Md5};

use super::latin1_or_utf8;

/// What both sides hash: who, where, and the exchange's nonces.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The user name (authentication id).
    pub username: &'a str,
    /// The realm as the client sent it ("" when it sent none).
    pub realm: &'a str,
    /// The password.
    pub password: &'a str,
    /// The server's nonce.
    pub nonce: &'a str,
    /// The client's nonce.
    pub cnonce: &'a str,
    /// `nc=` as sent (8 hex digits).
    pub nc: &'a str,
    /// `qop=` (`auth`).
    pub qop: &'a str,
    /// `digest-uri=` (`zookeeper/zk-sasl-md5`).
    pub digest_uri: &'a str,
    /// `authzid=`, when sent.
    pub authzid: Option<&'a str>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DigestInput<'_> {
    /// HEX(H(A1)) with A1 = H(user:realm:password):nonce:cnonce[:authzid].
    fn ha1(&self) -> String {
        let mut inner = Md5::new();
        inner.update(latin1_or_utf8(self.username));
        inner.update(b":");
        inner.update(latin1_or_utf8(self.realm));
        inner.update(b":");
        inner.update(latin1_or_utf8(self.password));
        let mut a1 = Md5::new();
        a1.update(inner.finalize());
        a1.update(b":");
        a1.update(self.nonce.as_bytes());
        a1.update(b":");
        a1.update(self.cnonce.as_bytes());
        if let Some(authzid) = self.authzid {
            a1.update(b":");
            a1.update(authzid.as_bytes());
        }
        hex(&a1.finalize())
    }

    /// KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))) with A2 = `prefix` digest-uri.
    fn kd(&self, a2_prefix: &str) -> String {
        let ha2 = hex(&Md5::digest(
            format!("{a2_prefix}{}", self.digest_uri).as_bytes(),
        ));
        let kd = format!(
            "{}:{}:{}:{}:{}:{ha2}",
            self.ha1(),
            self.nonce,
            self.nc,
            self.cnonce,
            self.qop
        );
        hex(&Md5::digest(kd.as_bytes()))
    }

    /// The client's `response=` value (A2 = "AUTHENTICATE:" digest-uri).
    pub fn response(&self) -> String {
        self.kd("AUTHENTICATE:")
    }

    /// The server's `rspauth=` value (A2 = ":" digest-uri).
    pub fn rspauth(&self) -> String {
        self.kd(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 §4's example (IMAP): its response and rspauth values.
    #[test]
    fn rfc2831_example_values() {
        let input = DigestInput {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            digest_uri: "imap/elwood.innosoft.com",
            authzid: None,
        };
        assert_eq!(input.response(), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(input.rspauth(), "ea40f60335c427b5527b84dbabcdfffd");
    }
}
