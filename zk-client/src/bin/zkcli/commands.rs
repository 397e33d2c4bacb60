//! zkCli.sh's commands that talk to the server, each as `org.apache.zookeeper.cli.*`
//! does it: the same options, checks, requests, output and error texts. The shell's
//! own commands (`quit`, `history`, `redo`, `printwatches`, `connect`, `close`,
//! `removewatches`, `help`) are in `shell.rs`.

use std::future::Future;
use std::time::Duration;

use zk_client::{AddWatchMode, Client, CreateMode, Error, ErrorCode, Stat};

use crate::conn::Conn;
use crate::format;
use crate::opts::{self, opt, Group, Parsed, Spec};
use crate::watches::{Kind, Slot};

/// What a command printed (in order, stdout or stderr) and the watches it left.
#[derive(Debug, Default)]
pub struct Run {
    /// Output pieces: `(to_stderr, text)`.
    pub lines: Vec<(bool, String)>,
    /// Watches to add to the shell's table.
    pub watches: Vec<(Kind, String, Slot)>,
    /// Whether watch events are printed (`printwatches`).
    pub print_watches: bool,
}

impl Run {
    /// Text to stdout, as is.
    pub fn out(&mut self, s: impl Into<String>) {
        self.lines.push((false, s.into()));
    }

    /// A line to stdout.
    pub fn outln(&mut self, s: impl Into<String>) {
        self.lines.push((false, s.into() + "\n"));
    }

    /// A line to stderr.
    pub fn errln(&mut self, s: impl Into<String>) {
        self.lines.push((true, s.into() + "\n"));
    }

    fn watch(&mut self, kind: Kind, path: &str, slot: impl Into<Slot>) {
        self.watches.push((kind, path.to_string(), slot.into()));
    }
}

/// A failed command: its message (for stderr) and exit code (`CliException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What zkCli.sh prints.
    pub message: String,
    /// The exit code a one-shot run ends with.
    pub code: i32,
}

impl CliError {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<opts::ParseError> for CliError {
    fn from(e: opts::ParseError) -> CliError {
        CliError::new(e.to_string())
    }
}

/// `MalformedPathException` for a path Java's client refuses before sending anything.
pub fn check_path(path: &str) -> Result<(), CliError> {
    zk_proto::path::validate_path(path).map_err(|e| CliError::new(e.0))
}

/// `CliWrapperException` for a failed request on `path`.
pub fn keeper(e: &Error, path: &str) -> CliError {
    CliError::new(format::error(e, path))
}

/// Java's `Integer.parseInt`.
pub fn java_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Java's `Long.parseLong`.
pub fn java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An int option zkCli.sh parses without catching the error (its JVM dies with a
/// NumberFormatException): ours reports it as a failed command.
fn int_option(p: &Parsed, name: &str) -> Result<Option<i32>, CliError> {
    match p.value(name) {
        None => Ok(None),
        Some(v) => java_int(v).map(Some).ok_or_else(|| {
            CliError::new(format!(
                "java.lang.NumberFormatException: For input string: \"{v}\""
            ))
        }),
    }
}

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

const LS: Spec = Spec {
    opts: &[
        opt("?", false, "help"),
        opt("s", false, "stat"),
        opt("w", false, "watch"),
        opt("R", false, "recurse"),
    ],
    group: None,
};
const GET: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("w", false, "watch"),
        opt("b", false, "base64"),
        opt("x", false, "hexdump"),
    ],
    group: None,
};
const SET: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("v", true, "version"),
        opt("b", false, "base64"),
        opt("x", false, "hex"),
    ],
    group: None,
};
const CREATE: Spec = Spec {
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
const DELETE: Spec = Spec {
    opts: &[opt("v", true, "version")],
    group: None,
};
const DELETEALL: Spec = Spec {
    opts: &[opt("b", true, "batch size")],
    group: None,
};
const STAT: Spec = Spec {
    opts: &[opt("w", false, "watch")],
    group: None,
};
const GETACL: Spec = Spec {
    opts: &[opt("s", false, "stats")],
    group: None,
};
const SETACL: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("v", true, "version"),
        opt("R", false, "recursive"),
    ],
    group: None,
};
const NONE: Spec = Spec {
    opts: &[],
    group: None,
};
const SETQUOTA: Spec = Spec {
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
const DELQUOTA: Spec = Spec {
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
const ADDWATCH: Spec = Spec {
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
const CONFIG: Spec = Spec {
    opts: &[
        opt("s", false, "stats"),
        opt("w", false, "watch"),
        opt("c", false, "client connection string"),
    ],
    group: None,
};
const RECONFIG: Spec = Spec {
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
fn usage_error(name: &str) -> CliError {
    CliError::new(find(name).map_or_else(|| name.to_string(), Command::usage_line))
}

/// What a command needs from the shell: the connection (waited for when the command
/// first needs the server, as Java's calls wait) and where its output goes.
pub struct Ctx<'a> {
    /// The connection.
    pub conn: &'a mut Conn,
    /// The shell's watches (whose events are printed as they come).
    pub watches: &'a mut crate::watches::WatchTable,
    /// The output.
    pub run: &'a mut Run,
}

impl Ctx<'_> {
    /// The client; reports the connection if it is made now. A failure is reported
    /// for `path`.
    async fn zk(&mut self, path: &str) -> Result<Client, CliError> {
        match self.conn.client().await {
            Ok((client, fresh)) => {
                if fresh && self.run.print_watches {
                    self.run
                        .out(crate::shell::event_text("SyncConnected", "None", None));
                }
                Ok(client)
            }
            Err(e) => Err(keeper(&e, path)),
        }
    }

    /// Runs one request, giving up (as a lost connection) after the session timeout.
    /// Events that came meanwhile are printed before what the command prints next, as
    /// Java's event thread printed them while the command waited.
    async fn rq<T>(
        &mut self,
        fut: impl Future<Output = zk_client::Result<T>>,
    ) -> zk_client::Result<T> {
        let r = match tokio::time::timeout(self.conn.timeout().max(Duration::from_secs(1)), fut)
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::ConnectionLoss),
        };
        crate::shell::drain_events(self.conn, self.watches, self.run);
        r
    }
}

