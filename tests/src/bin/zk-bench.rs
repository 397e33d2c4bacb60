//! `zk-bench`: a load generator on our client, for any ZooKeeper-compatible server.
//!
//! ```text
//! zk-bench --connect 127.0.0.1:2181 --workload get|set|create|mixed|churn|watch|lock|failover|populate|scale|hold
//!          [--clients 8] [--in-flight 8] [--value-size 100] [--duration 10]
//!          [--warmup 2] [--keys 1000] [--read-ratio 0.9] [--contenders 4]
//!          [--kill-pid PID] [--spread] [--populated] [--watch-keys 0] [--json]
//! ```
//!
//! Each of `--clients` sessions runs `--in-flight` loops, each with one request
//! outstanding; latencies after the warm-up go into an HDR histogram. `mixed` reads
//! with probability `--read-ratio` and writes otherwise (the ZooKeeper paper's
//! read/write mix); `churn` creates and deletes ephemeral nodes; `watch` measures a
//! change on one session to its event on `--clients` others; `lock` has
//! `--contenders` sessions take turns on one `zk_recipes::Lock`; `failover` has
//! `--clients` sessions write one after another, kills `--kill-pid` (the ensemble's
//! leader, found by the harness) with SIGKILL after the warm-up, and reports how long
//! until the first write sent after the kill was acknowledged (`failover_ms`), and
//! until every session wrote again (`all_clients_ms`); `populate` creates `--keys`
//! znodes of `--value-size` bytes under `/zkbench-populated` as fast as it can (for
//! the memory and recovery measurements) and ends; `scale` measures what the server
//! does at its limits: a multi of `--keys` creates, at most 10,000 (and one as large
//! that fails), a
//! chain `--depth` levels deep, and `--clients` sessions each watching `--keys` znodes
//! (exists watches, pipelined), all fired at once, timed until every event arrived
//! (with `--pause-on-stdin` it stops before and after setting the watches until a line
//! arrives on stdin, so a harness can measure the server's memory); `hold` opens
//! `--clients` sessions, `--in-flight` connecting at once (timing each connect), has
//! every session set an exists watch on each of `--watch-keys` znodes, says
//! `zk-bench: holding` on stderr and keeps them all until a line arrives on stdin
//! (or `--duration` passes), so a harness can measure the server, or load it, meanwhile
//! (with `--pause-on-stdin` it also stops before connecting them).
//!
//! `--spread` connects session `c` to the `c`-th host of the connect string (modulo
//! their number) rather than to a random one, so reads spread evenly over an
//! ensemble's members; `--populated` has `get`, `set` and `mixed` use the `--keys`
//! znodes a `populate` run left (`/zkbench-populated/k0000000`...) instead of creating
//! their own. Prints a line of results, or one JSON object with `--json`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zk_client::{Acl, Client, CreateMode};

/// The run's settings.
#[derive(Debug, Clone)]
struct Settings {
    connect: String,
    workload: String,
    clients: usize,
    in_flight: usize,
    value_size: usize,
    duration: Duration,
    warmup: Duration,
    keys: u64,
    read_ratio: f64,
    contenders: usize,
    kill_pid: Option<u32>,
    depth: usize,
    pause_on_stdin: bool,
    spread: bool,
    populated: bool,
    watch_keys: u64,
    json: bool,
}

