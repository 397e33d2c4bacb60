//! How zkCli.sh prints things — Stat, ACLs, lists, errors — and reads ACLs; plus our
//! binary data formats (base64, netty's hex dump as zkCli.sh 3.9's `get -x` shows it).

use std::fmt::Write as _;

use base64::Engine as _;
use zk_client::{Acl, Error, ErrorCode, Id, Stat};

use crate::time::java_date;

/// `StatPrinter.print`: eleven `name = value` lines.
pub fn stat(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// `ZKUtil.getPermString`: `cdrwa` order.
pub fn perms(bits: i32) -> String {
    [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// A jute string as `ToStringOutputArchive` writes it: `'` then the text, escaped.
fn jute_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `Id.toString()`: `'scheme,'id` and a newline (a top-level jute record).
pub fn id(id: &Id) -> String {
    format!("{},{}\n", jute_string(&id.scheme), jute_string(&id.id))
}

/// `getAcl`'s lines: `'world,'anyone\n: cdrwa\n` per entry.
pub fn acl(acl: &[Acl]) -> String {
    acl.iter()
        .map(|a| format!("{}: {}\n", id(&a.id), perms(a.perms)))
        .collect()
}

/// `AclParser.parse`: `scheme:id:perms[,…]`. Entries without two colons are skipped
/// and unknown permission letters ignored, each with a complaint (for stderr).
pub fn parse_acl(text: &str) -> (Vec<Acl>, Vec<String>) {
    let mut acl = Vec::new();
    let mut complaints = Vec::new();
    for a in java_split(text, ',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            complaints.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            complaints.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        }
        let mut bits = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => bits |= 1,
                'w' => bits |= 2,
                'c' => bits |= 4,
                'd' => bits |= 8,
                'a' => bits |= 16,
                other => complaints.push(format!("Unknown perm type: {other}")),
            }
        }
        acl.push(Acl {
            perms: bits,
            id: Id::new(&a[..first], &a[first + 1..last]),
        });
    }
    (acl, complaints)
}

/// Java's `String.split(sep)`: trailing empty pieces dropped (all of them for an
/// empty input but one).
pub fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    if s.is_empty() {
        return parts;
    }
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() {
        parts.clear();
    }
    parts
}

/// Java's `List.toString()`: `[a, b]`.
pub fn list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", items.join(", "))
}

/// The message zkCli.sh prints for a failed request on `path` (`CliWrapperException`).
pub fn error(e: &Error, path: &str) -> String {
    let keeper = |code: ErrorCode, p: &str| {
        if p.is_empty() {
            format!("KeeperErrorCode = {}", code.message())
        } else {
            format!("KeeperErrorCode = {} for {p}", code.message())
        }
    };
    match e {
        Error::Keeper { code, path: p } => match code {
            ErrorCode::NoNode => format!("Node does not exist: {p}"),
            ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
            ErrorCode::NodeExists => format!("Node already exists: {p}"),
            ErrorCode::NotEmpty => format!("Node not empty: {p}"),
            ErrorCode::NotReadOnly => format!("Not a read-only call: {p}"),
            ErrorCode::InvalidAcl => format!("Acl is not valid : {p}"),
            ErrorCode::NoAuth => format!("Insufficient permission : {p}"),
            ErrorCode::BadArguments => format!("Arguments are not valid : {p}"),
            ErrorCode::BadVersion => format!("version No is not valid : {p}"),
            ErrorCode::ReconfigInProgress => {
                "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                    .into()
            }
            ErrorCode::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last commmitted config - try invoking reconfiguration after new servers are connected and synced".into(),
            ErrorCode::QuotaExceeded => format!("Quota has exceeded : {p}"),
            code => keeper(*code, p),
        },
        Error::ConnectionLoss | Error::Closed | Error::ConnectFailed(_) => {
            keeper(ErrorCode::ConnectionLoss, path)
        }
        Error::SessionExpired => keeper(ErrorCode::SessionExpired, path),
        Error::AuthFailed => keeper(ErrorCode::AuthFailed, path),
        Error::InvalidPath(m) | Error::BadArguments(m) | Error::Protocol(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Base64 (`get -b`), as `java.util.Base64.getEncoder()` writes it.
pub fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes base64 data given to `create -b` / `set -b`.
pub fn from_base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("Invalid base64 data: {e}"))
}

/// Decodes hex data given to `create -x` / `set -x` (whitespace and a `0x` allowed).
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Vec<u8> = t.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("Invalid hex data: an odd number of digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("Invalid hex data: {:?}", String::from_utf8_lossy(p)))
        })
        .collect()
}

