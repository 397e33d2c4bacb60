//! `sslQuorum=true`: the links between members are mutual TLS, each side's
//! certificate verified against the quorum trust store (`ssl.quorum.*`). An ensemble
//! of members with trusted certificates elects and replicates; a member whose
//! certificate another CA signed can neither reach its peers nor be reached.

use std::sync::Arc;
use std::time::Duration;

use zk_client::Client;
use zk_server::config::{
    ClientAuth, Secret, ServerConfig, StoreFile, StoreType, TlsSettings, TlsVersion,
};
use zk_server::replication::links::{PeerFaults, PeerLink, PeerTls};
use zk_server::replication::wire::{PeerReply, PeerRequest};
use zk_server::testing::TestingCluster;
use zk_tests::certs::Ca;

/// Quorum TLS settings with these stores.
fn quorum_tls(key_store: std::path::PathBuf, trust_store: std::path::PathBuf) -> TlsSettings {
    TlsSettings {
        prefix: "ssl.quorum",
        key_store: Some(StoreFile {
            location: key_store,
            password: Secret::default(),
            password_path: None,
            store_type: StoreType::Pem,
        }),
        trust_store: Some(StoreFile {
            location: trust_store,
            password: Secret::default(),
            password_path: None,
            store_type: StoreType::Pem,
        }),
        client_auth: ClientAuth::Need,
        hostname_verification: true,
        protocols: vec![TlsVersion::Tls12, TlsVersion::Tls13],
        cipher_suites: None,
    }
}

/// Writes member `id`'s key store, its certificate (for 127.0.0.1, where
/// TestingCluster's members listen) signed by `ca`; returns its path.
fn member_key_store(dir: &std::path::Path, ca: &Ca, id: u64) -> std::path::PathBuf {
    ca.issue(&format!("member-{id}"), &["127.0.0.1", "localhost"])
        .write_key_store(dir, &format!("member-{id}.pem"))
}

/// The members' data is the same everywhere: every member has `path`.
async fn read_from(cluster: &TestingCluster, id: u64, path: &str) -> Option<Vec<u8>> {
    let addr = cluster.client_addr(id)?;
    let zk = Client::builder(&addr.to_string())
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .ok()?;
    zk.sync("/").await.ok()?;
    let data = zk.get_data(path).await.ok().map(|(d, _)| d);
    zk.close().await;
    data
}