fn parse(args: &[String]) -> Result<Settings, String> {
    let mut s = Settings {
        connect: "127.0.0.1:2181".into(),
        workload: "get".into(),
        clients: 8,
        in_flight: 8,
        value_size: 100,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        keys: 1000,
        read_ratio: 0.9,
        contenders: 4,
        kill_pid: None,
        depth: 1000,
        pause_on_stdin: false,
        spread: false,
        populated: false,
        watch_keys: 0,
        json: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--json" {
            s.json = true;
            continue;
        }
        if flag == "--pause-on-stdin" {
            s.pause_on_stdin = true;
            continue;
        }
        if flag == "--spread" {
            s.spread = true;
            continue;
        }
        if flag == "--populated" {
            s.populated = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--connect" => s.connect = value.clone(),
            "--workload" => s.workload = value.clone(),
            "--clients" => s.clients = number()?.max(1.0) as usize,
            "--in-flight" => s.in_flight = number()?.max(1.0) as usize,
            "--value-size" => s.value_size = number()? as usize,
            "--duration" => s.duration = Duration::from_secs_f64(number()?),
            "--warmup" => s.warmup = Duration::from_secs_f64(number()?),
            "--keys" => s.keys = number()?.max(1.0) as u64,
            "--read-ratio" => s.read_ratio = number()?.clamp(0.0, 1.0),
            "--contenders" => s.contenders = number()?.max(1.0) as usize,
            "--depth" => s.depth = number()?.max(1.0) as usize,
            "--watch-keys" => s.watch_keys = number()?.max(0.0) as u64,
            "--kill-pid" => {
                s.kill_pid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--kill-pid: not a pid: {value}"))?,
                )
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let known = [
        "get", "set", "create", "mixed", "churn", "watch", "lock", "failover", "populate", "scale",
        "hold",
    ];
    if !known.contains(&s.workload.as_str()) {
        return Err(format!(
            "unknown workload {} (one of {known:?})",
            s.workload
        ));
    }
    if s.workload == "failover" && s.kill_pid.is_none() {
        return Err("failover needs --kill-pid".into());
    }
    Ok(s)
}

/// What the loops gather.
struct Results {
    latency: Mutex<Histogram<u64>>,
    ops: AtomicU64,
    errors: AtomicU64,
}

impl Results {
    fn new() -> Results {
        Results {
            latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")),
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn merge(&self, local: &Histogram<u64>, ops: u64, errors: u64) {
        if let Ok(mut h) = self.latency.lock() {
            let _ = h.add(local);
        }
        self.ops.fetch_add(ops, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
    }
}

/// One loop's tally, merged at its end.
struct Tally {
    latency: Histogram<u64>,
    ops: u64,
    errors: u64,
    measuring_from: Instant,
}

impl Tally {
    fn new(measuring_from: Instant) -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
            ops: 0,
            errors: 0,
            measuring_from,
        }
    }

    fn record<T, E>(&mut self, started: Instant, result: Result<T, E>) {
        if started < self.measuring_from {
            return;
        }
        match result {
            Ok(_) => {
                let us = started.elapsed().as_micros().max(1) as u64;
                let _ = self.latency.record(us.min(60_000_000));
                self.ops += 1;
            }
            Err(_) => self.errors += 1,
        }
    }
}

async fn connect(s: &Settings) -> Result<Client, String> {
    connect_to(s, &s.connect).await
}

/// Session `c`'s connection: with `--spread`, to the `c`-th host only.
async fn connect_nth(s: &Settings, c: usize) -> Result<Client, String> {
    if s.spread {
        connect_to(s, &nth_host(&s.connect, c)).await
    } else {
        connect(s).await
    }
}

async fn connect_to(s: &Settings, connect: &str) -> Result<Client, String> {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(30))
        .max_in_flight(s.in_flight.max(1) * 2)
        .connect()
        .await
        .map_err(|e| format!("connect {connect}: {e}"))
}

/// The `n`-th host (modulo their number) of a connect string, with its chroot.
fn nth_host(connect: &str, n: usize) -> String {
    let (hosts, chroot) = connect.split_at(connect.find('/').unwrap_or(connect.len()));
    let hosts: Vec<&str> = hosts.split(',').collect();
    format!("{}{chroot}", hosts[n % hosts.len()])
}

/// The znode of key `k`: the run's own, or one a `populate` run left.
fn key_path(root: &str, populated: bool, k: u64) -> String {
    if populated {
        format!("{POPULATED}/k{k:07}")
    } else {
        format!("{root}/k{k}")
    }
}

/// Where `populate` puts its znodes.
const POPULATED: &str = "/zkbench-populated";

async fn ensure(zk: &Client, path: &str, data: &[u8]) -> Result<(), String> {
    match zk.create(path).data(data).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(zk_client::ErrorCode::NodeExists) => Ok(()),
        Err(e) => Err(format!("create {path}: {e}")),
    }
}

