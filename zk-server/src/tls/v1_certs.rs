//! Client certificates of X.509 version 1, which Java accepts and webpki does not:
//! kazoo's test harness (and `openssl x509 -req` without extensions) makes them. A v1
//! certificate has no extensions, so there is nothing to check beyond what this does:
//! it must be signed directly by a certificate of the trust store (no intermediates),
//! be within its validity period, and its key must sign the handshake. Every other
//! certificate goes to webpki as before. [`v1_public_key`] lets the server present a
//! v1 certificate of its own (webpki cannot check that it matches the key).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use super::x509::{elements, next, Tlv};

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;

/// The parts of a certificate this module checks.
struct Parsed<'a> {
    v1: bool,
    tbs: &'a [u8],
    signature_alg: &'a [u8],
    signature: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    not_before: u64,
    not_after: u64,
    /// The SubjectPublicKeyInfo (whole), its algorithm (contents) and key bits.
    spki: &'a [u8],
    key_alg: &'a [u8],
    key: &'a [u8],
}

fn bit_string<'a>(t: &Tlv<'a>) -> Option<&'a [u8]> {
    // The first byte counts unused bits, zero for keys and signatures.
    (t.tag == BIT_STRING && t.contents.first() == Some(&0)).then(|| &t.contents[1..])
}

fn parse(der: &[u8]) -> Option<Parsed<'_>> {
    let (cert, _) = next(der).filter(|(t, _)| t.tag == SEQUENCE)?;
    let parts = elements(cert.contents)?;
    let [tbs, sig_alg, sig] = parts.as_slice() else {
        return None;
    };
    let mut fields = elements(tbs.contents)?.into_iter().peekable();
    let v1 = fields.peek()?.tag != 0xa0;
    if !v1 {
        fields.next();
    }
    let _serial = fields.next()?;
    let _inner_alg = fields.next()?;
    let issuer = fields.next()?;
    let validity = fields.next()?;
    let subject = fields.next()?;
    let spki = fields.next()?;
    let times = elements(validity.contents)?;
    let [not_before, not_after] = times.as_slice() else {
        return None;
    };
    let spki_parts = elements(spki.contents)?;
    let [key_alg, key] = spki_parts.as_slice() else {
        return None;
    };
    Some(Parsed {
        v1,
        tbs: tbs.encoded,
        signature_alg: sig_alg.contents,
        signature: bit_string(sig)?,
        issuer: issuer.encoded,
        subject: subject.encoded,
        not_before: time(not_before)?,
        not_after: time(not_after)?,
        spki: spki.encoded,
        key_alg: key_alg.contents,
        key: bit_string(key)?,
    })
}

/// Whether `der` is a certificate of X.509 version 1, and its SubjectPublicKeyInfo.
pub fn v1_public_key(der: &[u8]) -> Option<&[u8]> {
    parse(der).filter(|p| p.v1).map(|p| p.spki)
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), in Unix seconds.
fn time(t: &Tlv<'_>) -> Option<u64> {
    let text = std::str::from_utf8(t.contents).ok()?.strip_suffix('Z')?;
    let (year, rest) = match t.tag {
        0x17 if text.len() == 12 => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let n = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, min, sec) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + min * 60 + sec).ok()
}

/// A client certificate verifier that hands everything to webpki except v1 leaf
/// certificates, which it checks itself against the trust store's certificates.
#[derive(Debug)]
pub struct V1Tolerant {
    inner: Arc<dyn ClientCertVerifier>,
    anchors: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl V1Tolerant {
    /// Wraps `inner`, trusting v1 leaves signed by one of `anchors`.
    pub fn new(
        inner: Arc<dyn ClientCertVerifier>,
        anchors: Vec<CertificateDer<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> V1Tolerant {
        V1Tolerant {
            inner,
            anchors,
            algorithms,
        }
    }

    fn verify_v1(&self, leaf: &Parsed<'_>, now: UnixTime) -> Result<ClientCertVerified, Error> {
        let now = now.as_secs();
        if now < leaf.not_before {
            return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
        }
        if now > leaf.not_after {
            return Err(Error::InvalidCertificate(CertificateError::Expired));
        }
        for anchor in &self.anchors {
            let Some(ca) = parse(anchor) else { continue };
            if ca.subject != leaf.issuer {
                continue;
            }
            let signed = self.algorithms.all.iter().any(|alg| {
                alg.signature_alg_id().as_ref() == leaf.signature_alg
                    && alg.public_key_alg_id().as_ref() == ca.key_alg
                    && alg
                        .verify_signature(ca.key, leaf.tbs, leaf.signature)
                        .is_ok()
            });
            if signed {
                return Ok(ClientCertVerified::assertion());
            }
        }
        Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
    }

    /// The handshake signature under a v1 certificate's key.
    fn verify_signature(
        &self,
        leaf: &Parsed<'_>,
        message: &[u8],
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algs = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        let ok = algs.iter().any(|alg| {
            alg.public_key_alg_id().as_ref() == leaf.key_alg
                && alg
                    .verify_signature(leaf.key, message, dss.signature())
                    .is_ok()
        });
        if ok {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }
}

impl ClientCertVerifier for V1Tolerant {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match parse(end_entity) {
            Some(leaf) if leaf.v1 => self.verify_v1(&leaf, now),
            _ => self
                .inner
                .verify_client_cert(end_entity, intermediates, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match parse(cert) {
            Some(leaf) if leaf.v1 => self.verify_signature(&leaf, message, dss),
            _ => self.inner.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match parse(cert) {
            Some(leaf) if leaf.v1 => rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &rustls::pki_types::SubjectPublicKeyInfoDer::from(leaf.spki),
                dss,
                &self.algorithms,
            ),
            _ => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_unix_seconds() {
        let t = |tag: u8, s: &str| {
            time(&Tlv {
                tag,
                contents: s.as_bytes(),
                encoded: &[],
            })
        };
        assert_eq!(t(0x17, "700101000000Z"), Some(0));
        assert_eq!(t(0x17, "261207031500Z"), Some(1_796_613_300));
        assert_eq!(t(0x18, "20261207031500Z"), Some(1_796_613_300));
        assert_eq!(t(0x18, "20000229120000Z"), Some(951_825_600));
        assert_eq!(t(0x17, "261307031500Z"), None);
        assert_eq!(t(0x17, "2612070315Z"), None);
        assert_eq!(t(0x17, "261207031500"), None);
    }
}