/// Runs server command `words[0]` (a name of [`COMMANDS`] or [`EXTRA_COMMANDS`]).
pub async fn exec(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let name = words[0].as_str();
    match name {
        "ls" => ls(words.to_vec(), ctx).await,
        "ls2" => {
            ctx.run
                .errln("'ls2' has been deprecated. Please use 'ls [-s] path' instead.");
            let mut w = vec!["ls".to_string(), "-s".to_string()];
            w.extend(words[1..].iter().cloned());
            ls(w, ctx).await
        }
        "get" => get(words.to_vec(), ctx).await,
        "set" => set(words, ctx).await,
        "stat" => stat(words.to_vec(), ctx).await,
        "create" => create(words, ctx).await,
        "delete" => delete(words, ctx).await,
        "deleteall" => deleteall(words, ctx, "deleteall").await,
        "rmr" => {
            ctx.run
                .errln("The command 'rmr' has been deprecated. Please use 'deleteall' instead.");
            deleteall(words, ctx, "rmr").await
        }
        "sync" => sync(words, ctx).await,
        "getAcl" => get_acl(words, ctx).await,
        "setAcl" => set_acl(words, ctx).await,
        "addauth" => addauth(words, ctx).await,
        "getEphemerals" => get_ephemerals(words, ctx).await,
        "getAllChildrenNumber" => all_children(words, ctx).await,
        "addWatch" => add_watch(words, ctx).await,
        "whoami" => whoami(ctx).await,
        "config" => config(words, ctx).await,
        "reconfig" => reconfig(words, ctx).await,
        "version" => {
            let p = opts::parse(&NONE, words)?;
            if p.args.len() > 1 {
                return Err(usage_error("version"));
            }
            ctx.run.outln(format!(
                "ZooKeeper CLI version: zkcli {} (zk-rs), for ZooKeeper 3.8",
                env!("CARGO_PKG_VERSION")
            ));
            Ok(())
        }
        "setquota" => {
            let p = opts::parse(&SETQUOTA, words)?;
            if p.args.len() < 2 {
                return Err(usage_error("setquota"));
            }
            let zk = if p.args[1].starts_with(crate::quota::QUOTA_ROOT) {
                None
            } else {
                Some(ctx.zk(&p.args[1]).await?)
            };
            match zk {
                Some(zk) => crate::quota::setquota(&zk, ctx.run, &p).await,
                None => {
                    ctx.run.errln(format!(
                        "cannot set a quota under the path: {}",
                        crate::quota::QUOTA_ROOT
                    ));
                    Ok(())
                }
            }
        }
        "listquota" => {
            let p = opts::parse(&NONE, words)?;
            if p.args.len() < 2 {
                return Err(usage_error("listquota"));
            }
            let zk = ctx.zk(&p.args[1]).await?;
            crate::quota::listquota(&zk, ctx.run, &p.args[1]).await
        }
        "delquota" => {
            let p = opts::parse(&DELQUOTA, words)?;
            if p.args.len() < 2 {
                return Err(usage_error("delquota"));
            }
            let zk = ctx.zk(&p.args[1]).await?;
            crate::quota::delquota(&zk, ctx.run, &p).await
        }
        other => Err(CliError::new(format!("Command not found {other}"))),
    }
}

