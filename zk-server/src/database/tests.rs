//! Specification tests for `apply` and the reads, each named after the ZooKeeper
//! behaviour it pins.

use bytes::Bytes;
use proptest::prelude::*;
use zk_proto::*;

use super::*;
use crate::acl::digest;
use crate::tree::model::ModelTree;
use crate::tree::{ttl_owner, CONTAINER_OWNER};
use crate::txn::{Txn, TxnOp};

const S1: i64 = 0x0100_0000_0000_0001;
const S2: i64 = 0x0100_0000_0000_0002;

/// A database with sessions S1 and S2 open, and a cursor for the next zxid.
struct Fixture {
    db: ZkDatabase,
    zxid: i64,
    auth: Vec<Id>,
    extended_types: bool,
    enforce_quota: bool,
}

impl Fixture {
    fn new() -> Fixture {
        let mut f = Fixture {
            db: ZkDatabase::new(),
            zxid: 0,
            auth: vec![Id::new("ip", "127.0.0.1")],
            extended_types: true,
            enforce_quota: false,
        };
        for s in [S1, S2] {
            f.run_as(
                s,
                TxnOp::CreateSession {
                    timeout: 30000,
                    passwd: Bytes::from_static(&[1; 16]),
                },
            )
            .result
            .unwrap();
        }
        f
    }

    fn run_as(&mut self, session_id: i64, op: TxnOp) -> Applied {
        self.zxid += 1;
        let txn = Txn {
            // Numbered in order, as a member numbers its writes (a repeated number is a
            // copy, which changes nothing).
            origin: crate::txn::Origin {
                server: 0,
                seq: self.zxid as u64,
            },
            session_id,
            xid: 1,
            time: 1_000 * self.zxid,
            auth: self.auth.clone(),
            enforce_quota: self.enforce_quota,
            extended_types: self.extended_types,
            x509_provider: false,
            sasl_provider: false,
            op,
        };
        self.db.apply(self.zxid, &txn)
    }

    fn run(&mut self, op: TxnOp) -> Result<Response, ErrorCode> {
        self.run_as(S1, op).result
    }

    fn create(&mut self, path: &str, mode: CreateMode) -> Result<String, ErrorCode> {
        match self.run(create_op(path, mode))? {
            Response::Create2(r) => Ok(r.path),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn stat(&self, path: &str) -> Stat {
        self.db.tree().stat(path).expect("node exists")
    }

    fn read(&self, request: Request) -> Result<Response, ErrorCode> {
        self.db.read(S1, &self.auth, &request)
    }
}

fn create_op(path: &str, mode: CreateMode) -> TxnOp {
    TxnOp::Create {
        opcode: OpCode::Create2,
        request: CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"d")),
            acl: Acl::open_unsafe(),
            flags: mode.code(),
        },
    }
}

fn set_data(path: &str, data: &'static [u8], version: i32) -> TxnOp {
    TxnOp::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::from_static(data)),
        version,
    })
}

fn delete(path: &str, version: i32) -> TxnOp {
    TxnOp::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

#[test]
fn create_sets_stat_from_zxid_and_time() {
    let mut f = Fixture::new();
    f.create("/a", CreateMode::Persistent).unwrap();
    let s = f.stat("/a");
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (3, 3, 3));
    assert_eq!((s.ctime, s.mtime), (3000, 3000));
    assert_eq!(
        (s.version, s.cversion, s.aversion, s.ephemeral_owner),
        (0, 0, 0, 0)
    );
    assert_eq!((s.data_length, s.num_children), (1, 0));
}

#[test]
fn plain_create_answers_path_only_create2_answers_stat() {
    let mut f = Fixture::new();
    let r = f.run(TxnOp::Create {
        opcode: OpCode::Create,
        request: CreateRequest {
            path: "/x".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        },
    });
    assert_eq!(
        r,
        Ok(Response::Create(CreateResponse { path: "/x".into() }))
    );
    assert!(matches!(f.create("/y", CreateMode::Persistent), Ok(p) if p == "/y"));
}

