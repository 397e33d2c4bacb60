//! `config_watch <connect-string> <path>`: an app that watches a configuration key
//! and reacts live. The key holds JSON such as `{"greeting":"hello","workers":4}`; the
//! app prints `config: greeting=<g> workers=<n>` each time a new value arrives,
//! `config: missing` while the key does not exist, and `config: bad value (<why>),
//! keeping greeting=…` when a value does not parse (the last good one stays).

use std::process::ExitCode;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::{ConfigCache, Format};

/// The app's configuration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct AppConfig {
    greeting: String,
    workers: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, connect, path] = args.as_slice() else {
        eprintln!("usage: config_watch <connect-string> <path>");
        return ExitCode::FAILURE;
    };
    let client = match Client::builder(connect)
        .session_timeout(Duration::from_secs(5))
        .renew_expired_sessions(true)
        .connect()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("config_watch: cannot connect to {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = ConfigCache::<AppConfig>::new(&client, path, Format::Json);
    config.start();
    config.initialized().await;
    let mut values = config.watch();
    let mut errors_seen = None;
    loop {
        match config.get() {
            Some(c) => println!("config: greeting={} workers={}", c.greeting, c.workers),
            None => println!("config: missing"),
        }
        // React to the next change (or a value that does not parse).
        loop {
            tokio::select! {
                changed = values.changed() => {
                    if changed.is_err() {
                        return ExitCode::FAILURE;
                    }
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    let error = config.last_error().map(|e| e.to_string());
                    if error.is_some() && error != errors_seen {
                        let kept = config.get().map(|c| c.greeting.clone()).unwrap_or_default();
                        println!("config: bad value ({}), keeping greeting={kept}", error.clone().unwrap_or_default());
                    }
                    errors_seen = error;
                }
                _ = tokio::signal::ctrl_c() => {
                    config.close().await;
                    return ExitCode::SUCCESS;
                }
            }
        }
    }
}
