//! The keystore module against stores written by the JDK 17 `keytool`, pyjks 20 (as
//! kazoo's test harness writes them), and OpenSSL 3 (`testdata/make.sh` made them),
//! and against damaged copies of them.

use super::*;

const PW: &str = "apassword";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/keystore/testdata/",
            $name
        ))
        .as_slice()
    };
}

const KEYTOOL_JKS: &[u8] = fixture!("keytool.jks");
const KEYTOOL_P12: &[u8] = fixture!("keytool.p12");
const KEYTOOL_P12_NAMED_JKS: &[u8] = fixture!("keytool-pkcs12-named.jks");
const KEYTOOL_LEGACY_P12: &[u8] = fixture!("keytool-legacy.p12");
const KEYTOOL_TRUST_JKS: &[u8] = fixture!("keytool-trust.jks");
const KEYTOOL_TRUST_P12: &[u8] = fixture!("keytool-trust.p12");
const PYJKS_KEY: &[u8] = fixture!("pyjks-keystore.jks");
const PYJKS_TRUST: &[u8] = fixture!("pyjks-truststore.jks");
const OPENSSL_P12: &[u8] = fixture!("openssl.p12");
const PEM: &[u8] = fixture!("server.pem");
const PEM_ENCRYPTED: &[u8] = fixture!("server-encrypted.pem");
const CA_PEM: &[u8] = fixture!("ca.pem");
const SERVER_CERT_PEM: &[u8] = fixture!("server-cert.pem");
const SERVER_KEY_PEM: &[u8] = fixture!("server-key.pem");

fn pem_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn pem_key(pem: &[u8]) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem)
        .unwrap()
        .secret_der()
        .to_vec()
}

/// A key store of the openssl-made key: the key, the server certificate, the CA.
fn assert_is_the_openssl_key(m: &KeyMaterial) {
    assert_eq!(m.key.secret_der(), pem_key(SERVER_KEY_PEM), "the key");
    assert_eq!(m.chain[0], pem_certs(SERVER_CERT_PEM)[0], "the leaf");
    assert_eq!(m.chain.get(1), pem_certs(CA_PEM).first(), "the CA");
}

#[test]
fn pyjks_stores_as_kazoos_harness_writes_them() {
    let m = load_key_store(PYJKS_KEY, StoreType::Jks, PW).unwrap();
    assert_eq!(m.chain.len(), 2);
    assert_is_the_openssl_key(&m);
    assert_eq!(
        load_trust_store(PYJKS_TRUST, StoreType::Jks, PW).unwrap(),
        pem_certs(CA_PEM)
    );
}

#[test]
fn keytool_jks_stores() {
    let m = load_key_store(KEYTOOL_JKS, StoreType::Jks, PW).unwrap();
    assert_eq!(m.chain.len(), 1, "a self-signed EC key");
    assert!(matches!(m.key, PrivateKeyDer::Pkcs8(_)));
    // Java wrote the EC key without its public key; the loader added it (65 bytes of
    // uncompressed P-256 point in a BIT STRING inside [1]), and it is the
    // certificate's.
    let der = m.key.secret_der();
    let point_at = der
        .windows(4)
        .position(|w| w == [0xA1, 0x44, 0x03, 0x42])
        .expect("a [1] public key");
    let point = &der[point_at + 5..point_at + 5 + 65];
    assert_eq!(point[0], 0x04);
    assert!(
        m.chain[0].windows(65).any(|w| w == point),
        "the certificate holds the computed public key"
    );
    // The same key through keytool's PKCS#12 copies: new, legacy, and named .jks.
    for (what, bytes, ty) in [
        ("keytool.p12", KEYTOOL_P12, StoreType::Pkcs12),
        (
            "keytool-legacy.p12 (3DES/RC2)",
            KEYTOOL_LEGACY_P12,
            StoreType::Pkcs12,
        ),
        (
            "PKCS#12 content in a .jks",
            KEYTOOL_P12_NAMED_JKS,
            StoreType::Jks,
        ),
        ("JKS content typed PKCS12", KEYTOOL_JKS, StoreType::Pkcs12),
    ] {
        let other = load_key_store(bytes, ty, PW).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(other.key.secret_der(), m.key.secret_der(), "{what}");
        assert_eq!(other.chain, m.chain, "{what}");
    }
    assert_eq!(
        load_trust_store(KEYTOOL_TRUST_JKS, StoreType::Jks, PW).unwrap(),
        pem_certs(CA_PEM)
    );
    assert_eq!(
        load_trust_store(KEYTOOL_TRUST_P12, StoreType::Pkcs12, PW).unwrap(),
        pem_certs(CA_PEM)
    );
}

