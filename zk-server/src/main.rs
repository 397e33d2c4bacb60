//! `zk-server [--log-json] [zoo.cfg]`: with a zoo.cfg, runs as it describes
//! (standalone, or a member of the ensemble its `server.N` lines and dataDir/myid
//! name); with none, standalone on 127.0.0.1:2181 with data in ./zk-data. Stops
//! cleanly on SIGINT/SIGTERM (exit 0); stops with exit code 2 if its storage fails
//! (a failed write or fsync: it never goes on over a disk in an unknown state).
//!
//! Logs go to stdout, filtered by `RUST_LOG` (default `info,openraft=warn`; e.g.
//! `RUST_LOG=zk_server=debug` shows each connection's session and each write's xid
//! and zxid), as text or, with `--log-json` (or `ZK_LOG_FORMAT=json`), one JSON
//! object per line.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use zk_server::config::ServerConfig;
use zk_server::server::RunningServer;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let json_flag = args.iter().position(|a| a == "--log-json");
    if let Some(at) = json_flag {
        args.remove(at);
    }
    let json = json_flag.is_some()
        || std::env::var("ZK_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
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
    let config = match args.first().map(PathBuf::from) {
        None => ServerConfig::default(),
        Some(path) => match ServerConfig::from_file(&path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("zk-server: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
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
