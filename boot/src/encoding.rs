//! The text encodings the contract and its users write numbers and bytes in: hex (hashes),
//! standard base64 (HTTP Basic credentials, key pins, PEM) and decimal without core's
//! width machinery. One implementation each, `no_std`, no allocation: encoders are
//! `Display` wrappers (`Hex(&b).to_string()` where there is an allocator), decoders write
//! into fixed buffers.

use core::fmt;

/// Bytes as lowercase hex.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &b in self.0 {
            let pair = [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]];
            f.write_str(core::str::from_utf8(&pair).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// Exactly `2 * N` hex digits (either case, surrounding white space allowed) to `N` bytes.
pub fn hex_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let s = text.trim().as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

const BASE64_DIGITS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes as standard base64 with padding.
pub struct Base64<'a>(pub &'a [u8]);

impl fmt::Display for Base64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            let mut quad = [b'='; 4];
            for (i, c) in quad.iter_mut().enumerate().take(chunk.len() + 1) {
                *c = BASE64_DIGITS[(n >> (18 - 6 * i) & 63) as usize];
            }
            f.write_str(core::str::from_utf8(&quad).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// The bytes `text` decodes to, at most `out.len()` of them, where `text` is standard
/// base64 whose length is a multiple of 4, padded with at most two `=` at its end.
/// Returns how many bytes were written; `None` for anything else (or if `out` is short).
pub fn base64_decode(text: &[u8], out: &mut [u8]) -> Option<usize> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let quads = text.len() / 4;
    let mut n = 0;
    for (q, quad) in text.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &quad[..4 - pad] {
            acc = acc << 6 | BASE64_DIGITS.iter().position(|&d| d == c)? as u32;
        }
        acc <<= 6 * pad as u32;
        for i in 0..3 - pad {
            *out.get_mut(n)? = (acc >> (16 - 8 * i)) as u8;
            n += 1;
        }
    }
    Some(n)
}

/// The decimal digits of `n`, written at the end of `buf`.
pub fn decimal_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// A number in decimal without core's width and fill machinery, which costs the device
/// binaries kilobytes.
pub struct Decimal(pub u64);

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 20];
        f.write_str(core::str::from_utf8(decimal_digits(self.0, &mut buf)).unwrap_or("?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_decodes_exact_lengths_only() {
        assert_eq!(Hex(&[0x00, 0xab, 0x7f]).to_string(), "00ab7f");
        assert_eq!(hex_decode::<2>("aBcd"), Some([0xab, 0xcd]));
        assert_eq!(hex_decode::<2>(" abcd\n"), Some([0xab, 0xcd]));
        assert_eq!(
            hex_decode::<32>(&Hex(&[0xab; 32]).to_string()),
            Some([0xab; 32])
        );
        for bad in ["abc", "abcdef", "zzzz", "+1ab"] {
            assert_eq!(hex_decode::<2>(bad), None, "{bad}");
        }
    }

    fn decoded(text: &str) -> Option<Vec<u8>> {
        let mut out = [0u8; 64];
        base64_decode(text.as_bytes(), &mut out).map(|n| out[..n].to_vec())
    }

    #[test]
    fn base64_round_trips_and_refuses_what_is_not_base64() {
        assert_eq!(Base64(b"foobar").to_string(), "Zm9vYmFy");
        assert_eq!(Base64(b"fo").to_string(), "Zm8=");
        assert_eq!(Base64(b"f").to_string(), "Zg==");
        assert_eq!(decoded("cnVzdGtyYXp5OnB3").unwrap(), b"rustkrazy:pw");
        assert_eq!(decoded("YQ==").unwrap(), b"a");
        assert_eq!(decoded("YWI=").unwrap(), b"ab");
        let all: Vec<u8> = (0..=47).map(|b| b * 5).collect();
        assert_eq!(decoded(&Base64(&all).to_string()).unwrap(), all);
        for bad in ["YQ=", "Y===", "YQ==YQ==", "Y!==", "abc", "===="] {
            assert_eq!(decoded(bad), None, "{bad}");
        }
        // Longer than the buffer: refused, not cut.
        assert_eq!(base64_decode(b"Zm9vYmFy", &mut [0u8; 5]), None);
    }

    #[test]
    fn decimal_covers_the_whole_range() {
        assert_eq!(Decimal(0).to_string(), "0");
        assert_eq!(Decimal(u64::MAX).to_string(), "18446744073709551615");
    }
}
