//! TLS on the secure client port (`secureClientPort`), our client against our server:
//! the ZooKeeper protocol and four-letter words over TLS, clients that cannot prove
//! who they are (no trusted CA, no certificate under `ssl.clientAuth=need`) refused,
//! and plaintext on the TLS port costing only that connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_client::{Acl, Client, CreateMode, Error, ErrorCode, EventType, Id, Perms, TlsConfig};
use zk_server::config::ServerConfig;
use zk_server::testing::{free_port, test_config, TestingServer};
use zk_tests::certs::{connect_tls, TlsFiles};

/// A server with a plain and a secure client port, its TLS from zoo.cfg lines.
async fn secure_server(files: &TlsFiles, client_auth: &str) -> TestingServer {
    let port = free_port().unwrap();
    let parsed = ServerConfig::parse(&files.zoo_cfg_lines(port, client_auth)).unwrap();
    let data = files.dir.path().join(format!("data-{port}"));
    std::fs::create_dir_all(&data).unwrap();
    let mut config = test_config(&data);
    config.secure_client_addr = parsed.secure_client_addr;
    config.client_tls = parsed.client_tls;
    TestingServer::start_with(config).await.unwrap()
}

fn secure_connect_string(server: &TestingServer) -> String {
    format!("localhost:{}", server.secure_addr().unwrap().port())
}

