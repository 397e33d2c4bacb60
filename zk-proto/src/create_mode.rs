//! `CreateMode`: the flags of a create request.

use crate::int_enum::int_enum;

int_enum! {
    /// How a znode is created (the `flags` field of [`crate::CreateRequest`]).
    pub enum CreateMode ("create mode") {
        /// Stays until deleted.
        Persistent = 0,
        /// Deleted when the creating session ends.
        Ephemeral = 1,
        /// Persistent, with a 10-digit counter appended to the name.
        PersistentSequential = 2,
        /// Ephemeral, with a 10-digit counter appended to the name.
        EphemeralSequential = 3,
        /// Removed by the server once it has had children and has none left.
        Container = 4,
        /// Removed by the server when childless and unmodified for its TTL.
        PersistentWithTtl = 5,
        /// [`CreateMode::PersistentWithTtl`] with a sequential suffix.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the znode is tied to its session.
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the name gets a sequence suffix.
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the znode is a container.
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }

    /// Whether the znode has a time to live.
    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}
