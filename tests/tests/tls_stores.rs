//! Java's store types on our server, end to end: the zoo.cfg kazoo's test harness
//! writes (pyjks-written `keystore.jks` and `truststore.jks`, types inferred from the
//! names) with kazoo connecting over TLS, with stores like the harness's and with the
//! very files the harness's own code makes (X.509 v1 certificates), on ours and on
//! Apache ZooKeeper; zkCli.sh connecting over TLS with JKS and
//! with PKCS#12 stores through `CLIENT_JVMFLAGS`, to servers with JKS and PKCS#12
//! stores; `client.portUnification` serving TLS and plaintext on one port; and bad
//! stores stopping the server with an error naming the file and the key.

use std::process::Command;

use zk_client::{Client, TlsConfig};
use zk_server::config::ServerConfig;
use zk_server::server::RunningServer;
use zk_server::testing::free_port;
use zk_tests::apache::ApacheZk;
use zk_tests::certs::{connect_tls, JavaStores, STORE_PASSWORD, ZKCLI_TLS_CLASS_PATH};
use zk_tests::{interop_dir, python_with_kazoo, run, zkcli_script};

/// Our server on the zoo.cfg of kazoo's harness, with stores of extension `ext`
/// (and `extra` lines).
async fn server(stores: &JavaStores, ext: &str, extra: &str) -> (RunningServer, u16, u16) {
    let (port, secure) = (free_port().unwrap(), free_port().unwrap());
    let text = format!(
        "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n4lw.commands.whitelist=*\n{}{extra}",
        stores.path(&format!("data-{ext}-{port}")).display(),
        stores.zoo_cfg_lines(secure, ext),
    );
    let config = ServerConfig::parse(&text).unwrap();
    let server = RunningServer::start(config).await.unwrap();
    (server, port, secure)
}

/// Our client with the set's PEM-free client stores of extension `ext`.
fn client_tls(stores: &JavaStores, ext: &str) -> TlsConfig {
    TlsConfig::new()
        .trust_store_file(
            stores.path(&format!("truststore.{ext}")),
            None,
            STORE_PASSWORD,
        )
        .unwrap()
        .key_store_file(stores.path(&format!("client.{ext}")), None, STORE_PASSWORD)
        .unwrap()
}

/// Runs zkCli.sh against `server` with `CLIENT_JVMFLAGS=flags`, feeding it `script`
/// once connected (it gives up after 20 s); returns what it printed.
async fn zkcli_sh(server: String, flags: String, script: String) -> String {
    zkcli_sh_waiting(server, flags, script, 20_000).await
}

/// [`zkcli_sh`], giving up on connecting after `wait_ms`.
async fn zkcli_sh_waiting(server: String, flags: String, script: String, wait_ms: u32) -> String {
    let wait = wait_ms.to_string();
    zkcli_script(
        &["-waitforconnection", "-timeout", &wait, "-server", &server],
        &[("CLIENT_JVMFLAGS", &flags)],
        &script,
    )
    .await
}

