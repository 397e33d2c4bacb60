//! ZooKeeper's client-side path check (`PathUtils.validatePath`), with its messages:
//! zkCli.sh prints them for a bad path before anything is sent.

/// Checks `path` as Java's `PathUtils.validatePath(path)` does; the error is its
/// message. Positions count UTF-16 units, as Java's do.
pub fn validate(path: &str) -> Result<(), String> {
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if chars[0] != u16::from(b'/') {
        return Err("Path must start with / character".into());
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == u16::from(b'/') {
        return Err("Path must not end with / character".into());
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let mut reason = None;
    let mut last = slash;
    for i in 1..chars.len() {
        let c = chars[i];
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == slash && last == slash {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == dot && last == dot {
            if chars[i - 2] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == dot {
            if chars[i - 1] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
        last = c;
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

/// `validatePath(path, sequential)`: a sequential path is checked with a digit
/// appended (it may end in `/`).
pub fn validate_create(path: &str, sequential: bool) -> Result<(), String> {
    if sequential {
        validate(&format!("{path}1"))
    } else {
        validate(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_javas() {
        assert_eq!(validate("/"), Ok(()));
        assert_eq!(validate("/a/b.c/..d"), Ok(()));
        assert_eq!(
            validate("a").unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(validate("").unwrap_err(), "Path length must be > 0");
        assert_eq!(
            validate("/a/").unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(
            validate("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate("/a/./b").unwrap_err(),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            validate("/a/..").unwrap_err(),
            "Invalid path string \"/a/..\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate("/a\u{1}").unwrap_err(),
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
        assert_eq!(
            validate("/\u{1F600}").unwrap_err(),
            "Invalid path string \"/\u{1F600}\" caused by invalid character @1"
        );
        assert_eq!(validate_create("/a/", true), Ok(()));
        assert!(validate_create("/a/", false).is_err());
    }
}
