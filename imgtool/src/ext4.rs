//! An ext4 formatter: writes an empty, journaled ext4 filesystem onto a partition without
//! writing the whole partition, the way `mkfs.ext4 -E lazy_itable_init=1,lazy_journal_init=1`
//! does.
//!
//! What it writes (all offsets in 4 KiB blocks, 32-bit block numbers):
//!
//! 1. the superblock (byte 1024 of block 0) and its backups in groups 0, 1 and powers of 3, 5, 7
//!    (`sparse_super`), each followed by a copy of the group descriptor table;
//! 2. for each flex group (16 block groups), the block bitmaps, inode bitmaps and inode tables
//!    of its groups, packed at the start of its first group (`flex_bg`);
//! 3. the block bitmaps of the groups that hold metadata or are the last group, and the inode
//!    bitmap of group 0; every other group is marked `BLOCK_UNINIT`/`INODE_UNINIT` and its
//!    bitmaps are never written;
//! 4. the first inode-table block of group 0 (reserved inodes 1-11: root 2, journal 8,
//!    lost+found 11); the rest of the inode tables are left for the kernel's lazy init thread;
//! 5. the root directory and lost+found blocks, and the journal superblock (the journal's other
//!    blocks are not zeroed: an empty journal, `s_start == 0`, is never replayed).
//!
//! Feature set and why:
//! - `has_journal`: /data must survive power loss without a full fsck.
//! - `extents`, `flex_bg`, `huge_file`, `dir_nlink`, `extra_isize`, `large_file`, `filetype`,
//!   `dir_index`, `sparse_super`: the mkfs.ext4 defaults every current kernel expects.
//! - `metadata_csum`: detects torn or corrupted metadata (SD cards); required anyway for the
//!   uninitialised-group flags that let us skip writing the partition.
//! - not `64bit`: 32-bit block numbers reach 16 TiB with 4 KiB blocks, well past the 2 TiB an
//!   MBR can address, and keep group descriptors at 32 bytes.
//! - not `resize_inode`: no online growth reserve; /data is formatted at its final size.
//!
//! Not supported: block sizes other than 4 KiB, bigalloc, quotas, inline data, encryption,
//! filesystems over 16 TiB or under 16 MiB, pre-populated files. Everything that would need a
//! random number (UUID, hash seed) is passed in, so output is reproducible.

use crate::crc32c::crc32c;
use anyhow::{bail, ensure, Result};
use std::io;

/// Writes a buffer at a byte offset of the target partition.
pub trait WriteAt {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
}

const BLOCK_BYTES: u64 = 4096;
const LOG_BLOCK_SIZE: u32 = 2; // 1024 << 2
const BLOCKS_PER_GROUP: u64 = 8 * BLOCK_BYTES; // one bitmap block covers a group
const INODE_BYTES: u64 = 256;
const INODES_PER_BLOCK: u64 = BLOCK_BYTES / INODE_BYTES;
const BYTES_PER_INODE: u64 = 16384; // mkfs.ext4's default inode ratio
const DESC_BYTES: u64 = 32; // without the 64bit feature
const LOG_GROUPS_PER_FLEX: u32 = 4;
const GROUPS_PER_FLEX: u64 = 1 << LOG_GROUPS_PER_FLEX;
const EXTRA_ISIZE: u16 = 32;
/// A last group too small to hold its own metadata plus this many data blocks is dropped.
const LAST_GROUP_SPARE_BLOCKS_MIN: u64 = 64;

const ROOT_INO: u32 = 2;
const JOURNAL_INO: u32 = 8;
const LOST_FOUND_INO: u32 = 11;
const FIRST_INO: u32 = 11; // first inode not reserved by ext4
const LOST_FOUND_BLOCKS: u64 = 4; // as mkfs.ext4: room for entries e2fsck may need to add
const EXTENT_BLOCKS_MAX: u64 = 32768; // longest initialised extent
const INLINE_EXTENTS_MAX: u64 = 4; // extents that fit in the inode itself

