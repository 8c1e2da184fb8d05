//! SquashFS data blocks compressed ahead of time on every core.
//!
//! backhand's writer compresses one block after another on one thread; compression is
//! nearly all of a root image's build time. Before the writer runs, `compress_ahead` cuts
//! the files into the blocks the writer will cut them into and compresses those on all
//! cores with the same compressor and settings; the writer then asks the hook (`hook`,
//! its compression action) for each block and gets the stored result. A block that was
//! not predicted (metadata, the fragment block, anything the writer cuts differently) is
//! compressed there and then, so the image never depends on the prediction being right:
//! only the time does. Entries are found by the block's SHA-256.
//!
//! gzip blocks, predicted or not, are compressed at `GZIP_LEVEL` whatever backhand's
//! settings say: a gzip image does not record its level (the kernel and unsquashfs need
//! none), so the superblock stays the plain gzip one.

use crate::config::Compression;
use backhand::compression::{
    CompressionAction, CompressionOptions, Compressor, DefaultCompressor, Gzip, Lz4,
};
use backhand::{BackhandError, FilesystemCompressor, SuperBlock};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

type Key = [u8; 32];
/// One compression thread's blocks, by key.
type Compressed = Vec<(Key, Vec<u8>)>;

/// zlib's own default level. Measured on ci/bench-mkimg's realistic payload (48 MB of
/// programs, 2 cores): level 9 (mksquashfs's) 23,676 KiB in 2.3 s, level 6 23,840 KiB
/// (+0.7%) in 1.5 s, level 1 28,712 KiB in 1.3 s.
const GZIP_LEVEL: u32 = 6;

/// The compressor settings backhand writes into the superblock for `compression`.
pub fn superblock_settings(
    compression: Compression,
) -> Result<FilesystemCompressor, BackhandError> {
    match compression {
        // No options: the kernel needs none for gzip, and backhand's are malformed
        // (unsquashfs refuses them).
        Compression::Gzip => FilesystemCompressor::new(Compressor::Gzip, None),
        // The kernel requires LZ4's options block: format version 1, no flags.
        Compression::Lz4 => FilesystemCompressor::new(
            Compressor::Lz4,
            Some(CompressionOptions::Lz4(Lz4 {
                version: 1,
                flags: 0,
            })),
        ),
    }
}

/// The settings every block is compressed with.
fn block_settings(compression: Compression) -> Result<FilesystemCompressor, BackhandError> {
    match compression {
        Compression::Gzip => {
            let gzip = Gzip {
                compression_level: GZIP_LEVEL,
                window_size: 15,
                strategies: 0,
            };
            FilesystemCompressor::new(Compressor::Gzip, Some(CompressionOptions::Gzip(gzip)))
        }
        Compression::Lz4 => superblock_settings(compression),
    }
}

static GZIP_HOOK: AheadCompressor = AheadCompressor::new(Compression::Gzip);
static LZ4_HOOK: AheadCompressor = AheadCompressor::new(Compression::Lz4);

/// The compression hook a root image's writer is given (backhand wants a `'static`).
pub fn hook(compression: Compression) -> &'static AheadCompressor {
    match compression {
        Compression::Gzip => &GZIP_HOOK,
        Compression::Lz4 => &LZ4_HOOK,
    }
}

/// One compressor's blocks by key, shared by concurrent builds in one process (tests): a
/// key names a block's content, so one build's entry is right for any other.
pub struct AheadCompressor {
    compression: Compression,
    ready: Mutex<Option<HashMap<Key, Vec<u8>>>>,
}

impl AheadCompressor {
    const fn new(compression: Compression) -> AheadCompressor {
        AheadCompressor {
            compression,
            ready: Mutex::new(None),
        }
    }
}

/// The blocks one build stored; dropping it takes them out again.
pub struct Stored {
    hook: &'static AheadCompressor,
    keys: Vec<Key>,
}

impl Drop for Stored {
    fn drop(&mut self) {
        let mut ready = self.hook.ready.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = ready.as_mut() {
            for key in &self.keys {
                map.remove(key);
            }
        }
    }
}

fn key(block: &[u8]) -> Key {
    Sha256::digest(block).into()
}

