//! Updates that move only the chunks a device lacks (`boot::chunks`).
//!
//! - [`RunningIndex`] answers `GET /root/index`: the chunk index of the root this system
//!   runs, cut and hashed in steps of [`crate::upload::VERIFY_STEP_BYTES`] so other
//!   clients are answered meanwhile, once per boot ([`IndexCache`]).
//! - [`ChunkedRoot`] takes `POST /update/root-chunks`: a plan, then the chunks the plan
//!   says come in the body. Each body chunk is checked against its SHA-256 as it arrives
//!   and written in its place in the inactive slot; the pieces the running root holds
//!   are then copied from it in steps; then the region is synced, read back and checked
//!   against the whole image's SHA-256 as a whole upload is (`RegionUpload`), and only
//!   then does the slot get its trailer. A plan, a chunk or a body that does not add up
//!   is refused and leaves the slot incomplete.

use crate::http::{refuse, Refusal, Reply};
use crate::upload::{drop_from_page_cache, RegionUpload, Upload, VERIFY_STEP_BYTES};
use boot::chunks::{self, Piece, Source, PIECE_RECORD_BYTES, PLAN_HEAD_BYTES};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// The root this system runs, as [`crate::device::Device::running_root`] gives it.
pub struct Running {
    pub disk: File,
    pub at: u64,
    pub bytes: u64,
}

/// The running root's index, kept once computed: the root never changes while it runs.
/// Computed for one request at a time, so many clients cannot each hold a loop turn.
#[derive(Clone, Default)]
pub struct IndexCache(Rc<Cell<Cached>>);

#[derive(Default)]
enum Cached {
    #[default]
    Unknown,
    Computing,
    Known(Rc<[u8]>),
}

impl IndexCache {
    /// The index if known; `Ok(None)`: compute it (the caller now holds the computation).
    pub fn begin(&self) -> Result<Option<Rc<[u8]>>, Refusal> {
        match self.0.take() {
            Cached::Known(index) => {
                self.0.set(Cached::Known(Rc::clone(&index)));
                Ok(Some(index))
            }
            Cached::Computing => {
                self.0.set(Cached::Computing);
                Err(refuse(
                    503,
                    "the running root's index is being computed for another request; ask again in a few seconds",
                ))
            }
            Cached::Unknown => {
                self.0.set(Cached::Computing);
                Ok(None)
            }
        }
    }
}

/// An index answer, from the cache or computed.
pub fn index_reply(index: &[u8]) -> Reply {
    Reply {
        status: 200,
        content_type: "application/octet-stream",
        body: index.to_vec(),
        after: None,
        files: Vec::new(),
    }
}

/// An answer known before any work: the upload-shaped route gets it at its first step.
pub struct Answered(pub Option<Reply>);

impl Upload for Answered {
    fn write(&mut self, _: &[u8]) -> Result<(), Refusal> {
        Err(refuse(400, "GET requests carry no body"))
    }

    fn finish_step(&mut self) -> Result<Option<Reply>, Refusal> {
        Ok(self.0.take())
    }
}

/// An image's index (the running root's, or the running kernel's), cut and hashed in
/// steps of [`VERIFY_STEP_BYTES`].
pub struct Indexer {
    running: Running,
    /// Bytes read and not yet cut.
    pending: Vec<u8>,
    read: u64,
    index: Vec<u8>,
}

impl Indexer {
    pub fn new(running: Running) -> Indexer {
        Indexer {
            running,
            pending: Vec::with_capacity(VERIFY_STEP_BYTES + chunks::CHUNK_MAX),
            read: 0,
            index: Vec::from(chunks::INDEX_MAGIC),
        }
    }

    /// One step; the index once the whole image is cut.
    pub fn step(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let n = (self.running.bytes - self.read).min(VERIFY_STEP_BYTES as u64) as usize;
        let start = self.pending.len();
        self.pending.resize(start + n, 0);
        self.running
            .disk
            .read_exact_at(&mut self.pending[start..], self.running.at + self.read)?;
        self.read += n as u64;
        let end = self.read == self.running.bytes;
        let mut cut = 0;
        while cut < self.pending.len() && (end || self.pending.len() - cut >= chunks::CHUNK_MAX) {
            let len = chunks::first_chunk(&self.pending[cut..]);
            let chunk = chunks::Chunk {
                sha256: Sha256::digest(&self.pending[cut..cut + len]).into(),
                bytes: len as u32,
            };
            self.index.extend_from_slice(&chunk.encode());
            cut += len;
        }
        self.pending.drain(..cut);
        Ok(end.then(|| std::mem::take(&mut self.index)))
    }
}

