//! Quotas as ZooKeeper keeps them: for a quota on `/p`, the node
//! `/zookeeper/quota/p/zookeeper_limits` holds the limits and
//! `/zookeeper/quota/p/zookeeper_stats` the current usage, both as `StatsTrack` text.
//!
//! Limits read like `count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1` (the `=;`
//! is a real quirk of ZooKeeper 3.8.0's formatting); usage like `count=2,bytes=0`,
//! counting the quota root itself and its data bytes.

use super::blob::Blob;
use super::{DataTree, QUOTA_PATH};

/// Name of the limits node.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the usage node.
pub const STAT_NODE: &str = "zookeeper_stats";

/// A parsed `StatsTrack`: -1 means "no limit" (or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsTrack {
    /// Node count (soft limit in the limits node).
    pub count: i64,
    /// Data bytes (soft limit in the limits node).
    pub bytes: i64,
    /// Hard node-count limit.
    pub count_hard_limit: i64,
    /// Hard byte limit.
    pub byte_hard_limit: i64,
}

impl Default for StatsTrack {
    fn default() -> Self {
        StatsTrack {
            count: -1,
            bytes: -1,
            count_hard_limit: -1,
            byte_hard_limit: -1,
        }
    }
}

impl StatsTrack {
    /// Parses ZooKeeper's text; unknown keys are ignored, malformed values read as -1.
    pub fn parse(text: &str) -> StatsTrack {
        let mut s = StatsTrack::default();
        for part in text.split([',', ';']) {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value: i64 = value.trim().trim_end_matches('=').parse().unwrap_or(-1);
            match key.trim() {
                "count" => s.count = value,
                "bytes" => s.bytes = value,
                "countHardLimit" => s.count_hard_limit = value,
                "byteHardLimit" => s.byte_hard_limit = value,
                _ => {}
            }
        }
        s
    }

    /// The usage text the server writes into a stats node.
    pub fn usage_text(count: i64, bytes: i64) -> String {
        format!("count={count},bytes={bytes}")
    }
}

/// Whether the quota on `root` governs `path`: `path` is `root` or lies below it.
pub fn governs(root: &str, path: &str) -> bool {
    path == root || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// A change that passes a quota limit, as ZooKeeper 3.8's
/// `ZooKeeperServer.checkQuota` judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// `"count"` or `"bytes"`.
    pub what: &'static str,
    /// The usage the change would make.
    pub usage: i64,
    /// The limit it passes.
    pub limit: i64,
    /// A hard limit (QuotaExceeded when quotas are enforced) rather than a soft one.
    pub hard: bool,
}

/// ZooKeeper 3.8's `checkQuota` decision for a change of `count_diff` nodes and
/// `bytes_diff` data bytes under a quota with `limits` and current `usage`: each
/// dimension is judged only when the change moves it (a setData never trips a count
/// limit, an empty create never trips a byte limit, a setData of the same length
/// never trips anything) and has a limit; the hard limit, when set, replaces the soft
/// one; the count is judged before the bytes. Returns every limit passed, in that
/// order.
pub fn check(
    limits: &StatsTrack,
    usage: &StatsTrack,
    count_diff: i64,
    bytes_diff: i64,
) -> Vec<Exceeded> {
    let mut out = Vec::new();
    let dims = [
        (
            "count",
            count_diff,
            usage.count,
            limits.count,
            limits.count_hard_limit,
        ),
        (
            "bytes",
            bytes_diff,
            usage.bytes,
            limits.bytes,
            limits.byte_hard_limit,
        ),
    ];
    for (what, diff, current, soft, hard_limit) in dims {
        if diff == 0 || (soft <= -1 && hard_limit <= -1) {
            continue;
        }
        let hard = hard_limit > -1;
        let limit = if hard { hard_limit } else { soft };
        let new = current + diff;
        if new > limit {
            out.push(Exceeded {
                what,
                usage: new,
                limit,
                hard,
            });
        }
    }
    out
}

/// `/zookeeper/quota/<quota_root>/<node>`.
pub fn quota_node(quota_root: &str, node: &str) -> String {
    format!("{QUOTA_PATH}{quota_root}/{node}")
}

/// The quota root a limits or stats node belongs to, if `path` is one.
pub fn quota_root_of(path: &str, node: &str) -> Option<String> {
    let rest = path.strip_prefix(QUOTA_PATH)?;
    let root = rest.strip_suffix(node)?.strip_suffix('/')?;
    (!root.is_empty()).then(|| root.to_string())
}

impl DataTree {
    /// The quota root governing `path` (the longest quota path that is `path` or an
    /// ancestor of it), as ZooKeeper's `getMaxPrefixWithQuota`.
    pub fn quota_root_for(&self, path: &str) -> Option<&str> {
        self.quota_roots
            .iter()
            .filter(|root| governs(root, path))
            .max_by_key(|root| root.len())
            .map(String::as_str)
    }

    /// Every path with a quota.
    pub fn quota_roots(&self) -> impl Iterator<Item = &str> {
        self.quota_roots.iter().map(String::as_str)
    }

