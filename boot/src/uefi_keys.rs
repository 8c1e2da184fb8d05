//! The keys rustkrazy's UEFI boot program trusts, held inside the program itself: a key
//! file beside it on the FAT would be replaced together with the slots it guards. The
//! program is built once for every instance with an empty table; imgtool writes the
//! instance's trusted keys into the built binary, where the table's magic is.
//!
//! ```text
//! offset size  field
//! 0      16    magic "rustkrazy keys01" (imgtool finds the table by it; the program never
//!              reads it, so that no copy of it lands in the program's code)
//! 16     1     number of keys (0..=4); 0: the program boots slots unverified
//! 17     7     zero
//! 24     4×65  the keys, P-256 public keys SEC1 uncompressed (`crate::seal`), unused ones zero
//! ```

use crate::seal::PUBLIC_KEY_BYTES;

const MAGIC: [u8; 16] = *b"rustkrazy keys01";
pub const KEYS_MAX: usize = 4;
const KEYS_AT: usize = 24;
pub const TABLE_BYTES: usize = KEYS_AT + KEYS_MAX * PUBLIC_KEY_BYTES;

/// The table the program is built with: no keys.
pub const EMPTY: [u8; TABLE_BYTES] = {
    let mut t = [0u8; TABLE_BYTES];
    let mut i = 0;
    while i < MAGIC.len() {
        t[i] = MAGIC[i];
        i += 1;
    }
    t
};

/// A table holding `keys`; `None` for more than [`KEYS_MAX`].
pub fn encode(keys: &[[u8; PUBLIC_KEY_BYTES]]) -> Option<[u8; TABLE_BYTES]> {
    if keys.len() > KEYS_MAX {
        return None;
    }
    let mut t = EMPTY;
    t[16] = keys.len() as u8;
    for (key, place) in keys
        .iter()
        .zip(t[KEYS_AT..].chunks_exact_mut(PUBLIC_KEY_BYTES))
    {
        place.copy_from_slice(key);
    }
    Some(t)
}

/// The keys a table holds (a count past [`KEYS_MAX`] is read as [`KEYS_MAX`]).
pub fn keys(table: &[u8; TABLE_BYTES]) -> impl Iterator<Item = &[u8; PUBLIC_KEY_BYTES]> {
    table[KEYS_AT..]
        .chunks_exact(PUBLIC_KEY_BYTES)
        .take(usize::from(table[16]).min(KEYS_MAX))
        .filter_map(|k| k.try_into().ok())
}

/// Where the table starts in a built program: `None` unless the magic is there exactly
/// once, followed by a whole table.
pub fn find(program: &[u8]) -> Option<usize> {
    let mut at = program
        .windows(MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == MAGIC);
    let (first, _) = at.next()?;
    (at.next().is_none() && first + TABLE_BYTES <= program.len()).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_found_once() {
        let two = [[4u8; 65], [5u8; 65]];
        let table = encode(&two).unwrap();
        assert_eq!(keys(&table).copied().collect::<std::vec::Vec<_>>(), two);
        assert_eq!(keys(&EMPTY).count(), 0);
        assert!(encode(&[[4u8; 65]; 5]).is_none());
        let mut program = std::vec![0u8; 100];
        program.extend_from_slice(&EMPTY);
        program.extend_from_slice(&[0; 10]);
        assert_eq!(find(&program), Some(100));
        assert_eq!(find(&program[..100 + TABLE_BYTES - 1]), None, "cut short");
        program.extend_from_slice(&MAGIC);
        assert_eq!(find(&program), None, "twice");
    }
}
