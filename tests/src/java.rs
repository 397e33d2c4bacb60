//! Java programs the interop tests run beside our code (Curator, mostly): Debian's jars
//! on a classpath, javac, a scratch directory per test process, and a transcript of
//! what the processes printed. A missing JDK or jar fails the test loudly, naming
//! `scripts/install-test-deps.sh`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Curator 5.4's recipes and what they need (Debian packages libcurator-recipes-java,
/// libcurator-framework-java, libcurator-client-java, libguava-java, libzookeeper-java,
/// libslf4j-java).
pub const CURATOR_JARS: &[&str] = &[
    "curator-recipes",
    "curator-framework",
    "curator-client",
    "guava",
    "zookeeper",
    "zookeeper-jute",
    "slf4j-api",
    "slf4j-simple",
];

/// The classpath of `jars` (names under /usr/share/java); `missing` says which
/// package brings them when one is not there.
pub fn classpath(jars: &[&str], missing: &str) -> String {
    let jars: Vec<String> = jars
        .iter()
        .map(|jar| {
            let path = format!("/usr/share/java/{jar}.jar");
            assert!(
                Path::new(&path).exists(),
                "{path} is missing: install {missing} with scripts/install-test-deps.sh"
            );
            path
        })
        .collect();
    jars.join(":")
}

/// `root/<tag>-<pid>`: this test process's scratch directory, created; leftovers of
/// earlier processes that are gone are removed first.
pub fn scratch(root: &Path, tag: &str) -> PathBuf {
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix(tag)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|pid| !Path::new("/proc").join(pid).exists());
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Compiles `source` against `classpath` into `out` with javac (`-Xlint:all -Werror`
/// when `strict`); returns `out`.
pub fn compile(source: &Path, classpath: &str, out: &Path, strict: bool) -> PathBuf {
    std::fs::create_dir_all(out).expect("classes directory");
    let mut javac = std::process::Command::new("javac");
    if strict {
        javac.args(["-Xlint:all,-path", "-Werror"]);
    }
    let compiled = javac
        .arg("-d")
        .arg(out)
        .arg("-cp")
        .arg(classpath)
        .arg(source)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "javac not runnable ({e}): install a JDK (default-jdk-headless) with \
                 scripts/install-test-deps.sh"
            )
        });
    assert!(
        compiled.status.success(),
        "javac {} failed:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&compiled.stdout),
        String::from_utf8_lossy(&compiled.stderr)
    );
    out.to_path_buf()
}

/// Compiles `source` (public class `class`) against Curator's jars in a scratch
/// directory under `root`, runs it with `args` (at most `wait`), and returns its
/// standard output lines; a failure of either fails the test.
pub async fn run_curator(
    root: &Path,
    class: &str,
    source: &str,
    args: &[&str],
    wait: Duration,
) -> Vec<String> {
    let classpath = classpath(CURATOR_JARS, "Curator's Debian packages");
    let dir = root.join(format!("{class}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let file = dir.join(format!("{class}.java"));
    std::fs::write(&file, source).expect("write the Java source");
    let (file_in, cp_in, dir_in) = (file.clone(), classpath.clone(), dir.clone());
    tokio::task::spawn_blocking(move || compile(&file_in, &cp_in, &dir_in, false))
        .await
        .expect("javac");
    let ran = tokio::time::timeout(
        wait,
        tokio::process::Command::new("java")
            .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{classpath}:{}", dir.display()))
            .arg(class)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Java side finished")
    .expect("java");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ran.status.success(),
        "{class} failed: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    String::from_utf8_lossy(&ran.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Everything the processes printed and the test did, timed, for failure messages.
#[derive(Clone)]
pub struct Transcript {
    start: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

impl Transcript {
    /// An empty transcript; times count from now.
    pub fn new() -> Transcript {
        Transcript {
            start: Instant::now(),
            lines: Arc::default(),
        }
    }

    /// Adds a line, stamped with the milliseconds since the start.
    pub fn note(&self, line: impl AsRef<str>) {
        let at = self.start.elapsed().as_millis();
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(format!("{at:>6} ms  {}", line.as_ref()));
        }
    }

    /// All lines so far.
    pub fn dump(&self) -> String {
        self.lines.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}
