//! Every record a ZooKeeper client and server exchange, grouped by what they are for.

pub mod acl_ops;
pub mod auth;
pub mod multi;
pub mod node;
pub mod reconfig;
pub mod session;
pub mod watches;
