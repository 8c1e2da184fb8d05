//! TLS for admind and its clients: rustls with a small crypto provider of our own, built
//! from RustCrypto primitives (the record ciphers through `record-cipher`, which compiles
//! them at full speed).
//!
//! Why our own provider: the published `rustls-rustcrypto` is a 0.0.x alpha that says not to
//! use it in production, and it brings RSA, P-384 and Ed25519 that a device with one P-256
//! certificate never needs. This file wires RustCrypto's primitive crates (chacha20poly1305,
//! aes-gcm, p256, sha2, hmac; p256 says of itself that it was never independently audited)
//! into rustls's traits and nothing more:
//!
//! - TLS 1.3 only: TLS13_CHACHA20_POLY1305_SHA256 (fast without AES instructions) and
//!   TLS13_AES_128_GCM_SHA256 (mandatory in RFC 8446).
//! - Key exchange: secp256r1 (every TLS 1.3 client offers it; X25519 would add 35 KB of
//!   curve code next to the P-256 code the certificate needs anyway).
//! - Signatures: ECDSA P-256 with SHA-256 (the device's key, `cert`).
//!
//! Clients pin the server's public key (`cert::pin`) instead of using a CA: `pinning`
//! builds client settings on [`provider`].

use rustls::crypto::cipher::{
    make_tls13_aad, AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, MessageDecrypter,
    MessageEncrypter, Nonce, OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload,
    Tls13AeadAlgorithm, UnsupportedOperationError,
};
use rustls::crypto::{
    hash, hmac, tls13::HkdfUsingHmac, ActiveKeyExchange, CipherSuiteCommon, CryptoProvider,
    GetRandomFailed, KeyProvider, SecureRandom, SharedSecret, SupportedKxGroup,
    WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{Signer, SigningKey};
use rustls::{
    CipherSuite, ConnectionTrafficSecrets, ContentType, Error, NamedGroup, ProtocolVersion,
    SignatureAlgorithm, SignatureScheme, SupportedCipherSuite, Tls13CipherSuite,
};
use sha2::Digest;
use std::sync::Arc;

/// The provider: everything rustls needs for TLS 1.3 with our choices.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            SupportedCipherSuite::Tls13(&TLS13_CHACHA20_POLY1305_SHA256),
            SupportedCipherSuite::Tls13(&TLS13_AES_128_GCM_SHA256),
        ],
        kx_groups: vec![&SECP256R1],
        signature_verification_algorithms: WebPkiSupportedAlgorithms {
            all: &[],
            mapping: &[],
        },
        secure_random: &Random,
        key_provider: &Keys,
    }
}

/// Server settings: TLS 1.3 only, the given certificate chain and P-256 key (PEM), which
/// must be the key the first certificate names.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate: {e:?}"))?;
    let first = certs
        .first()
        .ok_or("certificate: no CERTIFICATE block in the PEM file")?;
    let (_, point) = crate::cert::public_key(first.as_ref())
        .ok_or("certificate: it does not carry a P-256 key")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e:?}"))?;
    let secret = crate::key::secret(&key).ok_or("key: not a P-256 (ECDSA) key")?;
    // One scalar multiplication at start-up (0.5 ms) so that a mismatched pair is named
    // here, not by every client failing its handshake.
    if crate::key::public_point(&secret) != *point {
        return Err("the key is not the one the certificate names".into());
    }
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    // No session resumption: clients make a full handshake each time (imgtool checks the
    // pinned key on every connection), so tickets would be bytes nobody reads and a
    // cache of 256 sessions nobody asks for.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

// --- Randomness

#[derive(Debug)]
struct Random;

impl SecureRandom for Random {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::getrandom(buf).map_err(|_| GetRandomFailed)
    }
}

// --- Hash and HMAC: SHA-256

struct Sha256;

impl hash::Hash for Sha256 {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(Sha256Context(sha2::Sha256::new()))
    }

    fn hash(&self, data: &[u8]) -> hash::Output {
        hash::Output::new(&sha2::Sha256::digest(data))
    }

    fn output_len(&self) -> usize {
        32
    }

    fn algorithm(&self) -> rustls::crypto::hash::HashAlgorithm {
        rustls::crypto::hash::HashAlgorithm::SHA256
    }
}

struct Sha256Context(sha2::Sha256);

impl hash::Context for Sha256Context {
    fn fork_finish(&self) -> hash::Output {
        hash::Output::new(&self.0.clone().finalize())
    }

    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(Sha256Context(self.0.clone()))
    }

    fn finish(self: Box<Self>) -> hash::Output {
        hash::Output::new(&self.0.finalize())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

struct HmacSha256;

impl hmac::Hmac for HmacSha256 {
    fn with_key(&self, key: &[u8]) -> Box<dyn hmac::Key> {
        use ::hmac::Mac;
        // HMAC takes keys of any length.
        let mac = <::hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Box::new(HmacKey(mac))
    }

    fn hash_output_len(&self) -> usize {
        32
    }
}

struct HmacKey(::hmac::Hmac<sha2::Sha256>);

impl hmac::Key for HmacKey {
    fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> hmac::Tag {
        use ::hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(first);
        for m in middle {
            mac.update(m);
        }
        mac.update(last);
        hmac::Tag::new(&mac.finalize().into_bytes())
    }

    fn tag_len(&self) -> usize {
        32
    }
}

static HMAC_SHA256: HmacSha256 = HmacSha256;
static HKDF_SHA256: HkdfUsingHmac<'static> = HkdfUsingHmac(&HMAC_SHA256);

// --- Cipher suites

/// Records per key before rekeying (RFC 8446 5.5 for AES-GCM; ChaCha20 has no practical limit).
const AES_GCM_LIMIT: u64 = 1 << 24;

static TLS13_CHACHA20_POLY1305_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        hash_provider: &Sha256,
        confidentiality_limit: u64::MAX,
    },
    hkdf_provider: &HKDF_SHA256,
    aead_alg: &Aead(record_cipher::Algorithm::ChaCha20Poly1305),
    quic: None,
};