/// The smallest filesystem formatted.
pub const SIZE_BYTES_MIN: u64 = 16 << 20;
/// The largest filesystem formatted (32-bit block numbers).
pub const SIZE_BYTES_MAX: u64 = (u32::MAX as u64) * BLOCK_BYTES;

// Feature flags (names as in the kernel's fs/ext4/ext4.h).
const COMPAT_HAS_JOURNAL: u32 = 0x0004;
const COMPAT_DIR_INDEX: u32 = 0x0020;
const INCOMPAT_FILETYPE: u32 = 0x0002;
const INCOMPAT_EXTENTS: u32 = 0x0040;
const INCOMPAT_FLEX_BG: u32 = 0x0200;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
const RO_COMPAT_HUGE_FILE: u32 = 0x0008;
const RO_COMPAT_DIR_NLINK: u32 = 0x0020;
const RO_COMPAT_EXTRA_ISIZE: u32 = 0x0040;
const RO_COMPAT_METADATA_CSUM: u32 = 0x0400;

const BG_INODE_UNINIT: u16 = 0x0001;
const BG_BLOCK_UNINIT: u16 = 0x0002;

const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;
const INODE_FLAG_EXTENTS: u32 = 0x0008_0000;
const FT_DIR: u8 = 2;

/// What identifies one filesystem; pass the same values to get the same bytes.
#[derive(Clone, Debug)]
pub struct Options {
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
    pub label: String,
    /// Creation time (seconds since the epoch) written into every timestamp.
    pub time: u32,
}

/// Sizes chosen for a filesystem, reported to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub blocks: u64,
    pub groups: u64,
    pub inodes_per_group: u64,
    pub gdt_blocks: u64,
    pub journal_blocks: u64,
}

impl Geometry {
    /// Chooses the geometry for a partition of `size_bytes`.
    pub fn for_size(size_bytes: u64) -> Result<Geometry> {
        ensure!(
            size_bytes >= SIZE_BYTES_MIN,
            "ext4: {size_bytes} bytes is too small; the /data partition needs at least {} MiB",
            SIZE_BYTES_MIN >> 20
        );
        ensure!(
            size_bytes <= SIZE_BYTES_MAX,
            "ext4: {size_bytes} bytes is too large; at most {SIZE_BYTES_MAX} bytes are supported"
        );
        let mut blocks = size_bytes / BLOCK_BYTES;
        loop {
            let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
            let inodes = (blocks * BLOCK_BYTES / BYTES_PER_INODE).max(FIRST_INO as u64 + 1);
            // Whole inode-table blocks, and never more inodes than one bitmap block tracks.
            let inodes_per_group = inodes
                .div_ceil(groups)
                .next_multiple_of(INODES_PER_BLOCK)
                .min(BLOCKS_PER_GROUP);
            let geometry = Geometry {
                blocks,
                groups,
                inodes_per_group,
                gdt_blocks: (groups * DESC_BYTES).div_ceil(BLOCK_BYTES),
                journal_blocks: journal_blocks_for(blocks),
            };
            let last = groups - 1;
            if groups > 1
                && geometry.used_prefix(last) + LAST_GROUP_SPARE_BLOCKS_MIN
                    > geometry.group_blocks(last)
            {
                // As mkfs does: a sliver of a group is not worth its metadata.
                blocks = last * BLOCKS_PER_GROUP;
                continue;
            }
            ensure!(
                geometry.used_prefix(0) <= geometry.group_blocks(0),
                "ext4: {size_bytes} bytes leave no room for the journal in group 0"
            );
            return Ok(geometry);
        }
    }

    fn inodes(&self) -> u64 {
        self.inodes_per_group * self.groups
    }

    fn itable_blocks(&self) -> u64 {
        self.inodes_per_group / INODES_PER_BLOCK
    }

