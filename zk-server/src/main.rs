//! `zk-server`: runs a ZooKeeper-compatible server as a zoo.cfg describes (standalone,
//! or a member of the ensemble its `server.N` lines and dataDir/myid name); with no
//! zoo.cfg, standalone on 127.0.0.1:2181 with data in ./zk-data. `zk-server --help`
//! lists the options.
//!
//! Java system properties are taken where Apache ZooKeeper's users put them: `-D`
//! arguments before the zoo.cfg path, and the `SERVER_JVMFLAGS` and `JVMFLAGS`
//! environment variables (see [`zk_server::config::SystemProperties`]).
//!
//! Stops cleanly on SIGINT/SIGTERM (exit 0); stops with exit code 2 if its storage
//! fails (a failed write or fsync: it never goes on over a disk in an unknown state).
//!
//! Logs go to stdout, filtered by `RUST_LOG` (default `info,openraft=warn`; e.g.
//! `RUST_LOG=zk_server=debug` shows each connection's session and each write's xid
//! and zxid), as text (coloured only on a terminal without `NO_COLOR`) or, with
//! `--log-json` (or `ZK_LOG_FORMAT=json`), one JSON object per line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use zk_server::config::{ServerConfig, SystemProperties};
use zk_server::server::RunningServer;

/// A ZooKeeper-compatible server: Apache ZooKeeper's wire protocol, zoo.cfg, data
/// directory layout, four-letter words and admin endpoint, on Raft.
#[derive(Debug, Parser)]
#[command(name = "zk-server", version, about, long_about = None)]
struct Cli {
    /// Log one JSON object per line (also: ZK_LOG_FORMAT=json).
    #[arg(long)]
    log_json: bool,

    /// A Java system property, as `java -Dname=value` takes it (e.g.
    /// -Dzookeeper.DigestAuthenticationProvider.superDigest=…,
    /// -Djava.security.auth.login.config=jaas.conf, -Djute.maxbuffer=…). Read after
    /// SERVER_JVMFLAGS and JVMFLAGS, before zoo.cfg's own lines.
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    property: Vec<String>,

    /// The zoo.cfg to run with; without one: standalone on 127.0.0.1:2181, data in
    /// ./zk-data.
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Moving data between Apache ZooKeeper and this server (docs/operations.md,
/// "Replacing an Apache ZooKeeper ensemble in place").
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Import an Apache ZooKeeper 3.4-3.8 data directory (its newest snapshot and the
    /// transaction logs after it) into this server's data directory, which must hold
    /// no data. Run it with the server stopped, on every member.
    Import {
        /// Apache ZooKeeper's dataDir (the directory holding version-2/).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Apache ZooKeeper's dataLogDir, if its transaction logs are kept apart.
        #[arg(long, value_name = "DIR")]
        from_log: Option<PathBuf>,
        /// Accept a last transaction log that ends inside a record (a write torn by a
        /// crash) and drop that record, as ZooKeeper does when it starts.
        #[arg(long)]
        accept_torn_log_tail: bool,
        /// Our zoo.cfg: its dataDir (and dataLogDir) receive the data, its server.N
        /// lines name the ensemble. Without one: ./zk-data, standalone.
        config: Option<PathBuf>,
    },
    /// Export this server's data (stopped) as a snapshot Apache ZooKeeper 3.8 loads.
    Export {
        /// Apache ZooKeeper's dataDir: the snapshot goes into its version-2/, which
        /// must hold no data.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// Compress the snapshot as zookeeper.snapshot.compression.method would.
        #[arg(long, default_value = "none", value_parser = ["none", "gz", "snappy"])]
        compression: String,
        /// Our zoo.cfg (where our data is). Without one: ./zk-data.
        config: Option<PathBuf>,
    },
}

/// Fixes glibc's thresholds (which also turns off their adjustment): blocks of 2 MiB
/// and more are mapped on their own and unmapped when freed, and free memory above
/// 1 MiB at the top of a heap goes back to the system. Left to adjust, glibc raises
/// them after the first large block is freed (a snapshot's encoding, a table's old
/// copy after it grew) up to 32 and 64 MiB, and then keeps that much freed memory in
/// the resident set.
fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's allocator parameters (under its own lock).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 2 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    fix_malloc_thresholds();
    let cli = Cli::parse();
    let json = cli.log_json
        || std::env::var("ZK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    init_logs(json);
    let props = SystemProperties::from_env_and_args(&cli.property);
    props.log_ignored();
    if let Some(command) = cli.command {
        return data_command(command, &props);
    }
    let config = match ServerConfig::load(cli.config.as_deref(), &props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    run(config).await
}

/// `import` or `export`: prints what was done, or the error (naming the file).
fn data_command(command: Command, props: &SystemProperties) -> ExitCode {
    use zk_server::apache_data::{self, stream::Compression};
    let config_path = match &command {
        Command::Import { config, .. } | Command::Export { config, .. } => config.clone(),
    };
    let config = match ServerConfig::load(config_path.as_deref(), props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Import {
            from,
            from_log,
            accept_torn_log_tail,
            ..
        } => apache_data::import(&apache_data::ImportOptions {
            data_dir: from,
            data_log_dir: from_log,
            accept_torn_tail: accept_torn_log_tail,
            config,
        })
        .map(|r| {
            format!(
                "imported {} znodes and {} sessions (zxid 0x{:x}; {} transactions replayed \
                 from {} log files after {}) into {} in {:.1} s; our log starts after index {}",
                r.znodes,
                r.sessions,
                r.last_zxid,
                r.transactions,
                r.logs.len(),
                r.snapshot
                    .as_deref()
                    .map_or_else(|| "no snapshot".into(), |p| p.display().to_string()),
                r.written.display(),
                r.elapsed.as_secs_f64(),
                r.log_index,
            )
        }),
        Command::Export {
            to, compression, ..
        } => apache_data::export(&apache_data::ExportOptions {
            config,
            data_dir: to,
            compression: Compression::from_method(&compression).unwrap_or(Compression::None),
        })
        .map(|r| {
            format!(
                "exported {} znodes and {} sessions (zxid 0x{:x}) to {}",
                r.znodes,
                r.sessions,
                r.zxid,
                r.written.display()
            )
        }),
    };
    match result {
        Ok(done) => {
            println!("zk-server: {done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(json: bool) {
    use std::io::IsTerminal;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    // Colour only for a person at a terminal: plain text into files, pipes and
    // journald, or whenever NO_COLOR is set (https://no-color.org).
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour);
    if json {
        logs.json()
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        logs.init();
    }
}

/// Runs the server until a signal or a storage failure.
async fn run(config: ServerConfig) -> ExitCode {
    let server = match RunningServer::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zk-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = server.storage_failed();
    let code = tokio::select! {
        _ = wait_for_signal() => {
            tracing::info!("shutting down");
            ExitCode::SUCCESS
        }
        _ = failed.cancelled() => {
            // Never go on over a disk whose state is unknown: stop, and let a restart
            // recover from what is durable.
            eprintln!("zk-server: storage failed (see the log); stopping");
            ExitCode::from(2)
        }
    };
    server.shutdown().await;
    code
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