/// netty's `ByteBufUtil.prettyHexDump` (zkCli.sh 3.9's `get -x`); empty for no data.
pub fn hexdump(data: &[u8]) -> String {
    if data.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "         +-------------------------------------------------+\n         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n+--------+-------------------------------------------------+----------------+",
    );
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "\n|{:08x}|", (row as u64) << 4);
        for b in chunk {
            let _ = write!(out, " {b:02x}");
        }
        out.push_str(&"   ".repeat(16 - chunk.len()));
        out.push_str(" |");
        for &b in chunk {
            out.push(if b > 0x1f && b < 0x7f { b as char } else { '.' });
        }
        out.push_str(&" ".repeat(16 - chunk.len()));
        out.push('|');
    }
    out.push_str("\n+--------+-------------------------------------------------+----------------+");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_print_and_parse_as_zkcli() {
        assert_eq!(acl(&Acl::open_unsafe()), "'world,'anyone\n: cdrwa\n");
        assert_eq!(perms(1 | 16), "ra");
        assert_eq!(id(&Id::new("x", "a,b%}\n")), "'x,'a%2Cb%25%7D%0A\n");
        let (a, c) = parse_acl("world:anyone:rxw,bogus,digest:u:h=:cdrwa");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].perms, 3);
        assert_eq!(a[1].id, Id::new("digest", "u:h="));
        assert_eq!(
            c,
            vec![
                "Unknown perm type: x".to_string(),
                "bogus does not have the form scheme:id:perm".to_string()
            ]
        );
    }

    #[test]
    fn splits_as_java() {
        assert_eq!(java_split("a,,b,,", ','), vec!["a", "", "b"]);
        assert_eq!(java_split(",a", ','), vec!["", "a"]);
        assert!(java_split(",,", ',').is_empty());
        assert_eq!(java_split("", ','), vec![""]);
    }

    #[test]
    fn binary_formats() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(from_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(from_hex("0x00ff 10").unwrap(), vec![0, 255, 16]);
        assert!(from_hex("abc").is_err());
        assert_eq!(
            hexdump(b"hello, world!\x00\x01\x7f-more"),
            "         +-------------------------------------------------+\n         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n+--------+-------------------------------------------------+----------------+\n|00000000| 68 65 6c 6c 6f 2c 20 77 6f 72 6c 64 21 00 01 7f |hello, world!...|\n|00000010| 2d 6d 6f 72 65                                  |-more           |\n+--------+-------------------------------------------------+----------------+"
        );
        assert_eq!(hexdump(b""), "");
    }

    #[test]
    fn errors_read_as_zkcli_prints_them() {
        let e = |code| Error::Keeper {
            code,
            path: "/a".into(),
        };
        assert_eq!(
            error(&e(ErrorCode::NoNode), "/a"),
            "Node does not exist: /a"
        );
        assert_eq!(
            error(&e(ErrorCode::BadVersion), "/a"),
            "version No is not valid : /a"
        );
        assert_eq!(
            error(&e(ErrorCode::NoWatcher), "/a"),
            "KeeperErrorCode = No such watcher for /a"
        );
        assert_eq!(
            error(&Error::ConnectionLoss, "/a"),
            "KeeperErrorCode = ConnectionLoss for /a"
        );
        assert_eq!(
            error(&Error::AuthFailed, ""),
            "KeeperErrorCode = AuthFailed"
        );
    }
}
