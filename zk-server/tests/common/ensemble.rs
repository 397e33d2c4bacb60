//! An ensemble of real `zk-server` processes on loopback, for tests that crash, stop,
//! pause and restart members: one zoo.cfg and myid per member under a temp dir, each
//! member's stdout and stderr appended to `<dir>/server.log` (with a marker line per
//! start), and its `mntr` answer as a map. Every process still running is killed when
//! its [`Member`] is dropped, also when the test panics.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use zk_server::testing::{four_letter_word, free_port};

/// One member: its directory (zoo.cfg, data/, server.log), client address and process.
pub struct Member {
    /// The member's `server.N` id (also its myid).
    pub id: u64,
    /// Holds zoo.cfg, data/ and server.log.
    pub dir: PathBuf,
    /// The client port, on 127.0.0.1.
    pub client: SocketAddr,
    child: Option<Child>,
    starts: u32,
}

impl Member {
    /// Starts the process (its output goes to [`Member::log_path`]).
    pub fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "member {} is already running",
            self.id
        );
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the member's log file");
        writeln!(
            log,
            "==== test harness: start #{} of member {} ====",
            self.starts, self.id
        )
        .expect("write the member's log file");
        let err = log.try_clone().expect("clone the log file handle");
        let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
            .arg(self.dir.join("zoo.cfg"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start zk-server");
        self.child = Some(child);
    }

    /// Whether this member's process was started and not killed or stopped since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The running process's pid.
    pub fn pid(&self) -> libc::pid_t {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("member {} is not running", self.id));
        libc::pid_t::try_from(child.id()).expect("a pid fits pid_t")
    }

    /// `kill -9`, then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL, which also ends a stopped process
            let _ = child.wait();
        }
    }

    /// SIGTERM (a clean stop), then waits up to `within` for the exit; past that the
    /// process is killed and the error says so.
    pub async fn terminate(&mut self, within: Duration) -> Result<ExitStatus, String> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("a running member");
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(None) => {
                    self.kill();
                    return Err(format!(
                        "member {} did not exit within {within:?} of SIGTERM (killed)",
                        self.id
                    ));
                }
                Err(e) => {
                    self.kill();
                    return Err(format!("member {}: waiting for its exit: {e}", self.id));
                }
            }
        }
    }

    /// Sends `signal` to the running process (SIGSTOP, SIGCONT, SIGTERM...).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped (the
        // `Child` is still held), so the pid cannot name another process.
        let r = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(
            r,
            0,
            "kill({}, {signal}) for member {}: {}",
            self.pid(),
            self.id,
            std::io::Error::last_os_error()
        );
    }

    /// Where the process's stdout and stderr go (appended over restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The end of the member's log, for a failure message: its last `lines` distinct
    /// lines, where lines differing only in timestamp and numbers count as one (shown
    /// once, at their last occurrence, with how many there were), so that a message
    /// repeated every few milliseconds does not hide the rest.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = match std::fs::read_to_string(self.log_path()) {
            Ok(text) => text,
            Err(e) => return format!("(no log: {e})"),
        };
        let mut shown: Vec<(&str, usize)> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines().rev() {
            let key: String = if line.starts_with("====") {
                line.to_string() // the harness's start markers, each shown
            } else {
                line.split_once(' ')
                    .map_or(line, |(_, rest)| rest)
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect()
            };
            match index.get(&key) {
                Some(&i) => shown[i].1 += 1,
                None if shown.len() < lines => {
                    index.insert(key, shown.len());
                    shown.push((line, 1));
                }
                None => {}
            }
        }
        shown
            .iter()
            .rev()
            .map(|(line, n)| match n {
                1 => line.to_string(),
                n => format!("{line}  [{n} such lines]"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The member's `mntr` answer, or `None` if it gave none within two seconds.
    pub async fn mntr(&self) -> Option<Mntr> {
        four_letter_word(self.client, "mntr")
            .await
            .filter(|answer| !answer.is_empty())
            .map(|answer| Mntr::parse(&answer))
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `mntr` answer: its `key\tvalue` lines.
#[derive(Debug, Clone, Default)]
pub struct Mntr(pub BTreeMap<String, String>);

impl Mntr {
    /// Parses `key\tvalue` lines (others are skipped).
    pub fn parse(answer: &str) -> Mntr {
        Mntr(
            answer
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    /// The value of `key`, if the answer has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `zk_server_state`: leader, follower, observer, looking...
    pub fn state(&self) -> Option<&str> {
        self.get("zk_server_state")
    }
}

/// The members, configured (`tickTime=500`, every four-letter word allowed, loopback,
/// free ports) in a temp dir that goes when the ensemble is dropped, unless the test
/// failed and `ZK_TEST_KEEP_DIRS` is set (the path is then printed).
pub struct Ensemble {
    /// Member `i` has id `i + 1`.
    pub members: Vec<Member>,
    root: tempfile::TempDir,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
        if std::thread::panicking() && std::env::var_os("ZK_TEST_KEEP_DIRS").is_some() {
            self.root.disable_cleanup(true);
            eprintln!("ensemble kept in {}", self.root.path().display());
        }
    }
}

fn port() -> u16 {
    free_port().expect("a free loopback port")
}

impl Ensemble {
    /// Writes the configuration of `size` voting members; starts none.
    pub fn configure(size: usize) -> Ensemble {
        let root = tempfile::tempdir().expect("a temp dir");
        let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (port(), port(), port())).collect();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, elect))| format!("server.{}=127.0.0.1:{peer}:{elect}\n", i + 1))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, _, _))| {
                let id = i as u64 + 1;
                let dir = root.path().join(format!("m{id}"));
                let data = dir.join("data");
                std::fs::create_dir_all(&data).expect("create the data dir");
                std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
                std::fs::write(
                    dir.join("zoo.cfg"),
                    format!(
                        "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{servers}",
                        data.display()
                    ),
                )
                .expect("write zoo.cfg");
                Member {
                    id,
                    dir,
                    client: SocketAddr::from(([127, 0, 0, 1], *client)),
                    child: None,
                    starts: 0,
                }
            })
            .collect();
        Ensemble { members, root }
    }

    /// Configures `size` members and starts them all.
    pub fn start(size: usize) -> Ensemble {
        let mut ensemble = Ensemble::configure(size);
        for m in &mut ensemble.members {
            m.spawn();
        }
        ensemble
    }

    /// The temp dir holding every member's directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Every member's client address, comma-separated.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every member's `zk_server_state` now (`None`: no answer), asked concurrently.
    pub async fn states(&self) -> Vec<Option<String>> {
        futures::future::join_all(
            self.members
                .iter()
                .map(|m| async move { m.mntr().await.and_then(|a| a.state().map(str::to_string)) }),
        )
        .await
    }

    /// Waits until one member says it leads and every other that it follows; returns
    /// the leader's index in `members`. Panics with the states seen after `within`.
    pub async fn wait_for_quorum(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let states = self.states().await;
            let leaders: Vec<usize> = (0..states.len())
                .filter(|i| states[*i].as_deref() == Some("leader"))
                .collect();
            let followers = states
                .iter()
                .filter(|s| s.as_deref() == Some("follower"))
                .count();
            if leaders.len() == 1 && followers + 1 == states.len() {
                return leaders[0];
            }
            assert!(
                Instant::now() < deadline,
                "no quorum formed within {within:?}: states by member id {:?}",
                states
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
