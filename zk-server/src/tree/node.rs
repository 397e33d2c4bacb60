//! One znode as the tree stores it: 72 bytes, fixed size, in the slab.
//!
//! ```text
//! czxid mzxid ctime mtime         4 × i64   32
//! data                            Blob       8   (None: empty or null, see NULL_DATA)
//! version aversion                2 × i32    8
//! parent                          u32        4
//! acl                             u32        4   (index in the ACL table)
//! flags                           u8         1   (LONG_NAME, NULL_DATA, OWNED, FAMILY, VACANT, LIMBO)
//! name length                     u8         1
//! name                            [u8; 14]  14   (the name itself, or an index in the long names)
//! ```
//!
//! `dataLength` and `numChildren` are derived (the blob, the child list); the
//! `ephemeralOwner` of the few znodes that have one lives in the tree's owner map
//! (flag OWNED); a parent's side — its children, `pzxid` and `cversion` — lives in the
//! tree's family map (flag FAMILY), which a znode that never had a child is not in
//! (its `pzxid` is its `czxid`, its `cversion` 0).

use super::blob::Blob;

/// A znode's place in the slab.
pub type NodeId = u32;

/// No node: the root's parent.
pub const NO_NODE: NodeId = u32::MAX;

/// The root's id.
pub const ROOT: NodeId = 0;

/// Names up to this many bytes are kept in the node.
pub const INLINE_NAME: usize = 14;

/// The name is in the tree's long-name table (its index in the name bytes).
const NAME_LONG: u8 = 0x01;
/// The data is null (not merely empty).
const NULL_DATA: u8 = 0x02;
/// The znode has an `ephemeralOwner` in the tree's owner map.
const OWNED: u8 = 0x04;
/// The znode has an entry in the tree's family map (children, pzxid, cversion).
const FAMILY: u8 = 0x08;
/// The slot is free.
const VACANT: u8 = 0x40;
/// Deleted inside a multi: unlinked, kept until the multi commits or rolls back.
const LIMBO: u8 = 0x80;

/// Where a node's name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRef<'a> {
    /// In the node.
    Inline(&'a [u8]),
    /// In the tree's long-name table, at this index.
    Long(u32),
}

/// The Stat fields a node stores (as [`super::StoredStat`] without the owner), for the
/// multi journal to save and restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatFields {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// zxid of the last change to the children.
    pub pzxid: i64,
    /// Create time (ms).
    pub ctime: i64,
    /// Last data change time (ms).
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children created so far.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
}

/// A znode in the slab (see the module doc for its layout).
#[derive(Debug, Clone)]
pub struct Node {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Create time (ms).
    pub ctime: i64,
    /// Last data change time (ms).
    pub mtime: i64,
    data: Option<Blob>,
    /// Data version.
    pub version: i32,
    /// ACL version.
    pub aversion: i32,
    /// The parent's id ([`NO_NODE`] for the root).
    pub parent: NodeId,
    /// The ACL's index in the ACL table.
    pub acl: u32,
    flags: u8,
    name_len: u8,
    name: [u8; INLINE_NAME],
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Node>() == 72);

impl Node {
    /// A node named `name` (inline: at most [`INLINE_NAME`] bytes) or, with `long`,
    /// by an index in the long-name table, with the Stat fields a node keeps (its
    /// `pzxid` and `cversion` are the tree's to keep, in the family map).
    pub fn new(parent: NodeId, name: NameRef<'_>, acl: u32, stat: StatFields) -> Node {
        let mut node = Node {
            czxid: 0,
            mzxid: 0,
            ctime: 0,
            mtime: 0,
            data: None,
            version: 0,
            aversion: 0,
            parent,
            acl,
            flags: 0,
            name_len: 0,
            name: [0; INLINE_NAME],
        };
        node.set_own_stat(&stat);
        match name {
            NameRef::Inline(bytes) => {
                let len = bytes.len().min(INLINE_NAME);
                node.name[..len].copy_from_slice(&bytes[..len]);
                node.name_len = len as u8;
            }
            NameRef::Long(index) => {
                node.name[..4].copy_from_slice(&index.to_le_bytes());
                node.flags = NAME_LONG;
            }
        }
        node
    }

    /// A free slot.
    pub fn vacant() -> Node {
        let mut node = Node::new(NO_NODE, NameRef::Inline(b""), 0, StatFields::default());
        node.flags = VACANT;
        node
    }