static TLS13_AES_128_GCM_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon {
        suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
        hash_provider: &Sha256,
        confidentiality_limit: AES_GCM_LIMIT,
    },
    hkdf_provider: &HKDF_SHA256,
    aead_alg: &Aead(record_cipher::Algorithm::Aes128Gcm),
    quic: None,
};

#[derive(Clone, Copy)]
struct Aead(record_cipher::Algorithm);

const TAG_BYTES: usize = record_cipher::TAG_BYTES;

/// A keyed AEAD: record_cipher's, with rustls' error type.
struct Cipher(record_cipher::Cipher);

impl Cipher {
    fn new(alg: Aead, key: &AeadKey) -> Cipher {
        // rustls hands over exactly `key_len()` bytes.
        Cipher(
            record_cipher::Cipher::new(alg.0, key.as_ref())
                .unwrap_or_else(|| unreachable!("rustls gives keys of key_len() bytes")),
        )
    }

    fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut PrefixedPayload) -> Result<(), Error> {
        let tag = self
            .0
            .seal(nonce, aad, buf.as_mut())
            .map_err(|_| Error::EncryptError)?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens `buf` (ciphertext + tag); returns the plaintext length.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        let len = buf
            .len()
            .checked_sub(TAG_BYTES)
            .ok_or(Error::DecryptError)?;
        let (text, tag) = buf.split_at_mut(len);
        let tag: &[u8; TAG_BYTES] = (&*tag).try_into().map_err(|_| Error::DecryptError)?;
        self.0
            .open(nonce, aad, text, tag)
            .map_err(|_| Error::DecryptError)?;
        Ok(len)
    }
}

impl Tls13AeadAlgorithm for Aead {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(Sealer {
            cipher: Cipher::new(*self, &key),
            iv,
        })
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(Opener {
            cipher: Cipher::new(*self, &key),
            iv,
        })
    }

    fn key_len(&self) -> usize {
        self.0.key_bytes()
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok(match self.0 {
            record_cipher::Algorithm::ChaCha20Poly1305 => {
                ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv }
            }
            record_cipher::Algorithm::Aes128Gcm => ConnectionTrafficSecrets::Aes128Gcm { key, iv },
        })
    }
}

struct Sealer {
    cipher: Cipher,
    iv: Iv,
}

impl MessageEncrypter for Sealer {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        let total = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total);
        payload.extend_from_chunks(&msg.payload);
        payload.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        self.cipher
            .seal(&nonce, &make_tls13_aad(total), &mut payload)?;
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            ProtocolVersion::TLSv1_2, // the legacy record version of every TLS 1.3 record
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_BYTES
    }
}

struct Opener {
    cipher: Cipher,
    iv: Iv,
}

impl MessageDecrypter for Opener {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let nonce = Nonce::new(&self.iv, seq).0;
        let aad = make_tls13_aad(msg.payload.len());
        let len = self.cipher.open(&nonce, &aad, msg.payload.as_mut())?;
        msg.payload.truncate(len);
        msg.into_tls13_unpadded_message()
    }
}

// --- Key exchange

#[derive(Debug)]
struct Secp256r1Group;
static SECP256R1: Secp256r1Group = Secp256r1Group;

impl SupportedKxGroup for Secp256r1Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = p256::ecdh::EphemeralSecret::random(&mut crate::key::RandCore);
        let public = p256::EncodedPoint::from(secret.public_key());
        Ok(Box::new(Secp256r1Exchange {
            secret,
            public: public.as_bytes().to_vec(),
        }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

struct Secp256r1Exchange {
    secret: p256::ecdh::EphemeralSecret,
    public: Vec<u8>,
}

impl ActiveKeyExchange for Secp256r1Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let peer = p256::PublicKey::from_sec1_bytes(peer)
            .map_err(|_| Error::from(rustls::PeerMisbehaved::InvalidKeyShare))?;
        let shared = self.secret.diffie_hellman(&peer);
        Ok(SharedSecret::from(&shared.raw_secret_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::secp256r1
    }
}

// --- Signing key: ECDSA P-256

#[derive(Debug)]
struct Keys;

impl KeyProvider for Keys {
    fn load_private_key(&self, der: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        crate::key::secret(&der)
            .map(|k| Arc::new(EcdsaKey(Arc::new(Secret(k)))) as Arc<dyn SigningKey>)
            .ok_or_else(|| Error::General("admind's key must be a P-256 (ECDSA) key".into()))
    }
}

/// A P-256 secret scalar; its Debug output names no digit of it.
struct Secret(p256::NonZeroScalar);

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("P-256 secret")
    }
}

/// The secret scalar alone: p256's `SigningKey` would derive the public key when made, a
/// scalar multiplication nothing here needs (rustls never asks for it) and two thirds of
/// admind's start-up CPU time (0.81 ms against 0.26 ms, `perf stat`).
#[derive(Debug)]
struct EcdsaKey(Arc<Secret>);

impl SigningKey for EcdsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(EcdsaSigner(Arc::clone(&self.0))) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct EcdsaSigner(Arc<Secret>);

impl Signer for EcdsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        crate::key::sign(&self.0 .0, message)
            .map(|sig| sig.to_der().as_bytes().to_vec())
            .ok_or_else(|| Error::General("signing failed".into()))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}
