//! The multi journal: an undo log of the changes made since `begin_journal`, so a
//! failed multi rolls back exactly (`rollback_journal`) and a successful one keeps
//! them (`commit_journal`).
//!
//! A znode deleted inside a multi is unlinked but kept in its slot ("limbo") until the
//! multi ends, so its id is not reused and rollback can link it back; replaced data
//! and ACLs move into the log instead of being copied. The data size and the quota
//! roots are simply restored.

use std::collections::{BTreeSet, HashSet};

use super::blob::Blob;
use super::node::{NodeId, StatFields};
use super::DataTree;

/// How to undo one change.
#[derive(Debug, Clone)]
enum Undo {
    /// A znode was created: unlink and free it.
    Created(NodeId),
    /// A znode was deleted (it is in limbo): link it back.
    Deleted(NodeId),
    /// A znode's Stat fields before the multi touched them.
    Stat(NodeId, StatFields),
    /// A znode's data before a change (blob, null).
    Data(NodeId, Option<Blob>, bool),
    /// A znode's ACL index before a change (the log holds its reference).
    Acl(NodeId, u32),
}

/// The undo log of an open multi.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    undo: Vec<Undo>,
    /// Znodes whose Stat fields are saved already.
    saved: HashSet<NodeId>,
    data_size: u64,
    quota_roots: BTreeSet<String>,
}

impl DataTree {
    /// Starts recording so the changes that follow can be rolled back.
    pub fn begin_journal(&mut self) {
        self.journal = Some(Journal {
            data_size: self.data_size,
            quota_roots: self.quota_roots.clone(),
            ..Journal::default()
        });
    }

    /// Keeps the changes made since [`DataTree::begin_journal`].
    pub fn commit_journal(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        for undo in journal.undo {
            match undo {
                Undo::Deleted(id) => self.release(id),
                Undo::Acl(_, old) => self.acls.release(old),
                Undo::Created(_) | Undo::Stat(..) | Undo::Data(..) => {}
            }
        }
    }

    /// Undoes every change made since [`DataTree::begin_journal`].
    pub fn rollback_journal(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        for undo in journal.undo.into_iter().rev() {
            match undo {
                Undo::Created(id) => {
                    let path = self.path_of(id);
                    self.unlink(id, &path);
                    self.release(id);
                }
                Undo::Deleted(id) => {
                    if let Some(node) = self.slab.get_mut(id) {
                        node.set_limbo(false);
                    }
                    let path = self.path_of(id);
                    self.link(id, &path);
                }
                Undo::Stat(id, stat) => self.set_stat_fields(id, &stat),
                Undo::Data(id, blob, null) => {
                    if let Some(node) = self.slab.get_mut(id) {
                        node.replace_data(blob, null);
                    }
                }
                Undo::Acl(id, old) => match self.slab.get_mut(id) {
                    Some(node) => {
                        let current = std::mem::replace(&mut node.acl, old);
                        self.acls.release(current);
                    }
                    None => self.acls.release(old),
                },
            }
        }
        self.data_size = journal.data_size;
        self.quota_roots = journal.quota_roots;
    }

    /// Saves node `id`'s Stat fields, the first time a multi touches them.
    pub(super) fn save_stat(&mut self, id: NodeId) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if journal.saved.contains(&id) {
            return;
        }
        if let Some(stat) = self.stat_fields(id) {
            if let Some(journal) = self.journal.as_mut() {
                journal.saved.insert(id);
                journal.undo.push(Undo::Stat(id, stat));
            }
        }
    }

    /// Records that node `id` was created.
    pub(super) fn journal_created(&mut self, id: NodeId) {
        if let Some(journal) = self.journal.as_mut() {
            journal.undo.push(Undo::Created(id));
        }
    }

    /// Node `id` was unlinked: freed at once, or kept in limbo while a multi is open.
    pub(super) fn journal_deleted(&mut self, id: NodeId) {
        match self.journal.as_mut() {
            Some(journal) => {
                journal.undo.push(Undo::Deleted(id));
                if let Some(node) = self.slab.get_mut(id) {
                    node.set_limbo(true);
                }
            }
            None => self.release(id),
        }
    }

    /// Node `id`'s data was replaced; the old one is kept if a multi is open.
    pub(super) fn journal_data(&mut self, id: NodeId, old: Option<Blob>, null: bool) {
        if let Some(journal) = self.journal.as_mut() {
            journal.undo.push(Undo::Data(id, old, null));
        }
    }

    /// Node `id`'s ACL was replaced; the old reference is kept if a multi is open, or
    /// released.
    pub(super) fn journal_acl(&mut self, id: NodeId, old: u32) {
        match self.journal.as_mut() {
            Some(journal) => journal.undo.push(Undo::Acl(id, old)),
            None => self.acls.release(old),
        }
    }
}