    fn group_start(&self, group: u64) -> u64 {
        group * BLOCKS_PER_GROUP
    }

    fn group_blocks(&self, group: u64) -> u64 {
        (self.blocks - self.group_start(group)).min(BLOCKS_PER_GROUP)
    }

    /// Superblock plus descriptor table, if this group carries a copy.
    fn super_blocks(&self, group: u64) -> u64 {
        if has_super(group) {
            1 + self.gdt_blocks
        } else {
            0
        }
    }

    fn flex_first(&self, group: u64) -> u64 {
        group / GROUPS_PER_FLEX * GROUPS_PER_FLEX
    }

    fn flex_len(&self, group: u64) -> u64 {
        let first = self.flex_first(group);
        (self.groups - first).min(GROUPS_PER_FLEX)
    }

    /// First block of the flex group's packed metadata.
    fn flex_meta_start(&self, group: u64) -> u64 {
        let first = self.flex_first(group);
        self.group_start(first) + self.super_blocks(first)
    }

    fn block_bitmap(&self, group: u64) -> u64 {
        self.flex_meta_start(group) + (group - self.flex_first(group))
    }

    fn inode_bitmap(&self, group: u64) -> u64 {
        self.flex_meta_start(group) + self.flex_len(group) + (group - self.flex_first(group))
    }

    fn inode_table(&self, group: u64) -> u64 {
        self.flex_meta_start(group)
            + 2 * self.flex_len(group)
            + (group - self.flex_first(group)) * self.itable_blocks()
    }

    fn flex_meta_end(&self, group: u64) -> u64 {
        self.flex_meta_start(group) + self.flex_len(group) * (2 + self.itable_blocks())
    }

    /// Group 0's data: root directory, lost+found, journal, back to back after the metadata.
    fn root_dir_block(&self) -> u64 {
        self.flex_meta_end(0)
    }

    fn lost_found_block(&self) -> u64 {
        self.root_dir_block() + 1
    }

    fn journal_block(&self) -> u64 {
        self.lost_found_block() + LOST_FOUND_BLOCKS
    }

    /// Every group's used blocks form a prefix of the group: this is its length.
    fn used_prefix(&self, group: u64) -> u64 {
        if group == 0 {
            self.journal_block() + self.journal_blocks
        } else if group == self.flex_first(group) {
            self.flex_meta_end(group) - self.group_start(group)
        } else {
            self.super_blocks(group)
        }
    }

    fn free_blocks(&self, group: u64) -> u64 {
        self.group_blocks(group) - self.used_prefix(group)
    }

    /// Groups whose block bitmap is written; all others are `BLOCK_UNINIT`. Groups holding
    /// other groups' metadata must be initialised (the kernel only accounts a group's own
    /// metadata when it builds an uninitialised bitmap), and so is the last group, as mkfs does.
    fn block_bitmap_written(&self, group: u64) -> bool {
        group == self.flex_first(group) || group == self.groups - 1
    }
}

/// Groups 0, 1 and powers of 3, 5 and 7 carry superblock backups (`sparse_super`).
fn has_super(group: u64) -> bool {
    fn is_power_of(mut n: u64, base: u64) -> bool {
        while n > 1 && n.is_multiple_of(base) {
            n /= base;
        }
        n == 1
    }
    group <= 1 || is_power_of(group, 3) || is_power_of(group, 5) || is_power_of(group, 7)
}

/// Journal size by filesystem size, following mkfs.ext4's table, capped at 64 MiB so the
/// journal fits in one extent inside group 0.
fn journal_blocks_for(blocks: u64) -> u64 {
    match blocks {
        0..32768 => 1024,
        32768..262144 => 4096,
        262144..524288 => 8192,
        _ => 16384,
    }
}

