//! In-process servers for tests — this project's and its users' — in the spirit of
//! Curator's `TestingServer`: a free loopback port, a temporary data directory, and
//! control over the server's life.
//!
//! ```no_run
//! # async fn demo() {
//! let mut server = zk_server::testing::TestingServer::start().await.unwrap();
//! let connect = server.connect_string(); // "127.0.0.1:<port>"
//! // ... point a client at `connect` ...
//! server.stop().await;
//! # }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;

use crate::config::{FourLetterWhitelist, ServerConfig};
use crate::server::{RunningServer, StartError};

/// A standalone server on a free port with its data in a temporary directory (removed
/// when the `TestingServer` is dropped).
pub struct TestingServer {
    server: Option<RunningServer>,
    config: ServerConfig,
    addr: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

/// Errors of the testing harness.
#[derive(Debug, thiserror::Error)]
pub enum TestingError {
    /// The temporary directory or port could not be had.
    #[error("testing server setup: {0}")]
    Setup(#[from] std::io::Error),
    /// The server did not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Settings for tests: fast ticks, every four-letter word, TTL nodes allowed, quick
/// container checks.
pub fn test_config(data_dir: &Path) -> ServerConfig {
    ServerConfig {
        tick_time_ms: 500,
        min_session_timeout_ms: 1000,
        max_session_timeout_ms: 60_000,
        data_dir: data_dir.to_path_buf(),
        client_addr: "127.0.0.1:0".parse().expect("literal address"),
        four_letter_whitelist: FourLetterWhitelist::All,
        extended_types_enabled: true,
        container_check_interval_ms: 200,
        max_client_cnxns: 0,
        ..ServerConfig::default()
    }
}

impl TestingServer {
    /// Starts a server with [`test_config`] in a new temporary directory.
    pub async fn start() -> Result<TestingServer, TestingError> {
        let dir = tempfile::tempdir()?;
        let config = test_config(dir.path());
        let mut server = TestingServer::start_with(config).await?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// Starts a server with `config` (its `client_addr` may use port 0).
    pub async fn start_with(config: ServerConfig) -> Result<TestingServer, TestingError> {
        let listener = TcpListener::bind(config.client_addr).await?;
        let addr = listener.local_addr()?;
        let mut config = config;
        config.client_addr = addr;
        let server = RunningServer::start_with_listener(config.clone(), listener).await?;
        Ok(TestingServer {
            server: Some(server),
            config,
            addr,
            _dir: None,
        })
    }

    /// `host:port` for clients.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The client port's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The running server, if it is running.
    pub fn server(&self) -> Option<&RunningServer> {
        self.server.as_ref()
    }

    /// Expires a session now, as if its client had gone silent.
    pub fn expire_session(&self, session_id: i64) {
        if let Some(s) = &self.server {
            s.expire_session(session_id);
        }
    }

    /// Stops the server (its data stays until the `TestingServer` is dropped).
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts the server again on the same port and data.
    pub async fn restart(&mut self) -> Result<(), TestingError> {
        self.stop().await;
        let listener = bind_retrying(self.addr).await?;
        let server = RunningServer::start_with_listener(self.config.clone(), listener).await?;
        self.server = Some(server);
        Ok(())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for servers started as separate
/// processes, which must be told their port).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends a four-letter word and returns the answer, or `None` if none came within two
/// seconds (a ZooKeeper still starting may take the command and never answer).
pub async fn four_letter_word(addr: SocketAddr, cmd: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(cmd.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    })
    .await
    .ok()
    .flatten()
}

/// Rebinds a port just released (the old listener may take a moment to go).
async fn bind_retrying(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}
