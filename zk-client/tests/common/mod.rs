//! The servers the client suite runs against: ours (in-process `TestingServer`) and a
//! real Apache ZooKeeper 3.8 (the Debian package, started here as a child process).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use zk_server::testing::{TestingCluster, TestingServer};
#[allow(unused_imports)] // not every test file uses both
pub use zk_tests::apache::ApacheZk;
#[allow(unused_imports)]
pub use zk_tests::proxy::Proxy;

pub enum Target {
    Ours(Box<TestingServer>),
    /// A 3-member ensemble of ours.
    OursEnsemble(Box<TestingCluster>),
    Apache(ApacheZk),
}

impl Target {
    pub async fn ours() -> Target {
        Target::Ours(Box::new(TestingServer::start().await.expect("our server")))
    }

    pub async fn ours_ensemble() -> Target {
        let cluster = TestingCluster::start(3).await.expect("our ensemble");
        cluster
            .wait_for_leader(Duration::from_secs(20))
            .await
            .expect("a leader");
        Target::OursEnsemble(Box::new(cluster))
    }

    pub fn is_ensemble(&self) -> bool {
        matches!(self, Target::OursEnsemble(_))
    }

    /// One server's address (a proxy goes to one member of an ensemble).
    pub fn first_addr(&self) -> String {
        match self {
            Target::OursEnsemble(c) => c.client_addr(1).expect("member 1").to_string(),
            other => other.connect_string(),
        }
    }

    pub async fn apache() -> Target {
        Target::Apache(ApacheZk::start().await)
    }

    pub fn connect_string(&self) -> String {
        match self {
            Target::Ours(s) => s.connect_string(),
            Target::OursEnsemble(c) => c.connect_string(),
            Target::Apache(z) => z.addr.to_string(),
        }
    }

    /// What the server said lately (Apache ZooKeeper's log tail), for failure messages.
    pub fn diagnostics(&self) -> String {
        match self {
            Target::Ours(_) | Target::OursEnsemble(_) => String::new(),
            Target::Apache(z) => z.log_tail(40),
        }
    }

    /// Stops the server and starts it again on the same port and data.
    pub async fn restart(&mut self) {
        match self {
            Target::Ours(s) => s.restart().await.expect("restart"),
            Target::OursEnsemble(c) => {
                for id in c.ids() {
                    c.stop(id).await;
                }
                for id in c.ids() {
                    c.restart(id).await.expect("restart");
                }
            }
            Target::Apache(z) => z.restart().await,
        }
    }

    /// Stops the server, waits, starts it again.
    pub async fn outage(&mut self, down_for: Duration) {
        match self {
            Target::Ours(s) => {
                s.stop().await;
                tokio::time::sleep(down_for).await;
                s.restart().await.expect("restart");
            }
            Target::OursEnsemble(c) => {
                for id in c.ids() {
                    c.stop(id).await;
                }
                tokio::time::sleep(down_for).await;
                for id in c.ids() {
                    c.restart(id).await.expect("restart");
                }
            }
            Target::Apache(z) => {
                z.stop();
                tokio::time::sleep(down_for).await;
                z.spawn();
                z.wait_ready().await;
            }
        }
    }
}

/// Sends a four-letter word and returns the answer, or `None` if there was none within
/// two seconds (a ZooKeeper still starting may take the command and never answer).
pub async fn four_letter_word(addr: SocketAddr, cmd: &str) -> Option<String> {
    zk_server::testing::four_letter_word(addr, cmd).await
}

/// Runs a scenario against our server, a 3-member ensemble of ours and Apache
/// ZooKeeper: `mod name { ours(), ours_ensemble(), apache_zookeeper() }`.
#[macro_export]
macro_rules! against_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours() {
                super::$scenario(super::common::Target::ours().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ours_ensemble() {
                super::$scenario(super::common::Target::ours_ensemble().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn apache_zookeeper() {
                super::$scenario(super::common::Target::apache().await).await;
            }
        }
    };
}
