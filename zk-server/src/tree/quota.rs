//! Quotas as ZooKeeper keeps them: for a quota on `/p`, the node
//! `/zookeeper/quota/p/zookeeper_limits` holds the limits and
//! `/zookeeper/quota/p/zookeeper_stats` the current usage, both as `StatsTrack` text.
//!
//! Limits read like `count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1` (the `=;`
//! is a real quirk of ZooKeeper 3.8.0's formatting); usage like `count=2,bytes=0`,
//! counting the quota root itself and its data bytes.

use super::QUOTA_PATH;

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

    #[test]
    fn quota_paths() {
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
