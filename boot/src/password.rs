//! admind's password file: a salted SHA-256 of the instance's password, written by
//! `imgtool mkimg`, checked by admind. One line:
//!
//! ```text
//! sha256 <salt, 32 hex digits> <SHA-256(salt || password), 64 hex digits>
//! ```
//!
//! The hash function is passed in, so this crate stays free of crypto dependencies.

/// Where the file lives in the root image.
pub const PATH: &str = "/etc/admind/password.hash";

/// Length of the file's line, newline included.
pub const LINE_BYTES: usize = 7 + 32 + 1 + 64 + 1;

/// `sha256` hashes the concatenation of the slices it is given.
pub type Sha256Fn<'a> = &'a dyn Fn(&[&[u8]]) -> [u8; 32];

fn hex_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_mut(2).zip(bytes) {
        pair[0] = b"0123456789abcdef"[(b >> 4) as usize];
        pair[1] = b"0123456789abcdef"[(b & 15) as usize];
    }
}

/// The file's line for `password` with `salt`.
pub fn line(salt: &[u8; 16], password: &[u8], sha256: Sha256Fn<'_>) -> [u8; LINE_BYTES] {
    let mut out = [b' '; LINE_BYTES];
    out[..6].copy_from_slice(b"sha256");
    hex_into(&mut out[7..39], salt);
    hex_into(&mut out[40..104], &sha256(&[salt, password]));
    out[104] = b'\n';
    out
}

/// `(salt, hash)` from the file's text.
pub fn parse(text: &str) -> Option<([u8; 16], [u8; 32])> {
    let mut words = text.split_whitespace();
    if words.next()? != "sha256" {
        return None;
    }
    let salt = crate::encoding::hex_decode::<16>(words.next()?)?;
    let hash = crate::encoding::hex_decode::<32>(words.next()?)?;
    words.next().is_none().then_some((salt, hash))
}

/// Whether `password` matches, comparing every byte whatever the outcome (constant time
/// with respect to the stored hash).
pub fn matches(salt: &[u8; 16], hash: &[u8; 32], password: &[u8], sha256: Sha256Fn<'_>) -> bool {
    let got = sha256(&[salt, password]);
    got.iter().zip(hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not SHA-256, but enough to test the plumbing.
    fn fake(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = [0u8; 32];
        for (i, b) in parts.concat().iter().enumerate() {
            h[i % 32] = h[i % 32].wrapping_mul(31).wrapping_add(*b);
        }
        h
    }

    #[test]
    fn round_trip() {
        let l = line(&[0xab; 16], b"secret", &fake);
        let l = core::str::from_utf8(&l).unwrap();
        assert!(l.starts_with("sha256 abababababababababababababababab "));
        let (salt, hash) = parse(&l).unwrap();
        assert!(matches(&salt, &hash, b"secret", &fake));
        assert!(!matches(&salt, &hash, b"secreT", &fake));
        assert!(parse("md5 00 00").is_none());
        assert!(parse(&l.replace(' ', "  ")).is_some());
        assert_eq!(l.len(), LINE_BYTES);
        assert!(parse(&l[..l.len() - 3]).is_none());
    }
}
