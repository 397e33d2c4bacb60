//! Retry policies in the spirit of Curator's: how long to wait before retrying an
//! operation that failed with a retryable error (connection loss), and when to give up.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let zk = zk_client::Client::connect(&server.connect_string()).await?;
//! # zk.create("/config").await?;
//! use std::time::Duration;
//! use zk_client::retry::{retry, ExponentialBackoff};
//! let policy = ExponentialBackoff::new(Duration::from_millis(100), 5);
//! let (data, _) = retry(&policy, || zk.get_data("/config")).await?;
//! # let _ = data; Ok(()) }
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;

use crate::error::Result;

/// Decides whether and when to retry.
pub trait RetryPolicy: Send + Sync {
    /// Starts one operation's sequence of attempts.
    fn start(&self) -> Box<dyn RetrySchedule>;
}

/// The state of one operation's attempts.
pub trait RetrySchedule: Send {
    /// The wait before the next attempt, or `None` to give up.
    fn next_delay(&mut self) -> Option<Duration>;
}

/// Curator's `ExponentialBackoffRetry`: waits grow from `base` (with jitter), at most
/// `max_retries` retries, each wait at most `max_delay`.
#[derive(Debug, Clone)]
pub struct ExponentialBackoff {
    base: Duration,
    max_retries: u32,
    max_delay: Duration,
}

impl ExponentialBackoff {
    /// `max_retries` retries starting at `base`, waits capped at 30 s.
    pub fn new(base: Duration, max_retries: u32) -> ExponentialBackoff {
        ExponentialBackoff {
            base,
            max_retries,
            max_delay: Duration::from_secs(30),
        }
    }

    /// Curator's `BoundedExponentialBackoffRetry`: waits capped at `max_delay`.
    pub fn bounded(base: Duration, max_delay: Duration, max_retries: u32) -> ExponentialBackoff {
        ExponentialBackoff {
            base,
            max_retries,
            max_delay,
        }
    }
}

struct ExponentialSchedule {
    inner: backoff::ExponentialBackoff,
    left: u32,
    max_delay: Duration,
}

impl RetrySchedule for ExponentialSchedule {
    fn next_delay(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // `backoff` caps the interval before adding jitter (up to 1.5x); the promise
        // is that no wait exceeds `max_delay`.
        self.inner.next_backoff().map(|d| d.min(self.max_delay))
    }
}

impl RetryPolicy for ExponentialBackoff {
    fn start(&self) -> Box<dyn RetrySchedule> {
        let inner = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.base)
            .with_max_interval(self.max_delay)
            .with_multiplier(2.0)
            .with_randomization_factor(0.5)
            .with_max_elapsed_time(None)
            .build();
        Box::new(ExponentialSchedule {
            inner,
            left: self.max_retries,
            max_delay: self.max_delay,
        })
    }
}

/// Curator's `RetryNTimes`: `n` retries, `delay` apart.
#[derive(Debug, Clone)]
pub struct RetryNTimes {
    /// Retries.
    pub n: u32,
    /// Wait between attempts.
    pub delay: Duration,
}

struct CountedSchedule {
    left: u32,
    delay: Duration,
}

impl RetrySchedule for CountedSchedule {
    fn next_delay(&mut self) -> Option<Duration> {
        (self.left > 0).then(|| {
            self.left -= 1;
            self.delay
        })
    }
}

impl RetryPolicy for RetryNTimes {
    fn start(&self) -> Box<dyn RetrySchedule> {
        Box::new(CountedSchedule {
            left: self.n,
            delay: self.delay,
        })
    }
}

/// Curator's `RetryUntilElapsed`: retries `delay` apart until `max_elapsed` has passed.
#[derive(Debug, Clone)]
pub struct RetryUntilElapsed {
    /// Give up after this long.
    pub max_elapsed: Duration,
    /// Wait between attempts.
    pub delay: Duration,
}

struct ElapsedSchedule {
    until: Instant,
    delay: Duration,
}

impl RetrySchedule for ElapsedSchedule {
    fn next_delay(&mut self) -> Option<Duration> {
        (Instant::now() + self.delay <= self.until).then_some(self.delay)
    }
}

impl RetryPolicy for RetryUntilElapsed {
    fn start(&self) -> Box<dyn RetrySchedule> {
        Box::new(ElapsedSchedule {
            until: Instant::now() + self.max_elapsed,
            delay: self.delay,
        })
    }
}

/// Curator's `RetryForever`: retries `delay` apart, forever.
#[derive(Debug, Clone)]
pub struct RetryForever {
    /// Wait between attempts.
    pub delay: Duration,
}

impl RetryPolicy for RetryForever {
    fn start(&self) -> Box<dyn RetrySchedule> {
        Box::new(CountedSchedule {
            left: u32::MAX,
            delay: self.delay,
        })
    }
}

/// Runs `op`, retrying per `policy` while it fails with a retryable error
/// ([`crate::Error::is_retryable`]). Only for idempotent operations: a write that failed
/// with ConnectionLoss may have been applied.
pub async fn retry<T, F, Fut>(policy: &dyn RetryPolicy, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut schedule = policy.start();
    loop {
        match op().await {
            Err(e) if e.is_retryable() => match schedule.next_delay() {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn schedules_give_up_when_they_should() {
        let mut n = RetryNTimes {
            n: 2,
            delay: Duration::from_millis(5),
        }
        .start();
        assert_eq!(n.next_delay(), Some(Duration::from_millis(5)));
        assert!(n.next_delay().is_some());
        assert_eq!(n.next_delay(), None);
        // Bounded: each wait at most max_delay, jitter included (many schedules, so
        // that jitter above the cap would show).
        let bounded =
            ExponentialBackoff::bounded(Duration::from_millis(10), Duration::from_millis(40), 10);
        for _ in 0..20 {
            let mut e = bounded.start();
            let delays: Vec<Duration> = std::iter::from_fn(|| e.next_delay()).collect();
            assert_eq!(delays.len(), 10);
            assert!(
                delays.iter().all(|d| *d <= Duration::from_millis(40)),
                "each wait at most max_delay: {delays:?}"
            );
        }
        let mut u = RetryUntilElapsed {
            max_elapsed: Duration::ZERO,
            delay: Duration::from_millis(1),
        }
        .start();
        assert_eq!(u.next_delay(), None);
    }

    #[tokio::test]
    async fn retry_retries_connection_loss_but_not_other_errors() {
        let calls = AtomicU32::new(0);
        let policy = RetryNTimes {
            n: 5,
            delay: Duration::from_millis(1),
        };
        let r = retry(&policy, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Error::ConnectionLoss)
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Ok(7), 3));
        let calls = AtomicU32::new(0);
        let r: Result<()> = retry(&policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::SessionExpired)
        })
        .await;
        assert_eq!(
            (r, calls.load(Ordering::SeqCst)),
            (Err(Error::SessionExpired), 1)
        );
    }
}
