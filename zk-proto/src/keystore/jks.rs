//! A reader of Java's JKS key store format (`keytool -storetype JKS`, pyjks), enough to
//! take out what ZooKeeper's TLS uses: private keys with their certificate chains, and
//! trusted certificates.
//!
//! The format: the magic `0xFEEDFEED`, a version (1 or 2), an entry count, the
//! entries, then a SHA-1 digest over the password (UTF-16BE), the words
//! "Mighty Aphrodite" and every byte before it — the store's integrity check. A
//! private-key entry holds an `EncryptedPrivateKeyInfo` whose algorithm is Sun's
//! `KeyProtector` (OID 1.3.6.1.4.1.42.2.17.1.1): a 20-byte salt, the PKCS#8 key XORed
//! with a SHA-1 key stream of the password and salt, and a SHA-1 check over the
//! password and the plain key.

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest, Sha1};

use super::{KeyStoreError, Store};

/// The first four bytes of a JKS store.
pub(super) const MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
/// The first four bytes of a JCEKS store (not read here).
pub(super) const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];

const TAG_PRIVATE_KEY: u32 = 1;
const TAG_TRUSTED_CERT: u32 = 2;
/// DER of the OID 1.3.6.1.4.1.42.2.17.1.1 (Sun's JKS `KeyProtector`).
const KEY_PROTECTOR_OID: [u8; 10] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x11, 0x01, 0x01];
const DIGEST_LEN: usize = 20;
/// More entries than any real store holds: a bound on what a corrupt count can cost.
const MAX_ENTRIES: u32 = 100_000;

/// A bounds-checked reader over the store's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KeyStoreError> {
        let end = self.pos.checked_add(n).ok_or(KeyStoreError::Truncated)?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(KeyStoreError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, KeyStoreError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, KeyStoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Java's `writeUTF`: a u16 length and modified UTF-8 (kept as bytes: aliases and
    /// certificate types are only compared with ASCII here).
    fn utf(&mut self) -> Result<&'a [u8], KeyStoreError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    /// A u32 length and that many bytes.
    fn blob(&mut self) -> Result<&'a [u8], KeyStoreError> {
        let n = self.u32()?;
        let n = usize::try_from(n).map_err(|_| KeyStoreError::Truncated)?;
        self.take(n)
    }
}

/// The password as Java's JKS code hashes it: each UTF-16 unit, big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Reads a JKS store, checking its integrity digest with `password` (also the
/// password of its private keys, as ZooKeeper uses one password for both).
pub(super) fn read(bytes: &[u8], password: &str) -> Result<Store, KeyStoreError> {
    let body_len = bytes
        .len()
        .checked_sub(DIGEST_LEN)
        .ok_or(KeyStoreError::Truncated)?;
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(4)? != MAGIC {
        return Err(KeyStoreError::Malformed(
            "not a JKS store (bad magic)".into(),
        ));
    }
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(KeyStoreError::Malformed(format!(
            "JKS version {version} (expected 1 or 2)"
        )));
    }
    let count = r.u32()?;
    if count > MAX_ENTRIES {
        return Err(KeyStoreError::Malformed(format!("{count} entries")));
    }
    let pw = password_bytes(password);
    let mut protected_keys = Vec::new();
    let mut trusted = Vec::new();
    for _ in 0..count {
        match r.u32()? {
            TAG_PRIVATE_KEY => {
                let _alias = r.utf()?;
                let _timestamp = r.take(8)?;
                let protected = r.blob()?;
                let chain_len = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..chain_len.min(MAX_ENTRIES) {
                    chain.push(certificate(&mut r, version)?);
                }
                protected_keys.push((protected, chain));
            }
            TAG_TRUSTED_CERT => {
                let _alias = r.utf()?;
                let _timestamp = r.take(8)?;
                trusted.push(certificate(&mut r, version)?);
            }
            other => {
                return Err(KeyStoreError::Malformed(format!(
                    "entry tag {other} (a JKS store holds tags 1 and 2; tag 3, a secret \
                     key, is JCEKS)"
                )))
            }
        }
    }
    if r.pos > body_len {
        return Err(KeyStoreError::Truncated);
    }
    if r.pos < body_len {
        return Err(KeyStoreError::Malformed(format!(
            "{} bytes after the last entry",
            body_len - r.pos
        )));
    }
    // The integrity check comes before any key is decrypted, as in Java: a wrong
    // password and a changed byte both fail it.
    let mut digest = Sha1::new();
    digest.update(&pw);
    digest.update(b"Mighty Aphrodite");
    digest.update(&bytes[..body_len]);
    if digest.finalize().as_slice() != &bytes[body_len..] {
        return Err(KeyStoreError::IntegrityCheckFailed);
    }
    let mut keys = Vec::new();
    for (protected, chain) in protected_keys {
        keys.push((PrivateKeyDer::Pkcs8(recover_key(protected, &pw)?), chain));
    }
    Ok(Store { keys, trusted })
}

