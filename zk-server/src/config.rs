//! Server configuration from ZooKeeper's own `zoo.cfg` format, so a file written for
//! Apache ZooKeeper starts this server unchanged.
//!
//! Keys ZooKeeper reads as Java system properties (`zookeeper.X`) are accepted both as
//! `X=` and `zookeeper.X=`, as ZooKeeper itself turns unknown zoo.cfg keys into
//! `zookeeper.*` properties. Keys naming Java classes or JVM-only features are logged
//! and ignored, never fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::storage::log::{LogSizing, DEFAULT_PREALLOCATE_BYTES};

pub mod jaas;
mod properties;
mod sasl;
mod ssl;

pub use properties::SystemProperties;
pub use sasl::SaslSettings;
pub use ssl::{ClientAuth, Secret, StoreFile, StoreType, TlsSettings, TlsVersion};

/// The embedded default (standalone on 127.0.0.1:2181, data in ./zk-data, the admin
/// endpoint on 127.0.0.1 only) as zoo.cfg text: what [`ServerConfig::default`] holds,
/// for system properties to apply to when no zoo.cfg is given.
pub const EMBEDDED_DEFAULT_CFG: &str = "tickTime=2000\ndataDir=zk-data\n\
    clientPortAddress=127.0.0.1\nclientPort=2181\nadmin.serverAddress=127.0.0.1\n";

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value is malformed.
    #[error("{key}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A line is not `key=value`.
    #[error("line {line}: expected key=value, found {text:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// A member's role in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Votes (openraft voter).
    Participant,
    /// Serves clients and forwards writes, does not vote (openraft learner).
    Observer,
}

/// One `server.N=host:peerPort:electionPort[:role][;[clientAddress:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The member's address for peer traffic.
    pub host: String,
    /// Quorum (peer) port.
    pub peer_port: u16,
    /// Election port (kept for compatibility; consensus traffic uses the peer port).
    pub election_port: u16,
    /// Participant or observer.
    pub role: PeerRole,
    /// The member's client address, when the line gives one.
    pub client_addr: Option<SocketAddr>,
}

impl PeerSpec {
    /// The member's line as ZooKeeper writes it in `/zookeeper/config`:
    /// `server.N=host:peer:election:role[;clientAddress:port]`.
    pub fn to_line(&self, id: u64) -> String {
        let role = match self.role {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        };
        let mut line = format!(
            "server.{id}={}:{}:{}:{role}",
            self.host, self.peer_port, self.election_port
        );
        if let Some(client) = self.client_addr {
            line.push_str(&format!(";{client}"));
        }
        line
    }

    /// The address its peers reach it at.
    pub fn peer_addr(&self) -> String {
        format!("{}:{}", self.host, self.peer_port)
    }
}

/// Which four-letter words are enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    /// `*`: every command.
    All,
    /// These commands only.
    Only(BTreeSet<String>),
}

impl FourLetterWhitelist {
    /// Whether `cmd` may run.
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(set) => set.contains(cmd),
        }
    }
}

/// Everything the server reads from zoo.cfg (and myid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The basic time unit in milliseconds.
    pub tick_time_ms: u32,
    /// Where snapshots (and, without `data_log_dir`, the log) live.
    pub data_dir: PathBuf,
    /// Where the transaction log lives, if apart from `data_dir`.
    pub data_log_dir: Option<PathBuf>,
    /// The client port's address.
    pub client_addr: SocketAddr,
    /// Whether the plain client port is served: always, unless zoo.cfg names only a
    /// `secureClientPort` (then, as in Apache ZooKeeper, clients must use TLS).
    pub client_port_enabled: bool,
    /// `secureClientPort` (and `secureClientPortAddress`): where clients connect with
    /// TLS, using `client_tls`.
    pub secure_client_addr: Option<SocketAddr>,
    /// The `ssl.*` settings of the secure client port (present with
    /// `secure_client_addr`, or with `port_unification` for the plain port).
    pub client_tls: Option<TlsSettings>,
    /// `client.portUnification`: the plain client port also takes TLS connections
    /// (told apart by their first byte), with `client_tls`.
    pub port_unification: bool,
    /// The `ssl.quorum.*` settings when `sslQuorum=true`: peer links use mutual TLS.
    pub quorum_tls: Option<TlsSettings>,
    /// Ticks a follower may take to connect and sync to a leader.
    pub init_limit: u32,
    /// Ticks a follower may lag behind.
    pub sync_limit: u32,
    /// Connections allowed from one IP address (0 = unlimited).
    pub max_client_cnxns: u32,
    /// Smallest session timeout granted, in ms.
    pub min_session_timeout_ms: u32,
    /// Largest session timeout granted, in ms.
    pub max_session_timeout_ms: u32,
    /// `server.N` lines; empty for standalone.
    pub peers: BTreeMap<u64, PeerSpec>,
    /// This member's id (`myid` in dataDir), when in an ensemble.
    pub my_id: Option<u64>,
    /// Enabled four-letter words.
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `jute.maxbuffer`: largest request frame and znode data.
    pub jute_max_buffer: usize,
    /// `zookeeper.extendedTypesEnabled`: allow TTL nodes.
    pub extended_types_enabled: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `super:base64(sha1(..))`.
    pub super_digest: Option<String>,
    /// `zookeeper.X509AuthenticationProvider.superUser`: the certificate subject (RFC
    /// 2253, as the `x509` identity reads) of a TLS client that is super.
    pub x509_super_user: Option<String>,
    /// SASL: the JAAS file, `authProvider.N`, `superUser`, `enforce.auth.*` and
    /// `quorum.auth.*` (see [`SaslSettings`]).
    pub sasl: SaslSettings,
    /// `zookeeper.enforceQuota`: quotas as hard limits.
    pub enforce_quota: bool,
    /// `readonlymode.enabled`: serve reads when cut off from the quorum.
    pub read_only_mode: bool,
    /// Transactions between snapshots.
    pub snap_count: u64,
    /// `zookeeper.preAllocSize` (given in KiB, as ZooKeeper reads it): the log is
    /// zero-filled ahead of its appends in steps of this many bytes, so an fsync
    /// after an append flushes data without journaling the file's growth (0: off).
    pub log_preallocate_bytes: u64,
    /// `zookeeper.containerCheckIntervalMs`: how often containers and TTL nodes are
    /// checked for reaping.
    pub container_check_interval_ms: u64,
    /// `reconfigEnabled`: the reconfig operation is allowed.
    pub reconfig_enabled: bool,
    /// `zookeeper.skipACL`: no ACL checks where ZooKeeper would skip them (reconfig).
    pub skip_acl: bool,
    /// `dynamicConfigFile`: where the `server.N` lines are kept (ZooKeeper 3.5+ form).
    pub dynamic_config_file: Option<PathBuf>,
    /// Whether zoo.cfg named `clientPort` (else a member's `server.N` line may).
    pub client_port_given: bool,
    /// `admin.enableServer`: serve the admin endpoint (`/commands/…`).
    pub admin_enabled: bool,
    /// `admin.serverAddress` and `admin.serverPort`: where the admin endpoint listens.
    pub admin_addr: SocketAddr,
    /// `metricsProvider.httpHost`/`httpPort`: where `/metrics` is served, when a
    /// Prometheus provider is configured (`metricsProvider.className` naming
    /// `PrometheusMetricsProvider`, or an `httpPort` given); `None`: no metrics port.
    pub metrics_addr: Option<SocketAddr>,
    /// `raftHeartbeatMs` (ours): how often a leader heartbeats its followers.
    pub raft_heartbeat_ms: u64,
    /// `raftElectionTimeoutMs` (ours): a follower that heard nothing from its leader
    /// for between this and twice this (after the leader's lease, twice this) starts
    /// an election; also the lease a follower gives its leader.
    pub raft_election_timeout_ms: u64,
    /// `globalOutstandingLimit`: requests read from all clients and not yet answered,
    /// beyond which the server stops reading from clients until some are answered
    /// (ZooKeeper's default: 1000).
    pub global_outstanding_limit: usize,
    /// `maxClientOutputBytes` (ours): bytes of replies and notifications queued for one
    /// connection that has stopped reading, beyond which it is closed.
    pub max_client_output_bytes: usize,
    /// `diskReserveBytes` (ours): below this much free space where the log lives,
    /// client writes are refused (reads and sessions go on) so the log, votes and
    /// snapshots never run out of room mid-write.
    pub disk_reserve_bytes: u64,
    /// Keys seen but not used (logged at start-up).
    pub ignored_keys: Vec<String>,
}

