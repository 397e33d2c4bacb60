//! `zkcli`: Apache ZooKeeper's `zkCli.sh`, in Rust, on zk-client — the same commands,
//! options, output and error texts, byte for byte where zkCli.sh prints something.
//!
//! ```text
//! zkcli [-server host:port[,…][/chroot]] [-timeout ms] [-r] [-waitforconnection]
//!       [-Dname=value …] [cmd args…]
//! ```
//!
//! TLS as zkCli.sh takes it: Java system properties (`-Dzookeeper.client.secure=true`,
//! `-Dzookeeper.ssl.keyStore.location=…`, …) from `CLIENT_JVMFLAGS` and `JVMFLAGS`, or
//! as `-D` arguments (see `tlsprops`).
//!
//! With a command, runs it and exits (status non-zero if it failed). Without one,
//! reads commands: from a terminal with line editing, history and tab completion
//! (prompt `[zk: host:port(CONNECTED) 0] `), else line by line from stdin. `help`
//! lists the commands and our extensions (binary data as base64 or hex).
//!
//! Modules, one job each. Imports run one way, down this list: a module uses only
//! modules below it (`→`), so there are no cycles.
//!
//! ```text
//! main           process options, TLS, runtime          → shell args command_table tlsprops
//! shell          the loop: one-shot, piped, interactive;
//!                history/redo, the shell's own commands,
//!                events printed while waiting           → commands complete ctx events run
//!                                                         cli_error command_table args conn
//!                                                         watches java_num opts format
//! complete       rustyline: editing, history file, tab
//!                completion of commands and paths       → command_table conn
//! commands       runs a server command by its name      → cmd_read cmd_write cmd_acl cmd_config
//!                                                         quota ctx command_table cli_error opts
//! cmd_read       ls, get, stat, sync, getEphemerals,
//!                getAllChildrenNumber, addWatch         → ctx subtree command_table cli_error
//!                                                         run watches format opts
//! cmd_write      create, set, delete, deleteall         → ctx cmd_args command_table cli_error
//!                                                         java_num format opts
//! cmd_acl        getAcl, setAcl, addauth, whoami        → ctx cmd_args subtree command_table
//!                                                         cli_error format opts
//! cmd_config     config, reconfig                       → ctx command_table cli_error javaprops
//!                                                         watches format opts
//! quota          setquota, listquota, delquota          → subtree run cli_error java_num
//!                (client-side, under /zookeeper/quota)    format opts
//! ctx            a command's connection, requests timed
//!                out, events put into its output        → events run cli_error conn watches
//! events         watch events as zkCli.sh prints them   → run conn watches
//! cmd_args       int options, data arguments            → cli_error java_num format opts
//! command_table  command names, usage, option specs     → cli_error opts
//! subtree        ZKUtil.visitSubTreeDFS                 → watches
//! run            a command's output and new watches     → watches
//! cli_error      CliError, check_path, keeper           → format opts
//! args           the process's options, line splitting  → tlsprops
//! format         Java's formats: Stat, ACLs, errors     → time
//! watches        the watch tables as Java keeps them    → conn
//! conn           the connection, made in the background
//! opts           commons-cli's option parsing
//! java_num       Java's Integer/Long parsing
//! time           Java's `Date.toString`
//! javaprops      Java's `Properties` format
//! tlsprops       TLS from Java system properties
//! ```
//!
//! Paths are checked by `zk_proto::path`, with ZooKeeper's messages.

mod args;
mod cli_error;
mod cmd_acl;
mod cmd_args;
mod cmd_config;
mod cmd_read;
mod cmd_write;
mod command_table;
mod commands;
mod complete;
mod conn;
mod ctx;
mod events;
mod format;
mod java_num;
mod javaprops;
mod opts;
mod quota;
mod run;
mod shell;
mod subtree;
mod time;
mod tlsprops;
mod watches;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use args::Options;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let options = Options::parse(&argv);
    if options.help {
        print!("{}{}", command_table::usage(), command_table::HELP_EXTRAS);
        return;
    }
    for e in &options.errors {
        eprintln!("{e}");
    }
    let timeout = match options.timeout_ms() {
        Ok(ms) => Duration::from_millis(ms),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // zkCli.sh hands CLIENT_JVMFLAGS and JVMFLAGS to java; -D arguments come last.
    let mut props = Vec::new();
    for var in ["JVMFLAGS", "CLIENT_JVMFLAGS"] {
        if let Ok(flags) = std::env::var(var) {
            props.extend(tlsprops::from_jvm_flags(&flags));
        }
    }
    props.extend(options.properties.iter().cloned());
    let tls = match tlsprops::tls_config(&props) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("zkcli: {e}");
            std::process::exit(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(options, timeout, tls));
    runtime.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

async fn run(options: Options, timeout: Duration, tls: Option<zk_client::TlsConfig>) -> i32 {
    println!("Connecting to {}", options.server);
    let command = options.command.clone();
    let wait = options.wait_for_connection;
    let mut shell = shell::Shell::new(options, timeout, tls, Arc::new(Mutex::new(None)));
    if wait && !shell.wait_for_connection().await {
        return 1;
    }
    let code = match command {
        Some(words) => shell.run_once(words).await,
        None => {
            println!("Welcome to ZooKeeper!");
            if std::io::stdin().is_terminal() {
                println!("JLine support is enabled");
                shell.run_interactive().await;
            } else {
                println!("JLine support is disabled");
                shell.run_piped().await;
            }
            shell.exit_code()
        }
    };
    shell.shutdown().await;
    code
}
