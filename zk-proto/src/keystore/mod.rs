//! Key and trust stores as Apache ZooKeeper 3.8 reads them for TLS (cargo feature
//! `keystore`): JKS, PKCS#12 and PEM, sans-IO — the caller reads the file and names
//! it and its zoo.cfg key in messages; this module takes bytes and a password and
//! gives DER certificates and a private key, as rustls takes them.
//!
//! - The store type comes from the `*.type` setting ([`StoreType::from_property`],
//!   case-insensitive, as Java's `KeyStoreFileType.valueOf(value.toUpperCase())`) or
//!   else from the file name ([`StoreType::from_file_name`]: `.jks`, `.pem`, `.p12`,
//!   `.bcfks`, case-sensitive, as `KeyStoreFileType.fromFilename`).
//! - JKS and PKCS#12 are told apart by content, whatever the type says, as Java's
//!   default `keystore.type.compat=true` loads either through either type (JDK 9+
//!   `keytool` writes PKCS#12 even to a `.jks` name). JCEKS and BCFKS stores are
//!   refused.
//! - The password is the store's integrity password and its keys' password, as
//!   ZooKeeper uses one for both. [`password_from_file`] reads a `*.passwordPath` file
//!   as ZooKeeper's `SecretUtils.readSecret` does.
//! - EC private keys written by Java (P-256, P-384) get the public key ring needs,
//!   computed from the private one.
//! - A PEM key store's private key may be encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`,
//!   PBES2 with AES, or the PKCS#5/#12 3DES schemes).
//!
//! ```
//! use zk_proto::keystore::StoreType;
//! assert_eq!(StoreType::from_file_name("/etc/zk/keystore.jks"), Some(StoreType::Jks));
//! assert_eq!(StoreType::from_property("pkcs12"), Ok(StoreType::Pkcs12));
//! ```

mod ec;
mod jks;
mod pem;
mod pkcs12;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A store type, as ZooKeeper's `KeyStoreFileType` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Java's JKS (`.jks`).
    Jks,
    /// PEM text (`.pem`).
    Pem,
    /// PKCS#12 (`.p12`).
    Pkcs12,
    /// Bouncy Castle's FIPS store (`.bcfks`): named so that it is refused clearly.
    Bcfks,
}

impl StoreType {
    /// The type a `*.type` value names (`JKS`, `PEM`, `PKCS12`, `BCFKS`, any case).
    /// Callers treat an empty value as unset (the type is then inferred), as
    /// ZooKeeper does.
    pub fn from_property(value: &str) -> Result<StoreType, KeyStoreError> {
        match value.to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "BCFKS" => Ok(StoreType::Bcfks),
            _ => Err(KeyStoreError::UnknownType(value.to_string())),
        }
    }

    /// The type ZooKeeper infers from a file name: the text from its last `.` must be
    /// exactly `.jks`, `.pem`, `.p12` or `.bcfks` (so `.JKS` and `.pfx` are not
    /// inferred, as in ZooKeeper 3.8).
    pub fn from_file_name(name: &str) -> Option<StoreType> {
        let ext = &name[name.rfind('.')?..];
        match ext {
            ".jks" => Some(StoreType::Jks),
            ".pem" => Some(StoreType::Pem),
            ".p12" => Some(StoreType::Pkcs12),
            ".bcfks" => Some(StoreType::Bcfks),
            _ => None,
        }
    }

    /// The name ZooKeeper's `*.type` setting uses.
    pub fn name(self) -> &'static str {
        match self {
            StoreType::Jks => "JKS",
            StoreType::Pem => "PEM",
            StoreType::Pkcs12 => "PKCS12",
            StoreType::Bcfks => "BCFKS",
        }
    }
}

/// Why a store could not be used. The messages name neither the file nor the key:
/// the caller prefixes both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// A `*.type` value that is not a store type.
    #[error("unknown store type {0:?} (expected JKS, PKCS12 or PEM)")]
    UnknownType(String),
    /// A store type that is recognised but not read.
    #[error("{0}")]
    Unsupported(String),
    /// The store ends before its structure does.
    #[error("the store is truncated (it ends before its last entry or its integrity check)")]
    Truncated,
    /// The store's structure is wrong.
    #[error("not a valid store: {0}")]
    Malformed(String),
    /// The integrity digest or MAC does not match: the password is wrong or the store
    /// was altered.
    #[error(
        "the store's integrity check failed: the password is wrong, or the file is \
         corrupt (as Java says: \"Keystore was tampered with, or password was incorrect\")"
    )]
    IntegrityCheckFailed,
    /// A private key could not be decrypted with the password.
    #[error("the private key cannot be recovered: the password is wrong")]
    KeyPasswordWrong,
    /// A key store without a private key.
    #[error("no private key in the store (a key store holds this side's private key and certificate chain)")]
    NoPrivateKey,
    /// A key store whose private key has no certificate.
    #[error("the private key has no certificate in the store")]
    NoCertificateForKey,
    /// A trust store without certificates.
    #[error("no certificate in the store (a trust store holds the CA certificates to trust)")]
    NoCertificates,
}

