//! The slot trailer: the last sector of each root partition says what the whole slot holds,
//! root image, kernel and command line (`crate::slot`), each by length and SHA-256, and
//! the slot's *build id*, one SHA-256 over the three. `imgtool mkimg` writes it for both
//! slots; admind zeroes it before writing any part of a slot and writes it again only once
//! the new root has been read back and verified, hashing the slot's kernel and command line
//! as they are on the disk then. So "slot complete" is one check: a valid trailer.
//!
//! ```text
//! offset size  field
//! 0      8     magic "RKSLOT02"
//! 8      8     root image length in bytes, little-endian
//! 16     32    SHA-256 of the root image
//! 48     8     kernel length (as its header gives it)
//! 56     32    SHA-256 of the kernel
//! 88     8     command line length (bytes before the NUL)
//! 96     32    SHA-256 of the command line
//! 128    32    build id: SHA-256 of the three hashes above, in that order
//! 160    128   the slot's seal (`crate::seal`), or zero: not sealed
//! 288    224   zero
//! ```
//!
//! admind writes the trailer unsealed when a root's upload is verified, and seals it when
//! it arms the slot; imgtool mkimg writes both slots sealed.
//!
//! `no_std` without a hash function of its own: callers pass theirs to [`build_id`].

use crate::layout::{Partition, SECTOR_BYTES};

const MAGIC: [u8; 8] = *b"RKSLOT02";
/// Where the seal lies in the trailer sector.
pub const SEAL_OFFSET: usize = 160;
const SEAL_END: usize = SEAL_OFFSET + crate::seal::SEAL_BYTES;

/// Length and SHA-256 of one part of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// What a complete slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId {
    pub root: Part,
    pub kernel: Part,
    pub cmdline: Part,
    pub build: [u8; 32],
}

/// The build id of a slot: `sha256` (the caller's) over the three parts' hashes.
pub fn build_id(
    root: &Part,
    kernel: &Part,
    cmdline: &Part,
    sha256: impl Fn(&[&[u8]]) -> [u8; 32],
) -> [u8; 32] {
    sha256(&[&root.sha256, &kernel.sha256, &cmdline.sha256])
}

/// Byte offset of the trailer from the start of a root slot.
pub const fn offset_in(slot: &Partition) -> Option<u64> {
    match slot.size_bytes {
        Some(size) => Some(size - SECTOR_BYTES),
        None => None,
    }
}

/// Largest root image a slot holds (everything before the trailer).
pub const fn image_bytes_max(slot: &Partition) -> Option<u64> {
    offset_in(slot)
}

/// The trailer sector for `id`, sealed with `seal` if given.
pub fn encode(id: &SlotId, seal: Option<&crate::seal::Seal>) -> [u8; 512] {
    let mut s = [0u8; 512];
    if let Some(seal) = seal {
        s[SEAL_OFFSET..SEAL_END].copy_from_slice(&seal.encode());
    }
    s[..8].copy_from_slice(&MAGIC);
    for (at, part) in [(8, &id.root), (48, &id.kernel), (88, &id.cmdline)] {
        s[at..at + 8].copy_from_slice(&part.bytes.to_le_bytes());
        s[at + 8..at + 40].copy_from_slice(&part.sha256);
    }
    s[128..160].copy_from_slice(&id.build);
    s
}

/// The slot's contents, or `None` for a slot without a valid trailer (incomplete, or never
/// written).
pub fn decode(sector: &[u8; 512]) -> Option<SlotId> {
    if sector[..8] != MAGIC || sector[SEAL_END..].iter().any(|&b| b != 0) {
        return None;
    }
    let part = |at: usize| -> Option<Part> {
        Some(Part {
            bytes: u64::from_le_bytes(sector[at..at + 8].try_into().ok()?),
            sha256: sector[at + 8..at + 40].try_into().ok()?,
        })
    };
    Some(SlotId {
        root: part(8)?,
        kernel: part(48)?,
        cmdline: part(88)?,
        build: sector[128..160].try_into().ok()?,
    })
}

/// The trailer's seal; `None`: the slot is not sealed.
pub fn seal(sector: &[u8; 512]) -> Option<crate::seal::Seal> {
    let mut bytes = [0u8; crate::seal::SEAL_BYTES];
    bytes.copy_from_slice(&sector[SEAL_OFFSET..SEAL_END]);
    crate::seal::Seal::decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let part = |n: u8| Part {
            bytes: u64::from(n) * 1000,
            sha256: [n; 32],
        };
        let (root, kernel, cmdline) = (part(1), part(2), part(3));
        let fake_sha = |parts: &[&[u8]]| {
            let mut out = [0u8; 32];
            for (i, p) in parts.iter().enumerate() {
                out[i] = p[0];
            }
            out
        };
        let id = SlotId {
            root,
            kernel,
            cmdline,
            build: build_id(&root, &kernel, &cmdline, fake_sha),
        };
        assert_eq!(
            &id.build[..4],
            &[1, 2, 3, 0],
            "hashes in order root, kernel, cmdline"
        );
        let s = encode(&id, None);
        assert_eq!(decode(&s), Some(id));
        assert_eq!(seal(&s), None);
        assert_eq!(decode(&[0; 512]), None);
        let mut bad = s;
        bad[300] = 1;
        assert_eq!(decode(&bad), None);
        let sealed = crate::seal::Seal {
            version: 3,
            arch: crate::seal::Arch::X86_64,
            flags: 0,
            replaces_up_to: 0,
            signer: [1; 32],
            signature: [2; 64],
        };
        let s = encode(&id, Some(&sealed));
        assert_eq!((decode(&s), seal(&s)), (Some(id), Some(sealed)));
        let mut old = s;
        old[..8].copy_from_slice(b"RKROOT01");
        assert_eq!(
            decode(&old),
            None,
            "the first layout's trailer is not a complete slot"
        );
        assert_eq!(
            offset_in(&crate::layout::ROOT_B),
            Some(256 * (1 << 20) - 512)
        );
        assert_eq!(offset_in(&crate::layout::DATA), None);
    }
}
