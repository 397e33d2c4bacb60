//! Option parsing as Apache commons-cli's `DefaultParser` does it for zkCli.sh's
//! commands: options anywhere among the arguments, `-sw` for `-s -w`, `-v5` for
//! `-v 5`, a negative number taken as an option's value, `--` ending the options,
//! mutually exclusive groups, and commons-cli's exception texts.

use std::fmt;

/// One option a command takes.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Its name, without the dash (`s`, `v`, `members`…).
    pub name: &'static str,
    /// Whether it takes a value.
    pub has_arg: bool,
    /// commons-cli's description (shown in a missing-group message and `ls -?`).
    pub desc: &'static str,
}

/// The options of a command.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Every option.
    pub opts: &'static [Opt],
    /// Options of which at most one may be given (and, if `required`, exactly one).
    pub group: Option<Group>,
}

/// A commons-cli `OptionGroup`.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// The names of its options, in order.
    pub names: &'static [&'static str],
    /// Whether one of them must be given.
    pub required: bool,
}

/// Shorthand for an [`Opt`].
pub const fn opt(name: &'static str, has_arg: bool, desc: &'static str) -> Opt {
    Opt {
        name,
        has_arg,
        desc,
    }
}

/// A parsed command line: the arguments (the command name first) and the options seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Arguments that are not options, the command itself first.
    pub args: Vec<String>,
    opts: Vec<(&'static str, Option<String>)>,
}

impl Parsed {
    /// Whether option `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }

    /// The value of option `name` (its first occurrence), if given with one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// A commons-cli `ParseException`, displayed as zkCli.sh prints it (its `toString`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// An option the command does not know.
    Unrecognized(String),
    /// An option that needs a value got none.
    MissingArgument(String),
    /// A second option of an exclusive group.
    AlreadySelected {
        /// The option given second.
        option: String,
        /// The one given first.
        selected: String,
    },
    /// None of a required group's options was given.
    MissingOption(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unrecognized(t) => write!(
                f,
                "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {t}"
            ),
            ParseError::MissingArgument(o) => write!(
                f,
                "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {o}"
            ),
            ParseError::AlreadySelected { option, selected } => write!(
                f,
                "org.apache.commons.cli.AlreadySelectedException: The option '{option}' was specified but an option from this group has already been selected: '{selected}'"
            ),
            ParseError::MissingOption(what) => write!(
                f,
                "org.apache.commons.cli.MissingOptionException: Missing required option: {what}"
            ),
        }
    }
}

/// Java's `Double.parseDouble` accepting the word (commons-cli takes such a word as a
/// value even when it starts with `-`).
fn is_number(token: &str) -> bool {
    let t = token.trim();
    let t = t
        .strip_suffix(['d', 'D', 'f', 'F'])
        .filter(|rest| !rest.is_empty())
        .unwrap_or(t);
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if unsigned == "NaN" || unsigned == "Infinity" {
        return true;
    }
    !unsigned.is_empty()
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && t.parse::<f64>().is_ok()
}

struct Parser<'a> {
    spec: &'a Spec,
    out: Parsed,
    /// Index in `out.opts` of an option still waiting for its value.
    current: Option<usize>,
    selected: Option<&'static str>,
}

impl<'a> Parser<'a> {
    fn find(&self, name: &str) -> Option<&'static Opt> {
        self.spec.opts.iter().find(|o| o.name == name)
    }

    fn accepts_arg(&self) -> bool {
        self.current
            .is_some_and(|i| self.out.opts[i].1.is_none() && self.has_arg(i))
    }

    fn has_arg(&self, i: usize) -> bool {
        self.find(self.out.opts[i].0).is_some_and(|o| o.has_arg)
    }

    fn is_short_option(&self, token: &str) -> bool {
        if !token.starts_with('-') || token.len() == 1 {
            return false;
        }
        let name = match token.find('=') {
            Some(p) => &token[1..p],
            None => &token[1..],
        };
        self.find(name).is_some()
            || name
                .chars()
                .next()
                .is_some_and(|c| self.find(&c.to_string()).is_some())
    }

    fn is_argument(&self, token: &str) -> bool {
        !self.is_short_option(token) || is_number(token)
    }

    fn check_required_args(&self) -> Result<(), ParseError> {
        match self.current {
            Some(i) if self.out.opts[i].1.is_none() && self.has_arg(i) => {
                Err(ParseError::MissingArgument(self.out.opts[i].0.to_string()))
            }
            _ => Ok(()),
        }
    }

    fn handle_option(&mut self, o: &'static Opt) -> Result<(), ParseError> {
        self.check_required_args()?;
        if let Some(group) = self.spec.group {
            if group.names.contains(&o.name) {
                match self.selected {
                    Some(s) if s != o.name => {
                        return Err(ParseError::AlreadySelected {
                            option: o.name.to_string(),
                            selected: s.to_string(),
                        })
                    }
                    _ => self.selected = Some(o.name),
                }
            }
        }
        self.out.opts.push((o.name, None));
        self.current = o.has_arg.then_some(self.out.opts.len() - 1);
        Ok(())
    }

    fn add_value(&mut self, value: String) {
        if let Some(i) = self.current {
            self.out.opts[i].1 = Some(value);
        }
    }

    fn unknown(&mut self, token: &str) -> Result<(), ParseError> {
        if token.starts_with('-') && token.len() > 1 {
            return Err(ParseError::Unrecognized(token.to_string()));
        }
        self.out.args.push(token.to_string());
        Ok(())
    }

    fn short_and_long(&mut self, token: &str) -> Result<(), ParseError> {
        let t = token.strip_prefix('-').unwrap_or(token);
        if t.chars().count() == 1 {
            return match self.find(t) {
                Some(o) => self.handle_option(o),
                None => self.unknown(token),
            };
        }
        match t.find('=') {
            None => match self.find(t) {
                Some(o) => self.handle_option(o),
                None => self.concatenated(token),
            },
            Some(p) => {
                let (name, value) = (&t[..p], &t[p + 1..]);
                match self.find(name) {
                    Some(o) if name.chars().count() == 1 && o.has_arg => {
                        self.handle_option(o)?;
                        self.add_value(value.to_string());
                        self.current = None;
                        Ok(())
                    }
                    _ => self.unknown(token),
                }
            }
        }
    }

    fn concatenated(&mut self, token: &str) -> Result<(), ParseError> {
        let chars: Vec<(usize, char)> = token.char_indices().collect();
        for (k, &(_, c)) in chars.iter().enumerate().skip(1) {
            let Some(o) = self.find(&c.to_string()) else {
                return self.unknown(token);
            };
            self.handle_option(o)?;
            if self.current.is_some() && k + 1 < chars.len() {
                let rest = &token[chars[k + 1].0..];
                self.add_value(strip_quotes(rest));
                break;
            }
        }
        Ok(())
    }
}

