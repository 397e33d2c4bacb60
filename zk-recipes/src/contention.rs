//! Waiting one's turn in a line of sequential nodes, the loop shared by the lock
//! recipes: create a protected ephemeral-sequential node, list the line in sequence
//! order, ask the recipe's rule whether it is our turn, and if not wait for the one
//! node the rule names to go (never the whole directory: no herd effect).

use zk_client::Client;
use zk_proto::ErrorCode;

use crate::error::{Error, Result};
use crate::protected::{
    create_protected, protection_prefix, remove_twins, sorted_by_sequence_of, CreatedNode,
    NodeGuard,
};
use crate::retry::with_retries;

/// What a recipe's rule says of our place in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Turn {
    /// We hold it.
    Ours,
    /// Not yet: wait for this node (a name in the line) to go.
    After(String),
}

/// A line of contenders: nodes named `<prefix><name><sequence>` under `dir`, ordered
/// by sequence across every name in `names` (readers and writers share one line).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub client: &'a Client,
    pub dir: &'a str,
    pub names: &'a [&'a str],
}

impl Line<'_> {
    /// The line's node names, first first (empty when the directory is missing).
    pub(crate) async fn members(&self) -> Result<Vec<String>> {
        match with_retries(self.client, || self.client.get_children(self.dir)).await {
            Ok(children) => Ok(sorted_by_sequence_of(children, self.names)),
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The data of the line's nodes as text (the participant ids elections store),
    /// first first; nodes gone between the listing and the read are left out.
    pub(crate) async fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for name in self.members().await? {
            let path = format!("{}/{name}", self.dir);
            match with_retries(self.client, || self.client.get_data(&path)).await {
                Ok((data, _)) => ids.push(String::from_utf8_lossy(&data).into_owned()),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ids)
    }

    /// Joins the line as `name` (with `data` in its node) and waits until `rule` (given the line and our index
    /// in it) says it is our turn, or until `deadline`: `Ok(None)` then, and our node
    /// is deleted. Dropping the future deletes our node too.
    pub(crate) async fn wait_turn(
        &self,
        name: &str,
        data: &[u8],
        deadline: Option<tokio::time::Instant>,
        rule: impl Fn(&[String], usize) -> Turn,
    ) -> Result<Option<(CreatedNode, NodeGuard)>> {
        let node =
            create_protected(self.client, self.dir, &protection_prefix(), name, data).await?;
        let guard = NodeGuard::new(self.client, &node.path);
        let ours = node.name().to_string();
        loop {
            let line = with_retries(self.client, || self.client.get_children(self.dir)).await?;
            if remove_twins(self.client, self.dir, &line, &ours).await? {
                continue;
            }
            let line = sorted_by_sequence_of(line, self.names);
            let Some(index) = line.iter().position(|c| *c == ours) else {
                // Our ephemeral is gone: the session expired, or someone deleted it.
                guard.keep();
                return Err(Error::NodeLost(node.path));
            };
            let wait_for = match rule(&line, index) {
                Turn::Ours => return Ok(Some((node, guard))),
                Turn::After(other) => format!("{}/{other}", self.dir),
            };
            let (read, gone) = self.client.get_data_and_watch(&wait_for);
            match read.await {
                Ok(_) => {}
                Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
                Err(e) if e.is_retryable() => continue,
                Err(e) => return Err(e.into()),
            }
            let waited = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, gone).await {
                    Ok(w) => w,
                    Err(_) => {
                        // Out of time: take our node away before saying so.
                        guard.remove().await?;
                        return Ok(None);
                    }
                },
                None => gone.await,
            };
            if let Err(e) = waited {
                if e.is_session_lost() {
                    return Err(e.into());
                }
            }
        }
    }
}

/// The mutex rule (Curator's `StandardLockInternalsDriver` with one lease): first in
/// line holds it; everyone else waits for the node just before theirs.
pub(crate) fn first_in_line(line: &[String], index: usize) -> Turn {
    match index {
        0 => Turn::Ours,
        i => Turn::After(line[i - 1].clone()),
    }
}