/// `get path [watch]`, `ls path [watch]`, `stat path [watch]`: the third word is
/// taken for `-w` (zkCli.sh rewrites it in place), with a deprecation notice.
fn retain_compatibility(
    spec: &Spec,
    p: Parsed,
    words: &mut [String],
    notice: &str,
    run: &mut Run,
) -> Result<Parsed, CliError> {
    if p.args.len() > 2 {
        words[2] = "-w".into();
        run.errln(notice);
        return Ok(opts::parse(spec, words)?);
    }
    Ok(p)
}

/// Visits `path` and everything below as `ZKUtil.visitSubTreeDFS` calls back: the
/// node, then a node's children (sorted) before their own children; with each
/// node's children (none for a node gone meanwhile). With `watch`, leaves a data watch
/// on `path` and a child watch on every node. An error comes with its path.
pub async fn visit(
    zk: &Client,
    path: &str,
    watch: bool,
    watches: &mut Vec<(Kind, String, Slot)>,
) -> Result<Vec<(String, Vec<String>)>, (Error, String)> {
    if watch {
        let (read, w) = zk.get_data_w(path);
        read.await.map_err(|e| (e, path.to_string()))?;
        watches.push((Kind::Data, path.to_string(), w.into()));
    } else {
        zk.get_data(path).await.map_err(|e| (e, path.to_string()))?;
    }
    let mut order = vec![path.to_string()];
    let mut kids = std::collections::HashMap::new();
    let mut stack = vec![path.to_string()];
    while let Some(node) = stack.pop() {
        let listed = if watch {
            let (read, w) = zk.get_children_w(&node);
            let r = read.await;
            if r.is_ok() {
                watches.push((Kind::Child, node.clone(), w.into()));
            }
            r
        } else {
            zk.get_children(&node).await
        };
        let mut children = match listed {
            Ok(c) => c,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Vec::new(),
            Err(e) => return Err((e, node)),
        };
        children.sort();
        let base = if node == "/" { "" } else { node.as_str() };
        let paths: Vec<String> = children.iter().map(|c| format!("{base}/{c}")).collect();
        order.extend(paths.iter().cloned());
        stack.extend(paths.into_iter().rev());
        kids.insert(node, children);
    }
    Ok(order
        .into_iter()
        .map(|p| {
            let c = kids.remove(&p).unwrap_or_default();
            (p, c)
        })
        .collect())
}

async fn ls(mut words: Vec<String>, ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&LS, &words)?;
    if p.has("?") {
        ctx.run
            .outln("usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch");
    }
    let p = retain_compatibility(
        &LS,
        p,
        &mut words,
        "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
        ctx.run,
    )?;
    if p.args.len() < 2 {
        return Err(usage_error("ls"));
    }
    let path = p.args[1].as_str();
    let watch = p.has("w");
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    if p.has("R") {
        let mut watches = Vec::new();
        let visited = visit(&zk, path, watch, &mut watches).await;
        ctx.run.watches.extend(watches);
        let visited = visited.map_err(|(e, at)| keeper(&e, &at))?;
        for (node, _) in visited {
            ctx.run.outln(node);
        }
        return Ok(());
    }
    let (mut children, stat) = match (watch, p.has("s")) {
        (false, false) => (ctx.rq(zk.get_children(path)).await, None),
        (false, true) => match ctx.rq(zk.get_children2(path)).await {
            Ok((c, s)) => (Ok(c), Some(s)),
            Err(e) => (Err(e), None),
        },
        (true, false) => {
            let (read, w) = zk.get_children_w(path);
            let r = ctx.rq(read).await;
            if r.is_ok() {
                ctx.run.watch(Kind::Child, path, w);
            }
            (r, None)
        }
        (true, true) => {
            let (read, w) = zk.get_children2_w(path);
            match ctx.rq(read).await {
                Ok((c, s)) => {
                    ctx.run.watch(Kind::Child, path, w);
                    (Ok(c), Some(s))
                }
                Err(e) => (Err(e), None),
            }
        }
    };
    let children = children.as_mut().map_err(|e| keeper(e, path))?;
    children.sort();
    ctx.run.outln(format::list(children));
    if let Some(s) = stat {
        ctx.run.out(format::stat(&s));
    }
    Ok(())
}

