//! `discovery_client <connect-string> <service-name> <n> [pause-ms]`: sends `n`
//! requests to the instances of a service registered by `discovery_service`, spread
//! round-robin by a `ServiceProvider`, `pause-ms` (default 0) apart. For each it prints
//! `request <i> answered by <id>`; a request that fails (no connection, no answer
//! within 1 s, not the expected id) prints `request <i> failed on <id>: <why>`, is
//! noted to the provider's down-instance policy (2 errors within 30 s: skipped for
//! 30 s) and retried on another instance. Before a request, if the registered
//! instances changed, it prints `instances: <id>,<id>,...`. Exits 0 once `n` requests
//! were answered; 1 if a request found no instance to answer it for 20 s.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use zk_client::Client;
use zk_recipes::discovery::{
    DownInstancePolicy, ProviderStrategy, ServiceInstance, ServiceProvider,
};

/// Where the examples' services register.
const BASE: &str = "/examples/services";

/// How long one request may find no instance that answers.
const GIVE_UP: Duration = Duration::from_secs(20);

/// Asks `instance` for its id.
async fn ask(instance: &ServiceInstance<String>) -> Result<(), String> {
    let target = instance
        .socket_address()
        .ok_or_else(|| "no address".to_string())?;
    let exchange = async {
        let mut connection = TcpStream::connect(&target)
            .await
            .map_err(|e| format!("connect {target}: {e}"))?;
        let mut answer = String::new();
        connection
            .read_to_string(&mut answer)
            .await
            .map_err(|e| format!("read {target}: {e}"))?;
        Ok::<String, String>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .map_err(|_| format!("no answer from {target} within 1 s"))??;
    if answer.trim() == instance.id {
        Ok(())
    } else {
        Err(format!("{target} answered {:?}", answer.trim()))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (connect, name, n, pause) = match args.as_slice() {
        [_, connect, name, n] => (connect, name, n, "0"),
        [_, connect, name, n, pause] => (connect, name, n, pause.as_str()),
        _ => {
            eprintln!("usage: discovery_client <connect-string> <service-name> <n> [pause-ms]");
            return ExitCode::FAILURE;
        }
    };
    let (Ok(n), Ok(pause)) = (n.parse::<u64>(), pause.parse::<u64>()) else {
        eprintln!("discovery_client: <n> and [pause-ms] are numbers");
        return ExitCode::FAILURE;
    };
    let client = match Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("discovery_client: cannot connect to {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let provider: ServiceProvider<String> = ServiceProvider::builder(&client, BASE, name)
        .strategy(ProviderStrategy::RoundRobin)
        .down_instance_policy(DownInstancePolicy::new(Duration::from_secs(30), 2))
        .build();
    provider.start();
    provider.ready().await;
    let mut known = String::new();
    for i in 1..=n {
        let deadline = tokio::time::Instant::now() + GIVE_UP;
        loop {
            let ids: Vec<String> = provider
                .cache()
                .instances()
                .into_iter()
                .map(|instance| instance.id)
                .collect();
            let ids = ids.join(",");
            if ids != known {
                println!("instances: {ids}");
                known = ids;
            }
            let Some(instance) = provider.instance() else {
                if tokio::time::Instant::now() > deadline {
                    eprintln!("discovery_client: no instance of {name} answered request {i}");
                    return ExitCode::FAILURE;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match ask(&instance).await {
                Ok(()) => {
                    println!("request {i} answered by {}", instance.id);
                    break;
                }
                Err(why) => {
                    println!("request {i} failed on {}: {why}", instance.id);
                    provider.note_error(&instance);
                }
            }
        }
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
    provider.close().await;
    client.close().await;
    ExitCode::SUCCESS
}
