//! Following the ensemble's configuration, as Curator's `EnsembleTracker` does: the
//! dynamic configuration ZooKeeper publishes in `/zookeeper/config` ([`EnsembleConfig`])
//! and the task behind [`crate::ClientBuilder::follow_ensemble`], which reads it (with a
//! watch) after every connection and on every change, and hands the servers' client
//! addresses to [`crate::Client::update_server_list`].
//!
//! ```
//! use zk_client::ensemble::EnsembleConfig;
//! let config = EnsembleConfig::parse(
//!     b"server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
//!       server.2=10.0.0.2:2888:3888:participant;10.0.0.2:2181\n\
//!       server.3=10.0.0.3:2888:3888:observer\n\
//!       version=100000003",
//! )?;
//! assert_eq!(config.version, Some(0x1_0000_0003));
//! // A wildcard client address stands for the server's host; server 3 takes no clients.
//! assert_eq!(config.client_hosts(), vec!["10.0.0.1:2181", "10.0.0.2:2181"]);
//! # Ok::<(), zk_client::Error>(())
//! ```

use futures::StreamExt;
use tracing::{debug, info, Instrument};
use zk_proto::EventType;

use crate::client::WeakClient;
use crate::error::{Error, Result};
use crate::state::StateChanges;

/// A member's part in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerRole {
    /// A voting member.
    Participant,
    /// A non-voting member that serves clients.
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigServer {
    /// `N`.
    pub id: u64,
    /// The host of its (first) quorum address, without IPv6 brackets.
    pub host: String,
    /// Participant unless the line says `observer`.
    pub role: ServerRole,
    /// Where clients reach it, `host:port` (IPv6 hosts in brackets), a wildcard host
    /// (`0.0.0.0`, `::`, or none given) replaced by [`ConfigServer::host`] as Curator
    /// does; `None` when the line names no client port.
    pub client: Option<String>,
    /// Where TLS clients reach it (the third `;` part, ZooKeeper 3.6+), the same way.
    pub secure_client: Option<String>,
}

/// The ensemble's dynamic configuration, as in `/zookeeper/config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsembleConfig {
    /// The `server.N` lines, in the order given.
    pub servers: Vec<ConfigServer>,
    /// The `version=` line (hexadecimal: the zxid that made the configuration).
    pub version: Option<i64>,
}

impl EnsembleConfig {
    /// Parses configuration data: Java properties lines (`#` and `!` comments, blank
    /// lines skipped); `server.N` and `version` read, other keys (`group.N`, `weight.N`)
    /// ignored. A line that cannot be read fails the whole parse, as it fails
    /// ZooKeeper's `QuorumMaj` (a configuration half understood must not move clients).
    pub fn parse(data: &[u8]) -> Result<EnsembleConfig> {
        let text = std::str::from_utf8(data)
            .map_err(|e| Error::Protocol(format!("ensemble config is not UTF-8: {e}")))?;
        let mut config = EnsembleConfig::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if key == "version" {
                let version = i64::from_str_radix(value, 16)
                    .map_err(|_| bad(line, "the version is not hexadecimal"))?;
                config.version = Some(version);
            } else if let Some(id) = key.strip_prefix("server.") {
                let id = id.parse().map_err(|_| bad(line, "bad server id"))?;
                config
                    .servers
                    .push(parse_server(id, value).map_err(|why| bad(line, why))?);
            }
        }
        Ok(config)
    }

    /// The servers' client addresses (`host:port`), servers without one left out, as
    /// Curator's `EnsembleTracker.configToConnectionString` makes them.
    pub fn client_hosts(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter_map(|s| s.client.clone())
            .collect()
    }

    /// The servers' secure client addresses (`host:port`), servers without one left out.
    pub fn secure_client_hosts(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter_map(|s| s.secure_client.clone())
            .collect()
    }
}

fn bad(line: &str, why: &str) -> Error {
    Error::Protocol(format!("ensemble config line {line:?}: {why}"))
}

/// The value of a `server.N` line (ZooKeeper's `QuorumServer.initializeWithAddressString`).
fn parse_server(id: u64, value: &str) -> std::result::Result<ConfigServer, &'static str> {
    let parts: Vec<&str> = value.split(';').collect();
    if parts.len() > 3 {
        return Err("more than three ';' parts");
    }
    let mut host = None;
    let mut role = ServerRole::Participant;
    // Several quorum addresses may be given, `|` separated (ZooKeeper 3.6+).
    for address in parts[0].split('|') {
        let fields = host_and_port(address.trim())?;
        if !(3..=4).contains(&fields.len()) {
            return Err("the server part is not host:port:port[:role]");
        }
        for port in &fields[1..3] {
            port.parse::<u16>().map_err(|_| "bad quorum port")?;
        }
        if let Some(r) = fields.get(3) {
            role = match r.to_ascii_lowercase().as_str() {
                "participant" => ServerRole::Participant,
                "observer" => ServerRole::Observer,
                _ => return Err("the role is neither participant nor observer"),
            };
        }
        host.get_or_insert_with(|| fields[0].to_string());
    }
    let host = host.ok_or("no server address")?;
    let client = |part: Option<&&str>| -> std::result::Result<Option<String>, &'static str> {
        let part = part.map(|p| p.trim()).unwrap_or_default();
        if part.is_empty() {
            return Ok(None);
        }
        let fields = host_and_port(part)?;
        let (client_host, port) = match fields.as_slice() {
            [port] => ("0.0.0.0", *port),
            [client_host, port] => (*client_host, *port),
            _ => return Err("the client part is not [host:]port"),
        };
        let port: u16 = port.parse().map_err(|_| "bad client port")?;
        let client_host = if is_wildcard(client_host) {
            host.as_str()
        } else {
            client_host
        };
        Ok(Some(host_port(client_host, port)))
    };
    Ok(ConfigServer {
        id,
        role,
        client: client(parts.get(1))?,
        secure_client: client(parts.get(2))?,
        host,
    })
}