/// What a store holds, in file order: private keys with their chains (leaf first),
/// and trusted certificates.
#[derive(Debug, Default)]
pub(crate) struct Store {
    keys: Vec<(PrivateKeyDer<'static>, Vec<CertificateDer<'static>>)>,
    trusted: Vec<CertificateDer<'static>>,
}

/// A key store's content: the private key and its certificate chain, leaf first.
#[derive(Debug)]
pub struct KeyMaterial {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

/// The format a file's content is in, whatever its type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jks,
    Pkcs12,
    Pem,
}

fn format_of(bytes: &[u8], declared: StoreType) -> Result<Format, KeyStoreError> {
    match declared {
        StoreType::Bcfks => Err(KeyStoreError::Unsupported(
            "BCFKS stores (Bouncy Castle FIPS) are not read: convert the store to PKCS12 \
             (keytool -importkeystore -deststoretype PKCS12) or PEM"
                .into(),
        )),
        StoreType::Pem => Ok(Format::Pem),
        StoreType::Jks | StoreType::Pkcs12 => match bytes.get(..4) {
            Some(m) if m == jks::MAGIC => Ok(Format::Jks),
            Some(m) if m == jks::JCEKS_MAGIC => Err(KeyStoreError::Unsupported(
                "this is a JCEKS store, which ZooKeeper's JKS and PKCS12 types do not read: \
                 convert it with keytool -importkeystore -deststoretype PKCS12"
                    .into(),
            )),
            Some([0x30, ..]) => Ok(Format::Pkcs12),
            Some(_) if bytes.starts_with(b"-----BEGIN") => Err(KeyStoreError::Malformed(format!(
                "the file is PEM text, not a {} store: set the type to PEM",
                declared.name()
            ))),
            Some(_) => Err(KeyStoreError::Malformed(format!(
                "neither a JKS store (magic FEEDFEED) nor a PKCS#12 one (DER), as type {} \
                 needs",
                declared.name()
            ))),
            None if bytes.is_empty() => Err(KeyStoreError::Malformed("the file is empty".into())),
            None => Err(KeyStoreError::Truncated),
        },
    }
}

fn read_store(bytes: &[u8], declared: StoreType, password: &str) -> Result<Store, KeyStoreError> {
    match format_of(bytes, declared)? {
        Format::Jks => jks::read(bytes, password),
        Format::Pkcs12 => pkcs12::read(bytes, password),
        Format::Pem => pem::read(bytes, password),
    }
}

/// The private key and certificate chain of a key store: its first private key entry
/// in file order (a ZooKeeper key store holds one).
pub fn load_key_store(
    bytes: &[u8],
    store_type: StoreType,
    password: &str,
) -> Result<KeyMaterial, KeyStoreError> {
    let store = read_store(bytes, store_type, password)?;
    let (key, chain) = store
        .keys
        .into_iter()
        .next()
        .ok_or(KeyStoreError::NoPrivateKey)?;
    if chain.is_empty() {
        return Err(KeyStoreError::NoCertificateForKey);
    }
    // Java's EC keys lack their public key, which ring needs: add it.
    let key = match &key {
        PrivateKeyDer::Pkcs8(k) => ec::with_public_key(k.secret_pkcs8_der())
            .map(|der| PrivateKeyDer::Pkcs8(der.into()))
            .unwrap_or(key),
        _ => key,
    };
    Ok(KeyMaterial { chain, key })
}

/// The certificates a trust store trusts: its trusted-certificate entries (and, for
/// PEM, every certificate in the file). A private key entry's chain is not trusted,
/// as in Java's trust manager.
pub fn load_trust_store(
    bytes: &[u8],
    store_type: StoreType,
    password: &str,
) -> Result<Vec<CertificateDer<'static>>, KeyStoreError> {
    let store = read_store(bytes, store_type, password)?;
    if store.trusted.is_empty() {
        return Err(KeyStoreError::NoCertificates);
    }
    Ok(store.trusted)
}

/// A password from a `*.passwordPath` file, as ZooKeeper's `SecretUtils.readSecret`
/// reads it: the whole file as UTF-8 (invalid bytes replaced, as Java decodes), with
/// one trailing line separator (`\n` on Unix) removed and nothing else trimmed.
pub fn password_from_file(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests;
