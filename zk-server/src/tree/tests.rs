//! The tree's specification tests, and a property test against the model (the tree
//! as it was before the compact layout): after any sequence of creates, deletes,
//! setData, setACL and multis (committed or rolled back), both trees hold the same
//! paths, data, ACLs, Stats and children, and the same digest.

use proptest::prelude::*;

use super::model::ModelTree;
use super::*;

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

#[test]
fn new_tree_has_zookeepers_system_nodes() {
    let t = DataTree::new();
    // As Apache ZooKeeper 3.8 reports them.
    assert_eq!(t.stat("/zookeeper").map(|s| s.cversion), Some(-2));
    assert_eq!(t.stat("/").map(|s| s.cversion), Some(-1));
    assert_eq!(t.stat(CONFIG_PATH).map(|s| s.aversion), Some(-1));
    assert_eq!(
        t.paths(),
        vec!["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    );
    assert_eq!(t.stat("/").map(|s| s.num_children), Some(1));
    assert_eq!(
        t.get(CONFIG_PATH).map(|n| n.acl().clone()),
        Some(Acl::read_unsafe().into())
    );
}

#[test]
fn create_bumps_parent_cversion_and_pzxid_delete_only_pzxid() {
    let mut t = DataTree::new();
    t.create_node("/p", None, &open(), 0, 2, 100);
    t.create_node("/p/a", Some(Bytes::from_static(b"x")), &open(), 0, 3, 101);
    let p = t.stat("/p").unwrap();
    assert_eq!((p.cversion, p.pzxid, p.num_children), (1, 3, 1));
    t.delete_node("/p/a", 4);
    // Reported cversion counts the delete too (2 * creates - children).
    let p = t.stat("/p").unwrap();
    assert_eq!((p.cversion, p.pzxid, p.num_children), (2, 4, 0));
    assert_eq!(t.get("/p").unwrap().stored_stat().cversion, 1);
    assert_eq!((p.czxid, p.mzxid, p.version), (2, 2, 0));
}

#[test]
fn indices_follow_ephemerals_containers_and_ttls() {
    let mut t = DataTree::new();
    t.create_node("/e", None, &open(), 7, 2, 0);
    t.create_node("/c", None, &open(), CONTAINER_OWNER, 3, 0);
    t.create_node("/t", None, &open(), ttl_owner(1000), 4, 0);
    assert_eq!(t.ephemerals_of(7).collect::<Vec<_>>(), vec!["/e"]);
    assert!(t.containers().contains("/c"));
    assert!(t.ttl_nodes().contains("/t"));
    t.delete_node("/e", 5);
    t.delete_node("/c", 6);
    t.delete_node("/t", 7);
    assert_eq!(t.ephemeral_count(), 0);
    assert!(t.containers().is_empty() && t.ttl_nodes().is_empty());
}

#[test]
fn rollback_restores_the_exact_prior_tree() {
    let mut t = DataTree::new();
    t.create_node("/a", Some(Bytes::from_static(b"1")), &open(), 0, 2, 0);
    t.create_node("/a/b", None, &open(), 9, 3, 0);
    let before = t.clone();
    let size_before = t.approximate_data_size();
    t.begin_journal();
    t.set_data("/a", Some(Bytes::from_static(b"22")), 1, 4, 1);
    t.delete_node("/a/b", 4);
    t.create_node("/a/c", None, &open(), 0, 4, 1);
    t.set_acl("/a", Acl::read_unsafe(), 1);
    t.rollback_journal();
    assert_eq!(t, before);
    assert_eq!(t.approximate_data_size(), size_before);
    assert_eq!(t.ephemerals_of(9).collect::<Vec<_>>(), vec!["/a/b"]);
}

#[test]
fn descendant_count_counts_the_whole_subtree() {
    let mut t = DataTree::new();
    t.create_node("/a", None, &open(), 0, 2, 0);
    t.create_node("/a/b", None, &open(), 0, 3, 0);
    t.create_node("/a/b/c", None, &open(), 0, 4, 0);
    t.create_node("/a/d", None, &open(), 0, 5, 0);
    assert_eq!(t.descendant_count("/a"), 3);
    assert_eq!(t.descendant_count("/a/d"), 0);
}

#[test]
fn long_names_sequential_names_and_null_data_are_kept() {
    let mut t = DataTree::new();
    let long = "/a-name-longer-than-eleven-bytes";
    t.create_node(long, None, &open(), 0, 2, 0);
    t.create_node(
        &format!("{long}/x0000000001"),
        Some(Bytes::new()),
        &open(),
        0,
        3,
        0,
    );
    assert_eq!(t.get(long).unwrap().data(), None);
    assert_eq!(
        t.get(&format!("{long}/x0000000001")).unwrap().data(),
        Some(Bytes::new())
    );
    assert_eq!(
        t.get(long).unwrap().children().collect::<Vec<_>>(),
        vec!["x0000000001"]
    );
    assert!(t.get("/a-name-longer-than-eleven-byte").is_none());
    t.delete_node(&format!("{long}/x0000000001"), 4);
    t.delete_node(long, 5);
    t.check_consistency().unwrap();
    assert_eq!(t.node_count(), 4);
}

#[test]
fn paths_that_name_no_znode_find_nothing() {
    let mut t = DataTree::new();
    t.create_node("/a", None, &open(), 0, 2, 0);
    for path in ["", "a", "/a/", "//a", "/a//", "/b", "/a/b"] {
        assert!(t.get(path).is_none(), "{path:?}");
    }
    assert!(t.create_node("/a", None, &open(), 0, 3, 0).is_none());
    assert!(t.create_node("/x/y", None, &open(), 0, 3, 0).is_none());
    assert!(t.delete_node("/", 3).is_none());
    t.check_consistency().unwrap();
}

#[test]
fn children_are_listed_in_byte_order() {
    let mut t = DataTree::new();
    t.create_node("/p", None, &open(), 0, 2, 0);
    let names = ["b", "a", "B", "a-long-name-indeed", "0", "ä", "a0"];
    for (i, name) in names.iter().enumerate() {
        t.create_node(&format!("/p/{name}"), None, &open(), 0, 3 + i as i64, 0);
    }
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort_unstable();
    assert_eq!(t.get("/p").unwrap().children().collect::<Vec<_>>(), sorted);
}

#[test]
fn a_snapshot_round_trip_keeps_the_tree() {
    let mut t = DataTree::new();
    t.create_node("/a", Some(Bytes::from_static(b"1")), &open(), 0, 2, 0);
    t.create_node("/a/e", None, &Acl::read_unsafe(), 9, 3, 0);
    t.create_node(
        "/a/a-long-name-indeed",
        Some(Bytes::from(vec![3; 5000])),
        &open(),
        0,
        4,
        0,
    );
    t.create_node("/c", None, &open(), CONTAINER_OWNER, 5, 0);
    let mut bytes = Vec::new();
    t.encode_into(&mut bytes);
    bytes.extend_from_slice(b"after");
    let mut input = &bytes[..];
    let back = DataTree::decode(&mut input).unwrap();
    assert_eq!(input, b"after");
    assert_eq!(back, t);
    assert_eq!(back.digest(), t.digest());
    assert_eq!(back.approximate_data_size(), t.approximate_data_size());
    back.check_consistency().unwrap();
    // Every cut is refused, never a panic.
    for len in 0..bytes.len() - 5 {
        assert!(
            DataTree::decode(&mut &bytes[..len]).is_err(),
            "cut at {len}"
        );
    }
}

/// One change, as `apply` would make it once its checks passed.
#[derive(Debug, Clone)]
enum Op {
    Create {
        path: usize,
        data: Data,
        acl: usize,
        owner: usize,
    },
    Delete {
        path: usize,
    },
    SetData {
        path: usize,
        data: Data,
    },
    SetAcl {
        path: usize,
        acl: usize,
    },
    Multi {
        ops: Vec<Op>,
        commit: bool,
    },
}

/// Data: null, empty, short, or large (kept shared).
#[derive(Debug, Clone)]
enum Data {
    Null,
    Bytes(Vec<u8>),
}

impl Data {
    fn bytes(&self) -> Option<Bytes> {
        match self {
            Data::Null => None,
            Data::Bytes(b) => Some(Bytes::from(b.clone())),
        }
    }
}

const PATHS: &[&str] = &[
    "/a",
    "/a/b",
    "/a/b/c",
    "/a/a-name-longer-than-eleven",
    "/a/a-name-longer-than-eleven/d",
    "/b",
    "/b/a",
    "/zookeeper/quota/a",
    "/zookeeper/quota/a/zookeeper_limits",
    "/zookeeper/quota/a/zookeeper_stats",
];

const OWNERS: &[i64] = &[0, 0, 0x100, 0x200, CONTAINER_OWNER, ttl_owner(1000)];

fn acl_of(choice: usize) -> Vec<Acl> {
    match choice % 3 {
        0 => Acl::open_unsafe(),
        1 => Acl::read_unsafe(),
        _ => Acl::creator_all(),
    }
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        Just(Data::Null),
        Just(Data::Bytes(Vec::new())),
        prop::collection::vec(any::<u8>(), 1..120).prop_map(Data::Bytes),
        Just(Data::Bytes(b"count=2,bytes=10".to_vec())),
        (4090usize..4100).prop_map(|n| Data::Bytes(vec![7; n])),
    ]
}

fn single_op() -> impl Strategy<Value = Op> {
    let path = 0..PATHS.len();
    prop_oneof![
        4 => (path.clone(), data(), 0..3usize, 0..OWNERS.len())
            .prop_map(|(path, data, acl, owner)| Op::Create { path, data, acl, owner }),
        2 => path.clone().prop_map(|path| Op::Delete { path }),
        2 => (path.clone(), data()).prop_map(|(path, data)| Op::SetData { path, data }),
        1 => (path, 0..3usize).prop_map(|(path, acl)| Op::SetAcl { path, acl }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => single_op(),
        1 => (prop::collection::vec(single_op(), 1..6), any::<bool>())
            .prop_map(|(ops, commit)| Op::Multi { ops, commit }),
    ]
}

/// Both trees, changed alike.
struct Pair {
    tree: DataTree,
    model: ModelTree,
    zxid: i64,
}

impl Pair {
    fn apply(&mut self, op: &Op) {
        self.zxid += 1;
        let zxid = self.zxid;
        match op {
            Op::Create {
                path,
                data,
                acl,
                owner,
            } => {
                let path = PATHS[*path];
                let parent_ok = self
                    .model
                    .get(zk_proto::path::parent(path))
                    .is_some_and(|p| !matches!(p.kind(), NodeKind::Ephemeral(_)));
                if !parent_ok || self.model.get(path).is_some() {
                    return;
                }
                let acl = acl_of(*acl);
                let owner = OWNERS[*owner];
                let a = self
                    .tree
                    .create_node(path, data.bytes(), &acl, owner, zxid, zxid * 10);
                let b = self
                    .model
                    .create_node(path, data.bytes(), &acl, owner, zxid, zxid * 10);
                assert_eq!(a, Some(b), "create {path}");
            }
            Op::Delete { path } => {
                let path = PATHS[*path];
                if self.model.get(path).is_none_or(|n| !n.children.is_empty()) {
                    return;
                }
                let a = self.tree.delete_node(path, zxid);
                let b = self.model.delete_node(path, zxid).map(|n| n.acl);
                assert_eq!(a, b, "delete {path}");
            }
            Op::SetData { path, data } => {
                let path = PATHS[*path];
                let version = zxid as i32;
                let a = self
                    .tree
                    .set_data(path, data.bytes(), version, zxid, zxid * 10);
                let b = self
                    .model
                    .set_data(path, data.bytes(), version, zxid, zxid * 10);
                assert_eq!(a, b, "setData {path}");
            }
            Op::SetAcl { path, acl } => {
                let path = PATHS[*path];
                let a = self.tree.set_acl(path, acl_of(*acl), zxid as i32);
                let b = self.model.set_acl(path, acl_of(*acl), zxid as i32);
                assert_eq!(a, b, "setACL {path}");
            }
            Op::Multi { ops, commit } => {
                self.tree.begin_journal();
                self.model.begin_journal();
                for op in ops {
                    self.apply(op);
                }
                if *commit {
                    self.tree.commit_journal();
                    self.model.commit_journal();
                } else {
                    self.tree.rollback_journal();
                    self.model.rollback_journal();
                }
            }
        }
    }

    /// The trees agree on everything a client or a digest can see.
    fn check(&self) -> Result<(), TestCaseError> {
        self.tree.check_consistency().map_err(TestCaseError::fail)?;
        self.model
            .check_consistency()
            .map_err(TestCaseError::fail)?;
        let paths = self.tree.paths();
        prop_assert_eq!(&paths, &self.model.paths());
        for path in &paths {
            let (a, b) = (self.tree.get(path).unwrap(), self.model.get(path).unwrap());
            prop_assert_eq!(a.stat(), b.stat(), "{}", path);
            prop_assert_eq!(a.stored_stat(), b.stat, "{}", path);
            prop_assert_eq!(a.data(), b.data.clone(), "{}", path);
            prop_assert_eq!(a.acl(), &b.acl, "{}", path);
            let children: Vec<&str> = a.children().collect();
            let expected: Vec<&str> = b.children.iter().map(|c| &**c).collect();
            prop_assert_eq!(children, expected, "{}", path);
        }
        prop_assert_eq!(self.tree.digest(), self.model.digest());
        prop_assert_eq!(
            self.tree.approximate_data_size(),
            self.model.approximate_data_size()
        );
        prop_assert_eq!(self.tree.all_ephemerals(), self.model.all_ephemerals());
        prop_assert_eq!(self.tree.containers(), self.model.containers());
        prop_assert_eq!(self.tree.ttl_nodes(), self.model.ttl_nodes());
        prop_assert_eq!(
            self.tree.quota_roots().collect::<Vec<_>>(),
            self.model.quota_roots().collect::<Vec<_>>()
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_compact_tree_behaves_as_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut pair = Pair { tree: DataTree::new(), model: ModelTree::new(), zxid: 1 };
        for op in &ops {
            pair.apply(op);
            pair.check()?;
        }
        // Its snapshot reads back as itself, and the model's (version 1, through
        // its znodes) as the same tree.
        let mut bytes = Vec::new();
        pair.tree.encode_into(&mut bytes);
        let back = DataTree::decode(&mut &bytes[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        back.check_consistency().map_err(TestCaseError::fail)?;
        prop_assert!(back == pair.tree);
        let from_model = DataTree::from_nodes_exact(
            pair.model.iter().map(|(p, n)| (p.to_string(), n.clone())),
        );
        from_model.check_consistency().map_err(TestCaseError::fail)?;
        prop_assert!(from_model == pair.tree);
        prop_assert_eq!(from_model.digest(), pair.tree.digest());
    }
}
