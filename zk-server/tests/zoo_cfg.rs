//! zoo.cfg as operators write it: every Java system-property setting in both its
//! `X=` and `zookeeper.X=` forms, the embedded defaults, and settings that must reach
//! the running server (through the library and through the `zk-server` binary).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::RawClient;
use zk_proto::*;
use zk_server::config::{FourLetterWhitelist, ServerConfig};
use zk_server::testing::TestingServer;

/// `line` alone after a minimal zoo.cfg.
fn parse_with(line: &str) -> ServerConfig {
    ServerConfig::parse(&format!("dataDir=/d\n{line}\n"))
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn every_system_property_is_accepted_with_and_without_the_zookeeper_prefix() {
    type Check = fn(&ServerConfig) -> bool;
    let cases: Vec<(&str, &str, Check)> = vec![
        ("extendedTypesEnabled", "true", |c| c.extended_types_enabled),
        (
            "DigestAuthenticationProvider.superDigest",
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            |c| c.super_digest.as_deref() == Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="),
        ),
        ("enforceQuota", "true", |c| c.enforce_quota),
        ("readonlymode.enabled", "true", |c| c.read_only_mode),
        ("jute.maxbuffer", "4096", |c| c.jute_max_buffer == 4096),
        ("skipACL", "yes", |c| c.skip_acl),
        ("containerCheckIntervalMs", "250", |c| {
            c.container_check_interval_ms == 250
        }),
        ("snapCount", "77", |c| c.snap_count == 77),
        ("reconfigEnabled", "true", |c| c.reconfig_enabled),
        ("4lw.commands.whitelist", "ruok, conf", |c| {
            c.four_letter_whitelist
                == FourLetterWhitelist::Only(["conf".to_string(), "ruok".to_string()].into())
        }),
    ];
    let defaults = parse_with("");
    for (key, value, check) in cases {
        assert!(!check(&defaults), "{key}: the test value is the default");
        for form in [key.to_string(), format!("zookeeper.{key}")] {
            let c = parse_with(&format!("{form}={value}"));
            assert!(check(&c), "{form}={value} not taken");
            assert!(
                c.ignored_keys.is_empty(),
                "{form} reported as ignored: {:?}",
                c.ignored_keys
            );
        }
    }
}

#[test]
fn with_no_argument_the_server_runs_standalone_on_2181_with_data_in_zk_data() {
    let c = ServerConfig::default();
    assert_eq!(
        c.client_addr,
        "127.0.0.1:2181".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.data_dir, PathBuf::from("zk-data"));
    assert!(
        c.data_dir.is_relative(),
        "./zk-data, relative to where it runs"
    );
    assert_eq!(c.data_log_dir, None);
    assert_eq!(c.log_store_dir(), PathBuf::from("zk-data/log"));
    assert!(c.peers.is_empty() && c.my_id.is_none(), "standalone");
    assert!(!c.extended_types_enabled && !c.enforce_quota && !c.read_only_mode);
    assert_eq!(c.jute_max_buffer, 1_048_575);
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (2 * c.tick_time_ms, 20 * c.tick_time_ms)
    );
    assert!(c.four_letter_enabled("srvr") && !c.four_letter_enabled("stat"));
}

/// A server started from zoo.cfg text (on a free loopback port, data in `dir`).
async fn from_zoo_cfg(dir: &Path, extra: &str) -> TestingServer {
    let config = ServerConfig::parse(&format!(
        "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n{extra}\n",
        dir.display()
    ))
    .unwrap();
    TestingServer::start_with(config).await.unwrap()
}

#[tokio::test]
async fn max_client_cnxns_from_zoo_cfg_limits_connections_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = from_zoo_cfg(dir.path(), "maxClientCnxns=2").await;
    let mut first = RawClient::connect(server.addr()).await;
    let mut second = RawClient::connect(server.addr()).await;
    let refused = RawClient::handshake(server.addr(), common::connect_request(30000)).await;
    assert!(
        refused.is_none(),
        "a third connection from 127.0.0.1 was served with maxClientCnxns=2"
    );
    first
        .create("/a", b"", CreateMode::Persistent)
        .await
        .unwrap();
    second.exists("/a", false).await.unwrap();
    // A slot frees when a connection goes.
    first.close_session().await;
    drop(first);
    let mut third = None;
    for _ in 0..50 {
        if let Some((c, _)) =
            RawClient::handshake(server.addr(), common::connect_request(30000)).await
        {
            third = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut third = third.expect("a slot after a connection closed");
    third.exists("/a", false).await.unwrap();
}

#[tokio::test]
async fn a_smaller_jute_maxbuffer_from_zoo_cfg_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let server = from_zoo_cfg(dir.path(), "jute.maxbuffer=2000").await;
    let mut c = RawClient::connect(server.addr()).await;
    c.create("/fits", &[7u8; 1500], CreateMode::Persistent)
        .await
        .unwrap();
    // A request frame past the limit closes that connection only.
    let request = Request::Create(CreateRequest {
        path: "/too-big".into(),
        data: Some(Bytes::from(vec![7u8; 3000])),
        acl: Acl::open_unsafe(),
        flags: 0,
    });
    let _ = c.send(&request).await;
    assert!(
        c.closed().await,
        "a 3000-byte request with jute.maxbuffer=2000"
    );
    let mut other = RawClient::connect(server.addr()).await;
    assert_eq!(
        other.exists("/too-big", false).await,
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        other.get("/fits", false).await.unwrap().0.map(|d| d.len()),
        Some(1500)
    );
}

