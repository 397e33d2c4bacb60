//! The tree's invariants, checked in full by tests and fuzzing, and what its parts
//! weigh on the heap ([`Footprint`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::node::{NameRef, NO_NODE, ROOT};
use super::{quota, DataTree, NodeKind};

/// Heap bytes held by each part of a tree (an estimate from capacities: glibc adds
/// about 8 bytes and rounding to each allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Znodes.
    pub znodes: usize,
    /// Node slots (72 bytes each), allocated, used or not.
    pub slots: usize,
    /// Data blobs, as stored (4-byte length word included, rounded to the arena's
    /// 4-byte size classes; blocks above the arena's as requested).
    pub data: usize,
    /// Data blobs.
    pub blobs: usize,
    /// The path index's table.
    pub index: usize,
    /// Family entries (children, pzxid, cversion): the map, chunk directories and
    /// chunks.
    pub children: usize,
    /// Names too long for their node.
    pub long_names: usize,
}

impl fmt::Display for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = |bytes: usize| bytes as f64 / self.znodes.max(1) as f64;
        writeln!(
            f,
            "tree footprint ({} znodes), bytes per znode:",
            self.znodes
        )?;
        writeln!(f, "  node slots   {:8.1}", per(self.slots))?;
        writeln!(
            f,
            "  data blobs   {:8.1}  ({} blobs)",
            per(self.data),
            self.blobs
        )?;
        writeln!(f, "  path index   {:8.1}", per(self.index))?;
        writeln!(f, "  child lists  {:8.1}", per(self.children))?;
        write!(f, "  long names   {:8.1}", per(self.long_names))
    }
}

impl DataTree {
    /// What the tree's parts hold on the heap (see [`Footprint`]).
    pub fn footprint(&self) -> Footprint {
        let (slots, long_names) = self.slab.heap_bytes();
        let mut fp = Footprint {
            znodes: self.node_count(),
            slots,
            index: self.index.heap_bytes(),
            long_names,
            ..Footprint::default()
        };
        for (_, node) in self.slab.iter() {
            if let (Some(blob), _) = node.data_slot() {
                fp.blobs += 1;
                fp.data += blob.stored_len();
            }
        }
        fp.children = self.families.allocation_size()
            + self
                .families
                .values()
                .map(|f| f.children.heap_bytes())
                .sum::<usize>();
        fp
    }

    /// Checks the tree's invariants, for tests and fuzzing (it walks every znode):
    /// the root exists; every other znode's parent exists and lists it, its children
    /// are sorted by name and each names it as parent, and the path index finds it
    /// (and nothing else); the owner map, the ephemeral, container, TTL and quota
    /// indices, the ACL reference counts and the data size equal what the znodes say;
    /// no multi's journal is left open; zxids are ordered (`czxid <= pzxid`, and
    /// `czxid <= mzxid` except on the system nodes).
    pub fn check_consistency(&self) -> Result<(), String> {
        if self.slab.get(ROOT).is_none_or(|r| r.parent != NO_NODE) {
            return Err("the root is missing".into());
        }
        if self.journal.is_some() {
            return Err("a multi's journal is still open".into());
        }
        let mut ephemerals: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        let mut containers = BTreeSet::new();
        let mut ttls = BTreeSet::new();
        let mut quota_roots = BTreeSet::new();
        let mut acl_refs: HashMap<u32, u32> = HashMap::new();
        let mut owned = 0;
        let mut families = 0;
        let mut data_size = 0u64;
        let mut seen = 0;
        let mut long_names = 0;
        for (path, node) in self.iter() {
            seen += 1;
            let id = node.id();
            let stored = node.node();
            if stored.is_limbo() {
                return Err(format!("{path} is still deleted-in-a-multi"));
            }
            data_size += (path.len() + node.data_len()) as u64;
            *acl_refs.entry(stored.acl).or_default() += 1;
            if let NameRef::Long(_) = stored.name() {
                long_names += 1;
            }
            if id != ROOT {
                let parent = stored.parent;
                let listed = self
                    .children_of(parent)
                    .is_some_and(|list| list.iter().any(|c| c == id));
                if !listed {
                    return Err(format!("{path} is not a child of its parent"));
                }
                let found = self
                    .index
                    .find(&self.slab, parent, self.slab.name_of(stored));
                if found != Some(id) {
                    return Err(format!("the path index finds {found:?} for {path} ({id})"));
                }
                if self.slab.name_of(stored).is_empty() {
                    return Err(format!("{path} has an empty name"));
                }
            }
            let family = self.families.get(&id);
            if family.is_some() != stored.has_family() {
                return Err(format!(
                    "{path}'s family flag disagrees with the family map"
                ));
            }
            if let Some(f) = family {
                if f.children.is_empty() && f.pzxid == stored.czxid && f.cversion == 0 {
                    return Err(format!("{path} has a family entry that says nothing"));
                }
                families += 1;
            }
            if let Some(list) = self.children_of(id) {
                list.check(|c| self.slab.name(c))
                    .map_err(|e| format!("{path}: {e}"))?;
                if let Some(c) = list
                    .iter()
                    .find(|&c| self.slab.get(c).is_none_or(|n| n.parent != id))
                {
                    return Err(format!("{path} lists {c}, which is not its child"));
                }
            }
            let owner = node.ephemeral_owner();
            if stored.is_owned() {
                owned += 1;
                if owner == 0 {
                    return Err(format!("{path} is marked owned but has no owner"));
                }
            }
            match NodeKind::of_owner(owner) {
                NodeKind::Persistent => {}
                NodeKind::Container => {
                    containers.insert(path.clone());
                }
                NodeKind::Ttl(_) => {
                    ttls.insert(path.clone());
                }
                NodeKind::Ephemeral(session) => {
                    if !node.is_leaf() {
                        return Err(format!("ephemeral {path} has children"));
                    }
                    ephemerals.entry(session).or_default().insert(path.clone());
                }
            }
            if let Some(root) = quota::quota_root_of(&path, quota::LIMIT_NODE) {
                quota_roots.insert(root);
            }
            let s = self.stat_fields(id).unwrap_or_default();
            if s.czxid > s.pzxid || (s.czxid > s.mzxid && s.czxid != 0) {
                return Err(format!(
                    "{path} has zxids out of order: {:?}",
                    node.stored_stat()
                ));
            }
        }
        if seen != self.slab.len() {
            return Err(format!(
                "{} znodes stored, {seen} reachable from the root",
                self.slab.len()
            ));
        }
        if self.index.len() + 1 != seen {
            return Err(format!(
                "the path index holds {} entries for {seen} znodes",
                self.index.len()
            ));
        }
        if long_names != self.slab.long_names() {
            return Err(format!(
                "{} long names held, {long_names} znodes have one",
                self.slab.long_names()
            ));
        }
        if families != self.families.len() {
            return Err(format!(
                "{} family entries, {families} znodes have one",
                self.families.len()
            ));
        }
        if owned != self.owners.len() {
            return Err(format!(
                "{} owners recorded, {owned} znodes owned",
                self.owners.len()
            ));
        }
        self.acls.check()?;
        for (index, _, refs) in self.acls.iter() {
            let used = acl_refs.remove(&index).unwrap_or(0);
            if used != refs {
                return Err(format!("ACL {index} counts {refs} users, {used} use it"));
            }
        }
        if let Some(index) = acl_refs.keys().next() {
            return Err(format!(
                "a znode uses ACL {index}, which is not in the table"
            ));
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
}