/// A raw TLS session to `addr` presenting the test client's certificate (or none).
async fn raw_tls(
    files: &TlsFiles,
    addr: std::net::SocketAddr,
    with_cert: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if with_cert {
        let chain = CertificateDer::pem_slice_iter(files.client.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(files.client.key_pem.as_bytes()).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let stream = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
}

/// Reads until the peer closes (or fails); `None` if it stays open for `within`.
async fn read_to_close(
    stream: &mut (impl AsyncReadExt + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_tls_creates_reads_and_is_notified() {
    let files = TlsFiles::new();
    let server = secure_server(&files, "need").await;
    let zk = connect_tls(&secure_connect_string(&server), files.client_tls())
        .await
        .expect("a TLS session");
    zk.create("/tls").data(b"secret").await.unwrap();
    let (read, changed) = zk.get_data_and_watch("/tls");
    let (data, stat) = read.await.unwrap();
    assert_eq!(data, b"secret");
    // Another client over plain TCP changes it: the TLS client's watch fires.
    let plain = Client::connect(&server.connect_string()).await.unwrap();
    plain
        .set_data("/tls", b"changed", Some(stat.version))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), changed)
        .await
        .expect("the watch fires")
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(zk.get_data("/tls").await.unwrap().0, b"changed");
    assert_eq!(
        zk.get_children("/").await.unwrap().len(),
        2,
        "/tls and /zookeeper"
    );
    zk.close().await;
    plain.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_reconnecting_over_tls() {
    let files = TlsFiles::new();
    let mut server = secure_server(&files, "need").await;
    let zk = connect_tls(&secure_connect_string(&server), files.client_tls())
        .await
        .unwrap();
    zk.create("/eph").mode(CreateMode::Ephemeral).await.unwrap();
    let session = zk.session_id();
    server.restart().await.unwrap();
    // The client reconnects (over TLS: the port only speaks TLS) to the same session.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(stat)) = zk.exists("/eph").await {
            assert_eq!(stat.ephemeral_owner, session);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(zk.session_id(), session);
    zk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_servers_ca_is_refused() {
    let files = TlsFiles::new();
    let server = secure_server(&files, "need").await;
    let untrusting = TlsConfig::new()
        .ca_file(&files.other_ca_pem)
        .unwrap()
        .identity_file(&files.client_pem)
        .unwrap();
    match connect_tls(&secure_connect_string(&server), untrusting).await {
        Err(Error::ConnectFailed(why)) => {
            assert!(why.contains("certificate"), "{why}")
        }
        Err(other) => panic!("expected ConnectFailed, got {other:?}"),
        Ok(_) => panic!("connected to a server whose certificate it does not trust"),
    }
    // A name the certificate does not carry is refused too.
    let wrong_name = files.client_tls().server_name("zk.other.example");
    assert!(matches!(
        connect_tls(&secure_connect_string(&server), wrong_name).await,
        Err(Error::ConnectFailed(_))
    ));
    // And the right name for an IP address connect string is accepted.
    let by_ip = format!("127.0.0.1:{}", server.secure_addr().unwrap().port());
    let zk = connect_tls(&by_ip, files.client_tls())
        .await
        .expect("127.0.0.1 is in the certificate");
    zk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_need_refuses_a_client_without_a_certificate() {
    let files = TlsFiles::new();
    let server = secure_server(&files, "need").await;
    let no_cert = TlsConfig::new().ca_file(&files.ca_pem).unwrap();
    assert!(
        matches!(
            connect_tls(&secure_connect_string(&server), no_cert.clone()).await,
            Err(Error::ConnectFailed(_))
        ),
        "ssl.clientAuth=need served a client without a certificate"
    );
    // A certificate from a CA the server does not trust is no better.
    let stranger_ca = zk_tests::certs::Ca::new("stranger CA");
    let stranger = stranger_ca.issue("stranger", &["stranger.example"]);
    let stranger_tls = TlsConfig::new()
        .ca_file(&files.ca_pem)
        .unwrap()
        .client_cert_pem(stranger.cert_pem.as_bytes(), stranger.key_pem.as_bytes())
        .unwrap();
    assert!(matches!(
        connect_tls(&secure_connect_string(&server), stranger_tls).await,
        Err(Error::ConnectFailed(_))
    ));
    // With `want`, the certificate is optional.
    let want = secure_server(&files, "want").await;
    let zk = connect_tls(&secure_connect_string(&want), no_cert)
        .await
        .expect("ssl.clientAuth=want serves a client without a certificate");
    assert!(zk.exists("/").await.unwrap().is_some());
    zk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_on_the_tls_port_is_disconnected_and_other_clients_carry_on() {
    let files = TlsFiles::new();
    let server = secure_server(&files, "need").await;
    let secure = server.secure_addr().unwrap();
    let zk = connect_tls(&secure_connect_string(&server), files.client_tls())
        .await
        .unwrap();
    zk.create("/before").await.unwrap();

    // A ZooKeeper handshake in plaintext: closed, no answer of the protocol's.
    let mut raw = TcpStream::connect(secure).await.unwrap();
    let mut connect_request = vec![0, 0, 0, 44];
    connect_request.extend_from_slice(&[0u8; 44]);
    raw.write_all(&connect_request).await.unwrap();
    let answer = read_to_close(&mut raw, Duration::from_secs(10))
        .await
        .expect("the server closes a plaintext connection on its TLS port");
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "at most a TLS alert, got {answer:?}"
    );
    // A plaintext four-letter word: closed unanswered.
    let mut raw = TcpStream::connect(secure).await.unwrap();
    raw.write_all(b"ruok").await.unwrap();
    let answer = read_to_close(&mut raw, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!answer.windows(4).any(|w| w == b"imok"), "{answer:?}");
    // Garbage, and a client that connects and sends nothing then leaves.
    let mut raw = TcpStream::connect(secure).await.unwrap();
    raw.write_all(&[0xff; 300]).await.unwrap();
    assert!(read_to_close(&mut raw, Duration::from_secs(10))
        .await
        .is_some());
    drop(TcpStream::connect(secure).await.unwrap());
    // Our own client without TLS cannot get a session there.
    let plain_client = Client::builder(&secure.to_string())
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(
        plain_client.is_err(),
        "a plaintext client got a session on the TLS port"
    );

    // The TLS client never noticed; the server serves new TLS clients as before.
    zk.create("/after").await.unwrap();
    let mut children = zk.get_children("/").await.unwrap();
    children.sort();
    assert_eq!(children, ["after", "before", "zookeeper"]);
    let again = connect_tls(&secure_connect_string(&server), files.client_tls())
        .await
        .unwrap();
    assert!(again.exists("/after").await.unwrap().is_some());
    again.close().await;
    zk.close().await;
}

/// The subject of the test client's certificate, as Apache ZooKeeper 3.8 names it
/// (checked against Apache in tls_interop.rs).
const CLIENT_X509: &str = "O=zk-rs test CA,CN=client";

/// As Apache ZooKeeper's X509AuthenticationProvider: a client certificate is the
/// connection's `x509` identity, for ACLs and whoAmI; `X509AuthenticationProvider.superUser`
/// makes one subject super.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_an_x509_identity_for_acls_and_who_am_i() {
    let files = TlsFiles::new();
    let server = secure_server(&files, "want").await;
    let zk = connect_tls(&secure_connect_string(&server), files.client_tls())
        .await
        .unwrap();
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
            ("x509".to_string(), CLIENT_X509.to_string()),
            ("ip".to_string(), "127.0.0.1".to_string())
        ]
    );
    let mine = [Acl::new(Perms::ALL, Id::new("x509", CLIENT_X509))];
    zk.create("/x509-only")
        .data(b"mine")
        .acl(&mine)
        .await
        .unwrap();
    assert_eq!(zk.get_data("/x509-only").await.unwrap().0, b"mine");
    // `auth` expands to the certificate's identity.
    zk.create("/auth")
        .acl(&[Acl::new(Perms::ALL, Id::new("auth", ""))])
        .await
        .unwrap();
    assert_eq!(zk.get_acl("/auth").await.unwrap().0, mine);
    // Nobody else: not a plain client, not a TLS client without a certificate.
    let plain = Client::connect(&server.connect_string()).await.unwrap();
    let no_cert = connect_tls(
        &secure_connect_string(&server),
        TlsConfig::new().ca_file(&files.ca_pem).unwrap(),
    )
    .await
    .unwrap();
    for other in [&plain, &no_cert] {
        let e = other.get_data("/x509-only").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NoAuth));
    }
    assert_eq!(no_cert.whoami().await.unwrap().len(), 1, "only its ip");
    no_cert.close().await;

    // The configured super user reads what it was not given.
    plain
        .create("/digest-only")
        .acl(&[Acl::new(Perms::ALL, Id::new("digest", "bob:x"))])
        .await
        .unwrap();
    assert_eq!(
        zk.get_data("/digest-only").await.unwrap_err().code(),
        Some(ErrorCode::NoAuth)
    );
    let port = free_port().unwrap();
    let parsed = ServerConfig::parse(&format!(
        "{}X509AuthenticationProvider.superUser={CLIENT_X509}\n",
        files.zoo_cfg_lines(port, "need")
    ))
    .unwrap();
    let mut config = test_config(&files.dir.path().join("super"));
    config.secure_client_addr = parsed.secure_client_addr;
    config.client_tls = parsed.client_tls;
    config.x509_super_user = parsed.x509_super_user;
    let super_server = TestingServer::start_with(config).await.unwrap();
    let plain_there = Client::connect(&super_server.connect_string())
        .await
        .unwrap();
    plain_there
        .create("/digest-only")
        .data(b"bob's")
        .acl(&[Acl::new(Perms::ALL, Id::new("digest", "bob:x"))])
        .await
        .unwrap();
    let admin = connect_tls(&format!("localhost:{port}"), files.client_tls())
        .await
        .unwrap();
    assert_eq!(admin.get_data("/digest-only").await.unwrap().0, b"bob's");
    admin.close().await;
    plain_there.close().await;
    plain.close().await;
    zk.close().await;
}