async fn run(s: Settings) -> Result<serde_json::Value, String> {
    let root = format!("/zkbench-{}", std::process::id());
    let value = vec![b'x'; s.value_size];
    if s.workload == "populate" {
        return populate(&s, &value).await;
    }
    if s.workload == "scale" {
        return scale(&s, &root).await;
    }
    if s.workload == "hold" {
        return hold(&s, &root).await;
    }
    let setup = connect(&s).await?;
    ensure(&setup, &root, b"").await?;
    let own_keys = !(s.populated && matches!(s.workload.as_str(), "get" | "set" | "mixed"));
    if own_keys
        && matches!(
            s.workload.as_str(),
            "get" | "set" | "mixed" | "watch" | "failover"
        )
    {
        // The key space, created with pipelined requests.
        let keys = match s.workload.as_str() {
            "watch" => 1,
            "failover" => s.clients as u64,
            _ => s.keys,
        };
        let mut pending = Vec::new();
        for k in 0..keys {
            pending.push(setup.create(&format!("{root}/k{k}")).data(&value).send());
            if pending.len() == 256 {
                for p in pending.drain(..) {
                    let _ = p.await;
                }
            }
        }
        for p in pending {
            let _ = p.await;
        }
    }
    let results = Arc::new(Results::new());
    let start = Instant::now();
    let measuring_from = start + s.warmup;
    let deadline = measuring_from + s.duration;
    // Tell a harness sampling server CPU when the measured window opens and closes.
    tokio::spawn(async move {
        tokio::time::sleep_until(measuring_from.into()).await;
        eprintln!("zk-bench: measuring");
        tokio::time::sleep_until(deadline.into()).await;
        eprintln!("zk-bench: measured");
    });
    let mut loops = Vec::new();
    match s.workload.as_str() {
        "failover" => {
            let pid = s.kill_pid.unwrap_or_default();
            return failover(&s, &root, &value, pid, measuring_from, deadline).await;
        }
        "watch" => {
            let writer = connect(&s).await?;
            let mut watchers = Vec::new();
            for _ in 0..s.clients {
                watchers.push(connect(&s).await?);
            }
            let key = format!("{root}/k0");
            let mut tally = Tally::new(measuring_from);
            while Instant::now() < deadline {
                let mut events = Vec::new();
                for w in &watchers {
                    let (read, changed) = w.get_data_and_watch(&key);
                    if read.await.is_ok() {
                        events.push(changed);
                    }
                }
                let started = Instant::now();
                if writer.set_data(&key, &value, None).await.is_err() {
                    tally.errors += 1;
                    continue;
                }
                for e in events {
                    let got = e.await;
                    tally.record(started, got);
                }
            }
            results.merge(&tally.latency, tally.ops, tally.errors);
        }
        "lock" => {
            let lock_path = format!("{root}/lock");
            for c in 0..s.contenders {
                let zk = connect(&s).await?;
                let results = results.clone();
                let lock_path = lock_path.clone();
                loops.push(tokio::spawn(async move {
                    let mut tally = Tally::new(measuring_from);
                    let mut lock = zk_recipes::Lock::new(&zk, &lock_path);
                    let _ = c;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let got = match lock.acquire().await {
                            Ok(guard) => guard.release().await,
                            Err(e) => Err(e),
                        };
                        // One op = an acquire and its release.
                        tally.record(started, got);
                    }
                    results.merge(&tally.latency, tally.ops, tally.errors);
                }));
            }
        }
        workload => {
            let stop = Arc::new(AtomicBool::new(false));
            let populated = s.populated;
            for c in 0..s.clients {
                let zk = connect_nth(&s, c).await?;
                for f in 0..s.in_flight {
                    let (zk, results, root, value) =
                        (zk.clone(), results.clone(), root.clone(), value.clone());
                    let (workload, keys, read_ratio) = (workload.to_string(), s.keys, s.read_ratio);
                    let stop = stop.clone();
                    loops.push(tokio::spawn(async move {
                        // A fixed seed per loop: the same keys every run.
                        let mut rng = StdRng::seed_from_u64(
                            0x9E3779B97F4A7C15 ^ (((c as u64) << 32) | (f as u64 + 1)),
                        );
                        let mut tally = Tally::new(measuring_from);
                        let mut n = 0u64;
                        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                            let key = key_path(&root, populated, rng.gen_range(0..keys.max(1)));
                            let started = Instant::now();
                            match workload.as_str() {
                                "get" => tally.record(started, zk.get_data(&key).await),
                                "set" => {
                                    tally.record(started, zk.set_data(&key, &value, None).await)
                                }
                                "mixed" => {
                                    if rng.gen::<f64>() < read_ratio {
                                        tally.record(started, zk.get_data(&key).await)
                                    } else {
                                        tally.record(started, zk.set_data(&key, &value, None).await)
                                    }
                                }
                                "create" => {
                                    let path = format!("{root}/c{c}-{f}-{n}");
                                    n += 1;
                                    let r = zk.create(&path).data(&value).await;
                                    tally.record(started, r)
                                }
                                _ => {
                                    // churn: an ephemeral made, then deleted (two ops).
                                    let path = format!("{root}/e{c}-{f}-{n}");
                                    n += 1;
                                    let r = zk
                                        .create(&path)
                                        .data(&value)
                                        .mode(CreateMode::Ephemeral)
                                        .await;
                                    let made = r.is_ok();
                                    tally.record(started, r);
                                    if made {
                                        let started = Instant::now();
                                        tally.record(started, zk.delete(&path, None).await);
                                    }
                                }
                            }
                        }
                        results.merge(&tally.latency, tally.ops, tally.errors);
                    }));
                }
            }
        }
    }
    for l in loops {
        let _ = l.await;
    }
    let elapsed = s.duration.as_secs_f64();
    let h = results
        .latency
        .lock()
        .map_err(|_| "poisoned".to_string())?
        .clone();
    let ops = results.ops.load(Ordering::Relaxed);
    Ok(serde_json::json!({
        "workload": s.workload,
        "connect": s.connect,
        "clients": s.clients,
        "in_flight": s.in_flight,
        "contenders": s.contenders,
        "value_size": s.value_size,
        "read_ratio": s.read_ratio,
        "duration_s": elapsed,
        "ops": ops,
        "errors": results.errors.load(Ordering::Relaxed),
        "ops_per_sec": ops as f64 / elapsed,
        "latency_us": {
            "mean": h.mean(),
            "p50": h.value_at_quantile(0.50),
            "p90": h.value_at_quantile(0.90),
            "p99": h.value_at_quantile(0.99),
            "p999": h.value_at_quantile(0.999),
            "max": h.max(),
        },
    }))
}