/// Formats `target` (a partition of `size_bytes`) as an empty ext4 filesystem.
pub fn format(target: &mut dyn WriteAt, size_bytes: u64, options: &Options) -> Result<Geometry> {
    let geo = Geometry::for_size(size_bytes)?;
    if options.label.len() > 16 {
        bail!("ext4: label {:?} is longer than 16 bytes", options.label);
    }
    let csum_seed = crc32c(!0, &options.uuid);

    // Group 0's inode table block with the reserved inodes, and the directory blocks.
    let mut itable = vec![0u8; BLOCK_BYTES as usize];
    let root = directory_inode(options, 0o755, 3, geo.root_dir_block(), 1);
    let lost_found = directory_inode(options, 0o700, 2, geo.lost_found_block(), LOST_FOUND_BLOCKS);
    let journal = journal_inode(options, geo.journal_block(), geo.journal_blocks)?;
    for (ino, inode) in [
        (ROOT_INO, &root),
        (JOURNAL_INO, &journal),
        (LOST_FOUND_INO, &lost_found),
    ] {
        let mut raw = *inode;
        seal_inode(&mut raw, csum_seed, ino);
        let at = (ino as usize - 1) * INODE_BYTES as usize;
        itable[at..at + INODE_BYTES as usize].copy_from_slice(&raw);
    }
    let root_block = directory_block(
        csum_seed,
        ROOT_INO,
        &[
            (ROOT_INO, b"."),
            (ROOT_INO, b".."),
            (LOST_FOUND_INO, b"lost+found"),
        ],
    );
    let lost_found_first = directory_block(
        csum_seed,
        LOST_FOUND_INO,
        &[(LOST_FOUND_INO, b"."), (ROOT_INO, b"..")],
    );
    let lost_found_empty = directory_block(csum_seed, LOST_FOUND_INO, &[]);

    // Group descriptors, then bitmaps whose checksums the descriptors carry.
    let mut gdt = vec![0u8; (geo.gdt_blocks * BLOCK_BYTES) as usize];
    let mut block_bitmaps = Vec::new();
    let mut free_blocks_total = 0;
    for group in 0..geo.groups {
        let mut desc = GroupDesc {
            block_bitmap: geo.block_bitmap(group),
            inode_bitmap: geo.inode_bitmap(group),
            inode_table: geo.inode_table(group),
            free_blocks: geo.free_blocks(group),
            free_inodes: geo.inodes_per_group,
            used_dirs: 0,
            flags: BG_INODE_UNINIT,
            block_bitmap_csum: 0,
            inode_bitmap_csum: 0,
            itable_unused: geo.inodes_per_group,
        };
        if geo.block_bitmap_written(group) {
            let bitmap = prefix_bitmap(geo.used_prefix(group), geo.group_blocks(group));
            desc.block_bitmap_csum = crc32c(csum_seed, &bitmap) as u16;
            block_bitmaps.push((geo.block_bitmap(group), bitmap));
        } else {
            desc.flags |= BG_BLOCK_UNINIT;
        }
        if group == 0 {
            let used = FIRST_INO as u64;
            desc.free_inodes -= used;
            desc.itable_unused -= used;
            desc.used_dirs = 2;
            desc.flags &= !BG_INODE_UNINIT;
            let bitmap = prefix_bitmap(used, geo.inodes_per_group);
            desc.inode_bitmap_csum =
                crc32c(csum_seed, &bitmap[..(geo.inodes_per_group / 8) as usize]) as u16;
        }
        free_blocks_total += desc.free_blocks;
        let at = (group * DESC_BYTES) as usize;
        desc.encode(&mut gdt[at..at + DESC_BYTES as usize], csum_seed, group);
    }

    let sb = Superblock {
        geo,
        options,
        free_blocks: free_blocks_total,
        journal: &journal,
    };
    let write = |target: &mut dyn WriteAt, block: u64, data: &[u8]| {
        target.write_at(block * BLOCK_BYTES, data)
    };
    // Bitmaps and tables first, superblocks last: a half-written filesystem has no valid
    // primary superblock and is never mistaken for a finished one.
    for (block, bitmap) in &block_bitmaps {
        write(target, *block, bitmap)?;
    }
    write(
        target,
        geo.inode_bitmap(0),
        &prefix_bitmap(FIRST_INO as u64, geo.inodes_per_group),
    )?;
    write(target, geo.inode_table(0), &itable)?;
    write(target, geo.root_dir_block(), &root_block)?;
    write(target, geo.lost_found_block(), &lost_found_first)?;
    for i in 1..LOST_FOUND_BLOCKS {
        write(target, geo.lost_found_block() + i, &lost_found_empty)?;
    }
    write(
        target,
        geo.journal_block(),
        &journal_superblock(&geo, options),
    )?;
    for group in (1..geo.groups).filter(|&g| has_super(g)) {
        write(target, geo.group_start(group), &sb.encode(group))?;
        write(target, geo.group_start(group) + 1, &gdt)?;
    }
    write(target, 1, &gdt)?;
    let primary = sb.encode(0);
    // Block 0 holds 1024 bytes of boot area before the superblock: left as it is.
    target.write_at(1024, &primary[..1024])?;
    Ok(geo)
}

