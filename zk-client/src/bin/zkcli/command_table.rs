//! What zkCli.sh's commands are, not what they do: names and usage lines (`COMMANDS`,
//! `EXTRA_COMMANDS`, `usage()`, `help`'s extras), each command's options (commons-cli
//! specs), and the usage error a command fails with.

use crate::cli_error::CliError;
use crate::opts::{opt, Group, Spec};

/// One of zkCli.sh's commands.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// What is typed.
    pub name: &'static str,
    /// The options part of its usage line.
    pub usage: &'static str,
}

impl Command {
    /// `getUsageStr()`: name, a space, options.
    pub fn usage_line(&self) -> String {
        format!("{} {}", self.name, self.usage)
    }
}

/// Every command zkCli.sh 3.8 knows, in the order its usage lists them.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "addWatch",
        usage: "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    },
    Command { name: "addauth", usage: "scheme auth" },
    Command { name: "close", usage: "" },
    Command { name: "config", usage: "[-c] [-w] [-s]" },
    Command { name: "connect", usage: "host:port" },
    Command { name: "create", usage: "[-s] [-e] [-c] [-t ttl] path [data] [acl]" },
    Command { name: "delete", usage: "[-v version] path" },
    Command { name: "deleteall", usage: "path [-b batch size]" },
    Command { name: "delquota", usage: "[-n|-b|-N|-B] path" },
    Command { name: "get", usage: "[-s] [-w] path" },
    Command { name: "getAcl", usage: "[-s] path" },
    Command { name: "getAllChildrenNumber", usage: "path" },
    Command { name: "getEphemerals", usage: "path" },
    Command { name: "history", usage: "" },
    Command { name: "listquota", usage: "path" },
    Command { name: "ls", usage: "[-s] [-w] [-R] path" },
    Command { name: "printwatches", usage: "on|off" },
    Command { name: "quit", usage: "" },
    Command {
        name: "reconfig",
        usage: "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
    },
    Command { name: "redo", usage: "cmdno" },
    Command { name: "removewatches", usage: "path [-c|-d|-a] [-l]" },
    Command { name: "set", usage: "[-s] [-v version] path data" },
    Command { name: "setAcl", usage: "[-s] [-v version] [-R] path acl" },
    Command { name: "setquota", usage: "-n|-b|-N|-B val path" },
    Command { name: "stat", usage: "[-w] path" },
    Command { name: "sync", usage: "path" },
    Command { name: "version", usage: "" },
    Command { name: "whoami", usage: "" },
];

/// Commands of older zkCli.sh versions we still take (not in 3.8's usage): `ls2`
/// (`ls -s`) and `rmr` (`deleteall`); and `help`.
pub const EXTRA_COMMANDS: &[&str] = &["help", "ls2", "rmr"];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// zkCli.sh's `usage()` text.
pub fn usage() -> String {
    let mut s = String::from(
        "ZooKeeper -server host:port -client-configuration properties-file cmd args\n",
    );
    for c in COMMANDS {
        s.push_str(&format!("\t{} {}\n", c.name, c.usage));
    }
    s
}

