//! P-256 keys, the only kind admind takes: the private scalar read from its DER, PKCS#8 or
//! SEC1 (RFC 5915); a new one from the kernel's randomness; ECDSA signatures from the scalar.
//! A few lines of DER walking instead of the `der`/`pkcs8` crates, which cost the device
//! binary 20 KB for this one read.

/// id-ecPublicKey (1.2.840.10045.2.1) and prime256v1 (1.2.840.10045.3.1.7), DER contents.
pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;
/// ECPrivateKey's `[0] parameters`.
const PARAMETERS: u8 = 0xa0;

/// One DER element: (tag, contents, what follows). Definite lengths up to 64 KiB only.
pub(crate) fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x82 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The element at the start of `input` if it has tag `want`: (contents, what follows).
fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, contents, rest) = element(input)?;
    (tag == want).then_some((contents, rest))
}

/// PKCS#8 PrivateKeyInfo: version, algorithm (id-ecPublicKey, prime256v1), and an
/// ECPrivateKey inside an OCTET STRING.
pub fn pkcs8_scalar(der: &[u8]) -> Option<[u8; 32]> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (algorithm, rest) = expect(rest, SEQUENCE)?;
    let (kind, parameters) = expect(algorithm, OID)?;
    let (curve, _) = expect(parameters, OID)?;
    if kind != EC_PUBLIC_KEY || curve != PRIME256V1 {
        return None;
    }
    let (inner, _) = expect(rest, OCTET_STRING)?;
    sec1_scalar(inner)
}

/// SEC1 ECPrivateKey: version 1, the 32-byte scalar, and if named, the curve prime256v1.
pub fn sec1_scalar(der: &[u8]) -> Option<[u8; 32]> {
    let (key, _) = expect(der, SEQUENCE)?;
    let (version, rest) = expect(key, INTEGER)?;
    let (scalar, rest) = expect(rest, OCTET_STRING)?;
    if version != [1] {
        return None;
    }
    if let Some((parameters, _)) = expect(rest, PARAMETERS) {
        if expect(parameters, OID)?.0 != PRIME256V1 {
            return None;
        }
    }
    scalar.try_into().ok()
}

/// getrandom as the `rand_core` source the elliptic-curve crates take.
pub(crate) struct RandCore;

impl p256::elliptic_curve::rand_core::RngCore for RandCore {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Without the kernel's randomness no key can be made safely; stop rather than guess.
        if getrandom::getrandom(dest).is_err() {
            std::process::abort();
        }
    }

    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), p256::elliptic_curve::rand_core::Error> {
        getrandom::getrandom(dest).map_err(|e| {
            p256::elliptic_curve::rand_core::Error::from(
                core::num::NonZeroU32::new(e.code().get()).unwrap_or(core::num::NonZeroU32::MIN),
            )
        })
    }
}

impl p256::elliptic_curve::rand_core::CryptoRng for RandCore {}

/// ECDSA P-256 with SHA-256 and deterministic nonces (RFC 6979: no randomness to get
/// wrong), what p256's `SigningKey` computes, from the scalar alone.
pub(crate) fn sign(secret: &p256::NonZeroScalar, message: &[u8]) -> Option<p256::ecdsa::Signature> {
    use ecdsa::hazmat::{bits2field, SignPrimitive};
    use sha2::Digest;
    let z = bits2field::<p256::NistP256>(&sha2::Sha256::digest(message)).ok()?;
    let (sig, _) = secret
        .as_ref()
        .try_sign_prehashed_rfc6979::<sha2::Sha256>(&z, &[])
        .ok()?;
    Some(sig)
}

/// The public point of `secret`, SEC1 uncompressed.
pub(crate) fn public_point(secret: &p256::NonZeroScalar) -> [u8; 65] {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let point = p256::PublicKey::from_secret_scalar(secret).to_encoded_point(false);
    let mut out = [0u8; 65];
    out.copy_from_slice(point.as_bytes());
    out
}

