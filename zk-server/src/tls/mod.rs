//! TLS for the secure client port and the peer links: rustls configurations built
//! from zoo.cfg's `ssl.*` / `ssl.quorum.*` settings ([`TlsSettings`]), with the ring
//! provider. Stores are JKS, PKCS12 or PEM, read by `zk_proto::keystore`: the key
//! store holds the private key and the certificate chain, the trust store the CA
//! certificates that the other side's certificate must chain to. The enabled
//! protocol versions and cipher suites (Java names, mapped to rustls's) come from the
//! settings too.
//!
//! Everything is read once, at start-up; a store that cannot be read or holds no usable
//! key or certificate stops the server with an error naming the file and the key.
//!
//! Shared by the client port (`net`) and the peer links (`replication`), neither of
//! which imports the other for it:
//! - this module: the rustls server and client configurations, and a peer's
//!   [`ServerName`] from its address;
//! - [`v1_certs`]: X.509 version 1 client certificates, which webpki refuses;
//! - [`x509`]: a certificate's subject in RFC 2253 form (the client's `x509`
//!   identity) as Java writes it; certificates are parsed by x509-parser.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use zk_proto::keystore::{self, KeyStoreError};

use crate::config::{ClientAuth, StoreFile, TlsSettings, TlsVersion};

