//! Content-defined chunks: where an image (a slot's root) is cut so that bytes inserted or
//! removed in one place move only the chunks around them, and the two records built on
//! the cuts.
//!
//! Cutting: a gear hash (FastCDC's rolling hash: shift left, add a byte's random value)
//! whose top bits depend on the last 64 bytes only. A chunk ends where the top
//! [`BITS_BEFORE_AVERAGE`] bits are zero before [`CHUNK_AVERAGE`] bytes and where the top
//! [`BITS_AFTER_AVERAGE`] are after it ("normalised chunking": sizes bunch near the
//! average), never before [`CHUNK_MIN`] bytes nor after [`CHUNK_MAX`].
//!
//! The *index* of an image: [`INDEX_MAGIC`], then per chunk, in order, its SHA-256 and
//! length ([`Chunk`], [`CHUNK_RECORD_BYTES`]). The image is the chunks end to end.
//!
//! The *plan* of a chunked upload (`POST /update/root-chunks`): [`PLAN_MAGIC`], the
//! count of pieces ([`plan_head`]), then per piece of the new image, in order, where its
//! bytes come from ([`Piece`],
//! [`PIECE_RECORD_BYTES`]), then the request body carries the [`Source::Body`] pieces'
//! bytes end to end. A body piece is one chunk and is checked against its SHA-256 on
//! arrival; a [`Source::Running`] piece is copied from the root the device runs and
//! checked, with everything else, by the whole image's SHA-256.
//!
//! `no_std`, no allocation, no hash function of its own: callers hash and collect.

// Sizes: a 16 KiB average keeps a changed small program to a few chunks in the roots we
// make (hundreds of KiB to tens of MiB): one 20 KB program changed in a 1.1 MB root
// adds 49 KB at 16 KiB, 176 KB at 64 KiB (casync's default), for an index of 0.2% of
// the image instead of 0.05%.
/// No chunk but an image's last is shorter.
pub const CHUNK_MIN: usize = 4 << 10;
/// Where the cut condition eases.
pub const CHUNK_AVERAGE: usize = 16 << 10;
/// No chunk is longer.
pub const CHUNK_MAX: usize = 64 << 10;
/// Top hash bits that must be zero for a cut before [`CHUNK_AVERAGE`] bytes (2^-16 a byte).
pub const BITS_BEFORE_AVERAGE: u32 = 16;
/// ... and after it (2^-12 a byte).
pub const BITS_AFTER_AVERAGE: u32 = 12;

pub const INDEX_MAGIC: [u8; 8] = *b"RKINDEX1";
/// SHA-256, then length (u32, little-endian).
pub const CHUNK_RECORD_BYTES: usize = 36;
pub const PLAN_MAGIC: [u8; 8] = *b"RKPLAN01";
/// The magic, the count of pieces (u32, little-endian), four zero bytes.
pub const PLAN_HEAD_BYTES: usize = 16;
/// Most pieces a plan holds: a 256 MiB image of the smallest chunks (3 MiB of records;
/// runs of held chunks are one piece each).
pub const PLAN_PIECES_MAX: u32 = 1 << 16;
/// Length (u32), source (u32: 0 body, 1 running root), offset in the running root (u64),
/// SHA-256 (a body piece's; zero for the others); little-endian.
pub const PIECE_RECORD_BYTES: usize = 48;

/// One value per byte: splitmix64 from a fixed seed, so every build cuts alike.
const GEAR: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut state: u64 = 0x7275_7374_6b72_617a; // "rustkraz"
    let mut i = 0;
    while i < 256 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
};

/// Length of the first chunk of `data`. `data` must hold at least [`CHUNK_MAX`] bytes
/// unless it is the rest of the image: a shorter `data` ends a chunk where it ends.
pub fn first_chunk(data: &[u8]) -> usize {
    if data.len() <= CHUNK_MIN {
        return data.len();
    }
    let end = data.len().min(CHUNK_MAX);
    let hard = !0u64 << (64 - BITS_BEFORE_AVERAGE);
    let easy = !0u64 << (64 - BITS_AFTER_AVERAGE);
    // The hash at a cut depends only on the 64 bytes before it, so starting it 64 bytes
    // before the first possible cut gives the same cuts as hashing from the start.
    let mut hash = 0u64;
    for (i, &b) in data[..end].iter().enumerate().skip(CHUNK_MIN - 64) {
        hash = (hash << 1).wrapping_add(GEAR[usize::from(b)]);
        let mask = if i < CHUNK_AVERAGE { hard } else { easy };
        if i >= CHUNK_MIN && hash & mask == 0 {
            return i;
        }
    }
    end
}

