//! [`NodeRef`]: a znode as the rest of the server reads it — data, ACL, Stat, kind and
//! children — assembled from the compact node, the ACL table, the owner map and the
//! children's names.

use std::sync::Arc;

use bytes::Bytes;
use zk_proto::{Acl, Stat};

use super::family::Family;
use super::node::{Node, NodeId};
use super::{DataTree, NodeKind, StoredStat, Znode};

/// A read-only view of one znode, borrowed from its tree.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    tree: &'a DataTree,
    id: NodeId,
    node: &'a Node,
}

impl std::fmt::Debug for NodeRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRef")
            .field("name", &self.name())
            .field("stat", &self.stored_stat())
            .field("data_len", &self.data_len())
            .finish_non_exhaustive()
    }
}

impl<'a> NodeRef<'a> {
    pub(super) fn new(tree: &'a DataTree, id: NodeId, node: &'a Node) -> NodeRef<'a> {
        NodeRef { tree, id, node }
    }

    /// The znode's id.
    pub(super) fn id(&self) -> NodeId {
        self.id
    }

    /// The stored node.
    pub(super) fn node(&self) -> &'a Node {
        self.node
    }

    /// The znode's name (its path's last component; "" for the root).
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(self.tree.slab.name_of(self.node)).unwrap_or_default()
    }

    /// The data (`None`: created with null data, which is kept apart from empty), as
    /// `Bytes` for a reply: small data is copied, large data shared.
    pub fn data(&self) -> Option<Bytes> {
        match self.node.data_slot() {
            (_, true) => None,
            (None, false) => Some(Bytes::new()),
            (Some(blob), false) => Some(blob.to_bytes()),
        }
    }

    /// The data, borrowed.
    pub fn data_slice(&self) -> Option<&'a [u8]> {
        self.node.data()
    }

    /// Bytes of data (0 for null).
    pub fn data_len(&self) -> usize {
        self.node.data_len()
    }

    /// The ACL, shared by every znode with the same one.
    pub fn acl(&self) -> &'a Arc<[Acl]> {
        self.tree.acls.get(self.node.acl)
    }

    /// The stored `ephemeralOwner`: a session, [`super::CONTAINER_OWNER`], a TTL mark,
    /// or 0.
    pub fn ephemeral_owner(&self) -> i64 {
        if self.node.is_owned() {
            self.tree.owners.get(&self.id).copied().unwrap_or(0)
        } else {
            0
        }
    }

    /// What kind of znode this is.
    pub fn kind(&self) -> NodeKind {
        NodeKind::of_owner(self.ephemeral_owner())
    }

    /// The stored Stat fields (cversion counts creates only; the owner as stored).
    pub fn stored_stat(&self) -> StoredStat {
        let n = self.node;
        let (pzxid, cversion) = self.parent_side();
        StoredStat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion,
            aversion: n.aversion,
            ephemeral_owner: self.ephemeral_owner(),
            pzxid,
        }
    }

    /// The stored `pzxid` and `cversion` (from the family map, if it has an entry).
    fn parent_side(&self) -> (i64, i32) {
        match self.family() {
            Some(f) => (f.pzxid, f.cversion),
            None => (self.node.czxid, 0),
        }
    }

    fn family(&self) -> Option<&'a Family> {
        if self.node.has_family() {
            self.tree.families.get(&self.id)
        } else {
            None
        }
    }

    /// The full Stat a client sees (`DataNode.copyStat`): cversion is reported as
    /// `2 * creates - numChildren`, and containers and TTL nodes show no owner.
    pub fn stat(&self) -> Stat {
        let n = self.node;
        let (pzxid, cversion) = self.parent_side();
        let num_children = self.num_children() as i32;
        let ephemeral_owner = match self.kind() {
            NodeKind::Ephemeral(session) => session,
            _ => 0,
        };
        Stat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: n.aversion,
            ephemeral_owner,
            data_length: self.data_len() as i32,
            num_children,
            pzxid,
        }
    }

    /// Number of children.
    pub fn num_children(&self) -> usize {
        self.family().map_or(0, |f| f.children.len())
    }

    /// Whether it has no children.
    pub fn is_leaf(&self) -> bool {
        self.num_children() == 0
    }

    /// The children's names, in byte order.
    pub fn children(&self) -> impl DoubleEndedIterator<Item = &'a str> + 'a {
        let slab = &self.tree.slab;
        self.family()
            .into_iter()
            .flat_map(|f| f.children.iter())
            .map(move |id| slab.name_str(id))
    }

    /// An owned copy (data, ACL, stored Stat, children's names).
    pub fn to_znode(&self) -> Znode {
        Znode {
            data: self.data(),
            acl: self.acl().clone(),
            stat: self.stored_stat(),
            children: self.children().map(Into::into).collect(),
        }
    }
}
