//! Counters behind the four-letter words (`srvr`, `stat`, `mntr`, `cons`, `srst`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Server-wide counters; all lock-free.
#[derive(Debug)]
pub struct ServerStats {
    /// When the server started.
    pub started: Instant,
    packets_received: AtomicU64,
    packets_sent: AtomicU64,
    outstanding: AtomicU64,
    latency_count: AtomicU64,
    latency_total_us: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
    proposal_last: AtomicU64,
    proposal_min: AtomicU64,
    proposal_max: AtomicU64,
}

/// Sizes of the transactions this server proposed as leader (`srvr`'s "Proposal
/// sizes", mntr's `zk_*_proposal_size`); -1 before the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalSizes {
    /// The last one, in bytes.
    pub last: i64,
    /// The smallest.
    pub min: i64,
    /// The largest.
    pub max: i64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            latency_min_us: AtomicU64::new(u64::MAX),
            latency_max_us: AtomicU64::new(0),
            proposal_last: AtomicU64::new(u64::MAX),
            proposal_min: AtomicU64::new(u64::MAX),
            proposal_max: AtomicU64::new(u64::MAX),
        }
    }
}

/// Request latency in ZooKeeper's units (milliseconds, average with decimals).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Minimum, ms.
    pub min_ms: u64,
    /// Average, ms.
    pub avg_ms: f64,
    /// Maximum, ms.
    pub max_ms: u64,
}

impl ServerStats {
    /// This server, leading, proposed a transaction of `bytes`.
    pub fn record_proposal(&self, bytes: u64) {
        self.proposal_last.store(bytes, Ordering::Relaxed);
        let _ = self
            .proposal_min
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (m == u64::MAX || bytes < m).then_some(bytes)
            });
        let _ = self
            .proposal_max
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (m == u64::MAX || bytes > m).then_some(bytes)
            });
    }

    /// Proposal sizes so far.
    pub fn proposal_sizes(&self) -> ProposalSizes {
        let read = |a: &AtomicU64| match a.load(Ordering::Relaxed) {
            u64::MAX => -1,
            v => v as i64,
        };
        ProposalSizes {
            last: read(&self.proposal_last),
            min: read(&self.proposal_min),
            max: read(&self.proposal_max),
        }
    }

    /// A packet arrived.
    pub fn record_received(&self) {
        self.packets_received.fetch_add(1, Ordering::Relaxed);
    }

    /// A packet left.
    pub fn record_sent(&self) {
        self.packets_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A request started waiting.
    pub fn request_started(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// A request was answered after `micros`.
    pub fn request_finished(&self, micros: u64) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_total_us.fetch_add(micros, Ordering::Relaxed);
        self.latency_min_us.fetch_min(micros, Ordering::Relaxed);
        self.latency_max_us.fetch_max(micros, Ordering::Relaxed);
    }

    /// Packets received.
    pub fn packets_received(&self) -> u64 {
        self.packets_received.load(Ordering::Relaxed)
    }

    /// Packets sent.
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent.load(Ordering::Relaxed)
    }

    /// Requests in flight.
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Request latency so far.
    pub fn latency(&self) -> Latency {
        let count = self.latency_count.load(Ordering::Relaxed);
        if count == 0 {
            return Latency {
                min_ms: 0,
                avg_ms: 0.0,
                max_ms: 0,
            };
        }
        let total = self.latency_total_us.load(Ordering::Relaxed);
        Latency {
            min_ms: self.latency_min_us.load(Ordering::Relaxed) / 1000,
            avg_ms: total as f64 / count as f64 / 1000.0,
            max_ms: self.latency_max_us.load(Ordering::Relaxed) / 1000,
        }
    }

    /// `srst`: zero the counters.
    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.latency_count.store(0, Ordering::Relaxed);
        self.latency_total_us.store(0, Ordering::Relaxed);
        self.latency_min_us.store(u64::MAX, Ordering::Relaxed);
        self.latency_max_us.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposal_sizes_start_unknown_then_track_last_min_and_max() {
        let stats = ServerStats::default();
        let unknown = ProposalSizes {
            last: -1,
            min: -1,
            max: -1,
        };
        assert_eq!(stats.proposal_sizes(), unknown);
        for size in [48, 92, 30, 60] {
            stats.record_proposal(size);
        }
        assert_eq!(
            stats.proposal_sizes(),
            ProposalSizes {
                last: 60,
                min: 30,
                max: 92
            }
        );
    }
}
