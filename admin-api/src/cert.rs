//! A device's TLS identity as files: the self-signed X.509 certificate admind makes for the
//! P-256 key it makes on first boot, and the key's PKCS#8 form; on the client side, the
//! public key a certificate carries and its pin (SHA-256 of the SubjectPublicKeyInfo, what
//! `curl --pinnedpubkey sha256//...` compares). A few lines of DER writing instead of rcgen,
//! which would bring its own DER and PEM crates to the device.

use crate::key::{element, EC_PUBLIC_KEY, INTEGER, OCTET_STRING, OID, PRIME256V1, SEQUENCE};
use sha2::{Digest, Sha256};

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2), commonName (2.5.4.3), subjectAltName
/// (2.5.29.17): DER contents.
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

const BIT_STRING: u8 = 0x03;
const UTF8_STRING: u8 = 0x0c;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const SET: u8 = 0x31;
/// TBSCertificate's `[0] version` and `[3] extensions`; GeneralName's `[2] dNSName`.
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
const DNS_NAME: u8 = 0x82;
/// ECPrivateKey's `[1] publicKey`.
const PUBLIC_KEY: u8 = 0xa1;

/// Bytes of an uncompressed SEC1 P-256 point.
pub const PUBLIC_KEY_BYTES: usize = 65;

/// One DER element: tag, length, contents.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    // What is written here (a hostname, a key, a signature) stays far below 64 KiB.
    debug_assert!(len <= 0xffff, "DER element of {len} bytes");
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(contents);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// SubjectPublicKeyInfo of a P-256 point (SEC1 uncompressed).
fn spki(point: &[u8; PUBLIC_KEY_BYTES]) -> Vec<u8> {
    seq(&[
        &p256_algorithm(),
        &tlv(BIT_STRING, &[&[0u8][..], point].concat()),
    ])
}

/// The TBSCertificate of a self-signed certificate for `name`: version 3, issuer and subject
/// CN=`name`, valid from 1970 to 9999 (a device may boot with its clock at zero, and a pinned
/// key needs no expiry: RFC 5280 4.1.2.5), and `name` as its one DNS name.
pub fn to_be_signed(point: &[u8; PUBLIC_KEY_BYTES], serial: [u8; 16], name: &str) -> Vec<u8> {
    let mut serial = serial;
    serial[0] = serial[0] & 0x7f | 0x40; // positive, and no leading zero to strip
    let common_name = tlv(
        SET,
        &seq(&[&tlv(OID, COMMON_NAME), &tlv(UTF8_STRING, name.as_bytes())]),
    );
    let dn = seq(&[&common_name]);
    let validity = seq(&[
        &tlv(UTC_TIME, b"700101000000Z"),
        &tlv(GENERALIZED_TIME, b"99991231235959Z"),
    ]);
    let alt_names = seq(&[&tlv(DNS_NAME, name.as_bytes())]);
    let extensions = tlv(
        EXTENSIONS,
        &seq(&[&seq(&[
            &tlv(OID, SUBJECT_ALT_NAME),
            &tlv(OCTET_STRING, &alt_names),
        ])]),
    );
    seq(&[
        &tlv(VERSION, &tlv(INTEGER, &[2])),
        &tlv(INTEGER, &serial),
        &seq(&[&tlv(OID, ECDSA_WITH_SHA256)]),
        &dn,
        &validity,
        &dn,
        &spki(point),
        &extensions,
    ])
}

/// The certificate: `tbs` and its ECDSA signature (DER, as `Signature::to_der` gives it).
pub fn certificate(tbs: &[u8], signature_der: &[u8]) -> Vec<u8> {
    seq(&[
        tbs,
        &seq(&[&tlv(OID, ECDSA_WITH_SHA256)]),
        &tlv(BIT_STRING, &[&[0u8][..], signature_der].concat()),
    ])
}

/// The AlgorithmIdentifier of a P-256 key.
fn p256_algorithm() -> Vec<u8> {
    seq(&[&tlv(OID, EC_PUBLIC_KEY), &tlv(OID, PRIME256V1)])
}

/// PKCS#8 PrivateKeyInfo of a P-256 key: its scalar and, as OpenSSL writes it, its point.
pub fn pkcs8(scalar: &[u8; 32], point: &[u8; PUBLIC_KEY_BYTES]) -> Vec<u8> {
    let ec_private_key = seq(&[
        &tlv(INTEGER, &[1]),
        &tlv(OCTET_STRING, scalar),
        &tlv(PUBLIC_KEY, &tlv(BIT_STRING, &[&[0u8][..], point].concat())),
    ]);
    seq(&[
        &tlv(INTEGER, &[0]),
        &p256_algorithm(),
        &tlv(OCTET_STRING, &ec_private_key),
    ])
}

/// A device's identity as admind keeps it: certificate and key as PEM, and the key's pin.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub pin: [u8; 32],
}

