//! The root trailer: the last sector of each root slot says which root image the slot holds
//! (its length and SHA-256, the root's build id). `imgtool mkimg` writes it for both slots;
//! admind zeroes it before writing a slot and writes it again only once the new image has
//! been read back and verified, so a valid trailer means a complete, checked root.
//!
//! ```text
//! offset size  field
//! 0      8     magic "RKROOT01"
//! 8      8     image length in bytes, little-endian
//! 16     32    SHA-256 of those bytes
//! 48     464   zero
//! ```

use crate::layout::{Partition, SECTOR_BYTES};

const MAGIC: [u8; 8] = *b"RKROOT01";

/// Byte offset of the trailer from the start of a root slot.
pub fn offset_in(slot: &Partition) -> Option<u64> {
    Some(slot.size_bytes? - SECTOR_BYTES)
}

/// Largest root image a slot holds (everything before the trailer).
pub fn image_bytes_max(slot: &Partition) -> Option<u64> {
    offset_in(slot)
}

pub fn encode(length: u64, sha256: &[u8; 32]) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[..8].copy_from_slice(&MAGIC);
    s[8..16].copy_from_slice(&length.to_le_bytes());
    s[16..48].copy_from_slice(sha256);
    s
}

/// `(length, sha256)`, or `None` for a slot without a valid trailer.
pub fn decode(sector: &[u8; 512]) -> Option<(u64, [u8; 32])> {
    if sector[..8] != MAGIC || sector[48..].iter().any(|&b| b != 0) {
        return None;
    }
    let length = u64::from_le_bytes(sector[8..16].try_into().ok()?);
    Some((length, sector[16..48].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let s = encode(4096, &[7; 32]);
        assert_eq!(decode(&s), Some((4096, [7; 32])));
        assert_eq!(decode(&[0; 512]), None);
        let mut bad = s;
        bad[100] = 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(
            offset_in(&crate::layout::ROOT_B),
            Some(256 * (1 << 20) - 512)
        );
        assert_eq!(offset_in(&crate::layout::DATA), None);
    }
}
