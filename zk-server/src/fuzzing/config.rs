//! Target `zoo_cfg`: arbitrary text through the configuration parsers that do no I/O —
//! zoo.cfg ([`ServerConfig::parse`], a dynamic file's `server.N` lines
//! [`ServerConfig::add_servers`]), Java system properties (`JVMFLAGS`-style strings and
//! `-D` arguments, [`SystemProperties`]) applied to the embedded default, and a JAAS
//! file ([`JaasConfig::parse`]).
//!
//! The input is split at NUL characters: the zoo.cfg text, a `JVMFLAGS` string, a JAAS
//! file, then `-D` arguments.
//!
//! Checks: no panic; an error has a message (naming the line or key for zoo.cfg, the
//! file for JAAS). A parsed configuration keeps its session timeout bounds ordered and
//! negotiates any requested timeout within them; its members rendered as ZooKeeper
//! writes them (each `server.N` line, the `/zookeeper/config` data, the lines reconfig
//! publishes) parse back to the same members. The properties become exactly their
//! settings as zoo.cfg lines (one line each, read back to the same key and value).

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::jaas::JaasConfig;
use crate::config::{parse_peer, PeerSpec, ServerConfig, SystemProperties, EMBEDDED_DEFAULT_CFG};
use crate::replication::ensemble::config_data;
use crate::replication::reconfig::{lines, parse_config_data};

/// Runs one input (see the module documentation); panics on a finding.
pub fn zoo_cfg(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let cfg = parts.next().unwrap_or_default();
    let flags = parts.next().unwrap_or_default();
    let jaas = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();

    zoo_cfg_text(cfg);
    properties(flags, &args);
    jaas_file(jaas);
}

fn zoo_cfg_text(cfg: &str) {
    match ServerConfig::parse(cfg) {
        Ok(config) => parsed(&config),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let mut config = ServerConfig::default();
    match config.add_servers(cfg) {
        Ok(()) => members_round_trip(&config.peers),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// What holds of any configuration that parsed.
fn parsed(config: &ServerConfig) {
    assert!(
        config.min_session_timeout_ms <= config.max_session_timeout_ms,
        "session timeout bounds out of order"
    );
    for requested in [i32::MIN, -1, 0, 1, 4000, i32::MAX] {
        let got = config.negotiate_session_timeout(requested);
        let min = i32::try_from(config.min_session_timeout_ms).unwrap_or(i32::MAX);
        let max = i32::try_from(config.max_session_timeout_ms).unwrap_or(i32::MAX);
        assert!(
            (min..=max).contains(&got),
            "{requested} negotiated to {got}"
        );
    }
    for word in ["ruok", "srvr", "stat", "mntr", "isro", "xxxx"] {
        let _ = config.four_letter_enabled(word);
    }
    let _ = (
        config.log_dir(),
        config.log_store_dir(),
        config.snapshot_dir(),
    );
    members_round_trip(&config.peers);
    // The static `/zookeeper/config` data of this configuration.
    let (peers, version) = parse_config_data(&config_data(config));
    assert_eq!(version, 0);
    assert_eq!(&peers, &config.peers, "/zookeeper/config data reads back");
}

/// Members rendered as ZooKeeper writes them parse back to the same members.
fn members_round_trip(peers: &BTreeMap<u64, PeerSpec>) {
    for (id, peer) in peers {
        let line = peer.to_line(*id);
        let (key, value) = line.split_once('=').expect("a server line has a key");
        let again =
            parse_peer(key, value).unwrap_or_else(|e| panic!("{line:?} does not parse back: {e}"));
        assert_eq!(&again, peer, "{line:?} parses back to another member");
        let config = ServerConfig::parse(&line)
            .unwrap_or_else(|e| panic!("{line:?} does not parse back as zoo.cfg: {e}"));
        assert_eq!(config.peers.get(id), Some(peer));
    }
    // As reconfig publishes them (the data of `/zookeeper/config`).
    let published = format!("{}\nversion=100000000", lines(peers));
    let (again, version) = parse_config_data(published.as_bytes());
    assert_eq!(version, 0x1_0000_0000);
    assert_eq!(&again, peers, "published members read back");
}

/// `JVMFLAGS` and `-D` arguments, applied to the embedded default as the server does
/// without a zoo.cfg.
fn properties(flags: &str, args: &[&str]) {
    let mut props = SystemProperties::default();
    props.add_jvm_flags(flags);
    for arg in args {
        props.add_property(arg);
    }
    let cfg_lines = props.as_cfg_lines();
    // One line per setting, read back as it was set (zoo.cfg trims keys and values).
    let read: Vec<(&str, &str)> = cfg_lines
        .lines()
        .map(|line| line.split_once('=').expect("a property line has '='"))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let expected: Vec<(&str, &str)> = props
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(read, expected, "the properties as zoo.cfg lines");
    match ServerConfig::parse(&format!("{EMBEDDED_DEFAULT_CFG}{cfg_lines}")) {
        Ok(config) => parsed(&config),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    props.log_ignored();
}

/// A JAAS file: parsed or refused naming the file; lookups in it do not panic.
fn jaas_file(text: &str) {
    let path = Path::new("fuzz.jaas");
    match JaasConfig::parse(path, text) {
        Ok(jaas) => {
            for section in ["Server", "QuorumServer", "QuorumLearner", "Client"] {
                let _ = jaas.section(section);
                let _ = jaas.digest_users(section, "fuzz");
                let _ = jaas.digest_login(section, "fuzz");
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz.jaas"), "{e}"),
    }
}