#[test]
fn sequential_names_use_the_parent_cversion_zero_padded() {
    let mut f = Fixture::new();
    f.create("/q", CreateMode::Persistent).unwrap();
    assert_eq!(
        f.create("/q/n-", CreateMode::PersistentSequential).unwrap(),
        "/q/n-0000000000"
    );
    f.create("/q/plain", CreateMode::Persistent).unwrap();
    f.run(delete("/q/plain", -1)).unwrap();
    // Deletes leave cversion alone: two creates so far.
    assert_eq!(
        f.create("/q/n-", CreateMode::EphemeralSequential).unwrap(),
        "/q/n-0000000002"
    );
    assert_eq!(
        f.create("/q/", CreateMode::PersistentSequential).unwrap(),
        "/q/0000000003"
    );
}

#[test]
fn create_errors_come_in_zookeepers_order() {
    let mut f = Fixture::new();
    assert_eq!(
        f.create("/a/b", CreateMode::Persistent),
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        f.create("bad", CreateMode::Persistent),
        Err(ErrorCode::BadArguments)
    );
    // The parent ("/a") is looked up before the whole path is validated.
    assert_eq!(
        f.create("/a/", CreateMode::Persistent),
        Err(ErrorCode::NoNode)
    );
    f.create("/a", CreateMode::Persistent).unwrap();
    assert_eq!(
        f.create("/a/", CreateMode::Persistent),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        f.create("/a", CreateMode::Persistent),
        Err(ErrorCode::NodeExists)
    );
    // The root exists (ZooKeeper resolves its parent to the root record itself).
    assert_eq!(
        f.create("/", CreateMode::Persistent),
        Err(ErrorCode::NodeExists)
    );
    f.create("/e", CreateMode::Ephemeral).unwrap();
    assert_eq!(
        f.create("/e/c", CreateMode::Persistent),
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    let bad_flags = f.run(TxnOp::Create {
        opcode: OpCode::Create,
        request: CreateRequest {
            path: "/f".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 42,
        },
    });
    assert_eq!(bad_flags, Err(ErrorCode::BadArguments));
    let no_acl = f.run(TxnOp::Create {
        opcode: OpCode::Create,
        request: CreateRequest {
            path: "/g".into(),
            data: None,
            acl: vec![],
            flags: 0,
        },
    });
    assert_eq!(no_acl, Err(ErrorCode::InvalidAcl));
}

#[test]
fn ttl_creates_validate_the_ttl_and_mark_the_owner() {
    let mut f = Fixture::new();
    let ttl = |path: &str, mode: CreateMode, ttl: i64| {
        TxnOp::CreateTtl(CreateTtlRequest {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: mode.code(),
            ttl,
        })
    };
    assert_eq!(
        f.run(ttl("/t", CreateMode::PersistentWithTtl, 0)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        f.run(ttl("/t", CreateMode::PersistentWithTtl, -5)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        f.run(ttl("/t", CreateMode::Persistent, 5000)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        f.run(ttl("/t", CreateMode::PersistentWithTtl, 1 << 40)),
        Err(ErrorCode::BadArguments)
    );
    f.run(ttl("/t", CreateMode::PersistentWithTtl, (1 << 40) - 1))
        .unwrap();
    f.run(ttl("/t2", CreateMode::PersistentWithTtl, 5000))
        .unwrap();
    // Stored with the TTL mark, reported with no owner (as ZooKeeper reports it).
    assert_eq!(
        f.db.tree().get("/t2").unwrap().ephemeral_owner(),
        ttl_owner(5000)
    );
    assert_eq!(f.stat("/t2").ephemeral_owner, 0);
    assert!(f.db.tree().ttl_nodes().contains("/t2"));
    // A TTL mode through create2 (no TTL field) is refused; without extended types,
    // TTL modes are unimplemented.
    assert_eq!(
        f.create("/t3", CreateMode::PersistentWithTtl),
        Err(ErrorCode::BadArguments)
    );
    f.extended_types = false;
    assert_eq!(
        f.run(ttl("/t4", CreateMode::PersistentWithTtl, 5000)),
        Err(ErrorCode::Unimplemented)
    );
    assert_eq!(
        f.run(ttl("/t4", CreateMode::Persistent, 5000)),
        Err(ErrorCode::BadArguments)
    );
}

#[test]
fn containers_and_ttl_nodes_are_reaped_only_when_still_eligible() {
    let mut f = Fixture::new();
    // Flag 4 through create2 makes a plain persistent node, as in ZooKeeper...
    f.create("/not-container", CreateMode::Container).unwrap();
    assert!(!f.db.tree().containers().contains("/not-container"));
    // ...only the createContainer opcode makes a container (whatever the flags).
    f.run(TxnOp::Create {
        opcode: OpCode::CreateContainer,
        request: CreateRequest {
            path: "/c".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        },
    })
    .unwrap();
    assert_eq!(
        f.db.tree().get("/c").unwrap().ephemeral_owner(),
        CONTAINER_OWNER
    );
    assert_eq!(f.stat("/c").ephemeral_owner, 0);
    // Never had a child: not reaped.
    f.run_as(0, TxnOp::ReapContainer { path: "/c".into() })
        .result
        .unwrap();
    assert!(f.db.tree().get("/c").is_some());
    f.create("/c/x", CreateMode::Persistent).unwrap();
    f.run(delete("/c/x", -1)).unwrap();
    let reaped = f.run_as(0, TxnOp::ReapContainer { path: "/c".into() });
    assert!(f.db.tree().get("/c").is_none());
    assert!(reaped.events.contains(&WatchEvent {
        path: "/c".into(),
        event_type: EventType::NodeDeleted,
        acl: Acl::open_unsafe().into()
    }));

    f.run(TxnOp::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl: 1500,
    }))
    .unwrap();
    // Reaped only once (txn time - mtime) exceeds the TTL; the fixture's clock is
    // 1000 ms per zxid.
    f.run_as(0, TxnOp::ReapTtl { path: "/t".into() })
        .result
        .unwrap();
    assert!(f.db.tree().get("/t").is_some());
    f.run_as(0, TxnOp::ReapTtl { path: "/t".into() })
        .result
        .unwrap();
    assert!(f.db.tree().get("/t").is_none());
}

#[test]
fn set_data_checks_version_and_bumps_it() {
    let mut f = Fixture::new();
    f.create("/a", CreateMode::Persistent).unwrap();
    assert_eq!(f.run(set_data("/a", b"x", 5)), Err(ErrorCode::BadVersion));
    let r = f.run_as(S1, set_data("/a", b"xyz", 0));
    let Ok(Response::SetData(SetDataResponse { stat })) = r.result else {
        panic!("{r:?}")
    };
    assert_eq!(
        (stat.version, stat.data_length, stat.mzxid, stat.czxid),
        (1, 3, 5, 3)
    );
    assert_eq!(stat.pzxid, 3, "setData leaves pzxid alone");
    assert_eq!(
        r.events,
        vec![WatchEvent {
            path: "/a".into(),
            event_type: EventType::NodeDataChanged,
            acl: Acl::open_unsafe().into()
        }]
    );
    assert_eq!(f.run(set_data("/nope", b"x", -1)), Err(ErrorCode::NoNode));
}

#[test]
fn delete_checks_version_children_and_special_paths() {
    let mut f = Fixture::new();
    f.create("/a", CreateMode::Persistent).unwrap();
    f.create("/a/b", CreateMode::Persistent).unwrap();
    assert_eq!(f.run(delete("/a", -1)), Err(ErrorCode::NotEmpty));
    assert_eq!(f.run(delete("/a/b", 3)), Err(ErrorCode::BadVersion));
    assert_eq!(
        f.run(delete("/zookeeper", -1)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(f.run(delete("/", -1)), Err(ErrorCode::BadArguments));
    assert_eq!(f.run(delete("/x", -1)), Err(ErrorCode::NoNode));
    let r = f.run_as(S1, delete("/a/b", 0));
    assert_eq!(r.result, Ok(Response::Empty));
    assert_eq!(
        r.events,
        vec![
            WatchEvent {
                path: "/a/b".into(),
                event_type: EventType::NodeDeleted,
                acl: Acl::open_unsafe().into()
            },
            WatchEvent {
                path: "/a".into(),
                event_type: EventType::NodeChildrenChanged,
                acl: Acl::open_unsafe().into()
            },
        ]
    );
}

#[test]
fn acls_guard_every_write_and_read() {
    let mut f = Fixture::new();
    let bob = Id::new("digest", digest("bob:pw"));
    f.auth.push(bob.clone());
    f.run(TxnOp::Create {
        opcode: OpCode::Create,
        request: CreateRequest {
            path: "/secure".into(),
            data: None,
            acl: vec![
                Acl::new(Perms::ALL, Id::auth_ids()),
                Acl::new(Perms::READ, Id::anyone()),
            ],
            flags: 0,
        },
    })
    .unwrap();
    // auth: expanded to bob's digest identity only (ip is not an authenticated scheme).
    let node_acl = f.db.tree().get("/secure").unwrap().acl().to_vec();
    assert_eq!(
        node_acl,
        vec![
            Acl::new(Perms::ALL, bob),
            Acl::new(Perms::READ, Id::anyone())
        ]
    );

    // Without bob's identity: reads pass (world READ), writes fail.
    f.auth = vec![Id::new("ip", "127.0.0.1")];
    assert_eq!(f.run(set_data("/secure", b"x", -1)), Err(ErrorCode::NoAuth));
    assert_eq!(
        f.create("/secure/c", CreateMode::Persistent),
        Err(ErrorCode::NoAuth)
    );
    assert!(f
        .read(Request::GetData(GetDataRequest {
            path: "/secure".into(),
            watch: false
        }))
        .is_ok());
    // getACL with READ only masks digest hashes.
    let Ok(Response::GetAcl(r)) = f.read(Request::GetAcl(GetAclRequest {
        path: "/secure".into(),
    })) else {
        panic!()
    };
    assert_eq!(r.acl[0].id, Id::new("digest", "bob:x"));
    // The super user passes everything.
    f.auth = vec![crate::acl::super_id()];
    assert!(f.run(set_data("/secure", b"x", -1)).is_ok());
}

#[test]
fn set_acl_bumps_aversion_and_fires_nothing() {
    let mut f = Fixture::new();
    f.create("/a", CreateMode::Persistent).unwrap();
    let op = |version| {
        TxnOp::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: Acl::read_unsafe(),
            version,
        })
    };
    assert_eq!(f.run(op(1)), Err(ErrorCode::BadVersion));
    let r = f.run_as(S1, op(0));
    assert!(
        matches!(r.result, Ok(Response::SetAcl(SetAclResponse { stat })) if stat.aversion == 1)
    );
    assert!(r.events.is_empty());
}

#[test]
fn multi_is_all_or_nothing_with_zookeepers_result_codes() {
    let mut f = Fixture::new();
    f.create("/m", CreateMode::Persistent).unwrap();
    let before = f.db.tree().clone();
    let failing = MultiRequest {
        ops: vec![
            MultiOp::Create {
                opcode: OpCode::Create,
                request: CreateRequest {
                    path: "/m/a".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            },
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: None,
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/m".into(),
                version: 7,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/m/a".into(),
                version: -1,
            }),
        ],
    };
    let r = f.run_as(S1, TxnOp::Multi(failing));
    assert_eq!(
        r.result,
        Ok(Response::Multi(MultiResponse {
            results: vec![
                OpResult::error(ErrorCode::Ok),
                OpResult::error(ErrorCode::Ok),
                OpResult::error(ErrorCode::BadVersion),
                OpResult::error(ErrorCode::RuntimeInconsistency),
            ]
        }))
    );
    assert!(r.events.is_empty());
    assert_eq!(f.db.tree(), &before);

    let ok = MultiRequest {
        ops: vec![
            MultiOp::Create {
                opcode: OpCode::Create2,
                request: CreateRequest {
                    path: "/m/a".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            },
            MultiOp::Check(CheckVersionRequest {
                path: "/m".into(),
                version: 0,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/m/a".into(),
                version: -1,
            }),
        ],
    };
    let r = f.run_as(S1, TxnOp::Multi(ok));
    let Ok(Response::Multi(m)) = r.result else {
        panic!()
    };
    // create2 inside a multi answers with the path only, as ZooKeeper 3.8 does.
    assert_eq!(
        m.results[0],
        OpResult::Create {
            path: "/m/a".into()
        }
    );
    assert_eq!(m.results[1..], [OpResult::Check, OpResult::Delete]);
    assert_eq!(r.events.len(), 4);
    // One create and one delete: reported cversion 2.
    assert_eq!(f.stat("/m").cversion, 2);
}

#[test]
fn closing_a_session_deletes_its_ephemerals_and_fires_their_watches() {
    let mut f = Fixture::new();
    f.create("/p", CreateMode::Persistent).unwrap();
    f.create("/p/e1", CreateMode::Ephemeral).unwrap();
    f.run_as(S2, create_op("/p/e2", CreateMode::Ephemeral))
        .result
        .unwrap();
    let r = f.run_as(S1, TxnOp::CloseSession);
    assert_eq!(r.result, Ok(Response::Empty));
    assert!(f.db.tree().get("/p/e1").is_none());
    assert!(f.db.tree().get("/p/e2").is_some());
    assert!(f.db.session(S1).is_none());
    assert!(r.events.contains(&WatchEvent {
        path: "/p/e1".into(),
        event_type: EventType::NodeDeleted,
        acl: Acl::open_unsafe().into()
    }));
    // The closed session can do nothing more.
    assert_eq!(
        f.create("/after", CreateMode::Persistent),
        Err(ErrorCode::SessionExpired)
    );
}

#[test]
fn reads_answer_from_the_tree() {
    let mut f = Fixture::new();
    f.create("/r", CreateMode::Persistent).unwrap();
    f.create("/r/a", CreateMode::Ephemeral).unwrap();
    f.create("/r/b", CreateMode::Persistent).unwrap();
    f.create("/r/b/c", CreateMode::Persistent).unwrap();
    assert_eq!(
        f.read(Request::GetChildren(GetChildrenRequest {
            path: "/r".into(),
            watch: false
        })),
        Ok(Response::GetChildren(GetChildrenResponse {
            children: vec!["a".into(), "b".into()]
        }))
    );
    assert_eq!(
        f.read(Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: "/r".into()
        })),
        Ok(Response::GetAllChildrenNumber(
            GetAllChildrenNumberResponse { total_number: 3 }
        ))
    );
    assert_eq!(
        f.read(Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: "/r".into()
        })),
        Ok(Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec!["/r/a".into()]
        }))
    );
    assert_eq!(
        f.read(Request::Exists(ExistsRequest {
            path: "/none".into(),
            watch: false
        })),
        Err(ErrorCode::NoNode)
    );
    let multi = MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/r/b".into(),
                watch: false,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/none".into(),
                watch: false,
            }),
        ],
    };
    let Ok(Response::Multi(m)) = f.read(Request::MultiRead(multi)) else {
        panic!()
    };
    assert!(matches!(m.results[0], OpResult::GetData { .. }));
    assert_eq!(m.results[1], OpResult::error(ErrorCode::NoNode));
}

