//! Every opcode over the wire, answered as Apache ZooKeeper 3.8 answers it.

mod common;

use bytes::Bytes;
use common::RawClient;
use zk_proto::*;
use zk_server::testing::TestingServer;

async fn setup() -> (TestingServer, RawClient) {
    let server = TestingServer::start().await.unwrap();
    let client = RawClient::connect(server.addr()).await;
    (server, client)
}

#[tokio::test]
async fn create_in_every_mode() {
    let (_s, mut c) = setup().await;
    c.create("/m", b"", CreateMode::Persistent).await.unwrap();
    assert_eq!(
        c.create("/m/e", b"", CreateMode::Ephemeral).await.unwrap(),
        "/m/e"
    );
    assert_eq!(
        c.create("/m/s-", b"", CreateMode::PersistentSequential)
            .await
            .unwrap(),
        "/m/s-0000000001"
    );
    assert_eq!(
        c.create("/m/es-", b"", CreateMode::EphemeralSequential)
            .await
            .unwrap(),
        "/m/es-0000000002"
    );
    assert_eq!(
        c.exists("/m/e", false).await.unwrap().ephemeral_owner,
        c.session_id
    );
    // create2 answers with the Stat.
    let r = c
        .call(Request::Create2(CreateRequest {
            path: "/m/two".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        }))
        .await
        .unwrap();
    let Response::Create2(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!((r.path.as_str(), r.stat.data_length), ("/m/two", 0));
    // A node created with null data reads back as null.
    assert_eq!(c.get("/m/two", false).await.unwrap().0, None);
    // Containers come from the createContainer opcode.
    let r = c
        .call(Request::CreateContainer(CreateRequest {
            path: "/m/c".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::Container.code(),
        }))
        .await
        .unwrap();
    assert!(matches!(r, Response::Create2(_)));
    // TTL (extended types on in the test config).
    let r = c
        .call(Request::CreateTtl(CreateTtlRequest {
            path: "/m/t".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl.code(),
            ttl: 60_000,
        }))
        .await
        .unwrap();
    assert!(matches!(r, Response::Create2(ref x) if x.stat.ephemeral_owner == 0));
}

#[tokio::test]
async fn empty_containers_that_had_children_are_reaped() {
    let (_s, mut c) = setup().await;
    c.call(Request::CreateContainer(CreateRequest {
        path: "/box".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 4,
    }))
    .await
    .unwrap();
    c.create("/box/item", b"", CreateMode::Persistent)
        .await
        .unwrap();
    c.exists("/box", true).await.unwrap();
    c.delete("/box/item", -1).await.unwrap();
    // The reaper (every 200 ms in tests) deletes it and the exists watch fires.
    let event = c.next_event().await.expect("container reaped");
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (EventType::NodeDeleted.code(), "/box")
    );
}

#[tokio::test]
async fn versioned_writes_and_their_errors() {
    let (_s, mut c) = setup().await;
    c.create("/v", b"a", CreateMode::Persistent).await.unwrap();
    assert_eq!(c.set("/v", b"b", 7).await, Err(ErrorCode::BadVersion));
    let stat = c.set("/v", b"bb", 0).await.unwrap();
    assert_eq!((stat.version, stat.data_length), (1, 2));
    assert_eq!(c.delete("/v", 0).await, Err(ErrorCode::BadVersion));
    c.create("/v/child", b"", CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(c.delete("/v", 1).await, Err(ErrorCode::NotEmpty));
    assert_eq!(
        c.create("/v", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        c.create("/none/x", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        c.create("bad", b"", CreateMode::Persistent).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        c.delete("/zookeeper", -1).await,
        Err(ErrorCode::BadArguments)
    );
    c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
    assert_eq!(
        c.create("/eph/c", b"", CreateMode::Persistent).await,
        Err(ErrorCode::NoChildrenForEphemerals)
    );
}

#[tokio::test]
async fn children_stat_and_counts() {
    let (_s, mut c) = setup().await;
    c.create("/p", b"", CreateMode::Persistent).await.unwrap();
    for n in ["a", "b", "c"] {
        c.create(&format!("/p/{n}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    c.create("/p/a/deep", b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    assert_eq!(c.children("/p", false).await.unwrap(), vec!["a", "b", "c"]);
    let r = c
        .call(Request::GetChildren2(GetChildren2Request {
            path: "/p".into(),
            watch: false,
        }))
        .await
        .unwrap();
    let Response::GetChildren2(r) = r else {
        panic!()
    };
    assert_eq!((r.stat.num_children, r.stat.cversion), (3, 3));
    let r = c
        .call(Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: "/p".into(),
        }))
        .await
        .unwrap();
    assert_eq!(
        r,
        Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 4 })
    );
    let r = c
        .call(Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: "/p".into(),
        }))
        .await
        .unwrap();
    assert_eq!(
        r,
        Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec!["/p/a/deep".into()]
        })
    );
    assert_eq!(c.children("/nope", false).await, Err(ErrorCode::NoNode));
}

