//! Shared harness for the cross-crate tests in `tests/tests/`: finding the external
//! tools a test drives (failing loudly when one is missing), and checking recorded
//! histories.
//!
//! - [`linearizability`]: a linearizability checker for a znode used as a register.
//! - [`apache`]: Apache ZooKeeper 3.8 as a child process, for side-by-side runs.
//! - [`certs`]: a CA and the certificates it signs, made at run time (TLS tests).
//! - [`java`]: Java programs (Curator) beside ours: classpath, javac, transcript.
//! - [`proxy`]: a TCP forwarder a test can cut or stall.
//! - [`lock_monitor`]: who is inside a lock, as the storage it guards would see it.
//! - [`netns`]: hosts in network namespaces on a bridge, with silent-drop partitions.

pub mod apache;
pub mod certs;
pub mod java;
pub mod linearizability;
pub mod lock_monitor;
pub mod netns;
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

/// Runs a command to completion off the async runtime's threads.
pub async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("spawn"))
        .await
        .expect("join")
}