/// A one-block bitmap with bits `0..used` set and the padding
/// past `valid` set too, as ext4 requires for the tail of the last group.
fn prefix_bitmap(used: u64, valid: u64) -> Vec<u8> {
    let mut bitmap = vec![0u8; BLOCK_BYTES as usize];
    for bit in (0..used).chain(valid..BLOCK_BYTES * 8) {
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
    }
    bitmap
}

/// One 32-byte group descriptor, fields in disk order.
struct GroupDesc {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
    free_blocks: u64,
    free_inodes: u64,
    used_dirs: u16,
    flags: u16,
    block_bitmap_csum: u16,
    inode_bitmap_csum: u16,
    itable_unused: u64,
}

impl GroupDesc {
    fn encode(&self, out: &mut [u8], csum_seed: u32, group: u64) {
        put32(out, 0x00, self.block_bitmap as u32);
        put32(out, 0x04, self.inode_bitmap as u32);
        put32(out, 0x08, self.inode_table as u32);
        put16(out, 0x0c, self.free_blocks as u16);
        put16(out, 0x0e, self.free_inodes as u16);
        put16(out, 0x10, self.used_dirs);
        put16(out, 0x12, self.flags);
        put32(out, 0x14, 0); // exclude bitmap (snapshots, unused)
        put16(out, 0x18, self.block_bitmap_csum);
        put16(out, 0x1a, self.inode_bitmap_csum);
        put16(out, 0x1c, self.itable_unused as u16);
        put16(out, 0x1e, 0);
        let csum = crc32c(
            crc32c(csum_seed, &(group as u32).to_le_bytes()),
            &out[..DESC_BYTES as usize],
        );
        put16(out, 0x1e, csum as u16);
    }
}

struct Superblock<'a> {
    geo: Geometry,
    options: &'a Options,
    free_blocks: u64,
    journal: &'a [u8; INODE_BYTES as usize],
}

