//! ACL enforcement, every operation × every single permission × every scheme (world,
//! digest, ip, auth), for a client the ACL names and one it does not: the whole table
//! of outcomes from our server must equal Apache ZooKeeper 3.8's, cell by cell, and
//! agree with ZooKeeper's rules (read: READ; write: WRITE; create a child: CREATE;
//! delete a child: DELETE; set the ACL: ADMIN; get the ACL: READ or ADMIN; exists:
//! nothing). Then: a session cannot be resumed without its password, and only the
//! configured super digest is super.

use std::collections::BTreeMap;
use std::time::Duration;

use zk_client::{Acl, Client, CreateMode, ErrorCode, Id, Perms};
use zk_server::acl::digest;
use zk_server::testing::{test_config, TestingServer};
use zk_tests::apache::ApacheZk;

const OPS: &[&str] = &[
    "getData",
    "exists",
    "getChildren",
    "getACL",
    "setData",
    "create",
    "delete",
    "setACL",
];

const PERMS: &[(&str, Perms)] = &[
    ("r", Perms::READ),
    ("w", Perms::WRITE),
    ("c", Perms::CREATE),
    ("d", Perms::DELETE),
    ("a", Perms::ADMIN),
];

/// How one operation ended: "ok" or the error's name.
fn outcome<T>(r: zk_client::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => match e.code() {
            Some(code) => format!("{code:?}"),
            None => format!("{e}"),
        },
    }
}

async fn client(connect: &str, credentials: Option<&str>) -> Client {
    let zk = Client::connect(connect).await.expect("connect");
    if let Some(c) = credentials {
        zk.add_auth("digest", c.as_bytes()).await.expect("auth");
    }
    zk
}

/// The outcome table on the server at `connect`: (scheme, permission, who, op) →
/// outcome.
async fn table(connect: &str) -> BTreeMap<String, String> {
    let open = Acl::open_unsafe();
    let setup = client(connect, None).await;
    let holder_setup = client(connect, Some("holder:pw")).await;
    let holder = client(connect, Some("holder:pw")).await;
    let other = client(connect, Some("other:pw")).await;
    let anyone = client(connect, None).await;
    setup.create("/acl").acl(&open).await.unwrap();
    let mut out = BTreeMap::new();
    // (scheme, who, the id in the ACL, who sets it, who probes)
    let cases: Vec<(&str, &str, Option<Id>, &Client, &Client)> = vec![
        ("world", "named", Some(Id::anyone()), &setup, &anyone),
        (
            "digest",
            "named",
            Some(Id::new("digest", digest("holder:pw"))),
            &setup,
            &holder,
        ),
        (
            "digest",
            "stranger",
            Some(Id::new("digest", digest("holder:pw"))),
            &setup,
            &other,
        ),
        (
            "ip",
            "named",
            Some(Id::new("ip", "127.0.0.1")),
            &setup,
            &anyone,
        ),
        (
            "ip",
            "stranger",
            Some(Id::new("ip", "10.0.0.0/8")),
            &setup,
            &anyone,
        ),
        // auth: the setter's authenticated ids (holder's digest).
        ("auth", "named", None, &holder_setup, &holder),
        ("auth", "stranger", None, &holder_setup, &other),
    ];
    for (scheme, who, id, setter, probe) in cases {
        for (perm_name, perm) in PERMS {
            let node = format!("/acl/{scheme}-{who}-{perm_name}");
            setup.create(&node).data(b"data").acl(&open).await.unwrap();
            setup.create(&format!("{node}/c")).acl(&open).await.unwrap();
            let acl = vec![Acl::new(
                *perm,
                id.clone().unwrap_or_else(|| Id::new("auth", "")),
            )];
            setter.set_acl(&node, &acl, None).await.unwrap();
            for op in OPS {
                let r = match *op {
                    "getData" => outcome(probe.get_data(&node).await),
                    "exists" => outcome(probe.exists(&node).await),
                    "getChildren" => outcome(probe.get_children(&node).await),
                    "getACL" => outcome(probe.get_acl(&node).await),
                    "setData" => outcome(probe.set_data(&node, b"new", None).await),
                    "create" => outcome(probe.create(&format!("{node}/n")).acl(&open).await),
                    "delete" => outcome(probe.delete(&format!("{node}/c"), None).await),
                    _ => outcome(probe.set_acl(&node, &open, None).await),
                };
                out.insert(format!("{scheme:6} {who:8} {perm_name} {op}"), r);
            }
        }
    }
    for zk in [setup, holder_setup, holder, other, anyone] {
        zk.close().await;
    }
    out
}

