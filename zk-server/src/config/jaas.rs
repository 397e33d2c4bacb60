//! JAAS login configuration files (`java.security.auth.login.config`), as Java's
//! `ConfigFile` reads them:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! Sections of login modules, each module a class, a flag and `key=value` options
//! ending with `;`; values are words or quoted strings; `//`, `/* */` and `#`
//! comments. ZooKeeper reads DIGEST-MD5 users (`user_NAME="password"`) from the
//! server's sections and `username`/`password` from a client's or learner's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The key that names the file (a Java system property).
pub const JAAS_KEY: &str = "java.security.auth.login.config";

/// Why a JAAS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    /// The file could not be read.
    #[error("{JAAS_KEY}: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a JAAS configuration.
    #[error("{JAAS_KEY}: {path}, line {line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A section that the configuration needs is not in the file.
    #[error("{JAAS_KEY}: no JAAS configuration section named '{section}' was found in '{path}' (needed by {needed_by})")]
    MissingSection {
        /// The file.
        path: PathBuf,
        /// The section.
        section: String,
        /// The key (or feature) that needs it.
        needed_by: String,
    },
    /// A section lacks an option it needs.
    #[error("{JAAS_KEY}: section '{section}' of '{path}' has no {option} option")]
    MissingOption {
        /// The file.
        path: PathBuf,
        /// The section.
        section: String,
        /// The option.
        option: String,
    },
}

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class (`org.apache.zookeeper.server.auth.DigestLoginModule`).
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// Its options, in order.
    pub options: Vec<(String, String)>,
}

/// A parsed JAAS file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    path: PathBuf,
    sections: Vec<(String, Vec<LoginModule>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
    Equals,
}

impl JaasConfig {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<JaasConfig, JaasError> {
        let text = std::fs::read_to_string(path).map_err(|source| JaasError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        JaasConfig::parse(path, &text)
    }

    /// Parses `text` (the contents of `path`, named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<JaasConfig, JaasError> {
        let tokens = tokenize(path, text)?;
        let mut sections: Vec<(String, Vec<LoginModule>)> = Vec::new();
        let mut at = 0;
        let syntax = |line: usize, message: String| JaasError::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        };
        let end = tokens.last().map_or(1, |(l, _)| *l);
        let line_of = |i: usize| tokens.get(i).map_or(end, |(l, _)| *l);
        while at < tokens.len() {
            let Some((line, Token::Word(name))) = tokens.get(at).cloned() else {
                return Err(syntax(line_of(at), "expected a section name".into()));
            };
            at += 1;
            if tokens.get(at).map(|(_, t)| t) != Some(&Token::Open) {
                return Err(syntax(line, format!("expected '{{' after section {name}")));
            }
            at += 1;
            let mut modules = Vec::new();
            loop {
                match tokens.get(at) {
                    Some((_, Token::Close)) => {
                        at += 1;
                        break;
                    }
                    Some((_, Token::Word(class))) => {
                        let class = class.clone();
                        let flag = match tokens.get(at + 1) {
                            Some((_, Token::Word(f)))
                                if ["required", "requisite", "sufficient", "optional"]
                                    .contains(&f.to_ascii_lowercase().as_str()) =>
                            {
                                f.to_ascii_lowercase()
                            }
                            _ => {
                                return Err(syntax(
                                    line_of(at + 1),
                                    format!(
                                        "expected required, requisite, sufficient or optional after {class}"
                                    ),
                                ))
                            }
                        };
                        at += 2;
                        let mut options = Vec::new();
                        loop {
                            match tokens.get(at) {
                                Some((_, Token::Semi)) => {
                                    at += 1;
                                    break;
                                }
                                Some((l, Token::Word(key))) => {
                                    if tokens.get(at + 1).map(|(_, t)| t) != Some(&Token::Equals) {
                                        return Err(syntax(
                                            *l,
                                            format!("expected '=' after {key}"),
                                        ));
                                    }
                                    let value = match tokens.get(at + 2) {
                                        Some((_, Token::Word(v) | Token::Quoted(v))) => v.clone(),
                                        _ => {
                                            return Err(syntax(
                                                *l,
                                                format!("expected a value for {key}"),
                                            ))
                                        }
                                    };
                                    options.push((key.clone(), value));
                                    at += 3;
                                }
                                _ => {
                                    return Err(syntax(
                                        line_of(at),
                                        format!("expected an option or ';' in section {name}"),
                                    ))
                                }
                            }
                        }
                        modules.push(LoginModule {
                            class,
                            flag,
                            options,
                        });
                    }
                    _ => {
                        return Err(syntax(
                            line_of(at),
                            format!("expected a login module or '}}' in section {name}"),
                        ))
                    }
                }
            }
            if tokens.get(at).map(|(_, t)| t) != Some(&Token::Semi) {
                return Err(syntax(
                    line_of(at),
                    format!("expected ';' after the '}}' of section {name}"),
                ));
            }
            at += 1;
            match sections.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => existing.extend(modules),
                None => sections.push((name, modules)),
            }
        }
        Ok(JaasConfig {
            path: path.to_path_buf(),
            sections,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The login modules of section `name`, if the file has it.
    pub fn section(&self, name: &str) -> Option<&[LoginModule]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.as_slice())
    }

    /// The DIGEST-MD5 users of a server section: every `user_NAME="password"` option
    /// (ZooKeeper's `SaslServerCallbackHandler`). `needed_by` names the key that asked
    /// for the section, for the error when it is missing.
    pub fn digest_users(
        &self,
        section: &str,
        needed_by: &str,
    ) -> Result<BTreeMap<String, String>, JaasError> {
        let modules = self.require(section, needed_by)?;
        Ok(modules
            .iter()
            .flat_map(|m| m.options.iter())
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .collect())
    }

    /// The `username` and `password` of a client or learner section.
    pub fn digest_login(
        &self,
        section: &str,
        needed_by: &str,
    ) -> Result<(String, String), JaasError> {
        let modules = self.require(section, needed_by)?;
        let option = |name: &str| {
            modules
                .iter()
                .flat_map(|m| m.options.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| JaasError::MissingOption {
                    path: self.path.clone(),
                    section: section.to_string(),
                    option: name.to_string(),
                })
        };
        Ok((option("username")?, option("password")?))
    }

    fn require(&self, section: &str, needed_by: &str) -> Result<&[LoginModule], JaasError> {
        self.section(section)
            .ok_or_else(|| JaasError::MissingSection {
                path: self.path.clone(),
                section: section.to_string(),
                needed_by: needed_by.to_string(),
            })
    }
}

