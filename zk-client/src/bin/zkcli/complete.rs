//! Interactive input: rustyline on its own thread (line editing, persistent history in
//! `~/.zkcli_history` or `$ZKCLI_HISTORY`), tab completion of command names and znode
//! paths (the children of the path typed so far, asked of the server).

use std::path::PathBuf;
use std::time::Duration;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, ExternalPrinter, Helper};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::command_table::{COMMANDS, EXTRA_COMMANDS};
use crate::conn::Shared;

/// What the user did at the prompt.
#[derive(Debug)]
pub enum Input {
    /// Typed a line.
    Line(String),
    /// Pressed Ctrl-C.
    Interrupted,
    /// Pressed Ctrl-D, or the terminal went away.
    Eof,
}

/// Completes commands and znode paths.
pub struct ZkHelper {
    shared: Shared,
    runtime: Handle,
}

/// The shell's commands, sorted.
fn command_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    names.extend(EXTRA_COMMANDS);
    names.sort_unstable();
    names
}

impl ZkHelper {
    /// The children of `dir` (sorted), asked of the server; none if it cannot answer
    /// within a second.
    fn children(&self, dir: &str) -> Vec<String> {
        let Some(client) = self.shared.lock().ok().and_then(|c| c.clone()) else {
            return Vec::new();
        };
        let dir = dir.to_string();
        let listed = self.runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(1), client.get_children(&dir)).await
        });
        let mut children = match listed {
            Ok(Ok(c)) => c,
            _ => Vec::new(),
        };
        children.sort();
        children
    }

    /// Completions of the word `word` (the first on the line when `first`).
    pub fn candidates(&self, word: &str, first: bool) -> Vec<String> {
        if first {
            return command_names()
                .into_iter()
                .filter(|c| c.starts_with(word))
                .map(|c| format!("{c} "))
                .collect();
        }
        let Some(slash) = word.rfind('/') else {
            return Vec::new();
        };
        if !word.starts_with('/') {
            return Vec::new();
        }
        let (dir, prefix) = (&word[..=slash], &word[slash + 1..]);
        let parent = if dir == "/" {
            "/"
        } else {
            &dir[..dir.len() - 1]
        };
        self.children(parent)
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| format!("{dir}{c}"))
            .collect()
    }
}

impl Completer for ZkHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let first = before[..start].trim().is_empty();
        Ok((start, self.candidates(&before[start..], first)))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}

impl Highlighter for ZkHelper {}

impl Validator for ZkHelper {}

impl Helper for ZkHelper {}

/// Where the history is kept.
fn history_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZKCLI_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".zkcli_history"))
}

/// The line editor, running on its own thread.
pub struct Editor {
    prompts: std::sync::mpsc::Sender<String>,
    lines: mpsc::UnboundedReceiver<Input>,
    /// Prints above the line being edited (events arriving meanwhile).
    pub printer: Option<Box<dyn ExternalPrinter + Send>>,
}

impl Editor {
    /// Starts the editor; `None` if the terminal cannot be used.
    pub fn start(shared: Shared, runtime: Handle) -> Option<Editor> {
        let (prompt_tx, prompt_rx) = std::sync::mpsc::channel::<String>();
        let (line_tx, line_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("zkcli-readline".into())
            .spawn(move || {
                let config = rustyline::Config::builder()
                    .auto_add_history(false)
                    .completion_type(rustyline::CompletionType::List)
                    .build();
                let mut rl =
                    match rustyline::Editor::<ZkHelper, DefaultHistory>::with_config(config) {
                        Ok(rl) => rl,
                        Err(_) => {
                            let _ = ready_tx.send(None);
                            return;
                        }
                    };
                rl.set_helper(Some(ZkHelper { shared, runtime }));
                let history = history_file();
                if let Some(h) = &history {
                    let _ = rl.load_history(h);
                }
                let printer = rl
                    .create_external_printer()
                    .ok()
                    .map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>);
                if ready_tx.send(Some(printer)).is_err() {
                    return;
                }
                while let Ok(prompt) = prompt_rx.recv() {
                    let input = match rl.readline(&prompt) {
                        Ok(line) => {
                            if !line.trim().is_empty() {
                                let _ = rl.add_history_entry(line.as_str());
                                if let Some(h) = &history {
                                    let _ = rl.append_history(h);
                                }
                            }
                            Input::Line(line)
                        }
                        Err(ReadlineError::Interrupted) => Input::Interrupted,
                        Err(_) => Input::Eof,
                    };
                    let eof = matches!(input, Input::Eof);
                    if line_tx.send(input).is_err() || eof {
                        return;
                    }
                }
            })
            .ok()?;
        let printer = ready_rx.recv().ok()??;
        Some(Editor {
            prompts: prompt_tx,
            lines: line_rx,
            printer,
        })
    }

    /// Shows `prompt` and starts reading a line.
    pub fn ask(&mut self, prompt: String) {
        let _ = self.prompts.send(prompt);
    }

    /// The line read (cancel-safe).
    pub async fn next(&mut self) -> Input {
        self.lines.recv().await.unwrap_or(Input::Eof)
    }
}
