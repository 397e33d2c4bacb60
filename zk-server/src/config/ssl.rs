//! The `ssl.*` keys of zoo.cfg, as Apache ZooKeeper 3.8 names them (its `X509Util`
//! properties, `zookeeper.ssl.*`, which zoo.cfg may give without the `zookeeper.`
//! prefix): key and trust stores, client authentication, hostname verification,
//! protocols and cipher suites; the same set under `ssl.quorum.*` for the links
//! between members (`sslQuorum=true`).
//!
//! - Stores are JKS, PKCS12 or PEM (`zk_proto::keystore` reads them). The type comes
//!   from `*.type` (any case) or, when that is empty, from the file name exactly as
//!   Apache's `KeyStoreFileType.fromFilename` infers it: `.jks`, `.pem`, `.p12`
//!   (`.bcfks` is recognised and refused). JKS and PKCS#12 content is told apart by
//!   its first bytes whichever of the two the type says, as Java does.
//! - `*.password`, or `*.passwordPath` (a file holding it; it wins when both are set,
//!   and one trailing newline is dropped, as Apache's `SecretUtils`), unlocks the store
//!   and its private key, and decrypts an `ENCRYPTED PRIVATE KEY` in a PEM key store.
//! - `*.protocol` and `*.enabledProtocols`: TLSv1.2 and TLSv1.3 (and `TLS`, both).
//!   Apache enables only `*.protocol` (default TLSv1.2) unless `enabledProtocols`
//!   lists more; with neither set, this server enables both TLSv1.2 and TLSv1.3.
//!   TLSv1, TLSv1.1 and SSLv3 in `enabledProtocols` are skipped (JDK 17 disables them
//!   too); as `protocol`, or when nothing else is left, they are refused.
//! - `*.ciphersuites`: Java (IANA) names, mapped to rustls's suites in `crate::tls`;
//!   names rustls does not implement (CBC, RSA key exchange) are skipped, and a list
//!   with no usable suite is refused.
//! - `*.hostnameVerification` (default true): a member checks the name in the
//!   certificate of the peer it connects to; on the client port the server does not
//!   check clients' names, as Apache's `ClientX509Util`.
//! - `client.portUnification` (read by `config.rs`) serves TLS and plaintext on the
//!   plain client port, with these `ssl.*` stores.

use std::path::PathBuf;

pub use zk_proto::keystore::StoreType;

use super::ConfigError;

/// A password from zoo.cfg, kept out of `Debug` output and logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Whether the server asks a connecting client for a certificate (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Not asked for; any client that trusts the server may connect.
    None,
    /// Asked for and verified when given; a client without one is still served.
    Want,
    /// Required and verified: a client without a trusted certificate is refused
    /// (Apache ZooKeeper's default).
    Need,
}

/// One key or trust store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFile {
    /// The file.
    pub location: PathBuf,
    /// `*.password`: the store's password (and its private key's).
    pub password: Secret,
    /// `*.passwordPath`: a file holding the password; read when the store is loaded,
    /// and used instead of `password` when set.
    pub password_path: Option<PathBuf>,
    /// The type, from `*.type` or the file name.
    pub store_type: StoreType,
}

/// A TLS protocol version this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLSv1.2.
    Tls12,
    /// TLSv1.3.
    Tls13,
}

/// The TLS settings of one side: the client port (`ssl.*`) or the peer links
/// (`ssl.quorum.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The key prefix the settings came from (`ssl` or `ssl.quorum`), for messages.
    pub prefix: &'static str,
    /// `*.keyStore.location`: this server's private key and certificate chain.
    pub key_store: Option<StoreFile>,
    /// `*.trustStore.location`: the CA certificates peers' certificates must chain to.
    pub trust_store: Option<StoreFile>,
    /// `*.clientAuth` (default `need`, as in Apache ZooKeeper).
    pub client_auth: ClientAuth,
    /// `*.hostnameVerification` (default true): whether a member checks that the
    /// certificate of the peer it connects to names the host of that peer's
    /// `server.N` line.
    pub hostname_verification: bool,
    /// The enabled versions (`*.protocol`, `*.enabledProtocols`), never empty.
    pub protocols: Vec<TlsVersion>,
    /// `*.ciphersuites` as written (Java names), or None for rustls's defaults.
    pub cipher_suites: Option<String>,
}

/// The `ssl.*` keys as they are read, before they are checked together.
#[derive(Debug, Default)]
pub(super) struct SslKeys {
    client: SideKeys,
    quorum: SideKeys,
}