fn assert_lines(text: &str, wants: &[&str]) {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for want in wants {
        assert!(
            lines.contains(want),
            "zkCli.sh printed no {want:?}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_over_tls_with_the_stores_and_zoo_cfg_of_kazoos_harness() {
    let stores = JavaStores::new();
    let (server, _, secure) = server(&stores, "jks", "").await;
    let out = run({
        let mut cmd = Command::new(python_with_kazoo());
        cmd.arg(interop_dir().join("kazoo_tls.py"))
            .arg(format!("localhost:{secure}"))
            .arg(stores.path("ca.pem"))
            .arg(stores.path("client-cert.pem"))
            .arg(stores.path("client-key.pem"));
        cmd
    })
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kazoo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("kazoo-tls: 14 checks passed"),
        "unexpected summary:\n{stdout}\n{stderr}"
    );
    server.shutdown().await;
}

/// The files kazoo's own harness makes, by its own code (v1 certificates, pyjks
/// stores): our server started on its zoo.cfg lines, kazoo connecting as its
/// TestSSLClient does. The same files on Apache ZooKeeper, for comparison.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_over_tls_with_the_files_kazoos_harness_makes() {
    let dir = tempfile::tempdir().unwrap();
    let out = run({
        let mut cmd = Command::new(python_with_kazoo());
        cmd.arg(interop_dir().join("kazoo_harness_stores.py"))
            .arg(dir.path());
        cmd
    })
    .await;
    assert!(
        out.status.success(),
        "kazoo's harness could not make its files (it needs pyjks==20.0.0 and \
         pyOpenSSL==24.2.1):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = |secure: u16| {
        format!(
            "secureClientPort={secure}\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             ssl.keyStore.location={}\nssl.keyStore.password=apassword\n\
             ssl.trustStore.location={}\nssl.trustStore.password=apassword\n",
            dir.path().join("keystore.jks").display(),
            dir.path().join("truststore.jks").display()
        )
    };
    let kazoo = |secure: u16| {
        let mut cmd = Command::new(python_with_kazoo());
        cmd.arg(interop_dir().join("kazoo_tls.py"))
            .arg(format!("localhost:{secure}"))
            .arg(dir.path().join("cacert.pem"))
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"));
        cmd
    };
    // Ours.
    let (port, secure) = (free_port().unwrap(), free_port().unwrap());
    let text = format!(
        "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n{}",
        dir.path().join("data").display(),
        cfg(secure)
    );
    let server = RunningServer::start(ServerConfig::parse(&text).unwrap())
        .await
        .unwrap();
    let out = run(kazoo(secure)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("kazoo-tls: 14 checks passed"),
        "kazoo against ours:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await;
    // Apache ZooKeeper on the same files.
    let secure = free_port().unwrap();
    let apache = ApacheZk::start_configured(&cfg(secure)).await;
    let out = run(kazoo(secure)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("kazoo-tls: 14 checks passed"),
        "kazoo against Apache:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        apache.log_tail(30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_sh_over_tls_with_jks_and_pkcs12_stores() {
    let stores = JavaStores::new();
    for ext in ["jks", "p12"] {
        let (server, _, secure) = server(&stores, ext, "").await;
        let script = format!("create /tls-{ext} hello-{ext}\nget /tls-{ext}\nls /\nwhoami\nquit\n");
        let text = zkcli_sh(
            format!("localhost:{secure}"),
            stores.client_jvm_flags(ext),
            script,
        )
        .await;
        assert_lines(
            &text,
            &[
                &format!("Created /tls-{ext}"),
                &format!("hello-{ext}"),
                &format!("[tls-{ext}, zookeeper]"),
                "x509: CN=client",
            ],
        );
        // Our client, with the same Java stores, sees it.
        let zk = connect_tls(&format!("localhost:{secure}"), client_tls(&stores, ext))
            .await
            .unwrap();
        let (data, _) = zk.get_data(&format!("/tls-{ext}")).await.unwrap();
        assert_eq!(data, format!("hello-{ext}").into_bytes());
        zk.close().await;
        // Without the client's key store the server (ssl.clientAuth=need) refuses.
        let flags = format!(
            "{ZKCLI_TLS_CLASS_PATH} -Dzookeeper.client.secure=true \
             -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
             -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.password={STORE_PASSWORD}",
            stores.path(&format!("truststore.{ext}")).display()
        );
        let text = zkcli_sh_waiting(
            format!("localhost:{secure}"),
            flags,
            format!("get /tls-{ext}\n"),
            5_000,
        )
        .await;
        assert!(
            !text.contains(&format!("hello-{ext}")) && text.contains("ConnectionLoss"),
            "read without a client certificate:\n{text}"
        );
        server.shutdown().await;
    }
}

/// The same zoo.cfg on Apache ZooKeeper 3.8: the stores are what Java reads, and
/// zkCli.sh's transcript against it is the one against ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_stores_work_on_apache_zookeeper() {
    let stores = JavaStores::new();
    let secure = free_port().unwrap();
    let apache = ApacheZk::start_configured(&stores.zoo_cfg_lines(secure, "jks")).await;
    let text = zkcli_sh(
        format!("localhost:{secure}"),
        stores.client_jvm_flags("p12"),
        "create /tls-apache hello\nget /tls-apache\nwhoami\nquit\n".into(),
    )
    .await;
    assert_lines(&text, &["Created /tls-apache", "hello", "x509: CN=client"]);
    let zk = match connect_tls(&format!("localhost:{secure}"), client_tls(&stores, "jks")).await {
        Ok(zk) => zk,
        Err(e) => panic!("{e}\nApache's log:\n{}", apache.log_tail(40)),
    };
    assert!(zk.exists("/tls-apache").await.unwrap().is_some());
    zk.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_unification_serves_tls_and_plaintext_on_the_client_port() {
    let stores = JavaStores::new();
    let (server, port, _) = server(&stores, "jks", "client.portUnification=true\n").await;
    let plain = Client::connect(&format!("127.0.0.1:{port}")).await.unwrap();
    plain.create("/unified").data(b"plain").await.unwrap();
    let tls = connect_tls(&format!("localhost:{port}"), client_tls(&stores, "jks"))
        .await
        .unwrap();
    let (data, _) = tls.get_data("/unified").await.unwrap();
    assert_eq!(data, b"plain");
    let who = tls.whoami().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "x509" && c.user == "CN=client"),
        "{who:?}"
    );
    // zkCli.sh both ways on the same port, and a four-letter word in plaintext.
    let text = zkcli_sh(
        format!("localhost:{port}"),
        stores.client_jvm_flags("jks"),
        "get /unified\nquit\n".into(),
    )
    .await;
    assert_lines(&text, &["plain"]);
    let text = zkcli_sh(
        format!("localhost:{port}"),
        String::new(),
        "get /unified\nquit\n".into(),
    )
    .await;
    assert_lines(&text, &["plain"]);
    let ruok =
        zk_server::testing::four_letter_word(format!("127.0.0.1:{port}").parse().unwrap(), "ruok")
            .await;
    assert_eq!(ruok.as_deref(), Some("imok"));
    tls.close().await;
    plain.close().await;
    server.shutdown().await;
}

