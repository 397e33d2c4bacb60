//! `zkcli` over TLS, configured as zkCli.sh is: Java system properties in
//! `CLIENT_JVMFLAGS` (the very flags zkCli.sh is given, class path included), or as
//! `-D` arguments, naming JKS and PKCS#12 key and trust stores; against our server
//! with the stores and zoo.cfg of kazoo's harness. Bad stores are reported naming the
//! property and the file, with a non-zero exit.
//!
//! Needs the binary: run with `--features cli`.

use std::process::{Command, Stdio};

use zk_server::config::ServerConfig;
use zk_server::server::RunningServer;
use zk_server::testing::free_port;
use zk_tests::certs::JavaStores;

const ZKCLI: &str = env!("CARGO_BIN_EXE_zkcli");

/// Runs our zkcli with `args`, `env` and `script` on stdin; its output (stdout and
/// stderr) and exit status.
async fn zkcli(args: Vec<String>, env: Vec<(&'static str, String)>, script: &str) -> (String, i32) {
    let mut cmd = Command::new(ZKCLI);
    cmd.args(args)
        .env_remove("CLIENT_JVMFLAGS")
        .env_remove("JVMFLAGS")
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let script = script.to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("zkcli");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("script");
        drop(stdin);
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().unwrap_or(-1))
}

async fn server(stores: &JavaStores) -> (RunningServer, String) {
    let secure = free_port().unwrap();
    let text = format!(
        "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n{}",
        stores.path("data").display(),
        free_port().unwrap(),
        stores.zoo_cfg_lines(secure, "jks")
    );
    let server = RunningServer::start(ServerConfig::parse(&text).unwrap())
        .await
        .unwrap();
    (server, format!("localhost:{secure}"))
}

fn has(text: &str, want: &str) -> bool {
    text.lines().any(|l| l.trim() == want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_over_tls_with_zkcli_sh_flags_and_with_d_arguments() {
    let stores = JavaStores::new();
    let (server, secure) = server(&stores).await;

    // CLIENT_JVMFLAGS exactly as zkCli.sh takes it, JKS client stores; one-shot.
    let (text, code) = zkcli(
        vec![
            "-server".into(),
            secure.clone(),
            "create".into(),
            "/tls".into(),
            "jks".into(),
        ],
        vec![("CLIENT_JVMFLAGS", stores.client_jvm_flags("jks"))],
        "",
    )
    .await;
    assert_eq!(code, 0, "{text}");
    assert!(has(&text, "Created /tls"), "{text}");

    // -D arguments, PKCS#12 stores, the key store's password from a file; a script.
    let pw = stores.path("pw");
    std::fs::write(&pw, "apassword\n").unwrap();
    let args: Vec<String> = [
        "-Dzookeeper.client.secure=true".to_string(),
        format!(
            "-Dzookeeper.ssl.keyStore.location={}",
            stores.path("client.p12").display()
        ),
        format!("-Dzookeeper.ssl.keyStore.passwordPath={}", pw.display()),
        format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            stores.path("truststore.p12").display()
        ),
        "-Dzookeeper.ssl.trustStore.password=apassword".to_string(),
        "-server".to_string(),
        secure.clone(),
    ]
    .into();
    let (text, code) = zkcli(args.clone(), vec![], "get /tls\nwhoami\nquit\n").await;
    assert_eq!(code, 0, "{text}");
    assert!(has(&text, "jks") && has(&text, "x509: CN=client"), "{text}");

    // The trust store as a PEM file (type given), and JVMFLAGS too.
    let (text, code) = zkcli(
        vec![
            "-server".into(),
            secure.clone(),
            "get".into(),
            "/tls".into(),
        ],
        vec![(
            "JVMFLAGS",
            format!(
                "-Xmx64m -Dzookeeper.client.secure=true \
                 -Dzookeeper.ssl.trustStore.location={} -Dzookeeper.ssl.trustStore.type=PEM \
                 -Dzookeeper.ssl.keyStore.location={} -Dzookeeper.ssl.keyStore.password=apassword",
                stores.path("ca.pem").display(),
                stores.path("client.jks").display()
            ),
        )],
        "",
    )
    .await;
    assert_eq!(code, 0, "{text}");
    assert!(has(&text, "jks"), "{text}");

    // Protocol and cipher suite properties are honoured: TLSv1.3 with one suite works,
    // a list of suites none of which is available is refused naming the property.
    let mut tls13 = args.clone();
    tls13.insert(0, "-Dzookeeper.ssl.protocol=TLSv1.3".into());
    tls13.insert(
        0,
        "-Dzookeeper.ssl.ciphersuites=TLS_AES_256_GCM_SHA384".into(),
    );
    let (text, code) = zkcli(tls13, vec![], "get /tls\n").await;
    assert_eq!(code, 0, "{text}");
    assert!(has(&text, "jks"), "{text}");
    let mut cbc = args.clone();
    cbc.insert(
        0,
        "-Dzookeeper.ssl.ciphersuites=TLS_RSA_WITH_AES_128_CBC_SHA".into(),
    );
    let (text, code) = zkcli(cbc, vec![], "").await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("zookeeper.ssl.ciphersuites=TLS_RSA_WITH_AES_128_CBC_SHA"),
        "{text}"
    );

    // Bad stores: named with their property and file, exit status 1.
    let wrong: Vec<String> = args
        .iter()
        .map(|a| a.replace("trustStore.password=apassword", "trustStore.password=nope"))
        .collect();
    let (text, code) = zkcli(wrong, vec![], "").await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("zookeeper.ssl.trustStore.location=")
            && text.contains("truststore.p12")
            && text.contains("password is wrong"),
        "{text}"
    );
    let (text, code) = zkcli(
        vec![
            "-Dzookeeper.client.secure=true".into(),
            "-server".into(),
            secure.clone(),
        ],
        vec![],
        "",
    )
    .await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("zookeeper.ssl.trustStore.location is not set"),
        "{text}"
    );
    let (text, code) = zkcli(
        vec![
            "-Dzookeeper.client.secure=true".into(),
            format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                stores.path("ca.pem").display()
            ),
            "-Dzookeeper.ssl.trustStore.type=JCEKS".into(),
        ],
        vec![],
        "",
    )
    .await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("zookeeper.ssl.trustStore.type=JCEKS"),
        "{text}"
    );

    // Without TLS, the secure port is not served.
    let (text, _) = zkcli(
        vec![
            "-server".into(),
            secure.clone(),
            "-timeout".into(),
            "2000".into(),
            "get".into(),
            "/tls".into(),
        ],
        vec![],
        "",
    )
    .await;
    assert!(!has(&text, "jks"), "{text}");
    server.shutdown().await;
}
