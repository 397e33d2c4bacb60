//! TLS for the secure client port and the peer links: rustls configurations built
//! from zoo.cfg's `ssl.*` / `ssl.quorum.*` settings ([`TlsSettings`]), with the ring
//! provider. Stores are PEM files (Apache ZooKeeper's `PEM` store type): the key store
//! holds the private key and the certificate chain, the trust store the CA
//! certificates that the other side's certificate must chain to.
//!
//! Everything is read once, at start-up; a store that cannot be read or holds no usable
//! key or certificate stops the server with an error naming the key to fix.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::config::{ClientAuth, StoreFile, TlsSettings};

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

/// The crypto provider every configuration uses: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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
            reason: "the server's private key and certificate chain (PEM)".into(),
        })?;
    let pem = read(&key, store)?;
    let path = &store.location;
    if contains(&pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(store_error(
            &key,
            path,
            "the private key is encrypted, which is not supported: store it unencrypted \
             (`openssl pkcs8 -topk8 -nocrypt`) and protect the file's permissions",
        ));
    }
    let certs = certificates(&key, path, &pem)?;
    if certs.is_empty() {
        return Err(store_error(
            &key,
            path,
            "no certificate in the file (a PEM key store holds the private key and the \
             certificate chain)",
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        store_error(
            &key,
            path,
            format!("no usable private key in the file (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })?;
    Ok((certs, private))
}

fn certificates(
    key: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| store_error(key, path, format!("bad PEM: {e}")))
}

/// The trust store: the CA certificates, as rustls roots.
fn load_trust_store(settings: &TlsSettings) -> Result<Option<Arc<RootCertStore>>, TlsError> {
    let key = key_of(settings, "trustStore");
    let Some(store) = settings.trust_store.as_ref() else {
        return Ok(None);
    };
    let pem = read(&key, store)?;
    let path = &store.location;
    let certs = certificates(&key, path, &pem)?;
    if certs.is_empty() {
        return Err(store_error(&key, path, "no CA certificate in the file"));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| store_error(&key, path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(Some(Arc::new(roots)))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn rustls_error(settings: &TlsSettings) -> impl Fn(rustls::Error) -> TlsError {
    let prefix = settings.prefix;
    move |source| TlsError::Rustls { prefix, source }
}

/// A server configuration: this side's key and chain, and client certificates verified
/// against the trust store as `client_auth` says.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = load_key_store(settings)?;
    let roots = load_trust_store(settings)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error(settings))?;
    let builder = match (settings.client_auth, roots) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
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
            builder.with_client_cert_verifier(verifier)
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
    let config = builder
        .with_single_cert(chain, key)
        .map_err(rustls_error(settings))?;
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
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Store {
            key: key_of(settings, "trustStore"),
            path: String::new(),
            reason: e.to_string(),
        })?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
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
        .map_err(rustls_error(settings))?;
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
            key_store: Some(StoreFile {
                location: dir.join("key.pem"),
                password: Secret::default(),
            }),
            trust_store: trust_pem.map(|_| StoreFile {
                location: dir.join("ca.pem"),
                password: Secret::default(),
            }),
            client_auth: ClientAuth::Need,
            hostname_verification: true,
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
        assert!(e.to_string().contains("no usable private key"), "{e}");
        // An encrypted key.
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = server_config(&settings(
            dir.path(),
            &format!("{encrypted}{cert}"),
            Some(&cert),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
        // An empty trust store.
        let e =
            server_config(&settings(dir.path(), &format!("{key}{cert}"), Some(""))).unwrap_err();
        assert!(
            e.to_string().starts_with("ssl.trustStore.location=")
                && e.to_string().contains("no CA"),
            "{e}"
        );
        // A missing file.
        let mut s = settings(dir.path(), &format!("{key}{cert}"), Some(&cert));
        s.key_store = Some(StoreFile {
            location: dir.path().join("absent.pem"),
            password: Secret::default(),
        });
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