async fn get(mut words: Vec<String>, ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&GET, &words)?;
    if p.args.len() < 2 {
        return Err(usage_error("get"));
    }
    let p = retain_compatibility(
        &GET,
        p,
        &mut words,
        "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
        ctx.run,
    )?;
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let (data, stat) = if p.has("w") {
        let (read, w) = zk.get_data_nullable_w(path);
        let r = ctx.rq(read).await.map_err(|e| keeper(&e, path))?;
        ctx.run.watch(Kind::Data, path, w);
        r
    } else {
        ctx.rq(zk.get_data_nullable(path))
            .await
            .map_err(|e| keeper(&e, path))?
    };
    let data = data.unwrap_or_else(|| b"null".to_vec());
    let text = if p.has("x") {
        format::hexdump(&data)
    } else if p.has("b") {
        format::base64(&data)
    } else {
        String::from_utf8_lossy(&data).into_owned()
    };
    ctx.run.outln(text);
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

/// The data argument, as text or (our `-b`/`-x`) base64 or hex.
fn data_arg(p: &Parsed, text: &str) -> Result<Vec<u8>, CliError> {
    if p.has("b") {
        format::from_base64(text).map_err(CliError::new)
    } else if p.has("x") {
        format::from_hex(text).map_err(CliError::new)
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

async fn set(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&SET, words)?;
    if p.args.len() < 3 {
        return Err(usage_error("set"));
    }
    let path = p.args[1].as_str();
    let data = data_arg(&p, &p.args[2])?;
    let version = int_option(&p, "v")?;
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let stat = ctx
        .rq(zk.set_data(path, &data, version.filter(|v| *v != -1)))
        .await
        .map_err(|e| keeper(&e, path))?;
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

async fn stat(mut words: Vec<String>, ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&STAT, &words)?;
    if p.args.len() < 2 {
        return Err(usage_error("stat"));
    }
    let p = retain_compatibility(
        &STAT,
        p,
        &mut words,
        "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
        ctx.run,
    )?;
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let found = if p.has("w") {
        let (read, w) = zk.exists_w(path);
        let r = ctx.rq(read).await.map_err(|e| keeper(&e, path))?;
        let kind = if r.is_some() { Kind::Data } else { Kind::Exist };
        ctx.run.watch(kind, path, w);
        r
    } else {
        ctx.rq(zk.exists(path))
            .await
            .map_err(|e| keeper(&e, path))?
    };
    let stat: Stat = found.ok_or_else(|| CliError::new(format!("Node does not exist: {path}")))?;
    ctx.run.out(format::stat(&stat));
    Ok(())
}

/// TTLs fit in 40 bits (`EphemeralType.TTL.maxValue()`).
const MAX_TTL: i64 = 0xFF_FFFF_FFFF;

async fn create(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&CREATE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("create"));
    }
    let (e, s, c, t) = (p.has("e"), p.has("s"), p.has("c"), p.has("t"));
    if c && (e || s) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = match p.value("t") {
        Some(v) => java_long(v).ok_or_else(|| CliError::new("-t argument must be a long value"))?,
        None => 0,
    };
    if t && e {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if t && c {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    let mode = match (e, s, c, t) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    if t && (ttl <= 0 || ttl > MAX_TTL) {
        return Err(CliError::new(format!(
            "ttl must be positive and cannot be larger than: {MAX_TTL}"
        )));
    }
    let path = p.args[1].as_str();
    let data = match p.args.get(2) {
        Some(text) => Some(data_arg(&p, text)?),
        None => None,
    };
    let acl = match p.args.get(3) {
        Some(text) => {
            let (acl, complaints) = format::parse_acl(text);
            for c in complaints {
                ctx.run.errln(c);
            }
            acl
        }
        None => zk_client::Acl::open_unsafe(),
    };
    zk_proto::path::validate_create_path(path, mode.is_sequential())
        .map_err(|e| CliError::new(e.0))?;
    if acl.is_empty() {
        ctx.run.errln("KeeperErrorCode = InvalidACL");
        return Err(CliError::new("Acl is not valid : null"));
    }
    let zk = ctx.zk(path).await?;
    let ttl = t.then(|| Duration::from_millis(ttl as u64));
    match ctx
        .rq(zk.create_nullable(path, data.as_deref(), &acl, mode, ttl))
        .await
    {
        Ok((created, _)) => {
            ctx.run.errln(format!("Created {created}"));
            Ok(())
        }
        Err(err) => {
            match err.code() {
                Some(ErrorCode::EphemeralOnLocalSession) => ctx
                    .run
                    .errln("Unable to create ephemeral node on a local session"),
                Some(ErrorCode::InvalidAcl) => ctx
                    .run
                    .errln(format!("KeeperErrorCode = InvalidACL for {path}")),
                _ => {}
            }
            Err(keeper(&err, path))
        }
    }
}

async fn delete(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&DELETE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("delete"));
    }
    if p.args.len() > 2 {
        ctx.run.errln(
            "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.",
        );
    }
    let path = p.args[1].as_str();
    let version = int_option(&p, "v")?;
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    ctx.rq(zk.delete(path, version.filter(|v| *v != -1)))
        .await
        .map_err(|e| keeper(&e, path))
}

