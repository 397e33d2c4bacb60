//! ZooKeeper's `DataTree` as its own code changes it, for replaying a transaction log
//! onto a snapshot exactly as ZooKeeper restores itself (`FileTxnSnapLog.restore`).
//!
//! ZooKeeper's snapshots are fuzzy: written while transactions go on being applied,
//! so the transactions after a snapshot's zxid may already be in it. Its replay is
//! therefore forgiving in precise ways, and this module keeps them: a create of an
//! existing node fails but still raises the parent's cversion and pzxid (for `create`
//! only), a delete of a missing node still raises the parent's pzxid, a parent's
//! cversion and pzxid only ever rise, setData and setACL take the version the log
//! recorded. Errors of single operations are ignored, as ZooKeeper ignores them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use zk_proto::Acl;

use super::snapshot::{ApacheSnapshot, OPEN_UNSAFE_ACL_KEY};
use super::txnlog::{TxnBody, TxnEntry, TxnHeader};
use crate::tree::{NodeKind, StoredStat, Znode};

/// One znode: our own type, so the import moves the replayed tree into ours.
pub type ApacheNode = Znode;

/// The tree and the sessions, as ZooKeeper restores them.
#[derive(Debug, Clone, Default)]
pub struct ApacheTree {
    /// Nodes by path (the root is "/").
    pub nodes: HashMap<String, ApacheNode>,
    /// Open sessions and their timeouts (ms).
    pub sessions: BTreeMap<i64, i32>,
    /// The zxid of the last transaction in (the snapshot's, then each replayed one's).
    pub last_zxid: i64,
    ephemerals: HashMap<i64, BTreeSet<String>>,
}

/// Why a single operation failed (ZooKeeper goes on after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpError {
    NoNode,
    NodeExists,
}

/// `path`'s parent as ZooKeeper's `DataTree` keys it ("" is the root, "/" here).
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

impl ApacheTree {
    /// The tree of a snapshot whose name says it is at `zxid`.
    pub fn from_snapshot(snap: ApacheSnapshot, zxid: i64) -> Result<ApacheTree, String> {
        let mut acls: HashMap<i64, Arc<[Acl]>> = HashMap::new();
        for (key, acl) in snap.acls {
            acls.insert(key, acl.into());
        }
        let open: Arc<[Acl]> = Acl::open_unsafe().into();
        let mut tree = ApacheTree {
            sessions: snap.sessions.into_iter().collect(),
            last_zxid: zxid,
            ..ApacheTree::default()
        };
        for node in snap.nodes {
            let acl = match acls.get(&node.acl) {
                Some(acl) => acl.clone(),
                None if node.acl == OPEN_UNSAFE_ACL_KEY => open.clone(),
                None => {
                    return Err(format!(
                        "znode {:?} refers to ACL {} that the snapshot's ACL cache lacks",
                        node.path, node.acl
                    ))
                }
            };
            let path = if node.path.is_empty() {
                "/".to_string()
            } else {
                node.path
            };
            if path != "/" {
                let (parent, name) = split(&path);
                let Some(p) = tree.nodes.get_mut(parent) else {
                    return Err(format!(
                        "znode {path:?} comes before its parent {parent:?} (an invalid tree)"
                    ));
                };
                p.children.insert(name.into());
            }
            tree.index(&path, node.stat.ephemeral_owner);
            tree.nodes.insert(
                path,
                ApacheNode {
                    data: node.data,
                    acl,
                    stat: node.stat,
                    children: BTreeSet::new(),
                },
            );
        }
        if !tree.nodes.contains_key("/") {
            return Err("the snapshot has no root znode".into());
        }
        Ok(tree)
    }

    fn index(&mut self, path: &str, owner: i64) {
        if let NodeKind::Ephemeral(session) = NodeKind::of_owner(owner) {
            self.ephemerals
                .entry(session)
                .or_default()
                .insert(path.to_string());
        }
    }

    /// Applies a logged transaction (`FileTxnSnapLog.processTransaction`).
    pub fn apply(&mut self, entry: &TxnEntry) {
        let h = &entry.header;
        match &entry.body {
            TxnBody::CreateSession { timeout } => {
                self.sessions.insert(h.client_id, *timeout);
            }
            TxnBody::CloseSession { paths } => {
                self.sessions.remove(&h.client_id);
                self.kill_session(h.client_id, h.zxid, paths.as_deref());
            }
            TxnBody::Multi(ops) => {
                // A multi with a failed operation changed nothing.
                if !ops.iter().any(|op| matches!(op, TxnBody::Error { .. })) {
                    for op in ops {
                        self.apply_op(h, op);
                    }
                }
            }
            op => self.apply_op(h, op),
        }
        self.last_zxid = self.last_zxid.max(h.zxid);
    }