#[test]
fn openssl_pkcs12_and_pem_stores() {
    assert_is_the_openssl_key(&load_key_store(OPENSSL_P12, StoreType::Pkcs12, PW).unwrap());
    assert_is_the_openssl_key(&load_key_store(PEM, StoreType::Pem, "").unwrap());
    assert_is_the_openssl_key(&load_key_store(PEM_ENCRYPTED, StoreType::Pem, PW).unwrap());
    assert_eq!(
        load_trust_store(CA_PEM, StoreType::Pem, "").unwrap(),
        pem_certs(CA_PEM)
    );
}

#[test]
fn store_types_are_inferred_as_zookeeper_infers_them() {
    use StoreType::*;
    for (name, ty) in [
        ("/a/keystore.jks", Some(Jks)),
        ("k.pem", Some(Pem)),
        ("k.p12", Some(Pkcs12)),
        ("k.bcfks", Some(Bcfks)),
        // Case-sensitive, and only these four, as KeyStoreFileType.fromFilename.
        ("k.JKS", None),
        ("k.pfx", None),
        ("k.pkcs12", None),
        ("keystore", None),
        ("/dir.jks/keystore", None),
    ] {
        assert_eq!(StoreType::from_file_name(name), ty, "{name}");
    }
    assert_eq!(StoreType::from_property("jks"), Ok(Jks));
    assert_eq!(StoreType::from_property("Pkcs12"), Ok(Pkcs12));
    assert_eq!(StoreType::from_property("PEM"), Ok(Pem));
    assert_eq!(
        StoreType::from_property("PFX"),
        Err(KeyStoreError::UnknownType("PFX".into()))
    );
    assert!(matches!(
        load_key_store(KEYTOOL_JKS, Bcfks, PW),
        Err(KeyStoreError::Unsupported(m)) if m.contains("BCFKS")
    ));
}

#[test]
fn password_files_lose_one_trailing_newline_only() {
    assert_eq!(password_from_file(b"apassword\n"), "apassword");
    assert_eq!(password_from_file(b"apassword"), "apassword");
    assert_eq!(password_from_file(b" pw \n\n"), " pw \n");
    assert_eq!(password_from_file(b""), "");
}

#[test]
fn a_wrong_password_fails_the_integrity_check() {
    for (what, bytes, ty) in [
        ("keytool jks", KEYTOOL_JKS, StoreType::Jks),
        ("pyjks", PYJKS_KEY, StoreType::Jks),
        ("keytool p12", KEYTOOL_P12, StoreType::Pkcs12),
        ("legacy p12", KEYTOOL_LEGACY_P12, StoreType::Pkcs12),
        ("openssl p12", OPENSSL_P12, StoreType::Pkcs12),
    ] {
        let e = load_key_store(bytes, ty, "wrong").unwrap_err();
        assert_eq!(e, KeyStoreError::IntegrityCheckFailed, "{what}");
        assert!(e.to_string().contains("password is wrong"), "{what}: {e}");
    }
    assert_eq!(
        load_trust_store(PYJKS_TRUST, StoreType::Jks, "").unwrap_err(),
        KeyStoreError::IntegrityCheckFailed
    );
    assert_eq!(
        load_key_store(PEM_ENCRYPTED, StoreType::Pem, "wrong").unwrap_err(),
        KeyStoreError::KeyPasswordWrong
    );
}

#[test]
fn truncated_stores_are_refused() {
    for (what, bytes, ty) in [
        ("keytool jks", KEYTOOL_JKS, StoreType::Jks),
        ("pyjks", PYJKS_KEY, StoreType::Jks),
        ("keytool p12", KEYTOOL_P12, StoreType::Pkcs12),
        ("openssl p12", OPENSSL_P12, StoreType::Pkcs12),
    ] {
        for keep in [0, 3, 10, bytes.len() / 2, bytes.len() - 1] {
            let e = load_key_store(&bytes[..keep], ty, PW)
                .err()
                .unwrap_or_else(|| panic!("{what} cut to {keep} bytes was read"));
            assert!(
                matches!(
                    e,
                    KeyStoreError::Truncated
                        | KeyStoreError::Malformed(_)
                        | KeyStoreError::IntegrityCheckFailed
                ),
                "{what} cut to {keep}: {e:?}"
            );
        }
    }
    // A JKS store cut anywhere after its header says so.
    assert_eq!(
        load_key_store(&PYJKS_KEY[..PYJKS_KEY.len() / 2], StoreType::Jks, PW).unwrap_err(),
        KeyStoreError::Truncated
    );
    let pem = &PEM_ENCRYPTED[..PEM_ENCRYPTED.len() / 3];
    assert!(load_key_store(pem, StoreType::Pem, PW).is_err());
}

