//! The async ZooKeeper client. Under construction: see DESIGN.md, "Client".