/// A new identity for a device called `name`: a P-256 key from the kernel's randomness and
/// its self-signed certificate. `None` if the kernel gives no randomness.
pub fn new_identity(name: &str) -> Option<Identity> {
    let mut serial = [0u8; 16];
    getrandom::getrandom(&mut serial).ok()?;
    let secret = p256::NonZeroScalar::random(&mut crate::key::RandCore);
    let point = crate::key::public_point(&secret);
    let tbs = to_be_signed(&point, serial, name);
    let signature = crate::key::sign(&secret, &tbs)?;
    let cert = certificate(&tbs, signature.to_der().as_bytes());
    Some(Identity {
        cert_pem: pem("CERTIFICATE", &cert),
        key_pem: pem(
            "PRIVATE KEY",
            &pkcs8(
                &p256::elliptic_curve::PrimeField::to_repr(&*secret).into(),
                &point,
            ),
        ),
        pin: pin(&spki(&point)),
    })
}

/// PEM text of one DER block, 64 columns.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = boot::encoding::Base64(der).to_string();
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A certificate's P-256 public key: (its SubjectPublicKeyInfo's DER, the SEC1 point).
/// `None` for anything but a P-256 key in a well-formed certificate.
pub fn public_key(cert: &[u8]) -> Option<(&[u8], &[u8; PUBLIC_KEY_BYTES])> {
    let (_, certificate, _) = element(cert).filter(|e| e.0 == SEQUENCE)?;
    let (_, tbs, _) = element(certificate).filter(|e| e.0 == SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.2;
    }
    // serial, signature algorithm, issuer, validity, subject, then the key.
    for _ in 0..5 {
        rest = element(rest)?.2;
    }
    let (tag, info, after) = element(rest)?;
    let info_der = rest.get(..rest.len() - after.len())?;
    let (_, algorithm, key) = element(info).filter(|_| tag == SEQUENCE)?;
    let (_, kind, curve) = element(algorithm).filter(|e| e.0 == OID)?;
    let (_, curve, _) = element(curve).filter(|e| e.0 == OID)?;
    let (_, bits, _) = element(key).filter(|e| e.0 == BIT_STRING)?;
    if kind != EC_PUBLIC_KEY || curve != PRIME256V1 {
        return None;
    }
    let point = bits.strip_prefix(&[0u8])?.try_into().ok()?;
    Some((info_der, point))
}

/// The pin of a SubjectPublicKeyInfo: its SHA-256 (curl's `--pinnedpubkey sha256//` in
/// base64, which [`Pin`] prints).
pub fn pin(spki_der: &[u8]) -> [u8; 32] {
    Sha256::digest(spki_der).into()
}

/// The pin of the key a certificate (DER) carries; `None` for anything but a P-256 key.
pub fn certificate_pin(cert: &[u8]) -> Option<[u8; 32]> {
    public_key(cert).map(|(spki, _)| pin(spki))
}

/// A pin as it is written and read: `sha256//` and base64, curl's spelling.
pub struct Pin<'a>(pub &'a [u8; 32]);

impl core::fmt::Display for Pin<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "sha256//{}", boot::encoding::Base64(self.0))
    }
}

impl Pin<'_> {
    /// Reads `sha256//BASE64`.
    pub fn parse(text: &str) -> Option<[u8; 32]> {
        let mut out = [0u8; 33]; // base64 of 32 bytes decodes into at most 33 with padding
        let len =
            boot::encoding::base64_decode(text.strip_prefix("sha256//")?.as_bytes(), &mut out)?;
        out.get(..len)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_certificate_reads_back_and_garbage_never_panics() {
        let point = [4u8; PUBLIC_KEY_BYTES];
        let tbs = to_be_signed(&point, [0xff; 16], "device");
        let cert = certificate(&tbs, &[0x30, 0x06, 2, 1, 1, 2, 1, 1]);
        let (info, read) = public_key(&cert).unwrap();
        assert_eq!(read, &point);
        assert_eq!(info, spki(&point).as_slice());
        for cut in 0..cert.len() {
            assert!(public_key(&cert[..cut]).is_none());
        }
        for i in 0..cert.len() {
            let mut damaged = cert.clone();
            damaged[i] ^= 0xff;
            let _ = public_key(&damaged);
        }
    }

    #[test]
    fn pins_print_and_parse_as_curl_spells_them() {
        let pin = [0xabu8; 32];
        let text = Pin(&pin).to_string();
        assert!(text.starts_with("sha256//q6ur"), "{text}");
        assert_eq!(Pin::parse(&text), Some(pin));
        assert_eq!(Pin::parse("sha256//q6ur"), None);
        assert_eq!(Pin::parse(&text[1..]), None);
    }

    #[test]
    fn a_new_identity_serves_and_two_differ() {
        let one = new_identity("device").unwrap();
        let two = new_identity("device").unwrap();
        assert_ne!(one.pin, two.pin);
        assert!(crate::tls::server_config(one.cert_pem.as_bytes(), one.key_pem.as_bytes()).is_ok());
        let mixed = crate::tls::server_config(one.cert_pem.as_bytes(), two.key_pem.as_bytes());
        assert!(mixed.is_err_and(|e| e.contains("not the one the certificate names")));
    }

    #[test]
    fn the_key_file_reads_back() {
        let scalar = [7u8; 32];
        assert_eq!(
            crate::key::pkcs8_scalar(&pkcs8(&scalar, &[4; PUBLIC_KEY_BYTES])),
            Some(scalar)
        );
    }
}
