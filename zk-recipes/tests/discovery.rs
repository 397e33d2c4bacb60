//! Service discovery against our server and Apache ZooKeeper 3.8: a registration shows
//! up in another client's `ServiceCache` one watch round trip later (the test awaits
//! the cache's event; the timeout only bounds a failure), with every field, and in the
//! queries; updates and unregistrations follow; an instance whose session expires
//! (its client cut off by a proxy) leaves the cache, and one on a renewing client comes
//! back with a new session; a cache cut off from its server catches up with what
//! changed meanwhile, also after its own session expired; the provider's strategies
//! spread picks as they say; an instance noted down is skipped, then taken back after
//! the policy's timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use zk_client::{Client, SessionState};
use zk_recipes::discovery::{
    CacheEvent, DownInstancePolicy, ProviderStrategy, ServiceCache, ServiceDiscovery,
    ServiceInstance, ServiceProvider,
};
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);
const SESSION: Duration = Duration::from_secs(2);
const BASE: &str = "/services";

async fn client(connect: &str, renew: bool) -> Client {
    Client::builder(connect)
        .session_timeout(SESSION)
        .renew_expired_sessions(renew)
        .connect()
        .await
        .expect("connect")
}

/// The first server of a connect string (for a proxy in front of it).
fn first_server(connect: &str) -> String {
    connect.split(',').next().unwrap_or(connect).to_string()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The cache's next event, within WAIT.
async fn next(changes: &mut (impl Stream<Item = CacheEvent> + Unpin), what: &str) -> CacheEvent {
    tokio::time::timeout(WAIT, changes.next())
        .await
        .unwrap_or_else(|_| panic!("{what}: no cache event within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{what}: the cache's stream ended"))
}

/// The next `n` events, as (kind, id) pairs in a set (their order within a look is not
/// specified).
async fn next_n(
    changes: &mut (impl Stream<Item = CacheEvent> + Unpin),
    n: usize,
    what: &str,
) -> BTreeSet<(&'static str, String)> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(kind(&next(changes, what).await));
    }
    seen
}

fn kind(event: &CacheEvent) -> (&'static str, String) {
    match event {
        CacheEvent::Added(i) => ("added", i.id.clone()),
        CacheEvent::Updated(i) => ("updated", i.id.clone()),
        CacheEvent::Removed(i) => ("removed", i.id.clone()),
    }
}

