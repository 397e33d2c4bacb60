//! SASL DIGEST-MD5 as ZooKeeper 3.8 does it, run the same way against our server and
//! Apache ZooKeeper 3.8: kazoo (`sasl_options`, and the legacy `auth_data` form),
//! zkCli.sh with a JAAS `Client` section, our client's `sasl_digest`; `sasl:` ACLs
//! with `authProvider.1=…SASLAuthenticationProvider`, `zookeeper.superUser`,
//! `enforce.auth.*`; a JAAS file without a `Server` section or malformed; and quorum
//! SASL between our members, where one with a wrong password is refused.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use zk_client::{Acl, Client, Error, Id, Perms};
use zk_server::config::ServerConfig;
use zk_server::server::RunningServer;
use zk_server::testing::{four_letter_word, free_port, test_config, TestingCluster, TestingServer};
use zk_tests::apache::ApacheZk;
use zk_tests::{interop_dir, python_with_kazoo, run, zkcli_script};

const SERVER_JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
"#;

const CLIENT_JAAS: &str = r#"
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="jaasuser"
    password="jaas_password";
};
"#;

/// The zoo.cfg lines both servers get: the SASL provider and the super user.
const SASL_CFG: &str =
    "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\nsuperUser=super\n";

/// Unauthenticated clients refused.
const ENFORCE_CFG: &str = "enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n";

struct Files {
    dir: tempfile::TempDir,
    server_jaas: PathBuf,
    client_jaas: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let server_jaas = dir.path().join("jaas.conf");
    let client_jaas = dir.path().join("client-jaas.conf");
    std::fs::write(&server_jaas, SERVER_JAAS).unwrap();
    std::fs::write(&client_jaas, CLIENT_JAAS).unwrap();
    Files {
        dir,
        server_jaas,
        client_jaas,
    }
}

/// Our server with the JAAS file and `extra` zoo.cfg lines (parsed as zoo.cfg is).
fn our_config(files: &Files, jaas: &std::path::Path, extra: &str) -> ServerConfig {
    let text = format!(
        "java.security.auth.login.config={}\n{SASL_CFG}{extra}",
        jaas.display()
    );
    let parsed = ServerConfig::parse(&text).unwrap();
    let data = files
        .dir
        .path()
        .join(format!("ours-{}", free_port().unwrap()));
    std::fs::create_dir_all(&data).unwrap();
    let mut config = test_config(&data);
    config.sasl = parsed.sasl;
    config
}

async fn ours(files: &Files, extra: &str) -> TestingServer {
    TestingServer::start_with(our_config(files, &files.server_jaas, extra))
        .await
        .unwrap()
}

/// Apache ZooKeeper 3.8 with the same zoo.cfg lines, the JAAS file given as zkServer.sh
/// users give it (`-Djava.security.auth.login.config`, SERVER_JVMFLAGS).
async fn apache(files: &Files, extra: &str) -> ApacheZk {
    let flag = format!(
        "-Djava.security.auth.login.config={}",
        files.server_jaas.display()
    );
    ApacheZk::start_with_jvm_flags(&format!("{SASL_CFG}{extra}"), &[&flag]).await
}

/// The `outcome NAME VALUE` lines kazoo_sasl.py printed in `mode`.
async fn kazoo_outcomes(hosts: &str, mode: &str) -> Vec<String> {
    let mut cmd = Command::new(python_with_kazoo());
    cmd.arg(interop_dir().join("kazoo_sasl.py"))
        .args([hosts, mode]);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("kazoo-sasl: done"),
        "kazoo_sasl.py {mode} failed (it needs pure-sasl==0.6.2):\n{stdout}\n{stderr}"
    );
    stdout
        .lines()
        .filter(|l| l.starts_with("outcome "))
        .map(str::to_string)
        .collect()
}

