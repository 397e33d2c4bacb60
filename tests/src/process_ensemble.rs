//! An ensemble of real `zk-server` processes on loopback, for tests that kill members
//! with `kill -9` (SIGKILL) and start them again.
//!
//! Member `N` (ids `1..=size`, as in `server.N` and `myid`) has a directory of its own
//! under a temporary root: `zoo.cfg`, `data/` and `server.log`, where the process writes
//! everything it prints (`RUST_LOG=info`). The harness writes its own steps into the same
//! log (lines stamped like the server's, target `process_ensemble`), so a failing test can
//! show a member's log and the kills and starts among its lines ([`log_tail`],
//! [`log_between`]).
//!
//! Roles are read as an operator reads them, with four-letter words on the client port:
//! `srvr`'s `Mode:` for the leader, `mntr`'s `zk_server_state` and `zk_raft_term` for a
//! member serving again after a restart. Every process still running is killed when the
//! ensemble is dropped.
//!
//! The binary is [`crate::zk_server_binary`] (the current one: built when stale).
//!
//! [`log_tail`]: ProcessEnsemble::log_tail
//! [`log_between`]: ProcessEnsemble::log_between

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zk_server::testing::{four_letter_word, free_port};

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);
/// How many times [`ProcessEnsemble::restart`] starts a process that exits at once.
const START_ATTEMPTS: usize = 5;

/// One member: where it lives, where its clients connect, and its process if running.
struct ProcessMember {
    id: u64,
    dir: PathBuf,
    client: SocketAddr,
    child: Option<Child>,
    /// How many times its process was started.
    starts: usize,
}

impl ProcessMember {
    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }
}

/// `size` `zk-server` processes forming one ensemble; see the module documentation.
pub struct ProcessEnsemble {
    bin: PathBuf,
    members: Vec<ProcessMember>,
    // Last: the directories go after the processes are killed.
    root: tempfile::TempDir,
}

