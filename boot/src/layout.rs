//! Disk layout: one MBR, four primary partitions, every start aligned to 1 MiB.
//!
//! ```text
//! offset      size       part  type  what
//! 0           1 MiB      -     -     MBR (boot code, disk signature, table) and a gap
//! 1 MiB       256 MiB    1     0x0c  /boot  FAT32, active: each slot's kernel and command line (`slot`), config.txt
//! 257 MiB     256 MiB    2     0x83  root A SquashFS: /bin/init and the programs
//! 513 MiB     256 MiB    3     0x83  root B SquashFS: the other slot for A/B updates
//! 769 MiB     the rest   4     0x83  /data  ext4: persistent state, never touched by updates
//! ```
//!
//! The gap before partition 1 holds the MBR code's second stage (sector 16 or 24, `mbr`)
//! and the boot record's two copies (sectors 512 and 1536, `record`).
//!
//! Partitions are numbered from 1, as Linux and `PARTUUID=<signature>-<NN>` number them.

/// Bytes per logical sector: MBR addresses everything in these units.
pub const SECTOR_BYTES: u64 = 512;
/// One mebibyte; every partition starts on a multiple of it.
pub const MIB: u64 = 1 << 20;

/// One partition of the fixed layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Partition number as Linux counts it (1-based): `/dev/vda2`, `PARTUUID=...-02`.
    pub number: u8,
    /// Offset of the first byte from the start of the disk.
    pub start_bytes: u64,
    /// Size in bytes; `None` means "to the end of the disk".
    pub size_bytes: Option<u64>,
    /// MBR partition type byte.
    pub mbr_type: u8,
    /// Whether the MBR marks it active (bootable); the Raspberry Pi firmware and BIOSes look for it.
    pub active: bool,
    /// Mount point on the device, for messages and docs.
    pub name: &'static str,
}

impl Partition {
    /// First sector (LBA) of the partition.
    pub const fn start_lba(&self) -> u64 {
        self.start_bytes / SECTOR_BYTES
    }

    /// Size of the partition on a disk of `disk_bytes`, or `None` if the disk is too small to
    /// hold it at all.
    pub const fn size_on(&self, disk_bytes: u64) -> Option<u64> {
        match self.size_bytes {
            Some(size) => {
                if self.start_bytes + size <= disk_bytes {
                    Some(size)
                } else {
                    None
                }
            }
            None => {
                // Whole sectors only: a partial last sector cannot be addressed by the MBR.
                let end = disk_bytes / SECTOR_BYTES * SECTOR_BYTES;
                if end > self.start_bytes {
                    Some(end - self.start_bytes)
                } else {
                    None
                }
            }
        }
    }
}

/// MBR type byte for FAT32 with LBA addressing.
pub const TYPE_FAT32_LBA: u8 = 0x0c;
/// MBR type byte for "Linux".
pub const TYPE_LINUX: u8 = 0x83;

/// Partition 1: the FAT32 boot partition the firmware or our MBR code reads the kernel from.
pub const BOOT: Partition = Partition {
    number: 1,
    start_bytes: MIB,
    size_bytes: Some(256 * MIB),
    mbr_type: TYPE_FAT32_LBA,
    active: true,
    name: "/boot",
};

/// Partition 2: root slot A.
pub const ROOT_A: Partition = Partition {
    number: 2,
    start_bytes: 257 * MIB,
    size_bytes: Some(256 * MIB),
    mbr_type: TYPE_LINUX,
    active: false,
    name: "root A",
};

/// Partition 3: root slot B.
pub const ROOT_B: Partition = Partition {
    number: 3,
    start_bytes: 513 * MIB,
    size_bytes: Some(256 * MIB),
    mbr_type: TYPE_LINUX,
    active: false,
    name: "root B",
};

/// Partition 4: persistent data, the rest of the disk.
pub const DATA: Partition = Partition {
    number: 4,
    start_bytes: 769 * MIB,
    size_bytes: None,
    mbr_type: TYPE_LINUX,
    active: false,
    name: "/data",
};

/// All partitions in table order.
pub const PARTITIONS: [Partition; 4] = [BOOT, ROOT_A, ROOT_B, DATA];

/// The smallest /data partition the layout accepts (the ext4 formatter's lower bound).
pub const DATA_MIN_BYTES: u64 = 16 * MIB;