/// What zkCli's `setquota -n 5 /qp` does: make the quota path, then the limits and
/// stats nodes.
fn set_quota(f: &mut Fixture, root: &str, limits: &str) {
    let mut path = String::from("/zookeeper/quota");
    for part in root.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        let _ = f.run(create_op(&path, CreateMode::Persistent));
    }
    f.run(TxnOp::Create {
        opcode: OpCode::Create,
        request: CreateRequest {
            path: format!("{path}/zookeeper_limits"),
            data: Some(Bytes::copy_from_slice(limits.as_bytes())),
            acl: Acl::open_unsafe(),
            flags: 0,
        },
    })
    .unwrap();
    f.run(TxnOp::Create {
        opcode: OpCode::Create,
        request: CreateRequest {
            path: format!("{path}/zookeeper_stats"),
            data: Some(Bytes::from_static(b"count=0,bytes=0")),
            acl: Acl::open_unsafe(),
            flags: 0,
        },
    })
    .unwrap();
}

fn usage(f: &Fixture, root: &str) -> String {
    let node =
        f.db.tree()
            .get(&format!("/zookeeper/quota{root}/zookeeper_stats"))
            .unwrap();
    String::from_utf8(node.data().unwrap().to_vec()).unwrap()
}

#[test]
fn quota_usage_is_tracked_in_place_like_zookeeper() {
    let mut f = Fixture::new();
    f.create("/qp", CreateMode::Persistent).unwrap(); // data "d": 1 byte
    f.create("/qp/c1", CreateMode::Persistent).unwrap();
    set_quota(
        &mut f,
        "/qp",
        "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
    );
    // The stats node is filled from the tree when created: the root counts too.
    assert_eq!(usage(&f, "/qp"), "count=2,bytes=2");
    let stats_stat = f.stat("/zookeeper/quota/qp/zookeeper_stats");
    f.create("/qp/c2", CreateMode::Persistent).unwrap();
    f.run(set_data("/qp/c2", b"0123456789", -1)).unwrap();
    assert_eq!(usage(&f, "/qp"), "count=3,bytes=12");
    // In place: the stats node's version and mzxid do not move.
    let after = f.stat("/zookeeper/quota/qp/zookeeper_stats");
    assert_eq!(
        (after.version, after.mzxid),
        (stats_stat.version, stats_stat.mzxid)
    );
    f.run(delete("/qp/c2", -1)).unwrap();
    assert_eq!(usage(&f, "/qp"), "count=2,bytes=2");
    // Nodes outside the quota do not count.
    f.create("/other", CreateMode::Persistent).unwrap();
    assert_eq!(usage(&f, "/qp"), "count=2,bytes=2");
    // A failed multi leaves the usage as it was.
    let failing = MultiRequest {
        ops: vec![
            MultiOp::Create {
                opcode: OpCode::Create,
                request: CreateRequest {
                    path: "/qp/m".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            },
            MultiOp::Check(CheckVersionRequest {
                path: "/qp".into(),
                version: 42,
            }),
        ],
    };
    f.run(TxnOp::Multi(failing)).unwrap();
    assert_eq!(usage(&f, "/qp"), "count=2,bytes=2");
    // Deleting the limits node drops the quota.
    f.run(delete("/zookeeper/quota/qp/zookeeper_limits", -1))
        .unwrap();
    assert_eq!(f.db.tree().quota_root_for("/qp/x"), None);
}

#[test]
fn hard_quotas_are_enforced_only_when_asked() {
    let mut f = Fixture::new();
    f.create("/hq", CreateMode::Persistent).unwrap();
    set_quota(
        &mut f,
        "/hq",
        "count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=2",
    );
    f.create("/hq/a", CreateMode::Persistent).unwrap(); // count 2: at the limit
                                                        // Not enforced by default (zookeeper.enforceQuota=false): logged only.
    f.create("/hq/b", CreateMode::Persistent).unwrap();
    f.run(delete("/hq/b", -1)).unwrap();
    f.enforce_quota = true;
    assert_eq!(
        f.create("/hq/b", CreateMode::Persistent),
        Err(ErrorCode::QuotaExceeded)
    );
    assert_eq!(
        f.run(set_data("/hq/a", b"123456", -1)),
        Err(ErrorCode::QuotaExceeded)
    );
    assert!(f.run(set_data("/hq/a", b"123", -1)).is_ok());
    assert_eq!(usage(&f, "/hq"), "count=2,bytes=4");
}

#[test]
fn a_multi_is_checked_against_the_quota_usage_before_it() {
    // ZooKeeper 3.8 judges every op of a multi against the committed usage: three
    // creates with room for one all pass (observed on Apache ZooKeeper 3.8.0).
    let mut f = Fixture::new();
    f.enforce_quota = true;
    f.create("/m", CreateMode::Persistent).unwrap();
    set_quota(
        &mut f,
        "/m",
        "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
    );
    let creates = MultiRequest {
        ops: ["/m/a", "/m/b", "/m/c"]
            .iter()
            .map(|p| MultiOp::Create {
                opcode: OpCode::Create,
                request: CreateRequest {
                    path: (*p).into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            })
            .collect(),
    };
    let Ok(Response::Multi(r)) = f.run(TxnOp::Multi(creates)) else {
        panic!("multi failed")
    };
    assert!(
        r.results
            .iter()
            .all(|r| matches!(r, OpResult::Create { .. })),
        "{r:?}"
    );
    assert_eq!(usage(&f, "/m"), "count=4,bytes=1");
    // Outside a multi the usage is the current one.
    assert_eq!(
        f.create("/m/d", CreateMode::Persistent),
        Err(ErrorCode::QuotaExceeded)
    );
}

#[test]
fn quota_roots_are_rebuilt_from_a_snapshot() {
    let mut f = Fixture::new();
    f.create("/s", CreateMode::Persistent).unwrap();
    set_quota(
        &mut f,
        "/s",
        "count=9,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
    );
    let restored = ZkDatabase::from_snapshot(&f.db.to_snapshot().unwrap()).unwrap();
    assert_eq!(restored.tree().quota_root_for("/s/child"), Some("/s"));
}

// ---- properties ----------------------------------------------------------------

fn any_path() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "/a",
        "/a/b",
        "/a/b/c",
        "/d",
        "/d/e",
        "/a/",
        "/zookeeper",
        "bad",
    ])
    .prop_map(str::to_owned)
}