/// The `populate` workload: `--keys` znodes under `/zkbench-populated`, created by
/// `--clients` × `--in-flight` loops.
async fn populate(s: &Settings, value: &[u8]) -> Result<serde_json::Value, String> {
    let root = POPULATED;
    let setup = connect(s).await?;
    ensure(&setup, root, b"").await?;
    let started = Instant::now();
    let loops_total = (s.clients * s.in_flight) as u64;
    let errors = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for c in 0..s.clients {
        let zk = connect(s).await?;
        for f in 0..s.in_flight {
            let (zk, value, errors) = (zk.clone(), value.to_vec(), errors.clone());
            let first = (c * s.in_flight + f) as u64;
            let keys = s.keys;
            loops.push(tokio::spawn(async move {
                let mut k = first;
                while k < keys {
                    let path = format!("{root}/k{k:07}");
                    let made = zk.create(&path).data(&value).await;
                    match made {
                        Err(e) if e.code() != Some(zk_client::ErrorCode::NodeExists) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        _ => k += loops_total,
                    }
                }
            }));
        }
    }
    for l in loops {
        let _ = l.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "workload": "populate",
        "connect": s.connect,
        "keys": s.keys,
        "value_size": s.value_size,
        "seconds": elapsed,
        "errors": errors.load(Ordering::Relaxed),
        "ops_per_sec": s.keys as f64 / elapsed,
        "ops": s.keys,
        "latency_us": {"p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0},
    }))
}

/// Waits for a line on stdin (a harness measuring the server between phases).
async fn pause(s: &Settings, phase: &str) {
    eprintln!("zk-bench: {phase}");
    if s.pause_on_stdin {
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
    }
}

/// One operation of [`in_multis`].
enum Step {
    Create(String),
    Set(String),
}

