//! What one command run produced: its output (stdout and stderr pieces, in order) and
//! the watches it left for the shell's table.

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

    /// A watch the command left, for the shell's table.
    pub fn watch(&mut self, kind: Kind, path: &str, slot: impl Into<Slot>) {
        self.watches.push((kind, path.to_string(), slot.into()));
    }
}
