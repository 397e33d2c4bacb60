//! Prometheus metrics, served on `metricsProvider.httpPort` at `/metrics`.
//!
//! Recorded through the `metrics` facade into a recorder of this server's own (an
//! in-process ensemble's members keep theirs apart): handles are registered once, at
//! start-up, and kept here, so recording is an atomic add. Values that are state
//! rather than events (sessions, znodes, watches, commit index, replication lag) are
//! read from the server when scraped.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `zk_requests_total{op}` | counter | requests answered, by opcode |
//! | `zk_request_latency_seconds{op}` | histogram | receipt to answer, by opcode |
//! | `zk_outstanding_requests` | gauge | requests received, not yet answered |
//! | `zk_global_sessions`, `zk_num_alive_connections` | gauge | sessions, client connections |
//! | `zk_watch_count`, `zk_znode_count`, `zk_approximate_data_size` | gauge | the tree and its watches |
//! | `zk_fsync_seconds` | histogram | one append of the log, write and fsync |
//! | `zk_snapshot_seconds` | histogram | writing one snapshot |
//! | `zk_leader_changes_total` | counter | leaders this member saw take office (one per term) |
//! | `zk_raft_term` | gauge | the consensus term this member is in |
//! | `zk_commit_index`, `zk_last_applied_index` | gauge | the Raft log's commit and apply points |
//! | `zk_replication_lag_entries{follower}` | gauge | on the leader: entries each member lacks |

use std::collections::HashMap;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use zk_proto::OpCode;

/// Latency buckets, in seconds (100 µs to 10 s).
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// One opcode's handles.
#[derive(Clone)]
struct OpMetrics {
    count: Counter,
    latency: Histogram,
}

/// What the server reports when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests received, not yet answered.
    pub outstanding: u64,
    /// Sessions in the ensemble.
    pub sessions: u64,
    /// Client connections to this server.
    pub connections: u64,
    /// Watches set on this server.
    pub watches: u64,
    /// Znodes.
    pub znodes: u64,
    /// Bytes of paths and data.
    pub data_size: u64,
    /// The Raft log's commit index.
    pub commit_index: u64,
    /// The last log index applied here.
    pub last_applied: u64,
    /// The consensus term this member is in.
    pub term: u64,
}

/// This server's metrics.
pub struct ServerMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// By opcode: index `code - first_op`.
    ops: Vec<Option<OpMetrics>>,
    first_op: i32,
    other: OpMetrics,
    /// One append of the log (write and fsync).
    pub fsync: Histogram,
    /// Writing one snapshot.
    pub snapshot: Histogram,
    /// Leaders this member saw take office (one per term).
    pub leader_changes: Counter,
    gauges: HashMap<&'static str, Gauge>,
    lag: std::sync::Mutex<HashMap<u64, Gauge>>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics").finish_non_exhaustive()
    }
}

const GAUGES: &[&str] = &[
    "zk_outstanding_requests",
    "zk_global_sessions",
    "zk_num_alive_connections",
    "zk_watch_count",
    "zk_znode_count",
    "zk_approximate_data_size",
    "zk_commit_index",
    "zk_last_applied_index",
    "zk_raft_term",
];

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics::new()
    }
}

