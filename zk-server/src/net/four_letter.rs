//! Four-letter words: a known command as the first four bytes of a connection gets a
//! plain-text answer and a close, in the formats of Apache ZooKeeper 3.8 (see
//! docs/zookeeper-3.8-behaviour.md). Commands outside `4lw.commands.whitelist` answer
//! "<cmd> is not executed because it is not in the whitelist.".

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::core::ServerCore;
use crate::role::Role;

/// The version string the words report; "3.8.0" first, so tools that parse it see
/// the protocol level we speak.
pub fn version_string() -> String {
    format!(
        "3.8.0-zk-rs-{}, built on 1970-01-01 00:00 UTC",
        env!("CARGO_PKG_VERSION")
    )
}

/// Every command ZooKeeper 3.8 knows.
const COMMANDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The command the first four bytes of a connection name, if any.
pub fn command(first: [u8; 4]) -> Option<&'static str> {
    COMMANDS.iter().copied().find(|c| c.as_bytes() == first)
}

/// Answers `cmd` and closes.
pub async fn serve(
    core: &ServerCore,
    cmd: &'static str,
    asking: SocketAddr,
    mut wr: impl AsyncWrite + Unpin,
) {
    let text = if core.config.four_letter_enabled(cmd) {
        respond_to(core, cmd, Some(asking))
    } else {
        format!("{cmd} is not executed because it is not in the whitelist.\n")
    };
    let _ = wr.write_all(text.as_bytes()).await;
    let _ = wr.shutdown().await;
}

/// The text of a command's answer, for a caller that is not a client connection
/// (the admin endpoint).
pub fn respond(core: &ServerCore, cmd: &str) -> String {
    respond_to(core, cmd, None)
}

/// The text of a command's answer to the connection from `asking` (if it came over
/// the client port): ZooKeeper counts and lists that connection with the others in
/// `stat`, `srvr`, `cons` and `mntr`.
pub fn respond_to(core: &ServerCore, cmd: &str, asking: Option<SocketAddr>) -> String {
    let serving = core.role().serving();
    let read_only = !serving && core.config.read_only_mode;
    if !serving && !read_only && matches!(cmd, "srvr" | "stat" | "mntr" | "conf" | "cons" | "dump")
    {
        // A member looking for its leader, as ZooKeeper 3.8 answers there.
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
    }
    match cmd {
        "ruok" => "imok".to_string(),
        "isro" if read_only => "ro".to_string(),
        "isro" if !serving => "null".to_string(),
        "isro" => "rw".to_string(),
        "srvr" => server_summary(core, false, asking),
        "stat" => server_summary(core, true, asking),
        "mntr" => monitor(core, asking),
        "conf" => conf(core),
        "envi" => environment(core),
        "cons" => connections(core, asking),
        "crst" => {
            core.with_connections(|c| c.values().for_each(|e| e.counters.reset()));
            "Connection stats reset.\n".to_string()
        }
        "srst" => {
            core.stats.reset();
            "Server stats reset.\n".to_string()
        }
        "wchs" => {
            let w = core.watches();
            format!(
                "{} connections watching {} paths\nTotal watches:{}\n",
                w.by_connection().len(),
                w.watched_path_count(),
                w.watch_count()
            )
        }
        "wchc" => watches_by_session(core),
        "wchp" => watches_by_path(core),
        "dump" => dump(core),
        "dirs" => {
            let sizes = StorageSizes::of(&core.config);
            format!(
                "datadir_size: {}\nlogdir_size: {}\n",
                sizes.txn_log, sizes.snapshots
            )
        }
        // Trace masks and digests are JVM/implementation specifics we do not keep.
        _ => String::new(),
    }
}

fn server_state(core: &ServerCore) -> &'static str {
    match core.role() {
        // ZooKeeper's read-only server reports itself so.
        Role::Looking if core.config.read_only_mode => "read-only",
        role => role.mode(),
    }
}

/// ZooKeeper counts the root twice (it is stored under "" and "/").
fn node_count(core: &ServerCore) -> usize {
    core.db().tree().node_count() + 1
}