/// The secret scalar of a PKCS#8 or SEC1 key, if it is a valid P-256 one.
pub(crate) fn secret(der: &rustls::pki_types::PrivateKeyDer<'_>) -> Option<p256::NonZeroScalar> {
    use rustls::pki_types::PrivateKeyDer;
    let scalar = match der {
        PrivateKeyDer::Pkcs8(k) => pkcs8_scalar(k.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(k) => sec1_scalar(k.secret_sec1_der()),
        _ => None,
    }?;
    Option::from(p256::NonZeroScalar::from_repr(scalar.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PKCS#8 and SEC1 encodings of one key, made by `openssl` (PKCS#8 as `openssl req
    /// -newkey ec` writes it; SEC1 as `openssl ec` does).
    const PKCS8: &str = "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420\
        e483aeea9da26a6b789c6254ac925c222539d4b7338325aef406de6fe84434b4a1440342\
        00045bd69bda8cea61061e18b27a00cf1f1bb05b0caa4a5dc13d0adfa31fec5fa9364932\
        82423015e061386313ddb86a4f0f5d690011251db70e739c5bcbf9154d7b";
    const SEC1: &str = "30770201010420e483aeea9da26a6b789c6254ac925c222539d4b7338325aef406de6fe8\
        4434b4a00a06082a8648ce3d030107a144034200045bd69bda8cea61061e18b27a00cf1f\
        1bb05b0caa4a5dc13d0adfa31fec5fa936493282423015e061386313ddb86a4f0f5d6900\
        11251db70e739c5bcbf9154d7b";
    const SCALAR: &str = "e483aeea9da26a6b789c6254ac925c222539d4b7338325aef406de6fe84434b4";

    fn bytes(hex: &str) -> Vec<u8> {
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reads_the_scalar_of_both_encodings() {
        let want: [u8; 32] = bytes(SCALAR).try_into().unwrap();
        assert_eq!(pkcs8_scalar(&bytes(PKCS8)), Some(want));
        assert_eq!(sec1_scalar(&bytes(SEC1)), Some(want));
        assert_eq!(pkcs8_scalar(&bytes(SEC1)), None, "not PKCS#8");
    }

    #[test]
    fn refuses_other_curves_and_never_panics_on_damage() {
        // prime256v1's OID ends the algorithm identifier: make it secp384r1's (1.3.132.0.34).
        let mut other_curve = bytes(PKCS8);
        let curve = other_curve
            .windows(PRIME256V1.len())
            .position(|w| w == PRIME256V1)
            .unwrap();
        other_curve.splice(
            curve - 1..curve + PRIME256V1.len(),
            [5, 0x2b, 0x81, 0x04, 0x00, 0x22, 0x00, 0x00, 0x00],
        );
        assert_eq!(pkcs8_scalar(&other_curve), None);
        let mut other_kind = bytes(PKCS8);
        other_kind[13] ^= 1; // id-ecPublicKey's last byte
        assert_eq!(pkcs8_scalar(&other_kind), None);
        let good = bytes(PKCS8);
        for cut in 0..good.len() {
            let _ = pkcs8_scalar(&good[..cut]);
        }
        for i in 0..good.len() {
            let mut damaged = good.clone();
            damaged[i] ^= 0xff;
            let _ = pkcs8_scalar(&damaged);
        }
    }

    #[test]
    fn signatures_from_the_scalar_are_p256s_own() {
        use p256::ecdsa::signature::{Signer as _, Verifier as _};
        let bytes = [0x5au8; 32];
        let secret = Option::from(p256::NonZeroScalar::from_repr(bytes.into())).unwrap();
        let reference = p256::ecdsa::SigningKey::from_bytes(&bytes.into()).unwrap();
        for message in [&b""[..], b"TLS 1.3, server CertificateVerify", &[7u8; 1000]] {
            let ours = sign(&secret, message).unwrap();
            let theirs: p256::ecdsa::Signature = reference.sign(message);
            assert_eq!(ours, theirs);
            assert!(reference.verifying_key().verify(message, &ours).is_ok());
        }
    }
}