/// One chunk of an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub sha256: [u8; 32],
    pub bytes: u32,
}

impl Chunk {
    pub fn encode(&self) -> [u8; CHUNK_RECORD_BYTES] {
        let mut out = [0u8; CHUNK_RECORD_BYTES];
        out[..32].copy_from_slice(&self.sha256);
        out[32..].copy_from_slice(&self.bytes.to_le_bytes());
        out
    }
}

/// The chunks an index holds, in order; `None` if `index` is not one (wrong magic, a cut
/// record, a chunk of no bytes or over [`CHUNK_MAX`]).
pub fn index_chunks(index: &[u8]) -> Option<impl Iterator<Item = Chunk> + '_> {
    let records = index.strip_prefix(&INDEX_MAGIC)?;
    if records.len() % CHUNK_RECORD_BYTES != 0 {
        return None;
    }
    let decode = |r: &[u8]| Chunk {
        sha256: r[..32].try_into().unwrap_or_default(),
        bytes: u32::from_le_bytes(r[32..36].try_into().unwrap_or_default()),
    };
    let bad = records
        .chunks_exact(CHUNK_RECORD_BYTES)
        .map(decode)
        .any(|c| c.bytes == 0 || c.bytes as usize > CHUNK_MAX);
    (!bad).then(|| records.chunks_exact(CHUNK_RECORD_BYTES).map(decode))
}

pub fn plan_head(pieces: u32) -> [u8; PLAN_HEAD_BYTES] {
    let mut out = [0u8; PLAN_HEAD_BYTES];
    out[..8].copy_from_slice(&PLAN_MAGIC);
    out[8..12].copy_from_slice(&pieces.to_le_bytes());
    out
}

/// The count of pieces a plan's head announces; `None` if it is not a plan's head or
/// announces none or more than [`PLAN_PIECES_MAX`].
pub fn plan_pieces(head: &[u8; PLAN_HEAD_BYTES]) -> Option<u32> {
    let count = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let ok = head[..8] == PLAN_MAGIC && head[12..] == [0; 4];
    (ok && (1..=PLAN_PIECES_MAX).contains(&count)).then_some(count)
}

/// Where a piece of a planned image comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The next bytes of the request body: one chunk with this SHA-256.
    Body { sha256: [u8; 32] },
    /// The running root's bytes from this offset.
    Running { from: u64 },
}

/// One piece of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub bytes: u32,
    pub source: Source,
}

impl Piece {
    pub fn encode(&self) -> [u8; PIECE_RECORD_BYTES] {
        let mut out = [0u8; PIECE_RECORD_BYTES];
        out[..4].copy_from_slice(&self.bytes.to_le_bytes());
        match self.source {
            Source::Body { sha256 } => out[16..].copy_from_slice(&sha256),
            Source::Running { from } => {
                out[4..8].copy_from_slice(&1u32.to_le_bytes());
                out[8..16].copy_from_slice(&from.to_le_bytes());
            }
        }
        out
    }

    /// `None`: an unknown source, no bytes, or a body piece over [`CHUNK_MAX`].
    pub fn decode(record: &[u8; PIECE_RECORD_BYTES]) -> Option<Piece> {
        let u32_at = |at: usize| {
            u32::from_le_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]])
        };
        let bytes = u32_at(0);
        let mut from = [0u8; 8];
        from.copy_from_slice(&record[8..16]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&record[16..]);
        let source = match u32_at(4) {
            0 if bytes as usize <= CHUNK_MAX => Source::Body { sha256 },
            1 => Source::Running {
                from: u64::from_le_bytes(from),
            },
            _ => return None,
        };
        (bytes > 0).then_some(Piece { bytes, source })
    }
}

