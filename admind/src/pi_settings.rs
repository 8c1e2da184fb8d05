//! The Raspberry Pi's slot choice: its boot partition's `config.txt` and `tryboot.txt`
//! (`boot::rpi`), rewritten one sector each, in place, where /boot's FAT says they are.

use crate::fault::{fault, Fault, Kind};
use boot::layout;
use boot::mbr::Table;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// A sector, as buffers size it.
const SECTOR: usize = layout::SECTOR_BYTES as usize;

/// On a Raspberry Pi (its boot partition holds `config.txt` and `tryboot.txt`, format in
/// `boot::rpi`), points config.txt at the committed slot and tryboot.txt at the other, one
/// sector each, in place. Other machines have neither file: nothing to do. After a commit it
/// is written after the record (a power cut between the two boots the old slot, never a
/// loop); after a boot partition update it puts back what the new files' defaults undid.
pub fn point(disk: &File, committed: boot::layout::Slot) -> Result<(), Fault> {
    let base = layout::BOOT.start_bytes;
    let mut places = Vec::new();
    for (name, content) in boot::rpi::files_for(committed) {
        match find_boot_file(disk, name)? {
            Some(file) if file.bytes as usize == content.len() => {
                places.push((file.first_sector, content))
            }
            Some(_) => {
                return Err(fault(
                    Kind::Failed,
                    format!("/boot/{name} is not one sector; the Pi's slot choice was not changed"),
                ))
            }
            None => return Ok(()),
        }
    }
    // Never into a slot's kernel or command line, wherever the boot partition's FAT says
    // the files are: that would change a slot after its trailer (and seal) were written.
    let mut mbr = [0u8; SECTOR];
    disk.read_exact_at(&mut mbr, 0)?;
    let table = Table::read(&mbr).ok_or_else(|| {
        fault(
            Kind::Unavailable,
            "the MBR holds no table of slot files; the Pi's slot choice was not changed",
        )
    })?;
    for (sector, _) in &places {
        let at = base + sector * layout::SECTOR_BYTES;
        if table.overlaps_slot_files(at, layout::SECTOR_BYTES) {
            return Err(fault(Kind::Failed,
                "/boot's FAT puts config.txt or tryboot.txt inside a slot's kernel or command line; the Pi's slot choice was not changed",
            ));
        }
    }
    for (sector, content) in places {
        disk.write_all_at(&content, base + sector * layout::SECTOR_BYTES)?;
    }
    disk.sync_data()?;
    Ok(())
}

/// Where file `name` of /boot's root directory starts (`boot::fat32`), if it is there.
pub(crate) fn find_boot_file(
    disk: &File,
    name: &str,
) -> Result<Option<boot::fat32::RootFile>, Fault> {
    let Some(short) = boot::fat32::short_name(name) else {
        return Ok(None);
    };
    let base = layout::BOOT.start_bytes;
    let mut read = |sector: u64, buf: &mut [u8; SECTOR]| {
        disk.read_exact_at(buf, base + sector * layout::SECTOR_BYTES)
    };
    let sectors = layout::BOOT.size_bytes.unwrap_or(0) / layout::SECTOR_BYTES;
    Ok(boot::fat32::find_in_root(&mut read, &short, sectors)?)
}
