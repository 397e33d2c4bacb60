//! DIGEST-MD5's directive lists (RFC 2831 §7.1): `name=value` pairs separated by
//! commas, each value a token or a quoted string with `\` escapes.

use super::SaslError;

/// A parsed directive list, in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives(Vec<(String, String)>);

impl Directives {
    /// Parses `token` (UTF-8 text; names are matched case-insensitively).
    pub fn parse(token: &[u8]) -> Result<Directives, SaslError> {
        let text =
            std::str::from_utf8(token).map_err(|_| SaslError::Malformed("not UTF-8".into()))?;
        let mut out = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            // Skip separators (empty list elements are allowed by RFC 2831's #rule).
            while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c.is_whitespace() {
                    break;
                }
                name.push(c);
                chars.next();
            }
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(SaslError::Malformed(format!("{name:?} without a value")));
            }
            while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => break,
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        other => value.push(other),
                    }
                }
                if !closed {
                    return Err(SaslError::Malformed(format!("unterminated {name:?}")));
                }
                while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
                    chars.next();
                }
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err(SaslError::Malformed(format!("junk after {name:?}")));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value.truncate(value.trim_end().len());
            }
            if name.is_empty() {
                return Err(SaslError::Malformed("empty directive name".into()));
            }
            out.push((name.to_ascii_lowercase(), value));
        }
        Ok(Directives(out))
    }

    /// The value of `name` (lower case), if given; the first when repeated.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times `name` appears.
    pub fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| n == name).count()
    }

    /// The value of `name`, which must be there.
    pub fn require(&self, name: &'static str) -> Result<&str, SaslError> {
        self.get(name).ok_or(SaslError::Missing(name))
    }
}

/// `"value"` with `"` and `\` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens_and_quoted_strings() {
        let d = Directives::parse(
            br#"realm="zk-sasl-md5",nonce="a\"b",qop="auth",charset=utf-8, algorithm = md5-sess"#,
        )
        .unwrap();
        assert_eq!(d.get("realm"), Some("zk-sasl-md5"));
        assert_eq!(d.get("nonce"), Some("a\"b"));
        assert_eq!(d.get("charset"), Some("utf-8"));
        assert_eq!(d.get("algorithm"), Some("md5-sess"));
        assert_eq!(d.get("cipher"), None);
    }

    #[test]
    fn rejects_malformed_lists() {
        assert!(Directives::parse(b"nonce=\"open").is_err());
        assert!(Directives::parse(b"novalue").is_err());
        assert!(Directives::parse(b"=x").is_err());
        assert!(Directives::parse(b"a=\"x\"junk").is_err());
        assert!(Directives::parse(&[0xff, 0xfe]).is_err());
        assert_eq!(Directives::parse(b"").unwrap(), Directives::default());
    }

    #[test]
    fn quote_round_trips() {
        let q = quote("a\"b\\c");
        let d = Directives::parse(format!("x={q}").as_bytes()).unwrap();
        assert_eq!(d.get("x"), Some("a\"b\\c"));
    }
}
