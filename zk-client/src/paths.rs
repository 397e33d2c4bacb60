//! ZooKeeper path helpers (Curator's `ZKPaths`): join, split, parent and name,
//! ancestors, sequence suffixes. Pure string work; nothing here talks to a server.
//!
//! ```
//! use zk_client::paths;
//! assert_eq!(paths::join("/app", "config"), "/app/config");
//! assert_eq!(paths::make_path("/", &["app", "/locks/", "l-"]), "/app/locks/l-");
//! assert_eq!(paths::split("/app/locks/l-0000000007"), ["app", "locks", "l-0000000007"]);
//! assert_eq!(paths::parent("/app/locks"), Some("/app"));
//! assert_eq!(paths::name("/app/locks"), "locks");
//! assert_eq!(paths::sequence("l-0000000007"), Some(7));
//! ```

/// `parent` and `child` joined with exactly one `/` between them (ZKPaths.makePath).
/// A `child` of `""` or `"/"` gives `parent` itself.
pub fn join(parent: &str, child: &str) -> String {
    make_path(parent, &[child])
}

/// `parent` followed by each of `children`, with exactly one `/` between parts and no
/// trailing one (ZKPaths.makePath with several children). Empty parts are skipped;
/// the result is `/` when every part is empty.
pub fn make_path(parent: &str, children: &[&str]) -> String {
    let mut path = String::with_capacity(
        parent.len() + children.iter().map(|c| c.len() + 1).sum::<usize>() + 1,
    );
    for part in std::iter::once(&parent).chain(children) {
        let part = part.trim_matches('/');
        if !part.is_empty() {
            path.push('/');
            path.push_str(part);
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// The path's components, root first (`"/"` has none) (ZKPaths.split).
pub fn split(path: &str) -> Vec<&str> {
    path.split('/').filter(|p| !p.is_empty()).collect()
}

/// The parent of `path` (`None` for `/`) (ZKPaths.getPathAndNode's path).
pub fn parent(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    match trimmed.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&trimmed[..i]),
        None => None,
    }
}

/// The last component of `path` (`""` for `/`) (ZKPaths.getNodeFromPath).
pub fn name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Every proper ancestor of `path` except `/`, top down: `/a/b/c` gives `/a`, `/a/b`.
/// A path ending in `/` (a sequential create's prefix, `/a/b/`) names a child of
/// `/a/b`, so it gives `/a` and `/a/b`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(|(i, _)| i)
        .filter(|&i| i > 0)
        .map(move |i| &path[..i])
}

/// The 10-digit counter ZooKeeper appended to a sequential node's name, if the name
/// ends with one (ZKPaths.extractSequentialSuffix, read as a number). The counter is
/// the parent's signed 32-bit `cversion`; names made after it wrapped (2³¹ creations
/// under one parent) carry a minus sign and are not read here.
pub fn sequence(name: &str) -> Option<i64> {
    const DIGITS: usize = 10;
    if name.len() < DIGITS || !name.is_char_boundary(name.len() - DIGITS) {
        return None;
    }
    let suffix = &name[name.len() - DIGITS..];
    if suffix.bytes().all(|b| b.is_ascii_digit()) {
        suffix.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_make_path_put_one_slash_between_parts() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a/", "/b"), "/a/b");
        assert_eq!(join("/a", ""), "/a");
        assert_eq!(join("/", "/"), "/");
        assert_eq!(make_path("", &[]), "/");
        assert_eq!(make_path("/a", &["b", "c/"]), "/a/b/c");
    }

    #[test]
    fn parent_name_and_split() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(name("/"), "");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(split("/"), Vec::<&str>::new());
        assert_eq!(split("/a/b"), ["a", "b"]);
    }

    #[test]
    fn ancestors_leave_out_the_root_and_the_path() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a", "/a/b"]);
        assert_eq!(ancestors("/a").count(), 0);
        assert_eq!(ancestors("/").count(), 0);
        // A sequential prefix ending in `/` creates under `/a/b`.
        assert_eq!(ancestors("/a/b/").collect::<Vec<_>>(), ["/a", "/a/b"]);
    }

    #[test]
    fn sequence_reads_the_counter_and_nothing_else() {
        assert_eq!(sequence("lock-0000000042"), Some(42));
        assert_eq!(sequence("0000000000"), Some(0));
        assert_eq!(sequence("x-2147483647"), Some(2147483647));
        assert_eq!(sequence("lock-42"), None);
        assert_eq!(sequence("lock"), None);
        assert_eq!(sequence("ééééééééééé"), None);
    }
}
