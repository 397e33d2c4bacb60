//! The tree as it was before the compact layout (a hash map of paths to boxed
//! znodes), kept as the model the compact tree is tested against: same digests, paths,
//! Stats and children after any sequence of changes, and the producer of version-1
//! snapshots (`ZKRSSNP1`) for the upgrade test.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zk_proto::path::{basename, parent};
use zk_proto::{Acl, Stat};

use super::{
    child_path, quota, NodeKind, StoredStat, Znode, CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH,
};

/// The znode tree with its indices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelTree {
    /// Keys and nodes boxed: a million-node table then costs a pointer pair per slot,
    /// not a whole znode per slot (hash tables run between half and 7/8 full).
    nodes: HashMap<Box<str>, Box<Znode>>,
    #[serde(skip)]
    acls: AclCache,
    #[serde(skip)]
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    #[serde(skip)]
    containers: BTreeSet<String>,
    #[serde(skip)]
    ttls: BTreeSet<String>,
    #[serde(skip)]
    data_size: u64,
    /// Paths with a quota (a `zookeeper_limits` node under /zookeeper/quota).
    #[serde(skip)]
    quota_roots: BTreeSet<String>,
    #[serde(skip)]
    journal: Option<Journal>,
}

/// Prior states of the paths a multi touched, each recorded once, in touch order.
#[derive(Debug, Clone, Default)]
struct Journal {
    entries: Vec<(String, Option<Box<Znode>>)>,
    recorded: HashSet<String>,
}

/// One shared copy of each distinct ACL (most trees have a handful for millions of
/// znodes), as ZooKeeper's `ReferenceCountedACLCache`. ACLs no znode uses any more are
/// dropped when the cache has doubled since it was last swept.
#[derive(Debug, Clone)]
struct AclCache {
    by_acl: HashMap<Vec<Acl>, Arc<[Acl]>>,
    sweep_at: usize,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache {
            by_acl: HashMap::new(),
            sweep_at: 64,
        }
    }
}

impl AclCache {
    /// The shared copy of `acl`.
    fn intern(&mut self, acl: &[Acl]) -> Arc<[Acl]> {
        if let Some(shared) = self.by_acl.get(acl) {
            return shared.clone();
        }
        if self.by_acl.len() >= self.sweep_at {
            self.by_acl.retain(|_, a| Arc::strong_count(a) > 1);
            self.sweep_at = (self.by_acl.len() * 2).max(64);
        }
        let shared: Arc<[Acl]> = acl.into();
        self.by_acl.insert(acl.to_vec(), shared.clone());
        shared
    }
}

impl Default for ModelTree {
    fn default() -> Self {
        ModelTree::new()
    }
}

impl PartialEq for ModelTree {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl ModelTree {
    /// A tree holding what every ZooKeeper starts with: `/`, `/zookeeper`,
    /// `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> ModelTree {
        let mut tree = ModelTree {
            nodes: HashMap::new(),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_size: 0,
            quota_roots: BTreeSet::new(),
            journal: None,
        };
        let root = Znode::new(
            Some(Bytes::new()),
            tree.acls.intern(&Acl::open_unsafe()),
            StoredStat::default(),
        );
        tree.nodes.insert("/".into(), Box::new(root));
        tree.insert_system_node(ZOOKEEPER_PATH, Acl::open_unsafe());
        tree.insert_system_node(QUOTA_PATH, Acl::open_unsafe());
        tree.insert_system_node(CONFIG_PATH, Acl::read_unsafe());
        // ZooKeeper reports aversion -1 for /zookeeper/config.
        if let Some(config) = tree.nodes.get_mut(CONFIG_PATH) {
            config.stat.aversion = -1;
        }
        tree.rebuild_indices();
        tree
    }

    /// A model holding exactly the znodes of `tree`.
    pub fn from_tree(tree: &super::DataTree) -> ModelTree {
        let mut model = ModelTree::new();
        model.nodes = tree
            .iter()
            .map(|(path, node)| (path.into(), Box::new(node.to_znode())))
            .collect();
        model.rebuild_indices();
        model
    }

