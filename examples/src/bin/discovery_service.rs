//! `discovery_service <connect-string> <service-name> <instance-id> <port>`: one
//! instance of a service. It listens on 127.0.0.1:<port> (0: a free port), answers
//! every connection with its id (one line), and registers itself with service
//! discovery under `/examples/services` (curator-x-discovery's layout: address
//! 127.0.0.1, the port it listens on, `pid <its process id>` as payload). It prints
//! `<id> serving on 127.0.0.1:<port>`, then `<id> registered`. Ctrl-C unregisters it;
//! killed, it leaves the service once its session expires (2 s). Pair it with
//! `discovery_client`.

use std::process::ExitCode;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use zk_client::Client;
use zk_recipes::discovery::{ServiceDiscovery, ServiceInstance};

/// Where the examples' services register.
const BASE: &str = "/examples/services";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, connect, name, id, port] = args.as_slice() else {
        eprintln!("usage: discovery_service <connect-string> <service-name> <instance-id> <port>");
        return ExitCode::FAILURE;
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("discovery_service: bad port {port}");
        return ExitCode::FAILURE;
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("discovery_service: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => {
            eprintln!("discovery_service: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The service itself: every connection gets our id.
    let answer = format!("{id}\n");
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let _ = connection.write_all(answer.as_bytes()).await;
                let _ = connection.shutdown().await;
            });
        }
    });
    println!("{id} serving on 127.0.0.1:{port}");

    let client = match Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("discovery_service: cannot connect to {connect}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let discovery: ServiceDiscovery<String> = ServiceDiscovery::new(&client, BASE);
    let me = ServiceInstance::new(name, id)
        .with_address("127.0.0.1")
        .with_port(port)
        .with_payload(format!("pid {}", std::process::id()));
    if let Err(e) = discovery.register(me).await {
        eprintln!("discovery_service: cannot register {name}/{id}: {e}");
        return ExitCode::FAILURE;
    }
    println!("{id} registered");
    let _ = tokio::signal::ctrl_c().await;
    discovery.close().await;
    client.close().await;
    ExitCode::SUCCESS
}
