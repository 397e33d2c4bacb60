//! Making trees: the initial one every ZooKeeper starts with, and one of given znodes
//! (another ZooKeeper's data, or a version-1 snapshot).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zk_proto::path::parent;
use zk_proto::Acl;

use super::blob::Blob;
use super::index::PathIndex;
use super::node::{NameRef, Node, StatFields, NO_NODE, ROOT};
use super::slab::Slab;
use super::{bytes_to_blob, AclTable, DataTree, Znode, CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH};

impl DataTree {
    /// A tree holding what every ZooKeeper starts with: `/`, `/zookeeper`,
    /// `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut tree = DataTree::with_root();
        tree.insert_system_node(ZOOKEEPER_PATH, &Acl::open_unsafe());
        tree.insert_system_node(QUOTA_PATH, &Acl::open_unsafe());
        tree.insert_system_node(CONFIG_PATH, &Acl::read_unsafe());
        // ZooKeeper reports aversion -1 for /zookeeper/config.
        if let Some(config) = tree.lookup(CONFIG_PATH) {
            if let Some(node) = tree.slab.get_mut(config) {
                node.aversion = -1;
            }
        }
        tree
    }

    /// A tree without even a root (to load one into).
    pub(super) fn empty() -> DataTree {
        DataTree {
            slab: Slab::default(),
            index: PathIndex::default(),
            acls: AclTable::default(),
            families: super::family::families(),
            owners: HashMap::new(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_size: 0,
            quota_roots: BTreeSet::new(),
            journal: None,
        }
    }

    /// A tree of the root alone (empty data, open ACL, zero Stat).
    pub(super) fn with_root() -> DataTree {
        let mut tree = DataTree::empty();
        let acl = tree.acls.acquire(&Acl::open_unsafe());
        let root = Node::new(NO_NODE, NameRef::Inline(b""), acl, StatFields::default());
        tree.slab.insert(root);
        tree.data_size = 1;
        tree
    }

    /// A tree of exactly `nodes`, as another ZooKeeper's data holds them
    /// (`apache_data`'s import). Children are those of the nodes given (a node whose
    /// parent is missing is left out, with a warning). The quota usage nodes are
    /// recomputed from the tree, as ZooKeeper recomputes them when it loads a snapshot
    /// (`DataTree.setupQuota`).
    pub fn from_nodes(nodes: impl IntoIterator<Item = (String, Znode)>) -> DataTree {
        let mut tree = DataTree::from_nodes_exact(nodes);
        let roots: Vec<String> = tree.quota_roots.iter().cloned().collect();
        for root in roots {
            tree.refresh_quota_usage(&root);
        }
        tree
    }

    /// A tree of exactly `nodes`, quota usage as given.
    pub(crate) fn from_nodes_exact(nodes: impl IntoIterator<Item = (String, Znode)>) -> DataTree {
        let mut nodes: Vec<(String, Znode)> = nodes.into_iter().collect();
        // Parents first: a parent's path is shorter than its children's.
        nodes.sort_unstable_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
        let mut tree = DataTree::with_root();
        tree.index.reserve(&tree.slab, nodes.len());
        for (path, z) in nodes {
            if path == "/" {
                tree.replace_root(&z);
                continue;
            }
            let Some(parent_id) = tree.lookup(parent(&path)) else {
                tracing::warn!(path, "a znode without its parent is left out");
                continue;
            };
            let stat = StatFields::of(&z.stat);
            let (data, null) = bytes_to_blob(z.data.as_ref());
            if tree
                .add_node(
                    parent_id,
                    &path,
                    (data, null),
                    &z.acl,
                    stat,
                    z.stat.ephemeral_owner,
                )
                .is_none()
            {
                tracing::warn!(path, "a znode named twice is left out");
            }
        }
        tree
    }

    /// Gives the root the data, ACL and Stat of `z`.
    fn replace_root(&mut self, z: &Znode) {
        let acl = self.acls.acquire(&z.acl);
        let (data, null) = bytes_to_blob(z.data.as_ref());
        let len = data.as_ref().map_or(0, Blob::len) as u64;
        let Some(root) = self.slab.get_mut(ROOT) else {
            return;
        };
        let old_acl = std::mem::replace(&mut root.acl, acl);
        let (old, _) = root.replace_data(data, null);
        self.set_stat_fields(ROOT, &StatFields::of(&z.stat));
        self.acls.release(old_acl);
        self.data_size = self.data_size - old.as_ref().map_or(0, Blob::len) as u64 + len;
    }

    /// System nodes have zero Stat fields and leave their parent's Stat alone, as in
    /// ZooKeeper.
    fn insert_system_node(&mut self, path: &str, acl: &[Acl]) {
        if let Some(parent_id) = self.lookup(parent(path)) {
            let _ = self.add_node(
                parent_id,
                path,
                (None, false),
                acl,
                StatFields::default(),
                0,
            );
        }
    }
}