/// `GET /root/index`, computed.
pub struct RunningIndex {
    cache: IndexCache,
    indexer: Indexer,
}

impl RunningIndex {
    /// `cache` must be this request's to compute ([`IndexCache::begin`]).
    pub fn new(running: Running, cache: IndexCache) -> RunningIndex {
        RunningIndex {
            cache,
            indexer: Indexer::new(running),
        }
    }
}

impl Upload for RunningIndex {
    fn write(&mut self, _: &[u8]) -> Result<(), Refusal> {
        Err(refuse(400, "GET requests carry no body"))
    }

    fn finish_step(&mut self) -> Result<Option<Reply>, Refusal> {
        let Some(index) = self.indexer.step()? else {
            return Ok(None);
        };
        let index: Rc<[u8]> = index.into();
        let reply = index_reply(&index);
        self.cache.0.set(Cached::Known(index));
        Ok(Some(reply))
    }
}

impl Drop for RunningIndex {
    /// Given up (the client left, the disk failed): the next request computes it.
    fn drop(&mut self) {
        match self.cache.0.take() {
            Cached::Computing => {}
            finished => self.cache.0.set(finished),
        }
    }
}

/// `POST /update/root-chunks`, and a channel's kernel or root (`crate::follow`): the
/// region is the inactive slot's, `running` the running slot's image of the same kind.
pub struct ChunkedRoot {
    region: RegionUpload,
    running: Running,
    /// The plan as it arrives: head, then records.
    plan: Vec<u8>,
    /// The plan's pieces with where each begins in the new image; empty until whole.
    pieces: Vec<(u64, Piece)>,
    /// The piece the body's next bytes belong to, and its bytes so far.
    next: usize,
    chunk: Vec<u8>,
    /// While copying: the piece, and its bytes done.
    copying: (usize, u64),
    image_bytes: u64,
}

impl ChunkedRoot {
    pub fn new(region: RegionUpload, running: Running) -> ChunkedRoot {
        ChunkedRoot {
            region,
            running,
            plan: Vec::new(),
            pieces: Vec::new(),
            next: 0,
            chunk: Vec::with_capacity(chunks::CHUNK_MAX),
            copying: (0, 0),
            image_bytes: 0,
        }
    }