#[test]
fn flipped_bytes_fail_the_integrity_check_or_the_parse() {
    for (what, bytes, ty) in [
        ("keytool jks", KEYTOOL_JKS, StoreType::Jks),
        ("pyjks", PYJKS_KEY, StoreType::Jks),
        ("pyjks trust", PYJKS_TRUST, StoreType::Jks),
        ("keytool p12", KEYTOOL_P12, StoreType::Pkcs12),
        ("legacy p12", KEYTOOL_LEGACY_P12, StoreType::Pkcs12),
        ("openssl p12", OPENSSL_P12, StoreType::Pkcs12),
    ] {
        // 24 bytes spread over the store after the magic, one at a time: never read
        // as good.
        for at in (4..bytes.len()).step_by(bytes.len() / 24) {
            let mut bad = bytes.to_vec();
            bad[at] ^= 0x01;
            let loaded = if what.contains("trust") {
                load_trust_store(&bad, ty, PW).map(|_| ())
            } else {
                load_key_store(&bad, ty, PW).map(|_| ())
            };
            assert!(loaded.is_err(), "{what} with byte {at} flipped was read");
        }
        // In a JKS store the digest covers everything: any flip is an integrity error.
        if ty == StoreType::Jks {
            let mut bad = bytes.to_vec();
            let mid = bad.len() / 2;
            bad[mid] ^= 0x80;
            let e = load_trust_store(&bad, ty, PW).unwrap_err();
            assert!(
                matches!(
                    e,
                    KeyStoreError::IntegrityCheckFailed
                        | KeyStoreError::Malformed(_)
                        | KeyStoreError::Truncated
                ),
                "{what}: {e:?}"
            );
        }
    }
}

#[test]
fn a_key_store_needs_a_key_and_a_trust_store_certificates() {
    // Trust stores have no key.
    for (bytes, ty) in [
        (KEYTOOL_TRUST_JKS, StoreType::Jks),
        (PYJKS_TRUST, StoreType::Jks),
        (KEYTOOL_TRUST_P12, StoreType::Pkcs12),
        (CA_PEM, StoreType::Pem),
    ] {
        assert_eq!(
            load_key_store(bytes, ty, PW).unwrap_err(),
            KeyStoreError::NoPrivateKey
        );
    }
    // Key stores have no trusted certificate entry (their chains are not trusted).
    for (bytes, ty) in [
        (KEYTOOL_JKS, StoreType::Jks),
        (PYJKS_KEY, StoreType::Jks),
        (KEYTOOL_P12, StoreType::Pkcs12),
    ] {
        assert_eq!(
            load_trust_store(bytes, ty, PW).unwrap_err(),
            KeyStoreError::NoCertificates
        );
    }
    assert_eq!(
        load_trust_store(b"", StoreType::Pem, "").unwrap_err(),
        KeyStoreError::NoCertificates
    );
    assert_eq!(
        load_key_store(SERVER_KEY_PEM, StoreType::Pem, "").unwrap_err(),
        KeyStoreError::NoCertificateForKey
    );
}

#[test]
fn content_that_is_not_the_declared_kind_is_refused_clearly() {
    let e = load_key_store(PEM, StoreType::Jks, PW).unwrap_err();
    assert!(e.to_string().contains("PEM text"), "{e}");
    let e = load_key_store(b"hello world", StoreType::Pkcs12, PW).unwrap_err();
    assert!(e.to_string().contains("neither a JKS"), "{e}");
    let e = load_key_store(b"", StoreType::Jks, PW).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let mut jceks = KEYTOOL_JKS.to_vec();
    jceks[..4].copy_from_slice(&[0xCE; 4]);
    let e = load_key_store(&jceks, StoreType::Jks, PW).unwrap_err();
    assert!(e.to_string().contains("JCEKS"), "{e}");
    assert!(load_key_store(KEYTOOL_JKS, StoreType::Pem, PW).is_err());
}
