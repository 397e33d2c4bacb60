//! [`ServiceProvider`]: picks an instance of a service for each use (Curator's
//! `ServiceProvider`), from a [`ServiceCache`], by a [`ProviderStrategy`], skipping
//! disabled instances and those its users reported failing ([`DownInstancePolicy`]).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use zk_client::Client;

use super::cache::ServiceCache;
use super::instance::{Payload, ServiceInstance};

/// How a [`ServiceProvider`] picks among the instances it may use (ordered by id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProviderStrategy {
    /// Each in turn (Curator's `RoundRobinStrategy`): over `n` instances, every `n`
    /// picks in a row use each once.
    #[default]
    RoundRobin,
    /// Uniformly at random (Curator's `RandomStrategy`).
    Random,
    /// The same instance as last time while it may be used; otherwise a new one
    /// picked by the inner strategy (Curator's `StickyStrategy`).
    Sticky(Box<ProviderStrategy>),
}

/// When an instance is taken for down (Curator's `DownInstancePolicy`): after
/// `error_threshold` errors noted within `timeout` of the first, it is skipped for
/// `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownInstancePolicy {
    /// The window errors are counted in, and how long an instance then stays down.
    pub timeout: Duration,
    /// How many errors make an instance down (at least one).
    pub error_threshold: u32,
}

impl DownInstancePolicy {
    /// Down after `error_threshold` errors within `timeout`, for `timeout`.
    pub fn new(timeout: Duration, error_threshold: u32) -> DownInstancePolicy {
        DownInstancePolicy {
            timeout,
            error_threshold,
        }
    }
}

impl Default for DownInstancePolicy {
    /// Curator's default: 2 errors within 30 s.
    fn default() -> Self {
        DownInstancePolicy::new(Duration::from_secs(30), 2)
    }
}

/// Settings of a [`ServiceProvider`] to build.
#[derive(Debug, Clone)]
pub struct ServiceProviderBuilder<T = Value> {
    client: Client,
    base_path: String,
    name: String,
    strategy: ProviderStrategy,
    policy: DownInstancePolicy,
    payload: PhantomData<fn() -> T>,
}

impl<T: Payload> ServiceProviderBuilder<T> {
    /// A provider of service `name` under `base_path`: round-robin, Curator's default
    /// down-instance policy.
    pub fn new(client: &Client, base_path: &str, name: &str) -> ServiceProviderBuilder<T> {
        ServiceProviderBuilder {
            client: client.clone(),
            base_path: base_path.to_string(),
            name: name.to_string(),
            strategy: ProviderStrategy::default(),
            policy: DownInstancePolicy::default(),
            payload: PhantomData,
        }
    }