    fn apply_op(&mut self, h: &TxnHeader, op: &TxnBody) {
        match op {
            TxnBody::Create {
                op,
                path,
                data,
                acl,
                owner,
                parent_cversion,
            } => {
                let result = self.create_node(path, data.clone(), acl, *owner, *parent_cversion, h);
                // DataTree.processTxn: a replayed `create` (opcode 1 only) that finds
                // its node still moves the parent's cversion and pzxid.
                if result == Err(OpError::NodeExists) && *op == super::txnlog::op::CREATE {
                    let (parent, _) = split(path);
                    self.set_cversion_pzxid(parent, *parent_cversion, h.zxid);
                }
            }
            TxnBody::Delete { path } => {
                let _ = self.delete_node(path, h.zxid);
            }
            TxnBody::SetData {
                path,
                data,
                version,
            } => {
                if let Some(n) = self.nodes.get_mut(path.as_str()) {
                    n.data = data.clone();
                    n.stat.mtime = h.time;
                    n.stat.mzxid = h.zxid;
                    n.stat.version = *version;
                }
            }
            TxnBody::SetAcl { path, acl, version } => {
                if let Some(n) = self.nodes.get_mut(path.as_str()) {
                    n.stat.aversion = *version;
                    n.acl = acl.clone().into();
                }
            }
            TxnBody::CreateSession { .. }
            | TxnBody::CloseSession { .. }
            | TxnBody::Multi(_)
            | TxnBody::Check
            | TxnBody::Error { .. } => {}
        }
    }

    /// `DataTree.createNode`.
    fn create_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        h: &TxnHeader,
    ) -> Result<(), OpError> {
        let (parent_path, name) = split(path);
        let parent = self.nodes.get_mut(parent_path).ok_or(OpError::NoNode)?;
        if parent.children.contains(name) {
            return Err(OpError::NodeExists);
        }
        let cversion = if parent_cversion == -1 {
            parent.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        if cversion > parent.stat.cversion {
            parent.stat.cversion = cversion;
            parent.stat.pzxid = h.zxid;
        }
        parent.children.insert(name.into());
        let stat = StoredStat {
            czxid: h.zxid,
            mzxid: h.zxid,
            ctime: h.time,
            mtime: h.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: h.zxid,
        };
        self.index(path, owner);
        self.nodes.insert(
            path.to_string(),
            ApacheNode {
                data,
                acl: acl.into(),
                stat,
                children: BTreeSet::new(),
            },
        );
        Ok(())
    }

    /// `DataTree.deleteNode`: the parent's pzxid rises even if the node is gone.
    fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), OpError> {
        let (parent_path, name) = split(path);
        let parent = self.nodes.get_mut(parent_path).ok_or(OpError::NoNode)?;
        parent.children.remove(name);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let node = self.nodes.remove(path).ok_or(OpError::NoNode)?;
        if let NodeKind::Ephemeral(session) = NodeKind::of_owner(node.stat.ephemeral_owner) {
            if let Some(set) = self.ephemerals.get_mut(&session) {
                set.remove(path);
            }
        }
        Ok(())
    }

    /// `DataTree.setCversionPzxid`.
    fn set_cversion_pzxid(&mut self, path: &str, cversion: i32, zxid: i64) {
        if let Some(n) = self.nodes.get_mut(path) {
            let cversion = if cversion == -1 {
                n.stat.cversion.wrapping_add(1)
            } else {
                cversion
            };
            if cversion > n.stat.cversion {
                n.stat.cversion = cversion;
                n.stat.pzxid = zxid;
            }
        }
    }

    /// `DataTree.killSession`: the paths the leader listed, then any other ephemeral
    /// of the session.
    fn kill_session(&mut self, session: i64, zxid: i64, listed: Option<&[String]>) {
        let mut own = self.ephemerals.remove(&session).unwrap_or_default();
        for path in listed.unwrap_or_default() {
            let _ = self.delete_node(path, zxid);
            own.remove(path);
        }
        for path in own {
            let _ = self.delete_node(&path, zxid);
        }
    }

    /// Removes the nodes a fuzzy replay left without a parent (no client can list
    /// them); returns how many.
    pub fn drop_unreachable(&mut self) -> usize {
        let mut dropped = 0;
        loop {
            let orphans: Vec<String> = self
                .nodes
                .keys()
                .filter(|path| {
                    let (parent, name) = split(path);
                    path.as_str() != "/"
                        && !self
                            .nodes
                            .get(parent)
                            .is_some_and(|p| p.children.contains(name))
                })
                .cloned()
                .collect();
            if orphans.is_empty() {
                return dropped;
            }
            dropped += orphans.len();
            for path in orphans {
                self.nodes.remove(&path);
            }
        }
    }
}
