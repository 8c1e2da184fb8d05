//! The keys rustkrazy's UEFI boot program trusts, held inside the program itself: a key
//! file beside it on the FAT would be replaced together with the slots it guards. The
//! program is built once for every instance with an empty table; imgtool writes the
//! instance's trusted keys into the built binary, and admind rewrites them when a root
//! with other keys in its trust file (`crate::seal::TRUST_PATH`) commits, so that the
//! program follows a key rotation without a boot update.
//!
//! Two copies, each in its own 512-byte sector of the program's file (the program aligns
//! them), 4 KiB apart, so that they never share a 4 KiB block of the disk (a disk or flash
//! card that rewrites a whole block for one sector could tear both at once), and admind
//! changes one with one sector write; like the boot record (`crate::record`), a writer
//! writes over the older copy, so a torn write leaves the other. Each copy:
//!
//! ```text
//! offset size  field
//! 0      16    magic "rustkrazy keys02" (writers find the copies by it; the program
//!              never reads it, so no copy of it lands in the program's code)
//! 16     4     sequence number, little-endian: the valid copy with the higher one holds
//! 20     1     number of keys (0..=4); 0: the program boots slots unchecked
//! 21     3     zero
//! 24     4×65  the keys, P-256 public keys SEC1 uncompressed (`crate::seal`), unused ones zero
//! 284    224   zero
//! 508    4     CRC-32 (zlib) of bytes 0..508
//! ```

use crate::record::crc32;
use crate::seal::PUBLIC_KEY_BYTES;

const MAGIC: [u8; 16] = *b"rustkrazy keys02";
pub const KEYS_MAX: usize = 4;
const KEYS_AT: usize = 24;
const CRC_AT: usize = 508;
pub const COPY_BYTES: usize = 512;
/// From the start of copy 1 to the start of copy 2.
pub const COPY_DISTANCE: usize = 4096;
/// Both copies and the zeros between them.
pub const TABLE_BYTES: usize = COPY_DISTANCE + COPY_BYTES;

/// The keys one copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keys {
    count: usize,
    keys: [[u8; PUBLIC_KEY_BYTES]; KEYS_MAX],
}

impl Keys {
    /// `None` for more than [`KEYS_MAX`].
    pub fn new(keys: &[[u8; PUBLIC_KEY_BYTES]]) -> Option<Keys> {
        let mut out = Keys {
            count: keys.len(),
            keys: [[0; PUBLIC_KEY_BYTES]; KEYS_MAX],
        };
        out.keys.get_mut(..keys.len())?.copy_from_slice(keys);
        Some(out)
    }

    pub fn as_slice(&self) -> &[[u8; PUBLIC_KEY_BYTES]] {
        &self.keys[..self.count]
    }
}

/// One copy holding `keys` at sequence `seq`.
pub const fn encode_copy(seq: u32, keys: &Keys) -> [u8; COPY_BYTES] {
    let mut s = [0u8; COPY_BYTES];
    let mut i = 0;
    while i < MAGIC.len() {
        s[i] = MAGIC[i];
        i += 1;
    }
    let seq = seq.to_le_bytes();
    let mut i = 0;
    while i < 4 {
        s[16 + i] = seq[i];
        i += 1;
    }
    s[20] = keys.count as u8;
    let mut k = 0;
    while k < keys.count {
        let mut i = 0;
        while i < PUBLIC_KEY_BYTES {
            s[KEYS_AT + k * PUBLIC_KEY_BYTES + i] = keys.keys[k][i];
            i += 1;
        }
        k += 1;
    }
    let (signed, _) = s.split_at(CRC_AT);
    let crc = crc32(signed).to_le_bytes();
    let mut i = 0;
    while i < 4 {
        s[CRC_AT + i] = crc[i];
        i += 1;
    }
    s
}

/// A table whose copies both hold `keys`, at sequence 0.
pub const fn table(keys: &Keys) -> [u8; TABLE_BYTES] {
    let copy = encode_copy(0, keys);
    let mut t = [0u8; TABLE_BYTES];
    let mut i = 0;
    while i < COPY_BYTES {
        t[i] = copy[i];
        t[COPY_DISTANCE + i] = copy[i];
        i += 1;
    }
    t
}

/// The table the program is built with: no keys.
pub const EMPTY: [u8; TABLE_BYTES] = table(&Keys {
    count: 0,
    keys: [[0; PUBLIC_KEY_BYTES]; KEYS_MAX],
});

/// The table's two copies.
pub fn copies(table: &[u8; TABLE_BYTES]) -> [&[u8; COPY_BYTES]; 2] {
    let (first, rest) = table.split_at(COPY_BYTES);
    let second = &rest[COPY_DISTANCE - COPY_BYTES..];
    [first, second].map(|c| <&[u8; COPY_BYTES]>::try_from(c).unwrap_or(&[0; COPY_BYTES]))
}

