//! A 3-member ensemble of real server processes, `kill -9`ed all at once in the middle
//! of a write load and restarted from their data directories: every write the ensemble
//! acknowledged is on every member afterwards.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_client::Client;
use zk_proto::{Acl, CreateMode};
use zk_server::testing::{four_letter_word, free_port};

struct Member {
    dir: PathBuf,
    client: SocketAddr,
    child: Option<Child>,
}

impl Member {
    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_zk-server"))
            .arg(self.dir.join("zoo.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start zk-server");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

fn port() -> u16 {
    free_port().expect("a free loopback port")
}

fn ensemble(root: &Path, size: u64) -> Vec<Member> {
    let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (port(), port(), port())).collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer, elect))| format!("server.{}=127.0.0.1:{peer}:{elect}\n", i + 1))
        .collect();
    ports
        .iter()
        .enumerate()
        .map(|(i, (client, _, _))| {
            let dir = root.join(format!("m{}", i + 1));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            std::fs::write(
                dir.join("zoo.cfg"),
                format!(
                    "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\n{servers}",
                    data.display()
                ),
            )
            .unwrap();
            Member {
                dir,
                client: format!("127.0.0.1:{client}").parse().unwrap(),
                child: None,
            }
        })
        .collect()
}

/// Waits until one member says it leads and the others that it is followed.
async fn wait_for_quorum(members: &[Member]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut modes = Vec::new();
        for m in members {
            let srvr = four_letter_word(m.client, "srvr").await.unwrap_or_default();
            modes.push(
                srvr.lines()
                    .find_map(|l| l.strip_prefix("Mode: ").map(str::to_string))
                    .unwrap_or_default(),
            );
        }
        let leaders = modes.iter().filter(|m| *m == "leader").count();
        let followers = modes.iter().filter(|m| *m == "follower").count();
        if leaders == 1 && leaders + followers == members.len() {
            return;
        }
        assert!(Instant::now() < deadline, "no quorum formed: {modes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn connect_string(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| m.client.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_dash_nine_of_every_member() {
    let root = tempfile::tempdir().unwrap();
    let mut members = ensemble(root.path(), 3);
    for m in &mut members {
        m.spawn();
    }
    wait_for_quorum(&members).await;

    let connect = connect_string(&members);
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
                match zk
                    .create(&path, b"v", &Acl::open_unsafe(), CreateMode::Persistent)
                    .await
                {
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
    for m in &mut members {
        m.kill();
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.abort();
    }
    let acked = acked.lock().unwrap().clone();

    for m in &mut members {
        m.spawn();
    }
    wait_for_quorum(&members).await;
    // Every member, after catching up with the leader, has every acknowledged write.
    for m in &members {
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
