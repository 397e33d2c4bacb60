//! The znode tree: storage and the primitive mutations ZooKeeper's `DataTree` performs.
//!
//! Validation (existence, versions, ACLs) belongs to [`crate::database`]; this module
//! only keeps the tree and its indices (ephemerals by session, containers, TTL nodes,
//! quotas) consistent. A *journal* records how to undo every change so that a failed
//! multi can be rolled back exactly.
//!
//! # Layout (about 190 bytes per znode of 100 bytes of data)
//!
//! - `build`: the initial tree, and a tree of given znodes (another ZooKeeper's data,
//!   a version-1 snapshot).
//! - `slab`: the znodes, fixed-size `node`s of 72 bytes addressed by a `u32` id.
//! - `blob`: each znode's data in one thin block (`[len][bytes]`), small ones in
//!   size-classed arena pages.
//! - `family`: a parent's side (children, pzxid, cversion), only for znodes that have
//!   or had children.
//! - `children`: each parent's children as ids sorted by name, in bounded chunks.
//! - `index`: every znode by (parent id, name), so a path resolves one component at a
//!   time without storing any path.
//! - `acl_table`: each distinct ACL once, reference counted.
//! - `view`: [`NodeRef`], the read-only view of a znode the rest of the server uses.
//! - `journal`: the undo log of a multi.
//! - [`encode`]: the snapshot encoding of the tree (version 2).
//! - `check`: the invariants, checked by tests and fuzzing, and the memory footprint.
//! - [`quota`]: ZooKeeper's quota nodes, and the tree's upkeep of their usage.
//!
//! Only ephemeral, container and TTL znodes have an `ephemeralOwner`; it lives in a
//! side map, and the indices of those znodes are kept by path.

mod acl_table;
mod blob;
mod build;
mod check;
mod children;
pub mod encode;
mod family;
mod index;
mod journal;
// Feature `fuzzing` uses only its version-1 snapshot encoding (`storage_files` seeds).
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod model;
mod node;
pub mod quota;
mod slab;
mod view;
mod znode;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use zk_proto::path::{basename, parent};
use zk_proto::{Acl, Stat};

use acl_table::AclTable;
use blob::Blob;
use family::Families;
use index::PathIndex;
use journal::Journal;
use node::{Node, NodeId, StatFields, NO_NODE, ROOT};
use slab::Slab;

pub use check::Footprint;
pub use view::NodeRef;
pub use znode::{ttl_owner, NodeKind, StoredStat, Znode, CONTAINER_OWNER, MAX_TTL};

/// The root of ZooKeeper's own subtree.
pub const ZOOKEEPER_PATH: &str = "/zookeeper";
/// Where quotas live.
pub const QUOTA_PATH: &str = "/zookeeper/quota";
/// Where the ensemble configuration is published.
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// The znode tree with its indices.
#[derive(Clone)]
pub struct DataTree {
    slab: Slab,
    index: PathIndex,
    acls: AclTable,
    /// The parent side of the znodes that have or had children (flag FAMILY).
    families: Families,
    /// `ephemeralOwner` of the znodes that have one (flag OWNED).
    owners: HashMap<NodeId, i64>,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    data_size: u64,
    /// Paths with a quota (a `zookeeper_limits` node under /zookeeper/quota).
    quota_roots: BTreeSet<String>,
    journal: Option<Journal>,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl std::fmt::Debug for DataTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataTree")
            .field("znodes", &self.node_count())
            .field("data_size", &self.data_size)
            .finish_non_exhaustive()
    }
}

/// Equal trees hold the same paths with the same data, ACLs, Stats and children
/// (wherever each keeps them).
impl PartialEq for DataTree {
    fn eq(&self, other: &Self) -> bool {
        self.node_count() == other.node_count()
            && self.iter().all(|(path, a)| {
                other.get(&path).is_some_and(|b| {
                    a.data_slice() == b.data_slice()
                        && a.acl() == b.acl()
                        && a.stored_stat() == b.stored_stat()
                        && a.children().eq(b.children())
                })
            })
    }
}

/// Data as the tree keeps it: a blob (none when empty or null, shared when large) and
/// whether it is null.
fn bytes_to_blob(data: Option<&Bytes>) -> (Option<Blob>, bool) {
    match data {
        None => (None, true),
        Some(b) if b.is_empty() => (None, false),
        Some(b) => (Some(Blob::new(b)), false),
    }
}