/// Plans `chunk` after a plan whose last piece is `last`: a chunk the running image holds
/// at `held` extends a copy that ends there, else it is a new piece (returned, to append).
/// Host and device plan alike, so a device following a channel copies what a push would.
pub fn plan_chunk(last: Option<&mut Piece>, chunk: &Chunk, held: Option<u64>) -> Option<Piece> {
    if let (
        Some(from),
        Some(Piece {
            bytes: run,
            source: Source::Running { from: start },
        }),
    ) = (held, last)
    {
        if start.checked_add(u64::from(*run)) == Some(from) {
            if let Some(longer) = run.checked_add(chunk.bytes) {
                *run = longer;
                return None;
            }
        }
    }
    Some(Piece {
        bytes: chunk.bytes,
        source: match held {
            Some(from) => Source::Running { from },
            None => Source::Body {
                sha256: chunk.sha256,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes that do not repeat (xorshift).
    fn noise(len: usize, mut seed: u64) -> std::vec::Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    fn cuts(data: &[u8]) -> std::vec::Vec<usize> {
        let (mut at, mut out) = (0, std::vec::Vec::new());
        while at < data.len() {
            at += first_chunk(&data[at..]);
            out.push(at);
        }
        out
    }

    #[test]
    fn chunks_stay_within_their_bounds_and_average_near_the_target() {
        let data = noise(16 << 20, 1);
        let cuts = cuts(&data);
        let sizes: std::vec::Vec<usize> = core::iter::once(cuts[0])
            .chain(cuts.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let (last, rest) = sizes.split_last().unwrap();
        assert!(rest.iter().all(|&s| (CHUNK_MIN..=CHUNK_MAX).contains(&s)));
        assert!(*last <= CHUNK_MAX);
        let mean = data.len() / sizes.len();
        assert!(
            (12 << 10..=24 << 10).contains(&mean),
            "mean chunk {mean} bytes"
        );
    }

    #[test]
    fn an_insertion_moves_only_the_cuts_near_it() {
        let data = noise(8 << 20, 2);
        let mut changed = data.clone();
        changed.splice(3_000_000..3_000_000, noise(777, 3));
        let before = cuts(&data);
        let after: std::vec::Vec<usize> = cuts(&changed)
            .into_iter()
            .map(|c| if c > 3_000_000 { c - 777 } else { c })
            .collect();
        let kept = after.iter().filter(|c| before.contains(c)).count();
        assert!(
            kept + 3 >= before.len(),
            "{kept} of {} cuts kept",
            before.len()
        );
    }

    #[test]
    fn short_and_patternless_data_cut_where_the_bounds_say() {
        assert_eq!(first_chunk(&[]), 0);
        assert_eq!(first_chunk(&[7; 100]), 100);
        // A run of one byte never satisfies the mask: cut at the maximum.
        assert_eq!(first_chunk(&[0; 1 << 20]), CHUNK_MAX);
    }

    #[test]
    fn index_and_plan_records_round_trip_and_refuse_garbage() {
        let c = Chunk {
            sha256: [9; 32],
            bytes: 50_000,
        };
        let mut index = std::vec::Vec::from(INDEX_MAGIC);
        index.extend_from_slice(&c.encode());
        assert_eq!(
            index_chunks(&index).unwrap().collect::<std::vec::Vec<_>>(),
            [c]
        );
        assert!(index_chunks(&index[..index.len() - 1]).is_none());
        assert!(index_chunks(b"RKINDEX2").is_none());
        let mut big = index.clone();
        big[8 + 32..].copy_from_slice(&(CHUNK_MAX as u32 + 1).to_le_bytes());
        assert!(index_chunks(&big).is_none());

        for piece in [
            Piece {
                bytes: 5,
                source: Source::Body { sha256: [1; 32] },
            },
            Piece {
                bytes: u32::MAX,
                source: Source::Running { from: 1 << 40 },
            },
        ] {
            assert_eq!(Piece::decode(&piece.encode()), Some(piece));
        }
        assert_eq!(plan_pieces(&plan_head(3)), Some(3));
        assert_eq!(plan_pieces(&plan_head(0)), None);
        assert_eq!(plan_pieces(&plan_head(PLAN_PIECES_MAX + 1)), None);
        let mut head = plan_head(3);
        head[0] = b'X';
        assert_eq!(plan_pieces(&head), None);

        let mut record = [0u8; PIECE_RECORD_BYTES];
        assert_eq!(Piece::decode(&record), None, "no bytes");
        record[0] = 1;
        record[4] = 2;
        assert_eq!(Piece::decode(&record), None, "unknown source");
        record[4] = 0;
        record[..4].copy_from_slice(&(CHUNK_MAX as u32 + 1).to_le_bytes());
        assert_eq!(
            Piece::decode(&record),
            None,
            "a body piece over the maximum"
        );
    }
}