/// ZooKeeper's default `globalOutstandingLimit`.
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: usize = 1000;
/// The default `maxClientOutputBytes`: 64 MiB (64 maximum-size replies).
pub const DEFAULT_MAX_CLIENT_OUTPUT_BYTES: usize = 64 * 1024 * 1024;
/// The default `diskReserveBytes`: 8 MiB.
pub const DEFAULT_DISK_RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// ZooKeeper's default `admin.serverPort`.
pub const DEFAULT_ADMIN_PORT: u16 = 8080;
/// ZooKeeper's default `metricsProvider.httpPort`.
pub const DEFAULT_METRICS_PORT: u16 = 7000;

/// The default `raftHeartbeatMs`.
pub const DEFAULT_RAFT_HEARTBEAT_MS: u64 = 50;
/// The default `raftElectionTimeoutMs`: a leader whose process died is replaced in
/// about 350 ms (its followers see its connections close and wait out its 300 ms
/// lease), one cut off by the network after 450–600 ms without heartbeats. (60 ms
/// replaced a killed leader in 175 ms, but caused needless elections under load on
/// two cores.)
pub const DEFAULT_RAFT_ELECTION_TIMEOUT_MS: u64 = 150;

/// ZooKeeper's default `tickTime` when zoo.cfg gives none.
pub const DEFAULT_TICK_TIME_MS: u32 = 3000;

impl Default for ServerConfig {
    /// The embedded default: standalone on 127.0.0.1:2181 with data in ./zk-data and
    /// the conventional tickTime of 2000 ms.
    fn default() -> Self {
        ServerConfig {
            tick_time_ms: 2000,
            data_dir: PathBuf::from("zk-data"),
            data_log_dir: None,
            client_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181),
            client_port_enabled: true,
            secure_client_addr: None,
            client_tls: None,
            port_unification: false,
            quorum_tls: None,
            init_limit: 10,
            sync_limit: 5,
            max_client_cnxns: 60,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            peers: BTreeMap::new(),
            my_id: None,
            four_letter_whitelist: default_whitelist(false),
            jute_max_buffer: zk_proto::frame::DEFAULT_MAX_BUFFER,
            extended_types_enabled: false,
            super_digest: None,
            x509_super_user: None,
            sasl: SaslSettings::default(),
            enforce_quota: false,
            read_only_mode: false,
            snap_count: 100_000,
            log_preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
            container_check_interval_ms: 60_000,
            reconfig_enabled: false,
            skip_acl: false,
            dynamic_config_file: None,
            client_port_given: false,
            admin_enabled: true,
            admin_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_ADMIN_PORT),
            metrics_addr: None,
            raft_heartbeat_ms: DEFAULT_RAFT_HEARTBEAT_MS,
            raft_election_timeout_ms: DEFAULT_RAFT_ELECTION_TIMEOUT_MS,
            global_outstanding_limit: DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
            max_client_output_bytes: DEFAULT_MAX_CLIENT_OUTPUT_BYTES,
            disk_reserve_bytes: DEFAULT_DISK_RESERVE_BYTES,
            ignored_keys: Vec::new(),
        }
    }
}

/// ZooKeeper 3.8's default whitelist: `srvr`, plus `isro` in read-only mode.
fn default_whitelist(read_only: bool) -> FourLetterWhitelist {
    let mut set = BTreeSet::from(["srvr".to_string()]);
    if read_only {
        set.insert("isro".to_string());
    }
    FourLetterWhitelist::Only(set)
}

/// Keys that configure the JVM, Java classes or subsystems this server does not have;
/// accepted and ignored.
const IGNORED_PREFIXES: &[&str] = &[
    "serverCnxnFactory",
    "ssl.",
    "admin.",
    "metricsProvider.",
    "sslQuorum",
    "quorum.auth.kerberos",
    "quorum.cnxn",
    "jvm",
    "zookeeper.serverCnxnFactory",
    "zookeeper.ssl.",
];