/// Commits `steps` in multis of at most `per` operations.
async fn in_multis(zk: &Client, steps: Vec<Step>, per: usize) -> Result<(), String> {
    let open = Acl::open_unsafe();
    let mut steps = steps.into_iter().peekable();
    while steps.peek().is_some() {
        let mut txn = zk.transaction();
        for step in steps.by_ref().take(per) {
            txn = match step {
                Step::Create(path) => txn.create(&path, b"", &open, CreateMode::Persistent),
                Step::Set(path) => txn.set_data(&path, b"x", None),
            };
        }
        txn.commit().await.map_err(|e| format!("multi: {e}"))?;
    }
    Ok(())
}

/// The `scale` workload (see the module documentation).
async fn scale(s: &Settings, root: &str) -> Result<serde_json::Value, String> {
    let open = Acl::open_unsafe();
    let zk = connect(s).await?;
    ensure(&zk, root, b"").await?;
    let keys = s.keys as usize;

    // One multi of `keys` creates; first one that fails on its last op.
    let multi = format!("{root}/multi");
    ensure(&zk, &multi, b"").await?;
    // As large as a request may be: 10,000 creates are about 0.7 MB.
    let huge = keys.min(10_000);
    let creates = |txn: zk_client::Transaction| {
        (0..huge).fold(txn, |t, i| {
            t.create(
                &format!("{multi}/n{i:07}"),
                b"",
                &open,
                CreateMode::Persistent,
            )
        })
    };
    let started = Instant::now();
    let failed = creates(zk.transaction())
        .check(&multi, 12345)
        .commit()
        .await
        .is_err();
    let multi_failed_ms = started.elapsed().as_secs_f64() * 1e3;
    if !failed {
        return Err("a multi whose last op fails was committed".into());
    }
    let started = Instant::now();
    creates(zk.transaction())
        .commit()
        .await
        .map_err(|e| format!("huge multi: {e}"))?;
    let multi_ms = started.elapsed().as_secs_f64() * 1e3;
    let rest = (huge..keys)
        .map(|i| Step::Create(format!("{multi}/n{i:07}")))
        .collect();
    in_multis(&zk, rest, 1000).await?;

    // A chain `depth` levels deep, fifty levels per multi (a multi stays under 1 MB
    // with paths of 10 KB).
    let started = Instant::now();
    let mut path = format!("{root}/deep");
    let mut steps = vec![Step::Create(path.clone())];
    for _ in 1..s.depth {
        path.push_str("/d");
        steps.push(Step::Create(path.clone()));
    }
    in_multis(&zk, steps, 50).await?;
    let deep_create_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    for _ in 0..100 {
        zk.get_data(&path)
            .await
            .map_err(|e| format!("deep get: {e}"))?;
    }
    let deep_get_us = started.elapsed().as_secs_f64() * 1e6 / 100.0;

    // Watches: every session watches every znode of the multi.
    pause(s, "setting watches").await;
    let started = Instant::now();
    let mut watchers = Vec::new();
    for _ in 0..s.clients {
        let w = connect(s).await?;
        let mut fired = Vec::with_capacity(keys);
        let mut reads = Vec::new();
        for i in 0..keys {
            let (read, watch) = w.exists_and_watch(&format!("{multi}/n{i:07}"));
            reads.push(read);
            fired.push(watch);
            if reads.len() == 1000 {
                for r in futures::future::join_all(reads.drain(..)).await {
                    r.map_err(|e| format!("exists: {e}"))?;
                }
            }
        }
        for r in futures::future::join_all(reads).await {
            r.map_err(|e| format!("exists: {e}"))?;
        }
        watchers.push((w, fired));
    }
    let watch_set_ms = started.elapsed().as_secs_f64() * 1e3;
    pause(s, "watches set").await;
    let started = Instant::now();
    let sets = (0..keys)
        .map(|i| Step::Set(format!("{multi}/n{i:07}")))
        .collect();
    in_multis(&zk, sets, 1000).await?;
    let mut delivered = 0usize;
    for (_, fired) in watchers.iter_mut() {
        for event in futures::future::join_all(fired.drain(..)).await {
            if event.is_ok() {
                delivered += 1;
            }
        }
    }
    let watch_fire_ms = started.elapsed().as_secs_f64() * 1e3;
    for (w, _) in watchers {
        w.close().await;
    }
    Ok(serde_json::json!({
        "workload": "scale",
        "connect": s.connect,
        "multi_ops": huge,
        "multi_ms": multi_ms,
        "multi_failed_ms": multi_failed_ms,
        "depth": s.depth,
        "deep_create_ms": deep_create_ms,
        "deep_get_us": deep_get_us,
        "watches": s.clients * keys,
        "watches_delivered": delivered,
        "watch_set_ms": watch_set_ms,
        "watch_fire_ms": watch_fire_ms,
    }))
}

