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
//! and zxid), as text or, with `--log-json` (or `ZK_LOG_FORMAT=json`), one JSON
//! object per line.

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
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.log_json
        || std::env::var("ZK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    init_logs(json);
    let props = SystemProperties::from_env_and_args(&cli.property);
    props.log_ignored();
    let config = match ServerConfig::load(cli.config.as_deref(), &props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    run(config).await
}

fn init_logs(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
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
