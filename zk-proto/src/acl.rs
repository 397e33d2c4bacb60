//! Access control: permission bits, `Id`, `ACL`, and ZooKeeper's well-known ACL sets.

use crate::jute::jute_record;

/// A set of permission bits (`ZooDefs.Perms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Perms(i32);

impl Perms {
    /// No permission.
    pub const NONE: Perms = Perms(0);
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Every permission.
    pub const ALL: Perms = Perms(31);

    /// The set as its wire bits.
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// The set for raw wire bits (unknown bits are kept, as ZooKeeper keeps them).
    pub const fn from_bits(bits: i32) -> Perms {
        Perms(bits)
    }

    /// Whether every permission of `other` is in `self`.
    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

jute_record! {
    /// An identity: an auth scheme and an id within it (`world:anyone`,
    /// `digest:user:base64(sha1(user:password))`, `ip:10.0.0.0/8`, `auth:`…).
    pub struct Id {
        /// The scheme: world, auth, digest, ip, super, sasl, x509, …
        pub scheme: String,
        /// The id, in the scheme's format.
        pub id: String,
    }
}

impl Id {
    /// An identity from its scheme and id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }

    /// `auth:` — the creator's authenticated identities, expanded by the server.
    pub fn auth_ids() -> Id {
        Id::new("auth", "")
    }
}

jute_record! {
    /// One entry of a znode's ACL: who may do what.
    pub struct Acl {
        /// The permission bits granted (see [`Perms`]).
        pub perms: i32,
        /// To whom.
        pub id: Id,
    }
}

impl Acl {
    /// An entry granting `perms` to `id`.
    pub fn new(perms: Perms, id: Id) -> Acl {
        Acl {
            perms: perms.bits(),
            id,
        }
    }

    /// The entry's permissions.
    pub fn perms(&self) -> Perms {
        Perms::from_bits(self.perms)
    }

    /// `OPEN_ACL_UNSAFE`: every permission to anyone.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::anyone())]
    }

    /// `CREATOR_ALL_ACL`: every permission to the creator's authenticated identities.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::auth_ids())]
    }

    /// `READ_ACL_UNSAFE`: read to anyone.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::anyone())]
    }
}
