//! PEM stores, as ZooKeeper's `PEM` store type reads them: a key store holds a private
//! key (PKCS#8, plain or encrypted with the store password, or PKCS#1/SEC1) and its
//! certificate chain, leaf first; a trust store holds CA certificates.

use pkcs8::EncryptedPrivateKeyInfoRef;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{KeyStoreError, Store};

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// Reads a PEM store; `password` decrypts an `ENCRYPTED PRIVATE KEY`.
pub(super) fn read(bytes: &[u8], password: &str) -> Result<Store, KeyStoreError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeyStoreError::Malformed(format!("bad PEM: {e}")))?;
    let key = match encrypted_key(bytes)? {
        Some(der) => Some(decrypt(&der, password)?),
        None => match PrivateKeyDer::from_pem_slice(bytes) {
            Ok(key) => Some(key),
            Err(rustls_pki_types::pem::Error::NoItemsFound) => None,
            Err(e) => return Err(KeyStoreError::Malformed(format!("bad PEM: {e}"))),
        },
    };
    let mut store = Store::default();
    match key {
        Some(key) => store.keys.push((key, certs.clone())),
        None => store.trusted = certs.clone(),
    }
    // In a file with a key, the certificates are its chain; a trust store is the
    // file's certificates either way (Apache's PEM trust store reads every one).
    if store.trusted.is_empty() {
        store.trusted = certs;
    }
    Ok(store)
}

/// The DER of the first `ENCRYPTED PRIVATE KEY` block, if there is one.
fn encrypted_key(bytes: &[u8]) -> Result<Option<Vec<u8>>, KeyStoreError> {
    let text = String::from_utf8_lossy(bytes);
    let Some(start) = text.find(ENCRYPTED_BEGIN) else {
        return Ok(None);
    };
    let end = text[start..]
        .find(ENCRYPTED_END)
        .map(|e| start + e + ENCRYPTED_END.len())
        .ok_or(KeyStoreError::Truncated)?;
    let (_label, der) = pkcs8::der::pem::decode_vec(text[start..end].as_bytes())
        .map_err(|e| KeyStoreError::Malformed(format!("bad ENCRYPTED PRIVATE KEY PEM: {e}")))?;
    Ok(Some(der))
}

fn decrypt(der: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, KeyStoreError> {
    let info = EncryptedPrivateKeyInfoRef::try_from(der).map_err(|e| {
        KeyStoreError::Malformed(format!(
            "the ENCRYPTED PRIVATE KEY cannot be read (damaged, or encrypted other than \
             with PBES2/AES or PBES1 3DES): {e}"
        ))
    })?;
    let plain = info
        .decrypt(password)
        .map_err(|_| KeyStoreError::KeyPasswordWrong)?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}
