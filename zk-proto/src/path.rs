//! znode path validation, with the rules and messages of ZooKeeper's
//! `PathUtils.validatePath`.

/// Why a path is not a valid znode path. The message is ZooKeeper's, character
/// positions included (counted in UTF-16 units, as Java counts them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPath(pub String);

/// Checks `path` as ZooKeeper does before any operation on it.
///
/// Valid paths start with `/`, do not end with `/` (except the root), contain no empty
/// segment, no `.` or `..` segment, no NUL and none of the characters ZooKeeper bans
/// (U+0001–U+001F, U+007F–U+009F, U+D800–U+F8FF — so every character outside the Basic
/// Multilingual Plane — and U+FFF0–U+FFFF).
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars.is_empty() {
        return Err(InvalidPath("Path length must be > 0".into()));
    }
    if chars[0] != u16::from(b'/') {
        return Err(InvalidPath("Path must start with / character".into()));
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == u16::from(b'/') {
        return Err(InvalidPath("Path must not end with / character".into()));
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let ends_segment = |i: usize| i + 1 == chars.len() || chars[i + 1] == slash;
    let mut last = slash;
    let mut reason = None;
    for i in 1..chars.len() {
        let c = chars[i];
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == slash && last == slash {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == dot && last == dot {
            if chars[i - 2] == slash && ends_segment(i) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == dot {
            if chars[i - 1] == slash && ends_segment(i) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c)
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if let Some(reason) = reason {
            return Err(InvalidPath(format!(
                "Invalid path string \"{path}\" caused by {reason}"
            )));
        }
        last = c;
    }
    Ok(())
}

/// Checks the path of a create: a sequential create may end in `/` (the server appends
/// the counter), so it is checked as ZooKeeper does, with a digit appended.
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if sequential {
        validate_path(&format!("{path}1"))
    } else {
        validate_path(path)
    }
}

/// The parent of a valid non-root path (`/a/b` → `/a`, `/a` → `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last segment of a valid path (`/a/b` → `b`; the root's is empty).
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_are_javas_as_zkcli_prints_them() {
        assert_eq!(validate_path("/"), Ok(()));
        assert_eq!(validate_path("/a/b.c/..d"), Ok(()));
        assert_eq!(
            validate_path("a").unwrap_err().0,
            "Path must start with / character"
        );
        assert_eq!(validate_path("").unwrap_err().0, "Path length must be > 0");
        assert_eq!(
            validate_path("/a/").unwrap_err().0,
            "Path must not end with / character"
        );
        assert_eq!(
            validate_path("/a//b").unwrap_err().0,
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/./b").unwrap_err().0,
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            validate_path("/a/..").unwrap_err().0,
            "Invalid path string \"/a/..\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate_path("/a\u{1}").unwrap_err().0,
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
        assert_eq!(
            validate_path("/\u{1F600}").unwrap_err().0,
            "Invalid path string \"/\u{1F600}\" caused by invalid character @1"
        );
        assert_eq!(validate_create_path("/a/", true), Ok(()));
        assert!(validate_create_path("/a/", false).is_err());
    }

    use super::*;

    fn reason(path: &str) -> String {
        validate_path(path).unwrap_err().0
    }

    #[test]
    fn accepts_ordinary_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/...",
            "/a/..b",
            "/zookeeper/quota",
            "/é",
            "/日本",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn rejects_what_zookeeper_rejects_with_its_messages() {
        assert_eq!(reason(""), "Path length must be > 0");
        assert_eq!(reason("a"), "Path must start with / character");
        assert_eq!(reason("/a/"), "Path must not end with / character");
        assert_eq!(
            reason("/a//b"),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            reason("/a/./b"),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            reason("/a/.."),
            "Invalid path string \"/a/..\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            reason("/."),
            "Invalid path string \"/.\" caused by relative paths not allowed @1"
        );
        assert_eq!(
            reason("/a\u{0}"),
            "Invalid path string \"/a\u{0}\" caused by null character not allowed @2"
        );
        assert_eq!(
            reason("/a\u{1}"),
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
        assert_eq!(
            reason("/\u{85}"),
            "Invalid path string \"/\u{85}\" caused by invalid character @1"
        );
        assert_eq!(
            reason("/\u{e000}"),
            "Invalid path string \"/\u{e000}\" caused by invalid character @1"
        );
        assert_eq!(
            reason("/\u{fff5}"),
            "Invalid path string \"/\u{fff5}\" caused by invalid character @1"
        );
    }

    #[test]
    fn characters_beyond_the_bmp_are_rejected_at_their_utf16_position() {
        // U+1F600 is a surrogate pair in Java; the first unit is at index 2.
        assert_eq!(
            reason("/é\u{1f600}"),
            "Invalid path string \"/é\u{1f600}\" caused by invalid character @2"
        );
    }

    #[test]
    fn sequential_create_may_end_with_slash() {
        assert_eq!(validate_create_path("/a/", true), Ok(()));
        assert!(validate_create_path("/a/", false).is_err());
        assert_eq!(validate_create_path("/", true), Ok(()));
    }

    #[test]
    fn parent_and_basename() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(basename("/"), "");
    }
}