async fn deleteall(words: &[String], ctx: &mut Ctx<'_>, name: &str) -> Result<(), CliError> {
    let p = opts::parse(&DELETEALL, words)?;
    if p.args.len() < 2 {
        return Err(CliError::new(format!("{name} path [-b batch size]")));
    }
    let batch = match p.value("b") {
        Some(v) => java_int(v).ok_or_else(|| CliError::new("-b argument must be an int value"))?,
        None => 1000,
    };
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    // ZKUtil.listSubTreeBFS, then deletes from the deepest, `batch` per multi.
    let mut tree = vec![path.to_string()];
    let mut next = 0;
    while next < tree.len() {
        let node = tree[next].clone();
        next += 1;
        let children = ctx
            .rq(zk.get_children(&node))
            .await
            .map_err(|e| keeper(&e, &node))?;
        let base = if node == "/" { "" } else { node.as_str() };
        tree.extend(children.iter().map(|c| format!("{base}/{c}")));
    }
    let mut ok = true;
    let mut txn = zk.transaction();
    let mut ops = 0;
    for (i, node) in tree.iter().enumerate().rev() {
        txn = txn.delete(node, None);
        ops += 1;
        if ops == batch || i == 0 {
            let done = std::mem::replace(&mut txn, zk.transaction());
            ops = 0;
            if ctx.rq(done.commit()).await.is_err() {
                ok = false;
                break;
            }
        }
    }
    if !ok {
        ctx.run
            .errln("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}

async fn sync(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("sync"));
    }
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    match ctx.rq(zk.sync(path)).await {
        Ok(()) => ctx.run.outln("Sync is OK"),
        Err(e) => ctx.run.outln(format!(
            "Sync has failed. rc={}",
            e.code()
                .map_or(ErrorCode::ConnectionLoss.code(), |c| c.code())
        )),
    }
    Ok(())
}

async fn get_acl(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&GETACL, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("getAcl"));
    }
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let (acl, stat) = ctx
        .rq(zk.get_acl(path))
        .await
        .map_err(|e| keeper(&e, path))?;
    ctx.run.out(format::acl(&acl));
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

