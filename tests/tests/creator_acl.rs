//! The `auth` ACL scheme (`CREATOR_ALL_ACL`, `auth::cdrwa`): an empty id stands for
//! every authenticated identity of the creating session. Driven through kazoo (which
//! sends the empty id as null), Curator's `ZooDefs.Ids.CREATOR_ALL_ACL` and zkCli.sh,
//! with and without auth added, against Apache ZooKeeper 3.8 and our server: each
//! client's transcript must be the same on both, and say what ZooKeeper says (the node
//! for an authenticated client, InvalidACL for one that has not added auth, NoNode for
//! a missing parent).

use std::process::{Command, Stdio};
use std::time::Duration;

use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::{interop_dir, python_with_kazoo, run, zkcli};

/// What a client printed, less the lines that differ by run (session ids, ports, the
/// Java client's warnings and stack traces when a connection closes).
fn transcript(out: &std::process::Output) -> Vec<String> {
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .map(str::trim_end)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with('[')
                && !l.starts_with('\t')
                && !l.starts_with("SLF4J")
                && !l.starts_with("Connecting to")
                && !l.starts_with("EndOfStreamException")
                && !l.contains("WATCHER")
                && !l.contains("WatchedEvent")
        })
        .map(str::to_string)
        .collect()
}

async fn kazoo(hosts: &str) -> Vec<String> {
    let mut cmd = Command::new(python_with_kazoo());
    cmd.arg(interop_dir().join("kazoo_creator_acl.py"))
        .arg(hosts);
    let out = run(cmd).await;
    assert!(out.status.success(), "kazoo: {:?}", transcript(&out));
    // Its cases are on stdout; kazoo's own log (stderr) says how each connection
    // closed, which varies from run to run.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn curator(hosts: &str) -> Vec<String> {
    let source = std::fs::read_to_string(interop_dir().join("CreatorAcl.java")).unwrap();
    let root = zk_tests::java::scratch(&std::env::temp_dir(), "creator-acl");
    zk_tests::java::run_curator(
        &root,
        "CreatorAcl",
        &source,
        &[hosts],
        Duration::from_secs(60),
    )
    .await
}

async fn zkcli_session(hosts: &str) -> Vec<String> {
    let script = std::fs::read(interop_dir().join("zkcli_creator_acl.txt")).unwrap();
    let hosts = hosts.to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(zkcli())
            .args(["-server", &hosts])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zkCli.sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&script)
            .expect("script");
        child.wait_with_output().expect("zkCli.sh output")
    })
    .await
    .unwrap();
    transcript(&out)
}

fn assert_has(lines: &[String], want: &[&str], who: &str) {
    for w in want {
        assert!(
            lines.iter().any(|l| l == w),
            "{who} lacks {w:?}:\n{}",
            lines.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creator_all_acl_as_apache_zookeeper_treats_it() {
    let apache = ApacheZk::start().await;
    let ours = TestingServer::start().await.unwrap();
    let (theirs, mine) = (apache.connect_string(), ours.connect_string());

    let (k_apache, k_ours) = (kazoo(&theirs).await, kazoo(&mine).await);
    assert_eq!(k_ours, k_apache, "kazoo: ours (left) vs Apache (right)");
    let digest = "digest:user:2Om+GBbT2q/tS6pdvACZbbm7/1A=:31";
    assert_has(
        &k_ours,
        &[
            "no auth, create: InvalidACLError",
            "auth, create: ok /ca-user",
            &format!("auth, its ACL: ok ['{digest}']"),
            "auth, missing parent: NoNodeError",
            "no auth, read: NoAuthError",
            "same identity, read: ok b'v'",
            "no auth, in a multi: ok ['InvalidACLError']",
        ],
        "kazoo",
    );

    let (c_apache, c_ours) = (curator(&theirs).await, curator(&mine).await);
    assert_eq!(c_ours, c_apache, "Curator: ours (left) vs Apache (right)");
    assert_has(
        &c_ours,
        &[
            "no auth, create: InvalidACLException",
            "auth, create: ok /cur-user",
            &format!("auth, its ACL: ok {digest}"),
            "auth, parents: ok /cur-p/a/b",
            "no auth, read: NoAuthException",
            "auth, read: ok v",
        ],
        "Curator",
    );

    let (z_apache, z_ours) = (zkcli_session(&theirs).await, zkcli_session(&mine).await);
    assert_eq!(z_ours, z_apache, "zkCli.sh: ours (left) vs Apache (right)");
    assert_has(
        &z_ours,
        &[
            "KeeperErrorCode = InvalidACL for /za",
            "Created /za",
            "'digest,'user:2Om+GBbT2q/tS6pdvACZbbm7/1A=",
            "Node does not exist: /zb/c",
        ],
        "zkCli.sh",
    );
}
