//! Real ZooKeeper clients against our server: Python's kazoo and Apache ZooKeeper's own
//! zkCli.sh. Each asserts what the client printed, not just its exit status.

use std::process::{Command, Stdio};

use zk_server::testing::{TestingCluster, TestingServer};
use zk_tests::{interop_dir, python_with_kazoo, run, zkcli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_exercises_every_basic_feature() {
    let server = TestingServer::start().await.unwrap();
    run_kazoo(&server.connect_string()).await;
}

/// The same script against a 3-member ensemble of ours, kazoo given every member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kazoo_exercises_every_basic_feature_on_an_ensemble() {
    let cluster = TestingCluster::start(3).await.unwrap();
    cluster
        .wait_for_leader(std::time::Duration::from_secs(20))
        .await
        .expect("a leader");
    run_kazoo(&cluster.connect_string()).await;
    cluster.shutdown().await;
}

async fn run_kazoo(hosts: &str) {
    let mut cmd = Command::new(python_with_kazoo());
    cmd.arg(interop_dir().join("kazoo_client.py")).arg(hosts);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kazoo failed:\n{stdout}\n{stderr}");
    let passed: usize = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("kazoo: ")?
                .strip_suffix(" checks passed")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}\n{stderr}"));
    assert!(
        passed >= 40,
        "only {passed} kazoo checks ran (the script has 40)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkcli_session_prints_what_zookeeper_prints() {
    let server = TestingServer::start().await.unwrap();
    let script = std::fs::read(interop_dir().join("zkcli_session.txt")).unwrap();
    let zkcli = zkcli();
    let addr = server.connect_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(zkcli)
            .args(["-server", &addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zkCli.sh");
        child.stdin.take().unwrap().write_all(&script).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let has = |want: &str| lines.contains(&want);
    for want in [
        "Created /cli",
        "Created /cli/eph",
        "Created /cli/seq-0000000001",
        "[eph, seq-0000000001]",
        "hello",
        "world",
        "dataVersion = 1",
        "numChildren = 2",
        "ephemeralOwner = 0x0",
        "'digest,'bob:ikIaKsbtGweaHnb/jKn7OHqbunM=",
        ": cdrwa",
        "Created /cli/q",
        "3",
        "[/cli/eph]",
        "digest: bob",
        "ip: 127.0.0.1",
        "absolute path is /zookeeper/quota/cli/q/zookeeper_limits",
        "Output quota for /cli/q count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
        "Output stat for /cli/q count=2,bytes=4",
        "Output stat for /cli/q count=3,bytes=4",
        "quota for /cli/q does not exist.",
        "[zookeeper]",
    ] {
        assert!(has(want), "zkCli output lacks {want:?}:\n{text}");
    }
    assert!(
        !text.contains("Exception"),
        "zkCli reported an exception:\n{text}"
    );
}