pub mod v1_certs;
pub mod x509;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A store file could not be read.
    #[error("{key}={path}: cannot read: {source}")]
    Read {
        /// The zoo.cfg key naming the file.
        key: String,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A store file holds nothing usable, or something refused.
    #[error("{key}={path}: {reason}")]
    Store {
        /// The zoo.cfg key naming the file.
        key: String,
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting's value cannot be used (e.g. no cipher suite it names is available).
    #[error("{key}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The settings lack a store this side needs.
    #[error("{key} is not set: {reason}")]
    Missing {
        /// The key.
        key: String,
        /// Why it is needed.
        reason: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("{prefix}.*: {source}")]
    Rustls {
        /// `ssl` or `ssl.quorum`.
        prefix: &'static str,
        /// Why.
        source: rustls::Error,
    },
}

/// The crypto provider of `settings`: ring, with the cipher suites `*.ciphersuites`
/// names (all of ring's when unset).
fn provider(settings: &TlsSettings) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = &settings.cipher_suites {
        let invalid = |reason: String| TlsError::Invalid {
            key: format!("{}.ciphersuites", settings.prefix),
            value: list.clone(),
            reason,
        };
        let mut chosen = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match provider.cipher_suites.iter().find(|s| java_name(s) == name) {
                Some(suite) if !chosen.contains(suite) => chosen.push(*suite),
                Some(_) => {}
                None if name.starts_with("TLS_") || name.starts_with("SSL_") => {
                    tracing::warn!(
                        key = %format!("{}.ciphersuites", settings.prefix),
                        suite = name,
                        "cipher suite not available (rustls implements only AEAD suites \
                         with ECDHE); skipped"
                    );
                }
                None => return Err(invalid(format!("{name:?} is not a cipher suite name"))),
            }
        }
        let versions = &settings.protocols;
        let usable = chosen.iter().any(|s| {
            versions.contains(&match s {
                rustls::SupportedCipherSuite::Tls13(_) => TlsVersion::Tls13,
                rustls::SupportedCipherSuite::Tls12(_) => TlsVersion::Tls12,
            })
        });
        if !usable {
            let available: Vec<String> = provider.cipher_suites.iter().map(java_name).collect();
            return Err(invalid(format!(
                "none of these suites is available for the enabled protocols; available: {}",
                available.join(",")
            )));
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

/// A suite's Java (IANA) name: rustls's, with `TLS13_` written `TLS_` as Java does.
fn java_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// The enabled protocol versions, as rustls takes them.
fn versions(settings: &TlsSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

fn key_of(settings: &TlsSettings, what: &str) -> String {
    format!("{}.{what}.location", settings.prefix)
}

fn read(key: &str, store: &StoreFile) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&store.location).map_err(|source| TlsError::Read {
        key: key.to_string(),
        path: store.location.display().to_string(),
        source,
    })
}

fn store_error(key: &str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Store {
        key: key.to_string(),
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The store's password: from `*.passwordPath` when set, else `*.password`.
fn password(settings: &TlsSettings, what: &str, store: &StoreFile) -> Result<String, TlsError> {
    match &store.password_path {
        None => Ok(store.password.0.clone()),
        Some(path) => std::fs::read(path)
            .map(|bytes| keystore::password_from_file(&bytes))
            .map_err(|source| TlsError::Read {
                key: format!("{}.{what}.passwordPath", settings.prefix),
                path: path.display().to_string(),
                source,
            }),
    }
}

/// What a store error says, with the store's type for context.
fn describe(store: &StoreFile, e: &KeyStoreError) -> String {
    format!("{} store: {e}", store.store_type.name())
}

/// The key store: the certificate chain (leaf first) and the private key.
fn load_key_store(
    settings: &TlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let key = key_of(settings, "keyStore");
    let store = settings
        .key_store
        .as_ref()
        .ok_or_else(|| TlsError::Missing {
            key: key.clone(),
            reason: "the private key and certificate chain (a JKS, PKCS12 or PEM store)".into(),
        })?;
    let bytes = read(&key, store)?;
    let password = password(settings, "keyStore", store)?;
    let material = keystore::load_key_store(&bytes, store.store_type, &password)
        .map_err(|e| store_error(&key, &store.location, describe(store, &e)))?;
    Ok((material.chain, material.key))
}

/// The trust store: the CA certificates, as rustls roots.
fn load_trust_store(settings: &TlsSettings) -> Result<Option<Arc<RootCertStore>>, TlsError> {
    Ok(load_trust_certificates(settings)?.map(|(roots, _)| roots))
}

/// The trust store as rustls roots and as the certificates themselves.
#[allow(clippy::type_complexity)]
fn load_trust_certificates(
    settings: &TlsSettings,
) -> Result<Option<(Arc<RootCertStore>, Vec<CertificateDer<'static>>)>, TlsError> {
    let key = key_of(settings, "trustStore");
    let Some(store) = settings.trust_store.as_ref() else {
        return Ok(None);
    };
    let bytes = read(&key, store)?;
    let path = &store.location;
    let password = password(settings, "trustStore", store)?;
    let certs = keystore::load_trust_store(&bytes, store.store_type, &password)
        .map_err(|e| store_error(&key, path, describe(store, &e)))?;
    let mut roots = RootCertStore::empty();
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| store_error(&key, path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(Some((Arc::new(roots), certs)))
}

/// The key store's chain and key, checked to belong together: by rustls (webpki), or
/// for an X.509 v1 certificate (kazoo's harness makes them), which webpki does not
/// read, by comparing the certificate's public key with the private key's.
fn certified_key(
    settings: &TlsSettings,
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::sign::CertifiedKey, TlsError> {
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(key_error(settings))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(e) => {
            let v1 = certified
                .cert
                .first()
                .and_then(|leaf| v1_certs::v1_public_key(leaf));
            match (v1, certified.key.public_key()) {
                (Some(cert_key), Some(key)) if cert_key == key.as_ref() => Ok(certified),
                _ => Err(key_error(settings)(e)),
            }
        }
    }
}

/// rustls refusing the key store's key or chain, said against the key store.
fn key_error(settings: &TlsSettings) -> impl Fn(rustls::Error) -> TlsError + '_ {
    move |e| TlsError::Store {
        key: key_of(settings, "keyStore"),
        path: settings
            .key_store
            .as_ref()
            .map(|s| s.location.display().to_string())
            .unwrap_or_default(),
        reason: format!(
            "the private key or its certificate cannot be used (RSA, EC P-256/P-384 and \
             Ed25519 keys can, with their own certificate): {e}"
        ),
    }
}

fn rustls_error(settings: &TlsSettings) -> impl Fn(rustls::Error) -> TlsError {
    let prefix = settings.prefix;
    move |source| TlsError::Rustls { prefix, source }
}

/// A server configuration: this side's key and chain, and client certificates verified
/// against the trust store as `client_auth` says.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = load_key_store(settings)?;
    let roots = load_trust_certificates(settings)?;
    let provider = provider(settings)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings))
        .map_err(rustls_error(settings))?;
    let builder = match (settings.client_auth, roots) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some((roots, anchors))) => {
            let algorithms = provider.signature_verification_algorithms;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            let verifier = if auth == ClientAuth::Want {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::Store {
                key: key_of(settings, "trustStore"),
                path: settings
                    .trust_store
                    .as_ref()
                    .map(|s| s.location.display().to_string())
                    .unwrap_or_default(),
                reason: e.to_string(),
            })?;
            // Java (and kazoo's harness) also use X.509 v1 client certificates,
            // which webpki refuses.
            builder.with_client_cert_verifier(Arc::new(v1_certs::V1Tolerant::new(
                verifier, anchors, algorithms,
            )))
        }
        (_, None) => {
            return Err(TlsError::Missing {
                key: key_of(settings, "trustStore"),
                reason: format!(
                    "client certificates are verified against it ({}.clientAuth is need or want)",
                    settings.prefix
                ),
            })
        }
    };
    let certified = certified_key(settings, &provider, chain, key)?;
    let config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}