/// The `hold` workload (see the module documentation).
async fn hold(s: &Settings, root: &str) -> Result<serde_json::Value, String> {
    use futures::StreamExt;
    let setup = connect(s).await?;
    ensure(&setup, root, b"").await?;
    let watched: Vec<String> = (0..s.watch_keys).map(|i| format!("{root}/w{i}")).collect();
    for chunk in watched.chunks(1000) {
        let creates = chunk.iter().map(|p| setup.create(p).send());
        for made in futures::future::join_all(creates).await {
            made.map_err(|e| format!("create: {e}"))?;
        }
    }
    pause(s, "connecting sessions").await;
    let started = Instant::now();
    let mut connects = futures::stream::iter(0..s.clients)
        .map(|c| async move {
            let t = Instant::now();
            connect_nth(s, c).await.map(|zk| (zk, t.elapsed()))
        })
        .buffer_unordered(s.in_flight);
    let mut sessions = Vec::with_capacity(s.clients);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    while let Some(made) = connects.next().await {
        let (zk, took) = made?;
        let _ = latency.record((took.as_micros() as u64).clamp(1, 60_000_000));
        sessions.push(zk);
    }
    drop(connects);
    let connect_s = started.elapsed().as_secs_f64();
    // Every session watches every watched znode, the sessions side by side, each
    // pipelining a thousand exists at a time; the watches are kept until the end.
    let started = Instant::now();
    let watching = sessions.iter().map(|zk| {
        let watched = &watched;
        async move {
            let mut kept = Vec::with_capacity(watched.len());
            for chunk in watched.chunks(1000) {
                let mut reads = Vec::with_capacity(chunk.len());
                for path in chunk {
                    let (read, watch) = zk.exists_and_watch(path);
                    reads.push(read);
                    kept.push(watch);
                }
                for r in futures::future::join_all(reads).await {
                    r.map_err(|e| format!("exists: {e}"))?;
                }
            }
            Ok::<_, String>(kept)
        }
    });
    let mut kept = Vec::new();
    for w in futures::future::join_all(watching).await {
        kept.push(w?);
    }
    let watch_set_s = started.elapsed().as_secs_f64();
    // Held until a line (or the end) of stdin, at most `--duration`; a thread of its
    // own, so a harness that never writes does not keep the process alive.
    eprintln!("zk-bench: holding");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    let _ = tokio::time::timeout(s.duration, rx).await;
    drop(kept);
    let started = Instant::now();
    let closing = futures::stream::iter(sessions.iter())
        .map(|zk| zk.close())
        .buffer_unordered(s.in_flight)
        .collect::<Vec<()>>();
    let closed = tokio::time::timeout(Duration::from_secs(120), closing)
        .await
        .is_ok();
    Ok(serde_json::json!({
        "workload": "hold",
        "connect": s.connect,
        "sessions": sessions.len(),
        "connecting_at_once": s.in_flight,
        "connect_s": connect_s,
        "connect_us": {
            "p50": latency.value_at_quantile(0.50),
            "p99": latency.value_at_quantile(0.99),
            "max": latency.max(),
        },
        "watches": sessions.len() as u64 * s.watch_keys,
        "watch_set_s": watch_set_s,
        "close_s": closed.then(|| started.elapsed().as_secs_f64()),
    }))
}

