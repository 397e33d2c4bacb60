//! The shell: `ZooKeeperMain`'s loop. One-shot (a command on the command line), piped
//! (commands read from a non-terminal stdin, no prompt) and interactive (rustyline,
//! prompt `[zk: host(STATE) N] `); numbered `history` and `redo`; the commands that
//! are the shell's own; and printing the watch events that come while it waits.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io::Write;
use std::task::{Context, Poll};
use std::time::Duration;

use rustyline::ExternalPrinter;
use tokio::io::AsyncBufReadExt;
use zk_client::{SessionState, WatchedEvent, WatcherType};

use crate::args::{split_line, Options};
use crate::cli_error::{self, CliError};
use crate::command_table::{self, EXTRA_COMMANDS, REMOVEWATCHES};
use crate::commands;
use crate::conn::{Conn, Shared};
use crate::ctx::Ctx;
use crate::events::{drain_events, event_text, keeper_state, watch_text};
use crate::java_num::java_decode;
use crate::run::Run;
use crate::watches::WatchTable;

/// Something to report while the shell waits.
enum Event {
    State(SessionState),
    Watch(WatchedEvent),
}

/// Whether the shell goes on after a command.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// Where event text goes while the shell waits for a line.
enum Printer {
    Direct,
    Readline(Box<dyn ExternalPrinter + Send>),
}

/// The shell's state (`ZooKeeperMain`'s fields).
pub struct Shell {
    options: Options,
    timeout: Duration,
    /// TLS for every connection (`connect` too), from `-Dzookeeper.client.secure` etc.
    tls: Option<zk_client::TlsConfig>,
    conn: Conn,
    watches: WatchTable,
    history: HashMap<i64, String>,
    count: i64,
    print_watches: bool,
    exit_code: i32,
    shared: Shared,
    printer: Printer,
}

fn write_out(to_err: bool, text: &str) {
    if to_err {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }
}

impl Shell {
    /// A shell for `options`, connecting in the background.
    pub fn new(
        options: Options,
        timeout: Duration,
        tls: Option<zk_client::TlsConfig>,
        shared: Shared,
    ) -> Shell {
        let conn = Conn::start(
            &options.server,
            timeout,
            options.read_only,
            tls.clone(),
            shared.clone(),
        );
        Shell {
            options,
            timeout,
            tls,
            conn,
            watches: WatchTable::default(),
            history: HashMap::new(),
            count: 0,
            print_watches: true,
            exit_code: 0,
            shared,
            printer: Printer::Direct,
        }
    }

    /// The prompt zkCli.sh shows with JLine: `[zk: host(STATE) N] `.
    pub fn prompt(&self) -> String {
        format!(
            "[zk: {}({}) {}] ",
            self.conn.host,
            self.conn.state_name(),
            self.count
        )
    }

    /// The exit code so far (that of the last command).
    pub fn exit_code(&self) -> i32 {
        self.exit_code
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if let Poll::Ready(s) = self.conn.poll_state(cx) {
            return Poll::Ready(Event::State(s));
        }
        self.watches
            .poll_event(&mut self.conn, cx)
            .map(Event::Watch)
    }

    fn event_string(&self, ev: &Event) -> Option<String> {
        if !self.print_watches {
            return None;
        }
        match ev {
            Event::State(s) => keeper_state(*s).map(|k| event_text(k, "None", None)),
            Event::Watch(w) => Some(watch_text(w)),
        }
    }

    /// Prints an event that came while waiting.
    fn print_idle_event(&mut self, ev: Event) {
        let Some(text) = self.event_string(&ev) else {
            return;
        };
        match &mut self.printer {
            Printer::Direct => write_out(false, &text),
            Printer::Readline(p) => {
                if p.print(text.clone()).is_err() {
                    write_out(false, &text);
                }
            }
        }
    }

    /// Events already there, as text, in order.
    fn drain_events(&mut self, run: &mut Run) {
        run.print_watches = self.print_watches;
        drain_events(&mut self.conn, &mut self.watches, run);
    }

    /// Waits for the next event and prints it (for a caller racing it with input).
    async fn next_event(&mut self) {
        let ev = poll_fn(|cx| self.poll_event(cx)).await;
        self.print_idle_event(ev);
    }

