//! `LeaderSelector` against our server and Apache ZooKeeper 3.8: one task leading at a
//! time (an in-test monitor counts tasks inside) with auto-requeue, a single term
//! without it, interruption, and leadership taken away from a task whose session is
//! in doubt — before anyone else leads — then regained on a renewed session.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zk_client::Client;
use zk_recipes::LeaderSelector;
use zk_server::testing::TestingServer;
use zk_tests::apache::ApacheZk;
use zk_tests::proxy::Proxy;

const WAIT: Duration = Duration::from_secs(30);

async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(2))
        .renew_expired_sessions(true)
        .connect()
        .await
        .expect("connect")
}

/// Counts tasks inside their term; panics (in the task) if two are.
#[derive(Clone, Default)]
struct Inside {
    now: Arc<AtomicUsize>,
    terms: Arc<AtomicUsize>,
}

impl Inside {
    fn enter(&self) -> Leaving {
        assert_eq!(
            self.now.fetch_add(1, Ordering::SeqCst),
            0,
            "two leaders at once"
        );
        self.terms.fetch_add(1, Ordering::SeqCst);
        Leaving(self.now.clone())
    }
}

/// Leaves the term when dropped: at the task's end or when it is taken away.
struct Leaving(Arc<AtomicUsize>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_selector_on_ours() {
    let server = TestingServer::start().await.unwrap();
    scenarios(&server.connect_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_selector_on_apache_zookeeper() {
    let server = ApacheZk::start().await;
    scenarios(&server.connect_string()).await;
}

async fn scenarios(connect: &str) {
    take_turns_with_auto_requeue(connect).await;
    one_term_without_requeue_and_interruption(connect).await;
    leadership_is_taken_away_while_in_doubt(connect).await;
}

async fn take_turns_with_auto_requeue(connect: &str) {
    let inside = Inside::default();
    let mut selectors = Vec::new();
    let mut counts = Vec::new();
    for i in 0..3 {
        let zk = client(connect).await;
        let mine = Arc::new(AtomicUsize::new(0));
        let (inside, m) = (inside.clone(), mine.clone());
        counts.push(mine);
        selectors.push(started(
            LeaderSelector::builder(&zk, "/selector/turns", &format!("p{i}"))
                .auto_requeue(true)
                .build(move |leadership| {
                    let (inside, m) = (inside.clone(), m.clone());
                    async move {
                        let _leaving = inside.enter();
                        m.fetch_add(1, Ordering::SeqCst);
                        assert!(leadership.term() >= 1);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }),
        ));
    }
    eventually("each led at least twice", || {
        counts.iter().all(|c| c.load(Ordering::SeqCst) >= 2)
    })
    .await;
    // Between terms a participant is briefly out of line.
    let participants = selectors[0].participants().await.unwrap();
    assert!((1..=3).contains(&participants.len()), "{participants:?}");
    assert!(participants[0].is_leader && participants[1..].iter().all(|p| !p.is_leader));
    assert!(participants
        .iter()
        .all(|p| ["p0", "p1", "p2"].contains(&p.id.as_str())));
    for s in selectors {
        s.close().await;
    }
    assert_eq!(inside.now.load(Ordering::SeqCst), 0);
}

async fn one_term_without_requeue_and_interruption(connect: &str) {
    let zk = client(connect).await;
    let inside = Inside::default();
    let i = inside.clone();
    let selector = started(
        LeaderSelector::builder(&zk, "/selector/once", "solo").build(move |_| {
            let inside = i.clone();
            async move {
                let _leaving = inside.enter();
                // Leads until interrupted.
                std::future::pending::<()>().await;
            }
        }),
    );
    eventually("leads", || selector.has_leadership()).await;
    assert_eq!(selector.participants().await.unwrap()[0].id, "solo");
    selector.interrupt_leadership();
    eventually("interrupted", || !selector.has_leadership()).await;
    assert_eq!(inside.now.load(Ordering::SeqCst), 0, "the task was dropped");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        inside.terms.load(Ordering::SeqCst),
        1,
        "no requeue by itself"
    );
    assert!(selector.participants().await.unwrap().is_empty());
    selector.requeue();
    eventually("leads again", || selector.has_leadership()).await;
    assert_eq!(inside.terms.load(Ordering::SeqCst), 2);
    selector.close().await;
    assert_eq!(
        inside.now.load(Ordering::SeqCst),
        0,
        "closing dropped the task"
    );
}

async fn leadership_is_taken_away_while_in_doubt(connect: &str) {
    let inside = Inside::default();
    let proxy = Proxy::start(connect.split(',').next().unwrap().to_string()).await;
    let cut_off = client(&proxy.addr.to_string()).await;
    let other = client(connect).await;
    let spawn = |zk: &Client, id: &str, inside: Inside| {
        started(
            LeaderSelector::builder(zk, "/selector/doubt", id)
                .auto_requeue(true)
                .build(move |_| {
                    let inside = inside.clone();
                    async move {
                        let _leaving = inside.enter();
                        std::future::pending::<()>().await;
                    }
                }),
        )
    };
    let a = spawn(&cut_off, "a", inside.clone());
    eventually("a leads", || a.has_leadership()).await;
    let b = spawn(&other, "b", inside.clone());
    eventually("b queued", || inside.terms.load(Ordering::SeqCst) == 1).await;
    let first_session = cut_off.session_id();
    proxy.cut();
    // a's task is dropped once its connection is in doubt, b leads once a's session
    // expired; the monitor (Inside) panics if both run at once.
    eventually("a gave up", || !a.has_leadership()).await;
    eventually("b leads", || b.has_leadership()).await;
    proxy.restore();
    // a is back with a new session, queued behind b.
    eventually("a renewed", || {
        cut_off.session_id() != first_session && cut_off.state().is_connected()
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.participants().await.unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "a requeued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.interrupt_leadership();
    eventually("a leads again", || a.has_leadership()).await;
    a.close().await;
    b.close().await;
    assert_eq!(inside.now.load(Ordering::SeqCst), 0);
}

/// `selector`, started.
fn started(selector: LeaderSelector) -> LeaderSelector {
    selector.start();
    selector
}