#[tokio::test]
async fn acls_digest_auth_and_whoami() {
    let (server, mut c) = setup().await;
    let r = c.call(Request::WhoAmI).await.unwrap();
    assert_eq!(
        r,
        Response::WhoAmI(WhoAmIResponse {
            client_info: vec![ClientInfo {
                auth_scheme: "ip".into(),
                user: "127.0.0.1".into()
            }]
        })
    );
    let auth = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"bob:pw"),
    };
    let xid = c.send(&Request::Auth(auth)).await;
    let (header, result) = c.reply(xid, OpCode::Auth).await.unwrap();
    assert_eq!(
        (header.xid, header.zxid, result),
        (-4, 0, Ok(Response::Empty))
    );
    c.call(Request::Create(CreateRequest {
        path: "/locked".into(),
        data: Some(Bytes::from_static(b"secret")),
        acl: vec![Acl::new(Perms::ALL, Id::auth_ids())],
        flags: 0,
    }))
    .await
    .unwrap();
    let r = c
        .call(Request::GetAcl(GetAclRequest {
            path: "/locked".into(),
        }))
        .await
        .unwrap();
    let Response::GetAcl(acl) = r else { panic!() };
    assert_eq!(
        acl.acl,
        vec![Acl::new(
            Perms::ALL,
            Id::new("digest", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=")
        )]
    );
    let r = c.call(Request::WhoAmI).await.unwrap();
    let Response::WhoAmI(w) = r else { panic!() };
    assert_eq!(
        w.client_info[0],
        ClientInfo {
            auth_scheme: "digest".into(),
            user: "bob".into()
        }
    );

    // Another session without bob's identity is refused, and an unknown scheme closes.
    let mut other = RawClient::connect(server.addr()).await;
    assert_eq!(other.get("/locked", false).await, Err(ErrorCode::NoAuth));
    assert_eq!(other.set("/locked", b"x", -1).await, Err(ErrorCode::NoAuth));
    let r = other
        .call(Request::SetAcl(SetAclRequest {
            path: "/locked".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        }))
        .await;
    assert_eq!(r, Err(ErrorCode::NoAuth));
    let bad = AuthPacket {
        auth_type: 0,
        scheme: "kerberos".into(),
        auth: Bytes::from_static(b"x"),
    };
    let xid = other.send(&Request::Auth(bad)).await;
    let (_, result) = other.reply(xid, OpCode::Auth).await.unwrap();
    assert_eq!(result, Err(ErrorCode::AuthFailed));
    assert!(other.closed().await);
}

