//! EC private keys as Java writes them: its PKCS#8 `ECPrivateKey` carries no public
//! key, which ring (rustls's provider) needs. For P-256 and P-384 keys the public key
//! is computed from the private scalar and added; other keys pass unchanged.

use super::jks::der_tlv;

/// DER of the OID 1.2.840.10045.2.1 (id-ecPublicKey).
const EC_PUBLIC_KEY: [u8; 7] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// DER of the OID 1.2.840.10045.3.1.7 (P-256).
const P256: [u8; 8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER of the OID 1.3.132.0.34 (P-384).
const P384: [u8; 5] = [0x2B, 0x81, 0x04, 0x00, 0x22];

/// One DER element.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// `pkcs8` with the public key added to its `ECPrivateKey`, when it is a P-256 or
/// P-384 key without one; `None` to keep it as it is.
pub(super) fn with_public_key(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (info, _) = der_tlv(pkcs8, 0x30)?;
    let (version, rest) = der_tlv(info, 0x02)?;
    let (alg, rest) = der_tlv(rest, 0x30)?;
    let alg_encoded = &info[version.len() + 2..info.len() - rest.len()];
    let (alg_oid, alg_rest) = der_tlv(alg, 0x06)?;
    if alg_oid != EC_PUBLIC_KEY {
        return None;
    }
    let (curve, _) = der_tlv(alg_rest, 0x06)?;
    let (private, _) = der_tlv(rest, 0x04)?;
    let (ec, _) = der_tlv(private, 0x30)?;
    let (ec_version, ec_rest) = der_tlv(ec, 0x02)?;
    let (scalar, ec_rest) = der_tlv(ec_rest, 0x04)?;
    // [0] parameters may follow; a [1] public key means nothing to do.
    let after_params = match der_tlv(ec_rest, 0xA0) {
        Some((_, after)) => after,
        None => ec_rest,
    };
    if der_tlv(after_params, 0xA1).is_some() {
        return None;
    }
    let point: Vec<u8> = if curve == P256 {
        let key = p256::SecretKey::from_slice(scalar).ok()?;
        p256::Sec1Point::from(key.public_key()).as_bytes().to_vec()
    } else if curve == P384 {
        let key = p384::SecretKey::from_slice(scalar).ok()?;
        p384::Sec1Point::from(key.public_key()).as_bytes().to_vec()
    } else {
        return None;
    };
    let mut bits = vec![0u8];
    bits.extend(point);
    let mut ec_contents = der(0x02, ec_version);
    ec_contents.extend(der(0x04, scalar));
    ec_contents.extend(der(0xA1, &der(0x03, &bits)));
    let mut info_contents = der(0x02, version);
    info_contents.extend_from_slice(alg_encoded);
    info_contents.extend(der(0x04, &der(0x30, &ec_contents)));
    Some(der(0x30, &info_contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_encoded_short_and_long() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn keys_that_are_not_ec_or_have_their_public_key_are_left_alone() {
        assert_eq!(with_public_key(b"not der"), None);
        assert_eq!(with_public_key(&der(0x30, &[])), None);
    }
}
