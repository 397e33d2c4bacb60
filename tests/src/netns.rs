//! Hosts for multi-machine tests on one machine: Linux network namespaces joined by a
//! bridge, each with its own address, and partitions that silently drop packets.
//!
//! Layout (all created by [`Network::create`] and removed when it drops):
//! - a *switch* namespace holding the bridge `br0`;
//! - one namespace per host, with `eth0` (a veth whose other end is on the bridge)
//!   at `10.211.0.<i+1>/24`;
//! - a *client* namespace at `10.211.0.100`, which the test's own threads enter
//!   ([`Network::enter_client`]) so their sockets cross the bridge like a real client's.
//!
//! A partition between two hosts is a pair of policy rules, one in each host's
//! namespace, that drop every packet arriving from the other (`ip rule … blackhole`,
//! placed before the `local` table). Packets vanish without an error on either side,
//! as on a real network that has failed; the client namespace is never cut off.
//!
//! Creating namespaces needs root and `ip` (iproute2); [`Network::create`] says why it
//! could not, so a test can report it loudly.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};

/// The client namespace's address.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 100);

/// Namespaces, their bridge and the partitions in force.
pub struct Network {
    prefix: String,
    hosts: usize,
    cuts: BTreeSet<(usize, usize)>,
}

impl Network {
    /// Creates a switch, `hosts` host namespaces and a client namespace. Namespaces
    /// left by an earlier run whose process is gone are removed first.
    pub fn create(hosts: usize) -> Result<Network, String> {
        assert!(hosts < 100, "at most 99 hosts");
        remove_stale();
        let network = Network {
            prefix: format!("zkn{}", std::process::id()),
            hosts,
            cuts: BTreeSet::new(),
        };
        let sw = network.switch();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        let mut members: Vec<(String, Ipv4Addr)> = (0..hosts)
            .map(|i| (network.host(i), host_addr(i)))
            .collect();
        members.push((network.client(), CLIENT_ADDR));
        for (n, (ns, addr)) in members.iter().enumerate() {
            let port = format!("v{n}");
            ip(&["netns", "add", ns])?;
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            // The `local` table is consulted first by default (rule 0), which would
            // deliver a packet before a drop rule is seen: move it behind them.
            ip(&["-n", ns, "rule", "add", "pref", "100", "lookup", "local"])?;
            ip(&["-n", ns, "rule", "del", "pref", "0"])?;
        }
        Ok(network)
    }

    /// How many hosts there are.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        host_addr(i)
    }

    /// Moves the calling thread into the client namespace: sockets it creates from now
    /// on are on the test network. Call it on every thread that opens connections
    /// (e.g. from a tokio runtime's `on_thread_start`).
    pub fn enter_client(&self) -> io::Result<()> {
        enter(&ns_path(&self.client()))
    }

    /// The client namespace's file, for [`enter`] on threads the network is not
    /// reachable from.
    pub fn client_ns_path(&self) -> PathBuf {
        ns_path(&self.client())
    }

    /// Starts `command` inside host `i`'s namespace.
    pub fn spawn(&self, i: usize, mut command: Command) -> io::Result<Child> {
        let ns = File::open(ns_path(&self.host(i)))?;
        let fd = ns.as_raw_fd();
        // SAFETY: setns is a plain system call, safe between fork and exec; `ns` stays
        // open in the parent until spawn returns.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn();
        drop(ns);
        child
    }

    /// Cuts hosts `a` and `b` apart, both ways.
    pub fn cut(&mut self, a: usize, b: usize) -> Result<(), String> {
        let pair = (a.min(b), a.max(b));
        if a == b || !self.cuts.insert(pair) {
            return Ok(());
        }
        self.drop_from(a, b, "add")?;
        self.drop_from(b, a, "add")
    }

    /// Cuts every host of `side` from every host not in it.
    pub fn isolate(&mut self, side: &[usize]) -> Result<(), String> {
        for a in side {
            for b in (0..self.hosts).filter(|b| !side.contains(b)) {
                self.cut(*a, b)?;
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&mut self) -> Result<(), String> {
        for (a, b) in std::mem::take(&mut self.cuts) {
            self.drop_from(a, b, "del")?;
            self.drop_from(b, a, "del")?;
        }
        Ok(())
    }

    /// The pairs cut apart now.
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        self.cuts.iter().copied().collect()
    }

    fn drop_from(&self, at: usize, from: usize, verb: &str) -> Result<(), String> {
        let source = format!("{}/32", host_addr(from));
        ip(&[
            "-n",
            &self.host(at),
            "rule",
            verb,
            "pref",
            "10",
            "from",
            &source,
            "blackhole",
        ])
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    fn host(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    fn client(&self) -> String {
        format!("{}c", self.prefix)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = (0..self.hosts).map(|i| self.host(i)).collect();
        names.push(self.client());
        names.push(self.switch());
        names
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.names() {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &std::path::Path) -> io::Result<()> {
    let ns = File::open(path)?;
    // SAFETY: setns on a namespace file we hold open; it changes only this thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 211, 0, i as u8 + 1)
}

fn ns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes namespaces named by this module whose creating process is gone.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("zkn") else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !pid.is_empty() && !PathBuf::from("/proc").join(&pid).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