    /// Every znode and its path, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Znode)> {
        self.nodes.iter().map(|(p, n)| (&**p, &**n))
    }

    /// System nodes have zero Stat fields and leave their parent's Stat alone, as in
    /// ZooKeeper.
    fn insert_system_node(&mut self, path: &str, acl: Vec<Acl>) {
        let node = Znode::new(
            Some(Bytes::new()),
            self.acls.intern(&acl),
            StoredStat::default(),
        );
        if let Some(p) = self.nodes.get_mut(parent(path)) {
            p.children.insert(basename(path).into());
        }
        self.nodes.insert(path.into(), Box::new(node));
    }

    /// Recomputes the indices and the data size from the nodes, and shares equal ACLs
    /// again (after loading a snapshot).
    pub fn rebuild_indices(&mut self) {
        let mut acls = std::mem::take(&mut self.acls);
        for node in self.nodes.values_mut() {
            node.acl = acls.intern(&node.acl);
        }
        self.acls = acls;
        self.ephemerals.clear();
        self.containers.clear();
        self.ttls.clear();
        self.quota_roots.clear();
        self.data_size = 0;
        let paths: Vec<(String, i64, u64)> = self
            .nodes
            .iter()
            .map(|(p, n)| (p.to_string(), n.stat.ephemeral_owner, node_size(p, n)))
            .collect();
        for (path, owner, size) in paths {
            self.data_size += size;
            self.index(&path, owner);
            if let Some(root) = quota::quota_root_of(&path, quota::LIMIT_NODE) {
                self.quota_roots.insert(root);
            }
        }
    }

    fn index(&mut self, path: &str, owner: i64) {
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

    fn unindex(&mut self, path: &str, owner: i64) {
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

    /// The znode at `path`.
    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// Approximate bytes of paths and data, as ZooKeeper's `approximateDataSize`.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// Every session owning ephemerals, with its paths.
    pub fn all_ephemerals(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    /// Paths of container znodes.
    pub fn containers(&self) -> &BTreeSet<String> {
        &self.containers
    }

    /// Paths of TTL znodes.
    pub fn ttl_nodes(&self) -> &BTreeSet<String> {
        &self.ttls
    }

    /// Every path in the tree, sorted (for digests, dumps and tests).
    pub fn paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = self.nodes.keys().map(|k| &**k).collect();
        paths.sort_unstable();
        paths
    }

    /// A digest of the replicated tree — every znode's path, data, ACL and Stat, except
    /// `/zookeeper/config`, which each member writes from its own configuration. Members
    /// that applied the same transactions have the same digest (stable within one build).
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        for path in self.paths() {
            if path == CONFIG_PATH {
                continue;
            }
            let Some(node) = self.nodes.get(path) else {
                continue;
            };
            path.hash(&mut hasher);
            node.data.as_deref().hash(&mut hasher);
            format!("{:?}{:?}", node.stat(), node.acl).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Checks the tree's invariants, for tests and fuzzing (it walks every znode):
    /// the root exists; every other znode's parent exists and names it as a child, and
    /// every child named exists; the ephemeral, container, TTL and quota indices and the
    /// data size equal what the znodes say; no multi's journal is left open; zxids are
    /// ordered (`czxid <= pzxid`, and `czxid <= mzxid` except on the system nodes).
    pub fn check_consistency(&self) -> Result<(), String> {
        if !self.nodes.contains_key("/") {
            return Err("the root is missing".into());
        }
        if self.journal.is_some() {
            return Err("a multi's journal is still open".into());
        }
        let mut ephemerals: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        let mut containers = BTreeSet::new();
        let mut ttls = BTreeSet::new();
        let mut quota_roots = BTreeSet::new();
        let mut data_size = 0u64;
        for (path, node) in &self.nodes {
            let path: &str = path;
            data_size += node_size(path, node);
            if path != "/" {
                let parent_path = parent(path);
                let listed = self
                    .nodes
                    .get(parent_path)
                    .is_some_and(|p| p.children.contains(basename(path)));
                if !listed {
                    return Err(format!("{path} is not a child of {parent_path}"));
                }
            }
            for child in &node.children {
                let child = child_path(path, child);
                if !self.nodes.contains_key(child.as_str()) {
                    return Err(format!("{path} lists a missing child {child}"));
                }
            }
            match NodeKind::of_owner(node.stat.ephemeral_owner) {
                NodeKind::Persistent => {}
                NodeKind::Container => {
                    containers.insert(path.to_string());
                }
                NodeKind::Ttl(_) => {
                    ttls.insert(path.to_string());
                }
                NodeKind::Ephemeral(session) => {
                    if !node.children.is_empty() {
                        return Err(format!("ephemeral {path} has children"));
                    }
                    ephemerals
                        .entry(session)
                        .or_default()
                        .insert(path.to_string());
                }
            }
            if let Some(root) = quota::quota_root_of(path, quota::LIMIT_NODE) {
                quota_roots.insert(root);
            }
            let s = &node.stat;
            if s.czxid > s.pzxid || (s.czxid > s.mzxid && s.czxid != 0) {
                return Err(format!("{path} has zxids out of order: {s:?}"));
            }
        }
        if ephemerals != self.ephemerals {
            return Err(format!(
                "ephemeral index {:?} != znodes' {ephemerals:?}",
                self.ephemerals
            ));
        }
        if containers != self.containers {
            return Err(format!(
                "container index {:?} != znodes' {containers:?}",
                self.containers
            ));
        }
        if ttls != self.ttls {
            return Err(format!("TTL index {:?} != znodes' {ttls:?}", self.ttls));
        }
        if quota_roots != self.quota_roots {
            return Err(format!(
                "quota roots {:?} != znodes' {quota_roots:?}",
                self.quota_roots
            ));
        }
        if data_size != self.data_size {
            return Err(format!(
                "data size {} != znodes' {data_size}",
                self.data_size
            ));
        }
        Ok(())
    }

    /// Starts recording prior states so the changes that follow can be rolled back.
    pub fn begin_journal(&mut self) {
        self.journal = Some(Journal::default());
    }

    /// Keeps the changes made since [`ModelTree::begin_journal`].
    pub fn commit_journal(&mut self) {
        self.journal = None;
    }

    /// Undoes every change made since [`ModelTree::begin_journal`].
    pub fn rollback_journal(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        for (path, prior) in journal.entries {
            // The one change to the code before the compact tree: a rolled-back
            // create of a quota's limits node no longer leaves its root behind.
            let root = quota::quota_root_of(&path, quota::LIMIT_NODE);
            if let Some(current) = self.nodes.remove(path.as_str()) {
                self.data_size -= node_size(&path, &current);
                self.unindex(&path, current.stat.ephemeral_owner);
                if let Some(root) = &root {
                    self.quota_roots.remove(root);
                }
            }
            if let Some(node) = prior {
                self.data_size += node_size(&path, &node);
                self.index(&path, node.stat.ephemeral_owner);
                self.nodes.insert(path.into(), node);
                if let Some(root) = root {
                    self.quota_roots.insert(root);
                }
            }
        }
    }

    fn record(&mut self, path: &str) {
        if let Some(journal) = self.journal.as_mut() {
            if journal.recorded.insert(path.to_string()) {
                journal
                    .entries
                    .push((path.to_string(), self.nodes.get(path).cloned()));
            }
        }
    }

    /// Adds a znode under an existing parent: the parent's create count (stored
    /// cversion) goes up by one and its pzxid becomes `zxid`. Returns the new Stat.
    ///
    /// The caller has checked that the parent exists and the path is free.
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        ephemeral_owner: i64,
        zxid: i64,
        time: i64,
    ) -> Stat {
        let parent_path = parent(path);
        self.record(parent_path);
        self.record(path);
        if let Some(p) = self.nodes.get_mut(parent_path) {
            p.stat.cversion = p.stat.cversion.wrapping_add(1);
            p.stat.pzxid = zxid;
            p.children.insert(basename(path).into());
        }
        let node = Znode::new(
            data,
            self.acls.intern(acl),
            StoredStat {
                czxid: zxid,
                mzxid: zxid,
                ctime: time,
                mtime: time,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner,
                pzxid: zxid,
            },
        );
        let stat = node.stat();
        let data_len = node.data_len() as i64;
        self.data_size += node_size(path, &node);
        self.index(path, ephemeral_owner);
        self.nodes.insert(path.into(), Box::new(node));
        if let Some(root) = quota::quota_root_of(path, quota::LIMIT_NODE) {
            self.quota_roots.insert(root);
        } else if let Some(root) = quota::quota_root_of(path, quota::STAT_NODE) {
            self.refresh_quota_usage(&root);
        } else {
            self.adjust_quota(path, 1, data_len);
        }
        stat
    }

    /// Removes a childless znode; the parent's pzxid rises to `zxid` (its cversion is
    /// left alone, as ZooKeeper's `ModelTree.deleteNode` leaves it).
    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Option<Znode> {
        let parent_path = parent(path);
        self.record(parent_path);
        self.record(path);
        let node = *self.nodes.remove(path)?;
        self.data_size -= node_size(path, &node);
        self.unindex(path, node.stat.ephemeral_owner);
        if let Some(p) = self.nodes.get_mut(parent_path) {
            p.children.remove(basename(path));
            if zxid > p.stat.pzxid {
                p.stat.pzxid = zxid;
            }
        }
        if let Some(root) = quota::quota_root_of(path, quota::LIMIT_NODE) {
            self.quota_roots.remove(&root);
        }
        self.adjust_quota(path, -1, -(node.data_len() as i64));
        Some(node)
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
        self.record(path);
        let node = self.nodes.get_mut(path)?;
        let old = node_size(path, node);
        node.data = data;
        node.stat.version = version;
        node.stat.mzxid = zxid;
        node.stat.mtime = time;
        let stat = node.stat();
        let new = node_size(path, node);
        self.data_size = self.data_size - old + new;
        self.adjust_quota(path, 0, new as i64 - old as i64);
        Some(stat)
    }

    /// The quota root governing `path` (the longest quota path that is `path` or an
    /// ancestor of it), as ZooKeeper's `getMaxPrefixWithQuota`.
    pub fn quota_root_for(&self, path: &str) -> Option<&str> {
        self.quota_roots
            .iter()
            .filter(|root| quota::governs(root, path))
            .max_by_key(|root| root.len())
            .map(String::as_str)
    }

    /// Every path with a quota.
    pub fn quota_roots(&self) -> impl Iterator<Item = &str> {
        self.quota_roots.iter().map(String::as_str)
    }

    /// The limits and current usage of the quota governing `path`.
    pub fn quota_for(&self, path: &str) -> Option<(String, quota::StatsTrack, quota::StatsTrack)> {
        let root = self.quota_root_for(path)?;
        let read = |node: &str| {
            self.nodes
                .get(quota::quota_node(root, node).as_str())
                .and_then(|n| n.data.as_ref())
                .map(|d| quota::StatsTrack::parse(&String::from_utf8_lossy(d)))
                .unwrap_or_default()
        };
        Some((
            root.to_string(),
            read(quota::LIMIT_NODE),
            read(quota::STAT_NODE),
        ))
    }

    /// Moves the usage of the quota governing `path` by the given amounts. The stats
    /// node's data changes in place, its Stat does not (as in ZooKeeper).
    fn adjust_quota(&mut self, path: &str, count: i64, bytes: i64) {
        if self.quota_roots.is_empty() || path.starts_with(QUOTA_PATH) {
            return;
        }
        let Some((root, _, usage)) = self.quota_for(path) else {
            return;
        };
        let text =
            quota::StatsTrack::usage_text(usage.count.max(0) + count, usage.bytes.max(0) + bytes);
        self.write_usage(&root, text);
    }

    /// Recomputes the usage of quota `root` from the tree (when its stats node is made).
    fn refresh_quota_usage(&mut self, root: &str) {
        let mut count = 0i64;
        let mut bytes = 0i64;
        let mut stack = vec![root.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p.as_str()) {
                count += 1;
                bytes += node.data_len() as i64;
                stack.extend(node.children.iter().map(|c| child_path(&p, c)));
            }
        }
        self.write_usage(root, quota::StatsTrack::usage_text(count, bytes));
    }

    fn write_usage(&mut self, root: &str, text: String) {
        let stats_path = quota::quota_node(root, quota::STAT_NODE);
        self.record(&stats_path);
        if let Some(node) = self.nodes.get_mut(stats_path.as_str()) {
            let old = node.data_len() as u64;
            node.data = Some(Bytes::from(text.into_bytes()));
            self.data_size = self.data_size - old + node.data_len() as u64;
        }
    }

    /// Replaces a znode's ACL and sets its aversion. Returns the new Stat.
    pub fn set_acl(&mut self, path: &str, acl: Vec<Acl>, aversion: i32) -> Option<Stat> {
        self.record(path);
        let node = self.nodes.get_mut(path)?;
        node.acl = self.acls.intern(&acl);
        node.stat.aversion = aversion;
        Some(node.stat())
    }
}

/// ZooKeeper's `getNodeSize`: path length plus data length.
fn node_size(path: &str, node: &Znode) -> u64 {
    (path.len() + node.data_len()) as u64
}
