//! `java.util.Properties.load` and the order Java iterates the result in (a
//! `ConcurrentHashMap`: by bucket of `String.hashCode`, then insertion), which
//! `config -c` lists servers in.

/// The `key=value` pairs of a properties text, in Java's iteration order.
pub fn load(text: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for line in logical_lines(text) {
        let (key, value) = split_pair(&line);
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(p) => p.1 = value,
            None => pairs.push((key, value)),
        }
    }
    // A ConcurrentHashMap made with capacity 8 has 16 buckets, doubled at 3/4 full.
    let mut buckets = 16usize;
    while pairs.len() >= buckets * 3 / 4 {
        buckets *= 2;
    }
    let mut indexed: Vec<(usize, usize, (String, String))> = pairs
        .into_iter()
        .enumerate()
        .map(|(i, p)| (bucket(&p.0, buckets), i, p))
        .collect();
    indexed.sort_by_key(|(b, i, _)| (*b, *i));
    indexed.into_iter().map(|(_, _, p)| p).collect()
}

/// `ConcurrentHashMap`'s bucket of a string key.
fn bucket(key: &str, buckets: usize) -> usize {
    let h = key
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
    spread as usize & (buckets - 1)
}

/// Lines with comments and blank lines dropped and `\` continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for raw in text.split(['\n', '\r']) {
        let line = raw.trim_start_matches([' ', '\t', '\u{c}']);
        let mut piece = match current.take() {
            Some(mut acc) => {
                acc.push_str(line);
                acc
            }
            None => {
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                line.to_string()
            }
        };
        let trailing = piece.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            piece.pop();
            current = Some(piece);
        } else {
            out.push(piece);
        }
    }
    if let Some(acc) = current {
        out.push(acc);
    }
    out
}

/// A logical line's key and value, unescaped.
fn split_pair(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut escaped = false;
    while i < chars.len() {
        let c = chars[i];
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if matches!(c, '=' | ':' | ' ' | '\t' | '\u{c}') {
            break;
        }
        i += 1;
    }
    let key: String = chars[..i].iter().collect();
    let mut j = i;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
    }
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
        j += 1;
    }
    let value: String = chars[j..].iter().collect();
    (unescape(&key), unescape(&value))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = (0..4).filter_map(|_| it.next()).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_like_java() {
        let p = load("# c\nserver.1=a:1:2;3\n  server.2 = b\\\n  c\nversion=1\n");
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![
                ("server.1".to_string(), "a:1:2;3".to_string()),
                ("server.2".to_string(), "bc".to_string()),
                ("version".to_string(), "1".to_string()),
            ]
        );
        // Java iterates these three keys in this order (checked with jshell).
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["server.2", "server.1", "version"]);
    }
}