/// commons-cli's `Util.stripLeadingAndTrailingQuotes`.
fn strip_quotes(s: &str) -> String {
    if s.len() > 1 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains('"') {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// Parses `words` (the command name first) against `spec`.
pub fn parse(spec: &Spec, words: &[String]) -> Result<Parsed, ParseError> {
    let mut p = Parser {
        spec,
        out: Parsed::default(),
        current: None,
        selected: None,
    };
    let mut skip = false;
    for token in words {
        if skip {
            p.out.args.push(token.clone());
        } else if token == "--" {
            skip = true;
        } else if p.accepts_arg() && p.is_argument(token) {
            p.add_value(strip_quotes(token));
        } else if token.starts_with("--") {
            p.unknown(token)?;
        } else if token.starts_with('-') && token != "-" {
            p.short_and_long(token)?;
        } else {
            p.unknown(token)?;
        }
        if !p.accepts_arg() {
            p.current = None;
        }
    }
    p.check_required_args()?;
    if let Some(group) = spec.group {
        if group.required && p.selected.is_none() {
            let items: Vec<String> = group
                .names
                .iter()
                .filter_map(|n| spec.opts.iter().find(|o| o.name == *n))
                .map(|o| format!("-{} {}", o.name, o.desc))
                .collect();
            return Err(ParseError::MissingOption(format!("[{}]", items.join(", "))));
        }
    }
    Ok(p.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: Spec = Spec {
        opts: &[opt("s", false, "stats"), opt("v", true, "version")],
        group: None,
    };
    const QUOTA: Spec = Spec {
        opts: &[
            opt("n", true, "num soft quota"),
            opt("b", true, "bytes soft quota"),
        ],
        group: Some(Group {
            names: &["n", "b"],
            required: true,
        }),
    };

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn parses_as_commons_cli() {
        let p = parse(&SET, &words("set /a -s x -v 3")).unwrap();
        assert_eq!(p.args, words("set /a x"));
        assert!(p.has("s"));
        assert_eq!(p.value("v"), Some("3"));
        let p = parse(&SET, &words("set -sv7 /a x")).unwrap();
        assert_eq!(p.value("v"), Some("7"));
        let p = parse(&SET, &words("set -v -1 /a x")).unwrap();
        assert_eq!(p.value("v"), Some("-1"));
        let p = parse(&SET, &words("set /a -- -x")).unwrap();
        assert_eq!(p.args, words("set /a -x"));
        let p = parse(&SET, &words("set -v=4 /a -")).unwrap();
        assert_eq!(p.value("v"), Some("4"));
        assert_eq!(p.args, words("set /a -"));
        assert_eq!(
            parse(&SET, &words("set -x /a")).unwrap_err().to_string(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x"
        );
        assert_eq!(
            parse(&SET, &words("set /a b -v")).unwrap_err().to_string(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: v"
        );
        assert_eq!(
            parse(&SET, &words("set -v -s /a")).unwrap_err(),
            ParseError::MissingArgument("v".into())
        );
    }

    #[test]
    fn groups_are_exclusive_and_may_be_required() {
        assert_eq!(
            parse(&QUOTA, &words("setquota /a")).unwrap_err().to_string(),
            "org.apache.commons.cli.MissingOptionException: Missing required option: [-n num soft quota, -b bytes soft quota]"
        );
        assert_eq!(
            parse(&QUOTA, &words("setquota -n 1 -b 2 /a")).unwrap_err().to_string(),
            "org.apache.commons.cli.AlreadySelectedException: The option 'b' was specified but an option from this group has already been selected: 'n'"
        );
        assert!(parse(&QUOTA, &words("setquota -n 1 -n 2 /a")).is_ok());
    }
}
