//! TLS to the server (cargo feature `tls`, on by default), as ZooKeeper's Java client
//! does with `zookeeper.client.secure=true`: the server's certificate must chain to one
//! of the CA certificates given and name the host the client connects to (the host of
//! the connect string entry, or [`TlsConfig::server_name`]); a client certificate is
//! presented when the server asks for one (`ssl.clientAuth=need` or `want`).
//!
//! Certificates and keys come from PEM text, or from key and trust stores of the types
//! ZooKeeper's Java client reads (`zookeeper.ssl.keyStore.*`, `zookeeper.ssl.trustStore.*`):
//! JKS, PKCS12 and PEM ([`TlsConfig::key_store_file`], [`TlsConfig::trust_store_file`],
//! read by `zk_proto::keystore`). rustls with the ring provider does the work.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A server with a secure client port, and the files a deployment would have.
//! # let files = zk_tests::certs::TlsFiles::new();
//! # let port = zk_server::testing::free_port()?;
//! # let parsed = zk_server::config::ServerConfig::parse(&files.zoo_cfg_lines(port, "need"))?;
//! # let data = files.dir.path().join("data");
//! # std::fs::create_dir_all(&data)?;
//! # let mut config = zk_server::testing::test_config(&data);
//! # config.secure_client_addr = parsed.secure_client_addr;
//! # config.client_tls = parsed.client_tls;
//! # let server = zk_server::testing::TestingServer::start_with(config).await?;
//! # let (ca_pem, client_pem) = (&files.ca_pem, &files.client_pem); // "/etc/zk/ca.pem", …
//! # let secure_port = server.secure_addr().expect("a secure port").to_string();
//! use zk_client::{Client, TlsConfig};
//! let tls = TlsConfig::new()
//!     .ca_file(ca_pem)?
//!     .identity_file(client_pem)?; // key and certificate chain
//! let zk = Client::builder(&secure_port).tls(tls).connect().await?; // "zk1.example:2281"
//! zk.create("/over-tls").await?;
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::session::Stream;

/// How the client connects with TLS: which CAs it trusts, its own certificate (if
/// the server wants one), and the name the server's certificate must carry.
#[derive(Clone)]
pub struct TlsConfig {
    roots: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
    server_name: Option<String>,
    skip_hostname_verification: bool,
    /// TLSv1.2 and TLSv1.3 offered (both by default).
    versions: (bool, bool),
    /// Cipher suites by Java (IANA) name; rustls's when `None`.
    cipher_suites: Option<Vec<String>>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            roots: Vec::new(),
            identity: None,
            server_name: None,
            skip_hostname_verification: false,
            versions: (true, true),
            cipher_suites: None,
        }
    }
}

struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_certificates", &self.roots.len())
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .field("hostname_verification", &!self.skip_hostname_verification)
            .field("versions", &self.versions)
            .field("cipher_suites", &self.cipher_suites)
            .finish()
    }
}

pub use zk_proto::keystore::StoreType;

fn tls_error(what: impl std::fmt::Display) -> Error {
    Error::Tls(what.to_string())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| tls_error(format!("cannot read {}: {e}", path.display())))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{what}: no certificate in the PEM")));
    }
    Ok(certs)
}

impl TlsConfig {
    /// No CA yet: add at least one with [`TlsConfig::ca_pem`] or [`TlsConfig::ca_file`].
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks; Apache
    /// ZooKeeper's PEM trust store).
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<TlsConfig> {
        self.roots.extend(certificates(pem, "CA certificates")?);
        Ok(self)
    }

    /// Trusts the CA certificates in a PEM file.
    pub fn ca_file(self, path: impl AsRef<Path>) -> Result<TlsConfig> {
        let pem = read(path.as_ref())?;
        self.ca_pem(&pem)
    }

