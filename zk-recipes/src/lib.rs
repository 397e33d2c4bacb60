//! Curator-style recipes on zk-client. Under construction: see DESIGN.md, "Recipes".
