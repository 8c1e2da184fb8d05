//! Hex digits to bytes, for the hashes the contract stores as text.

/// Exactly `2 * N` hex digits (either case, surrounding white space allowed) to `N` bytes.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_exact_lengths_only() {
        assert_eq!(super::decode::<2>("aBcd"), Some([0xab, 0xcd]));
        assert_eq!(super::decode::<2>(" abcd\n"), Some([0xab, 0xcd]));
        assert_eq!(super::decode::<32>(&"ab".repeat(32)), Some([0xab; 32]));
        for bad in ["abc", "abcdef", "zzzz", "+1ab"] {
            assert_eq!(super::decode::<2>(bad), None, "{bad}");
        }
    }
}