/// `ssl.quorum.*` with Java stores: a pyjks JKS key store and keytool's PKCS#12 trust
/// store, types inferred from the names, passwords from zoo.cfg and a passwordPath.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_quorum_ensemble_with_jks_and_pkcs12_stores_elects_and_replicates() {
    let stores = zk_tests::certs::JavaStores::new();
    let pw = stores.path("pw");
    std::fs::write(&pw, "apassword\n").unwrap();
    let parsed = ServerConfig::parse(&format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=apassword\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.passwordPath={}\n\
         ssl.quorum.hostnameVerification=true\nssl.quorum.enabledProtocols=TLSv1.3\n",
        stores.path("keystore.jks").display(),
        stores.path("truststore.p12").display(),
        pw.display()
    ))
    .unwrap();
    let tls = parsed.quorum_tls.unwrap();
    assert_eq!(tls.key_store.as_ref().unwrap().store_type, StoreType::Jks);
    assert_eq!(
        tls.trust_store.as_ref().unwrap().store_type,
        StoreType::Pkcs12
    );
    let cluster = TestingCluster::start_each(3, 0, |_, config| {
        config.quorum_tls = Some(tls.clone());
    })
    .await
    .unwrap();
    cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("members with Java stores elect a leader");
    let zk = Client::connect(&cluster.connect_string()).await.unwrap();
    zk.create("/jks").data(b"quorum").await.unwrap();
    zk.close().await;
    for id in cluster.ids() {
        assert_eq!(
            read_from(&cluster, id, "/jks").await.as_deref(),
            Some(&b"quorum"[..]),
            "member {id}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_quorum_ensemble_elects_and_replicates_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("quorum CA");
    let trust = ca.write_trust_store(dir.path(), "quorum-ca.pem");
    let stores: Vec<_> = (1..=3)
        .map(|id| member_key_store(dir.path(), &ca, id))
        .collect();
    // The configuration as zoo.cfg gives it, for member 1; the others differ only
    // in their key store.
    let parsed = ServerConfig::parse(&format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        stores[0].display(),
        trust.display()
    ))
    .unwrap();
    assert_eq!(
        parsed.quorum_tls,
        Some(quorum_tls(stores[0].clone(), trust.clone()))
    );
    let cluster = TestingCluster::start_each(3, 0, |id, config| {
        config.quorum_tls = Some(quorum_tls(stores[id as usize - 1].clone(), trust.clone()));
    })
    .await
    .unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(20))
        .await
        .expect("members with trusted certificates elect a leader");

    let zk = Client::connect(&cluster.connect_string()).await.unwrap();
    zk.create("/replicated").data(b"over tls").await.unwrap();
    for i in 0..20 {
        zk.create(&format!("/replicated/n{i}")).await.unwrap();
    }
    zk.close().await;
    for id in cluster.ids() {
        assert_eq!(
            read_from(&cluster, id, "/replicated").await.as_deref(),
            Some(&b"over tls"[..]),
            "member {id} (leader {leader})"
        );
    }
    // Every member ends with the same tree (and, once caught up, the same zxid).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let digests: Vec<_> = cluster.ids().iter().map(|id| cluster.digest(*id)).collect();
        if digests.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{digests:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The peer port speaks only TLS: a link without TLS gets no answer, one with a
    // trusted certificate does.
    let peer_addr = cluster.core(leader).unwrap().config.peers[&leader].peer_addr();
    let plain = PeerLink::new(90, leader, peer_addr.clone(), PeerFaults::default());
    assert!(plain
        .exchange(&PeerRequest::Initialized, Duration::from_secs(2))
        .await
        .is_err());
    let trusted = PeerTls::new(&quorum_tls(
        member_key_store(dir.path(), &ca, 91),
        trust.clone(),
    ))
    .unwrap();
    let link = PeerLink::new(
        91,
        leader,
        peer_addr,
        PeerFaults::default().with_tls(Some(Arc::new(trusted))),
    );
    assert!(matches!(
        link.exchange(&PeerRequest::Initialized, Duration::from_secs(5))
            .await,
        Ok(PeerReply::Initialized(true))
    ));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_certificate_another_ca_signed_is_refused_by_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("quorum CA");
    let rogue_ca = Ca::new("rogue CA");
    let trust = ca.write_trust_store(dir.path(), "quorum-ca.pem");
    let stores = [
        member_key_store(dir.path(), &ca, 1),
        member_key_store(dir.path(), &ca, 2),
        // Member 3's certificate: right names, wrong CA. It trusts the right CA.
        member_key_store(dir.path(), &rogue_ca, 3),
    ];
    let cluster = TestingCluster::start_each(3, 0, |id, config| {
        config.quorum_tls = Some(quorum_tls(stores[id as usize - 1].clone(), trust.clone()));
    })
    .await
    .unwrap();

    // Members 1 and 2 are a quorum on their own: they elect one of them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let leading = cluster.leader().filter(|l| {
            [1, 2]
                .iter()
                .all(|id| cluster.core(*id).unwrap().quorum().leader == Some(*l))
        });
        if let Some(l) = leading {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "members 1 and 2 elected nobody"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(
        leader, 3,
        "the member with the untrusted certificate cannot lead"
    );

    let writer = format!(
        "{},{}",
        cluster.client_addr(1).unwrap(),
        cluster.client_addr(2).unwrap()
    );
    let zk = Client::connect(&writer).await.unwrap();
    zk.create("/trusted-only").data(b"x").await.unwrap();
    zk.close().await;
    for id in [1, 2] {
        assert_eq!(
            read_from(&cluster, id, "/trusted-only").await.as_deref(),
            Some(&b"x"[..])
        );
    }
    // Member 3 stays out: no leader, none of the writes, for as long as we look.
    for _ in 0..20 {
        let core = cluster.core(3).unwrap();
        assert_eq!(core.quorum().leader, None, "member 3 joined the quorum");
        assert!(
            core.db().tree().get("/trusted-only").is_none(),
            "member 3 received a write"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each side checks the other: a link that trusts the right CA but presents the
    // rogue certificate gets no answer from the leader (its client certificate is
    // refused), as the leader's own link to member 3 fails on member 3's certificate.
    let peer_addr = cluster.core(leader).unwrap().config.peers[&leader].peer_addr();
    let rogue = PeerTls::new(&quorum_tls(stores[2].clone(), trust.clone())).unwrap();
    let link = PeerLink::new(
        93,
        leader,
        peer_addr,
        PeerFaults::default().with_tls(Some(Arc::new(rogue))),
    );
    assert!(
        link.exchange(&PeerRequest::Initialized, Duration::from_secs(3))
            .await
            .is_err(),
        "the leader answered a peer whose certificate it does not trust"
    );
    // And its clients are turned away (it has no quorum), not served stale data.
    let refused = Client::builder(&cluster.client_addr(3).unwrap().to_string())
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(
        refused.is_err(),
        "member 3 served a session without a quorum"
    );
    cluster.shutdown().await;
}
