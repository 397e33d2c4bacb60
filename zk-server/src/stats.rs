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
