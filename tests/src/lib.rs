//! Shared harness for the cross-crate tests in `tests/tests/`: finding the external
//! tools a test drives (failing loudly when one is missing), and checking recorded
//! histories.
//!
//! - [`linearizability`]: a linearizability checker for a znode used as a register.
//! - [`apache`]: Apache ZooKeeper 3.8 as a child process, for side-by-side runs.
//! - [`certs`]: a CA and the certificates it signs, made at run time (TLS tests).
//! - [`java`]: Java programs (Curator) beside ours: classpath, javac, transcript.
//! - [`proxy`]: a TCP forwarder a test can cut or stall.
//! - [`http`]: a GET on the operator endpoints (hyper's client).
//! - [`lock_monitor`]: who is inside a lock, as the storage it guards would see it.
//! - [`netns`]: hosts in network namespaces on a bridge, with silent-drop partitions.
//! - [`process_ensemble`]: an ensemble of `zk-server` processes, killed with SIGKILL
//!   and started again on their ports and data, roles read with four-letter words.

pub mod apache;
pub mod certs;
pub mod http;
pub mod java;
pub mod linearizability;
pub mod lock_monitor;
pub mod netns;
pub mod process_ensemble;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where interop scripts live.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Apache ZooKeeper's zkCli.sh from the Debian package.
pub fn zkcli() -> PathBuf {
    let path = PathBuf::from("/usr/share/zookeeper/bin/zkCli.sh");
    assert!(
        path.exists(),
        "zkCli.sh not found at {}: install the Debian package `zookeeper` (scripts/install-test-deps.sh)",
        path.display()
    );
    path
}

/// The project's Python, `.venv/bin/python` (scripts/install-test-deps.sh makes it
/// with the pinned packages of scripts/python-requirements.txt), which imports kazoo.
pub fn python_with_kazoo() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import kazoo"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{} with kazoo is required: run scripts/install-test-deps.sh",
        python.display()
    );
    python
}

/// The `zk-server` binary cargo built beside the running test (in `target/<profile>/`),
/// for tests that run our server as real processes. `cargo test --workspace` builds
/// it; a test of this package alone does not, so a missing one fails loudly.
pub fn zk_server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("zk-server"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p zk-server`; `cargo test --workspace` does)",
        bin.display()
    );
    bin
}

/// Runs Apache's zkCli.sh with `args` (e.g. `-server h:p`) and `env` (e.g.
/// `CLIENT_JVMFLAGS`), `script` on its standard input, off the async runtime's threads;
/// returns everything it printed, standard output then standard error.
pub async fn zkcli_script(args: &[&str], env: &[(&str, &str)], script: &str) -> String {
    let mut command = Command::new(zkcli());
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let script = script.as_bytes().to_vec();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().expect("zkCli.sh");
        child
            .stdin
            .take()
            .expect("zkCli.sh's stdin")
            .write_all(&script)
            .expect("the script");
        child.wait_with_output().expect("zkCli.sh's output")
    })
    .await
    .expect("join");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs a command to completion off the async runtime's threads.
pub async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("spawn"))
        .await
        .expect("join")
}