/// As in Apache ZooKeeper (Netty), four-letter words on the secure port are read from
/// inside the TLS session, with the same whitelist and the same client-certificate
/// requirement as any client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_are_answered_inside_tls_on_the_secure_port() {
    let files = TlsFiles::new();
    let server = secure_server(&files, "need").await;
    let secure = server.secure_addr().unwrap();
    let mut tls = raw_tls(&files, secure, true).await.unwrap();
    tls.write_all(b"ruok").await.unwrap();
    let answer = read_to_close(&mut tls, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer, b"imok");
    let mut tls = raw_tls(&files, secure, true).await.unwrap();
    tls.write_all(b"srvr").await.unwrap();
    let answer = String::from_utf8(
        read_to_close(&mut tls, Duration::from_secs(5))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(answer.starts_with("Zookeeper version: 3.8.0"), "{answer}");
    assert!(answer.contains("Mode: standalone"), "{answer}");
    // No client certificate under `need`: no answer (TLS 1.3 completes the client's
    // side of the handshake before the server refuses, so the write may succeed).
    if let Ok(mut tls) = raw_tls(&files, secure, false).await {
        let _ = tls.write_all(b"ruok").await;
        let answer = read_to_close(&mut tls, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        assert!(answer.is_empty(), "{answer:?}");
    }
}

/// zoo.cfg with only `secureClientPort`: the server listens only there, as Apache
/// ZooKeeper does, and its client port address is the secure one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zoo_cfg_with_only_a_secure_client_port_serves_only_tls() {
    let files = TlsFiles::new();
    let port = free_port().unwrap();
    let data = files.dir.path().join("only-secure");
    let text = format!(
        "tickTime=500\ndataDir={}\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{}",
        data.display(),
        files.zoo_cfg_lines(port, "need")
    );
    let config = ServerConfig::parse(&text).unwrap();
    assert!(!config.client_port_enabled);
    let server = zk_server::server::RunningServer::start(config)
        .await
        .unwrap();
    assert_eq!(
        server.secure_addr(),
        Some(format!("127.0.0.1:{port}").parse().unwrap())
    );
    assert_eq!(server.addr(), server.secure_addr().unwrap());
    let conf = server.core().config.clone();
    let text = zk_server::net::four_letter::respond(server.core(), "conf");
    assert!(
        text.starts_with(&format!("clientPort=-1\nsecureClientPort={port}\n")),
        "{text}"
    );
    assert!(!conf.client_port_enabled);
    let zk = connect_tls(&format!("localhost:{port}"), files.client_tls())
        .await
        .unwrap();
    assert!(zk.exists("/zookeeper").await.unwrap().is_some());
    zk.close().await;
    server.shutdown().await;
}

/// A store that cannot be used stops the server at start, naming the key to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_key_store_is_refused_at_start_with_a_clear_error() {
    let e = ServerConfig::parse(
        "dataDir=/tmp/x\nsecureClientPort=2281\nssl.keyStore.location=/etc/zk/keystore.jceks\n\
         ssl.keyStore.password=changeit\nssl.trustStore.location=/etc/zk/truststore.jks\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("ssl.keyStore.location:") && e.contains("set ssl.keyStore.type"),
        "{e}"
    );
    // A PEM store that holds no key: start fails, naming the key.
    let files = TlsFiles::new();
    let port = free_port().unwrap();
    let mut config = ServerConfig::parse(&files.zoo_cfg_lines(port, "need")).unwrap();
    config.data_dir = files.dir.path().join("bad");
    config.client_port_enabled = false;
    let mut tls = config.client_tls.clone().unwrap();
    tls.key_store.as_mut().unwrap().location = files.ca_pem.clone();
    config.client_tls = Some(tls);
    match zk_server::server::RunningServer::start(config).await {
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.starts_with("ssl.keyStore.location=") && e.contains("private key"),
                "{e}"
            );
        }
        Ok(_) => panic!("started with a key store that holds no key"),
    }
}
