//! One znode: data, ACL, persisted Stat fields and the names of its children.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zk_proto::{Acl, Stat};

/// `ephemeralOwner` of a container znode (ZooKeeper's `EphemeralType.CONTAINER`).
pub const CONTAINER_OWNER: i64 = i64::MIN;

/// High byte of `ephemeralOwner` marking a TTL znode; the low 56 bits hold the TTL.
const TTL_MARK: i64 = 0xff << 56;

/// Largest TTL ZooKeeper accepts (`EphemeralType.TTL.maxValue()`: 40 bits).
pub const MAX_TTL: i64 = (1 << 40) - 1;

/// Bits of `ephemeralOwner` that hold a TTL.
const TTL_BITS: i64 = (1 << 56) - 1;

/// `ephemeralOwner` of a TTL znode with `ttl` milliseconds to live.
pub const fn ttl_owner(ttl: i64) -> i64 {
    TTL_MARK | (ttl & TTL_BITS)
}

/// What kind of znode an `ephemeralOwner` value denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// No owner: an ordinary persistent znode.
    Persistent,
    /// Owned by this session.
    Ephemeral(i64),
    /// A container.
    Container,
    /// A persistent znode with a TTL in milliseconds.
    Ttl(i64),
}

impl NodeKind {
    /// Decodes an `ephemeralOwner` value.
    pub fn of_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if owner & TTL_MARK == TTL_MARK {
            NodeKind::Ttl(owner & TTL_BITS)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }
}

/// The Stat fields a znode stores; `dataLength` and `numChildren` are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredStat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Create time (ms).
    pub ctime: i64,
    /// Last data change time (ms).
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children created so far (ZooKeeper's stored cversion: deletes do not count). It
    /// numbers sequential children; clients see `2 * cversion - numChildren`, which
    /// counts creates and deletes alike.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Session id, [`CONTAINER_OWNER`], a TTL mark, or 0 (clients see 0 for
    /// containers and TTL nodes).
    pub ephemeral_owner: i64,
    /// zxid of the last change to the children.
    pub pzxid: i64,
}

/// A znode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    /// The data; `None` (created with null data) is kept apart from empty.
    pub data: Option<Bytes>,
    /// The ACL, shared by every znode with the same one (see `DataTree`'s ACL cache).
    pub acl: Arc<[Acl]>,
    /// Stored Stat fields.
    pub stat: StoredStat,
    /// Names (not paths) of the children.
    pub children: BTreeSet<Box<str>>,
}

impl Znode {
    /// A znode with no children.
    pub fn new(data: Option<Bytes>, acl: Arc<[Acl]>, stat: StoredStat) -> Znode {
        Znode {
            data,
            acl,
            stat,
            children: BTreeSet::new(),
        }
    }

    /// The full Stat a client sees (`DataNode.copyStat`): cversion is reported as
    /// `2 * creates - numChildren`, and containers and TTL nodes show no owner.
    pub fn stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.children.len() as i32;
        let ephemeral_owner = match self.kind() {
            NodeKind::Ephemeral(session) => session,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner,
            data_length: self.data_len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }

    /// Bytes of data (0 for null).
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    /// What kind of znode this is.
    pub fn kind(&self) -> NodeKind {
        NodeKind::of_owner(self.stat.ephemeral_owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_values_decode_to_kinds() {
        assert_eq!(NodeKind::of_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::of_owner(CONTAINER_OWNER), NodeKind::Container);
        assert_eq!(NodeKind::of_owner(ttl_owner(5000)), NodeKind::Ttl(5000));
        assert_eq!(ttl_owner(5000) as u64, 0xff00_0000_0000_1388);
        assert_eq!(
            NodeKind::of_owner(0x0100_0000_0000_0001),
            NodeKind::Ephemeral(0x0100_0000_0000_0001)
        );
    }
}