impl Superblock<'_> {
    /// The superblock as stored in `group` (backups record their group number).
    fn encode(&self, group: u64) -> Vec<u8> {
        let geo = &self.geo;
        let time = self.options.time;
        let mut sb = vec![0u8; BLOCK_BYTES as usize];
        let s = &mut sb[..1024];
        put32(s, 0x00, geo.inodes() as u32); // s_inodes_count
        put32(s, 0x04, geo.blocks as u32); // s_blocks_count_lo
        put32(s, 0x08, 0); // s_r_blocks_count_lo: every service runs as root anyway
        put32(s, 0x0c, self.free_blocks as u32); // s_free_blocks_count_lo
        put32(s, 0x10, (geo.inodes() - FIRST_INO as u64) as u32); // s_free_inodes_count
        put32(s, 0x14, 0); // s_first_data_block: 0 for 4 KiB blocks
        put32(s, 0x18, LOG_BLOCK_SIZE); // s_log_block_size
        put32(s, 0x1c, LOG_BLOCK_SIZE); // s_log_cluster_size
        put32(s, 0x20, BLOCKS_PER_GROUP as u32); // s_blocks_per_group
        put32(s, 0x24, BLOCKS_PER_GROUP as u32); // s_clusters_per_group
        put32(s, 0x28, geo.inodes_per_group as u32); // s_inodes_per_group
        put32(s, 0x30, time); // s_wtime
        put16(s, 0x36, 0xffff); // s_max_mnt_count: -1, no forced checks
        put16(s, 0x38, 0xef53); // s_magic
        put16(s, 0x3a, 1); // s_state: cleanly unmounted
        put16(s, 0x3c, 1); // s_errors: continue
        put32(s, 0x40, time); // s_lastcheck
        put32(s, 0x4c, 1); // s_rev_level: dynamic
        put32(s, 0x54, FIRST_INO); // s_first_ino
        put16(s, 0x58, INODE_BYTES as u16); // s_inode_size
        put16(s, 0x5a, group as u16); // s_block_group_nr
        put32(s, 0x5c, COMPAT_HAS_JOURNAL | COMPAT_DIR_INDEX);
        put32(
            s,
            0x60,
            INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_FLEX_BG,
        );
        put32(
            s,
            0x64,
            RO_COMPAT_SPARSE_SUPER
                | RO_COMPAT_LARGE_FILE
                | RO_COMPAT_HUGE_FILE
                | RO_COMPAT_DIR_NLINK
                | RO_COMPAT_EXTRA_ISIZE
                | RO_COMPAT_METADATA_CSUM,
        );
        s[0x68..0x78].copy_from_slice(&self.options.uuid); // s_uuid
        s[0x78..0x78 + self.options.label.len()].copy_from_slice(self.options.label.as_bytes());
        put32(s, 0xe0, JOURNAL_INO); // s_journal_inum
        s[0xec..0xfc].copy_from_slice(&self.options.hash_seed); // s_hash_seed
        s[0xfc] = 1; // s_def_hash_version: half_md4
        s[0xfd] = 1; // s_jnl_backup_type: s_jnl_blocks holds a copy of the journal's i_block
        put16(s, 0xfe, DESC_BYTES as u16); // s_desc_size
        put32(s, 0x108, time); // s_mkfs_time
                               // s_jnl_blocks: i_block[15], then i_size_high, then i_size.
        s[0x10c..0x10c + 60].copy_from_slice(&self.journal[0x28..0x28 + 60]);
        s[0x148..0x14c].copy_from_slice(&self.journal[0x6c..0x70]);
        s[0x14c..0x150].copy_from_slice(&self.journal[0x04..0x08]);
        put16(s, 0x15c, EXTRA_ISIZE); // s_min_extra_isize
        put16(s, 0x15e, EXTRA_ISIZE); // s_want_extra_isize
        put32(s, 0x160, 1); // s_flags: signed directory hash, fixed so every CPU agrees
        s[0x174] = LOG_GROUPS_PER_FLEX as u8; // s_log_groups_per_flex
        s[0x175] = 1; // s_checksum_type: crc32c
        put32(s, 0x268, LOST_FOUND_INO); // s_lpf_ino
        let csum = crc32c(!0, &s[..0x3fc]);
        put32(s, 0x3fc, csum); // s_checksum
        sb
    }
}