impl DataTree {
    /// Every znode and its path, parents before children, siblings in name order.
    pub fn iter(&self) -> impl Iterator<Item = (String, NodeRef<'_>)> {
        let mut out = Vec::with_capacity(self.node_count());
        let mut stack = vec![(ROOT, "/".to_string())];
        while let Some((id, path)) = stack.pop() {
            let Some(node) = self.node_ref(id) else {
                continue;
            };
            if let Some(children) = self.children_of(id) {
                for child in children.iter().rev() {
                    stack.push((child, child_path(&path, self.slab.name_str(child))));
                }
            }
            out.push((path, node));
        }
        out.into_iter()
    }

    /// Every znode, in no particular order (no paths built).
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_>> {
        self.slab
            .iter()
            .filter(|(_, n)| !n.is_limbo())
            .map(|(id, node)| NodeRef::new(self, id, node))
    }

    /// Stores a new znode under `parent_id` and links it into the tree and the
    /// indices; `None` (and no change) if `path` is taken or the tree is full.
    fn add_node(
        &mut self,
        parent_id: NodeId,
        path: &str,
        (data, null): (Option<Blob>, bool),
        acl: &[Acl],
        stat: StatFields,
        owner: i64,
    ) -> Option<NodeId> {
        let name = basename(path);
        if self
            .index
            .find(&self.slab, parent_id, name.as_bytes())
            .is_some()
        {
            return None;
        }
        let acl = self.acls.acquire(acl);
        let placed = self.slab.place_name(name);
        let mut node = Node::new(parent_id, placed, acl, stat);
        node.replace_data(data, null);
        node.set_owned(owner != 0);
        let Some(id) = self.slab.insert(node) else {
            tracing::error!(path, "the tree is full: no znode id left");
            self.acls.release(acl);
            return None;
        };
        if stat.pzxid != stat.czxid || stat.cversion != 0 {
            self.set_stat_fields(id, &stat);
        }
        if owner != 0 {
            self.owners.insert(id, owner);
        }
        self.link(id, path);
        Some(id)
    }

    /// Puts stored node `id` (at `path`) into its parent's children, the path index
    /// and the kind indices, and counts its size.
    fn link(&mut self, id: NodeId, path: &str) {
        let Some(node) = self.slab.get(id) else {
            return;
        };
        let parent_id = node.parent;
        let size = (path.len() + node.data_len()) as u64;
        let owner = self.owner(id);
        let Some(family) = self.family_mut(parent_id) else {
            return;
        };
        let mut list = std::mem::take(&mut family.children);
        let slab = &self.slab;
        list.insert(id, slab.name(id), |c| slab.name(c));
        if let Some(family) = self.families.get_mut(&parent_id) {
            family.children = list;
        }
        self.index.insert(&self.slab, id);
        // Wrapping: a rollback passes through sizes it then restores wholesale.
        self.data_size = self.data_size.wrapping_add(size);
        self.index_kind(path, owner);
        if let Some(root) = quota::quota_root_of(path, quota::LIMIT_NODE) {
            self.quota_roots.insert(root);
        }
    }

    /// Takes node `id` (at `path`) out of its parent's children, the path index and
    /// the kind indices, and uncounts its size. The node stays stored.
    fn unlink(&mut self, id: NodeId, path: &str) {
        let Some(node) = self.slab.get(id) else {
            return;
        };
        let parent_id = node.parent;
        let size = (path.len() + node.data_len()) as u64;
        let owner = self.owner(id);
        self.index.remove(&self.slab, id);
        if self.family(parent_id).is_some() {
            if let Some(family) = self.families.get_mut(&parent_id) {
                let mut list = std::mem::take(&mut family.children);
                let slab = &self.slab;
                list.remove(slab.name(id), |c| slab.name(c));
                if let Some(family) = self.families.get_mut(&parent_id) {
                    family.children = list;
                }
            }
            self.settle_family(parent_id);
        }
        self.data_size = self.data_size.wrapping_sub(size);
        self.unindex_kind(path, owner);
        if let Some(root) = quota::quota_root_of(path, quota::LIMIT_NODE) {
            self.quota_roots.remove(&root);
        }
    }

    /// Frees unlinked node `id`: its slot, ACL reference, owner and family entries.
    fn release(&mut self, id: NodeId) {
        self.drop_family(id);
        if let Some(node) = self.slab.remove(id) {
            self.acls.release(node.acl);
        }
        self.owners.remove(&id);
    }