#[tokio::test]
async fn multi_commits_all_or_nothing_and_multi_read_answers_each_op() {
    let (_s, mut c) = setup().await;
    c.create("/t", b"", CreateMode::Persistent).await.unwrap();
    let failing = MultiRequest {
        ops: vec![
            MultiOp::Create {
                opcode: OpCode::Create,
                request: CreateRequest {
                    path: "/t/a".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            },
            MultiOp::SetData(SetDataRequest {
                path: "/t".into(),
                data: None,
                version: 9,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/t/a".into(),
                version: -1,
            }),
        ],
    };
    let r = c.call(Request::Multi(failing)).await.unwrap();
    assert_eq!(
        r,
        Response::Multi(MultiResponse {
            results: vec![
                OpResult::error(ErrorCode::Ok),
                OpResult::error(ErrorCode::BadVersion),
                OpResult::error(ErrorCode::RuntimeInconsistency),
            ]
        })
    );
    assert_eq!(c.exists("/t/a", false).await, Err(ErrorCode::NoNode));
    let ok = MultiRequest {
        ops: vec![
            MultiOp::Create {
                opcode: OpCode::Create2,
                request: CreateRequest {
                    path: "/t/a".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            },
            MultiOp::Check(CheckVersionRequest {
                path: "/t".into(),
                version: 0,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/t/a".into(),
                data: Some(Bytes::from_static(b"z")),
                version: 0,
            }),
        ],
    };
    let Response::Multi(r) = c.call(Request::Multi(ok)).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        r.results[0],
        OpResult::Create {
            path: "/t/a".into()
        }
    );
    assert_eq!(r.results[1], OpResult::Check);
    assert!(matches!(r.results[2], OpResult::SetData { stat } if stat.version == 1));
    // A multi holding a read is refused as a whole.
    let mixed = MultiRequest {
        ops: vec![MultiOp::GetData(GetDataRequest {
            path: "/t".into(),
            watch: false,
        })],
    };
    assert_eq!(
        c.call(Request::Multi(mixed)).await,
        Err(ErrorCode::MarshallingError)
    );
    let reads = MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/t/a".into(),
                watch: false,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/missing".into(),
                watch: false,
            }),
        ],
    };
    let Response::Multi(r) = c.call(Request::MultiRead(reads)).await.unwrap() else {
        panic!()
    };
    assert!(matches!(&r.results[0], OpResult::GetData { data: Some(d), .. } if &d[..] == b"z"));
    assert_eq!(r.results[1], OpResult::error(ErrorCode::NoNode));
}

#[tokio::test]
async fn sync_and_check_and_empty_path_reads() {
    let (_s, mut c) = setup().await;
    let r = c
        .call(Request::Sync(SyncRequest {
            path: "/anything".into(),
        }))
        .await
        .unwrap();
    assert_eq!(
        r,
        Response::Sync(SyncResponse {
            path: "/anything".into()
        })
    );
    c.create("/k", b"", CreateMode::Persistent).await.unwrap();
    let r = c
        .call(Request::Check(CheckVersionRequest {
            path: "/k".into(),
            version: 0,
        }))
        .await;
    assert!(matches!(r, Ok(Response::SetData(_))));
    assert_eq!(
        c.call(Request::Check(CheckVersionRequest {
            path: "/k".into(),
            version: 3
        }))
        .await,
        Err(ErrorCode::BadVersion)
    );
    // As in ZooKeeper, the empty path reads the root.
    assert!(c.exists("", false).await.is_ok());
    assert_eq!(
        c.exists("/a\u{0}b", false).await,
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(c.get("/a//b", false).await, Err(ErrorCode::NoNode));
}

#[tokio::test]
async fn reconfig_is_refused_in_standalone_mode_as_zookeeper_does() {
    let (_s, mut c) = setup().await;
    let r = c
        .call(Request::Reconfig(ReconfigRequest {
            joining_servers: Some("server.2=127.0.0.1:1:2".into()),
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        }))
        .await;
    assert_eq!(r, Err(ErrorCode::ReconfigDisabled));
}

#[tokio::test]
async fn data_up_to_the_frame_limit_is_stored_and_larger_closes_only_that_connection() {
    let (server, mut c) = setup().await;
    c.create("/big", b"", CreateMode::Persistent).await.unwrap();
    // header 8 + path 4+4 + data 4+N + version 4 = 1048575
    let max_data = 1_048_575 - 8 - 8 - 4 - 4;
    let big = vec![7u8; max_data];
    assert_eq!(
        c.set("/big", &big, -1).await.unwrap().data_length as usize,
        max_data
    );
    let mut other = RawClient::connect(server.addr()).await;
    let too_big = vec![7u8; max_data + 1];
    let request = Request::SetData(SetDataRequest {
        path: "/big".into(),
        data: Some(Bytes::from(too_big)),
        version: -1,
    });
    other.send(&request).await;
    assert!(other.closed().await);
    // Everyone else is fine, and nothing was lost. (Reading it back is another matter:
    // the reply adds a header and a Stat, past the 1,048,575 bytes a default client,
    // Apache's or ours, accepts; the Stat says it is all there.)
    assert_eq!(
        c.exists("/big", false).await.unwrap().data_length as usize,
        max_data
    );
}

#[tokio::test]
async fn the_super_digest_grants_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = zk_server::testing::test_config(dir.path());
    config.super_digest = Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()); // super:test
    let server = TestingServer::start_with(config).await.unwrap();
    let mut owner = RawClient::connect(server.addr()).await;
    owner
        .call(Request::Create(CreateRequest {
            path: "/vault".into(),
            data: Some(Bytes::from_static(b"gold")),
            acl: vec![Acl::new(Perms::ALL, Id::new("digest", "nobody:x"))],
            flags: 0,
        }))
        .await
        .unwrap();
    let mut admin = RawClient::connect(server.addr()).await;
    assert_eq!(admin.get("/vault", false).await, Err(ErrorCode::NoAuth));
    let wrong = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"super:guess"),
    };
    admin.call(Request::Auth(wrong)).await.unwrap();
    assert_eq!(admin.get("/vault", false).await, Err(ErrorCode::NoAuth));
    let right = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"super:test"),
    };
    admin.call(Request::Auth(right)).await.unwrap();
    assert_eq!(
        admin.get("/vault", false).await.unwrap().0.as_deref(),
        Some(&b"gold"[..])
    );
    admin.delete("/vault", -1).await.unwrap();
}