/// Java's `Double.toString` for the values ZooKeeper rounds to 4 decimals.
fn java_double(v: f64) -> String {
    let rounded = (v * 10_000.0).round() / 10_000.0;
    let s = format!("{rounded}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Client connections, counting the one asking (if any) as ZooKeeper does.
fn connection_count(core: &ServerCore, asking: Option<SocketAddr>) -> usize {
    core.with_connections(|c| c.len()) + usize::from(asking.is_some())
}

fn server_summary(core: &ServerCore, with_clients: bool, asking: Option<SocketAddr>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Zookeeper version: {}", version_string());
    if with_clients {
        s.push_str("Clients:\n");
        s.push_str(&connection_lines(core, false, asking));
        s.push('\n');
    }
    let l = core.stats.latency();
    // The average as Java prints a double rounded to 4 decimals (`0/3.2232/60`).
    let _ = writeln!(
        s,
        "Latency min/avg/max: {}/{}/{}",
        l.min_ms,
        java_double(l.avg_ms),
        l.max_ms
    );
    let _ = writeln!(s, "Received: {}", core.stats.packets_received());
    let _ = writeln!(s, "Sent: {}", core.stats.packets_sent());
    let _ = writeln!(s, "Connections: {}", connection_count(core, asking));
    let _ = writeln!(s, "Outstanding: {}", core.stats.outstanding());
    let _ = writeln!(s, "Zxid: 0x{:x}", core.db().last_zxid());
    let _ = writeln!(s, "Mode: {}", server_state(core));
    let _ = writeln!(s, "Node count: {}", node_count(core));
    if core.role() == Role::Leader {
        let p = core.stats.proposal_sizes();
        let _ = writeln!(
            s,
            "Proposal sizes last/min/max: {}/{}/{}",
            p.last, p.min, p.max
        );
    }
    s
}

fn monitor(core: &ServerCore, asking: Option<SocketAddr>) -> String {
    let l = core.stats.latency();
    let (znodes, ephemerals, data_size, sessions) = {
        let db = core.db();
        (
            db.tree().node_count() + 1,
            db.tree().ephemeral_count(),
            db.tree().approximate_data_size(),
            db.sessions().len(),
        )
    };
    let (watches, connections) = (core.watches().watch_count(), connection_count(core, asking));
    let quorum = core.quorum();
    let mut rows: Vec<(&str, String)> = vec![
        ("zk_version", version_string()),
        ("zk_server_state", server_state(core).to_string()),
        ("zk_ephemerals_count", ephemerals.to_string()),
        ("zk_num_alive_connections", connections.to_string()),
        ("zk_avg_latency", java_double(l.avg_ms)),
        (
            "zk_outstanding_requests",
            core.stats.outstanding().to_string(),
        ),
        ("zk_znode_count", znodes.to_string()),
        ("zk_global_sessions", sessions.to_string()),
        ("zk_packets_sent", core.stats.packets_sent().to_string()),
        (
            "zk_packets_received",
            core.stats.packets_received().to_string(),
        ),
        ("zk_watch_count", watches.to_string()),
        ("zk_min_latency", l.min_ms.to_string()),
        ("zk_approximate_data_size", data_size.to_string()),
        ("zk_open_file_descriptor_count", open_fds().to_string()),
        ("zk_max_file_descriptor_count", max_fds().to_string()),
        (
            "zk_uptime",
            core.stats.started.elapsed().as_millis().to_string(),
        ),
        ("zk_max_latency", l.max_ms.to_string()),
        ("zk_local_sessions", local_sessions(core).to_string()),
    ];
    if quorum.role != Role::Standalone {
        rows.insert(2, ("zk_peer_state", quorum.role.peer_state().to_string()));
        rows.push(("zk_quorum_size", quorum.voters.to_string()));
        // Ours: the consensus term, and leaders seen taking office (one per term).
        rows.push(("zk_raft_term", quorum.term.to_string()));
        rows.push(("zk_leader_changes", quorum.leader_changes.to_string()));
    }
    if quorum.role == Role::Leader {
        let p = core.stats.proposal_sizes();
        rows.push(("zk_last_proposal_size", p.last.to_string()));
        rows.push(("zk_min_proposal_size", p.min.to_string()));
        rows.push(("zk_max_proposal_size", p.max.to_string()));
        rows.push(("zk_learners", quorum.learners.to_string()));
        rows.push(("zk_synced_followers", quorum.synced_followers.to_string()));
        rows.push(("zk_synced_observers", quorum.synced_observers.to_string()));
        rows.push((
            "zk_leader_uptime",
            quorum.since.elapsed().as_millis().to_string(),
        ));
    }
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{k}\t{v}");
    }
    s
}

/// Sessions that live on this server only: read-only sessions of clients the
/// ensemble does not know.
fn local_sessions(core: &ServerCore) -> usize {
    let read_only: Vec<i64> = core.with_connections(|c| {
        c.values()
            .filter(|e| e.read_only && e.session_id != 0)
            .map(|e| e.session_id)
            .collect()
    });
    let db = core.db();
    read_only
        .iter()
        .filter(|s| db.session(**s).is_none())
        .count()
}

fn conf(core: &ServerCore) -> String {
    let c = &core.config;
    let data = c.data_dir.display();
    let log = c.log_dir();
    let mut s = String::new();
    // As Apache ZooKeeper: -1 for a port that is not served.
    let port = |on: Option<SocketAddr>| on.map_or(-1, |a| i32::from(a.port()));
    let plain = c.client_port_enabled.then_some(c.client_addr);
    let _ = writeln!(s, "clientPort={}", port(plain));
    let _ = writeln!(s, "secureClientPort={}", port(c.secure_client_addr));
    let _ = writeln!(s, "dataDir={data}");
    let sizes = StorageSizes::of(c);
    let _ = writeln!(s, "dataDirSize={}", sizes.txn_log);
    let _ = writeln!(s, "dataLogDir={}", log.display());
    let _ = writeln!(s, "dataLogSize={}", sizes.snapshots);
    let _ = writeln!(s, "tickTime={}", c.tick_time_ms);
    let _ = writeln!(s, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(s, "minSessionTimeout={}", c.min_session_timeout_ms);
    let _ = writeln!(s, "maxSessionTimeout={}", c.max_session_timeout_ms);
    let _ = writeln!(s, "clientPortListenBacklog=-1");
    let _ = writeln!(s, "serverId={}", core.server_id);
    s
}

fn environment(_core: &ServerCore) -> String {
    let mut s = String::from("Environment:\n");
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let _ = writeln!(s, "zookeeper.version={}", version_string());
    let _ = writeln!(s, "host.name={}", host.trim());
    let _ = writeln!(s, "os.name={}", std::env::consts::OS);
    let _ = writeln!(s, "os.arch={}", std::env::consts::ARCH);
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        let _ = writeln!(s, "os.version={}", v.trim());
    }
    if let Ok(user) = std::env::var("USER") {
        let _ = writeln!(s, "user.name={user}");
    }
    if let Ok(home) = std::env::var("HOME") {
        let _ = writeln!(s, "user.home={home}");
    }
    if let Ok(dir) = std::env::current_dir() {
        let _ = writeln!(s, "user.dir={}", dir.display());
    }
    s
}

/// One line per connection, oldest first, as `stat` (and, with session details,
/// `cons`) lists them; the asking connection last, as ZooKeeper 3.8 shows it: no
/// session, interest ops 0, its four letters received, nothing sent yet
/// (` /127.0.0.1:35704[0](queued=0,recved=1,sent=0)`).
fn connection_lines(core: &ServerCore, with_session: bool, asking: Option<SocketAddr>) -> String {
    let mut s = String::new();
    core.with_connections(|conns| {
        let mut list: Vec<_> = conns.values().collect();
        list.sort_by_key(|c| c.since);
        for c in list {
            let _ = write!(
                s,
                " /{}[1](queued=0,recved={},sent={}",
                c.remote,
                c.counters.received.load(Ordering::Relaxed),
                c.counters.sent.load(Ordering::Relaxed)
            );
            if with_session && c.session_id != 0 {
                let _ = write!(s, ",sid=0x{:x}", c.session_id);
            }
            s.push_str(")\n");
        }
    });
    if let Some(addr) = asking {
        let _ = writeln!(s, " /{addr}[0](queued=0,recved=1,sent=0)");
    }
    s
}

fn connections(core: &ServerCore, asking: Option<SocketAddr>) -> String {
    connection_lines(core, true, asking) + "\n"
}

/// Session ids of the connections, by connection id.
fn sessions_by_conn(core: &ServerCore) -> std::collections::HashMap<u64, i64> {
    core.with_connections(|c| c.iter().map(|(id, e)| (*id, e.session_id)).collect())
}

fn watches_by_session(core: &ServerCore) -> String {
    let sessions = sessions_by_conn(core);
    let mut s = String::new();
    for (conn, paths) in core.watches().by_connection() {
        let _ = writeln!(s, "0x{:x}", sessions.get(&conn).copied().unwrap_or(0));
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push('\n');
    s
}

fn watches_by_path(core: &ServerCore) -> String {
    let sessions = sessions_by_conn(core);
    let mut s = String::new();
    for (path, conns) in core.watches().by_path() {
        let _ = writeln!(s, "{path}");
        for conn in conns {
            let _ = writeln!(s, "\t0x{:x}", sessions.get(&conn).copied().unwrap_or(0));
        }
    }
    s.push('\n');
    s
}

fn dump(core: &ServerCore) -> String {
    let db = core.db();
    let mut s = String::from("SessionTracker dump:\n");
    let _ = writeln!(s, "Global Sessions({}):", db.sessions().len());
    for (id, session) in db.sessions() {
        let _ = writeln!(s, "0x{id:x}\t{}ms", session.timeout);
    }
    s.push_str("ephemeral nodes dump:\n");
    let ephemerals = db.tree().all_ephemerals();
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", ephemerals.len());
    for (session, paths) in ephemerals {
        let _ = writeln!(s, "0x{session:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    core.with_connections(|conns| {
        let _ = writeln!(s, "Connections ({}):", conns.len());
        for c in conns.values() {
            let _ = writeln!(s, "\tip: /{} sessionId: 0x{:x}", c.remote, c.session_id);
        }
    });
    s
}

/// What `dirs` and `conf` report, as ZooKeeper 3.8 reports it.
///
/// ZooKeeper's `getDataDirSize()` measures its *transaction log* directory and
/// `getLogDirSize()` its *snapshot* directory (the names are crossed in 3.8: with
/// `dataLogDir` set, `datadir_size` is the log's bytes and `logdir_size` the
/// snapshots', checked on 3.8.0), and without `dataLogDir` both live in one directory,
/// so both figures are the size of everything. We report the same figures from our
/// log store and snapshot store.
struct StorageSizes {
    /// `datadir_size` / `dataDirSize`: the log store's bytes.
    txn_log: u64,
    /// `logdir_size` / `dataLogSize`: the snapshot store's bytes.
    snapshots: u64,
}

impl StorageSizes {
    fn of(config: &crate::config::ServerConfig) -> StorageSizes {
        let txn_log = dir_size(&config.log_store_dir());
        let snapshots = dir_size(&config.snapshot_dir());
        if config.log_dir() == config.data_dir {
            let all = txn_log + snapshots;
            StorageSizes {
                txn_log: all,
                snapshots: all,
            }
        } else {
            StorageSizes { txn_log, snapshots }
        }
    }
}

/// Bytes of the files under `dir`, recursively (ZooKeeper's `getDirSize`); 0 when it
/// cannot be read.
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.path(), e.metadata().ok()?)))
        .map(|(path, meta)| {
            if meta.is_dir() {
                dir_size(&path)
            } else if meta.is_file() {
                meta.len()
            } else {
                0
            }
        })
        .sum()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_doubles_keep_a_decimal() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.545_49), "2.5455");
        assert_eq!(java_double(3.0), "3.0");
    }

    #[test]
    fn only_known_words_are_commands() {
        assert_eq!(command(*b"ruok"), Some("ruok"));
        assert_eq!(command(*b"xxxx"), None);
        assert_eq!(command([0, 0, 0, 45]), None);
    }
}