/// Splits `host:port[:…]`, an IPv6 host in brackets (ZooKeeper's
/// `ConfigUtils.getHostAndPort`); the host comes back without its brackets.
fn host_and_port(s: &str) -> std::result::Result<Vec<&str>, &'static str> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("'[' without ']'")?;
        let after = after.strip_prefix(':').ok_or("no port after ']'")?;
        if after.is_empty() {
            return Err("no port after ']:'");
        }
        let mut fields = vec![host];
        fields.extend(after.split(':'));
        Ok(fields)
    } else {
        Ok(s.split(':').collect())
    }
}

/// Whether `host` is a wildcard (any local) address, which Curator replaces with the
/// server's own host.
fn is_wildcard(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
}

/// `host:port`, an IPv6 host in brackets (as connect strings take it).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The servers a client should use from configuration `data`: the client addresses
/// (the secure ones for a TLS client); `None` when there are none to follow (an empty
/// configuration, as a standalone server publishes, or one without client ports).
pub(crate) fn hosts_to_follow(data: &[u8], secure: bool) -> Result<Option<Vec<String>>> {
    let config = EnsembleConfig::parse(data)?;
    let hosts = if secure {
        config.secure_client_hosts()
    } else {
        config.client_hosts()
    };
    Ok((!hosts.is_empty()).then_some(hosts))
}

/// The ensemble tracker: reads `/zookeeper/config` with a watch after every
/// connection (a new session's too) and after every change, and updates the client's
/// server list from it. Holds the client weakly: it ends when the client is dropped or
/// its session ends for good.
pub(crate) async fn track(client: WeakClient, mut states: StateChanges, secure: bool) {
    let span = tracing::info_span!("ensemble_tracker");
    async move {
        let mut read_now = true;
        let mut watcher = None;
        loop {
            if read_now {
                read_now = false;
                let Some(zk) = client.upgrade() else {
                    return;
                };
                let (read, watch) = zk.get_config_and_watch();
                drop(zk);
                match read.await {
                    Ok((data, stat)) => {
                        watcher = Some(watch);
                        follow(&client, &data, stat.mzxid, secure).await;
                    }
                    // Read again on the next connection (a dropped one, mostly).
                    Err(e) => {
                        debug!(error = %e, "could not read the ensemble config");
                        watcher = None;
                    }
                }
            }
            tokio::select! {
                fired = async { watcher.as_mut().expect("guarded").await }, if watcher.is_some() => {
                    watcher = None;
                    match fired {
                        Ok(event) if event.event_type == EventType::NodeDataChanged => read_now = true,
                        Ok(event) => debug!(?event, "ensemble config watch"),
                        // The session ended (a renewed one is read when connected).
                        Err(e) => debug!(error = %e, "ensemble config watch ended"),
                    }
                }
                state = states.next() => match state {
                    None => return,
                    Some(state) if state.is_connected() => read_now = true,
                    Some(_) => {}
                },
            }
        }
    }
    .instrument(span)
    .await;
}