#[derive(Debug, Default)]
struct SideKeys {
    key_location: Option<String>,
    key_password: Option<String>,
    key_password_path: Option<String>,
    key_type: Option<String>,
    trust_location: Option<String>,
    trust_password: Option<String>,
    trust_password_path: Option<String>,
    trust_type: Option<String>,
    client_auth: Option<String>,
    hostname_verification: Option<String>,
    protocol: Option<String>,
    enabled_protocols: Option<String>,
    cipher_suites: Option<String>,
}

impl SslKeys {
    /// Takes `prop` (a key without its `zookeeper.` prefix) if it is one of ours;
    /// false leaves it to the caller (other `ssl.*` keys are logged and ignored).
    pub(super) fn take(&mut self, prop: &str, value: &str) -> bool {
        let (side, rest) = match prop.strip_prefix("ssl.quorum.") {
            Some(rest) => (&mut self.quorum, rest),
            None => match prop.strip_prefix("ssl.") {
                Some(rest) => (&mut self.client, rest),
                None => return false,
            },
        };
        let slot = match rest {
            "keyStore.location" => &mut side.key_location,
            "keyStore.password" => &mut side.key_password,
            "keyStore.passwordPath" => &mut side.key_password_path,
            "keyStore.type" => &mut side.key_type,
            "trustStore.location" => &mut side.trust_location,
            "trustStore.password" => &mut side.trust_password,
            "trustStore.passwordPath" => &mut side.trust_password_path,
            "trustStore.type" => &mut side.trust_type,
            "clientAuth" => &mut side.client_auth,
            "hostnameVerification" => &mut side.hostname_verification,
            "protocol" => &mut side.protocol,
            "enabledProtocols" => &mut side.enabled_protocols,
            "ciphersuites" => &mut side.cipher_suites,
            _ => return false,
        };
        *slot = Some(value.to_string());
        true
    }

    /// The client port's settings, when `secure` (a secure client port is configured,
    /// or `client.portUnification` is on): a key store is then required.
    pub(super) fn client(&self, secure: bool) -> Result<Option<TlsSettings>, ConfigError> {
        if !secure {
            return Ok(None);
        }
        let settings = self.client.settings("ssl")?;
        if settings.key_store.is_none() {
            return Err(missing(
                "ssl.keyStore.location",
                "secureClientPort (or client.portUnification) needs the server's key and \
                 certificate (a JKS, PKCS12 or PEM key store)",
            ));
        }
        if settings.trust_store.is_none() && settings.client_auth != ClientAuth::None {
            return Err(missing(
                "ssl.trustStore.location",
                "client certificates are verified against it (ssl.clientAuth is need or \
                 want; set ssl.clientAuth=none to serve clients without certificates)",
            ));
        }
        Ok(Some(settings))
    }

    /// Whether stores are named for a side that is not enabled (worth a log line).
    pub(super) fn unused(&self, secure: bool, ssl_quorum: bool) -> Vec<String> {
        let mut unused = Vec::new();
        if !secure && self.client.any() {
            unused.push("ssl.* (no secureClientPort: not used)".to_string());
        }
        if !ssl_quorum && self.quorum.any() {
            unused.push("ssl.quorum.* (sslQuorum is not true: not used)".to_string());
        }
        unused
    }

    /// The peer links' settings, when `ssl_quorum`: both stores are required (members
    /// authenticate each other).
    pub(super) fn quorum(&self, ssl_quorum: bool) -> Result<Option<TlsSettings>, ConfigError> {
        if !ssl_quorum {
            return Ok(None);
        }
        let settings = self.quorum.settings("ssl.quorum")?;
        if settings.key_store.is_none() {
            return Err(missing(
                "ssl.quorum.keyStore.location",
                "sslQuorum=true needs this member's key and certificate (a JKS, PKCS12 or \
                 PEM key store)",
            ));
        }
        if settings.trust_store.is_none() {
            return Err(missing(
                "ssl.quorum.trustStore.location",
                "sslQuorum=true verifies every member's certificate against it",
            ));
        }
        Ok(Some(settings))
    }
}

impl SideKeys {
    fn any(&self) -> bool {
        self.key_location.is_some() || self.trust_location.is_some()
    }