fn certificate(r: &mut Reader<'_>, version: u32) -> Result<CertificateDer<'static>, KeyStoreError> {
    if version == 2 {
        let kind = r.utf()?;
        if kind != b"X.509" {
            return Err(KeyStoreError::Malformed(format!(
                "a {:?} certificate (only X.509 is used by TLS)",
                String::from_utf8_lossy(kind)
            )));
        }
    }
    Ok(CertificateDer::from(r.blob()?.to_vec()))
}

/// Undoes Sun's `KeyProtector` on an `EncryptedPrivateKeyInfo`.
fn recover_key(
    encrypted_info: &[u8],
    password: &[u8],
) -> Result<PrivatePkcs8KeyDer<'static>, KeyStoreError> {
    let bad = |what: &str| KeyStoreError::Malformed(format!("private key entry: {what}"));
    let (outer, _) = der_tlv(encrypted_info, 0x30).ok_or_else(|| bad("not DER"))?;
    let (alg, rest) = der_tlv(outer, 0x30).ok_or_else(|| bad("no algorithm"))?;
    let (oid, _) = der_tlv(alg, 0x06).ok_or_else(|| bad("no algorithm OID"))?;
    if oid != KEY_PROTECTOR_OID {
        return Err(bad("not protected by Sun's JKS KeyProtector"));
    }
    let (data, _) = der_tlv(rest, 0x04).ok_or_else(|| bad("no encrypted key"))?;
    if data.len() < 2 * DIGEST_LEN {
        return Err(bad("encrypted key too short"));
    }
    let (salt, tail) = data.split_at(DIGEST_LEN);
    let (encrypted, check) = tail.split_at(tail.len() - DIGEST_LEN);
    let mut plain = Vec::with_capacity(encrypted.len());
    let mut block = salt.to_vec();
    for chunk in encrypted.chunks(DIGEST_LEN) {
        let mut h = Sha1::new();
        h.update(password);
        h.update(&block);
        block = h.finalize().to_vec();
        plain.extend(chunk.iter().zip(&block).map(|(c, k)| c ^ k));
    }
    let mut h = Sha1::new();
    h.update(password);
    h.update(&plain);
    if h.finalize().as_slice() != check {
        return Err(KeyStoreError::KeyPasswordWrong);
    }
    if der_tlv(&plain, 0x30).is_none() {
        return Err(bad("the decrypted key is not PKCS#8"));
    }
    Ok(PrivatePkcs8KeyDer::from(plain))
}

/// One DER element with tag `tag` at the start of `input`: its contents and what
/// follows it.
pub(super) fn der_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(
            der_tlv(&[0x04, 0x01, 0xAA, 0xBB], 0x04),
            Some((&[0xAA][..], &[0xBB][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(der_tlv(&long, 0x04).map(|(c, _)| c.len()), Some(0x80));
        assert_eq!(der_tlv(&[0x04, 0x05, 0x00], 0x04), None);
        assert_eq!(der_tlv(&[0x30, 0x00], 0x04), None);
        assert_eq!(der_tlv(&[0x04, 0x80], 0x04), None);
    }

    #[test]
    fn passwords_hash_as_utf16_big_endian() {
        assert_eq!(password_bytes("ab"), vec![0, b'a', 0, b'b']);
        assert_eq!(password_bytes("é"), vec![0x00, 0xE9]);
    }
}