    /// Takes plan bytes from the front of `bytes`; once the plan is whole, checks it.
    fn take_plan<'a>(&mut self, mut bytes: &'a [u8]) -> Result<&'a [u8], Refusal> {
        loop {
            let want = match self.plan.get(..PLAN_HEAD_BYTES) {
                None => PLAN_HEAD_BYTES,
                Some(head) => {
                    let head = head.try_into().unwrap_or(&[0; PLAN_HEAD_BYTES]);
                    let count = chunks::plan_pieces(head).ok_or_else(|| {
                        refuse(400, format!(
                            "the body does not start with a chunk plan (boot::chunks: {:?}, then 1 to {} pieces)",
                            String::from_utf8_lossy(&chunks::PLAN_MAGIC),
                            chunks::PLAN_PIECES_MAX
                        ))
                    })?;
                    PLAN_HEAD_BYTES + count as usize * PIECE_RECORD_BYTES
                }
            };
            let n = (want - self.plan.len()).min(bytes.len());
            self.plan.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.plan.len() < want {
                return Ok(bytes);
            }
            if want > PLAN_HEAD_BYTES {
                self.check_plan()?;
                return Ok(bytes);
            }
        }
    }

    fn check_plan(&mut self) -> Result<(), Refusal> {
        let (_, _, limit) = self.region.target();
        let mut at = 0u64;
        for (i, record) in self.plan[PLAN_HEAD_BYTES..]
            .chunks_exact(PIECE_RECORD_BYTES)
            .enumerate()
        {
            let piece = Piece::decode(record.try_into().unwrap_or(&[0; PIECE_RECORD_BYTES]))
                .ok_or_else(|| refuse(400, format!("piece {i} of the plan is not one (no bytes, an unknown source, or a body chunk over {} bytes)", chunks::CHUNK_MAX)))?;
            if let Source::Running { from } = piece.source {
                let end = from.checked_add(u64::from(piece.bytes));
                if end.is_none_or(|end| end > self.running.bytes) {
                    return Err(refuse(400, format!("piece {i} of the plan copies {} bytes from byte {from} of the running root, which has {}: ask GET /root/index again", piece.bytes, self.running.bytes)));
                }
            }
            self.pieces.push((at, piece));
            at += u64::from(piece.bytes);
        }
        if at > limit {
            return Err(refuse(
                413,
                format!("the plan makes an image of {at} bytes; {limit} fit"),
            ));
        }
        self.image_bytes = at;
        self.plan = Vec::new();
        self.skip_to_body_piece();
        Ok(())
    }

    fn skip_to_body_piece(&mut self) {
        while self
            .pieces
            .get(self.next)
            .is_some_and(|(_, p)| !matches!(p.source, Source::Body { .. }))
        {
            self.next += 1;
        }
    }

    /// The body piece being received is whole: check it, write it in place.
    fn place_chunk(&mut self) -> Result<(), Refusal> {
        let (at, piece) = self.pieces[self.next];
        let Source::Body { sha256 } = piece.source else {
            return Ok(());
        };
        let got: [u8; 32] = Sha256::digest(&self.chunk).into();
        if got != sha256 {
            return Err(refuse(422, format!(
                "piece {} (image bytes {at}..{}) has SHA-256 {} but the plan says {}; the slot stays incomplete",
                self.next, at + u64::from(piece.bytes), boot::encoding::Hex(&got), boot::encoding::Hex(&sha256))));
        }
        let (disk, offset, _) = self.region.target();
        disk.write_all_at(&self.chunk, offset + at)?;
        drop_from_page_cache(disk, offset + at, self.chunk.len() as u64);
        self.chunk.clear();
        self.next += 1;
        self.skip_to_body_piece();
        Ok(())
    }

    fn plan_whole(&self) -> bool {
        !self.pieces.is_empty()
    }
}

impl Upload for ChunkedRoot {
    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Refusal> {
        if !self.plan_whole() {
            bytes = self.take_plan(bytes)?;
        }
        while !bytes.is_empty() {
            let Some((_, piece)) = self.pieces.get(self.next) else {
                return Err(refuse(
                    400,
                    "the body carries more bytes than the plan's body pieces",
                ));
            };
            let n = (piece.bytes as usize - self.chunk.len()).min(bytes.len());
            self.chunk.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.chunk.len() == piece.bytes as usize {
                self.place_chunk()?;
            }
        }
        Ok(())
    }

    fn finish_step(&mut self) -> Result<Option<Reply>, Refusal> {
        if !self.plan_whole() {
            return Err(refuse(400, "the body ended inside the chunk plan"));
        }
        if self.next < self.pieces.len() {
            return Err(refuse(400, format!(
                "the body ended inside piece {} of {}: the plan's body pieces did not all come; the slot stays incomplete",
                self.next, self.pieces.len())));
        }
        // Body pieces are in place already: on to the next copy.
        while self
            .pieces
            .get(self.copying.0)
            .is_some_and(|(_, p)| matches!(p.source, Source::Body { .. }))
        {
            self.copying = (self.copying.0 + 1, 0);
        }
        let (piece_at, done) = self.copying;
        if let Some(&(
            at,
            Piece {
                bytes,
                source: Source::Running { from },
            },
        )) = self.pieces.get(piece_at)
        {
            let n = (u64::from(bytes) - done).min(VERIFY_STEP_BYTES as u64);
            let mut buf = vec![0u8; n as usize];
            self.running
                .disk
                .read_exact_at(&mut buf, self.running.at + from + done)?;
            let (disk, offset, _) = self.region.target();
            disk.write_all_at(&buf, offset + at + done)?;
            drop_from_page_cache(disk, offset + at + done, n);
            self.copying = if done + n < u64::from(bytes) {
                (piece_at, done + n)
            } else {
                (piece_at + 1, 0)
            };
            return Ok(None);
        }
        if self.copying.0 == self.pieces.len() {
            self.region.written_in_place(self.image_bytes);
            self.copying.0 += 1;
        }
        self.region.finish_step()
    }
}
