//! The SASL credentials a server runs with, read once from the JAAS file at start-up
//! (`java.security.auth.login.config`): the client port's DIGEST-MD5 users (section
//! `Server`, or `zookeeper.sasl.serverconfig`), and for `quorum.auth.enableSasl` the
//! users a member accepts peers as (`QuorumServer`) and the login it presents to its
//! peers (`QuorumLearner`).
//!
//! As in ZooKeeper 3.8, a JAAS file without the client port's section leaves SASL off
//! on the client port (the `sasl` request is answered with a null token), unless the
//! section was asked for by name or `enforce.auth.schemes` requires `sasl`: then the
//! server refuses to start, naming the file. A malformed or unreadable file always
//! stops it.

use std::collections::BTreeMap;

use crate::config::jaas::{JaasConfig, JaasError, JAAS_KEY};
use crate::config::SaslSettings;

/// What the server authenticates with.
#[derive(Debug, Clone, Default)]
pub struct SaslLogins {
    /// The client port's users (name → password); None: SASL is off there.
    client_users: Option<BTreeMap<String, String>>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`.
    super_password: Option<String>,
    /// The peer links' credentials, with `quorum.auth.enableSasl` in an ensemble.
    pub quorum: Option<QuorumLogins>,
}

/// A member's credentials for its peer links.
#[derive(Clone)]
pub struct QuorumLogins {
    /// The peers it accepts (`QuorumServer`'s `user_NAME="password"`).
    pub users: BTreeMap<String, String>,
    /// Who it is to its peers (`QuorumLearner`'s `username` and `password`).
    pub login: (String, String),
}

impl std::fmt::Debug for QuorumLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumLogins")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("login", &self.login.0)
            .finish()
    }
}

/// Why the SASL set-up could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SaslSetupError {
    /// The JAAS file is unreadable, malformed or lacks a needed section.
    #[error(transparent)]
    Jaas(#[from] JaasError),
    /// `quorum.auth.enableSasl=true` without a JAAS file.
    #[error("quorum.auth.enableSasl=true needs a JAAS file ({JAAS_KEY}) with QuorumServer and QuorumLearner sections")]
    NoJaasForQuorum,
}

impl SaslLogins {
    /// Reads the JAAS file `settings` name, if any; `ensemble`: this server has peers
    /// (quorum SASL applies only then).
    pub fn load(settings: &SaslSettings, ensemble: bool) -> Result<SaslLogins, SaslSetupError> {
        let quorum_wanted = settings.quorum_enable && ensemble;
        let Some(path) = &settings.jaas_file else {
            if quorum_wanted {
                return Err(SaslSetupError::NoJaasForQuorum);
            }
            return Ok(SaslLogins::default());
        };
        let jaas = JaasConfig::load(path)?;
        let section = settings.server_section();
        let client_users = if jaas.section(section).is_some() {
            Some(jaas.digest_users(section, JAAS_KEY)?)
        } else if settings.server_section.is_some() {
            return Err(missing(&jaas, section, "zookeeper.sasl.serverconfig"));
        } else if settings.sasl_required() {
            return Err(missing(&jaas, section, "enforce.auth.schemes=sasl"));
        } else {
            tracing::info!(
                file = %path.display(),
                section,
                "no JAAS section for the client port; SASL is off there"
            );
            None
        };
        let quorum = if quorum_wanted {
            Some(QuorumLogins {
                users: jaas.digest_users(
                    settings.quorum_server_section(),
                    "quorum.auth.enableSasl (quorum.auth.server.saslLoginContext)",
                )?,
                login: jaas.digest_login(
                    settings.quorum_learner_section(),
                    "quorum.auth.enableSasl (quorum.auth.learner.saslLoginContext)",
                )?,
            })
        } else {
            None
        };
        Ok(SaslLogins {
            client_users,
            super_password: settings.super_password.clone(),
            quorum,
        })
    }

    /// Whether the client port runs SASL (the JAAS file has its section).
    pub fn client_port_enabled(&self) -> bool {
        self.client_users.is_some()
    }

    /// A client-port user's password (`super`'s from `superPassword` when set, as
    /// ZooKeeper's `SaslServerCallbackHandler` does).
    pub fn client_password(&self, user: &str) -> Option<String> {
        let users = self.client_users.as_ref()?;
        if user == "super" {
            if let Some(pw) = &self.super_password {
                return Some(pw.clone());
            }
        }
        users.get(user).cloned()
    }

    /// A client-port logins table for tests and in-process servers.
    pub fn with_client_users(users: BTreeMap<String, String>) -> SaslLogins {
        SaslLogins {
            client_users: Some(users),
            ..SaslLogins::default()
        }
    }
}

fn missing(jaas: &JaasConfig, section: &str, needed_by: &str) -> SaslSetupError {
    SaslSetupError::Jaas(JaasError::MissingSection {
        path: jaas.path().to_path_buf(),
        section: section.to_string(),
        needed_by: needed_by.to_string(),
    })
}

/// A fresh nonce for one exchange: 256 random bits, hex.
pub fn nonce() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn settings(jaas: &str) -> (tempfile::TempDir, SaslSettings) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jaas.conf");
        std::fs::write(&path, jaas).unwrap();
        let s = SaslSettings {
            jaas_file: Some(path),
            ..SaslSettings::default()
        };
        (dir, s)
    }

    const FULL: &str = r#"
Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_super="s" user_bob="b"; };
QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_zk="q"; };
QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required username="zk" password="q"; };
"#;

    #[test]
    fn reads_every_section() {
        let (_d, mut s) = settings(FULL);
        s.quorum_enable = true;
        s.super_password = Some("override".into());
        let logins = SaslLogins::load(&s, true).unwrap();
        assert_eq!(logins.client_password("bob").as_deref(), Some("b"));
        assert_eq!(logins.client_password("super").as_deref(), Some("override"));
        assert_eq!(logins.client_password("eve"), None);
        let q = logins.quorum.unwrap();
        assert_eq!(q.login, ("zk".to_string(), "q".to_string()));
        assert_eq!(q.users.get("zk").map(String::as_str), Some("q"));
        // Standalone: no quorum logins.
        assert!(SaslLogins::load(&s, false).unwrap().quorum.is_none());
    }

    #[test]
    fn a_file_without_server_section_leaves_sasl_off_unless_required() {
        let (_d, mut s) = settings("Client { m required username=a password=b; };");
        let logins = SaslLogins::load(&s, false).unwrap();
        assert!(!logins.client_port_enabled());
        s.enforce_auth = true;
        s.enforce_schemes = vec!["sasl".into()];
        let err = SaslLogins::load(&s, false).unwrap_err().to_string();
        assert!(
            err.contains("'Server'") && err.contains("jaas.conf"),
            "{err}"
        );
        s.enforce_auth = false;
        s.server_section = Some("ZkServer".into());
        let err = SaslLogins::load(&s, false).unwrap_err().to_string();
        assert!(
            err.contains("'ZkServer'") && err.contains("sasl.serverconfig"),
            "{err}"
        );
    }

    #[test]
    fn quorum_sasl_needs_both_quorum_sections() {
        let (_d, mut s) =
            settings("QuorumServer { m required user_zk=\"q\"; };\nServer { m required; };");
        s.quorum_enable = true;
        let err = SaslLogins::load(&s, true).unwrap_err().to_string();
        assert!(err.contains("'QuorumLearner'"), "{err}");
        s.jaas_file = None;
        assert!(matches!(
            SaslLogins::load(&s, true),
            Err(SaslSetupError::NoJaasForQuorum)
        ));
    }

    #[test]
    fn malformed_or_missing_files_stop_the_server() {
        let (_d, s) = settings("Server { m required user_a=\"x\" ");
        assert!(SaslLogins::load(&s, false).is_err());
        let s = SaslSettings {
            jaas_file: Some(PathBuf::from("/nonexistent/jaas.conf")),
            ..SaslSettings::default()
        };
        let err = SaslLogins::load(&s, false).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/jaas.conf"), "{err}");
    }
}