impl ProcessEnsemble {
    /// Writes each member's `zoo.cfg` and `myid` (free loopback ports, tickTime 500,
    /// syncLimit 5, every four-letter word) and starts every member's process. Returns
    /// at once: wait for a quorum with [`ProcessEnsemble::wait_for_leader`].
    pub fn start(size: usize) -> std::io::Result<ProcessEnsemble> {
        let root = tempfile::tempdir()?;
        let mut ports = Vec::with_capacity(size);
        for _ in 0..size {
            ports.push((free_port()?, free_port()?, free_port()?));
        }
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, elect))| format!("server.{}=127.0.0.1:{peer}:{elect}\n", i + 1))
            .collect();
        let mut members = Vec::with_capacity(size);
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let dir = root.path().join(format!("m{id}"));
            let data = dir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{id}\n"))?;
            std::fs::write(
                dir.join("zoo.cfg"),
                format!(
                    "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
                     clientPort={client}\nclientPortAddress=127.0.0.1\n\
                     admin.enableServer=false\n4lw.commands.whitelist=*\n{servers}",
                    data.display()
                ),
            )?;
            members.push(ProcessMember {
                id,
                dir,
                client: SocketAddr::from(([127, 0, 0, 1], *client)),
                child: None,
                starts: 0,
            });
        }
        let mut ensemble = ProcessEnsemble {
            bin: crate::zk_server_binary(),
            members,
            root,
        };
        for id in ensemble.ids() {
            ensemble.spawn(id)?;
        }
        Ok(ensemble)
    }

    /// The member ids, `1..=size`.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    fn member(&self, id: u64) -> Option<&ProcessMember> {
        self.members.iter().find(|m| m.id == id)
    }

    fn member_mut(&mut self, id: u64) -> std::io::Result<&mut ProcessMember> {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or_else(|| std::io::Error::other(format!("no member {id}")))
    }

    /// Member `id`'s client address (the same across restarts).
    pub fn client_addr(&self, id: u64) -> Option<SocketAddr> {
        self.member(id).map(|m| m.client)
    }

    /// Every member's client address, comma-separated, for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The temporary directory holding every member's directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Member `id`'s log file (`server.log` in its directory).
    pub fn log_path(&self, id: u64) -> Option<PathBuf> {
        self.member(id).map(ProcessMember::log)
    }

    /// Whether member `id` has a process this harness started and has not killed
    /// (one that exited by itself still counts: see [`ProcessEnsemble::exited`]).
    pub fn is_running(&self, id: u64) -> bool {
        self.member(id).is_some_and(|m| m.child.is_some())
    }

    /// Members whose process exited without being killed here, with how it ended;
    /// each is reaped and counted as not running from then on.
    pub fn exited(&mut self) -> Vec<(u64, ExitStatus)> {
        self.ids()
            .into_iter()
            .filter_map(|id| Some((id, self.reap(id)?)))
            .collect()
    }

    /// How member `id`'s process ended, if it exited by itself (then reaped, noted in
    /// its log and counted as not running).
    fn reap(&mut self, id: u64) -> Option<ExitStatus> {
        let m = self.members.iter_mut().find(|m| m.id == id)?;
        let status = m.child.as_mut()?.try_wait().ok().flatten()?;
        m.child = None;
        self.note(id, &format!("m{id} exited by itself: {status}"));
        Some(status)
    }

    /// Appends a line stamped like the server's own to member `id`'s log.
    fn note(&self, id: u64, what: &str) {
        let Some(path) = self.log_path(id) else {
            return;
        };
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(
                log,
                "{}  TEST process_ensemble: {what}",
                utc(SystemTime::now())
            );
        }
    }

    /// Starts member `id`'s process on its zoo.cfg (so its ports and its data), with
    /// RUST_LOG=info and its output appended to its log.
    fn spawn(&mut self, id: u64) -> std::io::Result<()> {
        let bin = self.bin.clone();
        let m = self.member_mut(id)?;
        m.starts += 1;
        let starts = m.starts;
        let (dir, log) = (m.dir.clone(), m.log());
        self.note(id, &format!("starting m{id} (start {starts})"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(bin)
            .arg(dir.join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        self.member_mut(id)?.child = Some(child);
        Ok(())
    }

    /// `kill -9` member `id` (SIGKILL) and reap it. Returns whether it was running (a
    /// process that had exited by itself is reaped and noted as such).
    pub fn kill(&mut self, id: u64) -> bool {
        if self.reap(id).is_some() {
            return false;
        }
        let Some(mut child) = self
            .members
            .iter_mut()
            .find(|m| m.id == id)
            .and_then(|m| m.child.take())
        else {
            return false;
        };
        let pid = child.id();
        let _ = child.kill();
        let status = child.wait();
        self.note(
            id,
            &format!("m{id} (pid {pid}) killed with SIGKILL: {status:?}"),
        );
        true
    }

    /// Starts member `id` again (after [`ProcessEnsemble::kill`]) on the same ports and
    /// data, and waits (up to `within`) until its client port answers `ruok`, which it
    /// does once its ports are bound. A process that exits at once (a port not yet
    /// released) is started again, up to five times.
    pub async fn restart(&mut self, id: u64, within: Duration) -> std::io::Result<()> {
        self.kill(id);
        let client = self
            .client_addr(id)
            .ok_or_else(|| std::io::Error::other(format!("no member {id}")))?;
        let deadline = Instant::now() + within;
        for _ in 0..START_ATTEMPTS {
            self.spawn(id)?;
            loop {
                if self.reap(id).is_some() {
                    break;
                }
                if four_letter_word(client, "ruok").await.as_deref() == Some("imok") {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(std::io::Error::other(format!(
                        "m{id} did not answer ruok within {within:?} of its restart"
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(std::io::Error::other(format!(
            "m{id} exited at each of {START_ATTEMPTS} starts"
        )))
    }

    /// Kills every member still running.
    pub fn kill_all(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }

    /// Member `id`'s `srvr` `Mode:` (`leader`, `follower`, ...), if it answers with one
    /// (a member looking for a leader answers that it is not serving).
    pub async fn mode(&self, id: u64) -> Option<String> {
        let srvr = four_letter_word(self.client_addr(id)?, "srvr").await?;
        srvr.lines()
            .find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string()))
    }

    /// Member `id`'s `mntr`, key to value, if it answers with one.
    pub async fn mntr(&self, id: u64) -> Option<BTreeMap<String, String>> {
        let mntr = four_letter_word(self.client_addr(id)?, "mntr").await?;
        let rows: BTreeMap<String, String> = mntr
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (!rows.is_empty()).then_some(rows)
    }

    /// Each running member's `Mode:` (empty when it gives none).
    pub async fn modes(&self) -> Vec<(u64, String)> {
        let mut modes = Vec::new();
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            modes.push((m.id, self.mode(m.id).await.unwrap_or_default()));
        }
        modes
    }

    /// A running member that says `Mode: leader` now, if any.
    pub async fn leader(&self) -> Option<u64> {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            if self.mode(m.id).await.as_deref() == Some("leader") {
                return Some(m.id);
            }
        }
        None
    }

    /// Waits (up to `within`) until one running member leads and every other running
    /// member follows; returns the leader.
    pub async fn wait_for_leader(&self, within: Duration) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            let modes = self.modes().await;
            let leaders: Vec<u64> = modes
                .iter()
                .filter(|(_, m)| m == "leader")
                .map(|(id, _)| *id)
                .collect();
            let all_in = modes.iter().all(|(_, m)| m == "leader" || m == "follower");
            if leaders.len() == 1 && all_in {
                return Some(leaders[0]);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (up to `within`) until a running member other than `old` says it leads;
    /// returns it.
    pub async fn wait_for_new_leader(&self, old: u64, within: Duration) -> Option<u64> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.leader().await.filter(|l| *l != old) {
                return Some(leader);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether member `id` serves as a follower or the leader: its `mntr` says
    /// `zk_server_state` `follower` or `leader` and gives a `zk_raft_term`.
    pub async fn serving(&self, id: u64) -> bool {
        self.mntr(id).await.is_some_and(|rows| {
            matches!(
                rows.get("zk_server_state").map(String::as_str),
                Some("follower" | "leader")
            ) && rows.contains_key("zk_raft_term")
        })
    }

    /// Waits (up to `within`) until member `id` serves as a follower or the leader
    /// again ([`ProcessEnsemble::serving`]).
    pub async fn wait_serving(&self, id: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.serving(id).await {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last `lines` lines of member `id`'s log, under a header naming it.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let Some(m) = self.member(id) else {
            return format!("--- no member {id} ---\n");
        };
        let log = std::fs::read_to_string(m.log()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        format!(
            "--- m{id} ({}) server.log, last {} of {} lines ---\n{}\n",
            m.client,
            lines.min(all.len()),
            all.len(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// [`ProcessEnsemble::log_tail`] of each of `ids`.
    pub fn log_tails(&self, ids: &[u64], lines: usize) -> String {
        ids.iter().map(|id| self.log_tail(*id, lines)).collect()
    }

    /// The lines of member `id`'s log stamped between `from` and `to` (a line without
    /// a stamp, such as a panic's, goes with the line before it), at most `max_lines`
    /// of them (the last ones), under a header naming it.
    pub fn log_between(
        &self,
        id: u64,
        from: SystemTime,
        to: SystemTime,
        max_lines: usize,
    ) -> String {
        let Some(m) = self.member(id) else {
            return format!("--- no member {id} ---\n");
        };
        let log = std::fs::read_to_string(m.log()).unwrap_or_default();
        let (from_s, to_s) = (utc(from), utc(to));
        let mut inside = false;
        let picked: Vec<&str> = log
            .lines()
            .filter(|line| {
                if let Some(stamp) = stamp(line) {
                    inside = stamp >= from_s.as_str() && stamp <= to_s.as_str();
                }
                inside
            })
            .collect();
        format!(
            "--- m{id} ({}) server.log from {from_s} to {to_s}: {} lines{} ---\n{}\n",
            m.client,
            picked.len(),
            if picked.len() > max_lines {
                format!(", the last {max_lines}")
            } else {
                String::new()
            },
            picked[picked.len().saturating_sub(max_lines)..].join("\n")
        )
    }
}

impl Drop for ProcessEnsemble {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The time stamp a log line starts with, as [`utc`] writes it, if it has one.
fn stamp(line: &str) -> Option<&str> {
    let stamp = line.get(..27)?;
    let b = stamp.as_bytes();
    (b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z').then_some(stamp)
}

/// `t` in UTC as the server's logs stamp their lines (RFC 3339, microseconds:
/// `2026-12-07T06:43:02.523544Z`); stamps of the same form sort as the times do.
pub fn utc(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_micros()
    )
}

/// The proleptic Gregorian date `days` days after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_read_as_the_servers_logs_do() {
        let at = |secs: u64, micros: u64| {
            utc(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            at(1_709_164_800 + 86_399, 999_999),
            "2024-02-29T23:59:59.999999Z"
        );
        assert_eq!(at(1_709_251_200, 0), "2024-03-01T00:00:00.000000Z");
        let line = "2026-12-07T06:43:02.523544Z  INFO zk_server: started";
        assert_eq!(stamp(line), Some("2026-12-07T06:43:02.523544Z"));
        assert_eq!(stamp("thread 'main' panicked at src/main.rs:1:1:"), None);
        assert_eq!(stamp("short"), None);
    }
}