fn any_op() -> impl Strategy<Value = (bool, TxnOp)> {
    let mode = proptest::sample::select(CreateMode::ALL.to_vec());
    let version = prop_oneof![Just(-1), 0..3];
    let op = prop_oneof![
        (any_path(), mode).prop_map(|(p, m)| create_op(&p, m)),
        (any_path(), version.clone()).prop_map(|(p, v)| delete(&p, v)),
        (any_path(), version.clone()).prop_map(|(p, v)| set_data(&p, b"v", v)),
        (any_path(), version).prop_map(|(p, v)| TxnOp::Check(CheckVersionRequest {
            path: p,
            version: v
        })),
        Just(TxnOp::CloseSession),
    ];
    (any::<bool>(), op)
}

proptest! {
    /// Two servers applying the same log end with the same state and give the same
    /// answers; a snapshot taken at any point restores that exact state.
    #[test]
    fn apply_is_deterministic_and_snapshots_restore_it(ops in proptest::collection::vec(any_op(), 1..40)) {
        let mut a = Fixture::new();
        let mut b = Fixture::new();
        for (second, op) in ops {
            let session = if second { S2 } else { S1 };
            let ra = a.run_as(session, op.clone());
            let rb = b.run_as(session, op);
            prop_assert_eq!(ra, rb);
        }
        prop_assert_eq!(&a.db, &b.db);
        let snap = a.db.to_snapshot().unwrap();
        let restored = ZkDatabase::from_snapshot(&snap).unwrap();
        prop_assert_eq!(&restored, &a.db);
        prop_assert_eq!(restored.tree().ephemeral_count(), a.db.tree().ephemeral_count());
        prop_assert_eq!(restored.tree().approximate_data_size(), a.db.tree().approximate_data_size());
        // A version-1 snapshot of the same state (as the code before the compact tree
        // wrote it) loads as the same state.
        let restored = ZkDatabase::from_snapshot(&v1_snapshot(&a.db)).unwrap();
        restored.check_consistency().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&restored, &a.db);
        prop_assert_eq!(restored.tree().digest(), a.db.tree().digest());
    }

    /// A failed multi leaves the tree exactly as it was.
    #[test]
    fn failed_multis_change_nothing(ops in proptest::collection::vec(any_op(), 0..6)) {
        let mut f = Fixture::new();
        f.create("/a", CreateMode::Persistent).unwrap();
        let before = f.db.tree().clone();
        let mut multi: Vec<MultiOp> = ops.into_iter().filter_map(|(_, op)| match op {
            TxnOp::Create { opcode, request } => Some(MultiOp::Create { opcode, request }),
            TxnOp::Delete(r) => Some(MultiOp::Delete(r)),
            TxnOp::SetData(r) => Some(MultiOp::SetData(r)),
            TxnOp::Check(r) => Some(MultiOp::Check(r)),
            _ => None,
        }).collect();
        // Guarantee a failure at the end.
        multi.push(MultiOp::Check(CheckVersionRequest { path: "/missing".into(), version: -1 }));
        let r = f.run_as(S1, TxnOp::Multi(MultiRequest { ops: multi }));
        prop_assert!(r.events.is_empty());
        prop_assert_eq!(f.db.tree(), &before);
    }
}