/// An inode with an in-inode extent tree mapping `blocks` blocks from `start`.
fn extent_inode(
    options: &Options,
    mode: u16,
    links: u16,
    size_bytes: u64,
    start: u64,
    blocks: u64,
) -> Result<[u8; 256]> {
    let extents = blocks.div_ceil(EXTENT_BLOCKS_MAX);
    ensure!(
        extents <= INLINE_EXTENTS_MAX,
        "ext4: {blocks} blocks need an extent tree"
    );
    let mut inode = [0u8; INODE_BYTES as usize];
    let t = options.time;
    put16(&mut inode, 0x00, mode); // i_mode
    put32(&mut inode, 0x04, size_bytes as u32); // i_size_lo
    for at in [0x08, 0x0c, 0x10] {
        put32(&mut inode, at, t); // i_atime, i_ctime, i_mtime
    }
    put16(&mut inode, 0x1a, links); // i_links_count
    put32(&mut inode, 0x1c, (blocks * (BLOCK_BYTES / 512)) as u32); // i_blocks_lo, 512-byte units
    put32(&mut inode, 0x20, INODE_FLAG_EXTENTS); // i_flags
                                                 // i_block: extent header, then the extents.
    put16(&mut inode, 0x28, 0xf30a); // eh_magic
    put16(&mut inode, 0x2a, extents as u16); // eh_entries
    put16(&mut inode, 0x2c, INLINE_EXTENTS_MAX as u16); // eh_max
    put16(&mut inode, 0x2e, 0); // eh_depth: leaves
    for i in 0..extents {
        let at = 0x34 + 12 * i as usize;
        let logical = i * EXTENT_BLOCKS_MAX;
        put32(&mut inode, at, logical as u32); // ee_block
        put16(
            &mut inode,
            at + 4,
            (blocks - logical).min(EXTENT_BLOCKS_MAX) as u16,
        ); // ee_len
        put16(&mut inode, at + 6, 0); // ee_start_hi
        put32(&mut inode, at + 8, (start + logical) as u32); // ee_start_lo
    }
    put32(&mut inode, 0x6c, (size_bytes >> 32) as u32); // i_size_high
    put16(&mut inode, 0x80, EXTRA_ISIZE); // i_extra_isize
    put32(&mut inode, 0x90, t); // i_crtime
    Ok(inode)
}

fn directory_inode(options: &Options, perm: u16, links: u16, start: u64, blocks: u64) -> [u8; 256] {
    extent_inode(
        options,
        S_IFDIR | perm,
        links,
        blocks * BLOCK_BYTES,
        start,
        blocks,
    )
    .expect("directories span a single extent")
}

fn journal_inode(options: &Options, start: u64, blocks: u64) -> Result<[u8; 256]> {
    extent_inode(
        options,
        S_IFREG | 0o600,
        1,
        blocks * BLOCK_BYTES,
        start,
        blocks,
    )
}

/// Fills in an inode's checksum (`metadata_csum`): crc32c over inode number, generation and
/// the inode with both checksum fields zero.
fn seal_inode(inode: &mut [u8; 256], csum_seed: u32, ino: u32) {
    let generation = u32::from_le_bytes(inode[0x64..0x68].try_into().unwrap());
    let seed = crc32c(
        crc32c(csum_seed, &ino.to_le_bytes()),
        &generation.to_le_bytes(),
    );
    put16(inode, 0x7c, 0);
    put16(inode, 0x82, 0);
    let csum = crc32c(seed, inode);
    put16(inode, 0x7c, csum as u16); // l_i_checksum_lo
    put16(inode, 0x82, (csum >> 16) as u16); // i_checksum_hi
}

