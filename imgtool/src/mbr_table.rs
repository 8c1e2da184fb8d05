//! The MBR sector: the boot code with the table of slot files patched in, the disk
//! signature, and the four partitions of `boot::layout`, with their sizes on a disk.

use anyhow::{ensure, Context, Result};
use boot::layout::{self, Partition};

/// `part`'s size on a disk of `disk_bytes`, which mkimg has checked holds the layout.
pub(crate) fn part_size(part: &Partition, disk_bytes: u64) -> u64 {
    part.size_on(disk_bytes)
        .expect("disk size checked against the layout")
}

/// The MBR sector: boot code with its table, signature, the four partitions.
pub fn sector(signature: u32, disk_bytes: u64, table: &boot::mbr::Table) -> Result<Vec<u8>> {
    let mut header = mbrman::MBRHeader::new(signature.to_le_bytes());
    header.bootstrap_code = table.patch();
    let entries = [
        &mut header.partition_1,
        &mut header.partition_2,
        &mut header.partition_3,
        &mut header.partition_4,
    ];
    for (entry, part) in entries.into_iter().zip(layout::PARTITIONS) {
        let first = part.start_lba();
        let sectors = part_size(&part, disk_bytes) / layout::SECTOR_BYTES;
        *entry = mbrman::MBRPartitionEntry {
            boot: if part.active {
                mbrman::BOOT_ACTIVE
            } else {
                mbrman::BOOT_INACTIVE
            },
            first_chs: chs(first),
            sys: part.mbr_type,
            last_chs: chs(first + sectors - 1),
            starting_lba: first as u32,
            sectors: sectors as u32,
        };
    }
    let mut sector = std::io::Cursor::new(Vec::with_capacity(512));
    header
        .write_into(&mut sector)
        .context("cannot encode the MBR")?;
    let sector = sector.into_inner();
    ensure!(sector.len() == 512, "MBR encodes to {} bytes", sector.len());
    Ok(sector)
}

/// CHS address for the conventional 255 heads x 63 sectors geometry; past its reach, the
/// customary 1023/254/63 that tells firmware to use the LBA fields.
fn chs(lba: u64) -> mbrman::CHS {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return mbrman::CHS::new(1023, 254, 63);
    }
    mbrman::CHS::new(
        cylinder as u16,
        (lba / SECTORS % HEADS) as u8,
        (lba % SECTORS + 1) as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What mkimg writes is what admind checks before it writes to a disk.
    #[test]
    fn the_table_written_is_the_layout_admind_checks() {
        let table = boot::mbr::Table {
            kernel_lba: [4096, 8192],
            cmdline_lba: [2304, 2305],
        };
        let disk_bytes = 2 << 30;
        let mbr: [u8; 512] = sector(0x1234_5678, disk_bytes, &table)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(layout::check_table(&mbr), Ok(()));
        let mut moved = mbr;
        moved[layout::MBR_ENTRIES_OFFSET + 16 + 8] ^= 1; // root A's first sector
        assert_eq!(layout::check_table(&moved).map_err(|m| m.number), Err(2));
    }
}