/// The `failover` workload (see the module documentation).
async fn failover(
    s: &Settings,
    root: &str,
    value: &[u8],
    pid: u32,
    kill_at: Instant,
    deadline: Instant,
) -> Result<serde_json::Value, String> {
    let killed: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut loops = Vec::new();
    for c in 0..s.clients {
        let zk = connect(s).await?;
        let (key, value, killed) = (format!("{root}/k{c}"), value.to_vec(), killed.clone());
        loops.push(tokio::spawn(async move {
            // The first write sent after the kill and acknowledged: how long after it.
            while Instant::now() < deadline {
                let sent = Instant::now();
                let ok = zk.set_data(&key, &value, None).await.is_ok();
                let kill = killed.lock().ok().and_then(|k| *k);
                match kill {
                    Some(k) if ok && sent > k => return Some(sent.elapsed() + (sent - k)),
                    _ if !ok => tokio::time::sleep(Duration::from_millis(1)).await,
                    _ => {}
                }
            }
            None
        }));
    }
    tokio::time::sleep_until(kill_at.into()).await;
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill -9 {pid} failed"));
    }
    if let Ok(mut k) = killed.lock() {
        *k = Some(Instant::now());
    }
    let mut firsts = Vec::new();
    for l in loops {
        firsts.push(l.await.ok().flatten());
    }
    let recovered: Vec<f64> = firsts
        .iter()
        .flatten()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let first = recovered.iter().cloned().fold(f64::INFINITY, f64::min);
    let all =
        (recovered.len() == firsts.len()).then(|| recovered.iter().cloned().fold(0.0, f64::max));
    if recovered.is_empty() {
        return Err("no write was accepted after the kill".into());
    }
    Ok(serde_json::json!({
        "workload": "failover",
        "connect": s.connect,
        "clients": s.clients,
        "killed_pid": pid,
        "failover_ms": first,
        "all_clients_ms": all,
        "clients_recovered": recovered.len(),
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match parse(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zk-bench: {e}");
            eprintln!("usage: zk-bench --connect HOST:PORT --workload get|set|create|mixed|churn|watch|lock|failover|populate|scale|hold [--clients N] [--in-flight N] [--value-size B] [--duration S] [--warmup S] [--keys N] [--read-ratio R] [--contenders N] [--kill-pid PID] [--depth D] [--watch-keys N] [--spread] [--populated] [--pause-on-stdin] [--json]");
            return ExitCode::FAILURE;
        }
    };
    let json = settings.json;
    match run(settings).await {
        Ok(report) => {
            if json {
                println!("{report}");
            } else if report["workload"] == "failover" {
                println!(
                    "failover: first write accepted {:.1} ms after the kill, every session writing again after {} ms",
                    report["failover_ms"].as_f64().unwrap_or_default(),
                    report["all_clients_ms"]
                );
            } else {
                let l = &report["latency_us"];
                println!(
                    "{} {:.0} ops/s ({} ops, {} errors) latency us p50 {} p90 {} p99 {} p999 {} max {}",
                    report["workload"].as_str().unwrap_or_default(),
                    report["ops_per_sec"].as_f64().unwrap_or_default(),
                    report["ops"],
                    report["errors"],
                    l["p50"],
                    l["p90"],
                    l["p99"],
                    l["p999"],
                    l["max"]
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_sessions_take_the_hosts_in_turn_and_keep_the_chroot() {
        let connect = "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3/app";
        assert_eq!(nth_host(connect, 0), "127.0.0.1:1/app");
        assert_eq!(nth_host(connect, 4), "127.0.0.1:2/app");
        assert_eq!(nth_host("h:1", 7), "h:1");
    }

    #[test]
    fn populated_keys_are_the_ones_populate_creates() {
        assert_eq!(
            key_path("/zkbench-1", true, 42),
            "/zkbench-populated/k0000042"
        );
        assert_eq!(key_path("/zkbench-1", false, 42), "/zkbench-1/k42");
    }

    #[test]
    fn hold_and_its_flags_parse() {
        let args: Vec<String> = [
            "--workload",
            "hold",
            "--watch-keys",
            "50",
            "--spread",
            "--populated",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let s = parse(&args).expect("parses");
        assert_eq!(
            (s.workload.as_str(), s.watch_keys, s.spread, s.populated),
            ("hold", 50, true, true)
        );
    }
}
