//! [`PersistentNode`]: a node that stays there until closed (Curator's
//! `PersistentNode`): created in the background as soon as the client is connected,
//! created again if someone deletes it, after a reconnection that finds it gone, and
//! after a session expiry on a client that renews sessions (an ephemeral one goes
//! with its session). Sequential nodes are created with a protection GUID, so a
//! create retried after a lost answer finds its own node.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server::testing::TestingServer::start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! use zk_recipes::{NodeMode, PersistentNode};
//! let node = PersistentNode::new(&client, "/services/api/host-1", NodeMode::Ephemeral, b"10.0.0.1:80");
//! node.start();
//! node.wait_for_initial_create(std::time::Duration::from_secs(10)).await;
//! // ... the node is kept while this process runs ...
//! node.close().await;
//! # Ok(()) }
//! ```

use std::time::Duration;

use zk_client::{Client, CreateMode};

use crate::error::Result;
use crate::kept_node::{Foreign, KeptNode};

/// What kind of node a [`PersistentNode`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMode {
    /// A persistent node at the path.
    Persistent,
    /// An ephemeral node at the path (gone with the session, then made again).
    Ephemeral,
    /// A persistent node named `<path><sequence>` (protected).
    PersistentSequential,
    /// An ephemeral node named `<path><sequence>` (protected).
    EphemeralSequential,
}

impl NodeMode {
    fn create_mode(self) -> CreateMode {
        match self {
            NodeMode::Persistent => CreateMode::Persistent,
            NodeMode::Ephemeral => CreateMode::Ephemeral,
            NodeMode::PersistentSequential => CreateMode::PersistentSequential,
            NodeMode::EphemeralSequential => CreateMode::EphemeralSequential,
        }
    }
}

/// A node kept in place until [`PersistentNode::close`].
#[derive(Debug)]
pub struct PersistentNode {
    node: KeptNode,
}

impl PersistentNode {
    /// A node at `path` of `mode` with `data`, kept once [`PersistentNode::start`]ed.
    /// A node already at the path is taken over (its data set to ours), as Curator
    /// does.
    pub fn new(client: &Client, path: &str, mode: NodeMode, data: &[u8]) -> PersistentNode {
        PersistentNode {
            node: KeptNode::new(
                client,
                path.trim_end_matches('/'),
                mode.create_mode(),
                data,
                Foreign::TakeOver,
            ),
        }
    }

    /// Starts keeping the node in the background (again: nothing).
    pub fn start(&self) {
        self.node.start();
    }

    /// Waits at most `timeout` for the node to exist: whether it does.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        self.node.wait_made(timeout).await
    }

    /// The node's path as created (with its sequence), while it exists as far as
    /// this keeper knows.
    pub fn actual_path(&self) -> Option<String> {
        self.node.actual_path()
    }

    /// Changes the node's data (kept for every re-creation).
    pub async fn set_data(&self, data: &[u8]) -> Result<()> {
        self.node.set_data(data).await
    }

    /// Stops keeping the node, deletes it and waits until that is done. Dropping a
    /// `PersistentNode` does the same in the background.
    pub async fn close(self) {
        self.node.close().await
    }
}