async fn set_acl(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&SETACL, words)?;
    if p.args.len() < 3 {
        return Err(usage_error("setAcl"));
    }
    let path = p.args[1].as_str();
    let (acl, complaints) = format::parse_acl(&p.args[2]);
    for c in complaints {
        ctx.run.errln(c);
    }
    let version = int_option(&p, "v")?.filter(|v| *v != -1);
    check_path(path)?;
    if p.has("R") {
        let zk = ctx.zk(path).await?;
        let nodes = visit(&zk, path, false, &mut Vec::new())
            .await
            .map_err(|(e, at)| keeper(&e, &at))?;
        for (node, _) in nodes {
            let result = if acl.is_empty() {
                Err(Error::Keeper {
                    code: ErrorCode::InvalidAcl,
                    path: String::new(),
                })
            } else {
                ctx.rq(zk.set_acl(&node, &acl, version)).await
            };
            if let Err(e) = result {
                // Java prints the KeeperException's message, without a newline.
                let code = e.code().unwrap_or(ErrorCode::SystemError);
                let at = match &e {
                    Error::Keeper { path, .. } => path.clone(),
                    _ => node.clone(),
                };
                ctx.run.out(if at.is_empty() {
                    format!("KeeperErrorCode = {}", code.message())
                } else {
                    format!("KeeperErrorCode = {} for {at}", code.message())
                });
            }
        }
        return Ok(());
    }
    if acl.is_empty() {
        return Err(CliError::new("Acl is not valid : null"));
    }
    let zk = ctx.zk(path).await?;
    let stat = ctx
        .rq(zk.set_acl(path, &acl, version))
        .await
        .map_err(|e| keeper(&e, path))?;
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

async fn addauth(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("addauth"));
    }
    let auth = p
        .args
        .get(2)
        .map(|a| a.as_bytes().to_vec())
        .unwrap_or_default();
    let zk = ctx.zk("").await?;
    // Java does not wait for the answer: a refused credential ends the session,
    // which is reported as an AuthFailed event.
    if let Err(Error::AuthFailed) = ctx.rq(zk.add_auth(&p.args[1], &auth)).await {
        // Let the session end before the next command looks at it.
        let mut state = zk.state_watcher();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), state.wait_for(|s| s.is_terminal())).await;
    }
    Ok(())
}

async fn get_ephemerals(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    let path = p.args.get(1).map_or("/", String::as_str);
    check_path(path)?;
    // Java's getEphemerals ignores the chroot: the prefix is sent as given and the
    // server's full paths come back. Ask ours for the same and put the chroot back.
    let chroot = zk_client::connect_string::ConnectString::parse(&ctx.conn.host)
        .ok()
        .and_then(|c| c.chroot);
    let ask = match &chroot {
        None => Some(path.to_string()),
        Some(root) if root.starts_with(path) => Some("/".to_string()),
        Some(root) => path.strip_prefix(root.as_str()).map(str::to_string),
    };
    let zk = ctx.zk(path).await?;
    let eph = match ask {
        Some(prefix) => ctx
            .rq(zk.get_ephemerals(&prefix))
            .await
            .map_err(|e| keeper(&e, path))?,
        None => Vec::new(),
    };
    let eph: Vec<String> = match &chroot {
        None => eph,
        Some(root) => eph
            .into_iter()
            .map(|e| {
                if e == "/" {
                    root.clone()
                } else {
                    format!("{root}{e}")
                }
            })
            .collect(),
    };
    ctx.run.outln(format::list(&eph));
    Ok(())
}

async fn all_children(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&NONE, words)?;
    if p.args.len() < 2 {
        return Err(usage_error("getAllChildrenNumber"));
    }
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let n = ctx
        .rq(zk.get_all_children_number(path))
        .await
        .map_err(|e| keeper(&e, path))?;
    ctx.run.outln(n.to_string());
    Ok(())
}

async fn add_watch(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&ADDWATCH, words)?;
    if p.args.len() != 2 {
        return Err(usage_error("addWatch"));
    }
    let mode = match p.value("m").map(str::to_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
        Some("PERSISTENT") => AddWatchMode::Persistent,
        Some(_) => return Err(usage_error("addWatch")),
    };
    let path = p.args[1].as_str();
    check_path(path)?;
    let zk = ctx.zk(path).await?;
    let w = ctx
        .rq(zk.add_watch(path, mode))
        .await
        .map_err(|e| keeper(&e, path))?;
    let kind = match mode {
        AddWatchMode::Persistent => Kind::Persistent,
        AddWatchMode::PersistentRecursive => Kind::Recursive,
    };
    ctx.run.watch(kind, path, w);
    Ok(())
}

async fn whoami(ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let zk = ctx.zk("").await?;
    let ids = ctx.rq(zk.whoami()).await.map_err(|e| keeper(&e, ""))?;
    ctx.run.outln("Auth scheme: User");
    for id in ids {
        ctx.run.outln(format!("{}: {}", id.auth_scheme, id.user));
    }
    Ok(())
}

