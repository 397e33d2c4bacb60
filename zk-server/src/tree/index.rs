//! The path index: every znode but the root, found by (parent id, name) in one hash
//! probe, so a path resolves in one probe per component. Each entry is a 4-byte id
//! (plus hashbrown's control byte); the key is read from the slab.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::node::NodeId;
use super::slab::Slab;

/// A fixed seed: the same hashes on every run (no effect on results, only on speed).
const SEED: u64 = 0x5a4b_5253_7472_6565;

/// Node ids by (parent, name).
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    table: HashTable<NodeId>,
}

fn hash(parent: NodeId, name: &[u8]) -> u64 {
    FixedState::with_seed(SEED).hash_one((parent, name))
}

/// The hash of node `id`'s key.
fn hash_of(slab: &Slab, id: NodeId) -> u64 {
    let parent = slab.get(id).map_or(super::node::NO_NODE, |n| n.parent);
    hash(parent, slab.name(id))
}

impl PathIndex {
    /// The child of `parent` called `name`.
    pub fn find(&self, slab: &Slab, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        self.table
            .find(hash(parent, name), |&id| {
                slab.get(id)
                    .is_some_and(|n| n.parent == parent && slab.name_of(n) == name)
            })
            .copied()
    }

    /// Adds node `id` (already in the slab, with its parent and name).
    pub fn insert(&mut self, slab: &Slab, id: NodeId) {
        self.table
            .insert_unique(hash_of(slab, id), id, |&other| hash_of(slab, other));
    }

    /// Removes node `id` (still in the slab, with its parent and name).
    pub fn remove(&mut self, slab: &Slab, id: NodeId) -> bool {
        match self
            .table
            .find_entry(hash_of(slab, id), |&other| other == id)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Makes room for `additional` more entries.
    pub fn reserve(&mut self, slab: &Slab, additional: usize) {
        self.table
            .reserve(additional, |&other| hash_of(slab, other));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }
}