impl ServerConfig {
    /// The configuration the `zk-server` binary runs with: the zoo.cfg at `path` (or
    /// the embedded default without one) and Java system properties (`-D` arguments,
    /// `SERVER_JVMFLAGS`, `JVMFLAGS`). zoo.cfg's own lines win over properties naming
    /// the same key, as in ZooKeeper; without a zoo.cfg the properties apply to the
    /// embedded default.
    pub fn load(
        path: Option<&Path>,
        props: &SystemProperties,
    ) -> Result<ServerConfig, ConfigError> {
        match path {
            Some(path) => ServerConfig::from_file_with(path, props),
            None if props.settings.is_empty() => Ok(ServerConfig::default()),
            None => {
                let text = format!("{EMBEDDED_DEFAULT_CFG}{}", props.as_cfg_lines());
                ServerConfig::parse(&text)
            }
        }
    }

    /// Reads a zoo.cfg file, and `myid` from its dataDir when it names servers.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        ServerConfig::from_file_with(path, &SystemProperties::default())
    }

    /// [`ServerConfig::from_file`], with system properties read before the file's lines.
    fn from_file_with(path: &Path, props: &SystemProperties) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = if props.settings.is_empty() {
            ServerConfig::parse(&text)?
        } else {
            // The file alone first, so its errors carry its own line numbers.
            ServerConfig::parse(&text)?;
            ServerConfig::parse(&format!("{}{text}", props.as_cfg_lines()))?
        };
        if let Some(dynamic) = config.dynamic_config_file.clone() {
            // Relative names are relative to zoo.cfg's directory, as ZooKeeper has it.
            let dynamic = match path.parent() {
                Some(dir) if dynamic.is_relative() => dir.join(dynamic),
                _ => dynamic,
            };
            let text = std::fs::read_to_string(&dynamic).map_err(|source| ConfigError::Read {
                path: dynamic.clone(),
                source,
            })?;
            config.add_servers(&text)?;
        }
        if !config.peers.is_empty() && config.my_id.is_none() {
            let myid_path = config.data_dir.join("myid");
            let raw = std::fs::read_to_string(&myid_path).map_err(|source| ConfigError::Read {
                path: myid_path.clone(),
                source,
            })?;
            config.my_id = Some(parse_num("myid", raw.trim())?);
        }
        // `server.N=host:peer:election;clientPort` can stand in for clientPort.
        if !config.client_port_given {
            let mine = config.my_id.and_then(|id| config.peers.get(&id));
            if let Some(client) = mine.and_then(|p| p.client_addr) {
                config.client_addr = client;
                config.client_port_enabled = true;
            }
        }
        Ok(config)
    }

    /// Reads the `server.N` lines of a dynamic configuration file (its `version=`
    /// line, if any, is ZooKeeper's bookkeeping and not needed here).
    pub fn add_servers(&mut self, text: &str) -> Result<(), ConfigError> {
        for entry in key_values(text) {
            let (key, value) = entry?;
            if let Some(id) = key.strip_prefix("server.") {
                let id = parse_num(key, id)?;
                self.peers.insert(id, parse_peer(key, value)?);
            }
        }
        Ok(())
    }

    /// Parses zoo.cfg text (no file access).
    pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        let mut c = ServerConfig {
            tick_time_ms: DEFAULT_TICK_TIME_MS,
            ..ServerConfig::default()
        };
        let mut client_port: Option<u16> = None;
        let mut client_ip: Option<IpAddr> = None;
        let mut min_timeout: Option<u32> = None;
        let mut max_timeout: Option<u32> = None;
        let mut whitelist: Option<FourLetterWhitelist> = None;
        let mut data_dir_set = false;
        let mut admin_ip: Option<IpAddr> = None;
        let mut admin_port: Option<u16> = None;
        let mut metrics_ip: Option<IpAddr> = None;
        let mut metrics_port: Option<u16> = None;
        let mut prometheus = false;
        let mut secure_port: Option<u16> = None;
        let mut secure_ip: Option<IpAddr> = None;
        let mut ssl_quorum = false;
        let mut ssl = ssl::SslKeys::default();

        for entry in key_values(text) {
            let (key, value) = entry?;
            let prop = key.strip_prefix("zookeeper.").unwrap_or(key);
            match prop {
                "tickTime" => c.tick_time_ms = parse_num(key, value)?,
                "dataDir" => {
                    c.data_dir = PathBuf::from(value);
                    data_dir_set = true;
                }
                "dataLogDir" => c.data_log_dir = Some(PathBuf::from(value)),
                "clientPort" => {
                    client_port = Some(parse_num(key, value)?);
                    c.client_port_given = true;
                }
                "reconfigEnabled" => c.reconfig_enabled = parse_bool(key, value)?,
                "skipACL" => {
                    c.skip_acl =
                        value.eq_ignore_ascii_case("yes") || parse_bool(key, value).unwrap_or(false)
                }
                "dynamicConfigFile" => c.dynamic_config_file = Some(PathBuf::from(value)),
                "clientPortAddress" => client_ip = Some(parse_ip(key, value)?),
                "secureClientPort" => secure_port = Some(parse_num(key, value)?),
                "secureClientPortAddress" => secure_ip = Some(parse_ip(key, value)?),
                "sslQuorum" => ssl_quorum = parse_bool(key, value)?,
                "client.portUnification" => c.port_unification = parse_bool(key, value)?,
                _ if ssl.take(prop, value) => {}
                _ if c.sasl.take(key, prop, value)? => {}
                "initLimit" => c.init_limit = parse_num(key, value)?,
                "syncLimit" => c.sync_limit = parse_num(key, value)?,
                "maxClientCnxns" => c.max_client_cnxns = parse_num(key, value)?,
                "minSessionTimeout" => min_timeout = parse_timeout(key, value)?,
                "maxSessionTimeout" => max_timeout = parse_timeout(key, value)?,
                "4lw.commands.whitelist" => whitelist = Some(parse_whitelist(value)),
                "jute.maxbuffer" => c.jute_max_buffer = parse_num(key, value)?,
                "extendedTypesEnabled" => c.extended_types_enabled = parse_bool(key, value)?,
                "DigestAuthenticationProvider.superDigest" => {
                    c.super_digest = Some(value.to_string())
                }
                "X509AuthenticationProvider.superUser" => {
                    c.x509_super_user = Some(value.to_string())
                }
                "enforceQuota" => c.enforce_quota = parse_bool(key, value)?,
                "readonlymode.enabled" => c.read_only_mode = parse_bool(key, value)?,
                "snapCount" => c.snap_count = parse_num(key, value)?,
                "preAllocSize" => {
                    let kib: u64 = parse_num(key, value)?;
                    c.log_preallocate_bytes = kib.saturating_mul(1024);
                }
                "admin.enableServer" => c.admin_enabled = parse_bool(key, value)?,
                "admin.serverAddress" => admin_ip = Some(parse_ip(key, value)?),
                "admin.serverPort" => admin_port = Some(parse_num(key, value)?),
                "metricsProvider.className" => {
                    prometheus = value.ends_with("PrometheusMetricsProvider")
                }
                "metricsProvider.httpHost" => metrics_ip = Some(parse_ip(key, value)?),
                "metricsProvider.httpPort" => {
                    metrics_port = Some(parse_num(key, value)?);
                    prometheus = true;
                }
                "raftHeartbeatMs" => c.raft_heartbeat_ms = parse_num(key, value)?,
                "raftElectionTimeoutMs" => c.raft_election_timeout_ms = parse_num(key, value)?,
                "globalOutstandingLimit" => {
                    c.global_outstanding_limit = parse_num(key, value)?;
                }
                "maxClientOutputBytes" => c.max_client_output_bytes = parse_num(key, value)?,
                "diskReserveBytes" => c.disk_reserve_bytes = parse_num(key, value)?,
                "containerCheckIntervalMs" => {
                    c.container_check_interval_ms = parse_num(key, value)?
                }
                _ if prop.starts_with("server.") => {
                    let id = parse_num(key, &prop["server.".len()..])?;
                    c.peers.insert(id, parse_peer(key, value)?);
                }
                _ => c.ignored_keys.push(key.to_string()),
            }
        }

        c.sasl.check()?;
        if c.ignored_keys
            .iter()
            .any(|k| k.ends_with("requireClientAuthScheme"))
        {
            // Never read by ZooKeeper 3.8 (it became sessionRequireClientSASLAuth and
            // then enforce.auth.*): ignored there too, but say what does the job.
            tracing::warn!(
                "requireClientAuthScheme is not read by ZooKeeper 3.8 nor here; \
                 use enforce.auth.enabled=true and enforce.auth.schemes=sasl"
            );
        }
        if !data_dir_set && text.lines().any(|l| !l.trim().is_empty()) {
            // ZooKeeper refuses to start without dataDir; keep the embedded default but
            // say so at start-up.
            c.ignored_keys
                .push("(no dataDir: using ./zk-data)".to_string());
        }
        // ZooKeeper listens on every address for both unless told otherwise.
        c.admin_addr = SocketAddr::new(
            admin_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            admin_port.unwrap_or(DEFAULT_ADMIN_PORT),
        );
        c.metrics_addr = prometheus.then(|| {
            SocketAddr::new(
                metrics_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                metrics_port.unwrap_or(DEFAULT_METRICS_PORT),
            )
        });
        let port = client_port.unwrap_or(c.client_addr.port());
        let ip = client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        c.client_addr = SocketAddr::new(ip, port);
        // As Apache ZooKeeper: an address without its port is an error; the secure
        // port alone means no plain port.
        if secure_ip.is_some() && secure_port.is_none() {
            return Err(invalid(
                "secureClientPortAddress",
                &secure_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "secureClientPortAddress is set but secureClientPort is not set",
            ));
        }
        // secureClientPort=0 is "not set", as in Apache ZooKeeper.
        c.secure_client_addr = secure_port.filter(|p| *p != 0).map(|port| {
            SocketAddr::new(secure_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
        });
        c.client_port_enabled = c.client_port_given || c.secure_client_addr.is_none();
        c.port_unification &= c.client_port_enabled;
        let client_tls = c.secure_client_addr.is_some() || c.port_unification;
        c.client_tls = ssl.client(client_tls)?;
        c.quorum_tls = ssl.quorum(ssl_quorum)?;
        c.ignored_keys.extend(ssl.unused(client_tls, ssl_quorum));
        // ZooKeeper: -1 (or absent) means 2 and 20 ticks (at most u32::MAX ms: a
        // tickTime above a twentieth of that used to overflow).
        c.min_session_timeout_ms = min_timeout.unwrap_or(c.tick_time_ms.saturating_mul(2));
        c.max_session_timeout_ms = max_timeout.unwrap_or(c.tick_time_ms.saturating_mul(20));
        if c.min_session_timeout_ms > c.max_session_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "minSessionTimeout".into(),
                value: c.min_session_timeout_ms.to_string(),
                reason: "must not be larger than maxSessionTimeout".into(),
            });
        }
        c.four_letter_whitelist = whitelist.unwrap_or_else(|| default_whitelist(c.read_only_mode));
        Ok(c)
    }

    /// Keys that were given but are not used, for a start-up log line.
    pub fn log_ignored(&self) {
        for key in &self.ignored_keys {
            if IGNORED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                tracing::info!(key, "zoo.cfg key configures a JVM-only feature; ignored");
            } else {
                tracing::warn!(key, "unknown zoo.cfg key; ignored");
            }
        }
    }

    /// Clamps a requested session timeout to the configured bounds, as ZooKeeper does.
    ///
    /// Bounds above `i32::MAX` ms (which the wire cannot carry) count as `i32::MAX`;
    /// they used to wrap negative, and a maximum that wrapped below the minimum made
    /// `clamp` panic on every connection.
    pub fn negotiate_session_timeout(&self, requested_ms: i32) -> i32 {
        let bound = |ms: u32| i32::try_from(ms).unwrap_or(i32::MAX);
        let min = bound(self.min_session_timeout_ms);
        let max = bound(self.max_session_timeout_ms).max(min);
        requested_ms.clamp(min, max)
    }

    /// Whether four-letter word `cmd` may run: the whitelist, plus `srvr` always and
    /// `isro` in read-only mode, as ZooKeeper's `FourLetterCommands.isEnabled` adds
    /// them whatever the whitelist says (zkServer.sh uses `srvr`, read-only clients
    /// `isro`).
    pub fn four_letter_enabled(&self, cmd: &str) -> bool {
        cmd == "srvr"
            || (cmd == "isro" && self.read_only_mode)
            || self.four_letter_whitelist.allows(cmd)
    }

    /// Where the transaction log lives: `dataLogDir`, or `dataDir` without one.
    pub fn log_dir(&self) -> PathBuf {
        self.data_log_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.clone())
    }

    /// The log store's own directory (segments, vote, purge point): `log` under
    /// [`ServerConfig::log_dir`].
    pub fn log_store_dir(&self) -> PathBuf {
        self.log_dir().join("log")
    }

    /// How the log's segment files grow (their size; `preAllocSize`).
    pub fn log_sizing(&self) -> LogSizing {
        LogSizing {
            preallocate_bytes: self.log_preallocate_bytes,
            ..LogSizing::default()
        }
    }

    /// The snapshot store's directory: `snapshots` under `dataDir`.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| invalid(key, value, e.to_string()))
}