    /// The `ephemeralOwner` stored for node `id` (0: none).
    fn owner(&self, id: NodeId) -> i64 {
        match self.slab.get(id) {
            Some(node) if node.is_owned() => self.owners.get(&id).copied().unwrap_or(0),
            _ => 0,
        }
    }

    fn index_kind(&mut self, path: &str, owner: i64) {
        match NodeKind::of_owner(owner) {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.insert(path.to_string());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.to_string());
            }
            NodeKind::Ephemeral(session) => {
                self.ephemerals
                    .entry(session)
                    .or_default()
                    .insert(path.to_string());
            }
        }
    }

    fn unindex_kind(&mut self, path: &str, owner: i64) {
        match NodeKind::of_owner(owner) {
            NodeKind::Persistent => {}
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Ephemeral(session) => {
                if let Some(set) = self.ephemerals.get_mut(&session) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
        }
    }

    /// The id of the znode at `path` (one index probe per component).
    fn lookup(&self, path: &str) -> Option<NodeId> {
        if path == "/" {
            return self.slab.get(ROOT).map(|_| ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut id = ROOT;
        for name in rest.split('/') {
            id = self.index.find(&self.slab, id, name.as_bytes())?;
        }
        Some(id)
    }

    /// The path of node `id`, rebuilt from its ancestors' names.
    fn path_of(&self, id: NodeId) -> String {
        let mut names = Vec::new();
        let mut at = id;
        while let Some(node) = self.slab.get(at) {
            if node.parent == NO_NODE {
                break;
            }
            names.push(self.slab.name_of(node));
            at = node.parent;
        }
        if names.is_empty() {
            return "/".to_string();
        }
        let mut path = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(std::str::from_utf8(name).unwrap_or_default());
        }
        path
    }

    fn node_ref(&self, id: NodeId) -> Option<NodeRef<'_>> {
        self.slab.get(id).map(|node| NodeRef::new(self, id, node))
    }

    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<NodeRef<'_>> {
        self.node_ref(self.lookup(path)?)
    }

    /// The Stat of the znode at `path`.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.get(path).map(|n| n.stat())
    }

    /// Number of znodes, the root included.
    pub fn node_count(&self) -> usize {
        self.slab.len()
    }

    /// Approximate bytes of paths and data, as ZooKeeper's `approximateDataSize`.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// Paths of the ephemerals `session` owns, sorted.
    pub fn ephemerals_of(&self, session: i64) -> impl Iterator<Item = &str> {
        self.ephemerals
            .get(&session)
            .into_iter()
            .flat_map(|s| s.iter().map(String::as_str))
    }

    /// Every session owning ephemerals, with its paths.
    pub fn all_ephemerals(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    /// Number of ephemeral znodes.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Paths of container znodes.
    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    /// Paths of TTL znodes.
    pub fn ttl_nodes(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    /// Number of descendants of `path` (not counting itself).
    pub fn descendant_count(&self, path: &str) -> usize {
        let Some(id) = self.lookup(path) else {
            return 0;
        };
        self.subtree(id).count() - 1
    }

    /// Node `id` and every descendant (ids, depth first).
    fn subtree(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let mut stack = vec![id];
        std::iter::from_fn(move || {
            let id = stack.pop()?;
            if let Some(children) = self.children_of(id) {
                stack.extend(children.iter());
            }
            Some(id)
        })
    }

    /// Every path in the tree, sorted (for digests, dumps and tests).
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.iter().map(|(p, _)| p).collect();
        paths.sort_unstable();
        paths
    }

    /// A digest of the replicated tree — every znode's path, data, ACL and Stat, except
    /// `/zookeeper/config`, which each member writes from its own configuration. Members
    /// that applied the same transactions have the same digest (stable within one build).
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut nodes: Vec<(String, NodeRef<'_>)> = self.iter().collect();
        nodes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut hasher = std::hash::DefaultHasher::new();
        for (path, node) in nodes {
            if path == CONFIG_PATH {
                continue;
            }
            path.hash(&mut hasher);
            node.data_slice().hash(&mut hasher);
            format!("{:?}{:?}", node.stat(), node.acl()).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Adds a znode under an existing parent: the parent's create count (stored
    /// cversion) goes up by one and its pzxid becomes `zxid`. Returns the new Stat;
    /// `None` (and no change) if the parent is missing or the path taken.
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        ephemeral_owner: i64,
        zxid: i64,
        time: i64,
    ) -> Option<Stat> {
        let parent_id = self.lookup(parent(path))?;
        if path == "/"
            || self
                .index
                .find(&self.slab, parent_id, basename(path).as_bytes())
                .is_some()
        {
            return None;
        }
        self.save_stat(parent_id);
        let stat = StatFields {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
        };
        let data_len = data.as_ref().map_or(0, Bytes::len) as i64;
        let id = self.add_node(
            parent_id,
            path,
            bytes_to_blob(data.as_ref()),
            acl,
            stat,
            ephemeral_owner,
        )?;
        self.journal_created(id);
        if let Some(p) = self.family_mut(parent_id) {
            p.cversion = p.cversion.wrapping_add(1);
            p.pzxid = zxid;
        }
        let stat = self.node_ref(id).map(|n| n.stat());
        if quota::quota_root_of(path, quota::LIMIT_NODE).is_some() {
            // Indexed as a quota root by `link`.
        } else if let Some(root) = quota::quota_root_of(path, quota::STAT_NODE) {
            self.refresh_quota_usage(&root);
        } else {
            self.adjust_quota(path, 1, data_len);
        }
        stat
    }

    /// Removes a childless znode; the parent's pzxid rises to `zxid` (its cversion is
    /// left alone, as ZooKeeper's `DataTree.deleteNode` leaves it). Returns the ACL
    /// it had; `None` (and no change) if it is missing or has children.
    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Option<std::sync::Arc<[Acl]>> {
        let id = self.lookup(path).filter(|&id| id != ROOT)?;
        if self.children_of(id).is_some() {
            return None;
        }
        let node = self.slab.get(id)?;
        let (parent_id, data_len, acl) = (node.parent, node.data_len(), node.acl);
        let acl = self.acls.get(acl).clone();
        self.save_stat(parent_id);
        self.unlink(id, path);
        let pzxid = self.stat_fields(parent_id).map_or(zxid, |s| s.pzxid);
        if zxid > pzxid {
            if let Some(p) = self.family_mut(parent_id) {
                p.pzxid = zxid;
            }
            self.settle_family(parent_id);
        }
        self.adjust_quota(path, -1, -(data_len as i64));
        self.journal_deleted(id);
        Some(acl)
    }

    /// Replaces a znode's data and sets its version. Returns the new Stat.
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Option<Stat> {
        let id = self.lookup(path)?;
        self.save_stat(id);
        let (blob, null) = bytes_to_blob(data.as_ref());
        let (old, new) = self.replace_data(id, blob, null)?;
        let node = self.slab.get_mut(id)?;
        node.version = version;
        node.mzxid = zxid;
        node.mtime = time;
        let stat = self.node_ref(id).map(|n| n.stat());
        self.adjust_quota(path, 0, new as i64 - old as i64);
        stat
    }

    /// Swaps node `id`'s data (the old is kept by the journal, if open), counting the
    /// size; returns the old and new lengths.
    fn replace_data(&mut self, id: NodeId, blob: Option<Blob>, null: bool) -> Option<(u64, u64)> {
        let node = self.slab.get_mut(id)?;
        let new = blob.as_ref().map_or(0, Blob::len) as u64;
        let (old_blob, old_null) = node.replace_data(blob, null);
        let old = old_blob.as_ref().map_or(0, Blob::len) as u64;
        self.data_size = self.data_size.wrapping_sub(old).wrapping_add(new);
        self.journal_data(id, old_blob, old_null);
        Some((old, new))
    }

    /// Replaces a znode's ACL and sets its aversion. Returns the new Stat.
    pub fn set_acl(&mut self, path: &str, acl: Vec<Acl>, aversion: i32) -> Option<Stat> {
        let id = self.lookup(path)?;
        self.save_stat(id);
        let index = self.acls.acquire(&acl);
        let node = self.slab.get_mut(id)?;
        let old = std::mem::replace(&mut node.acl, index);
        node.aversion = aversion;
        self.journal_acl(id, old);
        self.node_ref(id).map(|n| n.stat())
    }
}

impl StatFields {
    /// The stored fields of a full stored Stat (its owner aside).
    fn of(s: &StoredStat) -> StatFields {
        StatFields {
            czxid: s.czxid,
            mzxid: s.mzxid,
            pzxid: s.pzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
        }
    }
}

/// `parent/child` for a child name.
pub fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests;
