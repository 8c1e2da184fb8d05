//! The UEFI boot program's keys (`boot::uefi_keys`) follow the committed root's trust file
//! (`boot::seal::TRUST_PATH`): once a root commits, the program boots what that root's
//! admind would arm, so a key rotation reaches the program with the push that carries it.
//! The table's copies are rewritten one sector each, in place, where /boot's FAT says the
//! program is (`boot::fat32`), never through the FAT driver.

use crate::fault::{fault, Fault, Kind};
use boot::layout;
use boot::uefi_keys::{self, Keys};
use std::fs::File;
use std::os::unix::fs::FileExt;

const SECTOR: usize = layout::SECTOR_BYTES as usize;

/// The program's path on /boot for this machine, in 8.3 names.
const PROGRAM: [[u8; 11]; 3] = [
    *b"EFI        ",
    *b"BOOT       ",
    if cfg!(target_arch = "aarch64") {
        *b"BOOTAA64EFI"
    } else {
        *b"BOOTX64 EFI"
    },
];

/// Both copies of the table as the disk holds them, and where (byte offsets on the disk).
type Copies = ([[u8; SECTOR]; 2], [u64; 2]);

/// The program is read this far, at most, looking for its table (it is some 70 KiB).
const PROGRAM_SECTORS_MAX: u64 = 2048;

/// The table's copies; `None` when /boot holds no UEFI boot program with a table (a
/// BIOS-only image, a Pi), or its FAT puts the copies where admind will not write: in
/// one place, or in a slot's kernel or command line.
fn copies(disk: &File) -> Result<Option<Copies>, Fault> {
    let base = layout::BOOT.start_bytes;
    let sectors = layout::BOOT.size_bytes.unwrap_or(0) / layout::SECTOR_BYTES;
    let apart = (uefi_keys::COPY_DISTANCE / SECTOR) as u64;
    let mut found: Vec<([u8; SECTOR], u64)> = Vec::new();
    let (mut index, mut first) = (0u64, None);
    let mut read = |sector: u64, buf: &mut [u8; SECTOR]| {
        disk.read_exact_at(buf, base + sector * layout::SECTOR_BYTES)
    };
    boot::fat32::each_file_sector(&mut read, &PROGRAM, sectors, &mut |read, sector| {
        // The first copy, then the sector `apart` further in the file: the second.
        if first.is_none() || Some(index) == first.map(|f| f + apart) {
            let mut buf = [0u8; SECTOR];
            read(sector, &mut buf)?;
            if uefi_keys::is_copy(&buf) {
                first = first.or(Some(index));
                found.push((buf, base + sector * layout::SECTOR_BYTES));
            } else if first.is_some() {
                return Ok(false);
            }
        }
        index += 1;
        Ok(found.len() < 2 && index < PROGRAM_SECTORS_MAX)
    })?;
    let [(a, at_a), (b, at_b)] = found.as_slice() else {
        return Ok(None);
    };
    let mut mbr = [0u8; SECTOR];
    disk.read_exact_at(&mut mbr, 0)?;
    let table = boot::mbr::Table::read(&mbr)
        .ok_or_else(|| fault(Kind::Unavailable, "the MBR holds no table of slot files"))?;
    let misplaced = at_a == at_b
        || [at_a, at_b]
            .iter()
            .any(|&&at| table.overlaps_slot_files(at, layout::SECTOR_BYTES));
    if misplaced {
        return Err(fault(
            Kind::Failed,
            "/boot's FAT puts the UEFI boot program's key table in one place, or inside a slot's kernel or command line; its keys were not changed",
        ));
    }
    Ok(Some(([*a, *b], [*at_a, *at_b])))
}

/// The keys the program holds now; `None`: no program with a table, or both copies damaged.
pub fn held(disk: &File) -> Result<Option<Keys>, Fault> {
    Ok(copies(disk)?.and_then(|(c, _)| uefi_keys::newest([&c[0], &c[1]]).map(|(_, k)| k)))
}

/// Makes the program hold `keys`: one sector over the older (or a damaged) copy, synced.
/// `Ok(false)`: it already does, or there is no program.
pub fn hold(disk: &File, keys: &Keys) -> Result<bool, Fault> {
    let Some((copies, places)) = copies(disk)? else {
        return Ok(false);
    };
    let Some((copy, sector)) = uefi_keys::next_write([&copies[0], &copies[1]], keys) else {
        return Ok(false);
    };
    disk.write_all_at(&sector, places[copy])?;
    disk.sync_data()?;
    Ok(true)
}