/// A timeout of -1 means "derive from tickTime".
fn parse_timeout(key: &str, value: &str) -> Result<Option<u32>, ConfigError> {
    let v: i64 = parse_num(key, value)?;
    if v < 0 {
        return Ok(None);
    }
    u32::try_from(v)
        .map(Some)
        .map_err(|e| invalid(key, value, e.to_string()))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

fn parse_ip(key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    match value {
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => value
            .parse()
            .map_err(|e: std::net::AddrParseError| invalid(key, value, e.to_string())),
    }
}

fn parse_whitelist(value: &str) -> FourLetterWhitelist {
    let words: BTreeSet<String> = value
        .split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains("*") {
        FourLetterWhitelist::All
    } else {
        FourLetterWhitelist::Only(words)
    }
}

/// `host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort]`.
/// The `key=value` lines of a properties-style file, trimmed; blank lines and `#`
/// comments skipped; a line without `=` is a syntax error.
fn key_values(text: &str) -> impl Iterator<Item = Result<(&str, &str), ConfigError>> {
    text.lines().enumerate().filter_map(|(i, raw)| {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        Some(match line.split_once('=') {
            Some((key, value)) => Ok((key.trim(), value.trim())),
            None => Err(ConfigError::Syntax {
                line: i + 1,
                text: raw.to_string(),
            }),
        })
    })
}

/// Parses the value of a `server.N` line (`key` names it in errors).
pub fn parse_peer(key: &str, value: &str) -> Result<PeerSpec, ConfigError> {
    let (server, client) = match value.split_once(';') {
        Some((s, c)) => (s, Some(c.trim())),
        None => (value, None),
    };
    let parts: Vec<&str> = server.trim().split(':').collect();
    if !(3..=4).contains(&parts.len()) {
        return Err(invalid(
            key,
            value,
            "expected host:peerPort:electionPort[:role]",
        ));
    }
    let role = match parts.get(3).copied() {
        None | Some("participant") => PeerRole::Participant,
        Some("observer") => PeerRole::Observer,
        Some(other) => return Err(invalid(key, value, format!("unknown role {other:?}"))),
    };
    let client_addr = match client {
        None | Some("") => None,
        Some(c) => {
            // An IPv6 address comes bracketed (`[::1]:2181`, as [`PeerSpec::to_line`]
            // and ZooKeeper write it) or bare (`::1:2181`, the port after the last
            // colon).
            let (ip, port) = match c.rsplit_once(':') {
                Some((ip, port)) => {
                    let bare = ip
                        .strip_prefix('[')
                        .and_then(|ip| ip.strip_suffix(']'))
                        .unwrap_or(ip);
                    (parse_ip(key, bare)?, port)
                }
                None => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), c),
            };
            Some(SocketAddr::new(ip, parse_num(key, port)?))
        }
    };
    Ok(PeerSpec {
        host: parts[0].to_string(),
        peer_port: parse_num(key, parts[1])?,
        election_port: parse_num(key, parts[2])?,
        role,
        client_addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_zoo_cfg_apache_ships() {
        let c = ServerConfig::parse(
            "# The number of milliseconds of each tick\ntickTime=2000\ninitLimit=10\nsyncLimit=5\n\
             dataDir=/var/lib/zookeeper\nclientPort=2181\n#maxClientCnxns=60\n",
        )
        .unwrap();
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/zookeeper"));
        assert_eq!(c.client_addr, "0.0.0.0:2181".parse().unwrap());
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (4000, 40000)
        );
        assert_eq!(c.four_letter_whitelist, default_whitelist(false));
        assert!(c.peers.is_empty());
        assert!(c.ignored_keys.is_empty());
    }

    #[test]
    fn system_properties_are_accepted_with_and_without_prefix() {
        let c = ServerConfig::parse(
            "dataDir=/d\nextendedTypesEnabled=true\nzookeeper.enforceQuota=true\n\
             zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
             readonlymode.enabled=true\n",
        )
        .unwrap();
        assert!(c.extended_types_enabled && c.enforce_quota && c.read_only_mode);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert!(c.four_letter_whitelist.allows("isro"));
    }

    #[test]
    fn reads_the_zookeeper_properties_kafka_ships() {
        // Kafka's config/zookeeper.properties, as its quickstart starts ZooKeeper.
        let c = ServerConfig::parse(
            "# the directory where the snapshot is stored.\ndataDir=/tmp/zookeeper\n\
             # the port at which the clients will connect\nclientPort=2181\n\
             # disable the per-ip limit on the number of connections since this is a \
             non-production config\nmaxClientCnxns=0\n\
             # Disable the adminserver by default to avoid port conflicts.\n\
             # Set the port to something non-conflicting if choosing to enable this\n\
             admin.enableServer=false\n# admin.serverPort=8080\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/zookeeper"));
        assert_eq!(c.client_addr, "0.0.0.0:2181".parse().unwrap());
        assert_eq!(c.max_client_cnxns, 0);
        assert!(!c.admin_enabled);
        assert!(c.ignored_keys.is_empty(), "{:?}", c.ignored_keys);
    }

    #[test]
    fn the_embedded_default_text_is_the_default() {
        let parsed = ServerConfig::parse(EMBEDDED_DEFAULT_CFG).unwrap();
        // Only "clientPort was written" differs; it matters for server.N lines alone.
        let default = ServerConfig {
            client_port_given: true,
            ..ServerConfig::default()
        };
        assert_eq!(parsed, default);
    }

    #[test]
    fn pre_alloc_size_is_read_in_kib_as_zookeeper_does() {
        let c = ServerConfig::parse("dataDir=/d\n").unwrap();
        assert_eq!(c.log_sizing().preallocate_bytes, 64 * 1024 * 1024);
        let c = ServerConfig::parse("dataDir=/d\npreAllocSize=1024\n").unwrap();
        assert_eq!(c.log_sizing().preallocate_bytes, 1024 * 1024);
        let mut props = SystemProperties::default();
        props.add_property("zookeeper.preAllocSize=0");
        let c = ServerConfig::load(None, &props).unwrap();
        assert_eq!(c.log_preallocate_bytes, 0);
        assert!(ServerConfig::parse("dataDir=/d\npreAllocSize=lots\n").is_err());
    }

    #[test]
    fn system_properties_apply_below_zoo_cfg_and_to_the_default() {
        let mut props = SystemProperties::default();
        props.add_property("jute.maxbuffer=4096");
        props.add_property("zookeeper.extendedTypesEnabled=true");
        props.add_property("zookeeper.snapCount=7");
        let c = ServerConfig::load(None, &props).unwrap();
        assert_eq!((c.jute_max_buffer, c.snap_count), (4096, 7));
        assert!(c.extended_types_enabled);
        assert_eq!(c.client_addr, "127.0.0.1:2181".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("zk-data"));

        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, "dataDir=/d\nclientPort=2999\nsnapCount=9\n").unwrap();
        let c = ServerConfig::load(Some(&cfg), &props).unwrap();
        assert_eq!((c.jute_max_buffer, c.snap_count), (4096, 9), "zoo.cfg wins");
        assert_eq!(c.client_addr.port(), 2999);

        // A bad property value is an error naming it; a bad zoo.cfg line keeps its
        // own line number.
        let mut bad = SystemProperties::default();
        bad.add_property("jute.maxbuffer=lots");
        let err = ServerConfig::load(Some(&cfg), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("jute.maxbuffer"), "{err}");
        std::fs::write(&cfg, "dataDir=/d\nnonsense\n").unwrap();
        let err = ServerConfig::load(Some(&cfg), &props)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn sasl_keys_are_read_with_and_without_prefix() {
        let c = ServerConfig::parse(
            "dataDir=/d\njava.security.auth.login.config=/etc/jaas.conf\n\
             zookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             zookeeper.superUser=admin\nsuperUser.2=root\nenforce.auth.enabled=true\n\
             zookeeper.enforce.auth.schemes=sasl, digest\nquorum.auth.enableSasl=true\n\
             quorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n\
             quorum.auth.learner.saslLoginContext=L\nquorum.auth.kerberos.servicePrincipal=zk/h\n",
        )
        .unwrap();
        let s = &c.sasl;
        assert_eq!(s.jaas_file.as_deref(), Some(Path::new("/etc/jaas.conf")));
        assert!(s.provider && s.enforce_auth && s.sasl_required());
        assert_eq!(s.super_users, ["admin", "root"]);
        assert_eq!(s.enforce_schemes, ["sasl", "digest"]);
        assert!(s.quorum_enable && s.quorum_learner_require && s.quorum_server_require);
        assert_eq!(s.quorum_learner_section(), "L");
        assert_eq!(s.quorum_server_section(), "QuorumServer");
        assert_eq!(s.server_section(), "Server");
        assert_eq!(c.ignored_keys, ["quorum.auth.kerberos.servicePrincipal"]);
    }

    #[test]
    fn inconsistent_sasl_keys_are_refused_as_zookeeper_refuses_them() {
        for (text, key) in [
            (
                "quorum.auth.learnerRequireSasl=true",
                "quorum.auth.learnerRequireSasl",
            ),
            (
                "quorum.auth.serverRequireSasl=true",
                "quorum.auth.serverRequireSasl",
            ),
            ("enforce.auth.enabled=true", "enforce.auth.enabled"),
            // sasl without its provider is not available.
            (
                "enforce.auth.enabled=true\nenforce.auth.schemes=sasl",
                "enforce.auth.schemes",
            ),
            ("sessionRequireClientSASLAuth=true", "enforce.auth.schemes"),
        ] {
            match ServerConfig::parse(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn jvm_only_and_unknown_keys_are_ignored_not_fatal() {
        let c = ServerConfig::parse(
            "dataDir=/d\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             ssl.keyStore.location=/k\nadmin.enableServer=false\nsomethingNew=1\n",
        )
        .unwrap();
        // ssl.keyStore.location is ours, but unused without a secure port (said so);
        // the SASL provider is ours too.
        assert_eq!(c.ignored_keys.len(), 3, "{:?}", c.ignored_keys);
        assert!(c.sasl.provider);
        assert!(c
            .ignored_keys
            .iter()
            .any(|k| k.contains("no secureClientPort")));
        assert!(!c.admin_enabled);
    }

    #[test]
    fn secure_client_port_and_ssl_keys_as_apache_names_them() {
        let c = ServerConfig::parse(
            "dataDir=/d\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location=/etc/zk/server.pem\nssl.keyStore.password=\n\
             zookeeper.ssl.trustStore.location=/etc/zk/ca.crt\nssl.trustStore.type=PEM\n",
        )
        .unwrap();
        // Only the secure port: no plain one, as in Apache ZooKeeper.
        assert!(!c.client_port_enabled);
        assert_eq!(
            c.secure_client_addr,
            Some("127.0.0.1:2281".parse().unwrap())
        );
        let tls = c.client_tls.unwrap();
        assert_eq!(tls.client_auth, ClientAuth::Need, "Apache's default");
        assert_eq!(
            tls.key_store.unwrap().location,
            PathBuf::from("/etc/zk/server.pem")
        );
        assert_eq!(
            tls.trust_store.unwrap().location,
            PathBuf::from("/etc/zk/ca.crt")
        );
        assert_eq!(c.quorum_tls, None);

        let c = ServerConfig::parse(
            "dataDir=/d\nclientPort=2181\nsecureClientPort=2281\n\
             ssl.keyStore.location=/k.pem\nssl.clientAuth=none\n",
        )
        .unwrap();
        assert!(c.client_port_enabled, "both ports");
        assert_eq!(c.secure_client_addr, Some("0.0.0.0:2281".parse().unwrap()));
        assert_eq!(c.client_tls.unwrap().client_auth, ClientAuth::None);
        let want = ServerConfig::parse(
            "secureClientPort=1\nssl.keyStore.location=/k.pem\n\
             ssl.trustStore.location=/t.pem\nssl.clientAuth=WANT\n",
        )
        .unwrap();
        assert_eq!(want.client_tls.unwrap().client_auth, ClientAuth::Want);
        // No secure port: the plain one as before.
        assert!(
            ServerConfig::parse("dataDir=/d")
                .unwrap()
                .client_port_enabled
        );
    }

    #[test]
    fn unusable_ssl_settings_are_refused_naming_the_key() {
        let err = |text: &str| ServerConfig::parse(text).unwrap_err().to_string();
        // Store types: from *.type (any case) or the file name, as Apache infers them.
        let ok = |text: &str| ServerConfig::parse(text).unwrap().client_tls.unwrap();
        for (cfg, ty) in [
            ("ssl.keyStore.location=/k.jks", StoreType::Jks),
            ("ssl.keyStore.location=/k.p12", StoreType::Pkcs12),
            ("ssl.keyStore.location=/k.pem", StoreType::Pem),
            (
                "ssl.keyStore.location=/k.jks\nssl.keyStore.type=pkcs12",
                StoreType::Pkcs12,
            ),
            (
                "ssl.keyStore.location=/k\nssl.keyStore.type=PEM",
                StoreType::Pem,
            ),
            (
                "ssl.keyStore.location=/k.pem\nssl.keyStore.type=",
                StoreType::Pem,
            ),
        ] {
            let tls = ok(&format!("secureClientPort=1\nssl.clientAuth=none\n{cfg}"));
            assert_eq!(tls.key_store.unwrap().store_type, ty, "{cfg}");
        }
        let e = err("secureClientPort=1\nssl.keyStore.location=/k\nssl.keyStore.type=PFX\nssl.clientAuth=none");
        assert!(
            e.starts_with("ssl.keyStore.type: invalid value \"PFX\"")
                && e.contains("unknown store type"),
            "{e}"
        );
        let e = err("secureClientPort=1\nssl.keyStore.location=/k.pfx\nssl.clientAuth=none");
        assert!(
            e.starts_with("ssl.keyStore.location:") && e.contains("set ssl.keyStore.type"),
            "{e}"
        );
        let e = err(
            "secureClientPort=1\nssl.keyStore.location=/k.pem\nssl.trustStore.location=/t.bcfks",
        );
        assert!(
            e.starts_with("ssl.trustStore.location:") && e.contains("BCFKS"),
            "{e}"
        );
        let e = err("secureClientPort=1\nssl.keyStore.location=/k.bin\nssl.clientAuth=none");
        assert!(e.contains("set ssl.keyStore.type"), "{e}");
        // Protocols and cipher suites.
        let base = "secureClientPort=1\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\n";
        let both = vec![TlsVersion::Tls12, TlsVersion::Tls13];
        assert_eq!(ok(base).protocols, both, "neither key: both");
        assert_eq!(
            ok(&format!("{base}ssl.protocol=TLSv1.2")).protocols,
            vec![TlsVersion::Tls12]
        );
        assert_eq!(
            ok(&format!("{base}ssl.protocol=TLSv1.3")).protocols,
            vec![TlsVersion::Tls13]
        );
        assert_eq!(ok(&format!("{base}ssl.protocol=TLS")).protocols, both);
        assert_eq!(
            ok(&format!(
                "{base}ssl.protocol=TLSv1.3\nssl.enabledProtocols=TLSv1.3, TLSv1.2,TLSv1.1"
            ))
            .protocols,
            both,
            "enabledProtocols wins; old versions skipped"
        );
        let e = err(&format!("{base}ssl.protocol=TLSv1.1"));
        assert!(
            e.starts_with("ssl.protocol: invalid value \"TLSv1.1\""),
            "{e}"
        );
        let e = err(&format!("{base}ssl.enabledProtocols=TLSv1,TLSv1.1"));
        assert!(
            e.starts_with("ssl.enabledProtocols:") && e.contains("no protocol left"),
            "{e}"
        );
        let e = err(&format!("{base}ssl.enabledProtocols=TLSv1.2,QUIC"));
        assert!(
            e.starts_with("ssl.enabledProtocols:") && e.contains("QUIC"),
            "{e}"
        );
        assert_eq!(
            ok(&format!("{base}ssl.ciphersuites=TLS_AES_128_GCM_SHA256"))
                .cipher_suites
                .as_deref(),
            Some("TLS_AES_128_GCM_SHA256")
        );
        // passwordPath is kept for the loader.
        let tls = ok(&format!("{base}ssl.keyStore.passwordPath=/run/pw"));
        assert_eq!(
            tls.key_store.unwrap().password_path,
            Some(PathBuf::from("/run/pw"))
        );
        // Port unification needs the ssl.* key store, without a secure port.
        let c = ServerConfig::parse("clientPort=2181\nclient.portUnification=true\nssl.keyStore.location=/k.pem\nssl.clientAuth=none").unwrap();
        assert!(c.port_unification && c.client_tls.is_some() && c.secure_client_addr.is_none());
        let e = err("clientPort=2181\nclient.portUnification=true");
        assert!(
            e.starts_with("ssl.keyStore.location:") && e.contains("portUnification"),
            "{e}"
        );
        let e = err("client.portUnification=maybe");
        assert!(e.starts_with("client.portUnification:"), "{e}");
        let e = err("secureClientPort=1\nssl.clientAuth=none");
        assert!(e.starts_with("ssl.keyStore.location:"), "{e}");
        let e = err("secureClientPort=1\nssl.keyStore.location=/k.pem");
        assert!(
            e.starts_with("ssl.trustStore.location:") && e.contains("clientAuth"),
            "{e}"
        );
        let e = err("secureClientPort=1\nssl.keyStore.location=/k.pem\nssl.clientAuth=maybe");
        assert!(e.starts_with("ssl.clientAuth:"), "{e}");
        let e = err("secureClientPortAddress=127.0.0.1");
        assert!(e.contains("secureClientPort is not set"), "{e}");
        let e = err("sslQuorum=true\nssl.quorum.keyStore.location=/k.pem");
        assert!(e.starts_with("ssl.quorum.trustStore.location:"), "{e}");
    }

    #[test]
    fn ssl_quorum_reads_the_quorum_stores() {
        let c = ServerConfig::parse(
            "dataDir=/d\nsslQuorum=true\nssl.quorum.keyStore.location=/q/key.pem\n\
             ssl.quorum.keyStore.password=secret\nssl.quorum.trustStore.location=/q/ca\n\
             ssl.quorum.trustStore.type=pem\nssl.quorum.hostnameVerification=false\n",
        )
        .unwrap();
        let q = c.quorum_tls.unwrap();
        assert_eq!(q.prefix, "ssl.quorum");
        assert!(!q.hostname_verification);
        assert_eq!(
            q.key_store.as_ref().unwrap().password,
            Secret("secret".into())
        );
        assert!(
            !format!("{q:?}").contains("secret"),
            "passwords stay out of Debug"
        );
        assert_eq!(c.client_tls, None);
    }

    #[test]
    fn admin_and_metrics_ports() {
        let c = ServerConfig::parse("dataDir=/d\n").unwrap();
        assert!(c.admin_enabled);
        assert_eq!(c.admin_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.metrics_addr, None);
        let c = ServerConfig::parse(
            "dataDir=/d\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=9090\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n",
        )
        .unwrap();
        assert_eq!(c.admin_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.metrics_addr, Some("0.0.0.0:7000".parse().unwrap()));
        let c = ServerConfig::parse(
            "dataDir=/d\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=7100\n",
        )
        .unwrap();
        assert_eq!(c.metrics_addr, Some("127.0.0.1:7100".parse().unwrap()));
        assert_eq!(
            ServerConfig::default().admin_addr,
            "127.0.0.1:8080".parse().unwrap()
        );
    }

    #[test]
    fn server_lines_in_every_form() {
        let c = ServerConfig::parse(
            "dataDir=/d\nserver.1=127.0.0.1:2888:3888\n\
             server.2=127.0.0.2:2889:3889:participant;2182\n\
             server.3=127.0.0.3:2890:3890:observer;127.0.0.3:2183\n",
        )
        .unwrap();
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.peers[&1].role, PeerRole::Participant);
        assert_eq!(c.peers[&1].client_addr, None);
        assert_eq!(
            c.peers[&2].client_addr,
            Some("0.0.0.0:2182".parse().unwrap())
        );
        assert_eq!(c.peers[&3].role, PeerRole::Observer);
        assert_eq!(
            c.peers[&3].client_addr,
            Some("127.0.0.3:2183".parse().unwrap())
        );
        assert!(ServerConfig::parse("server.x=a:1:2").is_err());
        assert!(ServerConfig::parse("server.1=a:1").is_err());
    }

    #[test]
    fn session_timeout_bounds_beyond_i32_do_not_panic() {
        let c = ServerConfig {
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 3_000_000_000,
            ..ServerConfig::default()
        };
        assert_eq!(c.negotiate_session_timeout(10), 4000);
        assert_eq!(c.negotiate_session_timeout(i32::MAX), i32::MAX);
        let c = ServerConfig {
            min_session_timeout_ms: 3_000_000_000,
            max_session_timeout_ms: 3_000_000_001,
            ..ServerConfig::default()
        };
        assert_eq!(c.negotiate_session_timeout(0), i32::MAX);
    }

    #[test]
    fn whitelist_and_timeouts() {
        let c = ServerConfig::parse("dataDir=/d\n4lw.commands.whitelist=stat, ruok ,conf\nminSessionTimeout=1000\nmaxSessionTimeout=-1\n").unwrap();
        assert!(c.four_letter_whitelist.allows("ruok") && !c.four_letter_whitelist.allows("dump"));
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (1000, 60000)
        );
        assert_eq!(c.negotiate_session_timeout(500), 1000);
        assert_eq!(c.negotiate_session_timeout(100_000), 60000);
        // srvr is always on, isro in read-only mode, whatever the whitelist says.
        assert!(c.four_letter_enabled("srvr") && !c.four_letter_enabled("isro"));
        let ro = ServerConfig::parse("4lw.commands.whitelist=stat\nreadonlymode.enabled=true\n")
            .unwrap();
        assert!(ro.four_letter_enabled("isro") && !ro.four_letter_enabled("ruok"));
        let all = ServerConfig::parse("4lw.commands.whitelist=*").unwrap();
        assert!(all.four_letter_whitelist.allows("dump"));
        assert!(ServerConfig::parse("tickTime=abc").is_err());
        assert!(ServerConfig::parse("just words").is_err());
    }

    #[test]
    fn a_huge_tick_time_saturates_the_derived_session_timeouts() {
        // Found by the zoo_cfg fuzz target (10-minute run): 20 ticks of
        // tickTime=500419430 overflowed u32 ("attempt to multiply with overflow" with
        // overflow checks; a wrapped, too small maximum without).
        let c = ServerConfig::parse("tickTime=500419430").unwrap();
        assert_eq!(c.min_session_timeout_ms, 1_000_838_860);
        assert_eq!(c.max_session_timeout_ms, u32::MAX);
        assert_eq!(c.negotiate_session_timeout(i32::MAX), i32::MAX);
        let c = ServerConfig::parse(&format!("tickTime={}", u32::MAX)).unwrap();
        assert_eq!(c.min_session_timeout_ms, u32::MAX);
        assert_eq!(c.max_session_timeout_ms, u32::MAX);
    }

    #[test]
    fn an_ipv6_client_address_in_a_server_line_reads_back_as_written() {
        // Caught by the zoo_cfg fuzz target's round trip: `to_line` writes
        // `[::1]:2181`, which the parser refused ("invalid IP address syntax"), so
        // /zookeeper/config and the members reconfig publishes did not read back.
        let peer = parse_peer("server.1", "h:2888:3888;::1:2181").unwrap();
        assert_eq!(peer.client_addr, Some("[::1]:2181".parse().unwrap()));
        let line = peer.to_line(1);
        assert_eq!(line, "server.1=h:2888:3888:participant;[::1]:2181");
        let (key, value) = line.split_once('=').unwrap();
        assert_eq!(parse_peer(key, value).unwrap(), peer);
        let c = ServerConfig::parse("server.2=h:1:2:observer;[fe80::1]:2182").unwrap();
        assert_eq!(
            c.peers[&2].client_addr,
            Some("[fe80::1]:2182".parse().unwrap())
        );
        assert!(parse_peer("server.1", "h:1:2;[::1:2181").is_err());
    }

    #[test]
    fn the_dynamic_config_file_form_names_the_members_and_the_client_port() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), "2\n").unwrap();
        std::fs::write(
            dir.path().join("zoo.cfg.dynamic.100000000"),
            "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
             server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
             server.3=127.0.0.1:2890:3890:observer;2183\nversion=100000000\n",
        )
        .unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ndataDir={}\nreconfigEnabled=true\nzookeeper.skipACL=yes\n\
                 dynamicConfigFile=zoo.cfg.dynamic.100000000\n",
                data.display()
            ),
        )
        .unwrap();
        let c = ServerConfig::from_file(&cfg).unwrap();
        assert!(c.reconfig_enabled && c.skip_acl);
        assert_eq!(c.my_id, Some(2));
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.peers[&3].role, PeerRole::Observer);
        // No clientPort: member 2's line gives it.
        assert_eq!(c.client_addr, "127.0.0.1:2182".parse().unwrap());
        assert_eq!(
            c.peers[&3].to_line(3),
            "server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183"
        );
    }
}
