//! The `x509` identity of a TLS client, as Apache ZooKeeper's
//! `X509AuthenticationProvider` gives it: the subject of the client's certificate in
//! RFC 2253 form, as Java's `X500Principal.getName()` writes it
//! (`O=Example,CN=client`: the last RDN first, `,` between RDNs, the keywords CN, C,
//! L, ST, O, OU, STREET, DC and UID, other attribute types as dotted OIDs with the
//! value as `#` and its DER in hex).
//!
//! The certificate is parsed by x509-parser ([`certificate`], also for
//! [`super::v1_certs`]); the name is written here, since x509-parser's own form is
//! OpenSSL's, not Java's. The certificate was already verified by rustls, so anything
//! unexpected here means no x509 identity (the connection keeps its `ip` one), never a
//! panic.

use x509_parser::asn1_rs::{Any, BmpString, Class, Tag, ToDer, UniversalString};
use x509_parser::certificate::{X509Certificate, X509CertificateParser};
use x509_parser::nom::Parser;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// A DER certificate, parsed; `None` if it is not one. Extensions are left unparsed
/// (nothing here reads them), so one x509-parser does not know cannot refuse it.
pub(super) fn certificate(der: &[u8]) -> Option<X509Certificate<'_>> {
    X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
        .ok()
        .map(|(_, cert)| cert)
}

/// The subject of a DER certificate in RFC 2253 form; `None` if it cannot be read.
pub fn subject_rfc2253(certificate_der: &[u8]) -> Option<String> {
    rfc2253(certificate(certificate_der)?.subject())
}

/// `name` as Java's `X500Principal.getName()` writes it.
fn rfc2253(name: &X509Name<'_>) -> Option<String> {
    let mut rdns = name
        .iter()
        .map(|rdn| {
            let avas = rdn.iter().map(attribute).collect::<Option<Vec<_>>>()?;
            Some(avas.join("+"))
        })
        .collect::<Option<Vec<_>>>()?;
    rdns.reverse();
    Some(rdns.join(","))
}

/// `TYPE=value` for one attribute.
fn attribute(ava: &AttributeTypeAndValue<'_>) -> Option<String> {
    let dotted = dotted_oid(ava.attr_type().as_bytes())?;
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
    let value = ava.attr_value();
    let text = keyword.and_then(|_| string_value(value));
    Some(match (keyword, text) {
        (Some(k), Some(text)) => format!("{k}={}", escape(&text)),
        (k, _) => format!(
            "{}=#{}",
            k.map_or(dotted, str::to_string),
            hex(&value.to_der_vec().ok()?)
        ),
    })
}

/// The text of a directory string (UTF8String, PrintableString, IA5String,
/// TeletexString as Latin-1, BMPString, UniversalString).
fn string_value(value: &Any<'_>) -> Option<String> {
    if value.class() != Class::Universal || value.header.is_constructed() {
        return None;
    }
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            String::from_utf8(value.data.to_vec()).ok()
        }
        Tag::TeletexString => Some(value.data.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => BmpString::try_from(value).ok().map(|s| s.string()),
        Tag::UniversalString => UniversalString::try_from(value).ok().map(|s| s.string()),
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

/// An OID's contents in dotted form, as Java writes it. Not asn1-rs's
/// `Oid::to_id_string`: that splits only the first byte into the first two arcs,
/// which is wrong for `2.48` and above (a first sub-identifier of several bytes).
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
        cert_with_values(
            subject
                .iter()
                .map(|(ty, value)| (ty.clone(), rcgen::DnValue::from(*value)))
                .collect(),
        )
    }

    fn cert_with_values(subject: Vec<(DnType, rcgen::DnValue)>) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty, value);
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
    fn every_directory_string_and_oid_reads_as_before() {
        use rcgen::string::{
            BmpString, Ia5String, PrintableString, TeletexString, UniversalString,
        };
        use rcgen::DnValue;
        let der = cert_with_values(vec![
            (
                DnType::CommonName,
                DnValue::BmpString(BmpString::try_from("Grüße").unwrap()),
            ),
            (
                DnType::OrganizationName,
                DnValue::UniversalString(UniversalString::try_from("Zoo 🦓").unwrap()),
            ),
            (
                DnType::OrganizationalUnitName,
                DnValue::TeletexString(TeletexString::try_from("ops").unwrap()),
            ),
            (
                DnType::CountryName,
                DnValue::PrintableString(PrintableString::try_from("DE").unwrap()),
            ),
            (
                DnType::LocalityName,
                DnValue::Ia5String(Ia5String::try_from("x@y").unwrap()),
            ),
        ]);
        assert_eq!(
            subject_rfc2253(&der).as_deref(),
            Some("L=x@y,C=DE,OU=ops,O=Zoo 🦓,CN=Grüße")
        );
        // An OID whose first sub-identifier takes two bytes (2.999 = 0x88 0x37).
        let der = cert_with(&[(DnType::CustomDnType(vec![2, 999, 1]), "v")]);
        assert_eq!(subject_rfc2253(&der).as_deref(), Some("2.999.1=#0c0176"));
        assert_eq!(dotted_oid(&[0x88, 0x37, 0x01]).as_deref(), Some("2.999.1"));
        assert_eq!(dotted_oid(&[0x2a, 0x86]), None);
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
