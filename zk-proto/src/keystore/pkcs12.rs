//! PKCS#12 stores through the `p12-keystore` crate: the MAC checked with the password,
//! the bags decrypted (PBES2 with AES as JDK 17's keytool and OpenSSL 3 write them, or
//! the legacy PBES1 3DES/RC2 of older keytools), keys matched to their certificates by
//! `localKeyId` and their chains completed from the other certificates by issuer.

use p12_keystore::error::Error as P12Error;
use p12_keystore::{CertificateBag, Pkcs12Archive};
use pkcs8::der::ErrorKind;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{KeyStoreError, Store};

/// Reads a PKCS#12 store with `password` (its MAC password and its bags' password).
pub(super) fn read(bytes: &[u8], password: &str) -> Result<Store, KeyStoreError> {
    let archive = Pkcs12Archive::from_pkcs12(bytes, password).map_err(error)?;
    let mut store = Store::default();
    for key in &archive.keys {
        let leaf = archive.certs.iter().find(|c| {
            key.local_key_id.is_some()
                && c.local_key_id.as_deref() == key.local_key_id.as_ref().map(|k| k.0.as_slice())
        });
        let chain = leaf
            .map(|leaf| chain(leaf, &archive.certs))
            .unwrap_or_default();
        store.keys.push((
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key.as_der().to_vec())),
            chain,
        ));
    }
    // Trusted certificates: those Java marks trusted (keytool's trust stores), or,
    // in a store with no key, every certificate (an OpenSSL-written bundle of CAs).
    let trusted: Vec<&CertificateBag> = archive.certs.iter().filter(|c| c.trusted).collect();
    let trusted = if trusted.is_empty() && archive.keys.is_empty() {
        archive.certs.iter().collect()
    } else {
        trusted
    };
    store.trusted = trusted
        .into_iter()
        .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
        .collect();
    Ok(store)
}

/// The leaf, then each issuer found among `certs`, bounded by their number.
fn chain(leaf: &CertificateBag, certs: &[CertificateBag]) -> Vec<CertificateDer<'static>> {
    let mut chain = vec![leaf];
    let mut current = leaf;
    for _ in 0..certs.len() {
        if current.cert.issuer() == current.cert.subject() {
            break;
        }
        let Some(issuer) = certs
            .iter()
            .find(|c| c.cert.subject() == current.cert.issuer() && !chain.contains(c))
        else {
            break;
        };
        chain.push(issuer);
        current = issuer;
    }
    chain
        .into_iter()
        .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
        .collect()
}

fn error(e: P12Error) -> KeyStoreError {
    match e {
        P12Error::MacError(_) => KeyStoreError::IntegrityCheckFailed,
        P12Error::DerError(e) if matches!(e.kind(), ErrorKind::Incomplete { .. }) => {
            KeyStoreError::Truncated
        }
        P12Error::UnpadError | P12Error::InvalidPrivateKey => KeyStoreError::KeyPasswordWrong,
        P12Error::UnsupportedEncryptionScheme | P12Error::UnsupportedMacAlgorithm => {
            KeyStoreError::Unsupported(format!(
                "this PKCS#12 store uses an algorithm that is not read: {e}"
            ))
        }
        other => KeyStoreError::Malformed(format!("PKCS#12: {other}")),
    }
}