    /// The limits and current usage of the quota governing `path`.
    pub fn quota_for(&self, path: &str) -> Option<(String, StatsTrack, StatsTrack)> {
        let root = self.quota_root_for(path)?;
        let read = |node: &str| {
            self.get(&quota_node(root, node))
                .and_then(|n| n.data_slice())
                .map(|d| StatsTrack::parse(&String::from_utf8_lossy(d)))
                .unwrap_or_default()
        };
        Some((root.to_string(), read(LIMIT_NODE), read(STAT_NODE)))
    }

    /// Moves the usage of the quota governing `path` by the given amounts. The stats
    /// node's data changes in place, its Stat does not (as in ZooKeeper).
    pub(super) fn adjust_quota(&mut self, path: &str, count: i64, bytes: i64) {
        if self.quota_roots.is_empty() || path.starts_with(QUOTA_PATH) {
            return;
        }
        let Some((root, _, usage)) = self.quota_for(path) else {
            return;
        };
        let text = StatsTrack::usage_text(usage.count.max(0) + count, usage.bytes.max(0) + bytes);
        self.write_usage(&root, text);
    }

    /// Recomputes the usage of quota `root` from the tree (when its stats node is made).
    pub(super) fn refresh_quota_usage(&mut self, root: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        if let Some(id) = self.lookup(root) {
            for node in self.subtree(id).filter_map(|id| self.slab.get(id)) {
                count += 1;
                bytes += node.data_len() as i64;
            }
        }
        self.write_usage(root, StatsTrack::usage_text(count, bytes));
    }

    fn write_usage(&mut self, root: &str, text: String) {
        let stats_path = quota_node(root, STAT_NODE);
        if let Some(id) = self.lookup(&stats_path) {
            self.replace_data(id, Some(Blob::copy_of(text.as_bytes())), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zookeeper_3_8_limits_with_their_quirk() {
        let s = StatsTrack::parse("count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
        assert_eq!(
            s,
            StatsTrack {
                count: 5,
                bytes: -1,
                count_hard_limit: 2,
                byte_hard_limit: -1
            }
        );
        let s = StatsTrack::parse("count=2,bytes=10");
        assert_eq!((s.count, s.bytes), (2, 10));
        assert_eq!(StatsTrack::parse("garbage"), StatsTrack::default());
    }

    fn limits(text: &str) -> StatsTrack {
        StatsTrack::parse(text)
    }

    #[test]
    fn each_limit_is_judged_only_when_its_dimension_changes() {
        let count2 = limits("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
        let four_nodes = StatsTrack::parse("count=4,bytes=0");
        // setData in a subtree already over its count limit: accepted by ZooKeeper.
        assert_eq!(check(&count2, &four_nodes, 0, 2), vec![]);
        let over = check(&count2, &four_nodes, 1, 0);
        assert_eq!(
            over,
            vec![Exceeded {
                what: "count",
                usage: 5,
                limit: 2,
                hard: true
            }]
        );
        let bytes2 = limits("count=-1,bytes=-1=;byteHardLimit=2;countHardLimit=-1");
        let five_bytes = StatsTrack::parse("count=1,bytes=5");
        // An empty create in a subtree over its byte limit: accepted.
        assert_eq!(check(&bytes2, &five_bytes, 1, 0), vec![]);
        // A setData of the same length: accepted; one that shrinks but stays over: not.
        assert_eq!(check(&bytes2, &five_bytes, 0, 0), vec![]);
        assert!(check(&bytes2, &five_bytes, 0, -1)[0].hard);
        assert_eq!(check(&bytes2, &five_bytes, 0, -3), vec![]);
    }

    #[test]
    fn a_hard_limit_replaces_the_soft_one() {
        let both = limits("count=1,bytes=-1=;byteHardLimit=-1;countHardLimit=3");
        assert_eq!(
            check(&both, &StatsTrack::parse("count=2,bytes=0"), 1, 0),
            vec![]
        );
        assert!(check(&both, &StatsTrack::parse("count=3,bytes=0"), 1, 0)[0].hard);
        let soft = limits("count=1,bytes=1=;byteHardLimit=-1;countHardLimit=-1");
        let over = check(&soft, &StatsTrack::parse("count=1,bytes=0"), 1, 3);
        assert_eq!(over.len(), 2);
        assert!(over.iter().all(|e| !e.hard));
        assert_eq!((over[0].what, over[1].what), ("count", "bytes"));
    }

    #[test]
    fn quota_paths() {
        assert!(governs("/a", "/a") && governs("/a", "/a/b"));
        assert!(!governs("/a", "/ab") && !governs("/a/b", "/a"));
        assert_eq!(
            quota_node("/qp", STAT_NODE),
            "/zookeeper/quota/qp/zookeeper_stats"
        );
        assert_eq!(
            quota_root_of("/zookeeper/quota/a/b/zookeeper_limits", LIMIT_NODE).as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            quota_root_of("/zookeeper/quota/zookeeper_limits", LIMIT_NODE),
            None
        );
        assert_eq!(quota_root_of("/a/zookeeper_limits", LIMIT_NODE), None);
    }
}
