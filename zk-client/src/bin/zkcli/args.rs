//! The command line of the process (`-server`, `-timeout`, `-r`, …, then an optional
//! one-shot command) and the splitting of a shell line into words, both as
//! `ZooKeeperMain.MyCommandOptions` does them.

/// What the process was started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-server host:port[,…][/chroot]` (default `localhost:2181`).
    pub server: String,
    /// `-timeout ms`: the session timeout asked for (default 30000).
    pub timeout: String,
    /// `-r`: accept read-only servers.
    pub read_only: bool,
    /// `-waitforconnection`: wait for the connection before running anything.
    pub wait_for_connection: bool,
    /// `-client-configuration file`: accepted and ignored (nothing in it applies).
    pub client_configuration: Option<String>,
    /// `-help`/`--help` (ours): print the usage and exit.
    pub help: bool,
    /// `-Dname=value` arguments (ours; zkCli.sh takes them in `CLIENT_JVMFLAGS`), in
    /// order.
    pub properties: Vec<(String, String)>,
    /// The one-shot command and its arguments, if one was given.
    pub command: Option<Vec<String>>,
    /// Complaints about the command line, printed before anything runs (zkCli.sh
    /// prints them and goes on with the defaults).
    pub errors: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server: "localhost:2181".into(),
            timeout: "30000".into(),
            read_only: false,
            wait_for_connection: false,
            client_configuration: None,
            help: false,
            properties: Vec::new(),
            command: None,
            errors: Vec::new(),
        }
    }
}

impl Options {
    /// Parses the process arguments (without the program name). Options zkCli.sh does
    /// not know are skipped, as it skips them; the first word not starting with `-`
    /// starts the command.
    pub fn parse(args: &[String]) -> Options {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(opt) = it.next() {
            let mut value = |o: &mut Options| -> Option<String> {
                let v = it.next().cloned();
                if v.is_none() {
                    o.errors
                        .push(format!("Error: no argument found for option {opt}"));
                }
                v
            };
            match opt.as_str() {
                "-server" => match value(&mut o) {
                    Some(v) => o.server = v,
                    None => return o,
                },
                "-timeout" => match value(&mut o) {
                    Some(v) => o.timeout = v,
                    None => return o,
                },
                "-client-configuration" => match value(&mut o) {
                    Some(v) => o.client_configuration = Some(v),
                    None => return o,
                },
                "-r" => o.read_only = true,
                "-waitforconnection" => o.wait_for_connection = true,
                "-help" | "--help" | "-h" => o.help = true,
                _ if opt.starts_with("-D") => {
                    o.properties.extend(crate::tlsprops::property(opt));
                }
                _ => {}
            }
            if !opt.starts_with('-') {
                let mut command = vec![opt.clone()];
                command.extend(it.cloned());
                o.command = Some(command);
                return o;
            }
        }
        o
    }

    /// The session timeout in milliseconds.
    pub fn timeout_ms(&self) -> Result<u64, String> {
        match self.timeout.trim().parse::<i64>() {
            Ok(ms) if ms > 0 => Ok(ms as u64),
            _ => Err(format!(
                "-timeout needs a positive number of milliseconds, not {:?}",
                self.timeout
            )),
        }
    }
}

/// Java's `\s`: ASCII whitespace.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Splits a line into words as zkCli.sh does: words are separated by whitespace, and a
/// word may be quoted with `"…"` or `'…'` (the quotes are removed, what is inside
/// kept whole). This is `MyCommandOptions.ARGS_PATTERN`,
/// `\s*([^"']\S*|"[^"]*"|'[^']*')\s*`, applied with `find()`, backtracking included.
pub fn split_line(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut from = 0;
    while from < chars.len() {
        let Some((group, end)) = (from..chars.len()).find_map(|s| match_at(&chars, s)) else {
            break;
        };
        let mut word: String = chars[group.0..group.1].iter().collect();
        let quoted = word.len() >= 2
            && (word.starts_with('"') && word.ends_with('"')
                || word.starts_with('\'') && word.ends_with('\''));
        if quoted {
            word = word[1..word.len() - 1].to_string();
        }
        words.push(word);
        if end == from {
            break;
        }
        from = end;
    }
    words
}

/// The pattern matched at `start`: the group's span and the end of the match.
fn match_at(chars: &[char], start: usize) -> Option<((usize, usize), usize)> {
    let spaces = chars[start..].iter().take_while(|c| is_space(**c)).count();
    // `\s*` is greedy and gives back one character at a time.
    for k in (0..=spaces).rev() {
        let g = start + k;
        let Some(&c) = chars.get(g) else { continue };
        let group_end = if c != '"' && c != '\'' {
            // [^"']\S*
            Some(g + 1 + chars[g + 1..].iter().take_while(|c| !is_space(**c)).count())
        } else {
            // "[^"]*" or '[^']*'
            chars[g + 1..]
                .iter()
                .position(|x| *x == c)
                .map(|p| g + 1 + p + 1)
        };
        if let Some(e) = group_end {
            let end = e + chars[e..].iter().take_while(|c| is_space(**c)).count();
            return Some(((g, e), end));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splits_like_zookeeper_main() {
        assert_eq!(split_line("ls /"), s(&["ls", "/"]));
        assert_eq!(split_line("  create   /a  b "), s(&["create", "/a", "b"]));
        assert_eq!(split_line("set /a \"x y\""), s(&["set", "/a", "x y"]));
        assert_eq!(split_line("set /a 'x \"y'"), s(&["set", "/a", "x \"y"]));
        assert_eq!(split_line("set /a ''"), s(&["set", "/a", ""]));
        assert_eq!(split_line("set /a \"x y\"z"), s(&["set", "/a", "x y", "z"]));
        assert_eq!(
            split_line("set /a ab\"c d\""),
            s(&["set", "/a", "ab\"c", "d\""])
        );
        // An unclosed quote is skipped, unless the line starts with a space: then the
        // regex gives the space back and takes it with the quote.
        assert_eq!(split_line("set /a 'xy"), s(&["set", "/a", "xy"]));
        assert_eq!(split_line("'xy"), s(&["xy"]));
        assert_eq!(split_line(" 'xy"), s(&[" 'xy"]));
        // All blanks: the regex gives one back as a word (zkCli.sh then reports the
        // command " " not found).
        assert_eq!(split_line("   "), s(&[" "]));
        assert!(split_line("").is_empty());
    }

    #[test]
    fn parses_process_options() {
        let o = Options::parse(&s(&[
            "-server", "h:1/c", "-timeout", "5000", "-r", "ls", "-s", "/",
        ]));
        assert_eq!(o.server, "h:1/c");
        assert_eq!(o.timeout_ms(), Ok(5000));
        assert!(o.read_only);
        assert_eq!(o.command, Some(s(&["ls", "-s", "/"])));
        let o = Options::parse(&s(&["-x", "-server"]));
        assert_eq!(o.server, "localhost:2181");
        assert_eq!(
            o.errors,
            vec!["Error: no argument found for option -server"]
        );
        assert_eq!(o.command, None);
    }
}
