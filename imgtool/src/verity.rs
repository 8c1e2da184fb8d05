//! Verified roots: the dm-verity hash tree written behind a root image in its partition, and
//! the command line words that make the kernel check every block it reads against it.
//!
//! The format is the kernel's (hash type 1, what `veritysetup format --no-superblock` writes
//! with SHA-256, 4 KiB data and hash blocks and no salt):
//!
//! ```text
//! partition: | image, zero-padded to whole blocks | tree: top level ... level 0 | ... | trailer
//! ```
//!
//! Level 0 holds the SHA-256 of each data block, 128 to a hash block (the last one
//! zero-padded); each level above hashes the blocks of the one below, up to a level of one
//! block, whose hash is the root hash. The root hash is in the slot's command line, which the
//! slot's build id and seal cover, so the kernel checks the root against what was sealed.
//! A block that does not match reads as an I/O error (the kernel's default): a damaged
//! program fails, the device stays reachable.

use sha2::{Digest, Sha256};

/// Data and hash block size.
pub const BLOCK_BYTES: usize = 4096;
/// Digests per hash block.
const HASHES_PER_BLOCK: usize = BLOCK_BYTES / 32;
/// The device-mapper name of the verified root, mapped as minor 0: `/dev/dm-0`.
const NAME: &str = "rustkrazy-root";

/// A root image's hash tree, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tree {
    /// Blocks of the image the tree covers; the tree starts right after them.
    pub data_blocks: u64,
    pub root_hash: [u8; 32],
}

/// Pads `image` to whole blocks and appends its hash tree (top level first).
pub fn append_tree(image: &mut Vec<u8>) -> Tree {
    image.resize(image.len().div_ceil(BLOCK_BYTES).max(1) * BLOCK_BYTES, 0);
    let data_blocks = (image.len() / BLOCK_BYTES) as u64;
    image.reserve(image.len() / (HASHES_PER_BLOCK - 1) + BLOCK_BYTES);
    // Level 0 first; as many levels as it takes to reach one block (none for one data block).
    let mut levels: Vec<Vec<u8>> = Vec::new();
    let mut below: &[u8] = image;
    while below.len() > BLOCK_BYTES {
        levels.push(hash_level(below));
        below = levels.last().map_or(&[], |l| l.as_slice());
    }
    let root_hash = Sha256::digest(below).into();
    for level in levels.iter().rev() {
        image.extend_from_slice(level);
    }
    Tree {
        data_blocks,
        root_hash,
    }
}

/// The hash blocks of `blocks`: their digests, 128 to a block, zero-padded.
fn hash_level(blocks: &[u8]) -> Vec<u8> {
    let mut level = Vec::with_capacity(blocks.len() / HASHES_PER_BLOCK + BLOCK_BYTES);
    for block in blocks.chunks(BLOCK_BYTES) {
        level.extend_from_slice(&Sha256::digest(block));
    }
    level.resize(level.len().div_ceil(BLOCK_BYTES) * BLOCK_BYTES, 0);
    level
}

impl Tree {
    /// The dm-verity table over `device` (a `PARTUUID=` the kernel resolves), data and tree
    /// on the same partition.
    pub fn table(&self, device: &str) -> String {
        let d = self.data_blocks;
        let sectors = d * (BLOCK_BYTES as u64 / 512);
        let hash = boot::encoding::Hex(&self.root_hash);
        format!("0 {sectors} verity 1 {device} {device} {BLOCK_BYTES} {BLOCK_BYTES} {d} {d} sha256 {hash} -")
    }

    /// The command line words that open the verified root and boot from it: dm-init maps it
    /// once `device` is there (the Pi's SD card is probed late), read-only.
    pub fn cmdline(&self, device: &str) -> String {
        format!(
            "dm-mod.create=\"{NAME},,0,ro,{}\" dm-mod.waitfor={device} root=/dev/dm-0",
            self.table(device)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's level count: the smallest L with 128^L >= data blocks.
    fn kernel_levels(data_blocks: u64) -> u32 {
        (0..).find(|l| (data_blocks - 1) >> (7 * l) == 0).unwrap()
    }

    #[test]
    fn levels_and_sizes_are_the_kernels() {
        for (bytes, tree_blocks) in [
            (1, 0),
            (4096, 0),
            (4097, 1),
            (128 * 4096, 1),
            (128 * 4096 + 1, 2 + 1),
            (128 * 128 * 4096 + 5, 129 + 2 + 1),
        ] {
            let mut image = vec![0x5a; bytes];
            let tree = append_tree(&mut image);
            let data_blocks = bytes.div_ceil(BLOCK_BYTES) as u64;
            assert_eq!(tree.data_blocks, data_blocks);
            assert_eq!(
                image.len() as u64,
                (data_blocks + tree_blocks) * 4096,
                "{bytes}"
            );
            let levels = kernel_levels(data_blocks);
            let mut expected = 0;
            let mut n = data_blocks;
            for _ in 0..levels {
                n = n.div_ceil(128);
                expected += n;
            }
            assert_eq!(expected, tree_blocks, "{bytes}");
        }
    }

    #[test]
    fn one_block_is_its_own_root_and_the_top_block_hashes_to_the_root() {
        let mut image = vec![7u8; 100];
        let tree = append_tree(&mut image);
        assert_eq!(tree.root_hash, <[u8; 32]>::from(Sha256::digest(&image)));
        let mut image = vec![7u8; 3 * 4096];
        let tree = append_tree(&mut image);
        let top = &image[3 * 4096..];
        assert_eq!(tree.root_hash, <[u8; 32]>::from(Sha256::digest(top)));
        assert_eq!(top[..32], Sha256::digest(&image[..4096])[..]);
        assert!(top[96..].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_table_names_data_and_tree_on_one_device() {
        let tree = Tree {
            data_blocks: 10,
            root_hash: [0xab; 32],
        };
        let words = tree.cmdline("PARTUUID=1a2b3c4d-02");
        assert!(words.starts_with("dm-mod.create=\"rustkrazy-root,,0,ro,0 80 verity 1 PARTUUID=1a2b3c4d-02 PARTUUID=1a2b3c4d-02 4096 4096 10 10 sha256 abab"));
        assert!(words.ends_with(" -\" dm-mod.waitfor=PARTUUID=1a2b3c4d-02 root=/dev/dm-0"));
    }
}