/// What ZooKeeper's rules say (the probe holds `perm` exactly when `named`).
fn expected(key: &str) -> &'static str {
    let parts: Vec<&str> = key.split_whitespace().collect();
    let (who, perm, op) = (parts[1], parts[2], parts[3]);
    let held = if who == "named" { perm } else { "" };
    let allowed = match op {
        "exists" => true,
        "getData" | "getChildren" => held == "r",
        "getACL" => held == "r" || held == "a",
        "setData" => held == "w",
        "create" => held == "c",
        "delete" => held == "d",
        _ => held == "a",
    };
    if allowed {
        "ok"
    } else {
        "NoAuth"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_permission_and_scheme_as_apache_zookeeper() {
    let ours = TestingServer::start().await.unwrap();
    let apache = ApacheZk::start().await;
    let theirs = table(&apache.connect_string()).await;
    let mine = table(&ours.connect_string()).await;
    assert_eq!(mine.len(), 7 * 5 * OPS.len());
    let mut differ = Vec::new();
    for (key, apache_says) in &theirs {
        let ours_says = mine.get(key).map(String::as_str).unwrap_or("(missing)");
        if ours_says != apache_says {
            differ.push(format!("{key}: Apache {apache_says}, ours {ours_says}"));
        }
    }
    assert!(differ.is_empty(), "differences:\n{}", differ.join("\n"));
    let against_rules: Vec<String> = mine
        .iter()
        .filter(|(k, v)| v.as_str() != expected(k))
        .map(|(k, v)| format!("{k}: {v}, rules say {}", expected(k)))
        .collect();
    assert!(
        against_rules.is_empty(),
        "against ZooKeeper's rules:\n{}",
        against_rules.join("\n")
    );
    // Not vacuous: both kinds of outcome are there, for every scheme.
    for scheme in ["world", "digest", "ip", "auth"] {
        for want in ["ok", "NoAuth"] {
            assert!(
                mine.iter().any(|(k, v)| k.starts_with(scheme) && v == want),
                "{scheme} never {want}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_not_resumed_without_its_password() {
    let server = TestingServer::start().await.unwrap();
    let connect = server.connect_string();
    let owner = Client::connect(&connect).await.unwrap();
    owner
        .create("/mine")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let mut wrong = owner.session_password();
    wrong[0] ^= 0xff;
    let thief = Client::builder(&connect)
        .session(owner.session_id(), &wrong)
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await;
    assert!(
        matches!(thief, Err(zk_client::Error::SessionExpired)),
        "resumed with a wrong password: {:?}",
        thief.map(|c| c.session_id())
    );
    // The owner's session and ephemeral are untouched.
    assert!(owner.exists("/mine").await.unwrap().is_some());
    // With the right password the session is resumed (the owner's connection moves).
    let heir = Client::builder(&connect)
        .session(owner.session_id(), &owner.session_password())
        .connect()
        .await
        .unwrap();
    assert_eq!(heir.session_id(), owner.session_id());
    heir.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_super_digest_is_super() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.super_digest = Some(digest("super:secret"));
    let server = TestingServer::start_with(config).await.unwrap();
    let connect = server.connect_string();
    let owner = client(&connect, Some("owner:pw")).await;
    let private = vec![Acl::new(Perms::ALL, Id::new("digest", digest("owner:pw")))];
    owner
        .create("/private")
        .data(b"s")
        .acl(&private)
        .await
        .unwrap();
    // Someone calling themselves "super" with the wrong password is just a user.
    let pretender = client(&connect, Some("super:guess")).await;
    assert_eq!(
        pretender.get_data("/private").await.unwrap_err().code(),
        Some(ErrorCode::NoAuth)
    );
    let admin = client(&connect, Some("super:secret")).await;
    assert_eq!(admin.get_data("/private").await.unwrap().0, b"s");
    admin.delete("/private", None).await.unwrap();
    for zk in [owner, pretender, admin] {
        zk.close().await;
    }
}
