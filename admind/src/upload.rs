//! Uploads that arrive in pieces from the event loop, so other clients are answered while
//! one runs. A disk region (a root slot, the boot partition) is written through one buffer,
//! then synced, dropped from the page cache and read back in steps of [`VERIFY_STEP_BYTES`]
//! and hashed; it is completed (a root slot's trailer) only if that hash is the one the
//! client expected (`X-Expected-SHA256`, as imgtool sends) or, when it named none, the
//! hash of what came in, taken as it was written. A /data file goes to a temporary name,
//! is synced and renamed into place.
//! Dropping an unfinished upload (the client went away) leaves no trailer and no file.
//!
//! One update at a time: [`UpdateLock`] is held by the upload and freed when it ends.

use crate::http::{json, refuse, stored, Refusal, Reply};
use boot::rootid::{Part, SlotId};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;

/// Bytes read back and hashed per step of a verification.
pub const VERIFY_STEP_BYTES: usize = 1 << 20;

/// A body's destination, fed by the event loop.
pub trait Upload {
    /// The next body bytes.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Refusal>;
    /// After the last body byte: one bounded piece of the remaining work per call;
    /// `Ok(None)` asks to be called again.
    fn finish_step(&mut self) -> Result<Option<Reply>, Refusal>;
}

/// The flag behind "one update at a time".
#[derive(Clone, Default)]
pub struct UpdateLock(Rc<Cell<bool>>);

/// Proof of holding the [`UpdateLock`]; released on drop.
pub struct UpdateGuard(Rc<Cell<bool>>);

impl UpdateLock {
    pub fn take(&self) -> Result<UpdateGuard, Refusal> {
        if self.0.replace(true) {
            return Err(refuse(
                409,
                "another update is in progress; try again when it has finished",
            ));
        }
        Ok(UpdateGuard(Rc::clone(&self.0)))
    }
}

impl Drop for UpdateGuard {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// What completes a verified region.
pub enum Completion {
    /// A root slot: check the client's expected hash, then write the slot's trailer over
    /// this root and the slot's kernel and command line (hashed when the upload began; no
    /// other update can change them meanwhile).
    Root {
        slot: boot::layout::Slot,
        trailer_at: u64,
        expected: Option<[u8; 32]>,
        kernel: Part,
        cmdline: Part,
    },
    /// A slot's kernel: it must be a bzImage whose header describes exactly what came.
    Kernel {
        slot: boot::layout::Slot,
        expected: Option<[u8; 32]>,
    },
    /// The boot partition; on a Pi, its settings files then name the committed slot again.
    Boot { committed: boot::layout::Slot },
}

impl Completion {
    /// The SHA-256 the client said its upload has, if it said.
    fn expected(&self) -> Option<[u8; 32]> {
        match self {
            Completion::Root { expected, .. } | Completion::Kernel { expected, .. } => *expected,
            Completion::Boot { .. } => None,
        }
    }
}

enum Phase {
    Receiving,
    Verifying {
        at: u64,
        hasher: Sha256,
        streamed: Option<[u8; 32]>,
    },
}

/// A region of the disk written from a body.
pub struct RegionUpload {
    disk: File,
    offset: u64,
    limit: u64,
    buf: Vec<u8>,
    filled: usize,
    written: u64,
    /// The hash of what came in, when the client named no hash to check the disk against.
    hasher: Option<Sha256>,
    phase: Phase,
    completion: Completion,
    /// Ranges (from the region's start) left as they are: the slot files inside the boot
    /// partition. What comes for them must be zeros; the read-back counts them as zeros.
    keep: Vec<std::ops::Range<u64>>,
    _guard: UpdateGuard,
}

impl RegionUpload {
    pub fn new(
        disk: File,
        offset: u64,
        limit: u64,
        completion: Completion,
        guard: UpdateGuard,
    ) -> RegionUpload {
        RegionUpload {
            disk,
            offset,
            limit,
            buf: vec![0u8; STREAM_BUFFER_BYTES],
            filled: 0,
            written: 0,
            hasher: completion.expected().is_none().then(Sha256::new),
            phase: Phase::Receiving,
            completion,
            keep: Vec::new(),
            _guard: guard,
        }
    }

    /// Leaves `ranges` of the region untouched (see the field).
    pub fn keeping(mut self, ranges: Vec<std::ops::Range<u64>>) -> RegionUpload {
        self.keep = ranges;
        self
    }

    /// The disk, where the region starts, and how many bytes fit: for a writer that puts
    /// the bytes in place itself (`crate::chunked_update`) and then calls
    /// [`RegionUpload::written_in_place`].
    pub fn target(&self) -> (&File, u64, u64) {
        (&self.disk, self.offset, self.limit)
    }

