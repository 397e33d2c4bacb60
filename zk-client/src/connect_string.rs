//! Connect strings: `host:port[,host:port…][/chroot]`, as every ZooKeeper client takes.

use crate::error::{Error, Result};

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` of each server (port 2181 when omitted).
    pub hosts: Vec<String>,
    /// The chroot every path is relative to (`None` for `/`).
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses `s`.
    pub fn parse(s: &str) -> Result<ConnectString> {
        let (hosts, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let hosts: Vec<String> = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    h.to_string()
                } else {
                    format!("{h}:2181")
                }
            })
            .collect();
        if hosts.is_empty() {
            return Err(Error::BadArguments(format!(
                "no hosts in connect string {s:?}"
            )));
        }
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                zk_proto::validate_path(c).map_err(|e| Error::InvalidPath(e.to_string()))?;
                Some(c.to_string())
            }
        };
        Ok(ConnectString { hosts, chroot })
    }

    /// The server path for a client path.
    pub fn to_server(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// The client path for a server path (paths outside the chroot are returned as is).
    pub fn to_client(&self, path: &str) -> String {
        match &self.chroot {
            None => path.to_string(),
            Some(root) => match path.strip_prefix(root.as_str()) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => path.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let c = ConnectString::parse("a:1,b, c:3/app/x").unwrap();
        assert_eq!(c.hosts, vec!["a:1", "b:2181", "c:3"]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(c.to_server("/"), "/app/x");
        assert_eq!(c.to_server("/k"), "/app/x/k");
        assert_eq!(c.to_client("/app/x/k"), "/k");
        assert_eq!(c.to_client("/app/x"), "/");
        assert_eq!(ConnectString::parse("h:1/").unwrap().chroot, None);
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("h:1/bad/").is_err());
    }
}