fn tokenize(path: &Path, text: &str) -> Result<Vec<(usize, Token)>, JaasError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let syntax = |line: usize, message: &str| JaasError::Syntax {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '\n' {
                        line += 1;
                    } else if c == '*' && chars.peek() == Some(&'/') {
                        chars.next();
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(syntax(start, "unterminated /* comment"));
                }
            }
            '{' => out.push((line, Token::Open)),
            '}' => out.push((line, Token::Close)),
            ';' => out.push((line, Token::Semi)),
            '=' => out.push((line, Token::Equals)),
            '"' => {
                let start = line;
                let mut value = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(next) = chars.next() {
                                value.push(next);
                            }
                        }
                        '\n' => {
                            line += 1;
                            value.push(c);
                        }
                        _ => value.push(c),
                    }
                }
                if !closed {
                    return Err(syntax(start, "unterminated quoted string"));
                }
                out.push((start, Token::Quoted(value)));
            }
            c if is_word(c) => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !is_word(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push((line, Token::Word(word)));
            }
            other => return Err(syntax(line, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '-' | '*' | '/' | ':' | '@')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
// ZooKeeper's own example
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"
       user_bob="bob\"secret";
};
/* the client side */
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username=bob
       password="bobsecret";
};
QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_zk="q"; };
"#;

    #[test]
    fn reads_server_users_and_client_logins() {
        let jaas = JaasConfig::parse(Path::new("/etc/jaas.conf"), GOOD).unwrap();
        let users = jaas.digest_users("Server", JAAS_KEY).unwrap();
        assert_eq!(users.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.get("bob").map(String::as_str), Some("bob\"secret"));
        assert_eq!(users.len(), 2);
        assert_eq!(
            jaas.digest_login("Client", JAAS_KEY).unwrap(),
            ("bob".to_string(), "bobsecret".to_string())
        );
        assert_eq!(
            jaas.section("QuorumServer").unwrap()[0].class,
            "org.apache.zookeeper.server.auth.DigestLoginModule"
        );
    }

    #[test]
    fn a_missing_section_names_the_file_and_the_key() {
        let jaas =
            JaasConfig::parse(Path::new("/etc/jaas.conf"), "Client { m required; };").unwrap();
        let err = jaas
            .digest_users("Server", "zookeeper.sasl.serverconfig")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'Server'"), "{err}");
        assert!(err.contains("/etc/jaas.conf"), "{err}");
        assert!(err.contains("zookeeper.sasl.serverconfig"), "{err}");
        let err = jaas.digest_login("Client", "x").unwrap_err().to_string();
        assert!(err.contains("username"), "{err}");
    }

    #[test]
    fn malformed_files_are_refused_with_file_and_line() {
        for (text, line) in [
            ("Server {\n m required\n user_a=\"x\";\n", 3),
            ("Server {\n m required user_a=\"x\" };", 2),
            ("Server {\n m maybe;\n};", 2),
            ("Server\n m required;", 1),
            ("Server {\n m required\n user_a=;\n};", 3),
            ("Server {\n m required\n user_a=\"x;\n};", 3),
            ("Server { m required; }", 1),
        ] {
            let err = JaasConfig::parse(Path::new("/j.conf"), text).unwrap_err();
            match &err {
                JaasError::Syntax { path, line: l, .. } => {
                    assert_eq!(path, Path::new("/j.conf"));
                    assert_eq!(*l, line, "{text:?}: {err}");
                }
                other => panic!("{text:?}: {other}"),
            }
            assert!(err.to_string().contains(JAAS_KEY));
        }
    }

    #[test]
    fn an_empty_file_has_no_sections() {
        let jaas = JaasConfig::parse(Path::new("/j"), "").unwrap();
        assert!(jaas.section("Server").is_none());
    }

    #[test]
    fn an_unreadable_file_names_itself() {
        let err = JaasConfig::load(Path::new("/nonexistent/jaas.conf")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/jaas.conf"));
    }
}