impl ServerMetrics {
    /// A recorder of this server's own, with every handle registered.
    pub fn new() -> ServerMetrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let op = |name: &str| {
            let labels = vec![Label::new("op", name.to_string())];
            OpMetrics {
                count: counter(
                    &recorder,
                    Key::from_parts("zk_requests_total", labels.clone()),
                ),
                latency: histogram(
                    &recorder,
                    Key::from_parts("zk_request_latency_seconds", labels),
                ),
            }
        };
        let codes = || OpCode::ALL.iter().map(|c| *c as i32);
        let first_op = codes().min().unwrap_or(0);
        let last_op = codes().max().unwrap_or(0);
        let mut ops: Vec<Option<OpMetrics>> = vec![None; (last_op - first_op + 1) as usize];
        for code in OpCode::ALL {
            ops[(*code as i32 - first_op) as usize] = Some(op(&op_name(*code)));
        }
        let other = op("other");
        let gauges = GAUGES
            .iter()
            .map(|name| (*name, gauge(&recorder, Key::from_name(*name))))
            .collect();
        ServerMetrics {
            fsync: histogram(&recorder, Key::from_name("zk_fsync_seconds")),
            snapshot: histogram(&recorder, Key::from_name("zk_snapshot_seconds")),
            leader_changes: counter(&recorder, Key::from_name("zk_leader_changes_total")),
            ops,
            first_op,
            other,
            gauges,
            lag: std::sync::Mutex::new(HashMap::new()),
            recorder,
            handle,
        }
    }

    /// A request of type `op` was answered after `took`.
    pub fn request(&self, op: Option<OpCode>, took: Duration) {
        let m = op
            .and_then(|op| usize::try_from(op as i32 - self.first_op).ok())
            .and_then(|i| self.ops.get(i))
            .and_then(Option::as_ref)
            .unwrap_or(&self.other);
        m.count.increment(1);
        m.latency.record(took.as_secs_f64());
    }

    /// Folds the histograms' gathered samples into their buckets (run periodically:
    /// samples are otherwise kept until the next scrape).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text of everything, `now` being the server's state.
    pub fn render(&self, now: Snapshot, lag: &[(u64, u64)]) -> String {
        let set = |name: &str, v: u64| {
            if let Some(g) = self.gauges.get(name) {
                g.set(v as f64);
            }
        };
        set("zk_outstanding_requests", now.outstanding);
        set("zk_global_sessions", now.sessions);
        set("zk_num_alive_connections", now.connections);
        set("zk_watch_count", now.watches);
        set("zk_znode_count", now.znodes);
        set("zk_approximate_data_size", now.data_size);
        set("zk_commit_index", now.commit_index);
        set("zk_last_applied_index", now.last_applied);
        set("zk_raft_term", now.term);
        if let Ok(mut gauges) = self.lag.lock() {
            for (follower, behind) in lag {
                gauges
                    .entry(*follower)
                    .or_insert_with(|| {
                        let labels = vec![Label::new("follower", follower.to_string())];
                        gauge(
                            &self.recorder,
                            Key::from_parts("zk_replication_lag_entries", labels),
                        )
                    })
                    .set(*behind as f64);
            }
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// The opcode's name as a label: `create`, `getData`, … (ZooKeeper's names).
fn op_name(op: OpCode) -> String {
    let debug = format!("{op:?}");
    let mut chars = debug.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => debug,
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn counter(r: &PrometheusRecorder, key: Key) -> Counter {
    r.register_counter(&key, &METADATA)
}

fn gauge(r: &PrometheusRecorder, key: Key) -> Gauge {
    r.register_gauge(&key, &METADATA)
}

fn histogram(r: &PrometheusRecorder, key: Key) -> Histogram {
    r.register_histogram(&key, &METADATA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_state_show_up_in_the_text() {
        let m = ServerMetrics::new();
        m.request(Some(OpCode::Create), Duration::from_millis(2));
        m.request(Some(OpCode::Create), Duration::from_millis(3));
        m.request(None, Duration::from_millis(1));
        m.fsync.record(0.001);
        let text = m.render(
            Snapshot {
                znodes: 7,
                ..Snapshot::default()
            },
            &[(2, 5)],
        );
        assert!(
            text.contains("zk_requests_total{op=\"create\"} 2"),
            "{text}"
        );
        assert!(text.contains("zk_requests_total{op=\"other\"} 1"), "{text}");
        assert!(
            text.contains("zk_request_latency_seconds_bucket{op=\"create\",le=\"0.005\"} 2"),
            "{text}"
        );
        assert!(text.contains("zk_znode_count 7"), "{text}");
        assert!(
            text.contains("zk_replication_lag_entries{follower=\"2\"} 5"),
            "{text}"
        );
        assert!(text.contains("zk_fsync_seconds_count 1"), "{text}");
    }

    #[test]
    fn each_opcode_has_its_own_series_and_the_unknown_share_one() {
        let m = ServerMetrics::new();
        for code in OpCode::ALL {
            m.request(Some(*code), Duration::from_micros(50));
        }
        m.request(None, Duration::from_micros(50));
        m.upkeep();
        let text = m.render(Snapshot::default(), &[]);
        for code in OpCode::ALL {
            let series = format!(
                "zk_request_latency_seconds_count{{op=\"{}\"}} 1",
                op_name(*code)
            );
            assert!(text.contains(&series), "{series}: {text}");
        }
        assert!(
            text.contains("zk_request_latency_seconds_count{op=\"other\"} 1"),
            "{text}"
        );
    }
}