#[test]
fn a_write_submitted_again_is_applied_once() {
    let mut f = Fixture::new();
    let txn = |seq: u64, path: &str| Txn {
        origin: crate::txn::Origin { server: 7, seq },
        session_id: S1,
        xid: 1,
        time: 1,
        auth: Vec::new(),
        enforce_quota: false,
        extended_types: false,
        x509_provider: false,
        sasl_provider: false,
        op: create_op(path, CreateMode::PersistentSequential),
    };
    let first = f.db.apply(100, &txn(10, "/q-"));
    assert!(first.result.is_ok(), "{:?}", first.result);
    // The same write again (its member could not tell whether the first copy was
    // appended), and an older one: no change, no events.
    let before = f.db.tree().node_count();
    for seq in [10, 9] {
        let again = f.db.apply(101, &txn(seq, "/q-"));
        assert_eq!(again, Applied::duplicate());
    }
    assert_eq!(f.db.tree().node_count(), before);
    assert_eq!(f.db.last_seq(7), Some(10));
    // The member's next write applies; another member's numbers are its own.
    assert!(f.db.apply(102, &txn(11, "/q-")).result.is_ok());
    let mut other = txn(5, "/q-");
    other.origin.server = 8;
    assert!(f.db.apply(103, &other).result.is_ok());
    // The numbers survive a snapshot.
    let restored = ZkDatabase::from_snapshot(&f.db.to_snapshot().unwrap()).unwrap();
    assert_eq!(restored.last_seq(7), Some(11));
    assert_eq!(restored.last_seq(8), Some(5));
}