/// Hands the client addresses of configuration `data` to the session.
async fn follow(client: &WeakClient, data: &[u8], zxid: i64, secure: bool) {
    let hosts = match hosts_to_follow(data, secure) {
        Ok(Some(hosts)) => hosts,
        Ok(None) => {
            debug!(
                zxid,
                "the ensemble config names no client addresses; not followed"
            );
            return;
        }
        Err(e) => {
            info!(error = %e, "ignoring an ensemble config that cannot be read");
            return;
        }
    };
    let Some(zk) = client.upgrade() else {
        return;
    };
    let update = zk.update_server_hosts(hosts.clone());
    drop(zk);
    match update.await {
        Ok(moving) => debug!(?hosts, zxid, moving, "followed the ensemble config"),
        Err(e) => debug!(error = %e, "could not update the server list"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(config: &EnsembleConfig, id: u64) -> &ConfigServer {
        config.servers.iter().find(|s| s.id == id).unwrap()
    }

    #[test]
    fn a_participant_with_a_wildcard_client_address_is_reached_at_its_host() {
        let c = EnsembleConfig::parse(b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181")
            .unwrap();
        assert_eq!(
            c.servers,
            vec![ConfigServer {
                id: 1,
                host: "127.0.0.1".into(),
                role: ServerRole::Participant,
                client: Some("127.0.0.1:2181".into()),
                secure_client: None,
            }]
        );
        assert_eq!(c.version, None);
        assert_eq!(c.client_hosts(), vec!["127.0.0.1:2181"]);
    }

    #[test]
    fn a_client_port_alone_means_the_servers_host() {
        let c = EnsembleConfig::parse(b"server.2=zk2.example.com:2888:3888;2181").unwrap();
        let s = server(&c, 2);
        assert_eq!(s.role, ServerRole::Participant);
        assert_eq!(s.client.as_deref(), Some("zk2.example.com:2181"));
        // With a role and an explicit client host, that host is kept.
        let c = EnsembleConfig::parse(b"server.3=10.0.0.3:2888:3888:participant;zk3:2182").unwrap();
        assert_eq!(server(&c, 3).client.as_deref(), Some("zk3:2182"));
    }

    #[test]
    fn observers_are_read_and_serve_clients_too() {
        let c = EnsembleConfig::parse(
            b"server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n\
              server.4=10.0.0.4:2888:3888:OBSERVER;10.0.0.4:2181\n",
        )
        .unwrap();
        assert_eq!(server(&c, 4).role, ServerRole::Observer);
        assert_eq!(c.client_hosts(), vec!["10.0.0.1:2181", "10.0.0.4:2181"]);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets_in_host_port() {
        let c = EnsembleConfig::parse(
            b"server.1=[::1]:2888:3888:participant;[::1]:2181\n\
              server.2=[fe80::2]:2888:3888;[::]:2182\n\
              server.3=[::1]:2889:3889:observer;2183",
        )
        .unwrap();
        assert_eq!(server(&c, 1).host, "::1");
        assert_eq!(server(&c, 3).role, ServerRole::Observer);
        assert_eq!(
            c.client_hosts(),
            vec!["[::1]:2181", "[fe80::2]:2182", "[::1]:2183"]
        );
    }

    #[test]
    fn the_version_line_is_hexadecimal_and_other_keys_are_ignored() {
        let c = EnsembleConfig::parse(
            b"# a comment\n\
              server.1=h1:1:2;3\n\
              group.1=1\n\
              weight.1=1\n\
              \n\
              version=10000000a\n",
        )
        .unwrap();
        assert_eq!(c.version, Some(0x1_0000_000a));
        assert_eq!(c.client_hosts(), vec!["h1:3"]);
        assert!(EnsembleConfig::parse(b"version=zz").is_err());
    }

    #[test]
    fn without_client_addresses_there_is_nothing_to_follow() {
        let data = b"server.1=127.0.0.1:2888:3888:participant\n\
                     server.2=127.0.0.1:2889:3889:participant;\n\
                     version=0";
        let c = EnsembleConfig::parse(data).unwrap();
        assert_eq!(c.servers.len(), 2);
        assert!(c.client_hosts().is_empty());
        assert_eq!(hosts_to_follow(data, false).unwrap(), None);
        // A standalone server publishes nothing at all.
        assert_eq!(hosts_to_follow(b"", false).unwrap(), None);
        assert_eq!(
            hosts_to_follow(b"server.1=a:1:2;3", false).unwrap(),
            Some(vec!["a:3".to_string()])
        );
    }

    #[test]
    fn secure_client_addresses_are_the_third_part() {
        let data = b"server.1=10.0.0.1:2888:3888:participant;2181;2281\n\
                     server.2=10.0.0.2:2888:3888:participant;;10.0.0.2:2281";
        let c = EnsembleConfig::parse(data).unwrap();
        assert_eq!(c.client_hosts(), vec!["10.0.0.1:2181"]);
        assert_eq!(
            c.secure_client_hosts(),
            vec!["10.0.0.1:2281", "10.0.0.2:2281"]
        );
        assert_eq!(
            hosts_to_follow(data, true).unwrap(),
            Some(vec![
                "10.0.0.1:2281".to_string(),
                "10.0.0.2:2281".to_string()
            ])
        );
    }

    #[test]
    fn several_quorum_addresses_take_the_first_host() {
        let c = EnsembleConfig::parse(b"server.1=a:1:2|b:3:4:participant;0.0.0.0:5").unwrap();
        assert_eq!(server(&c, 1).host, "a");
        assert_eq!(c.client_hosts(), vec!["a:5"]);
    }

    #[test]
    fn malformed_lines_fail_the_parse() {
        for bad in [
            &b"server.x=a:1:2;3"[..],
            b"server.1=a:1;3",
            b"server.1=a:1:2:leader;3",
            b"server.1=a:1:2;b:c:3",
            b"server.1=a:1:2;b:99999",
            b"server.1=a:1:2;3;4;5",
            b"server.1=[::1:1:2;3",
            b"server.1=[::1]:1:2;[::1]:",
            b"server.1=a:p:2;3",
            b"\xff",
        ] {
            assert!(
                EnsembleConfig::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