/// A client configuration for the peer links: this member's key and chain presented
/// to the peer, the peer's chain verified against the trust store, and its name too
/// unless `hostnameVerification` is off.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let (chain, key) = load_key_store(settings)?;
    let roots = load_trust_store(settings)?.ok_or_else(|| TlsError::Missing {
        key: key_of(settings, "trustStore"),
        reason: "peers' certificates are verified against it".into(),
    })?;
    let provider = provider(settings)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Store {
            key: key_of(settings, "trustStore"),
            path: String::new(),
            reason: e.to_string(),
        })?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(settings))
        .map_err(rustls_error(settings))?;
    let builder = if settings.hostname_verification {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
    };
    let config = builder
        .with_client_auth_cert(chain, key)
        .map_err(key_error(settings))?;
    Ok(Arc::new(config))
}

/// Verifies the chain and validity but not the name (`hostnameVerification=false`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The name a member's certificate must carry: the host of its `server.N` line.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, std::io::Error> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{host:?} is not a host name or address: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(dir: &Path, key_pem: &str, trust_pem: Option<&str>) -> TlsSettings {
        std::fs::write(dir.join("key.pem"), key_pem).unwrap();
        if let Some(t) = trust_pem {
            std::fs::write(dir.join("ca.pem"), t).unwrap();
        }
        TlsSettings {
            prefix: "ssl",
            key_store: Some(pem_store(dir.join("key.pem"))),
            trust_store: trust_pem.map(|_| pem_store(dir.join("ca.pem"))),
            client_auth: ClientAuth::Need,
            hostname_verification: true,
            protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            cipher_suites: None,
        }
    }

    fn pem_store(location: std::path::PathBuf) -> StoreFile {
        StoreFile {
            location,
            password: Secret::default(),
            password_path: None,
            store_type: crate::config::StoreType::Pem,
        }
    }

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_pem_key_store_and_trust_store_make_server_and_client_configs() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let s = settings(dir.path(), &format!("{key}{cert}"), Some(&cert));
        assert!(server_config(&s).is_ok());
        assert!(client_config(&s).is_ok());
        let none = TlsSettings {
            client_auth: ClientAuth::None,
            trust_store: None,
            ..s
        };
        assert!(server_config(&none).is_ok());
    }

    #[test]
    fn unusable_stores_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        // No certificate in the key store.
        let e = server_config(&settings(dir.path(), &key, Some(&cert))).unwrap_err();
        assert!(
            e.to_string().starts_with("ssl.keyStore.location=")
                && e.to_string().contains("no certificate"),
            "{e}"
        );
        // No key.
        let e = server_config(&settings(dir.path(), &cert, Some(&cert))).unwrap_err();
        assert!(e.to_string().contains("no private key"), "{e}");
        // A damaged encrypted key.
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = server_config(&settings(
            dir.path(),
            &format!("{encrypted}{cert}"),
            Some(&cert),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("ENCRYPTED PRIVATE KEY"), "{e}");
        // An empty trust store.
        let e =
            server_config(&settings(dir.path(), &format!("{key}{cert}"), Some(""))).unwrap_err();
        assert!(
            e.to_string().starts_with("ssl.trustStore.location=")
                && e.to_string().contains("no certificate in the store"),
            "{e}"
        );
        // A missing file.
        let mut s = settings(dir.path(), &format!("{key}{cert}"), Some(&cert));
        s.key_store = Some(pem_store(dir.path().join("absent.pem")));
        let e = server_config(&s).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    /// A TLS handshake over an in-memory pipe, the client checking `name`.
    async fn handshake(client: &TlsSettings, server: &TlsSettings, name: &str) -> bool {
        let connector = tokio_rustls::TlsConnector::from(client_config(client).unwrap());
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(server).unwrap());
        let (a, b) = tokio::io::duplex(64 * 1024);
        let name = ServerName::try_from(name.to_string()).unwrap();
        let (c, s) = tokio::join!(connector.connect(name, a), acceptor.accept(b));
        c.is_ok() && s.is_ok()
    }

    #[tokio::test]
    async fn without_hostname_verification_the_chain_is_still_verified() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["member.example".into()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let store = format!("{}{}", key.serialize_pem(), cert.pem());
        let checked = settings(dir.path(), &store, Some(&ca.pem()));
        let unchecked = TlsSettings {
            hostname_verification: false,
            ..checked.clone()
        };
        assert!(handshake(&checked, &checked, "member.example").await);
        assert!(!handshake(&checked, &checked, "other.example").await);
        assert!(handshake(&unchecked, &checked, "other.example").await);
        // Another CA's certificate is refused either way.
        let (rogue_cert, rogue_key) = self_signed();
        let rogue_dir = tempfile::tempdir().unwrap();
        let rogue = settings(
            rogue_dir.path(),
            &format!("{rogue_key}{rogue_cert}"),
            Some(&ca.pem()),
        );
        assert!(!handshake(&unchecked, &rogue, "localhost").await);
    }

    /// The keystore fixtures zk-proto's tests read (made by keytool, pyjks, openssl).
    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../zk-proto/src/keystore/testdata")
            .join(name)
    }

    fn store(name: &str, ty: crate::config::StoreType, password: &str) -> StoreFile {
        StoreFile {
            location: fixture(name),
            password: Secret(password.into()),
            password_path: None,
            store_type: ty,
        }
    }

    fn stores(key: StoreFile, trust: StoreFile) -> TlsSettings {
        TlsSettings {
            prefix: "ssl",
            key_store: Some(key),
            trust_store: Some(trust),
            client_auth: ClientAuth::Need,
            hostname_verification: true,
            protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            cipher_suites: None,
        }
    }

    #[tokio::test]
    async fn jks_pkcs12_and_encrypted_pem_stores_shake_hands() {
        use crate::config::StoreType::*;
        let pyjks = stores(
            store("pyjks-keystore.jks", Jks, "apassword"),
            store("pyjks-truststore.jks", Jks, "apassword"),
        );
        let p12 = stores(
            store("openssl.p12", Pkcs12, "apassword"),
            store("keytool-trust.p12", Pkcs12, "apassword"),
        );
        let pem = stores(
            store("server-encrypted.pem", Pem, "apassword"),
            store("keytool-trust.jks", Jks, "apassword"),
        );
        assert!(handshake(&pyjks, &p12, "localhost").await);
        assert!(handshake(&p12, &pem, "127.0.0.1").await);
        assert!(handshake(&pem, &pyjks, "localhost").await);
        // keytool's own self-signed RSA key, in JKS and PKCS#12, trusted as itself.
        let trust_self = std::fs::read(fixture("keytool-rsa-cert.pem")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("self.pem"), trust_self).unwrap();
        let self_trust = StoreFile {
            location: dir.path().join("self.pem"),
            ..store("x", Pem, "")
        };
        let keytool_jks = stores(
            store("keytool-rsa.jks", Jks, "apassword"),
            self_trust.clone(),
        );
        let keytool_p12 = stores(store("keytool-rsa.p12", Pkcs12, "apassword"), self_trust);
        assert!(handshake(&keytool_jks, &keytool_p12, "localhost").await);
        assert!(
            !handshake(&pyjks, &keytool_jks, "localhost").await,
            "not trusted"
        );
        // keytool's EC keys lack the public key in their PKCS#8, which ring needs: the
        // loader adds it, and the key store (JKS, and PKCS#12 in a .jks) is usable.
        let keytool_ec = stores(
            store("keytool-pkcs12-named.jks", Jks, "apassword"),
            store("keytool-trust.jks", Jks, "apassword"),
        );
        let ec_cert = keystore::load_key_store(
            &std::fs::read(fixture("keytool.jks")).unwrap(),
            Jks,
            "apassword",
        )
        .unwrap()
        .chain;
        let ec_trust = dir.path().join("ec.pem");
        std::fs::write(
            &ec_trust,
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ec_cert[0])
            ),
        )
        .unwrap();
        let trusts_ec = TlsSettings {
            trust_store: Some(StoreFile {
                location: ec_trust,
                ..store("x", Pem, "")
            }),
            ..pyjks.clone()
        };
        assert!(handshake(&trusts_ec, &keytool_ec, "localhost").await);
    }

    /// X.509 v1 client certificates (kazoo's harness makes them) are verified as
    /// Java verifies them: signed by a trusted CA; one no trusted CA signed is refused.
    #[tokio::test]
    async fn v1_client_certificates_signed_by_a_trusted_ca_are_accepted() {
        use crate::config::StoreType::*;
        let server = stores(
            store("pyjks-keystore.jks", Jks, "apassword"),
            store("ca.pem", Pem, ""),
        );
        for protocol in [TlsVersion::Tls12, TlsVersion::Tls13] {
            let server = TlsSettings {
                protocols: vec![protocol],
                ..server.clone()
            };
            assert!(v1_handshake("client-v1.pem", &server).await, "{protocol:?}");
            assert!(!v1_handshake("rogue-v1.pem", &server).await, "{protocol:?}");
        }
        // Under clientAuth=want too; a v3 client certificate as before.
        let want = TlsSettings {
            client_auth: ClientAuth::Want,
            ..server.clone()
        };
        assert!(v1_handshake("client-v1.pem", &want).await);
        assert!(!v1_handshake("rogue-v1.pem", &want).await);
        let v3 = stores(store("server.pem", Pem, ""), store("ca.pem", Pem, ""));
        assert!(handshake(&v3, &server, "localhost").await);
    }

    /// Presents a key store's certificate whatever its version (rustls's own
    /// `with_client_auth_cert` refuses a v1 one, as webpki parses it).
    #[derive(Debug)]
    struct Present(Arc<rustls::sign::CertifiedKey>);

    impl rustls::client::ResolvesClientCert for Present {
        fn resolve(
            &self,
            _: &[&[u8]],
            _: &[SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }

        fn has_certs(&self) -> bool {
            true
        }
    }

    /// A handshake of a client presenting the key store `name` (PEM fixture) and
    /// trusting the fixture CA, to `server`.
    async fn v1_handshake(name: &str, server: &TlsSettings) -> bool {
        let key_store = stores(
            store(name, crate::config::StoreType::Pem, ""),
            store("ca.pem", crate::config::StoreType::Pem, ""),
        );
        let (chain, key) = load_key_store(&key_store).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let signer = provider.key_provider.load_private_key(key).unwrap();
        let roots = load_trust_store(&key_store).unwrap().unwrap();
        let config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(Present(Arc::new(
                rustls::sign::CertifiedKey::new(chain, signer),
            ))));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(server).unwrap());
        let (a, b) = tokio::io::duplex(64 * 1024);
        let name = ServerName::try_from("localhost").unwrap();
        let (c, s) = tokio::join!(connector.connect(name, a), acceptor.accept(b));
        // TLS 1.3: the client finishes before the server has checked its certificate;
        // the server's side says.
        c.is_ok() && s.is_ok()
    }

    #[test]
    fn store_errors_name_the_file_and_the_key() {
        use crate::config::StoreType::*;
        let mut s = stores(
            store("pyjks-keystore.jks", Jks, "wrong"),
            store("pyjks-truststore.jks", Jks, "apassword"),
        );
        let e = server_config(&s).unwrap_err().to_string();
        assert!(
            e.starts_with("ssl.keyStore.location=")
                && e.contains("pyjks-keystore.jks")
                && e.contains("password is wrong"),
            "{e}"
        );
        // passwordPath: the file's password (one newline dropped) wins.
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "apassword\n").unwrap();
        s.key_store.as_mut().unwrap().password_path = Some(pw.clone());
        assert!(server_config(&s).is_ok());
        s.key_store.as_mut().unwrap().password_path = Some(dir.path().join("absent"));
        let e = server_config(&s).unwrap_err().to_string();
        assert!(
            e.starts_with("ssl.keyStore.passwordPath=") && e.contains("absent"),
            "{e}"
        );
        // A trust store given as the key store, and the reverse.
        let swapped = stores(
            store("pyjks-truststore.jks", Jks, "apassword"),
            store("pyjks-keystore.jks", Jks, "apassword"),
        );
        let e = server_config(&swapped).unwrap_err().to_string();
        assert!(
            e.starts_with("ssl.keyStore.location=") && e.contains("no private key"),
            "{e}"
        );
        let e = client_config(&stores(
            store("pyjks-keystore.jks", Jks, "apassword"),
            store("pyjks-keystore.jks", Jks, "apassword"),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("ssl.trustStore.location=") && e.contains("no certificate"),
            "{e}"
        );
        // A key with another key's certificate, v3 and v1.
        let read = |name: &str| std::fs::read_to_string(fixture(name)).unwrap();
        let v1_cert = read("client-v1.pem");
        let v1_cert = &v1_cert[v1_cert.find("-----BEGIN CERTIFICATE").unwrap()..];
        for (what, cert) in [
            ("v3", read("keytool-rsa-cert.pem")),
            ("v1", v1_cert.to_string()),
        ] {
            let mixed = dir.path().join(format!("mixed-{what}.pem"));
            std::fs::write(&mixed, format!("{}{cert}", read("server-key.pem"))).unwrap();
            let mut m = stores(store("x", Pem, ""), store("ca.pem", Pem, ""));
            m.key_store.as_mut().unwrap().location = mixed;
            let e = server_config(&m).unwrap_err().to_string();
            assert!(
                e.starts_with("ssl.keyStore.location=") && e.contains("cannot be used"),
                "{what}: {e}"
            );
        }
        // A truncated copy.
        let cut = dir.path().join("cut.jks");
        let bytes = std::fs::read(fixture("pyjks-keystore.jks")).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let mut t = stores(
            store("pyjks-keystore.jks", Jks, "apassword"),
            store("pyjks-truststore.jks", Jks, "apassword"),
        );
        t.key_store.as_mut().unwrap().location = cut;
        let e = server_config(&t).unwrap_err().to_string();
        assert!(e.contains("cut.jks") && e.contains("truncated"), "{e}");
    }

    #[tokio::test]
    async fn protocols_and_cipher_suites_are_honoured() {
        use crate::config::StoreType::*;
        let base = stores(
            store("pyjks-keystore.jks", Jks, "apassword"),
            store("pyjks-truststore.jks", Jks, "apassword"),
        );
        let tls12 = TlsSettings {
            protocols: vec![TlsVersion::Tls12],
            ..base.clone()
        };
        let tls13 = TlsSettings {
            protocols: vec![TlsVersion::Tls13],
            ..base.clone()
        };
        assert!(handshake(&tls12, &base, "localhost").await);
        assert!(handshake(&tls13, &base, "localhost").await);
        assert!(!handshake(&tls12, &tls13, "localhost").await);
        // Java names, CBC ones skipped; the chosen suite is the one used.
        let gcm = TlsSettings {
            cipher_suites: Some(
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
                    .into(),
            ),
            protocols: vec![TlsVersion::Tls12],
            ..base.clone()
        };
        let chacha = TlsSettings {
            cipher_suites: Some("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into()),
            ..tls12.clone()
        };
        assert!(handshake(&gcm, &base, "localhost").await);
        assert!(!handshake(&gcm, &chacha, "localhost").await);
        let aes13 = TlsSettings {
            cipher_suites: Some("TLS_AES_256_GCM_SHA384".into()),
            ..tls13.clone()
        };
        assert!(handshake(&aes13, &base, "localhost").await);
        for (list, protocols, says) in [
            (
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                vec![TlsVersion::Tls12],
                "none of these",
            ),
            (
                "TLS_AES_128_GCM_SHA256",
                vec![TlsVersion::Tls12],
                "none of these",
            ),
            (
                "AES-GCM",
                vec![TlsVersion::Tls12],
                "not a cipher suite name",
            ),
        ] {
            let s = TlsSettings {
                cipher_suites: Some(list.into()),
                protocols,
                ..base.clone()
            };
            let e = server_config(&s).unwrap_err().to_string();
            assert!(
                e.starts_with("ssl.ciphersuites: invalid value") && e.contains(says),
                "{e}"
            );
        }
    }

    #[test]
    fn server_names_come_from_the_peer_address() {
        assert!(matches!(
            server_name("127.0.0.1:2888").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("zk1.example:2888").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("[::1]:2888").unwrap(),
            ServerName::IpAddress(_)
        ));
    }
}