/// A directory block holding `entries`, the last stretched to the checksum tail.
fn directory_block(csum_seed: u32, dir_ino: u32, entries: &[(u32, &[u8])]) -> Vec<u8> {
    const TAIL_BYTES: usize = 12;
    let mut block = vec![0u8; BLOCK_BYTES as usize];
    let end = BLOCK_BYTES as usize - TAIL_BYTES;
    if entries.is_empty() {
        put16(&mut block, 4, end as u16); // one unused entry covering the block
    }
    let mut at = 0;
    for (i, (ino, name)) in entries.iter().enumerate() {
        let len = if i + 1 == entries.len() {
            end - at
        } else {
            (8 + name.len()).next_multiple_of(4)
        };
        put32(&mut block, at, *ino); // inode
        put16(&mut block, at + 4, len as u16); // rec_len
        block[at + 6] = name.len() as u8; // name_len
        block[at + 7] = FT_DIR; // file_type
        block[at + 8..at + 8 + name.len()].copy_from_slice(name);
        at += len;
    }
    // The tail: a fake entry (inode 0, rec_len 12, name_len 0, type 0xde) with the checksum.
    put16(&mut block, end + 4, TAIL_BYTES as u16);
    block[end + 7] = 0xde;
    let seed = crc32c(
        crc32c(csum_seed, &dir_ino.to_le_bytes()),
        &0u32.to_le_bytes(),
    );
    let csum = crc32c(seed, &block[..end]);
    put32(&mut block, end + 8, csum);
    block
}

/// The jbd2 superblock (big-endian) for an empty internal journal.
fn journal_superblock(geo: &Geometry, options: &Options) -> Vec<u8> {
    let mut jsb = vec![0u8; BLOCK_BYTES as usize];
    let be = |buf: &mut [u8], at: usize, v: u32| buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    be(&mut jsb, 0x00, 0xc03b_3998); // h_magic
    be(&mut jsb, 0x04, 4); // h_blocktype: superblock v2
    be(&mut jsb, 0x0c, BLOCK_BYTES as u32); // s_blocksize
    be(&mut jsb, 0x10, geo.journal_blocks as u32); // s_maxlen
    be(&mut jsb, 0x14, 1); // s_first
                           // s_sequence: the journal's blocks are not zeroed, so start from a sequence number derived
                           // from the UUID rather than 1, so that stale blocks of an earlier filesystem cannot match.
    let sequence = u32::from_le_bytes(options.uuid[..4].try_into().unwrap()) >> 1 | 1;
    be(&mut jsb, 0x18, sequence);
    be(&mut jsb, 0x1c, 0); // s_start: empty, nothing to replay
    jsb[0x30..0x40].copy_from_slice(&options.uuid); // s_uuid
    be(&mut jsb, 0x40, 1); // s_nr_users
    jsb
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let with: Vec<u64> = (0..100).filter(|&g| has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn geometry_of_the_smallest_filesystem() {
        let geo = Geometry::for_size(SIZE_BYTES_MIN).unwrap();
        assert_eq!(
            (geo.blocks, geo.groups, geo.inodes_per_group),
            (4096, 1, 1024)
        );
        assert_eq!(geo.used_prefix(0), 1 + 1 + 2 + 64 + 1 + 4 + 1024);
    }

    #[test]
    fn a_sliver_of_a_last_group_is_dropped() {
        let size = (2 * BLOCKS_PER_GROUP + 10) * BLOCK_BYTES;
        let geo = Geometry::for_size(size).unwrap();
        assert_eq!((geo.blocks, geo.groups), (2 * BLOCKS_PER_GROUP, 2));
    }

    #[test]
    fn flex_metadata_stays_inside_its_first_group() {
        for size in [
            1u64 << 30,
            100 << 30,
            (17 * BLOCKS_PER_GROUP + 3000) * BLOCK_BYTES,
            2 << 40,
        ] {
            let geo = Geometry::for_size(size).unwrap();
            for group in (0..geo.groups).step_by(GROUPS_PER_FLEX as usize) {
                assert!(
                    geo.flex_meta_end(group) <= geo.group_start(group) + geo.group_blocks(group)
                );
            }
        }
    }

    #[test]
    fn refuses_sizes_out_of_range() {
        assert!(Geometry::for_size(SIZE_BYTES_MIN - 1).is_err());
        assert!(Geometry::for_size(SIZE_BYTES_MAX + BLOCK_BYTES).is_err());
    }
}
