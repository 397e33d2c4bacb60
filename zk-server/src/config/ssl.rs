//! The `ssl.*` keys of zoo.cfg, as Apache ZooKeeper 3.8 names them (its `X509Util`
//! properties, `zookeeper.ssl.*`, which zoo.cfg may give without the `zookeeper.`
//! prefix): key and trust stores, client authentication, hostname verification; the
//! same set under `ssl.quorum.*` for the links between members (`sslQuorum=true`).
//!
//! Stores are PEM files (Apache's `PEM` store type): the key store holds the private
//! key and its certificate chain, the trust store the CA certificates. The type comes
//! from `*.type` or, when that is not given, from the file name (`.pem`), as Apache
//! infers it; JKS and PKCS#12 stores are refused with an error that names the key and
//! says to convert the store to PEM.

use std::path::PathBuf;

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

/// One key or trust store: a PEM file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFile {
    /// The file.
    pub location: PathBuf,
    /// `*.password` (only meaningful for an encrypted key, which is refused at load).
    pub password: Secret,
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
    key_type: Option<String>,
    trust_location: Option<String>,
    trust_password: Option<String>,
    trust_type: Option<String>,
    client_auth: Option<String>,
    hostname_verification: Option<String>,
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
            "keyStore.type" => &mut side.key_type,
            "trustStore.location" => &mut side.trust_location,
            "trustStore.password" => &mut side.trust_password,
            "trustStore.type" => &mut side.trust_type,
            "clientAuth" => &mut side.client_auth,
            "hostnameVerification" => &mut side.hostname_verification,
            _ => return false,
        };
        *slot = Some(value.to_string());
        true
    }

    /// The client port's settings, when `secure` (a secure client port is configured):
    /// a key store is then required.
    pub(super) fn client(&self, secure: bool) -> Result<Option<TlsSettings>, ConfigError> {
        if !secure {
            return Ok(None);
        }
        let settings = self.client.settings("ssl")?;
        if settings.key_store.is_none() {
            return Err(missing(
                "ssl.keyStore.location",
                "secureClientPort needs the server's key and certificate (a PEM file)",
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
                "sslQuorum=true needs this member's key and certificate (a PEM file)",
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
        let store =
            |what: &str, location: &Option<String>, ty: &Option<String>, pw: &Option<String>| {
                location
                    .as_deref()
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        check_store_type(prefix, what, l, ty.as_deref())?;
                        Ok(StoreFile {
                            location: PathBuf::from(l),
                            password: Secret(pw.clone().unwrap_or_default()),
                        })
                    })
                    .transpose()
            };
        let key_store = store(
            "keyStore",
            &self.key_location,
            &self.key_type,
            &self.key_password,
        )?;
        let trust_store = store(
            "trustStore",
            &self.trust_location,
            &self.trust_type,
            &self.trust_password,
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
        Ok(TlsSettings {
            prefix,
            key_store,
            trust_store,
            client_auth,
            hostname_verification,
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

/// Accepts a PEM store: `type` PEM, or no type and a `.pem` file name (Apache's
/// inference). Anything else is refused, naming the key to change.
fn check_store_type(
    prefix: &str,
    what: &str,
    location: &str,
    store_type: Option<&str>,
) -> Result<(), ConfigError> {
    let convert = "only PEM stores are supported: convert it to PEM (private key and \
                   certificate chain in one file for a key store, CA certificates for a \
                   trust store), e.g. with `keytool -importkeystore -deststoretype PKCS12` \
                   then `openssl pkcs12 -nodes`, and set the type to PEM";
    match store_type.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(()),
        Some(t) => Err(ConfigError::Invalid {
            key: format!("{prefix}.{what}.type"),
            value: t.to_string(),
            reason: format!("{t} stores are not supported; {convert}"),
        }),
        None => {
            let lower = location.to_ascii_lowercase();
            if lower.ends_with(".pem") {
                Ok(())
            } else {
                let found = [".jks", ".p12", ".pfx", ".bcfks"]
                    .iter()
                    .find(|ext| lower.ends_with(*ext));
                let reason = match found {
                    Some(ext) => format!("a {ext} store is not supported; {convert}"),
                    None => format!(
                        "cannot tell the store type from the file name (Apache ZooKeeper \
                         infers it from .pem, .jks, .p12, .pfx): set {prefix}.{what}.type=PEM"
                    ),
                };
                Err(ConfigError::Invalid {
                    key: format!("{prefix}.{what}.location"),
                    value: location.to_string(),
                    reason,
                })
            }
        }
    }
}