/// The blocks backhand's writer compresses for a file of these bytes: a file shorter than
/// one block goes whole into the shared fragment block (not predicted); a longer one is
/// cut into blocks, the last one short, and an all-zero block is stored as a hole.
fn data_blocks(file: &[u8], block_bytes: usize) -> impl Iterator<Item = &[u8]> {
    let whole = file.len() >= block_bytes;
    file.chunks(block_bytes)
        .filter(move |_| whole)
        .filter(|block| block.iter().any(|&b| b != 0))
}

/// Compresses the data blocks of `files` on every core and stores them in `hook` for the
/// writer. Keep the result alive until the image is written.
pub fn compress_ahead(
    hook: &'static AheadCompressor,
    files: &[&[u8]],
    block_bytes: u32,
) -> Result<Stored, BackhandError> {
    let settings = block_settings(hook.compression)?;
    let blocks: Vec<&[u8]> = files
        .iter()
        .flat_map(|file| data_blocks(file, block_bytes as usize))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blocks.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Result<Compressed, BackhandError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(block) = blocks.get(i) else {
                            return Ok(done);
                        };
                        let packed = DefaultCompressor.compress(block, settings, block_bytes)?;
                        done.push((key(block), packed));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut stored = Stored {
        hook,
        keys: Vec::new(),
    };
    let mut ready = hook.ready.lock().unwrap_or_else(|e| e.into_inner());
    let map = ready.get_or_insert_with(HashMap::new);
    for result in results {
        for (key, packed) in result? {
            stored.keys.push(key);
            map.insert(key, packed);
        }
    }
    Ok(stored)
}

impl CompressionAction for AheadCompressor {
    type Error = BackhandError;
    type Compressor = Compressor;
    type FilesystemCompressor = FilesystemCompressor;
    type SuperBlock = SuperBlock;

    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        compressor: Compressor,
    ) -> Result<(), BackhandError> {
        DefaultCompressor.decompress(bytes, out, compressor)
    }

    fn compress(
        &self,
        bytes: &[u8],
        _backhands: FilesystemCompressor,
        block_size: u32,
    ) -> Result<Vec<u8>, BackhandError> {
        let stored = {
            let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            ready
                .as_ref()
                .filter(|map| !map.is_empty())
                .and_then(|map| map.get(&key(bytes)).cloned())
        };
        match stored {
            Some(packed) => Ok(packed),
            None => {
                DefaultCompressor.compress(bytes, block_settings(self.compression)?, block_size)
            }
        }
    }

    fn compression_options(
        &self,
        superblock: &mut SuperBlock,
        kind: &backhand::kind::Kind,
        settings: FilesystemCompressor,
    ) -> Result<Option<Vec<u8>>, BackhandError> {
        DefaultCompressor.compression_options(superblock, kind, settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_predicted_as_the_writer_cuts_them() {
        let small = vec![1u8; 100];
        assert_eq!(data_blocks(&small, 128).count(), 0, "a fragment");
        let mut big = vec![1u8; 300];
        big[128..256].fill(0);
        let blocks: Vec<&[u8]> = data_blocks(&big, 128).collect();
        assert_eq!(blocks.len(), 2, "the zero block is a hole");
        assert_eq!((blocks[0].len(), blocks[1].len()), (128, 44));
    }

    #[test]
    fn a_stored_block_is_served_and_an_unknown_one_compressed() {
        for compression in [Compression::Gzip, Compression::Lz4] {
            let hook = hook(compression);
            let (plain, settings) = (
                superblock_settings(compression).unwrap(),
                block_settings(compression).unwrap(),
            );
            let file: Vec<u8> = (0..40_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect();
            let stored = compress_ahead(hook, &[&file], 1 << 17).unwrap();
            assert_eq!(stored.keys.len(), 2);
            let first = &file[..1 << 17];
            let direct = DefaultCompressor
                .compress(first, settings, 1 << 17)
                .unwrap();
            assert_eq!(hook.compress(first, plain, 1 << 17).unwrap(), direct);
            let other = vec![7u8; 1000];
            let direct = DefaultCompressor
                .compress(&other, settings, 1 << 17)
                .unwrap();
            assert_eq!(hook.compress(&other, plain, 1 << 17).unwrap(), direct);
        }
    }
}