#[test]
fn a_snapshot_written_before_write_numbers_existed_still_loads() {
    let mut f = Fixture::new();
    f.create("/kept", CreateMode::Persistent).unwrap();
    // The three fields snapshots had before `applied_seqs`, in their order.
    let model = ModelTree::from_tree(f.db.tree());
    let old = rmp_serde::to_vec(&(&model, f.db.sessions(), f.db.last_zxid())).unwrap();
    let db = ZkDatabase::from_snapshot(&old).unwrap();
    assert!(db.tree().get("/kept").is_some());
    assert_eq!(db.last_seq(0), None);
}

/// `db` as a version-1 snapshot held it.
fn v1_snapshot(db: &ZkDatabase) -> Vec<u8> {
    db.to_v1_snapshot()
}

#[test]
fn a_version_1_snapshot_loads_as_the_same_database() {
    let mut f = Fixture::new();
    f.create("/a", CreateMode::Persistent).unwrap();
    f.create("/a/e", CreateMode::Ephemeral).unwrap();
    f.create("/a/s-", CreateMode::PersistentSequential).unwrap();
    f.create("/a-name-longer-than-eleven", CreateMode::Container)
        .unwrap();
    f.run(TxnOp::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: Some(Bytes::from(vec![5; 5000])),
        acl: Acl::read_unsafe(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl: 5000,
    }))
    .unwrap();
    let old = v1_snapshot(&f.db);
    assert_eq!(
        old[0] & 0xf0,
        0x90,
        "a version-1 snapshot is a msgpack array"
    );
    let db = ZkDatabase::from_snapshot(&old).unwrap();
    db.check_consistency().unwrap();
    assert_eq!(db, f.db);
    assert_eq!(db.tree().digest(), f.db.tree().digest());
    assert_eq!(
        db.tree().ephemerals_of(S1).collect::<Vec<_>>(),
        vec!["/a/e"]
    );
    assert_eq!(db.last_seq(0), f.db.last_seq(0));
    // Written again, it is version 2.
    let new = db.to_snapshot().unwrap();
    assert!(new.starts_with(b"ZKRSDB02"));
    assert_eq!(ZkDatabase::from_snapshot(&new).unwrap(), f.db);
}
