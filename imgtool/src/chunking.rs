//! The host's side of `boot::chunks`: an image cut into chunks, its index, and the plan
//! that sends a device only the chunks its running root lacks.

use anyhow::{bail, Result};
use boot::chunks::{self, Chunk, Piece, Source};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ops::Range;

/// An image's chunks, in order: where each lies and its SHA-256.
pub fn cut(image: &[u8]) -> Vec<(Range<usize>, [u8; 32])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < image.len() {
        let end = at + chunks::first_chunk(&image[at..]);
        out.push((at..end, Sha256::digest(&image[at..end]).into()));
        at = end;
    }
    out
}

/// The index of `cut`'s chunks.
pub fn index(cut: &[(Range<usize>, [u8; 32])]) -> Vec<u8> {
    let mut out = Vec::from(chunks::INDEX_MAGIC);
    for (range, sha256) in cut {
        let chunk = Chunk {
            sha256: *sha256,
            bytes: range.len() as u32,
        };
        out.extend_from_slice(&chunk.encode());
    }
    out
}

/// Where each chunk of `index` begins in the image it indexes, by SHA-256.
pub fn offsets(index: &[u8]) -> Result<HashMap<[u8; 32], u64>> {
    let Some(list) = chunks::index_chunks(index) else {
        bail!(
            "not a chunk index (boot::chunks): {} bytes starting {:?}",
            index.len(),
            String::from_utf8_lossy(&index[..index.len().min(8)])
        );
    };
    let mut at = 0u64;
    let mut out = HashMap::new();
    for chunk in list {
        out.entry(chunk.sha256).or_insert(at);
        at += u64::from(chunk.bytes);
    }
    Ok(out)
}

/// A chunked upload's body, and what it carries.
pub struct Upload {
    pub body: Vec<u8>,
    pub chunks: usize,
    pub chunks_sent: usize,
    pub bytes_sent: u64,
}

/// The body of `POST /update/root-chunks` for `image` to a device whose running root
/// holds the chunks in `held`: runs of held chunks become copies, the rest come along.
pub fn upload(image: &[u8], held: &HashMap<[u8; 32], u64>) -> Upload {
    let cut = cut(image);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut data = Vec::new();
    for (range, sha256) in &cut {
        let chunk = Chunk {
            sha256: *sha256,
            bytes: range.len() as u32,
        };
        let piece = chunks::plan_chunk(pieces.last_mut(), &chunk, held.get(sha256).copied());
        if let Some(piece) = piece {
            if matches!(piece.source, Source::Body { .. }) {
                data.extend_from_slice(&image[range.clone()]);
            }
            pieces.push(piece);
        }
    }
    let chunks_sent = pieces
        .iter()
        .filter(|p| matches!(p.source, Source::Body { .. }))
        .count();
    let mut body = Vec::from(chunks::plan_head(pieces.len() as u32));
    for piece in &pieces {
        body.extend_from_slice(&piece.encode());
    }
    let bytes_sent = data.len() as u64;
    body.extend_from_slice(&data);
    Upload {
        body,
        chunks: cut.len(),
        chunks_sent,
        bytes_sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect()
    }

    /// Applies a plan as admind does, from `running`, and returns the image it makes.
    fn apply(body: &[u8], running: &[u8]) -> Vec<u8> {
        let head: &[u8; 16] = body[..16].try_into().unwrap();
        let count = chunks::plan_pieces(head).unwrap() as usize;
        let mut data = &body[16 + count * 48..];
        let mut out = Vec::new();
        for record in body[16..16 + count * 48].chunks_exact(48) {
            let piece = Piece::decode(record.try_into().unwrap()).unwrap();
            let n = piece.bytes as usize;
            match piece.source {
                Source::Body { sha256 } => {
                    assert_eq!(<[u8; 32]>::from(Sha256::digest(&data[..n])), sha256);
                    out.extend_from_slice(&data[..n]);
                    data = &data[n..];
                }
                Source::Running { from } => {
                    out.extend_from_slice(&running[from as usize..from as usize + n])
                }
            }
        }
        assert!(data.is_empty());
        out
    }

    #[test]
    fn a_plan_rebuilds_the_image_and_sends_only_what_changed() {
        let running = noise(4 << 20, 1);
        let mut image = running.clone();
        image.splice(1_000_000..1_000_100, noise(5000, 2));
        let held = offsets(&index(&cut(&running))).unwrap();
        let up = upload(&image, &held);
        assert_eq!(apply(&up.body, &running), image);
        assert!(up.bytes_sent < 200_000, "sent {} bytes", up.bytes_sent);
        assert!(up.chunks_sent <= 5, "{} chunks", up.chunks_sent);
        // Nothing held: everything is sent, and still rebuilds.
        let up = upload(&image, &HashMap::new());
        assert_eq!(up.bytes_sent, image.len() as u64);
        assert_eq!(apply(&up.body, &[]), image);
    }

    #[test]
    fn garbage_is_not_an_index() {
        assert!(offsets(b"not an index").is_err());
        assert!(offsets(b"RKINDEX1 and more").is_err());
    }
}
