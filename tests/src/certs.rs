//! Certificates made at run time for the TLS tests (no private key is checked in):
//! a CA, and server or client certificates it signs, written as PEM files in the
//! layout Apache ZooKeeper's `PEM` stores take (a key store file holding the private
//! key and the certificate; a trust store file holding CA certificates), and
//! [`JavaStores`]: JKS and PKCS#12 stores as Java deployments and kazoo's harness have them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority that signs the certificates of one test.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    name: String,
}

/// A certificate and its private key, as PEM.
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: String,
}

impl Ca {
    /// A new CA named `name` (its common name).
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        Ca {
            issuer,
            name: name.to_string(),
        }
    }

    /// The CA certificate (PEM): a trust store.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `common_name`, valid for the host names and IP addresses in
    /// `names`, usable by a server and by a client.
    pub fn issue(&self, common_name: &str, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, self.name.as_str());
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `dir/<file>` (a PEM trust store); returns its path.
    pub fn write_trust_store(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.cert_pem()).expect("write trust store");
        path
    }
}

impl Issued {
    /// Writes key and certificate to `dir/<file>` (a PEM key store); returns its path.
    pub fn write_key_store(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, format!("{}{}", self.key_pem, self.cert_pem))
            .expect("write key store");
        path
    }
}

/// The files of one TLS test: a CA (`ca.pem`), a server key store (`server.pem`, for
/// `localhost` and 127.0.0.1), a client key store (`client.pem`, the key and
/// certificate of a client named `client`), and a second CA that signed none of them
/// (`other-ca.pem`).
pub struct TlsFiles {
    /// The directory holding them (removed on drop).
    pub dir: tempfile::TempDir,
    /// The CA.
    pub ca: Ca,
    /// The CA's certificate: the trust store.
    pub ca_pem: PathBuf,
    /// The server's key store.
    pub server_pem: PathBuf,
    /// The client's certificate and key.
    pub client: Issued,
    /// The client's key store (key and certificate in one file).
    pub client_pem: PathBuf,
    /// A CA certificate that signed nothing here.
    pub other_ca_pem: PathBuf,
}

impl TlsFiles {
    /// Our client's TLS settings: trusts the CA and presents the client's certificate.
    pub fn client_tls(&self) -> zk_client::TlsConfig {
        zk_client::TlsConfig::new()
            .ca_file(&self.ca_pem)
            .expect("the CA file")
            .identity_file(&self.client_pem)
            .expect("the client key store")
    }

    /// Makes and writes them.
    pub fn new() -> TlsFiles {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = Ca::new("zk-rs test CA");
        let ca_pem = ca.write_trust_store(dir.path(), "ca.pem");
        let server_pem = ca
            .issue("zk-server", &["localhost", "127.0.0.1"])
            .write_key_store(dir.path(), "server.pem");
        let client = ca.issue("client", &["client.example"]);
        let client_pem = client.write_key_store(dir.path(), "client.pem");
        let other_ca_pem = Ca::new("another CA").write_trust_store(dir.path(), "other-ca.pem");
        TlsFiles {
            dir,
            ca,
            ca_pem,
            server_pem,
            client,
            client_pem,
            other_ca_pem,
        }
    }

    /// The zoo.cfg lines of a secure client port on `port` with these stores.
    pub fn zoo_cfg_lines(&self, port: u16, client_auth: &str) -> String {
        format!(
            "secureClientPort={port}\nsecureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\nssl.keyStore.password=\nssl.keyStore.type=PEM\n\
             ssl.trustStore.location={}\nssl.trustStore.password=\nssl.trustStore.type=PEM\n\
             ssl.clientAuth={client_auth}\n",
            self.server_pem.display(),
            self.ca_pem.display(),
        )
    }
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles::new()
    }
}

/// Connects our client over `tls` (5 s to connect, a 10 s session).
pub async fn connect_tls(
    connect: &str,
    tls: zk_client::TlsConfig,
) -> zk_client::Result<zk_client::Client> {
    zk_client::Client::builder(connect)
        .tls(tls)
        .connect_timeout(std::time::Duration::from_secs(5))
        .session_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
}

/// Java-style stores for one TLS test, written by `interop/make_java_stores.py`: the
/// server's `keystore.jks` and the `truststore.jks` as kazoo's test harness writes
/// them (pyjks, password `apassword`), a client's `client.jks`, keytool's PKCS#12
/// copies of the three (`.p12`), and PEM files for kazoo.
pub struct JavaStores {
    /// The directory holding them (removed on drop).
    pub dir: tempfile::TempDir,
}

/// `-cp` for Debian's zkCli.sh with TLS: its class path (zookeeper.jar, whose manifest
/// names most netty jars) plus the netty jars the manifest leaves out. Java takes the
/// last `-cp`, and zkCli.sh puts `CLIENT_JVMFLAGS` after its own.
pub const ZKCLI_TLS_CLASS_PATH: &str = "-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:\
/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:\
/usr/share/java/netty-transport-native-unix-common.jar";

/// The password of every [`JavaStores`] store, as in kazoo's harness.
pub const STORE_PASSWORD: &str = "apassword";

impl JavaStores {
    /// Makes and writes them (needs the project's Python, with pyjks and cryptography,
    /// and keytool).
    pub fn new() -> JavaStores {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new(crate::python_with_kazoo())
            .arg(crate::interop_dir().join("make_java_stores.py"))
            .arg(dir.path())
            .output()
            .expect("the project's python");
        assert!(
            out.status.success(),
            "make_java_stores.py failed (it needs pyjks==20.0.0, cryptography and the JDK's \
             keytool: scripts/install-test-deps.sh):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        JavaStores { dir }
    }

    /// A file of the set (`keystore.jks`, `truststore.p12`, `ca.pem`, …).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The zoo.cfg lines kazoo's harness writes for TLS, with the stores of extension
    /// `ext` (`jks` as the harness, or `p12`), the type left to be inferred.
    pub fn zoo_cfg_lines(&self, secure_port: u16, ext: &str) -> String {
        format!(
            "secureClientPort={secure_port}\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             ssl.keyStore.location={}\nssl.keyStore.password={STORE_PASSWORD}\n\
             ssl.trustStore.location={}\nssl.trustStore.password={STORE_PASSWORD}\n",
            self.path(&format!("keystore.{ext}")).display(),
            self.path(&format!("truststore.{ext}")).display(),
        )
    }

    /// The flags zkCli.sh takes in `CLIENT_JVMFLAGS` for TLS with the client stores
    /// of extension `ext` (`jks` or `p12`): the `-D` system properties, and (first) a
    /// class path with the netty jars that Debian's zkCli.sh leaves out and Java's
    /// Netty client socket, which TLS needs, loads.
    pub fn client_jvm_flags(&self, ext: &str) -> String {
        format!(
            "{} -Dzookeeper.client.secure=true \
             -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
             -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.password={STORE_PASSWORD} \
             -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.password={STORE_PASSWORD}",
            ZKCLI_TLS_CLASS_PATH,
            self.path(&format!("client.{ext}")).display(),
            self.path(&format!("truststore.{ext}")).display(),
        )
    }
}

impl Default for JavaStores {
    fn default() -> Self {
        JavaStores::new()
    }
}