/// A copy's sequence number and keys; `None` if damaged (the magic is not checked: the
/// program that reads its own copies never compares it).
pub fn decode_copy(copy: &[u8; COPY_BYTES]) -> Option<(u32, Keys)> {
    let stored = u32::from_le_bytes(copy[CRC_AT..].try_into().ok()?);
    if crc32(&copy[..CRC_AT]) != stored || copy[20] as usize > KEYS_MAX {
        return None;
    }
    let mut keys = [[0; PUBLIC_KEY_BYTES]; KEYS_MAX];
    for (key, bytes) in keys
        .iter_mut()
        .zip(copy[KEYS_AT..].chunks_exact(PUBLIC_KEY_BYTES))
    {
        key.copy_from_slice(bytes);
    }
    let seq = u32::from_le_bytes(copy[16..20].try_into().ok()?);
    Some((
        seq,
        Keys {
            count: usize::from(copy[20]),
            keys,
        },
    ))
}

/// The keys of the newest valid copy, and which copy that is; `None`: both damaged.
pub fn newest(copies: [&[u8; COPY_BYTES]; 2]) -> Option<(usize, Keys)> {
    let decoded = copies.map(decode_copy);
    match decoded {
        // Wrapping, as the writer counts.
        [Some((a, ka)), Some((b, kb))] => Some(if (b.wrapping_sub(a) as i32) > 0 {
            (1, kb)
        } else {
            (0, ka)
        }),
        [Some((_, k)), None] => Some((0, k)),
        [None, Some((_, k))] => Some((1, k)),
        [None, None] => None,
    }
}

/// What makes the table hold `keys`: the copy to write (the older or a damaged one) and
/// its bytes; `None` when the newest valid copy already holds them.
pub fn next_write(
    copies: [&[u8; COPY_BYTES]; 2],
    keys: &Keys,
) -> Option<(usize, [u8; COPY_BYTES])> {
    let seqs = copies.map(|c| decode_copy(c).map(|(seq, _)| seq));
    match newest(copies) {
        Some((_, held)) if held == *keys => None,
        Some((at, _)) => {
            let seq = seqs[at].unwrap_or(0).wrapping_add(1);
            Some((1 - at, encode_copy(seq, keys)))
        }
        None => Some((0, encode_copy(1, keys))),
    }
}

/// Whether a sector of the program's file is one of the copies (by its magic).
pub fn is_copy(sector: &[u8; COPY_BYTES]) -> bool {
    sector[..MAGIC.len()] == MAGIC
}

/// Where the table starts in a built program: `None` unless the magic is there exactly
/// twice, [`COPY_DISTANCE`] apart, at a sector boundary of the file, with room for both.
pub fn find(program: &[u8]) -> Option<usize> {
    let mut at = program
        .windows(MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == MAGIC);
    let (first, _) = at.next()?;
    let (second, _) = at.next()?;
    let whole = first % COPY_BYTES == 0
        && second == first + COPY_DISTANCE
        && first + TABLE_BYTES <= program.len();
    (at.next().is_none() && whole).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_table_is_valid_and_holds_nothing() {
        let (at, keys) = newest(copies(&EMPTY)).unwrap();
        assert_eq!((at, keys.as_slice().len()), (0, 0));
        assert!(is_copy(copies(&EMPTY)[1]));
        assert!(Keys::new(&[[4u8; 65]; 5]).is_none());
    }

    #[test]
    fn writes_go_over_the_older_copy_and_a_torn_one_is_outvoted() {
        let two = Keys::new(&[[4u8; 65], [5u8; 65]]).unwrap();
        let mut t = EMPTY;
        let (at, copy) = next_write(copies(&t), &two).unwrap();
        assert_eq!(at, 1);
        t[COPY_DISTANCE..].copy_from_slice(&copy);
        assert_eq!(newest(copies(&t)), Some((1, two)));
        assert_eq!(next_write(copies(&t), &two), None, "already held");
        let one = Keys::new(&[[5u8; 65]]).unwrap();
        let (at, copy) = next_write(copies(&t), &one).unwrap();
        assert_eq!(at, 0);
        // Torn: half of the new copy over the old one; the other copy still holds.
        t[..256].copy_from_slice(&copy[..256]);
        assert_eq!(newest(copies(&t)), Some((1, two)));
        t[..COPY_BYTES].copy_from_slice(&copy);
        assert_eq!(newest(copies(&t)), Some((0, one)));
        let mut both = t;
        both[100] ^= 1;
        both[COPY_DISTANCE + 100] ^= 1;
        assert_eq!(newest(copies(&both)), None);
        assert_eq!(next_write(copies(&both), &one).map(|(at, _)| at), Some(0));
        // Sequence numbers wrap: 0 is newer than u32::MAX.
        let mut wrapped = table(&one);
        wrapped[COPY_DISTANCE..].copy_from_slice(&encode_copy(u32::MAX, &two));
        assert_eq!(newest(copies(&wrapped)), Some((0, one)));
    }

    #[test]
    fn found_twice_4_kib_apart_at_a_sector_boundary() {
        let mut program = std::vec![0u8; 1024];
        program.extend_from_slice(&EMPTY);
        program.extend_from_slice(&[0; 10]);
        assert_eq!(find(&program), Some(1024));
        assert_eq!(find(&program[..1024 + TABLE_BYTES - 1]), None, "cut short");
        assert_eq!(find(&program[1..]), None, "not at a sector boundary");
        program.extend_from_slice(&MAGIC);
        assert_eq!(find(&program), None, "three times");
    }
}
