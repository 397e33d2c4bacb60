//! A znode's parent side — its children, `pzxid` and `cversion` — kept in a map by
//! node id apart from the node, so the many znodes that never had a child (whose
//! `pzxid` is their `czxid` and `cversion` 0) spend nothing on it.
//!
//! A znode has an entry (and its flag FAMILY) exactly when it has children, or its
//! `pzxid` differs from its `czxid`, or its `cversion` from 0: every change goes
//! through [`DataTree::settle_family`], which drops an entry that says nothing.

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use super::children::ChildList;
use super::node::{NodeId, StatFields};
use super::DataTree;

/// A fixed seed: the same hashes on every run.
const SEED: u64 = 0x6661_6d69_6c69_6573;

/// The family map: node id → its parent side.
pub type Families = HashMap<NodeId, Family, FixedState>;

/// An empty family map.
pub fn families() -> Families {
    HashMap::with_hasher(FixedState::with_seed(SEED))
}

/// A znode's parent side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Family {
    /// zxid of the last change to the children.
    pub pzxid: i64,
    /// Children created so far (deletes do not count).
    pub cversion: i32,
    /// The children, sorted by name.
    pub children: ChildList,
}

impl DataTree {
    /// Node `id`'s family entry, if it has one.
    pub(super) fn family(&self, id: NodeId) -> Option<&Family> {
        if self.slab.get(id)?.has_family() {
            self.families.get(&id)
        } else {
            None
        }
    }

    /// Node `id`'s children (`None`: it has none).
    pub(super) fn children_of(&self, id: NodeId) -> Option<&ChildList> {
        self.family(id)
            .map(|f| &f.children)
            .filter(|c| !c.is_empty())
    }

    /// Node `id`'s family entry, made (from its own Stat) if it has none; `None` if
    /// the node is not stored.
    pub(super) fn family_mut(&mut self, id: NodeId) -> Option<&mut Family> {
        let node = self.slab.get_mut(id)?;
        let czxid = node.czxid;
        node.set_family(true);
        Some(self.families.entry(id).or_insert_with(|| Family {
            pzxid: czxid,
            cversion: 0,
            children: ChildList::default(),
        }))
    }

    /// Drops node `id`'s family entry if it says nothing the node does not (no
    /// children, `pzxid` = `czxid`, `cversion` 0); frees an emptied child list.
    pub(super) fn settle_family(&mut self, id: NodeId) {
        let Some(node) = self.slab.get_mut(id) else {
            return;
        };
        let Some(family) = self.families.get_mut(&id) else {
            node.set_family(false);
            return;
        };
        if family.children.is_empty() {
            if family.pzxid == node.czxid && family.cversion == 0 {
                self.families.remove(&id);
                node.set_family(false);
            } else {
                family.children = ChildList::default();
            }
        }
    }

    /// Forgets node `id`'s family entry (the node is being freed).
    pub(super) fn drop_family(&mut self, id: NodeId) {
        self.families.remove(&id);
        if let Some(node) = self.slab.get_mut(id) {
            node.set_family(false);
        }
    }

    /// Node `id`'s stored Stat fields, `pzxid` and `cversion` included.
    pub(super) fn stat_fields(&self, id: NodeId) -> Option<StatFields> {
        let mut stat = self.slab.get(id)?.own_stat();
        if let Some(family) = self.family(id) {
            stat.pzxid = family.pzxid;
            stat.cversion = family.cversion;
        }
        Some(stat)
    }

    /// Sets node `id`'s stored Stat fields, `pzxid` and `cversion` included.
    pub(super) fn set_stat_fields(&mut self, id: NodeId, stat: &StatFields) {
        let Some(node) = self.slab.get_mut(id) else {
            return;
        };
        node.set_own_stat(stat);
        let needed = stat.pzxid != stat.czxid || stat.cversion != 0;
        if needed || node.has_family() {
            if let Some(family) = self.family_mut(id) {
                family.pzxid = stat.pzxid;
                family.cversion = stat.cversion;
            }
            self.settle_family(id);
        }
    }
}
