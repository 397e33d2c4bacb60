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

/// The current `zk-server` binary, beside the running test (in `target/<profile>/`), for
/// tests that run our server as real processes. `cargo test --workspace` builds it
/// first; when the binary is missing or older than the server's sources (a test of
/// this package alone, or sources changed since), it is built here with cargo, once
/// per test process, so a test never runs a stale server.
pub fn zk_server_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        // target/<profile>/deps/<test>: the profile directory and the target directory.
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile> directory")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target directory");
        let bin = profile_dir.join("zk-server");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sources = [
            "zk-server/src",
            "zk-server/Cargo.toml",
            "zk-proto/src",
            "zk-proto/Cargo.toml",
            "Cargo.lock",
        ];
        let newest_source = sources
            .iter()
            .filter_map(|p| newest_mtime(&workspace.join(p)))
            .max();
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let current = matches!((built, newest_source), (Some(b), Some(s)) if b >= s);
        if !current {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .current_dir(&workspace)
                .args([
                    "build",
                    "-p",
                    "zk-server",
                    "--bin",
                    "zk-server",
                    "--target-dir",
                ])
                .arg(target_dir);
            if profile_dir.file_name().is_some_and(|p| p == "release") {
                build.arg("--release");
            }
            eprintln!(
                "{} is {}: building it ({build:?})",
                bin.display(),
                if built.is_some() {
                    "older than its sources"
                } else {
                    "missing"
                }
            );
            let status = build.status().expect("run cargo to build zk-server");
            assert!(status.success(), "building zk-server failed: {status}");
        }
        assert!(bin.exists(), "{} is missing after the build", bin.display());
        bin
    })
    .clone()
}

/// The newest modification time of `path` or of any file below it (`target`
/// directories and hidden entries aside); `None` when nothing is there.
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name != "target"
        })
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
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

/// A line diff of `expected` and `actual` (an LCS alignment: `  ` both, `- ` only
/// expected, `+ ` only actual, with two lines of context around each change and `…`
/// between hunks), or `None` when they are equal.
pub fn diff_lines(expected: &[String], actual: &[String]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut rows: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            rows.push((' ', &expected[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            rows.push(('+', &actual[j]));
            j += 1;
        } else {
            rows.push(('-', &expected[i]));
            i += 1;
        }
    }
    let near_change = |k: usize| {
        rows[k.saturating_sub(2)..(k + 3).min(rows.len())]
            .iter()
            .any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (c, line)) in rows.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("…\n");
                skipped = false;
            }
            out.push_str(&format!("{c} {line}\n"));
        } else {
            skipped = true;
        }
    }
    Some(out)
}
