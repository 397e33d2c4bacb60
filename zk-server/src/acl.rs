//! ACL rules as ZooKeeper applies them: permission checks against a session's
//! identities, the create/setACL fix-up (`auth` expansion, validity, de-duplication),
//! and the digest scheme's hashing.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};
use zk_proto::{Acl, ErrorCode, Id, Perms};

/// The identity ZooKeeper gives a super user.
pub fn super_id() -> Id {
    Id::new("super", "")
}

/// `digest` scheme: `user:base64(sha1("user:password"))` for credentials `user:password`
/// (ZooKeeper's `DigestAuthenticationProvider.generateDigest`).
pub fn digest(credentials: &str) -> String {
    let user = credentials.split(':').next().unwrap_or("");
    let hash = Sha1::digest(credentials.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Whether `ids` grant `perm` on a znode with `acl` (`ZooKeeperServer.checkACL`).
///
/// An empty ACL grants everything; a `super` identity passes every check.
pub fn check(acl: &[Acl], perm: Perms, ids: &[Id]) -> Result<(), ErrorCode> {
    if acl.is_empty() || ids.iter().any(|id| id.scheme == "super") {
        return Ok(());
    }
    for entry in acl {
        if entry.perms().bits() & perm.bits() == 0 {
            continue;
        }
        let want = &entry.id;
        if want.scheme == "world" && want.id == "anyone" {
            return Ok(());
        }
        if ids
            .iter()
            .any(|have| have.scheme == want.scheme && matches(&want.scheme, &have.id, &want.id))
        {
            return Ok(());
        }
    }
    Err(ErrorCode::NoAuth)
}

/// Whether an authenticated id satisfies an ACL id of the same scheme.
fn matches(scheme: &str, have: &str, want: &str) -> bool {
    match scheme {
        "ip" => ip_matches(have, want),
        "digest" | "sasl" | "x509" => have == want,
        _ => false,
    }
}

/// Schemes whose identities `auth:` expands to (`AuthenticationProvider.isAuthenticated`).
fn is_authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "sasl" | "x509")
}

/// The authentication providers beyond `ip` and `digest` that the proposer of a write
/// had: they decide which ACL schemes are valid, and travel in the transaction so
/// every member judges alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Providers {
    /// `x509`: TLS clients are served (authenticated by certificate).
    pub x509: bool,
    /// `sasl`: `authProvider.N=…SASLAuthenticationProvider`.
    pub sasl: bool,
}

/// Whether `id` is well formed for `scheme` (`AuthenticationProvider.isValid`); schemes
/// without a provider are invalid. ZooKeeper 3.8 registers only `ip` and `digest` unless
/// `authProvider.N` names more, so `sasl:` ACLs are InvalidACL without the SASL
/// provider (checked on 3.8.0; with it any id is valid, as in
/// `SASLAuthenticationProvider.isValid`); `x509` is a provider exactly when TLS clients
/// are served, and then any id is valid, as in `X509AuthenticationProvider.isValid`.
fn is_valid(scheme: &str, id: &str, providers: Providers) -> bool {
    match scheme {
        // Java's `id.split(":").length == 2`: trailing empty parts are dropped.
        "digest" => {
            let parts: Vec<&str> = id.trim_end_matches(':').split(':').collect();
            parts.len() == 2
        }
        "ip" => parse_ip_acl(id).is_some(),
        "x509" => providers.x509,
        "sasl" => providers.sasl,
        _ => false,
    }
}

