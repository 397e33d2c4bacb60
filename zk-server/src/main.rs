//! `zk-server [zoo.cfg]`: with a zoo.cfg, runs as it describes (standalone, or a
//! member of the ensemble its `server.N` lines and dataDir/myid name); with none,
//! standalone on 127.0.0.1:2181 with data in ./zk-data. Stops cleanly on
//! SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use zk_server::config::ServerConfig;
use zk_server::server::RunningServer;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")),
        )
        .init();
    let config = match std::env::args_os().nth(1).map(PathBuf::from) {
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
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
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
