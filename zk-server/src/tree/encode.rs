//! The tree in a snapshot (version 2): the ACLs once, then every znode in pre-order
//! (parents first, siblings in name order) as its parent's position, name, data, ACL
//! index and stored Stat. Loading appends each znode to the slab and to its parent's
//! children in order, with no path hashed or sorted.
//!
//! ```text
//! u32 ACL count, then each ACL: u32 entries, each (i32 perms, str scheme, str id)
//! u64 znode count, then each znode:
//!     u32 parent position (u32::MAX for the root, which comes first)
//!     str name ("" for the root)
//!     u32 data length (u32::MAX: null), then the bytes
//!     u32 ACL position
//!     i64 czxid, mzxid, pzxid, ctime, mtime, ephemeralOwner
//!     i32 version, cversion, aversion
//! ```
//!
//! Integers are little-endian; `str` is a u32 length and UTF-8 bytes.

use std::collections::HashMap;

use zk_proto::{Acl, Id};

use super::blob::Blob;
use super::node::{Node, NodeId, StatFields, NO_NODE, ROOT};
use super::{quota, DataTree};

/// Why a snapshot's tree cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeDecodeError {
    /// The bytes end inside a record.
    #[error("the snapshot's tree ends early")]
    Truncated,
    /// A record is malformed or contradicts the tree before it.
    #[error("invalid snapshot tree: {0}")]
    Invalid(String),
}

/// Smallest encoding of a znode (an empty name, null data).
const MIN_NODE_BYTES: usize = 4 + 4 + 4 + 4 + 6 * 8 + 3 * 4;

impl DataTree {
    /// Appends the tree's encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut dense: HashMap<u32, u32> = HashMap::new();
        let acls: Vec<_> = self.acls.iter().collect();
        put_u32(out, acls.len() as u32);
        for (position, (index, acl, _)) in acls.iter().enumerate() {
            dense.insert(*index, position as u32);
            put_u32(out, acl.len() as u32);
            for entry in acl.iter() {
                out.extend_from_slice(&entry.perms.to_le_bytes());
                put_str(out, entry.id.scheme.as_bytes());
                put_str(out, entry.id.id.as_bytes());
            }
        }
        out.extend_from_slice(&(self.node_count() as u64).to_le_bytes());
        let mut next: u32 = 0;
        let mut stack: Vec<(NodeId, u32)> = vec![(ROOT, NO_NODE)];
        while let Some((id, parent_position)) = stack.pop() {
            let Some(node) = self.slab.get(id) else {
                continue;
            };
            let position = next;
            next += 1;
            put_u32(out, parent_position);
            put_str(out, self.slab.name_of(node));
            match node.data() {
                None => put_u32(out, u32::MAX),
                Some(data) => put_str(out, data),
            }
            put_u32(out, dense.get(&node.acl).copied().unwrap_or(0));
            let owner = self.owner(id);
            let s = self.stat_fields(id).unwrap_or_default();
            for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, owner] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [s.version, s.cversion, s.aversion] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            if let Some(children) = self.children_of(id) {
                stack.extend(children.iter().rev().map(|c| (c, position)));
            }
        }
    }

    /// Reads a tree written by [`DataTree::encode_into`] from the front of `input`,
    /// which then starts after it.
    pub fn decode(input: &mut &[u8]) -> Result<DataTree, TreeDecodeError> {
        let mut r = Reader(input);
        let acl_count = r.count(4)?;
        let mut acls = Vec::with_capacity(acl_count);
        for _ in 0..acl_count {
            let entries = r.count(12)?;
            let mut acl = Vec::with_capacity(entries);
            for _ in 0..entries {
                let perms = r.i32()?;
                let scheme = r.string()?;
                let id = r.string()?;
                acl.push(Acl {
                    perms,
                    id: Id::new(scheme, id),
                });
            }
            acls.push(acl);
        }
        let count = usize::try_from(r.u64()?)
            .ok()
            .filter(|&c| c <= r.0.len() / MIN_NODE_BYTES)
            .ok_or(TreeDecodeError::Truncated)?;
        let mut tree = DataTree::empty();
        let table: Vec<u32> = acls.iter().map(|a| tree.acls.acquire(a)).collect();
        tree.index.reserve(&tree.slab, count.saturating_sub(1));
        let mut path_lens: Vec<u32> = Vec::with_capacity(count);
        for position in 0..count {
            let parent = r.u32()?;
            let name = std::str::from_utf8(r.bytes()?)
                .map_err(|_| invalid(position, "a name is not UTF-8"))?;
            let data = match r.u32()? {
                u32::MAX => None,
                len => Some(r.take(len as usize)?),
            };
            let acl = r.u32()?;
            let acl = *table
                .get(acl as usize)
                .ok_or_else(|| invalid(position, "an ACL position is out of range"))?;
            let [czxid, mzxid, pzxid, ctime, mtime, owner] =
                [r.i64()?, r.i64()?, r.i64()?, r.i64()?, r.i64()?, r.i64()?];
            let [version, cversion, aversion] = [r.i32()?, r.i32()?, r.i32()?];
            let stat = StatFields {
                czxid,
                mzxid,
                pzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
            };
            let root = position == 0;
            if root != (parent == NO_NODE) || (!root && parent as usize >= position) {
                return Err(invalid(position, "parents must come first, the root first"));
            }
            if root != name.is_empty() || name.contains('/') {
                return Err(invalid(position, "a name is empty or holds a '/'"));
            }
            if root && owner != 0 {
                // The root is neither ephemeral, container nor TTL: an owner there
                // would be recorded but never indexed (the root is not indexed).
                return Err(invalid(position, "the root has an owner"));
            }
            if !root {
                let last = tree.children_of(parent).and_then(|c| c.last());
                if last.is_some_and(|l| tree.slab.name(l) >= name.as_bytes()) {
                    return Err(invalid(position, "siblings out of order"));
                }
            }
            tree.acls.retain(acl);
            let placed = tree.slab.place_name(name);
            let mut node = Node::new(parent, placed, acl, stat);
            let (blob, null) = match data {
                None => (None, true),
                Some([]) => (None, false),
                Some(bytes) => (Some(Blob::copy_of(bytes)), false),
            };
            node.replace_data(blob, null);
            node.set_owned(owner != 0);
            let data_len = node.data_len();
            let id = tree.slab.insert(node);
            if id != Some(position as NodeId) {
                return Err(invalid(position, "too many znodes"));
            }
            let id = position as NodeId;
            if pzxid != czxid || cversion != 0 {
                tree.set_stat_fields(id, &stat);
            }
            if owner != 0 {
                tree.owners.insert(id, owner);
            }
            let path_len = match parent {
                NO_NODE => 1,
                ROOT => 1 + name.len(),
                p => path_lens.get(p as usize).copied().unwrap_or(0) as usize + 1 + name.len(),
            };
            path_lens.push(u32::try_from(path_len).unwrap_or(u32::MAX));
            tree.data_size += (path_len + data_len) as u64;
            if root {
                continue;
            }
            if let Some(p) = tree.family_mut(parent) {
                p.children.push(id);
            }
            tree.index.insert(&tree.slab, id);
            if owner != 0 || name == quota::LIMIT_NODE {
                let path = tree.path_of(id);
                tree.index_kind(&path, owner);
                if let Some(root) = quota::quota_root_of(&path, quota::LIMIT_NODE) {
                    tree.quota_roots.insert(root);
                }
            }
        }
        if count == 0 {
            return Err(TreeDecodeError::Invalid("the tree has no root".into()));
        }
        // The table's own reference to each ACL: those no znode uses go.
        for index in table {
            tree.acls.release(index);
        }
        *input = r.0;
        Ok(tree)
    }
}

