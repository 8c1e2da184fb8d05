//! Finding a file in the root directory of the FAT32 boot partition by its 8.3 name, so the
//! device can rewrite a one-sector file (the Raspberry Pi's `config.txt`, `tryboot.txt`) in
//! place by sector, never through the FAT driver. Reads through a caller's sector reader; no
//! allocation.

/// Bytes per sector this reader accepts (what mkimg writes).
const SECTOR: usize = 512;
/// Longest root directory chain followed (bounds the walk on a damaged FAT).
const ROOT_CLUSTERS_MAX: u32 = 1024;

/// Where a file's first bytes lie, in sectors from the start of the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootFile {
    pub first_sector: u64,
    pub bytes: u32,
}

/// The 8.3 directory form of `name` (`config.txt` -> `CONFIG  TXT`); `None` if it has no
/// such form.
pub fn short_name(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !name.is_ascii() {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    out.make_ascii_uppercase();
    Some(out)
}

/// Reads one sector of the partition: its number, the buffer.
pub type ReadSector<'a, E> = dyn FnMut(u64, &mut [u8; SECTOR]) -> Result<(), E> + 'a;

/// Finds the file whose 8.3 name is `name` in the root directory of a partition of
/// `sectors` sectors. `read(sector, buf)` reads one sector of the partition. `Ok(None)`: no
/// such file, not a FAT32 volume of 512-byte sectors, or a volume whose numbers point
/// outside the partition (every sector read and every sector of the file found lie inside
/// it, so a caller that rewrites the file cannot be sent into another partition).
pub fn find_in_root<E>(
    read: &mut ReadSector<'_, E>,
    name: &[u8; 11],
    sectors: u64,
) -> Result<Option<RootFile>, E> {
    let mut sector = [0u8; SECTOR];
    if sectors == 0 {
        return Ok(None);
    }
    read(0, &mut sector)?;
    let u16_at = |s: &[u8; SECTOR], at: usize| u64::from(u16::from_le_bytes([s[at], s[at + 1]]));
    let u32_at =
        |s: &[u8; SECTOR], at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    let per_cluster = u64::from(sector[0x0d]);
    if u16_at(&sector, 0x0b) != SECTOR as u64 || per_cluster == 0 || sector[510..] != [0x55, 0xaa] {
        return Ok(None);
    }
    let reserved = u16_at(&sector, 0x0e);
    let data_start = reserved + u64::from(sector[0x10]) * u64::from(u32_at(&sector, 0x24));
    let cluster_sector = |cluster: u32| data_start + u64::from(cluster - 2) * per_cluster;
    // A cluster of `count` sectors at `first` lies inside the partition.
    let inside =
        |first: u64, count: u64| first.checked_add(count).is_some_and(|end| end <= sectors);
    let mut cluster = u32_at(&sector, 0x2c);
    for _ in 0..ROOT_CLUSTERS_MAX {
        if !(2..0x0fff_fff8).contains(&cluster) || !inside(cluster_sector(cluster), per_cluster) {
            return Ok(None);
        }
        for i in 0..per_cluster {
            read(cluster_sector(cluster) + i, &mut sector)?;
            for entry in sector.chunks_exact(32) {
                match entry[0] {
                    0x00 => return Ok(None), // end of the directory
                    0xe5 => continue,        // deleted
                    _ => {}
                }
                const LONG_NAME: u8 = 0x0f;
                const VOLUME_OR_DIR: u8 = 0x18;
                if entry[11] == LONG_NAME
                    || entry[11] & VOLUME_OR_DIR != 0
                    || entry[..11] != name[..]
                {
                    continue;
                }
                let first = u32::from(u16::from_le_bytes([entry[20], entry[21]])) << 16
                    | u32::from(u16::from_le_bytes([entry[26], entry[27]]));
                if first < 2 {
                    return Ok(None); // an empty file has no sectors to rewrite
                }
                let file = RootFile {
                    first_sector: cluster_sector(first),
                    bytes: u32::from_le_bytes([entry[28], entry[29], entry[30], entry[31]]),
                };
                let file_sectors = u64::from(file.bytes).div_ceil(SECTOR as u64).max(1);
                return Ok(inside(file.first_sector, file_sectors).then_some(file));
            }
        }
        // The next cluster of the root directory, from the first FAT.
        let at = u64::from(cluster) * 4;
        if !inside(reserved + at / SECTOR as u64, 1) {
            return Ok(None);
        }
        read(reserved + at / SECTOR as u64, &mut sector)?;
        cluster = u32_at(&sector, (at % SECTOR as u64) as usize) & 0x0fff_ffff;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_name("config.txt"), Some(*b"CONFIG  TXT"));
        assert_eq!(short_name("tryboot.txt"), Some(*b"TRYBOOT TXT"));
        assert_eq!(short_name("slot-a-vmlinuz"), None);
        assert_eq!(short_name(".txt"), None);
    }

    /// A tiny FAT32-shaped volume: boot sector, one FAT sector, a root directory spanning
    /// two one-sector clusters (the file's entry in the second), the file's cluster.
    #[test]
    fn follows_the_root_chain_to_the_entry() {
        let mut disk = [[0u8; SECTOR]; 8];
        let boot = &mut disk[0];
        boot[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
        boot[0x0d] = 1; // sectors per cluster
        boot[0x0e..0x10].copy_from_slice(&1u16.to_le_bytes()); // reserved
        boot[0x10] = 1; // FATs
        boot[0x24..0x28].copy_from_slice(&1u32.to_le_bytes()); // sectors per FAT
        boot[0x2c..0x30].copy_from_slice(&2u32.to_le_bytes()); // root cluster
        boot[510] = 0x55;
        boot[511] = 0xaa;
        // FAT: cluster 2 -> 3 -> end.
        disk[1][8..12].copy_from_slice(&3u32.to_le_bytes());
        disk[1][12..16].copy_from_slice(&0x0fff_ffffu32.to_le_bytes());
        // Root cluster 2 (sector 2): full of other entries; cluster 3 (sector 3): ours.
        for e in disk[2].chunks_exact_mut(32) {
            e[..11].copy_from_slice(b"OTHER   BIN");
        }
        let entry = &mut disk[3][..32];
        entry[..11].copy_from_slice(b"CONFIG  TXT");
        entry[26..28].copy_from_slice(&5u16.to_le_bytes());
        entry[28..32].copy_from_slice(&512u32.to_le_bytes());
        let found = |disk: &[[u8; SECTOR]; 8], sectors: u64, name: &[u8; 11]| {
            let mut read = |s: u64, buf: &mut [u8; SECTOR]| -> Result<(), ()> {
                *buf = *disk.get(s as usize).ok_or(())?;
                Ok(())
            };
            find_in_root(&mut read, name, sectors)
        };
        assert_eq!(
            found(&disk, 8, b"CONFIG  TXT"),
            Ok(Some(RootFile {
                first_sector: 2 + 3,
                bytes: 512
            }))
        );
        assert_eq!(found(&disk, 8, b"TRYBOOT TXT"), Ok(None));
        // Numbers that point outside the partition find nothing (and read nothing there).
        assert_eq!(
            found(&disk, 5, b"CONFIG  TXT"),
            Ok(None),
            "file past the end"
        );
        assert_eq!(
            found(&disk, 3, b"CONFIG  TXT"),
            Ok(None),
            "root chain past the end"
        );
        let mut far = disk;
        far[3][26..28].copy_from_slice(&0xfff0u16.to_le_bytes());
        far[3][20..22].copy_from_slice(&0x0fffu16.to_le_bytes());
        assert_eq!(
            found(&far, 8, b"CONFIG  TXT"),
            Ok(None),
            "file cluster far away"
        );
        let mut long = disk;
        long[3][28..32].copy_from_slice(&(4 * 512u32).to_le_bytes());
        assert_eq!(
            found(&long, 8, b"CONFIG  TXT"),
            Ok(None),
            "file runs past the end"
        );
        let mut blank = |_: u64, buf: &mut [u8; SECTOR]| -> Result<(), ()> {
            *buf = [0; SECTOR];
            Ok(())
        };
        assert_eq!(find_in_root(&mut blank, b"CONFIG  TXT", 8), Ok(None));
    }
}