    /// The name, or where to find it.
    pub fn name(&self) -> NameRef<'_> {
        if self.flags & NAME_LONG != 0 {
            let mut index = [0; 4];
            index.copy_from_slice(&self.name[..4]);
            return NameRef::Long(u32::from_le_bytes(index));
        }
        NameRef::Inline(&self.name[..usize::from(self.name_len).min(INLINE_NAME)])
    }

    /// The Stat fields the node keeps, with `pzxid` and `cversion` as they are for a
    /// znode that never had a child (`czxid`, 0): the tree overrides them from its
    /// family map.
    pub fn own_stat(&self) -> StatFields {
        StatFields {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.czxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: 0,
            aversion: self.aversion,
        }
    }

    /// Sets the Stat fields the node keeps (all but `pzxid` and `cversion`).
    pub fn set_own_stat(&mut self, s: &StatFields) {
        self.czxid = s.czxid;
        self.mzxid = s.mzxid;
        self.ctime = s.ctime;
        self.mtime = s.mtime;
        self.version = s.version;
        self.aversion = s.aversion;
    }

    /// The data (`None`: null).
    pub fn data(&self) -> Option<&[u8]> {
        if self.flags & NULL_DATA != 0 {
            return None;
        }
        Some(self.data.as_ref().map_or(&[], Blob::as_slice))
    }

    /// The data's blob (`None` when empty or null) and whether it is null.
    pub fn data_slot(&self) -> (Option<&Blob>, bool) {
        (self.data.as_ref(), self.flags & NULL_DATA != 0)
    }

    /// Bytes of data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Blob::len)
    }

    /// Replaces the data with `blob` (`None` and `null`: null data; `None` alone:
    /// empty), returning what it held.
    pub fn replace_data(&mut self, blob: Option<Blob>, null: bool) -> (Option<Blob>, bool) {
        let was_null = self.flags & NULL_DATA != 0;
        self.flags = (self.flags & !NULL_DATA) | if null { NULL_DATA } else { 0 };
        (std::mem::replace(&mut self.data, blob), was_null)
    }

    /// Whether the node has an entry in the family map.
    pub fn has_family(&self) -> bool {
        self.flags & FAMILY != 0
    }

    /// Marks whether the node has an entry in the family map.
    pub fn set_family(&mut self, family: bool) {
        self.flags = (self.flags & !FAMILY) | if family { FAMILY } else { 0 };
    }

    /// Whether the node has an entry in the owner map.
    pub fn is_owned(&self) -> bool {
        self.flags & OWNED != 0
    }

    /// Marks whether the node has an entry in the owner map.
    pub fn set_owned(&mut self, owned: bool) {
        self.flags = (self.flags & !OWNED) | if owned { OWNED } else { 0 };
    }

    /// Whether the slot is free.
    pub fn is_vacant(&self) -> bool {
        self.flags & VACANT != 0
    }

    /// Whether the node was deleted inside an open multi.
    pub fn is_limbo(&self) -> bool {
        self.flags & LIMBO != 0
    }

    /// Marks the node deleted inside an open multi, or back in the tree.
    pub fn set_limbo(&mut self, limbo: bool) {
        self.flags = (self.flags & !LIMBO) | if limbo { LIMBO } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_data_and_flags_round_trip() {
        let stat = StatFields {
            czxid: 1,
            mzxid: 2,
            pzxid: 3,
            ctime: 4,
            mtime: 5,
            version: 6,
            cversion: 7,
            aversion: 8,
        };
        let mut n = Node::new(3, NameRef::Inline(b"k0001234"), 9, stat);
        assert_eq!(n.name(), NameRef::Inline(b"k0001234"));
        let own = StatFields {
            pzxid: 1,
            cversion: 0,
            ..stat
        };
        assert_eq!(n.own_stat(), own);
        let fourteen = Node::new(3, NameRef::Inline(b"lock-000000001"), 9, stat);
        assert_eq!(fourteen.name(), NameRef::Inline(b"lock-000000001"));
        assert_eq!(n.data(), Some(&b""[..]));
        n.replace_data(None, true);
        assert_eq!(n.data(), None);
        n.replace_data(Some(Blob::copy_of(b"abc")), false);
        assert_eq!((n.data(), n.data_len()), (Some(&b"abc"[..]), 3));
        n.set_owned(true);
        n.set_limbo(true);
        n.set_family(true);
        assert!(n.is_owned() && n.is_limbo() && n.has_family() && !n.is_vacant());
        assert_eq!(n.name(), NameRef::Inline(b"k0001234"));
        let long = Node::new(3, NameRef::Long(0x0102_0304), 0, stat);
        assert_eq!(long.name(), NameRef::Long(0x0102_0304));
        assert!(Node::vacant().is_vacant());
    }
}