/// Bad stores stop the server at start with an error naming the key and the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stores_stop_the_server_naming_the_key_and_the_file() {
    let stores = JavaStores::new();
    let data = stores.path("data");
    let start = |extra: String| {
        let data = data.clone();
        async move {
            let text = format!(
                "dataDir={}\nclientPort={}\nadmin.enableServer=false\n{extra}",
                data.display(),
                free_port().unwrap()
            );
            match ServerConfig::parse(&text) {
                Err(e) => e.to_string(),
                Ok(config) => match RunningServer::start(config).await {
                    Err(e) => e.to_string(),
                    Ok(s) => {
                        s.shutdown().await;
                        "started".to_string()
                    }
                },
            }
        }
    };
    let secure = free_port().unwrap();
    let lines = stores.zoo_cfg_lines(secure, "jks");
    let keystore = stores.path("keystore.jks").display().to_string();
    // Wrong password.
    let e = start(lines.replace(
        "ssl.keyStore.password=apassword",
        "ssl.keyStore.password=wrong",
    ))
    .await;
    assert!(
        e.starts_with(&format!("ssl.keyStore.location={keystore}:"))
            && e.contains("password is wrong"),
        "{e}"
    );
    // Truncated and corrupt copies.
    let bytes = std::fs::read(&keystore).unwrap();
    let cut = stores.path("cut.jks");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let e = start(lines.replace(&keystore, &cut.display().to_string())).await;
    assert!(e.contains("cut.jks") && e.contains("truncated"), "{e}");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    let bad = stores.path("flipped.jks");
    std::fs::write(&bad, flipped).unwrap();
    let e = start(lines.replace(&keystore, &bad.display().to_string())).await;
    assert!(
        e.starts_with("ssl.keyStore.location=") && e.contains("integrity check failed"),
        "{e}"
    );
    // Unknown type; a trust store as the key store; a key store as the trust store.
    let e = start(format!("{lines}ssl.keyStore.type=JCEKS\n")).await;
    assert!(
        e.starts_with("ssl.keyStore.type: invalid value \"JCEKS\""),
        "{e}"
    );
    let truststore = stores.path("truststore.jks").display().to_string();
    let e = start(lines.replace(
        &format!("ssl.keyStore.location={keystore}"),
        &format!("ssl.keyStore.location={truststore}"),
    ))
    .await;
    assert!(e.contains("no private key"), "{e}");
    let e = start(lines.replace(
        &format!("ssl.trustStore.location={truststore}"),
        &format!("ssl.trustStore.location={keystore}"),
    ))
    .await;
    assert!(
        e.starts_with("ssl.trustStore.location=") && e.contains("no certificate"),
        "{e}"
    );
    // passwordPath: a file holding the password (with its newline) works.
    let pw = stores.path("pw");
    std::fs::write(&pw, "apassword\n").unwrap();
    let e = start(lines.replace(
        "ssl.keyStore.password=apassword",
        &format!("ssl.keyStore.passwordPath={}", pw.display()),
    ))
    .await;
    assert_eq!(e, "started");
}
