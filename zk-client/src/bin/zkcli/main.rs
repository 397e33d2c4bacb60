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
//! Modules:
//! - `args`: the process's options and splitting a line into words (zkCli.sh's rules).
//! - `opts`: commons-cli's option parsing, as each command uses it.
//! - `commands`: the commands that talk to the server; `quota`: setquota, listquota,
//!   delquota (client-side, under `/zookeeper/quota`).
//! - `shell`: the loop, history/redo, the shell's own commands, watch events.
//! - `conn`: the connection made in the background, its state for the prompt.
//! - `watches`: the watch tables as the Java client keeps them.
//! - `complete`: rustyline (editing, history file, completion).
//! - `tlsprops`: TLS from Java system properties.
//! - `format`, `time`, `javaprops`: Java's formats (Stat, ACLs, `Date`, `Properties`);
//!   paths are checked by `zk_proto::path`, with ZooKeeper's messages.

mod args;
mod commands;
mod complete;
mod conn;
mod format;
mod javaprops;
mod opts;
mod quota;
mod shell;
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
        print!("{}{}", commands::usage(), commands::HELP_EXTRAS);
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