    /// Picks by `strategy`.
    pub fn strategy(mut self, strategy: ProviderStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Takes instances for down by `policy`.
    pub fn down_instance_policy(mut self, policy: DownInstancePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The provider, not running yet: [`ServiceProvider::start`] it.
    pub fn build(self) -> ServiceProvider<T> {
        ServiceProvider {
            cache: ServiceCache::new(&self.client, &self.base_path, &self.name),
            picker: Mutex::new(Picker::new(&self.strategy)),
            down: Mutex::new(DownInstances::new(self.policy)),
        }
    }
}

/// Hands out instances of one service, kept current by a [`ServiceCache`].
#[derive(Debug)]
pub struct ServiceProvider<T = Value> {
    cache: ServiceCache<T>,
    picker: Mutex<Picker>,
    down: Mutex<DownInstances>,
}

fn locked<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T: Payload> ServiceProvider<T> {
    /// A builder for a provider of service `name` under `base_path`.
    pub fn builder(client: &Client, base_path: &str, name: &str) -> ServiceProviderBuilder<T> {
        ServiceProviderBuilder::new(client, base_path, name)
    }

    /// Starts keeping the instances current in the background (again: nothing).
    pub fn start(&self) {
        self.cache.start();
    }

    /// Waits until the service has been read once.
    pub async fn ready(&self) {
        self.cache.ready().await;
    }

    /// An instance to use now, by the strategy, among the enabled ones not taken for
    /// down; `None` if there is none. Do not keep it: ask again for each use.
    pub fn instance(&self) -> Option<ServiceInstance<T>> {
        let up = self.usable();
        let ids: Vec<&str> = up.iter().map(|i| i.id.as_str()).collect();
        let index = locked(&self.picker).pick(&ids)?;
        up.into_iter().nth(index)
    }

    /// Every instance that may be used now (enabled, not taken for down), by id.
    pub fn all_instances(&self) -> Vec<ServiceInstance<T>> {
        self.usable()
    }

    /// Reports that using `instance` failed (it counts towards the
    /// [`DownInstancePolicy`]).
    pub fn note_error(&self, instance: &ServiceInstance<T>) {
        locked(&self.down).note_error(&instance.id, Instant::now());
    }

    /// The cache the instances come from.
    pub fn cache(&self) -> &ServiceCache<T> {
        &self.cache
    }

    /// Stops the provider (and its cache) and waits until it has; dropping stops it
    /// without waiting.
    pub async fn close(self) {
        self.cache.close().await;
    }

    fn usable(&self) -> Vec<ServiceInstance<T>> {
        let snapshot = self.cache.snapshot();
        let now = Instant::now();
        let mut down = locked(&self.down);
        snapshot
            .instances
            .values()
            .map(|c| &c.instance)
            .filter(|i| i.enabled && !down.is_down(&i.id, now))
            .cloned()
            .collect()
    }
}

/// A strategy's state.
#[derive(Debug)]
enum Picker {
    RoundRobin(usize),
    Random,
    Sticky {
        master: Box<Picker>,
        current: Option<String>,
    },
}

impl Picker {
    fn new(strategy: &ProviderStrategy) -> Picker {
        match strategy {
            ProviderStrategy::RoundRobin => Picker::RoundRobin(0),
            ProviderStrategy::Random => Picker::Random,
            ProviderStrategy::Sticky(master) => Picker::Sticky {
                master: Box::new(Picker::new(master)),
                current: None,
            },
        }
    }

    /// The index among `ids` of the one to use.
    fn pick(&mut self, ids: &[&str]) -> Option<usize> {
        if ids.is_empty() {
            return None;
        }
        match self {
            Picker::RoundRobin(next) => {
                let index = *next % ids.len();
                *next = next.wrapping_add(1);
                Some(index)
            }
            Picker::Random => Some(random_below(ids.len())),
            Picker::Sticky { master, current } => {
                if let Some(index) = current
                    .as_deref()
                    .and_then(|c| ids.iter().position(|id| *id == c))
                {
                    return Some(index);
                }
                let index = master.pick(ids)?;
                *current = Some(ids[index].to_string());
                Some(index)
            }
        }
    }
}

/// A random number in `0..n` (`n > 0`), from a v4 UUID's random bits.
fn random_below(n: usize) -> usize {
    // The last 8 bytes of a v4 UUID are random but for the variant's 2 top bits.
    let bits = (uuid::Uuid::new_v4().as_u128() as u64) & (u64::MAX >> 2);
    (bits % n as u64) as usize
}

/// Errors noted per instance id.
#[derive(Debug)]
struct DownInstances {
    policy: DownInstancePolicy,
    statuses: HashMap<String, Status>,
}

#[derive(Debug)]
struct Status {
    first_error: Instant,
    errors: u32,
    down_until: Option<Instant>,
}

impl DownInstances {
    fn new(policy: DownInstancePolicy) -> DownInstances {
        DownInstances {
            policy,
            statuses: HashMap::new(),
        }
    }

    fn note_error(&mut self, id: &str, now: Instant) {
        self.purge(now);
        let status = self.statuses.entry(id.to_string()).or_insert(Status {
            first_error: now,
            errors: 0,
            down_until: None,
        });
        status.errors = status.errors.saturating_add(1);
        if status.errors >= self.policy.error_threshold.max(1) && status.down_until.is_none() {
            status.down_until = Some(now + self.policy.timeout);
        }
    }

    fn is_down(&mut self, id: &str, now: Instant) -> bool {
        self.purge(now);
        self.statuses
            .get(id)
            .is_some_and(|s| s.down_until.is_some())
    }

    /// Forgets errors out of their window and instances whose time down is over.
    fn purge(&mut self, now: Instant) {
        let timeout = self.policy.timeout;
        self.statuses.retain(|_, s| match s.down_until {
            Some(until) => now < until,
            None => now < s.first_error + timeout,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [&str; 3] = ["a", "b", "c"];

    #[test]
    fn round_robin_rotates_exactly() {
        let mut p = Picker::new(&ProviderStrategy::RoundRobin);
        let picks: Vec<usize> = (0..7).filter_map(|_| p.pick(&IDS)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(p.pick(&[]), None);
    }

    #[test]
    fn random_picks_everyone() {
        let mut p = Picker::new(&ProviderStrategy::Random);
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[p.pick(&IDS).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (40..=160).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn sticky_keeps_its_instance_while_it_is_there() {
        let mut p = Picker::new(&ProviderStrategy::Sticky(Box::new(
            ProviderStrategy::RoundRobin,
        )));
        assert_eq!(p.pick(&IDS), Some(0));
        assert_eq!(p.pick(&IDS), Some(0));
        assert_eq!(
            p.pick(&["b", "c"]),
            Some(1),
            "a gone: the master picks (its 2nd pick)"
        );
        assert_eq!(p.pick(&IDS), Some(2), "c kept while it is there");
    }

    #[test]
    fn an_instance_is_down_after_the_threshold_within_the_window_for_the_timeout() {
        let policy = DownInstancePolicy::new(Duration::from_secs(10), 2);
        let mut d = DownInstances::new(policy);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        d.note_error("a", t0);
        assert!(!d.is_down("a", t0 + s(1)));
        // The first error's window passes: counting starts again.
        d.note_error("a", t0 + s(11));
        assert!(!d.is_down("a", t0 + s(12)));
        d.note_error("a", t0 + s(15));
        assert!(d.is_down("a", t0 + s(15)));
        assert!(!d.is_down("b", t0 + s(15)));
        assert!(d.is_down("a", t0 + s(24)));
        assert!(!d.is_down("a", t0 + s(25)), "back after the timeout");
        d.note_error("a", t0 + s(26));
        assert!(!d.is_down("a", t0 + s(26)), "errors counted anew");
    }
}