/// `ConfigUtils.getClientConfigStr`: the version and each server's client address.
fn client_config(config: &str) -> String {
    let props = crate::javaprops::load(config);
    let mut version = String::new();
    let mut servers = Vec::new();
    for (key, value) in &props {
        let (key, value) = (key.trim(), value.trim());
        if key == "version" {
            version = value.to_string();
        }
        if !key.starts_with("server.") {
            continue;
        }
        servers.push(client_address(value).unwrap_or_default());
    }
    format!("{version} {}", servers.join(","))
}

/// The client address of a `server.N` value (`host:port:port[:role];[host:]port`).
fn client_address(value: &str) -> Option<String> {
    let (_, client) = value.split_once(';')?;
    let client = client.trim();
    if let Some(rest) = client.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some(format!("{host}:{}", port.trim()));
    }
    match client.rsplit_once(':') {
        Some((host, port)) => Some(format!("{host}:{port}")),
        None => Some(format!("0.0.0.0:{client}")),
    }
}

async fn config(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&CONFIG, words)?;
    let zk = ctx.zk("/zookeeper/config").await?;
    let (data, stat) = if p.has("w") {
        let (read, w) = zk.get_config_w();
        let r = ctx
            .rq(read)
            .await
            .map_err(|e| keeper(&e, "/zookeeper/config"))?;
        ctx.run.watch(Kind::Data, "/zookeeper/config", w);
        r
    } else {
        ctx.rq(zk.get_config())
            .await
            .map_err(|e| keeper(&e, "/zookeeper/config"))?
    };
    let text = String::from_utf8_lossy(&data).into_owned();
    ctx.run.outln(if p.has("c") {
        client_config(&text)
    } else {
        text
    });
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
}

async fn reconfig(words: &[String], ctx: &mut Ctx<'_>) -> Result<(), CliError> {
    let p = opts::parse(&RECONFIG, words)?;
    let non_incremental = p.has("file") || p.has("members");
    let incremental = p.has("add") || p.has("remove");
    if !non_incremental && !incremental {
        return Err(usage_error("reconfig"));
    }
    let version =
        match p.value("v") {
            Some(v) => Some(i64::from_str_radix(v, 16).map_err(|_| {
                CliError::new("-v must be followed by a long (configuration version)")
            })?),
            None => None,
        };
    if non_incremental && incremental {
        return Err(CliError::new("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)"));
    }
    if p.has("file") && p.has("members") {
        return Err(CliError::new(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let joining = p.value("add").map(str::to_lowercase);
    let leaving = p.value("remove").map(str::to_lowercase);
    let mut members = p.value("members").map(str::to_lowercase);
    if let Some(file) = p.value("file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::new(format!("Error processing {file}{e}")))?;
        let servers: Vec<String> = crate::javaprops::load(&text)
            .into_iter()
            .filter(|(k, _)| k.starts_with("server."))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        members = Some(servers.join(","));
    }
    let zk = ctx.zk("").await?;
    let (data, stat) = ctx
        .rq(zk.reconfig(
            joining.as_deref(),
            leaving.as_deref(),
            members.as_deref(),
            version,
        ))
        .await
        .map_err(|e| match e {
            // Java's reconfig throws its KeeperException without a path.
            Error::Keeper { code, .. } => keeper(
                &Error::Keeper {
                    code,
                    path: String::new(),
                },
                "",
            ),
            e => keeper(&e, ""),
        })?;
    ctx.run.outln(format!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    ));
    if p.has("s") {
        ctx.run.out(format::stat(&stat));
    }
    Ok(())
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

    #[test]
    fn client_config_lists_client_addresses() {
        let cfg = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=h:1:2;2182\nversion=100000000";
        // In Java's (hash) order of the keys: server.2 before server.1.
        assert_eq!(client_config(cfg), "100000000 0.0.0.0:2182,127.0.0.1:2181");
        assert_eq!(client_config(""), " ");
    }

    #[test]
    fn java_numbers() {
        assert_eq!(java_int("-5"), Some(-5));
        assert_eq!(java_int("+5"), Some(5));
        assert_eq!(java_int(" 5"), None);
        assert_eq!(java_int("2147483648"), None);
        assert_eq!(java_long("2147483648"), Some(2147483648));
    }
}