// ---- the binary ----

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `zk-server zoo.cfg` with `extra` appended to a standalone zoo.cfg.
async fn spawn_binary(dir: &Path, extra: &str) -> (Process, SocketAddr) {
    spawn_binary_with(dir, extra, &[], &[]).await
}

/// `zk-server ARGS… zoo.cfg` with `extra` appended to a standalone zoo.cfg and `env`
/// set (and `SERVER_JVMFLAGS`/`JVMFLAGS` cleared unless `env` sets them).
async fn spawn_binary_with(
    dir: &Path,
    extra: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Process, SocketAddr) {
    let port = zk_server::testing::free_port().expect("a free port");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n{extra}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_zk-server"));
    command.env_remove("SERVER_JVMFLAGS").env_remove("JVMFLAGS");
    command.envs(env.iter().copied()).args(args);
    let child = command
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zk-server");
    let process = Process(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..200 {
        if zk_server::testing::four_letter_word(addr, "srvr")
            .await
            .is_some_and(|s| s.contains("Mode: standalone"))
        {
            return (process, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("zk-server from {} did not come up", cfg.display());
}

fn ttl_create() -> Request {
    Request::CreateTtl(CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl: 60_000,
    })
}

#[tokio::test]
async fn the_binary_takes_extended_types_from_zoo_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = spawn_binary(dir.path(), "zookeeper.extendedTypesEnabled=true").await;
    let mut c = RawClient::connect(addr).await;
    match c.call(ttl_create()).await {
        Ok(Response::Create2(r)) => assert_eq!(r.path, "/ttl"),
        other => panic!("createTTL with zookeeper.extendedTypesEnabled=true: {other:?}"),
    }

    // Without the key, the same binary refuses it as ZooKeeper does.
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = spawn_binary(dir.path(), "").await;
    let mut c = RawClient::connect(addr).await;
    assert_eq!(c.call(ttl_create()).await, Err(ErrorCode::Unimplemented));
}

/// Whether a TTL create succeeds (extended types on) or is Unimplemented (off).
async fn extended_types_on(addr: SocketAddr) -> bool {
    let mut c = RawClient::connect(addr).await;
    match c.call(ttl_create()).await {
        Ok(_) => true,
        Err(ErrorCode::Unimplemented) => false,
        other => panic!("createTTL: {other:?}"),
    }
}

/// (zoo.cfg line, `-D` arguments, environment, extended types expected on).
type PropertyCase<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, bool);

#[tokio::test]
async fn system_properties_come_from_d_arguments_and_jvmflags_in_zkserver_sh_order() {
    let on = "-Dzookeeper.extendedTypesEnabled=true";
    let off = "-Dzookeeper.extendedTypesEnabled=false";
    // (zoo.cfg line, arguments, environment, expected): SERVER_JVMFLAGS, then
    // JVMFLAGS, then -D arguments, then zoo.cfg; the last one naming the key wins.
    let off_env = format!("-Xmx64m {off}");
    let cases: Vec<PropertyCase> = vec![
        ("", vec![on], vec![], true),
        (
            "",
            vec![],
            vec![(
                "SERVER_JVMFLAGS",
                "-Xmx64m -XX:+UseG1GC -Dzookeeper.extendedTypesEnabled=true",
            )],
            true,
        ),
        ("", vec![], vec![("JVMFLAGS", on)], true),
        (
            "",
            vec![],
            vec![("SERVER_JVMFLAGS", on), ("JVMFLAGS", off_env.as_str())],
            false,
        ),
        ("", vec![off], vec![("JVMFLAGS", on)], false),
        (
            "",
            vec![on, "-Dfile.encoding=UTF-8", "-Dlog4j.configuration=file:/x"],
            vec![("JVMFLAGS", off)],
            true,
        ),
        ("extendedTypesEnabled=false", vec![on], vec![], false),
    ];
    for (line, args, env, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (_server, addr) = spawn_binary_with(dir.path(), line, &args, &env).await;
        assert_eq!(
            extended_types_on(addr).await,
            expected,
            "zoo.cfg {line:?}, args {args:?}, env {env:?}"
        );
    }
}

#[tokio::test]
async fn the_super_digest_as_the_kazoo_harness_passes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = spawn_binary_with(
        dir.path(),
        "",
        &["-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="],
        &[],
    )
    .await;
    // A node only its creator may touch...
    let mut owner = RawClient::connect(addr).await;
    owner
        .call(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"bob:pw"),
        }))
        .await
        .expect("auth as bob");
    owner
        .call(Request::Create(CreateRequest {
            path: "/bobs".into(),
            data: Some(Bytes::new()),
            acl: vec![Acl::new(Perms::ALL, Id::new("auth", ""))],
            flags: 0,
        }))
        .await
        .expect("create /bobs");
    let mut other = RawClient::connect(addr).await;
    assert_eq!(other.set("/bobs", b"x", -1).await, Err(ErrorCode::NoAuth));
    // ...which super (password "test", as the -D digest says) may change.
    let mut admin = RawClient::connect(addr).await;
    admin
        .call(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"super:test"),
        }))
        .await
        .expect("auth as super");
    assert!(admin.set("/bobs", b"x", -1).await.is_ok());
}

#[test]
fn help_and_version() {
    let help = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg("--help")
        .output()
        .expect("zk-server --help");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Usage: zk-server") && text.contains("-D <NAME=VALUE>"),
        "{text}"
    );
    let version = Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .arg("--version")
        .output()
        .expect("zk-server --version");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("zk-server {}", env!("CARGO_PKG_VERSION"))
    );
}