    /// Presents this certificate chain (leaf first) and private key when the server
    /// asks for a client certificate. The key may be PKCS#8, PKCS#1 or SEC1 PEM,
    /// unencrypted.
    pub fn client_cert_pem(mut self, chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig> {
        let chain = certificates(chain_pem, "client certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| tls_error(format!("client key: no usable private key in the PEM: {e}")))?;
        self.identity = Some(Identity { chain, key });
        Ok(self)
    }

    /// Like [`TlsConfig::client_cert_pem`], from a certificate file and a key file.
    pub fn client_cert_files(
        self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig> {
        let (chain, key) = (read(chain.as_ref())?, read(key.as_ref())?);
        self.client_cert_pem(&chain, &key)
    }

    /// Presents the key and certificate chain of one PEM file, as Apache ZooKeeper's
    /// PEM key store holds them (`zookeeper.ssl.keyStore.location`).
    pub fn identity_file(self, path: impl AsRef<Path>) -> Result<TlsConfig> {
        let pem = read(path.as_ref())?;
        self.client_cert_pem(&pem, &pem)
    }

    /// Trusts the certificates of a trust store (`bytes` of a JKS, PKCS12 or PEM store
    /// of type `store_type`, opened with `password`), as the Java client's
    /// `zookeeper.ssl.trustStore.*`. `what` names the store in errors (e.g. its file).
    pub fn trust_store(
        mut self,
        what: &str,
        bytes: &[u8],
        store_type: StoreType,
        password: &str,
    ) -> Result<TlsConfig> {
        let certs = zk_proto::keystore::load_trust_store(bytes, store_type, password)
            .map_err(|e| tls_error(format!("{what}: {} store: {e}", store_type.name())))?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// [`TlsConfig::trust_store`] from a file; the type, when `None`, is inferred from
    /// the file name as ZooKeeper infers it (`.jks`, `.p12`, `.pem`).
    pub fn trust_store_file(
        self,
        path: impl AsRef<Path>,
        store_type: Option<StoreType>,
        password: &str,
    ) -> Result<TlsConfig> {
        let path = path.as_ref();
        let ty = store_type_of(path, store_type)?;
        let bytes = read(path)?;
        self.trust_store(&path.display().to_string(), &bytes, ty, password)
    }

    /// Presents the private key and certificate chain of a key store (JKS, PKCS12 or
    /// PEM; `password` opens the store and its key, and decrypts an encrypted PEM
    /// key), as the Java client's `zookeeper.ssl.keyStore.*`.
    pub fn key_store(
        mut self,
        what: &str,
        bytes: &[u8],
        store_type: StoreType,
        password: &str,
    ) -> Result<TlsConfig> {
        let m = zk_proto::keystore::load_key_store(bytes, store_type, password)
            .map_err(|e| tls_error(format!("{what}: {} store: {e}", store_type.name())))?;
        self.identity = Some(Identity {
            chain: m.chain,
            key: m.key,
        });
        Ok(self)
    }

    /// [`TlsConfig::key_store`] from a file, the type inferred as for
    /// [`TlsConfig::trust_store_file`].
    pub fn key_store_file(
        self,
        path: impl AsRef<Path>,
        store_type: Option<StoreType>,
        password: &str,
    ) -> Result<TlsConfig> {
        let path = path.as_ref();
        let ty = store_type_of(path, store_type)?;
        let bytes = read(path)?;
        self.key_store(&path.display().to_string(), &bytes, ty, password)
    }

    /// Whether the server's certificate must name the host connected to (default
    /// true; the chain is verified either way), as `zookeeper.ssl.hostnameVerification`.
    pub fn hostname_verification(mut self, on: bool) -> TlsConfig {
        self.skip_hostname_verification = !on;
        self
    }

    /// The TLS versions offered (both by default), as `zookeeper.ssl.enabledProtocols`.
    /// At least one is needed.
    pub fn protocol_versions(mut self, tls12: bool, tls13: bool) -> Result<TlsConfig> {
        if !tls12 && !tls13 {
            return Err(tls_error("no TLS version enabled (TLSv1.2, TLSv1.3)"));
        }
        self.versions = (tls12, tls13);
        Ok(self)
    }

    /// The cipher suites offered, by their Java (IANA) names, as
    /// `zookeeper.ssl.ciphersuites` (`TLS_AES_128_GCM_SHA256`,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, …). Names of suites rustls does not
    /// implement (CBC, RSA key exchange) are skipped; none left is an error when the
    /// connection is set up.
    pub fn cipher_suites<S: AsRef<str>>(mut self, names: &[S]) -> TlsConfig {
        self.cipher_suites = Some(
            names
                .iter()
                .map(|n| n.as_ref().trim().to_string())
                .collect(),
        );
        self
    }

    /// The name the server's certificate must carry, instead of the host of the
    /// connect string: for a connect string of IP addresses whose servers' certificates
    /// name a host, or servers behind an alias. (An IP address here is checked against
    /// the certificate's IP address entries.)
    pub fn server_name(mut self, name: &str) -> TlsConfig {
        self.server_name = Some(name.to_string());
        self
    }

    /// Checks that a connection can be set up with this configuration (a CA is given,
    /// the key matches its certificate, some cipher suite is left), as connecting
    /// would; for reporting a bad setting before connecting.
    pub fn validate(&self) -> Result<()> {
        self.connector().map(|_| ())
    }

    /// The connector every connection of one client uses.
    pub(crate) fn connector(&self) -> Result<Connector> {
        if self.roots.is_empty() {
            return Err(tls_error(
                "no CA certificate: the server's certificate cannot be verified (TlsConfig::ca_pem or ca_file)",
            ));
        }
        let mut roots = RootCertStore::empty();
        for cert in &self.roots {
            roots
                .add(cert.clone())
                .map_err(|e| tls_error(format!("unusable CA certificate: {e}")))?;
        }
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(names) = &self.cipher_suites {
            let chosen: Vec<_> = provider
                .cipher_suites
                .iter()
                .filter(|s| names.iter().any(|n| *n == java_name(s)))
                .copied()
                .collect();
            if chosen.is_empty() {
                let available: Vec<String> = provider.cipher_suites.iter().map(java_name).collect();
                return Err(tls_error(format!(
                    "none of the cipher suites {} is available; available: {}",
                    names.join(","),
                    available.join(",")
                )));
            }
            provider.cipher_suites = chosen;
        }
        let provider = Arc::new(provider);
        let mut versions = Vec::new();
        if self.versions.0 {
            versions.push(&rustls::version::TLS12);
        }
        if self.versions.1 {
            versions.push(&rustls::version::TLS13);
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(tls_error)?;
        let builder = if self.skip_hostname_verification {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(tls_error)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
        } else {
            builder.with_root_certificates(roots)
        };
        let config = match &self.identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| tls_error(format!("client certificate and key: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        let server_name = self
            .server_name
            .as_deref()
            .map(parse_server_name)
            .transpose()?;
        Ok(Connector {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// A suite's Java (IANA) name: rustls's, with `TLS13_` written `TLS_` as Java does.
fn java_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

fn store_type_of(path: &Path, given: Option<StoreType>) -> Result<StoreType> {
    given
        .or_else(|| StoreType::from_file_name(&path.to_string_lossy()))
        .ok_or_else(|| {
            tls_error(format!(
                "{}: cannot tell the store type from the file name (.jks, .p12, .pem): give it",
                path.display()
            ))
        })
}

/// Verifies the chain and validity but not the name (hostname verification off).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn parse_server_name(host: &str) -> Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| tls_error(format!("{host:?} is not a host name or IP address: {e}")))
}

/// Makes TLS sessions over connected sockets.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl Connector {
    /// The TLS handshake on `stream`, to `host` (`host:port`, as in the connect string).
    pub(crate) async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<Box<dyn Stream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
                parse_server_name(bare).map_err(std::io::Error::other)?
            }
        };
        let session = self.inner.connect(name, stream).await?;
        Ok(Box::new(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_needs_a_ca_and_usable_pem() {
        assert!(matches!(TlsConfig::new().connector(), Err(Error::Tls(_))));
        assert!(matches!(
            TlsConfig::new().ca_pem(b"not pem"),
            Err(Error::Tls(_))
        ));
        assert!(matches!(
            TlsConfig::new().ca_file("/nonexistent/ca.pem"),
            Err(Error::Tls(m)) if m.contains("cannot read")
        ));
        assert!(parse_server_name("127.0.0.1").is_ok());
        assert!(parse_server_name("[::1]").is_ok());
        assert!(parse_server_name("zk1.example").is_ok());
        assert!(parse_server_name("not a name").is_err());
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../zk-proto/src/keystore/testdata")
            .join(name)
    }

    #[test]
    fn stores_of_every_type_make_a_connector() {
        let tls = TlsConfig::new()
            .trust_store_file(fixture("pyjks-truststore.jks"), None, "apassword")
            .unwrap()
            .key_store_file(fixture("keytool-rsa.p12"), None, "apassword")
            .unwrap();
        assert!(tls.connector().is_ok());
        let tls = TlsConfig::new()
            .trust_store_file(fixture("ca.pem"), Some(StoreType::Pem), "")
            .unwrap()
            .key_store_file(fixture("server-encrypted.pem"), None, "apassword")
            .unwrap()
            .hostname_verification(false);
        assert!(tls.connector().is_ok());
        let e = TlsConfig::new()
            .key_store_file(fixture("pyjks-keystore.jks"), None, "wrong")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pyjks-keystore.jks") && e.contains("password is wrong"),
            "{e}"
        );
        let e = TlsConfig::new()
            .trust_store_file(fixture("keytool.jks"), None, "apassword")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no certificate"), "{e}");
        let e = TlsConfig::new()
            .trust_store_file("/etc/zk/truststore", None, "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot tell the store type"), "{e}");
        // Versions and suites.
        let ca = || TlsConfig::new().ca_file(fixture("ca.pem")).unwrap();
        assert!(ca().protocol_versions(false, false).is_err());
        assert!(ca()
            .protocol_versions(true, false)
            .unwrap()
            .connector()
            .is_ok());
        assert!(ca()
            .cipher_suites(&[
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                "TLS_AES_128_GCM_SHA256"
            ])
            .connector()
            .is_ok());
        let e = ca()
            .cipher_suites(&["TLS_RSA_WITH_AES_128_CBC_SHA"])
            .connector()
            .unwrap_err()
            .to_string();
        assert!(e.contains("none of the cipher suites"), "{e}");
    }
}
