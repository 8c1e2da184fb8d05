//! admind's password file: the instance's password as PBKDF2-HMAC-SHA256 (RFC 8018) derived
//! it, written into every root by imgtool, read by admind. One line:
//!
//! ```text
//! pbkdf2-sha256 <iterations, decimal> <salt, 32 hex digits> <derived key, 64 hex digits>
//! ```
//!
//! This module owns the line; the derivation is `admin_api::password`'s (this crate has no
//! crypto).

use crate::encoding::Hex;
use core::fmt;

/// Where the file lives in the root image.
pub const PATH: &str = "/etc/admind/password.hash";

/// Most iterations a file may ask for: a bound on the work one login costs, whatever the
/// file says.
pub const ITERATIONS_MAX: u32 = 10_000_000;

const SCHEME: &str = "pbkdf2-sha256";

/// What the device keeps instead of the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub iterations: u32,
    pub salt: [u8; 16],
    /// The derived key, 32 bytes.
    pub hash: [u8; 32],
}

impl fmt::Display for Stored {
    /// The file's line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{SCHEME} {} {} {}",
            self.iterations,
            Hex(&self.salt),
            Hex(&self.hash)
        )
    }
}

/// The file's contents, or `None` when it is not one such line (an older `sha256` line
/// included: the same imgtool writes a root's admind and its password file).
pub fn parse(text: &str) -> Option<Stored> {
    let mut words = text.split_whitespace();
    if words.next()? != SCHEME {
        return None;
    }
    let iterations: u32 = words.next()?.parse().ok()?;
    let salt = crate::encoding::hex_decode::<16>(words.next()?)?;
    let hash = crate::encoding::hex_decode::<32>(words.next()?)?;
    let sane = (1..=ITERATIONS_MAX).contains(&iterations);
    (sane && words.next().is_none()).then_some(Stored {
        iterations,
        salt,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let stored = Stored {
            iterations: 120_000,
            salt: [0xab; 16],
            hash: [0x01; 32],
        };
        let line = stored.to_string();
        assert!(line.starts_with("pbkdf2-sha256 120000 abababababababababababababababab 0101"));
        assert!(line.ends_with("01\n"));
        assert_eq!(parse(&line), Some(stored));
        assert_eq!(parse(&line.replace(' ', "  ")), Some(stored));
        for bad in [
            "sha256 abababababababababababababababab 0101",
            "pbkdf2-sha256 0 abababababababababababababababab 00",
            &line.replace("120000", "99999999999"),
            &line.replace("120000", "10000001"),
            &line[..line.len() - 3],
            &(line.clone() + " extra"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
