//! The SASL keys: the JAAS file and its section names, `authProvider.N`,
//! `zookeeper.superUser`, `enforce.auth.*` and the `quorum.auth.*` keys of the links
//! between members, as ZooKeeper 3.8 names them (system properties, which zoo.cfg may
//! give with or without the `zookeeper.` prefix; `quorum.auth.*` are zoo.cfg keys).

use std::path::PathBuf;

use super::{invalid, parse_bool, ConfigError};

/// `zookeeper.sasl.serverconfig`'s default: the JAAS section of the client port.
pub const DEFAULT_SERVER_SECTION: &str = "Server";
/// `quorum.auth.server.saslLoginContext`'s default.
pub const DEFAULT_QUORUM_SERVER_SECTION: &str = "QuorumServer";
/// `quorum.auth.learner.saslLoginContext`'s default.
pub const DEFAULT_QUORUM_LEARNER_SECTION: &str = "QuorumLearner";

/// SASL settings of the client port and of the peer links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslSettings {
    /// `java.security.auth.login.config`: the JAAS file.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the client port's JAAS section, when set
    /// (otherwise [`DEFAULT_SERVER_SECTION`]); setting it makes the section required.
    pub server_section: Option<String>,
    /// `authProvider.N=…SASLAuthenticationProvider`: `sasl:` ACLs are valid.
    pub provider: bool,
    /// `zookeeper.superUser` (and `zookeeper.superUser.*`): SASL users that are super.
    pub super_users: Vec<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password of user
    /// `super`, in place of the JAAS file's.
    pub super_password: Option<String>,
    /// `zookeeper.allowSaslFailedClients`: keep a client whose SASL failed connected.
    pub allow_failed_clients: bool,
    /// `zookeeper.enforce.auth.enabled`.
    pub enforce_auth: bool,
    /// `zookeeper.enforce.auth.schemes`, comma separated.
    pub enforce_schemes: Vec<String>,
    /// `quorum.auth.enableSasl`.
    pub quorum_enable: bool,
    /// `quorum.auth.learnerRequireSasl`.
    pub quorum_learner_require: bool,
    /// `quorum.auth.serverRequireSasl`.
    pub quorum_server_require: bool,
    /// `quorum.auth.server.saslLoginContext`.
    pub quorum_server_section: Option<String>,
    /// `quorum.auth.learner.saslLoginContext`.
    pub quorum_learner_section: Option<String>,
}

impl SaslSettings {
    /// Takes `prop` (the key without `zookeeper.`) if it is a SASL key; `key` is the
    /// key as written, for errors.
    pub(super) fn take(&mut self, key: &str, prop: &str, value: &str) -> Result<bool, ConfigError> {
        match prop {
            "java.security.auth.login.config" => self.jaas_file = Some(PathBuf::from(value)),
            "sasl.serverconfig" => self.server_section = Some(value.to_string()),
            "SASLAuthenticationProvider.superPassword" => {
                self.super_password = Some(value.to_string())
            }
            "allowSaslFailedClients" => self.allow_failed_clients = parse_bool(key, value)?,
            "enforce.auth.enabled" => self.enforce_auth = parse_bool(key, value)?,
            "enforce.auth.schemes" => {
                self.enforce_schemes = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            // ZooKeeper 3.8's older switch: sasl required, whatever enforce.auth.* say.
            "sessionRequireClientSASLAuth" => {
                if parse_bool(key, value)? {
                    self.enforce_auth = true;
                    self.enforce_schemes = vec!["sasl".to_string()];
                }
            }
            "quorum.auth.enableSasl" => self.quorum_enable = parse_bool(key, value)?,
            "quorum.auth.learnerRequireSasl" => {
                self.quorum_learner_require = parse_bool(key, value)?
            }
            "quorum.auth.serverRequireSasl" => self.quorum_server_require = parse_bool(key, value)?,
            "quorum.auth.server.saslLoginContext" => {
                self.quorum_server_section = Some(value.to_string())
            }
            "quorum.auth.learner.saslLoginContext" => {
                self.quorum_learner_section = Some(value.to_string())
            }
            _ if prop == "superUser" || prop.starts_with("superUser.") => {
                self.super_users.push(value.to_string())
            }
            _ if prop.starts_with("authProvider.") => {
                if value.ends_with(".SASLAuthenticationProvider") {
                    self.provider = true;
                } else if !value.ends_with(".X509AuthenticationProvider")
                    && !value.ends_with(".DigestAuthenticationProvider")
                    && !value.ends_with(".IPAuthenticationProvider")
                {
                    tracing::warn!(
                        key,
                        value,
                        "authentication provider not available here; ignored"
                    );
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the keys together, as ZooKeeper does at start-up: `quorum.auth.*Require`
    /// only with `quorum.auth.enableSasl`, and `enforce.auth.enabled` only with schemes.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (set, key) in [
            (
                self.quorum_learner_require,
                "quorum.auth.learnerRequireSasl",
            ),
            (self.quorum_server_require, "quorum.auth.serverRequireSasl"),
        ] {
            if set && !self.quorum_enable {
                return Err(invalid(
                    key,
                    "true",
                    format!("quorum.auth.enableSasl is disabled, so cannot enable {key}"),
                ));
            }
        }
        if self.enforce_auth && self.enforce_schemes.is_empty() {
            return Err(invalid(
                "enforce.auth.enabled",
                "true",
                "zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be configured",
            ));
        }
        for scheme in &self.enforce_schemes {
            let available = match scheme.as_str() {
                "ip" | "digest" | "x509" => true,
                "sasl" => self.provider,
                _ => false,
            };
            if !available {
                return Err(invalid(
                    "enforce.auth.schemes",
                    scheme,
                    format!("Authentication scheme {scheme} is not available."),
                ));
            }
        }
        Ok(())
    }

    /// Whether clients must authenticate with SASL (`enforce.auth.schemes` has `sasl`).
    pub fn sasl_required(&self) -> bool {
        self.enforce_auth && self.enforce_schemes.iter().any(|s| s == "sasl")
    }

    /// The client port's JAAS section name.
    pub fn server_section(&self) -> &str {
        self.server_section
            .as_deref()
            .unwrap_or(DEFAULT_SERVER_SECTION)
    }

    /// The accepting side's JAAS section for peer links.
    pub fn quorum_server_section(&self) -> &str {
        self.quorum_server_section
            .as_deref()
            .unwrap_or(DEFAULT_QUORUM_SERVER_SECTION)
    }

    /// The connecting side's JAAS section for peer links.
    pub fn quorum_learner_section(&self) -> &str {
        self.quorum_learner_section
            .as_deref()
            .unwrap_or(DEFAULT_QUORUM_LEARNER_SECTION)
    }
}