/// The ACL a create or setACL stores (`PrepRequestProcessor.fixupACL`): `auth:` entries
/// expand to the session's authenticated identities, every other entry must be valid
/// for its scheme, duplicates go. An empty result is `InvalidACL`. `providers`: the
/// optional providers that are on (see [`is_valid`]).
pub fn fix_up(acl: &[Acl], ids: &[Id], providers: Providers) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let mut push = |a: Acl| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for entry in acl {
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            push(entry.clone());
        } else if id.scheme == "auth" {
            let mut expanded = false;
            for have in ids.iter().filter(|i| is_authenticated_scheme(&i.scheme)) {
                push(Acl {
                    perms: entry.perms,
                    id: have.clone(),
                });
                expanded = true;
            }
            if !expanded {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid(&id.scheme, &id.id, providers) {
            push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// Parses an `ip` ACL id: `addr` or `addr/bits`.
fn parse_ip_acl(id: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let bits = match bits {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

/// Whether client address `have` lies in the network `want` (`addr[/bits]`).
fn ip_matches(have: &str, want: &str) -> bool {
    let (Ok(have), Some((net, bits))) = (have.parse::<IpAddr>(), parse_ip_acl(want)) else {
        return false;
    };
    match (have, net) {
        (IpAddr::V4(h), IpAddr::V4(n)) => prefix_eq(&h.octets(), &n.octets(), bits),
        (IpAddr::V6(h), IpAddr::V6(n)) => prefix_eq(&h.octets(), &n.octets(), bits),
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: Perms, scheme: &str, id: &str) -> Acl {
        Acl::new(perms, Id::new(scheme, id))
    }

    #[test]
    fn digest_matches_zookeeper() {
        // The value ZooKeeper documents for super:test and the one zkCli users know.
        assert_eq!(digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert_eq!(digest("bob:pw"), "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=");
    }

    #[test]
    fn world_anyone_grants_listed_perms_only() {
        let a = vec![acl(Perms::READ, "world", "anyone")];
        assert_eq!(check(&a, Perms::READ, &[]), Ok(()));
        assert_eq!(check(&a, Perms::WRITE, &[]), Err(ErrorCode::NoAuth));
    }

    #[test]
    fn digest_and_ip_identities_match_their_entries() {
        let bob = Id::new("digest", digest("bob:pw"));
        let a = vec![
            Acl::new(Perms::ALL, bob.clone()),
            acl(Perms::READ, "ip", "10.1.0.0/16"),
        ];
        assert_eq!(check(&a, Perms::DELETE, std::slice::from_ref(&bob)), Ok(()));
        assert_eq!(check(&a, Perms::READ, &[Id::new("ip", "10.1.2.3")]), Ok(()));
        assert_eq!(
            check(&a, Perms::READ, &[Id::new("ip", "10.2.2.3")]),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(&a, Perms::WRITE, &[Id::new("ip", "10.1.2.3")]),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn super_and_empty_acl_pass() {
        let a = vec![acl(Perms::READ, "digest", "x:y")];
        assert_eq!(check(&a, Perms::ADMIN, &[super_id()]), Ok(()));
        assert_eq!(check(&[], Perms::ADMIN, &[]), Ok(()));
    }

    #[test]
    fn fix_up_expands_auth_and_rejects_invalid() {
        let bob = Id::new("digest", digest("bob:pw"));
        let ip = Id::new("ip", "127.0.0.1");
        let fixed = fix_up(
            &[acl(Perms::ALL, "auth", "")],
            &[ip.clone(), bob.clone()],
            Providers::default(),
        )
        .unwrap();
        assert_eq!(fixed, vec![Acl::new(Perms::ALL, bob)]);
        assert_eq!(
            fix_up(&[acl(Perms::ALL, "auth", "")], &[ip], Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_up(&[], &[], Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_up(&[acl(Perms::ALL, "nope", "x")], &[], Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_up(
                &[acl(Perms::ALL, "digest", "bob")],
                &[],
                Providers::default()
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_up(
                &[acl(Perms::ALL, "ip", "300.1.1.1")],
                &[],
                Providers::default()
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fix_up(
                &[acl(Perms::ALL, "world", "someone")],
                &[],
                Providers::default()
            ),
            Err(ErrorCode::InvalidAcl)
        );
        let dup = fix_up(
            &[Acl::open_unsafe(), Acl::open_unsafe()].concat(),
            &[],
            Providers::default(),
        )
        .unwrap();
        assert_eq!(dup, Acl::open_unsafe());
    }

    const X509: Providers = Providers {
        x509: true,
        sasl: false,
    };

    #[test]
    fn sasl_acls_are_valid_only_with_the_sasl_provider() {
        let user = [acl(Perms::ALL, "sasl", "jaasuser")];
        assert_eq!(
            fix_up(&user, &[], Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        let sasl = Providers {
            x509: false,
            sasl: true,
        };
        assert_eq!(fix_up(&user, &[], sasl).unwrap(), user.to_vec());
        // `auth:` expands to the session's SASL identity, and it passes the check.
        let who = Id::new("sasl", "jaasuser");
        let fixed = fix_up(
            &[acl(Perms::ALL, "auth", "")],
            std::slice::from_ref(&who),
            sasl,
        )
        .unwrap();
        assert_eq!(fixed, user.to_vec());
        assert_eq!(check(&fixed, Perms::READ, &[who]), Ok(()));
        assert_eq!(
            check(&fixed, Perms::READ, &[Id::new("sasl", "other")]),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn x509_acls_are_valid_only_with_the_x509_provider() {
        let cert = [acl(Perms::ALL, "x509", "CN=client")];
        assert_eq!(
            fix_up(&cert, &[], Providers::default()),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(fix_up(&cert, &[], X509).unwrap(), cert.to_vec());
        // `auth:` expands to a certificate identity the session has.
        let who = Id::new("x509", "CN=client");
        assert_eq!(
            fix_up(&[acl(Perms::ALL, "auth", "")], &[who], X509).unwrap(),
            cert.to_vec()
        );
    }
}
