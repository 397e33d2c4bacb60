//! TLS across implementations: Python's kazoo (`use_ssl=True`, certificates verified,
//! a client certificate) against our secure client port, and our client against
//! Apache ZooKeeper 3.8's secure client port (Netty, PEM key and trust stores).

use std::process::Command;
use std::time::Duration;

use zk_client::{Client, CreateMode, Error, EventType, TlsConfig};
use zk_server::config::ServerConfig;
use zk_server::testing::{free_port, test_config, TestingServer};
use zk_tests::apache::ApacheZk;
use zk_tests::certs::{connect_tls, TlsFiles};
use zk_tests::{interop_dir, python_with_kazoo, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_over_tls_round_trips_against_our_secure_port() {
    let files = TlsFiles::new();
    let port = free_port().unwrap();
    let parsed = ServerConfig::parse(&files.zoo_cfg_lines(port, "need")).unwrap();
    let mut config = test_config(&files.dir.path().join("data"));
    config.secure_client_addr = parsed.secure_client_addr;
    config.client_tls = parsed.client_tls;
    let server = TestingServer::start_with(config).await.unwrap();

    // kazoo takes the client certificate and key as separate files.
    let cert = files.dir.path().join("kazoo-cert.pem");
    let key = files.dir.path().join("kazoo-key.pem");
    std::fs::write(&cert, &files.client.cert_pem).unwrap();
    std::fs::write(&key, &files.client.key_pem).unwrap();
    let kazoo = |hosts: String, ca: &std::path::Path| {
        let mut cmd = Command::new(python_with_kazoo());
        cmd.arg(interop_dir().join("kazoo_tls.py"))
            .arg(hosts)
            .arg(ca)
            .arg(&cert)
            .arg(&key);
        cmd
    };
    let out = run(kazoo(format!("localhost:{port}"), &files.ca_pem)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kazoo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("kazoo-tls: 14 checks passed"),
        "unexpected summary:\n{stdout}\n{stderr}"
    );
    // What kazoo did is there for our client too.
    let zk = Client::connect(&server.connect_string()).await.unwrap();
    assert!(
        zk.exists("/kazoo-tls").await.unwrap().is_none(),
        "kazoo deleted it"
    );
    zk.close().await;

    // kazoo verifying against a CA that did not sign the server's certificate fails.
    let out = run(kazoo(format!("localhost:{port}"), &files.other_ca_pem)).await;
    assert!(
        !out.status.success(),
        "kazoo connected to a server it should not trust:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_over_tls_works_against_apache_zookeeper_secure_port() {
    let files = TlsFiles::new();
    let secure_port = free_port().unwrap();
    let apache = ApacheZk::start_configured(&files.zoo_cfg_lines(secure_port, "need")).await;
    let secure = format!("localhost:{secure_port}");

    let zk = match connect_tls(&secure, files.client_tls()).await {
        Ok(zk) => zk,
        Err(e) => panic!("{e}\nApache's log:\n{}", apache.log_tail(40)),
    };
    zk.create("/tls").data(b"one").await.unwrap();
    // Apache gives the certificate's subject as the x509 identity, as ours does
    // (tls.rs).
    let who: Vec<(String, String)> = zk
        .whoami()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.auth_scheme, c.user))
        .collect();
    assert_eq!(
        who,
        [
            ("x509".to_string(), "O=zk-rs test CA,CN=client".to_string()),
            ("ip".to_string(), "127.0.0.1".to_string())
        ]
    );
    let (read, changed) = zk.get_data_and_watch("/tls");
    let (data, stat) = read.await.unwrap();
    assert_eq!(data, b"one");
    zk.set_data("/tls", b"two", Some(stat.version))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), changed)
        .await
        .expect("the watch fires")
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    zk.create("/tls/child")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(zk.get_children("/tls").await.unwrap(), ["child"]);
    assert_eq!(zk.get_data("/tls").await.unwrap().0, b"two");
    // The plain port sees the same tree.
    let plain = Client::connect(&apache.connect_string()).await.unwrap();
    assert_eq!(plain.get_data("/tls").await.unwrap().0, b"two");
    plain.close().await;
    zk.close().await;

    // Apache refuses what ours refuses: no client certificate under its default
    // ssl.clientAuth=need, and a client that does not trust the server's CA.
    let no_cert = TlsConfig::new().ca_file(&files.ca_pem).unwrap();
    assert!(matches!(
        connect_tls(&secure, no_cert).await,
        Err(Error::ConnectFailed(_))
    ));
    let untrusting = TlsConfig::new()
        .ca_file(&files.other_ca_pem)
        .unwrap()
        .identity_file(&files.client_pem)
        .unwrap();
    assert!(matches!(
        connect_tls(&secure, untrusting).await,
        Err(Error::ConnectFailed(_))
    ));
}