/// What `help` adds to the usage: our extensions.
pub const HELP_EXTRAS: &str = "\
zkcli (zk-rs) extensions:
\tget -b path          print the data in base64 (as zkCli.sh 3.9's get -b)
\tget -x path          print the data as a hex dump (as zkCli.sh 3.9's get -x)
\tcreate -b|-x ...     the data argument is base64 (-b) or hex (-x), for binary data
\tset -b|-x ...        the same for set
\tls2 path             ls -s path (old zkCli.sh)
\trmr path             deleteall path (old zkCli.sh)
\thelp                 this text
Data is text (UTF-8) otherwise. Interactive mode: line editing, tab completion of
commands and znode paths, history kept in ~/.zkcli_history (or $ZKCLI_HISTORY).
";

/// `ls`'s options.
pub const LS: Spec = Spec {
    opts: &[
        opt("?", false, "help"),
        opt("s", false, "stat"),
        opt("w", false, "watch"),
        opt("R", false, "recurse"),
    ],
    group: None,
};
/// `get`'s options.
pub const GET: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("w", false, "watch"),
        opt("b", false, "base64"),
        opt("x", false, "hexdump"),
    ],
    group: None,
};
/// `set`'s options.
pub const SET: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("v", true, "version"),
        opt("b", false, "base64"),
        opt("x", false, "hex"),
    ],
    group: None,
};
/// `create`'s options.
pub const CREATE: Spec = Spec {
    opts: &[
        opt("e", false, "ephemeral"),
        opt("s", false, "sequential"),
        opt("c", false, "container"),
        opt("t", true, "ttl"),
        opt("b", false, "base64"),
        opt("x", false, "hex"),
    ],
    group: None,
};
/// `delete`'s options.
pub const DELETE: Spec = Spec {
    opts: &[opt("v", true, "version")],
    group: None,
};
/// `deleteall`'s options.
pub const DELETEALL: Spec = Spec {
    opts: &[opt("b", true, "batch size")],
    group: None,
};
/// `stat`'s options.
pub const STAT: Spec = Spec {
    opts: &[opt("w", false, "watch")],
    group: None,
};
/// `getAcl`'s options.
pub const GETACL: Spec = Spec {
    opts: &[opt("s", false, "stats")],
    group: None,
};
/// `setAcl`'s options.
pub const SETACL: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("v", true, "version"),
        opt("R", false, "recursive"),
    ],
    group: None,
};
/// No options (commands that take none).
pub const NONE: Spec = Spec {
    opts: &[],
    group: None,
};
/// `setquota`'s options.
pub const SETQUOTA: Spec = Spec {
    opts: &[
        opt("n", true, "num soft quota"),
        opt("b", true, "bytes soft quota"),
        opt("N", true, "num hard quota"),
        opt("B", true, "bytes hard quota"),
    ],
    group: Some(Group {
        names: &["n", "b", "N", "B"],
        required: true,
    }),
};
/// `delquota`'s options.
pub const DELQUOTA: Spec = Spec {
    opts: &[
        opt("n", false, "num soft quota"),
        opt("b", false, "bytes soft quota"),
        opt("N", false, "num hard quota"),
        opt("B", false, "bytes hard quota"),
    ],
    group: Some(Group {
        names: &["n", "b", "N", "B"],
        required: false,
    }),
};
/// `addWatch`'s options.
pub const ADDWATCH: Spec = Spec {
    opts: &[opt("m", true, "")],
    group: None,
};
/// `removewatches`' options.
pub const REMOVEWATCHES: Spec = Spec {
    opts: &[
        opt("c", false, "child watcher type"),
        opt("d", false, "data watcher type"),
        opt("a", false, "any watcher type"),
        opt(
            "l",
            false,
            "remove locally when there is no server connection",
        ),
    ],
    group: None,
};
/// `config`'s options.
pub const CONFIG: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("w", false, "watch"),
        opt("c", false, "client connection string"),
    ],
    group: None,
};
/// `reconfig`'s options.
pub const RECONFIG: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("v", true, "required current config version"),
        opt("file", true, "path of config file to parse for membership"),
        opt(
            "members",
            true,
            "comma-separated list of config strings for non-incremental reconfig",
        ),
        opt(
            "add",
            true,
            "comma-separated list of config strings for new servers",
        ),
        opt(
            "remove",
            true,
            "comma-separated list of server IDs to remove",
        ),
    ],
    group: None,
};

/// The usage error of command `name` (`CliParseException(getUsageStr())`).
pub fn usage_error(name: &str) -> CliError {
    CliError::new(find(name).map_or_else(|| name.to_string(), Command::usage_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_zkclis() {
        let u = usage();
        assert!(u.starts_with(
            "ZooKeeper -server host:port -client-configuration properties-file cmd args\n\taddWatch [-m mode] path"
        ));
        assert!(u.contains("\n\tclose \n"));
        assert_eq!(u.lines().count(), 29);
    }
}