    fn settings(&self, prefix: &'static str) -> Result<TlsSettings, ConfigError> {
        let store = |what: &str,
                     location: &Option<String>,
                     ty: &Option<String>,
                     pw: &Option<String>,
                     pw_path: &Option<String>| {
            location
                .as_deref()
                .filter(|l| !l.is_empty())
                .map(|l| {
                    Ok(StoreFile {
                        location: PathBuf::from(l),
                        password: Secret(pw.clone().unwrap_or_default()),
                        password_path: pw_path
                            .as_deref()
                            .filter(|p| !p.is_empty())
                            .map(PathBuf::from),
                        store_type: store_type(prefix, what, l, ty.as_deref())?,
                    })
                })
                .transpose()
        };
        let key_store = store(
            "keyStore",
            &self.key_location,
            &self.key_type,
            &self.key_password,
            &self.key_password_path,
        )?;
        let trust_store = store(
            "trustStore",
            &self.trust_location,
            &self.trust_type,
            &self.trust_password,
            &self.trust_password_path,
        )?;
        let client_auth = match self.client_auth.as_deref().map(str::to_ascii_lowercase) {
            None => ClientAuth::Need,
            Some(v) if v.is_empty() || v == "need" => ClientAuth::Need,
            Some(v) if v == "want" => ClientAuth::Want,
            Some(v) if v == "none" => ClientAuth::None,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    key: format!("{prefix}.clientAuth"),
                    value: v,
                    reason: "expected none, want or need".into(),
                })
            }
        };
        let hostname_verification = match self.hostname_verification.as_deref() {
            None => true,
            Some(v) => super::parse_bool(&format!("{prefix}.hostnameVerification"), v)?,
        };
        let protocols = protocols(
            prefix,
            self.protocol.as_deref(),
            self.enabled_protocols.as_deref(),
        )?;
        let cipher_suites = self
            .cipher_suites
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Ok(TlsSettings {
            prefix,
            key_store,
            trust_store,
            client_auth,
            hostname_verification,
            protocols,
            cipher_suites,
        })
    }
}

fn missing(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: String::new(),
        reason: reason.to_string(),
    }
}

/// The store type: `*.type` when set (any case), else inferred from the file name as
/// Apache ZooKeeper does. BCFKS is refused here, naming the key.
fn store_type(
    prefix: &str,
    what: &str,
    location: &str,
    declared: Option<&str>,
) -> Result<StoreType, ConfigError> {
    let (key, value, ty) = match declared.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => (
            format!("{prefix}.{what}.type"),
            t,
            StoreType::from_property(t).map_err(|e| ConfigError::Invalid {
                key: format!("{prefix}.{what}.type"),
                value: t.to_string(),
                reason: e.to_string(),
            })?,
        ),
        None => (
            format!("{prefix}.{what}.location"),
            location,
            StoreType::from_file_name(location).ok_or_else(|| ConfigError::Invalid {
                key: format!("{prefix}.{what}.location"),
                value: location.to_string(),
                reason: format!(
                    "cannot tell the store type from the file name (as Apache ZooKeeper, \
                     only .jks, .pem and .p12 are recognised): set {prefix}.{what}.type to \
                     JKS, PKCS12 or PEM"
                ),
            })?,
        ),
    };
    if ty == StoreType::Bcfks {
        return Err(ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: "BCFKS stores (Bouncy Castle FIPS) are not read: convert the store to \
                     PKCS12 (keytool -importkeystore -deststoretype PKCS12) or PEM"
                .into(),
        });
    }
    Ok(ty)
}

/// Versions Java knows but rustls does not speak (JDK 17 disables them by default).
const OLD_PROTOCOLS: &[&str] = &["TLSv1", "TLSv1.1", "SSLv3", "SSLv2Hello"];

fn protocol_version(name: &str) -> Option<Vec<TlsVersion>> {
    match name {
        "TLSv1.2" => Some(vec![TlsVersion::Tls12]),
        "TLSv1.3" => Some(vec![TlsVersion::Tls13]),
        "TLS" => Some(vec![TlsVersion::Tls12, TlsVersion::Tls13]),
        _ => None,
    }
}

/// The enabled versions from `*.protocol` and `*.enabledProtocols`.
fn protocols(
    prefix: &str,
    protocol: Option<&str>,
    enabled: Option<&str>,
) -> Result<Vec<TlsVersion>, ConfigError> {
    let speaks = "this server speaks TLSv1.2 and TLSv1.3 (TLS means both)";
    if let Some(list) = enabled.map(str::trim).filter(|l| !l.is_empty()) {
        let key = format!("{prefix}.enabledProtocols");
        let mut versions = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match protocol_version(name) {
                Some(v) => versions.extend(v),
                None if OLD_PROTOCOLS.contains(&name) => {}
                None => {
                    return Err(invalid(
                        &key,
                        list,
                        format!("unknown protocol {name:?}: {speaks}"),
                    ))
                }
            }
        }
        versions.sort();
        versions.dedup();
        if versions.is_empty() {
            return Err(invalid(
                &key,
                list,
                format!("no protocol left to enable: {speaks}"),
            ));
        }
        return Ok(versions);
    }
    match protocol.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(vec![TlsVersion::Tls12, TlsVersion::Tls13]),
        Some(p) => protocol_version(p).ok_or_else(|| {
            invalid(
                &format!("{prefix}.protocol"),
                p,
                format!("not supported: {speaks}"),
            )
        }),
    }
}

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    }
}
