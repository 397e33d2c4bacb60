//! `zk-server import` and `zk-server export` as an operator runs them: our data out to
//! ZooKeeper's format and back in, and the refusals (a damaged snapshot, a
//! destination that holds data) with the file named and nothing written. The same
//! against files Apache ZooKeeper itself wrote: `tests/tests/apache_data.rs`.

use std::path::Path;
use std::process::{Command, Output};

use zk_client::{Client, CreateMode};
use zk_server::testing::{test_config, TestingServer};

fn zoo_cfg(dir: &Path, data: &Path) -> std::path::PathBuf {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort=2181\n",
            data.display()
        ),
    )
    .unwrap();
    cfg
}

fn zk_server(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zk-server"))
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("JVMFLAGS")
        .args(args)
        .output()
        .expect("run zk-server")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_through_the_cli_and_its_refusals() {
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("first");
    // Some data of ours: a znode, an ephemeral of an open session.
    let mut server = TestingServer::start_with(test_config(&first))
        .await
        .unwrap();
    let client = Client::connect(&server.connect_string()).await.unwrap();
    client.create("/a").data(b"one").await.unwrap();
    client
        .create("/a/e")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, stat) = client.get_data("/a").await.unwrap();
    server.stop().await;

    let apache = root.path().join("apache");
    let cfg = zoo_cfg(root.path(), &first);
    let out = zk_server(&[
        "export".as_ref(),
        "--to".as_ref(),
        apache.as_os_str(),
        cfg.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("exported"), "{}", text(&out));
    let v2 = apache.join("version-2");
    let snapshot = v2.join(entries(&v2).pop().unwrap());

    // Into an empty directory: the same znodes, Stats and session. ZooKeeper's files
    // hold no passwords: ZooKeeper derives them from the session id, and so does the
    // import (our server's own sessions have random ones, which the way out loses).
    let second = root.path().join("second");
    let cfg2 = root.path().join("second.cfg");
    std::fs::write(
        &cfg2,
        format!(
            "tickTime=500\ndataDir={}\nclientPort=2181\n",
            second.display()
        ),
    )
    .unwrap();
    let out = zk_server(&[
        "import".as_ref(),
        "--from".as_ref(),
        apache.as_os_str(),
        cfg2.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let server = TestingServer::start_with(test_config(&second))
        .await
        .unwrap();
    let again = Client::builder(&server.connect_string())
        .session(
            client.session_id(),
            &zk_server::apache_data::java_random::session_password(client.session_id()),
        )
        .connect()
        .await
        .unwrap();
    assert_eq!(again.get_data("/a").await.unwrap(), (b"one".to_vec(), stat));
    let eph = again.exists("/a/e").await.unwrap().unwrap();
    assert_eq!(eph.ephemeral_owner, client.session_id());
    drop(server);

    // A second import over it is refused, naming what is there; nothing changes.
    let before = entries(&second.join("snapshots"));
    let out = zk_server(&[
        "import".as_ref(),
        "--from".as_ref(),
        apache.as_os_str(),
        cfg2.as_os_str(),
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("already holds data")
            && said.contains(&second.join("snapshots").display().to_string()),
        "{said}"
    );
    assert_eq!(entries(&second.join("snapshots")), before);

    // A damaged snapshot: refused, named, nothing written.
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&snapshot, bytes).unwrap();
    let third = root.path().join("third");
    let cfg3 = root.path().join("third.cfg");
    std::fs::write(
        &cfg3,
        format!(
            "tickTime=500\ndataDir={}\nclientPort=2181\n",
            third.display()
        ),
    )
    .unwrap();
    let out = zk_server(&[
        "import".as_ref(),
        "--from".as_ref(),
        apache.as_os_str(),
        cfg3.as_os_str(),
    ]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(&snapshot.display().to_string()) && said.contains("checksum mismatch"),
        "{said}"
    );
    assert!(entries(&third).is_empty(), "left {:?}", entries(&third));

    // No ZooKeeper data at all.
    let out = zk_server(&[
        "import".as_ref(),
        "--from".as_ref(),
        root.path().join("none").as_os_str(),
        cfg3.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no Apache ZooKeeper data"),
        "{}",
        text(&out)
    );
}

/// A data directory Apache ZooKeeper 3.8 wrote (snappy snapshots, snapCount=10, the
/// logs' preallocated zeros trimmed) and what kazoo read from it before it stopped
/// (`expected.json`: every znode's data, Stat, ACL and children, and the open session
/// with the password ZooKeeper gave it).
fn golden() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/zookeeper-3.8-data")
}

#[test]
fn every_file_zookeeper_wrote_checks_out() {
    use zk_server::apache_data::snapshot::ApacheSnapshot;
    use zk_server::apache_data::stream::Compression;
    use zk_server::apache_data::txnlog::parse_log;
    let dir = golden().join("version-2");
    let mut snapshots = 0;
    let mut records = 0;
    for name in entries(&dir) {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        if name.starts_with("snapshot.") {
            let plain = Compression::of_file_name(&name).decode(bytes).unwrap();
            let snap = ApacheSnapshot::parse(&plain).unwrap();
            assert!(snap.digest.is_some(), "3.8 writes a digest section: {name}");
            snapshots += 1;
        } else {
            records += parse_log(&bytes).unwrap().len();
        }
    }
    assert_eq!(snapshots, 4);
    assert!(records > 20, "{records} records");
}

#[test]
fn zookeepers_own_data_imports_as_kazoo_saw_it() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden().join("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, snapshot, logs, transactions) =
        zk_server::apache_data::import::read_apache(&zk_server::apache_data::ImportOptions {
            data_dir: golden(),
            data_log_dir: None,
            accept_torn_tail: false,
            config: test_config(dir.path()),
        })
        .unwrap();
    assert!(snapshot.unwrap().ends_with("snapshot.17.snappy"));
    assert_eq!(logs.len(), 2);
    assert!(transactions > 0, "the log after the snapshot was replayed");
    let tree = expected["tree"].as_object().unwrap();
    let ours: std::collections::BTreeSet<String> = db.tree().iter().map(|(p, _)| p).collect();
    let theirs: std::collections::BTreeSet<String> = tree.keys().cloned().collect();
    assert_eq!(ours, theirs);
    let int = |v: &serde_json::Value| v.as_i64().unwrap();
    for (path, want) in tree {
        let node = db.tree().get(path).unwrap();
        let s = node.stat();
        let stat: Vec<i64> = want["stat"].as_array().unwrap().iter().map(int).collect();
        // kazoo's ZnodeStat order.
        let got = vec![
            s.czxid,
            s.mzxid,
            s.ctime,
            s.mtime,
            s.version.into(),
            s.cversion.into(),
            s.aversion.into(),
            s.ephemeral_owner,
            s.data_length.into(),
            s.num_children.into(),
            s.pzxid,
        ];
        assert_eq!(got, stat, "Stat of {path}");
        let data: Option<String> = node
            .data_slice()
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect());
        assert_eq!(data.as_deref(), want["data"].as_str(), "data of {path}");
        let acl: Vec<(i64, String, String)> = want["acl"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    int(&a[0]),
                    a[1].as_str().unwrap().into(),
                    a[2].as_str().unwrap().into(),
                )
            })
            .collect();
        let got: Vec<(i64, String, String)> = node
            .acl()
            .iter()
            .map(|a| (i64::from(a.perms), a.id.scheme.clone(), a.id.id.clone()))
            .collect();
        assert_eq!(got, acl, "ACL of {path}");
    }
    // The session kazoo left open, with the password ZooKeeper gave it.
    let id = i64::from_str_radix(
        expected["session"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let session = db.session(id).expect("the open session");
    let password: String = session.passwd.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(password, expected["password"].as_str().unwrap());
    assert_eq!(db.tree().get("/app/eph").unwrap().ephemeral_owner(), id);
}