    /// The region's first `bytes` were written through [`RegionUpload::target`]: the
    /// finish (sync, read-back, completion) covers them as if they had come through
    /// `write`. Only for uploads with an expected hash (nothing streamed to compare).
    pub fn written_in_place(&mut self, bytes: u64) {
        self.written = bytes;
        self.hasher = None;
    }

    /// Splits `[start, start + len)` into pieces inside and outside the kept ranges.
    fn pieces(&self, start: u64, len: u64) -> Vec<(std::ops::Range<u64>, bool)> {
        pieces(&self.keep, start, len)
    }
}

/// `[start, start + len)` cut where `keep`'s ranges begin and end; true for pieces inside.
fn pieces(
    keep: &[std::ops::Range<u64>],
    start: u64,
    len: u64,
) -> Vec<(std::ops::Range<u64>, bool)> {
    let mut out = Vec::new();
    let (mut at, end) = (start, start + len);
    while at < end {
        let inside = keep.iter().find(|r| r.contains(&at));
        let next = match inside {
            Some(r) => r.end.min(end),
            None => keep
                .iter()
                .filter(|r| r.start > at)
                .map(|r| r.start)
                .min()
                .unwrap_or(end)
                .min(end),
        };
        out.push((at..next, inside.is_some()));
        at = next;
    }
    out
}

impl RegionUpload {
    fn flush(&mut self) -> Result<(), Refusal> {
        for (range, kept) in self.pieces(self.written, self.filled as u64) {
            let data = &self.buf
                [(range.start - self.written) as usize..(range.end - self.written) as usize];
            if !kept {
                self.disk.write_all_at(data, self.offset + range.start)?;
            } else if data.iter().any(|&b| b != 0) {
                return Err(refuse(
                    400,
                    "the image carries bytes where the slots' kernels and command lines lie; those are updated per slot (POST /update/kernel, /update/cmdline), never with the boot partition",
                ));
            }
        }
        // Writeback starts now (see the function): the disk works while the next bytes
        // arrive, the final sync waits for little, and a small board's memory does not
        // fill with dirty pages.
        drop_from_page_cache(&self.disk, self.offset + self.written, self.filled as u64);
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&self.buf[..self.filled]);
        }
        self.written += self.filled as u64;
        self.filled = 0;
        Ok(())
    }

    fn complete(&mut self, bytes: u64, sha256: [u8; 32]) -> Result<Reply, Refusal> {
        let hex = boot::encoding::Hex(&sha256);
        let mismatch = |want: &[u8; 32]| {
            refuse(
                422,
                format!(
                    "the upload as the disk holds it has SHA-256 {hex} but the client expected {}; the slot stays incomplete and unarmed",
                    boot::encoding::Hex(want)
                ),
            )
        };
        match &self.completion {
            Completion::Boot { committed } => {
                crate::pi_settings::point(&self.disk, *committed)?;
                Ok(json(200, stored(None, bytes, &sha256, None)))
            }
            Completion::Kernel { slot, expected } => {
                if let Some(want) = expected.filter(|w| *w != sha256) {
                    return Err(mismatch(&want));
                }
                let mut header = [0u8; boot::slot::KERNEL_HEADER_BYTES];
                let n = header.len().min(bytes as usize);
                self.disk.read_exact_at(&mut header[..n], self.offset)?;
                if boot::slot::kernel_bytes(&header[..n]) != Some(bytes) {
                    return Err(refuse(
                        422,
                        "not a kernel whose header describes its length (an x86 bzImage of boot protocol 2.04 or later, or a kernel with an EFI stub); the slot stays incomplete",
                    ));
                }
                Ok(json(200, stored(Some(slot.number()), bytes, &sha256, None)))
            }
            Completion::Root {
                slot,
                trailer_at,
                expected,
                kernel,
                cmdline,
            } => {
                if let Some(want) = expected.filter(|w| *w != sha256) {
                    return Err(mismatch(&want));
                }
                let root = Part { bytes, sha256 };
                let id = SlotId {
                    root,
                    kernel: *kernel,
                    cmdline: *cmdline,
                    build: boot::rootid::build_id(&root, kernel, cmdline, sha256_parts),
                };
                self.disk
                    .write_all_at(&boot::rootid::encode(&id, None), *trailer_at)?;
                self.disk.sync_data()?;
                Ok(json(
                    200,
                    stored(Some(slot.number()), bytes, &sha256, Some(&id.build)),
                ))
            }
        }
    }
}