fn assert_has(lines: &[String], want: &str) {
    assert!(
        lines.iter().any(|l| l == want),
        "{want:?} missing from:\n{}",
        lines.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_sasl_digest_md5_behaves_as_on_apache_zookeeper() {
    let files = files();
    let reference = apache(&files, "").await;
    let theirs = kazoo_outcomes(&reference.connect_string(), "acl").await;
    drop(reference);
    let server = ours(&files, "").await;
    let mine = kazoo_outcomes(&server.connect_string(), "acl").await;
    assert_eq!(mine, theirs, "kazoo saw ours differ from Apache ZooKeeper");
    for want in [
        "outcome authed_create /sasl-node",
        "outcome authed_get secret",
        "outcome authed_acl sasl:jaasuser",
        "outcome unauth_get NoAuthError",
        "outcome wrong_password_state LOST connected=False",
        "outcome unknown_user_state LOST connected=False",
        "outcome legacy_get secret",
        "outcome super_get secret",
    ] {
        assert_has(&mine, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_under_enforce_auth_behaves_as_on_apache_zookeeper() {
    let files = files();
    let reference = apache(&files, ENFORCE_CFG).await;
    let theirs = kazoo_outcomes(&reference.connect_string(), "enforce").await;
    drop(reference);
    let server = ours(&files, ENFORCE_CFG).await;
    let mine = kazoo_outcomes(&server.connect_string(), "enforce").await;
    assert_eq!(mine, theirs, "kazoo saw ours differ from Apache ZooKeeper");
    assert_has(&mine, "outcome authed_get v");
    assert_has(&mine, "outcome unauth_get SessionClosedRequireSaslError");
    assert_has(&mine, "outcome wrong_password_state LOST connected=False");
}

/// A SASL login with a wrong password, byte by byte: the frame answering the
/// client's response (header and body), whether the server then closed the
/// connection, and, when it did not, the reply to an `exists /` after it.
async fn raw_failed_login(addr: std::net::SocketAddr) -> (Vec<u8>, bool, Option<Vec<u8>>) {
    use bytes::{Bytes, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use zk_proto::frame::{write_frame, FrameDecoder};
    use zk_proto::{
        ConnectRequest, ExistsRequest, GetSaslRequest, OpCode, Reader, Record, ReplyHeader,
        RequestHeader, SetSaslResponse,
    };

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = BytesMut::new();
    let mut decoder = FrameDecoder::default();
    async fn next(
        stream: &mut tokio::net::TcpStream,
        buf: &mut BytesMut,
        decoder: &mut FrameDecoder,
    ) -> Option<Bytes> {
        loop {
            if let Some(frame) = decoder.decode(buf).unwrap() {
                return Some(frame);
            }
            match tokio::time::timeout(Duration::from_secs(5), stream.read_buf(buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("no answer within 5 s"),
            }
        }
    }
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        }
        .write(w)
    });
    let sasl = |out: &mut BytesMut, xid: i32, token: &[u8]| {
        write_frame(out, |w| {
            RequestHeader::new(xid, OpCode::Sasl).write(w);
            GetSaslRequest {
                token: Bytes::copy_from_slice(token),
            }
            .write(w);
        })
    };
    sasl(&mut out, 1, b"");
    stream.write_all(&out).await.unwrap();
    next(&mut stream, &mut buf, &mut decoder)
        .await
        .unwrap_or_else(|| panic!("no connect response from {addr}"));
    let challenge = next(&mut stream, &mut buf, &mut decoder)
        .await
        .expect("challenge");
    let mut r = Reader::new(challenge);
    ReplyHeader::read(&mut r).unwrap();
    let token = SetSaslResponse::read(&mut r)
        .unwrap()
        .token
        .expect("a challenge");
    let text = String::from_utf8(token.to_vec()).unwrap();
    let nonce = text
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a nonce");
    let mut client = zk_proto::sasl::DigestClient::new("jaasuser", "wrong_password", "cnonce1");
    let zk_proto::sasl::ClientStep::Respond(response) = client.step(&token).unwrap() else {
        panic!("no response to {text}");
    };
    assert!(String::from_utf8_lossy(&response).contains(nonce));
    let mut out = BytesMut::new();
    sasl(&mut out, 2, &response);
    stream.write_all(&out).await.unwrap();
    let refused = next(&mut stream, &mut buf, &mut decoder)
        .await
        .expect("an answer");
    let mut out = BytesMut::new();
    write_frame(&mut out, |w| {
        RequestHeader::new(3, OpCode::Exists).write(w);
        ExistsRequest {
            path: "/".into(),
            watch: false,
        }
        .write(w);
    });
    let _ = stream.write_all(&out).await;
    let after = next(&mut stream, &mut buf, &mut decoder).await;
    // The zxid of a read varies between servers: keep xid and err.
    let after = after.map(|f| [&f[..4], &f[12..16]].concat());
    (refused.to_vec(), after.is_none(), after)
}

/// Waits until the server at `hosts` serves a client (one that does not log in).
async fn wait_serving(hosts: &str) {
    let client = Client::builder(hosts)
        .connect_timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("the server serves clients");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sasl_login_is_answered_and_closed_byte_for_byte_as_on_apache_zookeeper() {
    let files = files();
    for (extra, err, closed) in [
        ("", -115, true),                            // AuthFailed
        (ENFORCE_CFG, -124, true),                   // SessionClosedRequireSaslAuth
        ("allowSaslFailedClients=true\n", 0, false), // kept, unauthenticated
    ] {
        let reference = apache(&files, extra).await;
        // `ruok` answers before Apache's server runs: wait until a client is served.
        wait_serving(&reference.connect_string()).await;
        let theirs = raw_failed_login(reference.addr).await;
        drop(reference);
        let server = ours(&files, extra).await;
        let mine = raw_failed_login(server.addr()).await;
        assert_eq!(mine, theirs, "{extra:?}");
        let mut want = vec![0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&i32::to_be_bytes(err));
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // the token: null
        assert_eq!(mine.0, want, "{extra:?}");
        assert_eq!(mine.1, closed, "{extra:?}");
    }
}

/// zkCli.sh with a JAAS `Client` section (CLIENT_JVMFLAGS), its output's SASL lines.
async fn zkcli_sasl_lines(files: &Files, hosts: &str) -> Vec<String> {
    let flags = format!(
        "-Djava.security.auth.login.config={}",
        files.client_jaas.display()
    );
    let script = "whoami\ncreate /cli-sasl data sasl:jaasuser:cdrwa\ngetAcl /cli-sasl\nget /cli-sasl\ndelete /cli-sasl\nquit\n";
    let text = zkcli_script(&["-server", hosts], &[("CLIENT_JVMFLAGS", &flags)], script).await;
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            [
                "WatchedEvent state:SaslAuthenticated type:None path:null",
                "sasl: jaasuser",
                "Created /cli-sasl",
                "'sasl,'jaasuser",
                ": cdrwa",
                "data",
            ]
            .contains(l)
                || l.contains("Exception")
                || l.contains("AuthFailed")
        })
        .map(str::to_string)
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_with_a_jaas_client_section_authenticates_as_on_apache_zookeeper() {
    let files = files();
    let reference = apache(&files, ENFORCE_CFG).await;
    let theirs = zkcli_sasl_lines(&files, &reference.connect_string()).await;
    drop(reference);
    let server = ours(&files, ENFORCE_CFG).await;
    let mine = zkcli_sasl_lines(&files, &server.connect_string()).await;
    assert_eq!(
        mine, theirs,
        "zkCli.sh saw ours differ from Apache ZooKeeper"
    );
    assert_eq!(mine.len(), 6, "zkCli.sh output lacks SASL lines: {mine:?}");
}

/// What our client sees on a SASL server at `hosts`, step by step.
async fn our_client_outcomes(hosts: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let authed = Client::builder(hosts)
        .sasl_digest("jaasuser", "jaas_password")
        .connect()
        .await
        .expect("SASL login as jaasuser");
    let acl = [Acl::new(Perms::ALL, Id::new("sasl", "jaasuser"))];
    seen.push(format!(
        "create {:?}",
        authed.create("/rust-sasl").data(b"v").acl(&acl).await
    ));
    seen.push(format!(
        "get {:?}",
        authed.get_data("/rust-sasl").await.map(|(d, _)| d)
    ));
    let mut who: Vec<String> = authed
        .whoami()
        .await
        .unwrap()
        .into_iter()
        .map(|i| format!("{}:{}", i.auth_scheme, i.user))
        .collect();
    who.sort();
    seen.push(format!("whoami {who:?}"));
    let plain = Client::connect(hosts).await.unwrap();
    seen.push(format!(
        "unauthenticated get {:?}",
        plain.get_data("/rust-sasl").await.map(|(d, _)| d)
    ));
    let su = Client::builder(hosts)
        .sasl_digest("super", "super_secret")
        .connect()
        .await
        .unwrap();
    seen.push(format!(
        "super get {:?}",
        su.get_data("/rust-sasl").await.map(|(d, _)| d)
    ));
    let wrong = Client::builder(hosts)
        .sasl_digest("jaasuser", "wrong")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    seen.push(format!("wrong password {:?}", wrong.err()));
    seen.push(format!(
        "delete {:?}",
        authed.delete("/rust-sasl", None).await
    ));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_logs_in_with_sasl_digest_on_ours_as_on_apache_zookeeper() {
    let files = files();
    let reference = apache(&files, "").await;
    let theirs = our_client_outcomes(&reference.connect_string()).await;
    drop(reference);
    let server = ours(&files, "").await;
    let mine = our_client_outcomes(&server.connect_string()).await;
    assert_eq!(mine, theirs);
    let want = [
        "create Ok(\"/rust-sasl\")",
        "get Ok([118])",
        "whoami [\"ip:127.0.0.1\", \"sasl:jaasuser\"]",
        "unauthenticated get Err(Keeper { code: NoAuth, path: \"/rust-sasl\" })",
        "super get Ok([118])",
        &format!("wrong password {:?}", Some(Error::AuthFailed)),
        "delete Ok(())",
    ];
    assert_eq!(mine, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_is_refused_where_the_server_has_no_sasl_login() {
    // A JAAS file without a Server section: both servers start with SASL off and
    // answer every sasl request with a null token, which our client takes as a refusal.
    let files = files();
    let no_server = files.dir.path().join("client-only.conf");
    std::fs::write(&no_server, CLIENT_JAAS).unwrap();
    let flag = format!("-Djava.security.auth.login.config={}", no_server.display());
    let reference = ApacheZk::start_with_jvm_flags(SASL_CFG, &[&flag]).await;
    let theirs = Client::builder(&reference.connect_string())
        .sasl_digest("jaasuser", "jaas_password")
        .connect()
        .await
        .err();
    drop(reference);
    let server = TestingServer::start_with(our_config(&files, &no_server, ""))
        .await
        .unwrap();
    let mine = Client::builder(&server.connect_string())
        .sasl_digest("jaasuser", "jaas_password")
        .connect()
        .await
        .err();
    assert_eq!(mine, theirs);
    assert_eq!(mine, Some(Error::AuthFailed));
    // Without SASL, plain clients are served as usual.
    let plain = Client::connect(&server.connect_string()).await.unwrap();
    assert!(plain.exists("/").await.unwrap().is_some());
}

async fn start_error(config: ServerConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match RunningServer::start_with_listener(config, listener).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jaas_file_without_the_sections_sasl_needs_or_malformed_stops_the_server() {
    let files = files();
    let no_server = files.dir.path().join("client-only.conf");
    std::fs::write(&no_server, CLIENT_JAAS).unwrap();
    // enforce.auth requires sasl: the Server section is needed.
    let err = start_error(our_config(&files, &no_server, ENFORCE_CFG)).await;
    assert!(
        err.contains("'Server'")
            && err.contains(&no_server.display().to_string())
            && err.contains("java.security.auth.login.config"),
        "{err}"
    );
    // A section asked for by name (zookeeper.sasl.serverconfig).
    let err = start_error(our_config(
        &files,
        &no_server,
        "zookeeper.sasl.serverconfig=ZkServer\n",
    ))
    .await;
    assert!(err.contains("'ZkServer'"), "{err}");
    // Malformed: named with its line.
    let bad = files.dir.path().join("bad.conf");
    std::fs::write(&bad, "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_a=\"x\"\n};\n").unwrap();
    let err = start_error(our_config(&files, &bad, "")).await;
    assert!(
        err.contains(&bad.display().to_string()) && err.contains("line 4"),
        "{err}"
    );
    // Missing.
    let gone = files.dir.path().join("missing.conf");
    let err = start_error(our_config(&files, &gone, "")).await;
    assert!(err.contains(&gone.display().to_string()), "{err}");
}

const QUORUM_JAAS: &str = r#"
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_zkpeer="quorum_secret";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="zkpeer"
    password="PASSWORD";
};
"#;

const QUORUM_CFG: &str = "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n";

/// A 3-member ensemble with quorum SASL; member `wrong` (if any) has a wrong
/// QuorumLearner password.
async fn quorum(dir: &tempfile::TempDir, wrong: Option<u64>) -> TestingCluster {
    let good = dir.path().join("quorum.conf");
    let bad = dir.path().join("quorum-wrong.conf");
    std::fs::write(&good, QUORUM_JAAS.replace("PASSWORD", "quorum_secret")).unwrap();
    std::fs::write(&bad, QUORUM_JAAS.replace("PASSWORD", "not_the_secret")).unwrap();
    TestingCluster::start_each(3, 0, |id, config| {
        let jaas = if Some(id) == wrong { &bad } else { &good };
        let text = format!(
            "java.security.auth.login.config={}\n{QUORUM_CFG}",
            jaas.display()
        );
        config.sasl = ServerConfig::parse(&text).unwrap().sasl;
    })
    .await
    .unwrap()
}

/// Whether member `id` has applied `path` within `within`.
async fn has_node(cluster: &TestingCluster, id: u64, path: &str, within: Duration) -> bool {
    let until = tokio::time::Instant::now() + within;
    loop {
        let found = cluster
            .core(id)
            .is_some_and(|core| core.db().tree().get(path).is_some());
        if found || tokio::time::Instant::now() >= until {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_with_the_quorum_sasl_password_form_an_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = quorum(&dir, None).await;
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("a leader");
    let client = Client::connect(&cluster.connect_string()).await.unwrap();
    client.create("/q").await.unwrap();
    for id in 1..=3 {
        assert!(
            has_node(&cluster, id, "/q", Duration::from_secs(10)).await,
            "member {id} did not apply /q"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_the_wrong_quorum_sasl_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = quorum(&dir, Some(3)).await;
    // (wait_for_leader waits for every member to follow: member 3 never does.)
    let mut leader = None;
    for _ in 0..400 {
        leader = cluster.leader();
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = leader.expect("members 1 and 2 elect a leader");
    assert_ne!(leader, 3, "the refused member leads");
    // The other two serve writes as a quorum of their own.
    let hosts = [1, 2]
        .iter()
        .map(|id| cluster.client_addr(*id).unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let client = Client::connect(&hosts).await.unwrap();
    for i in 0..5 {
        client.create(&format!("/w{i}")).await.unwrap();
    }
    for id in [1, 2] {
        assert!(has_node(&cluster, id, "/w4", Duration::from_secs(10)).await);
    }
    // Member 3 never gets their entries: no link to or from it is set up.
    assert!(
        !has_node(&cluster, 3, "/w4", Duration::from_secs(3)).await,
        "the member with the wrong password replicated the others' writes"
    );
    // As Apache ZooKeeper's member with a wrong QuorumLearner password (3.8.0, same
    // JAAS files): it does not serve clients.
    let srvr = four_letter_word(cluster.client_addr(3).unwrap(), "srvr")
        .await
        .unwrap_or_default();
    assert!(
        srvr.starts_with("This ZooKeeper instance is not currently serving requests"),
        "{srvr}"
    );
    cluster.shutdown().await;
}
