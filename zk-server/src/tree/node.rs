//! One znode as the tree stores it: 88 bytes, fixed size, in the slab.
//!
//! ```text
//! czxid mzxid pzxid ctime mtime   5 × i64   40
//! data                            Blob       8   (None: empty or null, see NULL_DATA)
//! children                        Box        8   (None: no children)
//! version cversion aversion       3 × i32   12
//! parent                          u32        4
//! acl                             u32        4   (index in the ACL table)
//! flags                           u8         1   (name length, NULL_DATA, OWNED, VACANT, LIMBO)
//! name                            [u8; 11]  11   (the name itself, or an index in the long names)
//! ```
//!
//! `dataLength` and `numChildren` are derived (the blob, the child list); the
//! `ephemeralOwner` of the few znodes that have one lives in the tree's owner map
//! (flag OWNED).

use super::blob::Blob;
use super::children::ChildList;

/// A znode's place in the slab.
pub type NodeId = u32;

/// No node: the root's parent.
pub const NO_NODE: NodeId = u32::MAX;

/// The root's id.
pub const ROOT: NodeId = 0;

/// Names up to this many bytes are kept in the node.
pub const INLINE_NAME: usize = 11;

/// Low nibble of the flags: the inline name's length, or this for a long name.
const NAME_LONG: u8 = 0x0f;
const NAME_MASK: u8 = 0x0f;
/// The data is null (not merely empty).
const NULL_DATA: u8 = 0x10;
/// The znode has an `ephemeralOwner` in the tree's owner map.
const OWNED: u8 = 0x20;
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
    /// zxid of the last change to the children.
    pub pzxid: i64,
    /// Create time (ms).
    pub ctime: i64,
    /// Last data change time (ms).
    pub mtime: i64,
    data: Option<Blob>,
    /// The children, sorted by name; `None` when there are none.
    pub children: Option<Box<ChildList>>,
    /// Data version.
    pub version: i32,
    /// Children created so far (deletes do not count).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// The parent's id ([`NO_NODE`] for the root).
    pub parent: NodeId,
    /// The ACL's index in the ACL table.
    pub acl: u32,
    flags: u8,
    name: [u8; INLINE_NAME],
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Node>() == 88);

impl Node {
    /// A node named `name` (inline: at most [`INLINE_NAME`] bytes) or, with `long`,
    /// by an index in the long-name table.
    pub fn new(parent: NodeId, name: NameRef<'_>, acl: u32, stat: StatFields) -> Node {
        let mut node = Node {
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            data: None,
            children: None,
            version: 0,
            cversion: 0,
            aversion: 0,
            parent,
            acl,
            flags: 0,
            name: [0; INLINE_NAME],
        };
        node.set_stat(stat);
        match name {
            NameRef::Inline(bytes) => {
                let len = bytes.len().min(INLINE_NAME);
                node.name[..len].copy_from_slice(&bytes[..len]);
                node.flags = len as u8;
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
        match self.flags & NAME_MASK {
            NAME_LONG => {
                let mut index = [0; 4];
                index.copy_from_slice(&self.name[..4]);
                NameRef::Long(u32::from_le_bytes(index))
            }
            len => NameRef::Inline(&self.name[..usize::from(len)]),
        }
    }

    /// The stored Stat fields.
    pub fn stat(&self) -> StatFields {
        StatFields {
            czxid: self.czxid,
            mzxid: self.mzxid,
            pzxid: self.pzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
        }
    }

    /// Sets the stored Stat fields.
    pub fn set_stat(&mut self, s: StatFields) {
        self.czxid = s.czxid;
        self.mzxid = s.mzxid;
        self.pzxid = s.pzxid;
        self.ctime = s.ctime;
        self.mtime = s.mtime;
        self.version = s.version;
        self.cversion = s.cversion;
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

    /// Number of children.
    pub fn child_count(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.len())
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
        assert_eq!(n.stat(), stat);
        assert_eq!(n.data(), Some(&b""[..]));
        n.replace_data(None, true);
        assert_eq!(n.data(), None);
        n.replace_data(Some(Blob::copy_of(b"abc")), false);
        assert_eq!((n.data(), n.data_len()), (Some(&b"abc"[..]), 3));
        n.set_owned(true);
        n.set_limbo(true);
        assert!(n.is_owned() && n.is_limbo() && !n.is_vacant());
        assert_eq!(n.name(), NameRef::Inline(b"k0001234"));
        let long = Node::new(3, NameRef::Long(0x0102_0304), 0, stat);
        assert_eq!(long.name(), NameRef::Long(0x0102_0304));
        assert!(Node::vacant().is_vacant());
    }
}