impl Upload for RegionUpload {
    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Refusal> {
        if self.written + (self.filled + bytes.len()) as u64 > self.limit {
            return Err(refuse(
                413,
                format!(
                    "the upload is larger than the {} bytes that fit",
                    self.limit
                ),
            ));
        }
        while !bytes.is_empty() {
            let n = bytes.len().min(self.buf.len() - self.filled);
            self.buf[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == self.buf.len() {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn finish_step(&mut self) -> Result<Option<Reply>, Refusal> {
        match &mut self.phase {
            Phase::Receiving => {
                self.flush()?;
                if self.written == 0 {
                    return Err(refuse(400, "empty upload"));
                }
                self.disk.sync_data()?;
                drop_from_page_cache(&self.disk, self.offset, self.written);
                let streamed = self.hasher.take().map(|h| h.finalize().into());
                self.phase = Phase::Verifying {
                    at: 0,
                    hasher: Sha256::new(),
                    streamed,
                };
                Ok(None)
            }
            Phase::Verifying {
                at,
                hasher,
                streamed,
            } => {
                let n = (self.written - *at).min(VERIFY_STEP_BYTES as u64) as usize;
                let n = n.min(self.buf.len());
                let start = *at;
                for (range, kept) in pieces(&self.keep, start, n as u64) {
                    let piece =
                        &mut self.buf[(range.start - start) as usize..(range.end - start) as usize];
                    if kept {
                        piece.fill(0);
                    } else {
                        self.disk.read_exact_at(piece, self.offset + range.start)?;
                    }
                }
                hasher.update(&self.buf[..n]);
                *at += n as u64;
                if *at < self.written {
                    return Ok(None);
                }
                let streamed = *streamed;
                let read_back: [u8; 32] =
                    std::mem::replace(hasher, Sha256::new()).finalize().into();
                if streamed.is_some_and(|s| s != read_back) {
                    return Err(refuse(
                        500,
                        "the data read back differs from what was received; the disk may be failing",
                    ));
                }
                let bytes = self.written;
                self.complete(bytes, read_back).map(Some)
            }
        }
    }
}

/// Read what the disk holds, not what the page cache remembers. On dirty pages Linux
/// starts their writeback and leaves them (`POSIX_FADV_DONTNEED` drops clean pages only).
pub(crate) fn drop_from_page_cache(disk: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `disk`, which outlives this borrow.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(disk.as_raw_fd()) };
    let _ = rustix::fs::fadvise(
        fd,
        offset,
        core::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

/// A file written under a temporary name next to its place, renamed there when complete.
pub struct FileUpload {
    file: Option<File>,
    temp: PathBuf,
    path: PathBuf,
    limit: u64,
    total: u64,
    hasher: Sha256,
}

impl FileUpload {
    pub fn new(file: File, temp: PathBuf, path: PathBuf, limit: u64) -> FileUpload {
        FileUpload {
            file: Some(file),
            temp,
            path,
            limit,
            total: 0,
            hasher: Sha256::new(),
        }
    }
}

impl Upload for FileUpload {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        if self.total + bytes.len() as u64 > self.limit {
            return Err(refuse(
                413,
                format!("file larger than {} bytes", self.limit),
            ));
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| refuse(500, "upload already finished"))?;
        file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.total += bytes.len() as u64;
        Ok(())
    }

    fn finish_step(&mut self) -> Result<Option<Reply>, Refusal> {
        let file = self
            .file
            .take()
            .ok_or_else(|| refuse(500, "upload already finished"))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)
            .map_err(|e| refuse(409, format!("cannot replace {} ({e})", self.path.display())))?;
        if let Some(dir) = self.path.parent().and_then(|d| File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        let sha256 = std::mem::replace(&mut self.hasher, Sha256::new()).finalize();
        Ok(Some(json(
            200,
            format!(
                "{{\"bytes\":{},\"sha256\":\"{}\"}}\n",
                self.total,
                boot::encoding::Hex(&sha256)
            ),
        )))
    }
}

impl Drop for FileUpload {
    fn drop(&mut self) {
        // Unfinished (or failed): no partial file is left as if complete.
        if self.file.is_some() || self.temp.exists() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
/// Bytes moved per read/write while streaming (the only buffer an update needs).
pub const STREAM_BUFFER_BYTES: usize = 256 * 1024;
// Whole sectors per write, so a region is never written in part of a sector.
const _: () = assert!(STREAM_BUFFER_BYTES.is_multiple_of(boot::layout::SECTOR_BYTES as usize));

/// SHA-256 over `parts` in order (`boot::rootid::build_id` hashes a slot with it).
pub(crate) fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize().into()
}
