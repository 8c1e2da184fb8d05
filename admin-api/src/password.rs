//! The instance's password as both ends handle it: imgtool derives what the root's password
//! file holds (`boot::password` owns the line), admind checks logins against it.
//! PBKDF2-HMAC-SHA256 (RFC 8018) with [`ITERATIONS`], so that each guess at a password made
//! by hand costs whoever copied an image that much work; the passwords imgtool generates
//! (24 random alphanumerics, about 143 bits) are out of reach either way.
//!
//! A login pays the derivation once: admind then remembers a plain salted SHA-256 of the
//! password that got in and checks later requests against that (every request carries the
//! password, HTTP Basic). Wrong passwords always pay it, and are throttled per source.

use boot::password::Stored;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// One derivation: 20 ms on an x86_64 core of the CI machine, 270 ms under qemu-aarch64.
pub const ITERATIONS: u32 = 100_000;

/// PBKDF2-HMAC-SHA256 of `password` and `salt`: the first 32-byte block.
pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(keyed) = Hmac::<Sha256>::new_from_slice(password) else {
        return [0; 32];
    };
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(u).for_each(|(o, b)| *o ^= b);
    }
    out
}

/// What the password file holds for `password` with `salt`.
pub fn stored(password: &[u8], salt: [u8; 16]) -> Stored {
    Stored {
        iterations: ITERATIONS,
        salt,
        hash: derive(password, &salt, ITERATIONS),
    }
}

/// Equal, comparing every byte whatever the outcome.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// admind's check of the passwords logins present.
pub struct Checker {
    stored: Stored,
    /// A salted SHA-256 of the password that last got in.
    remembered: Option<[u8; 32]>,
}

impl Checker {
    pub fn new(stored: Stored) -> Checker {
        Checker {
            stored,
            remembered: None,
        }
    }

    fn quick(&self, password: &[u8]) -> [u8; 32] {
        Sha256::new()
            .chain_update(b"rustkrazy password that got in\n")
            .chain_update(self.stored.salt)
            .chain_update(password)
            .finalize()
            .into()
    }

    /// `password` is the one that last got in (a SHA-256, no derivation).
    pub fn remembers(&self, password: &[u8]) -> bool {
        self.remembered
            .is_some_and(|r| same(&r, &self.quick(password)))
    }

    pub fn matches(&mut self, password: &[u8]) -> bool {
        if self.remembers(password) {
            return true;
        }
        let derived = derive(password, &self.stored.salt, self.stored.iterations);
        let ok = same(&derived, &self.stored.hash);
        if ok {
            self.remembered = Some(self.quick(password));
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7914 section 11's PBKDF2-HMAC-SHA256 vectors (their first 32 bytes).
    #[test]
    fn derives_the_rfc_vectors() {
        let hex = |b: &[u8; 32]| boot::encoding::Hex(b).to_string();
        assert_eq!(
            hex(&derive(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex(&derive(b"Password", b"NaCl", 80_000)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
    }

    #[test]
    fn checks_and_remembers_only_the_right_password() {
        let stored = Stored {
            iterations: 1000,
            salt: [7; 16],
            hash: derive(b"secret", &[7; 16], 1000),
        };
        let mut checker = Checker::new(stored);
        assert!(!checker.matches(b"secreT"));
        assert!(checker.remembered.is_none());
        assert!(checker.matches(b"secret"));
        assert!(checker.remembered.is_some());
        assert!(checker.matches(b"secret"));
        assert!(!checker.matches(b"secret "));
        assert!(!checker.matches(b""));
        let started = std::time::Instant::now();
        let _ = derive(b"x", &[0; 16], ITERATIONS);
        println!("figure: one login's derivation: {:?}", started.elapsed());
    }
}
