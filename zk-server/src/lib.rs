//! The bundled ZooKeeper-compatible server (znode tree, sessions, watches, ACLs,
//! durable log, replication). Under construction: see DESIGN.md, "Server".