/// The smallest disk that holds the whole layout.
pub const DISK_MIN_BYTES: u64 = DATA.start_bytes + DATA_MIN_BYTES;

/// Largest disk an MBR can describe with 512-byte sectors (32-bit LBA and sector count).
pub const DISK_MAX_BYTES: u64 = (u32::MAX as u64) * SECTOR_BYTES;

/// Where the MBR's four 16-byte partition entries start in sector 0 (imgtool writes them
/// through `mbrman`).
pub const MBR_ENTRIES_OFFSET: usize = 446;

/// A partition entry in a disk's MBR that does not say what this layout says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Misplaced {
    pub number: u8,
    /// First sector and sector count, as the entry says.
    pub start_lba: u32,
    pub sectors: u32,
}

/// Checks a disk's MBR (its sector 0) against this layout: /boot and both roots where and
/// as large as the layout has them, /data where it starts. What writes to a disk checks
/// this first, so that a disk laid out otherwise is never written by our offsets.
pub fn check_table(mbr: &[u8; 512]) -> Result<(), Misplaced> {
    for part in PARTITIONS {
        let at = MBR_ENTRIES_OFFSET + 16 * usize::from(part.number - 1);
        let field = |o: usize| {
            u32::from_le_bytes([
                mbr[at + o],
                mbr[at + o + 1],
                mbr[at + o + 2],
                mbr[at + o + 3],
            ])
        };
        let (start_lba, sectors) = (field(8), field(12));
        let size_ok = match part.size_bytes {
            Some(size) => u64::from(sectors) * SECTOR_BYTES == size,
            None => sectors > 0,
        };
        if u64::from(start_lba) != part.start_lba() || !size_ok {
            return Err(Misplaced {
                number: part.number,
                start_lba,
                sectors,
            });
        }
    }
    Ok(())
}

/// One of the two root slots. The record, the boot status and `/status` carry it as its
/// partition number (2 or 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// The slot partition `number` holds, if it is a root.
    pub const fn of_partition(number: u8) -> Option<Slot> {
        match number {
            2 => Some(Slot::A),
            3 => Some(Slot::B),
            _ => None,
        }
    }

    pub const fn partition(self) -> Partition {
        match self {
            Slot::A => ROOT_A,
            Slot::B => ROOT_B,
        }
    }

    pub const fn number(self) -> u8 {
        self.partition().number
    }

    /// Its place in per-slot tables (`crate::slot`'s file names, `crate::mbr::Table`).
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

/// Writes `PARTUUID` for partition `number` of a disk with MBR signature `signature` into `out`
/// (`"1a2b3c4d-02"`, 11 ASCII bytes), as the kernel's `root=PARTUUID=` expects it.
pub fn partuuid(signature: u32, number: u8, out: &mut [u8; 11]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out[..8].iter_mut().enumerate() {
        *byte = HEX[((signature >> (28 - 4 * i)) & 0xf) as usize];
    }
    out[8] = b'-';
    out[9] = HEX[(number / 16 % 16) as usize];
    out[10] = HEX[(number % 16) as usize];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_mib_aligned_and_back_to_back() {
        let mut next = MIB;
        for p in PARTITIONS {
            assert_eq!(p.start_bytes % MIB, 0, "{} not aligned", p.name);
            assert_eq!(p.start_bytes, next, "{} leaves a gap", p.name);
            next = p.start_bytes + p.size_bytes.unwrap_or(0);
        }
    }

    #[test]
    fn data_takes_the_rest_in_whole_sectors() {
        assert_eq!(DATA.size_on(DISK_MIN_BYTES), Some(DATA_MIN_BYTES));
        assert_eq!(
            DATA.size_on(DISK_MIN_BYTES + 700),
            Some(DATA_MIN_BYTES + 512)
        );
        assert_eq!(DATA.size_on(DATA.start_bytes), None);
        assert_eq!(ROOT_B.size_on(ROOT_B.start_bytes + 1), None);
    }

    #[test]
    fn partuuid_formats_like_the_kernel() {
        let mut out = [0u8; 11];
        partuuid(0x1a2b_3c4d, 2, &mut out);
        assert_eq!(&out, b"1a2b3c4d-02");
        partuuid(0x0000_00ff, 4, &mut out);
        assert_eq!(&out, b"000000ff-04");
    }
}
