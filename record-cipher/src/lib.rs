//! TLS 1.3's record ciphers behind plain (non-generic) functions.
//!
//! Why a crate of its own: RustCrypto's AEADs are generic, and generic code is compiled in
//! the crate that names its types. Named in admin-api, they were compiled at the size
//! setting every device crate gets, whatever opt-level their own crates had; named here,
//! they are compiled with this crate's `opt-level = 3` (the workspace Cargo.toml). That
//! took admind's root uploads from 0.88 s to 0.55 s per 100 MB with AES-128-GCM
//! (`ci/bench-admind`).
#![no_std]

use aes_gcm::aead::AeadInPlace;
use aes_gcm::KeyInit;

/// Bytes of an authentication tag (both ciphers).
pub const TAG_BYTES: usize = 16;

/// The two AEADs of our TLS 1.3 cipher suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    ChaCha20Poly1305,
    Aes128Gcm,
}

impl Algorithm {
    pub const fn key_bytes(self) -> usize {
        match self {
            Algorithm::ChaCha20Poly1305 => 32,
            Algorithm::Aes128Gcm => 16,
        }
    }
}

/// A keyed AEAD. One per direction per connection, inside rustls' boxed encrypter and
/// decrypter: the AES key schedule's size is not worth another box.
#[allow(clippy::large_enum_variant)]
pub enum Cipher {
    ChaCha(chacha20poly1305::ChaCha20Poly1305),
    Aes(aes_gcm::Aes128Gcm),
}

/// What went wrong, and all a caller may learn of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Failed;

impl Cipher {
    /// `None` unless `key` is `algorithm.key_bytes()` long.
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Option<Cipher> {
        Some(match algorithm {
            Algorithm::ChaCha20Poly1305 => {
                Cipher::ChaCha(chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).ok()?)
            }
            Algorithm::Aes128Gcm => Cipher::Aes(aes_gcm::Aes128Gcm::new_from_slice(key).ok()?),
        })
    }

    /// Encrypts `text` in place; the tag to send after it.
    pub fn seal(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        text: &mut [u8],
    ) -> Result<[u8; TAG_BYTES], Failed> {
        let tag = match self {
            Cipher::ChaCha(c) => c.encrypt_in_place_detached(nonce.into(), aad, text),
            Cipher::Aes(c) => c.encrypt_in_place_detached(nonce.into(), aad, text),
        };
        tag.map(Into::into).map_err(|_| Failed)
    }

    /// Decrypts `text` in place if `tag` authenticates it with `aad`; on failure `text`
    /// holds nothing usable and must be dropped.
    pub fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        text: &mut [u8],
        tag: &[u8; TAG_BYTES],
    ) -> Result<(), Failed> {
        let tag = aes_gcm::Tag::from(*tag);
        match self {
            Cipher::ChaCha(c) => c.decrypt_in_place_detached(nonce.into(), aad, text, &tag),
            Cipher::Aes(c) => c.decrypt_in_place_detached(nonce.into(), aad, text, &tag),
        }
        .map_err(|_| Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16).unwrap() as u8;
            out[i] = digit(pair[0]) << 4 | digit(pair[1]);
        }
        out
    }

    /// Seals `plain`, checks the known ciphertext start and tag, opens it again, and
    /// checks that a flipped bit in text, tag or associated data is refused.
    fn known_answer(
        alg: Algorithm,
        key: &[u8],
        nonce: &str,
        aad: &[u8],
        plain: &[u8],
        start: &str,
        tag: &str,
    ) {
        let cipher = Cipher::new(alg, key).unwrap();
        let nonce: [u8; 12] = unhex(nonce)[..12].try_into().unwrap();
        let mut text = [0u8; 128];
        let text = &mut text[..plain.len()];
        text.copy_from_slice(plain);
        let sealed = cipher.seal(&nonce, aad, text).unwrap();
        assert_eq!(text[..16], unhex(start)[..16]);
        assert_eq!(sealed[..], unhex(tag)[..16]);
        let mut bad = [0u8; 128];
        let bad = &mut bad[..plain.len()];
        bad.copy_from_slice(text);
        bad[3] ^= 1;
        assert_eq!(cipher.open(&nonce, aad, bad, &sealed), Err(Failed));
        let mut bad_tag = sealed;
        bad_tag[15] ^= 0x80;
        let mut copy = [0u8; 128];
        copy[..plain.len()].copy_from_slice(text);
        assert_eq!(
            cipher.open(&nonce, aad, &mut copy[..plain.len()], &bad_tag),
            Err(Failed)
        );
        assert_eq!(
            cipher.open(&nonce, b"other", &mut copy[..plain.len()], &sealed),
            Err(Failed)
        );
        cipher.open(&nonce, aad, text, &sealed).unwrap();
        assert_eq!(text, plain);
    }

    #[test]
    fn chacha20_poly1305_gives_rfc_8439s_answer() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        known_answer(
            Algorithm::ChaCha20Poly1305,
            &key,
            "070000004041424344454647",
            &unhex("50515253c0c1c2c3c4c5c6c7")[..12],
            b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
            "d31a8d34648e60db7b86afbc53ef7ec2",
            "1ae10b594f09e26a7e902ecbd0600691",
        );
    }

    #[test]
    fn aes_128_gcm_gives_the_gcm_specifications_answer() {
        // Test case 4 of McGrew and Viega's GCM specification.
        known_answer(
            Algorithm::Aes128Gcm,
            &unhex("feffe9928665731c6d6a8f9467308308")[..16],
            "cafebabefacedbaddecaf888",
            &unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")[..20],
            &unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")[..60],
            "42831ec2217774244b7221b784d0d49c",
            "5bc94fbc3221a5db94fae95ae7121a47",
        );
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        assert!(Cipher::new(Algorithm::ChaCha20Poly1305, &[0; 16]).is_none());
        assert!(Cipher::new(Algorithm::Aes128Gcm, &[0; 32]).is_none());
        assert_eq!(Algorithm::Aes128Gcm.key_bytes(), 16);
    }
}