fn invalid(position: usize, what: &str) -> TreeDecodeError {
    TreeDecodeError::Invalid(format!("znode {position}: {what}"))
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// A cursor over the encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TreeDecodeError> {
        if self.0.len() < n {
            return Err(TreeDecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TreeDecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, TreeDecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, TreeDecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, TreeDecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, TreeDecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], TreeDecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, TreeDecodeError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| TreeDecodeError::Invalid("an ACL is not UTF-8".into()))
    }

    /// A count of items of at least `min` bytes each, bounded by the bytes left.
    fn count(&mut self, min: usize) -> Result<usize, TreeDecodeError> {
        let n = self.u32()? as usize;
        if n > self.0.len() / min {
            return Err(TreeDecodeError::Truncated);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset of the root's owner in an encoded tree.
    fn root_owner_offset(bytes: &[u8]) -> usize {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let mut at = 4;
        for _ in 0..u32_at(0) {
            let entries = u32_at(at);
            at += 4;
            for _ in 0..entries {
                at += 4;
                at += 4 + u32_at(at) as usize;
                at += 4 + u32_at(at) as usize;
            }
        }
        at += 8; // the node count
        at += 4 + 4; // the root's parent and its empty name
        at += match u32_at(at) {
            u32::MAX => 4,
            len => 4 + len as usize,
        };
        at + 4 + 5 * 8 // its ACL, then czxid, mzxid, pzxid, ctime, mtime
    }

    #[test]
    fn a_root_with_an_owner_is_refused() {
        // Found by the storage_files fuzz target (a raw snapshot file, input
        // fuzz/corpus/storage_files/regression-owned-root): the root decoded as a TTL
        // node, owned but not in the TTL index ("TTL index {} != znodes' {\"/\"}").
        let mut bytes = Vec::new();
        DataTree::with_root().encode_into(&mut bytes);
        let at = root_owner_offset(&bytes);
        assert_eq!(bytes[at..at + 8], [0; 8]);
        assert!(DataTree::decode(&mut &bytes[..]).is_ok());
        bytes[at..at + 8].copy_from_slice(&0x100i64.to_le_bytes());
        let e = DataTree::decode(&mut &bytes[..]).unwrap_err();
        assert!(e.to_string().contains("the root has an owner"), "{e}");
    }
}
