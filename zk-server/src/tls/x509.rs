//! The `x509` identity of a TLS client, as Apache ZooKeeper's
//! `X509AuthenticationProvider` gives it: the subject of the client's certificate in
//! RFC 2253 form, as Java's `X500Principal.getName()` writes it
//! (`O=Example,CN=client`: the last RDN first, `,` between RDNs, the keywords CN, C,
//! L, ST, O, OU, STREET, DC and UID, other attribute types as dotted OIDs with the
//! value as `#` and its DER in hex).
//!
//! Only the certificate's subject is read, by a small DER walker: the certificate was
//! already parsed and verified by rustls, so anything unexpected here means no x509
//! identity (the connection keeps its `ip` one), never a panic.

/// One DER element: its tag, its contents, and its whole encoding.
pub(super) struct Tlv<'a> {
    pub(super) tag: u8,
    pub(super) contents: &'a [u8],
    pub(super) encoded: &'a [u8],
}

/// Splits the first DER element off `data`.
pub(super) fn next(data: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let header = data.len() - rest.len();
    let (contents, after) = rest.split_at(len);
    Some((
        Tlv {
            tag,
            contents,
            encoded: &data[..header + len],
        },
        after,
    ))
}

/// The elements of a constructed value's contents.
pub(super) fn elements(mut data: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tlv, rest) = next(data)?;
        out.push(tlv);
        data = rest;
    }
    Some(out)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The subject of a DER certificate in RFC 2253 form; `None` if it cannot be read.
pub fn subject_rfc2253(certificate: &[u8]) -> Option<String> {
    let (cert, _) = next(certificate).filter(|(t, _)| t.tag == SEQUENCE)?;
    let (tbs, _) = next(cert.contents).filter(|(t, _)| t.tag == SEQUENCE)?;
    let mut fields = elements(tbs.contents)?.into_iter().peekable();
    if fields.peek()?.tag == 0xa0 {
        // [0] version
        fields.next();
    }
    // serialNumber, signature, issuer, validity, then the subject.
    let subject = fields.nth(4)?;
    if subject.tag != SEQUENCE {
        return None;
    }
    let mut rdns = Vec::new();
    for rdn in elements(subject.contents)? {
        if rdn.tag != SET {
            return None;
        }
        let mut avas = Vec::new();
        for ava in elements(rdn.contents)? {
            let parts = elements(ava.contents).filter(|p| ava.tag == SEQUENCE && p.len() == 2)?;
            let (oid, value) = (&parts[0], &parts[1]);
            if oid.tag != OID {
                return None;
            }
            avas.push(attribute(oid.contents, value)?);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// `TYPE=value` for one attribute.
fn attribute(oid: &[u8], value: &Tlv<'_>) -> Option<String> {
    let dotted = dotted_oid(oid)?;
    let keyword = match dotted.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.9" => Some("STREET"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    let text = keyword.and_then(|_| string_value(value));
    Some(match (keyword, text) {
        (Some(k), Some(text)) => format!("{k}={}", escape(&text)),
        (k, _) => format!(
            "{}=#{}",
            k.map_or(dotted, str::to_string),
            hex(value.encoded)
        ),
    })
}

/// The text of a directory string (UTF8String, PrintableString, IA5String,
/// TeletexString as Latin-1, BMPString, UniversalString).
fn string_value(value: &Tlv<'_>) -> Option<String> {
    match value.tag {
        0x0c | 0x13 | 0x16 => String::from_utf8(value.contents.to_vec()).ok(),
        0x14 => Some(value.contents.iter().map(|b| char::from(*b)).collect()),
        0x1e => {
            let units: Vec<u16> = value
                .contents
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        0x1c => value
            .contents
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

/// As Java's `X500Principal.getName()` escapes (checked with Java 17): `,=+<>#;"\`
/// anywhere, and a leading or trailing space.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\')
            || ((i == 0 || i == last) && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn dotted_oid(bytes: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i == bytes.len() - 1 {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert_with(subject: &[(DnType, &str)]) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_subject_reads_as_java_writes_it() {
        // What Apache ZooKeeper 3.8 answered whoAmI for such a certificate (checked in
        // tests/tests/tls_interop.rs): the last RDN first.
        let der = cert_with(&[
            (DnType::CommonName, "client"),
            (DnType::OrganizationName, "zk-rs test CA"),
        ]);
        assert_eq!(
            subject_rfc2253(&der).as_deref(),
            Some("O=zk-rs test CA,CN=client")
        );
        let der = cert_with(&[
            (DnType::CountryName, "DE"),
            (DnType::LocalityName, "Berlin"),
            (DnType::OrganizationalUnitName, "ops, infra"),
            (DnType::CommonName, " #lead+1 "),
        ]);
        // Java 17: new X500Principal("C=DE,L=Berlin,OU=ops\\, infra,CN=\\ #lead\\+1\\ ").getName()
        assert_eq!(
            subject_rfc2253(&der).as_deref(),
            Some(r"CN=\ \#lead\+1\ ,OU=ops\, infra,L=Berlin,C=DE")
        );
        let der = cert_with(&[(DnType::CommonName, "a#b=c;<>\"q\\ é")]);
        assert_eq!(
            subject_rfc2253(&der).as_deref(),
            Some(r#"CN=a\#b\=c\;\<\>\"q\\ é"#)
        );
        // An attribute type without a keyword: its OID and the DER of its value.
        let der = cert_with(&[(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "a@b",
        )]);
        let subject = subject_rfc2253(&der).unwrap();
        assert!(subject.starts_with("1.2.840.113549.1.9.1=#"), "{subject}");
    }

    #[test]
    fn garbage_is_no_identity_not_a_panic() {
        assert_eq!(subject_rfc2253(&[]), None);
        assert_eq!(subject_rfc2253(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        let der = cert_with(&[(DnType::CommonName, "x")]);
        for cut in 0..der.len() {
            let _ = subject_rfc2253(&der[..cut]);
        }
        let mut flipped = der.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = subject_rfc2253(&flipped);
            flipped[i] ^= 0xff;
        }
    }
}