/// Found by the `server_requests` fuzz target (reply zxids going back on a connection):
/// writes were submitted as soon as they were read while reads ran when their turn
/// came, so a read pipelined before a write could be evaluated after that write was
/// applied and see it. ZooKeeper executes a client's requests in the order it sent
/// them: the read answers with the old data, and reply zxids never go back (a request
/// refused when read, stamped with the zxid of its answer, waits for its turn too).
#[tokio::test]
async fn a_pipelined_read_does_not_see_a_write_sent_after_it() {
    let (_s, mut c) = setup().await;
    c.create("/x", b"old", CreateMode::Persistent)
        .await
        .unwrap();
    c.create("/y", b"", CreateMode::Persistent).await.unwrap();
    for round in 0..50 {
        // One segment: the server reads all three before answering any.
        let (earlier, read, refused, later) = (
            1000 + 4 * round,
            1001 + 4 * round,
            1002 + 4 * round,
            1003 + 4 * round,
        );
        let mut out = bytes::BytesMut::new();
        for (xid, request) in [
            (
                earlier,
                Request::SetData(SetDataRequest {
                    path: "/y".into(),
                    data: Some(Bytes::from(format!("{round}"))),
                    version: -1,
                }),
            ),
            (
                read,
                Request::GetData(GetDataRequest {
                    path: "/x".into(),
                    watch: false,
                }),
            ),
            // Refused when read (standalone): its reply's zxid must still fall
            // between those of the writes around it.
            (
                refused,
                Request::Reconfig(ReconfigRequest {
                    joining_servers: None,
                    leaving_servers: Some("2".into()),
                    new_members: None,
                    cur_config_id: -1,
                }),
            ),
            (
                later,
                Request::SetData(SetDataRequest {
                    path: "/x".into(),
                    data: Some(Bytes::from(format!("new{round}"))),
                    version: -1,
                }),
            ),
        ] {
            zk_proto::frame::write_frame(&mut out, |w| {
                RequestHeader::new(xid, request.opcode()).write(w);
                request.write_body(w);
            });
        }
        c.send_raw(&out).await;
        let (h1, r1) = c.reply(earlier, OpCode::SetData).await.expect("reply");
        let (h2, r2) = c.reply(read, OpCode::GetData).await.expect("reply");
        let (hr, rr) = c.reply(refused, OpCode::Reconfig).await.expect("reply");
        assert_eq!(rr, Err(ErrorCode::ReconfigDisabled));
        let (h3, r3) = c.reply(later, OpCode::SetData).await.expect("reply");
        assert!(r1.is_ok() && r3.is_ok());
        let Ok(Response::GetData(got)) = r2 else {
            panic!("getData failed: {r2:?}");
        };
        let expected = if round == 0 {
            "old".to_string()
        } else {
            format!("new{}", round - 1)
        };
        assert_eq!(
            got.data.as_deref(),
            Some(expected.as_bytes()),
            "round {round}"
        );
        assert!(
            h1.zxid <= h2.zxid && h2.zxid <= hr.zxid && hr.zxid <= h3.zxid,
            "reply zxids went back: {h1:?} {h2:?} {hr:?} {h3:?}"
        );
    }
}
