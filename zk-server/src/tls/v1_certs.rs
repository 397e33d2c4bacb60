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

use x509_parser::asn1_rs::{BitString, ToDer};
use x509_parser::x509::{AlgorithmIdentifier, X509Version};

use super::x509::certificate;

/// The parts of a certificate this module checks.
struct Parsed<'a> {
    v1: bool,
    /// The TBSCertificate (whole), which the signature covers.
    tbs: Vec<u8>,
    /// The signature's AlgorithmIdentifier (contents, as rustls names algorithms).
    signature_alg: Vec<u8>,
    signature: Vec<u8>,
    /// Issuer and subject names (whole), compared byte for byte.
    issuer: &'a [u8],
    subject: &'a [u8],
    /// Validity, in Unix seconds.
    not_before: u64,
    not_after: u64,
    /// The SubjectPublicKeyInfo (whole), its algorithm (contents) and key bits.
    spki: &'a [u8],
    key_alg: Vec<u8>,
    key: Vec<u8>,
}

/// The bits of a key or signature: whole bytes (no unused bits), as both are.
fn bit_string(b: &BitString<'_>) -> Option<Vec<u8>> {
    (b.unused_bits == 0).then(|| b.data.to_vec())
}

/// An AlgorithmIdentifier's contents (its OID and parameters, without the SEQUENCE
/// around them), the form rustls's algorithm ids take.
fn algorithm_id(alg: &AlgorithmIdentifier<'_>) -> Option<Vec<u8>> {
    let mut out = alg.algorithm.to_der_vec().ok()?;
    if let Some(parameters) = &alg.parameters {
        out.extend(parameters.to_der_vec().ok()?);
    }
    Some(out)
}

fn parse(der: &[u8]) -> Option<Parsed<'_>> {
    let cert = certificate(der)?;
    let tbs = &cert.tbs_certificate;
    let validity = tbs.validity();
    let spki = &tbs.subject_pki;
    Some(Parsed {
        v1: tbs.version() == X509Version::V1,
        tbs: tbs.as_ref().to_vec(),
        signature_alg: algorithm_id(&cert.signature_algorithm)?,
        signature: bit_string(&cert.signature_value)?,
        issuer: tbs.issuer.as_raw(),
        subject: tbs.subject.as_raw(),
        not_before: u64::try_from(validity.not_before.timestamp()).ok()?,
        not_after: u64::try_from(validity.not_after.timestamp()).ok()?,
        spki: spki.raw,
        key_alg: algorithm_id(&spki.algorithm)?,
        key: bit_string(&spki.subject_public_key)?,
    })
}

/// Whether `der` is a certificate of X.509 version 1, and its SubjectPublicKeyInfo.
pub fn v1_public_key(der: &[u8]) -> Option<&[u8]> {
    parse(der).filter(|p| p.v1).map(|p| p.spki)
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
                alg.signature_alg_id().as_ref() == leaf.signature_alg.as_slice()
                    && alg.public_key_alg_id().as_ref() == ca.key_alg.as_slice()
                    && alg
                        .verify_signature(&ca.key, &leaf.tbs, &leaf.signature)
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
            alg.public_key_alg_id().as_ref() == leaf.key_alg.as_slice()
                && alg
                    .verify_signature(&leaf.key, message, dss.signature())
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
    use rcgen::{CertificateParams, KeyPair, PublicKeyData};

    #[test]
    fn a_v3_certificate_is_read_but_not_taken_for_v1() {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        let parsed = parse(&der).expect("parsed");
        assert!(!parsed.v1);
        assert_eq!(parsed.issuer, parsed.subject, "self-signed");
        assert!(parsed.not_before < parsed.not_after);
        assert_eq!(parsed.spki, key.subject_public_key_info().as_slice());
        // ECDSA P-256 with SHA-256, as rustls's ring provider names it.
        assert_eq!(
            parsed.signature_alg.as_slice(),
            rustls::pki_types::alg_id::ECDSA_SHA256.as_ref()
        );
        assert_eq!(
            parsed.key_alg.as_slice(),
            rustls::pki_types::alg_id::ECDSA_P256.as_ref()
        );
        assert_eq!(v1_public_key(&der), None);
        assert!(parse(&der[..der.len() - 1]).is_none());
        assert!(parse(&[]).is_none());
    }
}
