//! [`LeaderSelector`]: runs a leadership task while this participant leads, with the
//! node layout of Curator's `LeaderSelector` (a [`Lock`] on the path whose node carries
//! the participant id). Leadership is taken away from the task — its future is
//! dropped at its next await — as soon as the session is in doubt (connection lost)
//! or gone (expired), or when [`LeaderSelector::interrupt_leadership`] asks; when the
//! task ends, leadership is released and, with auto-requeue, the participant queues
//! again (after an expiry too, on a client that renews sessions).
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use zk_recipes::LeaderSelector;
//! let selector = LeaderSelector::builder(&client, "/fleet/scheduler", "worker-7")
//!     .auto_requeue(true)
//!     .build(|leadership| async move {
//!         // Lead until done; dropped at once if leadership is lost.
//!         let _lease = leadership.lease(); // hand to work that outlives an await
//!         tokio::time::sleep(std::time::Duration::from_millis(100)).await;
//!     });
//! selector.start();
//! // ...
//! selector.close().await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use zk_client::{Client, SessionState};

use crate::contention::Line;
use crate::error::Result;
use crate::lease::client_is_over;
use crate::lease::{Lease, LeaseState};
use crate::lock::{Lock, LOCK_NAME};
use crate::task::Background;

/// What a leadership task is given.
#[derive(Debug, Clone)]
pub struct Leadership {
    lease: Lease,
    term: u64,
}

impl Leadership {
    /// The session lease leadership is held under: give it to work that must stop
    /// when leadership is lost (the task itself is dropped then).
    pub fn lease(&self) -> Lease {
        self.lease.clone()
    }

    /// How many times this selector has led before, this one included (1 = first).
    pub fn term(&self) -> u64 {
        self.term
    }
}

/// One participant of a [`LeaderSelector`] election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The id it joined with.
    pub id: String,
    /// Whether it holds leadership (first in line).
    pub is_leader: bool,
}

/// Configures a [`LeaderSelector`].
#[derive(Debug)]
pub struct LeaderSelectorBuilder {
    client: Client,
    dir: String,
    id: String,
    auto_requeue: bool,
}

impl LeaderSelectorBuilder {
    /// Queue again each time leadership ends (default: lead once; see
    /// [`LeaderSelector::requeue`]).
    pub fn auto_requeue(mut self, on: bool) -> Self {
        self.auto_requeue = on;
        self
    }

    /// The selector, calling `task` each time this participant leads; it joins the
    /// election when [`LeaderSelector::start`]ed.
    pub fn build<F, Fut>(self, task: F) -> LeaderSelector
    where
        F: FnMut(Leadership) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (leading_tx, leading) = watch::channel(false);
        let (queued_tx, _) = watch::channel(true);
        let (interrupt, _) = watch::channel(0u64);
        let runner = Runner {
            client: self.client.clone(),
            dir: self.dir.clone(),
            id: self.id,
            auto_requeue: self.auto_requeue,
            leading: leading_tx,
            queued: queued_tx.clone(),
            interrupt: interrupt.subscribe(),
        };
        LeaderSelector {
            client: self.client,
            dir: self.dir,
            leading,
            queued: queued_tx,
            interrupt,
            task: Background::new(move |stopped| runner.run(task, stopped)),
        }
    }
}

/// A participant that runs a task while it leads (Curator's `LeaderSelector`).
#[derive(Debug)]
pub struct LeaderSelector {
    client: Client,
    dir: String,
    leading: watch::Receiver<bool>,
    queued: watch::Sender<bool>,
    interrupt: watch::Sender<u64>,
    task: Background,
}

impl LeaderSelector {
    /// A selector on `dir` for participant `id` (stored in its node).
    pub fn builder(client: &Client, dir: &str, id: &str) -> LeaderSelectorBuilder {
        LeaderSelectorBuilder {
            client: client.clone(),
            dir: dir.trim_end_matches('/').to_string(),
            id: id.to_string(),
            auto_requeue: false,
        }
    }

    /// Whether the leadership task runs now.
    pub fn has_leadership(&self) -> bool {
        *self.leading.borrow()
    }

    /// Leadership as it changes (`true` while the task runs).
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Queues again for leadership (needed after each term without auto-requeue;
    /// does nothing while queued or leading).
    pub fn requeue(&self) {
        self.queued.send_replace(true);
    }

    /// Takes leadership away from the running task (it is dropped), as Curator's
    /// `interruptLeadership`; with auto-requeue the participant queues again.
    pub fn interrupt_leadership(&self) {
        // Counted, so only a term running now (or starting) sees it.
        self.interrupt.send_modify(|n| *n += 1);
    }

    /// The participants, leader first.
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        let line = Line {
            client: &self.client,
            dir: &self.dir,
            names: &[LOCK_NAME],
        };
        Ok(line
            .ids()
            .await?
            .into_iter()
            .enumerate()
            .map(|(place, id)| Participant {
                id,
                is_leader: place == 0,
            })
            .collect())
    }

    /// Joins the election in the background (again: nothing).
    pub fn start(&self) {
        self.task.start();
    }

    /// Leaves the election: a running task is dropped, the node deleted; waits until
    /// done. Dropping a selector does the same in the background.
    pub async fn close(self) {
        self.task.close().await
    }
}

struct Runner {
    client: Client,
    dir: String,
    id: String,
    auto_requeue: bool,
    leading: watch::Sender<bool>,
    queued: watch::Sender<bool>,
    interrupt: watch::Receiver<u64>,
}

impl Runner {
    async fn run<F, Fut>(mut self, mut task: F, mut stopped: watch::Receiver<bool>)
    where
        F: FnMut(Leadership) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut queued = self.queued.subscribe();
        let mut states = self.client.state_changes();
        let mut term = 0;
        loop {
            // Queued, connected, not stopped.
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                ready = async {
                    queued.wait_for(|q| *q).await.is_ok()
                        && states.wait_for(|s| s == SessionState::Connected || client_is_over(&self.client, s)).await.is_some()
                } => {
                    if !ready || client_is_over(&self.client, self.client.state()) {
                        return;
                    }
                }
            }
            let mut lock = Lock::with_data(&self.client, &self.dir, self.id.as_bytes());
            let acquired = tokio::select! {
                // Dropping the acquire leaves no node.
                _ = stopped.wait_for(|s| *s) => return,
                r = lock.acquire() => r,
            };
            let guard = match acquired {
                Ok(guard) => guard,
                Err(e) => {
                    tracing::debug!(error = %e, dir = %self.dir, "selector: could not take our turn");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut lease = guard.lease().clone();
            term += 1;
            // Interruptions asked before this term are not for it.
            self.interrupt.borrow_and_update();
            self.leading.send_replace(true);
            let leadership = Leadership {
                lease: lease.clone(),
                term,
            };
            let stopping = tokio::select! {
                _ = task(leadership) => false,
                _ = lease.changed_from(LeaseState::Held) => false,
                _ = self.interrupt.changed() => false,
                _ = stopped.wait_for(|s| *s) => true,
            };
            // The task is dropped by now: leadership is over before it is given up.
            self.leading.send_replace(false);
            let _ = guard.release().await;
            if stopping {
                return;
            }
            if !self.auto_requeue {
                self.queued.send_replace(false);
            }
        }
    }
}