fn set(pairs: &[(&'static str, &str)]) -> BTreeSet<(&'static str, String)> {
    pairs.iter().map(|(k, id)| (*k, id.to_string())).collect()
}

fn api(id: &str, port: u16) -> ServiceInstance {
    ServiceInstance::new("api", id)
        .with_address("127.0.0.1")
        .with_port(port)
        .with_payload(json!({"zone": "eu", "id": id}))
}

fn ids(instances: &[ServiceInstance]) -> Vec<String> {
    instances.iter().map(|i| i.id.clone()).collect()
}

macro_rules! on_both {
    ($scenario:ident, $ours:ident, $apache:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $ours() {
            let server = TestingServer::start().await.unwrap();
            $scenario(&server.connect_string(), "ours").await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $apache() {
            let server = ApacheZk::start().await;
            $scenario(&server.connect_string(), "apache").await;
        }
    };
}

on_both!(
    lifecycle,
    registrations_show_up_change_and_go_on_ours,
    registrations_show_up_change_and_go_on_apache_zookeeper
);
on_both!(
    expiry,
    expired_instances_leave_and_renewing_ones_come_back_on_ours,
    expired_instances_leave_and_renewing_ones_come_back_on_apache_zookeeper
);
on_both!(
    cache_catches_up,
    a_cut_off_cache_catches_up_on_ours,
    a_cut_off_cache_catches_up_on_apache_zookeeper
);
on_both!(
    strategies,
    strategies_spread_as_they_say_on_ours,
    strategies_spread_as_they_say_on_apache_zookeeper
);
on_both!(
    down_instances,
    down_instances_are_skipped_then_taken_back_on_ours,
    down_instances_are_skipped_then_taken_back_on_apache_zookeeper
);

async fn lifecycle(connect: &str, on: &str) {
    let (za, zb) = (client(connect, true).await, client(connect, true).await);
    let reader: ServiceDiscovery = ServiceDiscovery::new(&za, BASE);
    let registrar: ServiceDiscovery = ServiceDiscovery::new(&zb, BASE);
    let cache = reader.service_cache("api");
    cache.start();
    assert!(cache.ready().await.is_empty());
    let mut changes = cache.changes();
    assert!(reader.query_for_names().await.unwrap().is_empty());

    // A registration reaches the other client's cache: one watch event, one read.
    let first = api("i1", 8080).with_ssl_port(8443);
    let started = Instant::now();
    registrar.register(first.clone()).await.unwrap();
    let registered = started.elapsed();
    assert_eq!(
        next(&mut changes, "i1 registered").await,
        CacheEvent::Added(first.clone())
    );
    println!(
        "discovery on {on}: register returned after {} µs, the cache had it after {} µs",
        registered.as_micros(),
        started.elapsed().as_micros()
    );
    assert_eq!(cache.instance("i1"), Some(first.clone()));
    // The node: ephemeral, of the registrant's session, Curator's JSON.
    let path = "/services/api/i1";
    let (data, stat) = za.get_data(path).await.unwrap();
    assert_eq!(stat.ephemeral_owner, zb.session_id());
    let text = String::from_utf8(data).unwrap();
    assert!(
        text.starts_with(r#"{"name":"api","id":"i1","address":"127.0.0.1","port":8080,"sslPort":8443,"payload":{"id":"i1","zone":"eu"},"registrationTimeUTC":"#),
        "{text}"
    );
    assert!(
        text.ends_with(r#","serviceType":"DYNAMIC","uriSpec":null}"#),
        "{text}"
    );

    // The queries.
    assert_eq!(reader.query_for_names().await.unwrap(), ["api"]);
    assert_eq!(
        reader.query_for_instances("api").await.unwrap(),
        std::slice::from_ref(&first)
    );
    assert_eq!(
        reader.query_for_instance("api", "i1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        reader.query_for_instance("api", "nope").await.unwrap(),
        None
    );
    assert!(reader
        .query_for_instances("other")
        .await
        .unwrap()
        .is_empty());

    let second = api("i2", 8081);
    registrar.register(second.clone()).await.unwrap();
    assert_eq!(
        next(&mut changes, "i2 registered").await,
        CacheEvent::Added(second.clone())
    );
    assert_eq!(ids(&cache.instances()), ["i1", "i2"]);

    // An update: everyone sees the new payload.
    let updated = first.clone().with_payload(json!({"zone": "us"}));
    let started = Instant::now();
    registrar.update(updated.clone()).await.unwrap();
    assert_eq!(
        next(&mut changes, "i1 updated").await,
        CacheEvent::Updated(updated.clone())
    );
    println!(
        "discovery on {on}: an update reached the cache after {} µs",
        started.elapsed().as_micros()
    );
    assert_eq!(
        reader.query_for_instance("api", "i1").await.unwrap(),
        Some(updated.clone())
    );
    assert!(registrar.update(api("unknown", 1)).await.is_err());
    // Registering it again is an update too.
    let again = updated.clone().with_port(9090);
    registrar.register(again.clone()).await.unwrap();
    assert_eq!(
        next(&mut changes, "i1 registered again").await,
        CacheEvent::Updated(again.clone())
    );

    // Unregistering deletes the node.
    registrar.unregister("api", "i1").await.unwrap();
    assert_eq!(
        next(&mut changes, "i1 unregistered").await,
        CacheEvent::Removed(again.clone())
    );
    assert_eq!(za.exists(path).await.unwrap(), None);
    assert_eq!(reader.query_for_instance("api", "i1").await.unwrap(), None);
    assert_eq!(ids(&registrar.registered().await), ["i2"]);
    // Closing unregisters the rest.
    registrar.close().await;
    assert_eq!(
        next(&mut changes, "closed").await,
        CacheEvent::Removed(second.clone())
    );
    assert!(reader.query_for_instances("api").await.unwrap().is_empty());
    cache.close().await;
}

async fn expiry(connect: &str, on: &str) {
    let watcher = client(connect, true).await;
    let cache: ServiceCache = ServiceCache::new(&watcher, BASE, "api");
    cache.start();
    cache.ready().await;
    let mut changes = cache.changes();

    // Two registrants behind a proxy: one renews its session after expiry, one not.
    let proxy = Proxy::start(first_server(connect)).await;
    let behind = proxy.addr.to_string();
    let (doomed, renewing) = (client(&behind, false).await, client(&behind, true).await);
    let doomed_discovery: ServiceDiscovery = ServiceDiscovery::new(&doomed, BASE);
    let renewing_discovery: ServiceDiscovery = ServiceDiscovery::new(&renewing, BASE);
    doomed_discovery.register(api("doomed", 1)).await.unwrap();
    let renewing_instance = api("renewing", 2);
    renewing_discovery
        .register(renewing_instance.clone())
        .await
        .unwrap();
    assert_eq!(
        next_n(&mut changes, 2, "both registered").await,
        set(&[("added", "doomed"), ("added", "renewing")])
    );

    let old_session = renewing.session_id();
    proxy.cut();
    let cut = Instant::now();
    assert_eq!(
        next_n(&mut changes, 2, "both sessions expired").await,
        set(&[("removed", "doomed"), ("removed", "renewing")])
    );
    println!(
        "discovery on {on}: the cut-off instances left the cache {} ms after the cut (session timeout {} ms)",
        cut.elapsed().as_millis(),
        SESSION.as_millis()
    );
    proxy.restore();
    let restored = Instant::now();
    // The renewing client re-registers with a new session; the other is over.
    assert_eq!(
        next(&mut changes, "re-registered").await,
        CacheEvent::Added(renewing_instance)
    );
    println!(
        "discovery on {on}: the renewing instance was back {} ms after the proxy was restored",
        restored.elapsed().as_millis()
    );
    assert_ne!(renewing.session_id(), old_session);
    let (_, stat) = watcher.get_data("/services/api/renewing").await.unwrap();
    assert_eq!(stat.ephemeral_owner, renewing.session_id());
    eventually("the doomed client learns its session expired", || {
        doomed.state() == SessionState::Expired
    })
    .await;
    assert!(doomed_discovery.register(api("late", 3)).await.is_err());
    let reader: ServiceDiscovery = ServiceDiscovery::new(&watcher, BASE);
    assert_eq!(
        ids(&reader.query_for_instances("api").await.unwrap()),
        ["renewing"]
    );
    assert_eq!(ids(&cache.instances()), ["renewing"]);
    renewing_discovery.close().await;
    assert_eq!(
        kind(&next(&mut changes, "closed").await),
        ("removed", "renewing".to_string())
    );
}

async fn cache_catches_up(connect: &str, on: &str) {
    let direct = client(connect, true).await;
    let registrar: ServiceDiscovery = ServiceDiscovery::new(&direct, BASE);
    registrar.register(api("x", 1)).await.unwrap();
    let proxy = Proxy::start(first_server(connect)).await;
    let watcher = client(&proxy.addr.to_string(), true).await;
    let cache: ServiceCache = ServiceCache::new(&watcher, BASE, "api");
    cache.start();
    assert_eq!(ids(&cache.ready().await), ["x"]);
    let mut changes = cache.changes();
    let first_session = watcher.session_id();

    // Cut off briefly (the session lives on): changes made meanwhile sent no event,
    // the cache reads everything again once reconnected.
    proxy.cut();
    eventually("the watcher notices the cut", || {
        watcher.state() != SessionState::Connected
    })
    .await;
    let y = api("y", 2);
    registrar.register(y.clone()).await.unwrap();
    registrar.unregister("api", "x").await.unwrap();
    proxy.restore();
    let restored = Instant::now();
    assert_eq!(
        next_n(&mut changes, 2, "after a reconnection").await,
        set(&[("added", "y"), ("removed", "x")])
    );
    println!(
        "discovery on {on}: the cache caught up {} ms after reconnecting could begin",
        restored.elapsed().as_millis()
    );
    assert_eq!(watcher.session_id(), first_session);

    // Cut off past the session timeout: a new session, a new watch, everything read
    // again.
    proxy.cut();
    registrar.register(api("z", 3)).await.unwrap();
    let moved = y.with_payload(json!({"zone": "us"}));
    registrar.update(moved.clone()).await.unwrap();
    tokio::time::sleep(SESSION + Duration::from_millis(1500)).await;
    proxy.restore();
    let restored = Instant::now();
    assert_eq!(
        next_n(&mut changes, 2, "after an expiry").await,
        set(&[("added", "z"), ("updated", "y")])
    );
    println!(
        "discovery on {on}: after its session expired the cache caught up {} ms after reconnecting could begin",
        restored.elapsed().as_millis()
    );
    assert_ne!(watcher.session_id(), first_session);
    assert_eq!(cache.instance("y"), Some(moved));
    // And it goes on watching.
    registrar.unregister("api", "z").await.unwrap();
    assert_eq!(
        kind(&next(&mut changes, "after the catch-up").await),
        ("removed", "z".to_string())
    );
}

/// A provider that sees all of `expected`.
async fn provider_seeing(
    discovery: &ServiceDiscovery,
    strategy: ProviderStrategy,
    policy: DownInstancePolicy,
    expected: usize,
) -> ServiceProvider {
    let provider = discovery
        .provider("api")
        .strategy(strategy)
        .down_instance_policy(policy)
        .build();
    provider.start();
    provider.ready().await;
    eventually("the provider sees every instance", || {
        provider.all_instances().len() == expected
    })
    .await;
    provider
}

fn pick(provider: &ServiceProvider) -> String {
    provider.instance().expect("an instance").id
}

async fn strategies(connect: &str, on: &str) {
    let z = client(connect, true).await;
    let discovery: ServiceDiscovery = ServiceDiscovery::new(&z, BASE);
    let names = ["a", "b", "c"];
    for (i, id) in names.iter().enumerate() {
        discovery.register(api(id, 8000 + i as u16)).await.unwrap();
    }
    let policy = DownInstancePolicy::new(Duration::from_secs(60), 2);

    // Round-robin: an exact rotation.
    let rr = provider_seeing(&discovery, ProviderStrategy::RoundRobin, policy, 3).await;
    let picks: Vec<String> = (0..30).map(|_| pick(&rr)).collect();
    let offset = names.iter().position(|n| *n == picks[0]).unwrap();
    for (i, id) in picks.iter().enumerate() {
        assert_eq!(id, names[(offset + i) % 3], "round-robin picks {picks:?}");
    }

    // Random: everyone, none much more than the others.
    let random = provider_seeing(&discovery, ProviderStrategy::Random, policy, 3).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        *counts.entry(pick(&random)).or_default() += 1;
    }
    println!("discovery on {on}: 300 random picks over 3 instances: {counts:?}");
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&n| n <= 200), "{counts:?}");

    // Sticky: the same one until it is down, then another until that one goes.
    let sticky = provider_seeing(
        &discovery,
        ProviderStrategy::Sticky(Box::new(ProviderStrategy::RoundRobin)),
        policy,
        3,
    )
    .await;
    let first = pick(&sticky);
    assert!((0..20).all(|_| pick(&sticky) == first));
    let first_instance = sticky.instance().unwrap();
    sticky.note_error(&first_instance);
    assert_eq!(pick(&sticky), first, "one error is below the threshold");
    sticky.note_error(&first_instance);
    let second = pick(&sticky);
    assert_ne!(second, first, "down: another one");
    assert!((0..20).all(|_| pick(&sticky) == second));
    let mut changes = sticky.cache().changes();
    discovery.unregister("api", &second).await.unwrap();
    assert_eq!(
        kind(&next(&mut changes, "unregistered").await),
        ("removed", second.clone())
    );
    let third = pick(&sticky);
    assert!(
        third != first && third != second,
        "{first} down, {second} gone: {third}"
    );
    assert!((0..20).all(|_| pick(&sticky) == third));
    for provider in [rr, random, sticky] {
        provider.close().await;
    }
    discovery.close().await;
}

async fn down_instances(connect: &str, on: &str) {
    let z = client(connect, true).await;
    let discovery: ServiceDiscovery = ServiceDiscovery::new(&z, BASE);
    discovery.register(api("a", 1)).await.unwrap();
    discovery.register(api("b", 2)).await.unwrap();
    let timeout = Duration::from_secs(1);
    let provider = provider_seeing(
        &discovery,
        ProviderStrategy::RoundRobin,
        DownInstancePolicy::new(timeout, 2),
        2,
    )
    .await;
    let a = discovery
        .query_for_instance("api", "a")
        .await
        .unwrap()
        .unwrap();
    provider.note_error(&a);
    let picks: BTreeSet<String> = (0..10).map(|_| pick(&provider)).collect();
    assert_eq!(picks, set_of(&["a", "b"]), "one error: still used");
    provider.note_error(&a);
    let down_at = Instant::now();
    let picks: BTreeSet<String> = (0..10).map(|_| pick(&provider)).collect();
    assert_eq!(picks, set_of(&["b"]), "two errors: skipped");
    assert_eq!(ids(&provider.all_instances()), ["b"]);
    // Back after the timeout.
    eventually("a is taken back", || provider.all_instances().len() == 2).await;
    let back = down_at.elapsed();
    println!(
        "discovery on {on}: a noted-down instance was skipped for {} ms (timeout {} ms)",
        back.as_millis(),
        timeout.as_millis()
    );
    assert!(back >= timeout - Duration::from_millis(50), "{back:?}");
    assert!(back < timeout + Duration::from_secs(2), "{back:?}");
    let picks: BTreeSet<String> = (0..10).map(|_| pick(&provider)).collect();
    assert_eq!(picks, set_of(&["a", "b"]));
    // No instance at all: none to give.
    discovery.close().await;
    eventually("the provider sees none", || provider.instance().is_none()).await;
    provider.close().await;
}

fn set_of(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Payloads need not be JSON values: any serde type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_payloads_on_ours() {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Details {
        zone: String,
        weight: u32,
    }
    let server = TestingServer::start().await.unwrap();
    let z = client(&server.connect_string(), true).await;
    let discovery: ServiceDiscovery<Details> = ServiceDiscovery::new(&z, BASE);
    let instance = ServiceInstance::new("typed", "t1").with_payload(Details {
        zone: "eu".into(),
        weight: 7,
    });
    discovery.register(instance.clone()).await.unwrap();
    assert_eq!(
        discovery.query_for_instances("typed").await.unwrap(),
        std::slice::from_ref(&instance)
    );
    // Read untyped by someone else.
    let untyped: ServiceDiscovery<Value> = ServiceDiscovery::new(&z, BASE);
    let seen = untyped
        .query_for_instance("typed", "t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.payload, Some(json!({"zone": "eu", "weight": 7})));
    discovery.close().await;
}