    /// Runs one line as `executeLine` does: numbered in the history, then run.
    pub async fn execute_line(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return true;
        }
        let words = split_line(line);
        if words.is_empty() {
            // zkCli.sh runs the previous command again here (its parser keeps it);
            // we take a blank line for nothing.
            return true;
        }
        self.history.insert(self.count, line.to_string());
        let flow = self.process_cmd(words).await;
        self.count += 1;
        flow == Flow::Continue
    }

    /// Runs a one-shot command (the words as given, not re-split); the exit code.
    pub async fn run_once(&mut self, words: Vec<String>) -> i32 {
        self.process_cmd(words).await;
        self.exit_code
    }

    /// `processCmd`: runs, prints, and keeps the exit code.
    async fn process_cmd(&mut self, words: Vec<String>) -> Flow {
        self.watches.forget_unmatched();
        let mut run = Run {
            print_watches: self.print_watches,
            ..Run::default()
        };
        let result = Box::pin(self.process_zk_cmd(words, &mut run)).await;
        // (Events that came during the command are in its output where they came.)
        for (to_err, text) in run.lines.drain(..) {
            write_out(to_err, &text);
        }
        for (kind, path, slot) in run.watches {
            self.watches.add(kind, &path, slot);
        }
        for ev in self.watches.replay() {
            if self.print_watches {
                write_out(false, &watch_text(&ev));
            }
        }
        match result {
            // `quit` exits with the code of the command before it.
            Ok(Flow::Quit) => Flow::Quit,
            Ok(flow) => {
                self.exit_code = 0;
                flow
            }
            Err(e) => {
                self.exit_code = e.code;
                write_out(true, &format!("{}\n", e.message));
                Flow::Continue
            }
        }
    }

    /// `processZKCmd`.
    async fn process_zk_cmd(
        &mut self,
        words: Vec<String>,
        run: &mut Run,
    ) -> Result<Flow, CliError> {
        let Some(cmd) = words.first().cloned() else {
            run.lines.push((true, command_table::usage()));
            return Err(CliError::new("No command entered"));
        };
        let builtin = matches!(
            cmd.as_str(),
            "connect" | "history" | "redo" | "printwatches" | "quit"
        );
        if !builtin
            && command_table::find(&cmd).is_none()
            && !EXTRA_COMMANDS.contains(&cmd.as_str())
        {
            run.lines.push((true, command_table::usage()));
            return Err(CliError {
                message: format!("Command not found: Command not found {cmd}"),
                code: 127,
            });
        }
        match cmd.as_str() {
            "quit" => {
                self.close(run).await;
                return Ok(Flow::Quit);
            }
            "redo" if words.len() >= 2 => {
                let i = java_decode(&words[1]).ok_or_else(|| {
                    CliError::new(format!(
                        "java.lang.NumberFormatException: For input string: \"{}\"",
                        words[1]
                    ))
                })?;
                if self.count <= i || i < 0 {
                    return Err(CliError::new("Command index out of range"));
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let again = split_line(&line);
                if again.first().map(String::as_str) == Some("redo") {
                    return Err(CliError::new("No redoing redos"));
                }
                self.history.insert(self.count, line);
                // The redone command prints and sets the exit code itself; flush what
                // this one printed first.
                for (to_err, text) in run.lines.drain(..) {
                    write_out(to_err, &text);
                }
                if Box::pin(self.process_cmd(again)).await == Flow::Quit {
                    return Ok(Flow::Quit);
                }
            }
            "history" => {
                for i in (self.count - 10)..=self.count {
                    if i < 0 {
                        continue;
                    }
                    let line = self.history.get(&i).map_or("null", String::as_str);
                    run.outln(format!("{i} - {line}"));
                }
            }
            "printwatches" => {
                if words.len() == 1 {
                    run.outln(format!(
                        "printwatches is {}",
                        if self.print_watches { "on" } else { "off" }
                    ));
                } else {
                    self.print_watches = words[1] == "on";
                }
            }
            "connect" => {
                let host = words
                    .get(1)
                    .cloned()
                    .unwrap_or_else(|| self.conn.host.clone());
                if self.conn.alive() {
                    self.close(run).await;
                }
                self.watches.clear();
                self.conn = Conn::start(
                    &host,
                    self.timeout,
                    self.options.read_only,
                    self.tls.clone(),
                    self.shared.clone(),
                );
            }
            "help" => {
                run.out(command_table::usage());
                run.out(command_table::HELP_EXTRAS);
                return Ok(Flow::Continue);
            }
            _ => {}
        }
        if !self.conn.alive() {
            run.outln("Not connected");
            return Ok(Flow::Continue);
        }
        match cmd.as_str() {
            "close" => {
                self.close(run).await;
            }
            "removewatches" => self.remove_watches(&words, run).await?,
            c if builtin || c == "help" => {}
            _ => {
                let mut ctx = Ctx {
                    conn: &mut self.conn,
                    watches: &mut self.watches,
                    run,
                };
                commands::exec(&words, &mut ctx).await?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Closes the session, reporting `Closed` as Java's watcher does.
    async fn close(&mut self, run: &mut Run) {
        self.drain_events(run);
        let was_open = self.conn.close().await;
        // Notifications the closing brought (our own ephemerals going) come first.
        self.drain_events(run);
        if was_open && self.print_watches {
            run.out(event_text("Closed", "None", None));
        }
        self.watches.clear();
    }

    /// `-waitforconnection`: waits for the session; false if it could not be made.
    pub async fn wait_for_connection(&mut self) -> bool {
        match self.conn.client().await {
            Ok((_, fresh)) => {
                if fresh && self.print_watches {
                    write_out(false, &event_text("SyncConnected", "None", None));
                }
                true
            }
            Err(e) => {
                write_out(true, &format!("{}\n", crate::format::error(&e, "")));
                false
            }
        }
    }

    /// Closes the session without a word (the process is ending).
    pub async fn shutdown(&mut self) {
        self.conn.close().await;
    }

    /// `removewatches path [-c|-d|-a] [-l]`, with the Java client's local bookkeeping.
    async fn remove_watches(&mut self, words: &[String], run: &mut Run) -> Result<(), CliError> {
        let p = crate::opts::parse(&REMOVEWATCHES, words)?;
        if p.args.len() < 2 {
            return Err(CliError::new(
                command_table::find("removewatches").map_or_else(String::new, |c| c.usage_line()),
            ));
        }
        let path = p.args[1].as_str();
        let kind = if p.has("c") {
            WatcherType::Children
        } else if p.has("d") {
            WatcherType::Data
        } else {
            WatcherType::Any
        };
        let local = p.has("l");
        cli_error::check_path(path)?;
        let no_watcher = || CliError::new(format!("KeeperErrorCode = No such watcher for {path}"));
        // Java asks the server, then checks and updates its own tables.
        let state = if local && !self.conn.connected() {
            "Disconnected"
        } else {
            let zk = match self.conn.client().await {
                Ok((zk, fresh)) => {
                    if fresh && self.print_watches {
                        run.out(event_text("SyncConnected", "None", None));
                    }
                    zk
                }
                Err(e) => return Err(cli_error::keeper(&e, path)),
            };
            match tokio::time::timeout(self.timeout, zk.remove_watches(path, kind)).await {
                Ok(Ok(())) => "SyncConnected",
                Ok(Err(e)) if local => {
                    let lost = matches!(
                        e,
                        zk_client::Error::ConnectionLoss | zk_client::Error::SessionExpired
                    );
                    if lost {
                        "Disconnected"
                    } else {
                        "SyncConnected"
                    }
                }
                Ok(Err(e)) => {
                    if !self.watches.contains(path, kind) {
                        return Err(no_watcher());
                    }
                    return Err(cli_error::keeper(&e, path));
                }
                Err(_) if local => "Disconnected",
                Err(_) => return Err(cli_error::keeper(&zk_client::Error::ConnectionLoss, path)),
            }
        };
        if !self.watches.contains(path, kind) {
            return Err(no_watcher());
        }
        let removed = self.watches.remove(path, kind);
        if removed.is_empty() {
            return Err(no_watcher());
        }
        self.drain_events(run);
        if self.print_watches {
            for ev in removed {
                run.out(event_text(state, &format!("{ev:?}"), Some(path)));
            }
        }
        Ok(())
    }

    /// Reads commands from a non-terminal stdin until its end (or `quit`).
    pub async fn run_piped(&mut self) {
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let mut buf = Vec::new();
        loop {
            tokio::select! {
                biased;
                () = self.next_event() => {}
                read = stdin.read_until(b'\n', &mut buf) => {
                    let at_end = matches!(read, Ok(0) | Err(_));
                    if at_end && buf.is_empty() {
                        return;
                    }
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    buf.clear();
                    let line = line.strip_suffix('\n').unwrap_or(&line);
                    let line = line.strip_suffix('\r').unwrap_or(line).to_string();
                    if !self.execute_line(&line).await || at_end {
                        return;
                    }
                }
            }
        }
    }

    /// The interactive loop: rustyline on its own thread, events printed above the
    /// prompt while a line is being typed.
    pub async fn run_interactive(&mut self) {
        let Some(mut editor) =
            crate::complete::Editor::start(self.shared.clone(), tokio::runtime::Handle::current())
        else {
            self.run_piped().await;
            return;
        };
        if let Some(p) = editor.printer.take() {
            self.printer = Printer::Readline(p);
        }
        loop {
            editor.ask(self.prompt());
            let input = loop {
                tokio::select! {
                    input = editor.next() => break input,
                    () = self.next_event() => {}
                }
            };
            match input {
                crate::complete::Input::Line(line) => {
                    if !self.execute_line(&line).await {
                        break;
                    }
                }
                crate::complete::Input::Interrupted => {}
                crate::complete::Input::Eof => break,
            }
        }
        self.printer = Printer::Direct;
    }
}
