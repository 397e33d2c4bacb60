//! Access control: permission bits, `Id`, `ACL`, and ZooKeeper's well-known ACL sets.

use bytes::BytesMut;

use crate::jute::{jute_record, DecodeError, DecodeResult, Reader, Record};

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

/// An identity: an auth scheme and an id within it (`world:anyone`,
/// `digest:user:base64(sha1(user:password))`, `ip:10.0.0.0/8`, `auth:`…).
///
/// On the wire the id is a nullable `ustring`. A null id reads as empty for the `auth`
/// scheme, whose id ZooKeeper never looks at (`PrepRequestProcessor.fixupACL`), and
/// which kazoo sends as null (`CREATOR_ALL_ACL`: its `write_string` writes every empty
/// string as null). For any other scheme null is refused, as ZooKeeper fails such an
/// entry with a NullPointerException answered MarshallingError.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Id {
    /// The scheme: world, auth, digest, ip, super, sasl, x509, …
    pub scheme: String,
    /// The id, in the scheme's format.
    pub id: String,
}

impl Record for Id {
    const MIN_SIZE: usize = 8;

    fn write(&self, w: &mut BytesMut) {
        self.scheme.write(w);
        self.id.write(w);
    }

    fn read(r: &mut Reader) -> DecodeResult<Self> {
        let scheme = String::read(r)?;
        let id = match r.read_ustring()? {
            Some(id) => id,
            None if scheme == "auth" => String::new(),
            None => return Err(DecodeError::UnexpectedNull { what: "id" }),
        };
        Ok(Id { scheme, id })
    }
}

#[cfg(test)]
impl crate::arbitrary::ArbitraryRecord for Id {
    fn strategy() -> ::proptest::strategy::BoxedStrategy<Self> {
        use ::proptest::strategy::Strategy;
        (String::strategy(), String::strategy())
            .prop_map(|(scheme, id)| Id { scheme, id })
            .boxed()
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

#[cfg(test)]
mod null_id_tests {
    use super::*;
    use crate::jute::JuteWrite;

    fn encoded(scheme: &str, id: Option<&str>) -> bytes::Bytes {
        let mut w = BytesMut::new();
        w.write_ustring(Some(scheme));
        w.write_ustring(id);
        w.freeze()
    }

    #[test]
    fn a_null_id_is_empty_for_auth_and_refused_elsewhere() {
        let mut r = Reader::new(encoded("auth", None));
        assert_eq!(Id::read(&mut r), Ok(Id::auth_ids()));
        for scheme in ["world", "digest", "ip"] {
            let mut r = Reader::new(encoded(scheme, None));
            assert_eq!(
                Id::read(&mut r),
                Err(DecodeError::UnexpectedNull { what: "id" }),
                "{scheme}"
            );
        }
        let mut r = Reader::new(encoded("digest", Some("u:x")));
        assert_eq!(Id::read(&mut r), Ok(Id::new("digest", "u:x")));
    }
}
