//! A 3-member ensemble of real server processes, `kill -9`ed all at once in the middle
//! of a write load and restarted from their data directories: every write the ensemble
//! acknowledged is on every member afterwards.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::Ensemble;
use zk_client::Client;

const QUORUM_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_dash_nine_of_every_member() {
    let mut ensemble = Ensemble::start(3);
    ensemble.wait_for_quorum(QUORUM_WITHIN).await;

    let connect = ensemble.connect_string();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..3 {
        let zk = Client::builder(&connect)
            .session_timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("connect");
        let (stop, acked) = (stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..100_000 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let path = format!("/w{w}-{i}");
                match zk.create(&path).data(b"v").await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(path);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Mid-load: every member dies at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the load made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for m in &mut ensemble.members {
        m.kill();
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.abort();
    }
    let acked = acked.lock().unwrap().clone();

    for m in &mut ensemble.members {
        m.spawn();
    }
    ensemble.wait_for_quorum(QUORUM_WITHIN).await;
    // Every member, after catching up with the leader, has every acknowledged write.
    for m in &ensemble.members {
        let zk = Client::builder(&m.client.to_string())
            .session_timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("connect to a restarted member");
        zk.sync("/").await.unwrap();
        let present: BTreeSet<String> = zk
            .get_children("/")
            .await
            .unwrap()
            .into_iter()
            .map(|c| format!("/{c}"))
            .collect();
        let missing: Vec<&String> = acked.difference(&present).collect();
        assert!(
            missing.is_empty(),
            "member {} lost {} of {} acknowledged writes, e.g. {:?}",
            m.client,
            missing.len(),
            acked.len(),
            missing.first()
        );
        zk.close().await;
    }
}
