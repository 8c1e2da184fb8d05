//! Finding a file on the FAT32 boot partition by its 8.3 names, so the device can rewrite
//! sectors of it in place, never through the FAT driver: a one-sector file of the root
//! directory (the Raspberry Pi's `config.txt`, `tryboot.txt`), or the key table inside the
//! UEFI boot program (`crate::uefi_keys`). Reads through a caller's sector reader; no
//! allocation.

/// Bytes per sector this reader accepts (what mkimg writes).
const SECTOR: usize = 512;
/// Longest directory chain followed (bounds the walk on a damaged FAT).
const DIR_CLUSTERS_MAX: u32 = 1024;

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

/// Called with each sector of a file ([`each_file_sector`]): the reader, the sector's
/// number; returns whether to go on.
pub type EachSector<'a, E> = dyn FnMut(&mut ReadSector<'_, E>, u64) -> Result<bool, E> + 'a;

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
    let Some(volume) = Volume::open(read, sectors)? else {
        return Ok(None);
    };
    let Some(entry) = volume.find_entry(read, volume.root, name, false)? else {
        return Ok(None);
    };
    let Some(first_sector) = volume.cluster_sector(entry.first_cluster) else {
        return Ok(None);
    };
    let file_sectors = u64::from(entry.bytes).div_ceil(SECTOR as u64).max(1);
    Ok(volume
        .inside(first_sector, file_sectors)
        .then_some(RootFile {
            first_sector,
            bytes: entry.bytes,
        }))
}

/// Calls `each` with the number of every sector of the file at `path` (8.3 names, from
/// the root directory; the last names a file, the others directories), in file order,
/// until it returns `false`. `Ok(false)`: no such file, or not a FAT32 volume as
/// [`find_in_root`] takes it; the file's cluster chain is followed, every sector inside
/// the partition.
pub fn each_file_sector<E>(
    read: &mut ReadSector<'_, E>,
    path: &[[u8; 11]],
    sectors: u64,
    each: &mut EachSector<'_, E>,
) -> Result<bool, E> {
    let Some(volume) = Volume::open(read, sectors)? else {
        return Ok(false);
    };
    let Some((file, dirs)) = path.split_last() else {
        return Ok(false);
    };
    let mut cluster = volume.root;
    for dir in dirs {
        match volume.find_entry(read, cluster, dir, true)? {
            Some(entry) => cluster = entry.first_cluster,
            None => return Ok(false),
        }
    }
    let Some(entry) = volume.find_entry(read, cluster, file, false)? else {
        return Ok(false);
    };
    let mut left = u64::from(entry.bytes).div_ceil(SECTOR as u64);
    let mut cluster = entry.first_cluster;
    while left > 0 {
        let Some(first) = volume.cluster_sector(cluster) else {
            return Ok(false);
        };
        for sector in first..first + volume.per_cluster.min(left) {
            if !each(read, sector)? {
                return Ok(true);
            }
        }
        left = left.saturating_sub(volume.per_cluster);
        match volume.next_cluster(read, cluster)? {
            Some(next) => cluster = next,
            None if left == 0 => break,
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// What the boot sector says, checked against the partition's size.
struct Volume {
    sectors: u64,
    reserved: u64,
    per_cluster: u64,
    data_start: u64,
    root: u32,
}

/// A directory entry found: where the file or directory starts, and its length.
struct Entry {
    first_cluster: u32,
    bytes: u32,
}

fn u16_at(s: &[u8; SECTOR], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([s[at], s[at + 1]]))
}

fn u32_at(s: &[u8; SECTOR], at: usize) -> u32 {
    u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

impl Volume {
    fn open<E>(read: &mut ReadSector<'_, E>, sectors: u64) -> Result<Option<Volume>, E> {
        let mut sector = [0u8; SECTOR];
        if sectors == 0 {
            return Ok(None);
        }
        read(0, &mut sector)?;
        let per_cluster = u64::from(sector[0x0d]);
        if u16_at(&sector, 0x0b) != SECTOR as u64
            || per_cluster == 0
            || sector[510..] != [0x55, 0xaa]
        {
            return Ok(None);
        }
        let reserved = u16_at(&sector, 0x0e);
        Ok(Some(Volume {
            sectors,
            reserved,
            per_cluster,
            data_start: reserved + u64::from(sector[0x10]) * u64::from(u32_at(&sector, 0x24)),
            root: u32_at(&sector, 0x2c),
        }))
    }

    /// `count` sectors from `first` lie inside the partition.
    fn inside(&self, first: u64, count: u64) -> bool {
        first
            .checked_add(count)
            .is_some_and(|end| end <= self.sectors)
    }

    /// The first sector of a data cluster that lies wholly inside the partition.
    fn cluster_sector(&self, cluster: u32) -> Option<u64> {
        if !(2..0x0fff_fff8).contains(&cluster) {
            return None;
        }
        let first = self.data_start + u64::from(cluster - 2) * self.per_cluster;
        self.inside(first, self.per_cluster).then_some(first)
    }

    /// The cluster after `cluster` in its chain, from the first FAT; `None` at the end.
    fn next_cluster<E>(
        &self,
        read: &mut ReadSector<'_, E>,
        cluster: u32,
    ) -> Result<Option<u32>, E> {
        let at = u64::from(cluster) * 4;
        let fat_sector = self.reserved + at / SECTOR as u64;
        if !self.inside(fat_sector, 1) {
            return Ok(None);
        }
        let mut sector = [0u8; SECTOR];
        read(fat_sector, &mut sector)?;
        let next = u32_at(&sector, (at % SECTOR as u64) as usize) & 0x0fff_ffff;
        Ok(self.cluster_sector(next).map(|_| next))
    }

    /// The entry named `name` (a directory if `dir`, else a file) in the directory whose
    /// chain starts at `cluster`.
    fn find_entry<E>(
        &self,
        read: &mut ReadSector<'_, E>,
        mut cluster: u32,
        name: &[u8; 11],
        dir: bool,
    ) -> Result<Option<Entry>, E> {
        const LONG_NAME: u8 = 0x0f;
        const VOLUME: u8 = 0x08;
        const DIRECTORY: u8 = 0x10;
        let mut sector = [0u8; SECTOR];
        for _ in 0..DIR_CLUSTERS_MAX {
            let Some(first) = self.cluster_sector(cluster) else {
                return Ok(None);
            };
            for i in 0..self.per_cluster {
                read(first + i, &mut sector)?;
                for entry in sector.chunks_exact(32) {
                    match entry[0] {
                        0x00 => return Ok(None), // end of the directory
                        0xe5 => continue,        // deleted
                        _ => {}
                    }
                    let is_dir = entry[11] & DIRECTORY != 0;
                    if entry[11] == LONG_NAME
                        || entry[11] & VOLUME != 0
                        || is_dir != dir
                        || entry[..11] != name[..]
                    {
                        continue;
                    }
                    let first_cluster = u32::from(u16::from_le_bytes([entry[20], entry[21]])) << 16
                        | u32::from(u16::from_le_bytes([entry[26], entry[27]]));
                    if first_cluster < 2 {
                        return Ok(None); // an empty file has no sectors
                    }
                    return Ok(Some(Entry {
                        first_cluster,
                        bytes: u32::from_le_bytes([entry[28], entry[29], entry[30], entry[31]]),
                    }));
                }
            }
            match self.next_cluster(read, cluster)? {
                Some(next) => cluster = next,
                None => return Ok(None),
            }
        }
        Ok(None)
    }
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

    /// Directories down to a file whose clusters are not contiguous: every sector, in
    /// file order; the walk stops when asked.
    #[test]
    fn walks_a_path_and_a_file_chain() {
        let mut disk = [[0u8; SECTOR]; 10];
        let boot = &mut disk[0];
        boot[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
        boot[0x0d] = 1;
        boot[0x0e..0x10].copy_from_slice(&1u16.to_le_bytes());
        boot[0x10] = 1;
        boot[0x24..0x28].copy_from_slice(&1u32.to_le_bytes());
        boot[0x2c..0x30].copy_from_slice(&2u32.to_le_bytes());
        boot[510] = 0x55;
        boot[511] = 0xaa;
        // FAT: 2, 3, 4 end; the file: 5 -> 7 -> end. Cluster N is sector N here.
        for (cluster, next) in [
            (2u32, 0x0fff_ffffu32),
            (3, 0x0fff_ffff),
            (4, 0x0fff_ffff),
            (5, 7),
            (7, 0x0fff_ffff),
        ] {
            let at = cluster as usize * 4;
            disk[1][at..at + 4].copy_from_slice(&next.to_le_bytes());
        }
        let entry =
            |sector: &mut [u8; SECTOR], name: &[u8; 11], attr: u8, cluster: u16, bytes: u32| {
                sector[..11].copy_from_slice(name);
                sector[11] = attr;
                sector[26..28].copy_from_slice(&cluster.to_le_bytes());
                sector[28..32].copy_from_slice(&bytes.to_le_bytes());
            };
        entry(&mut disk[2], b"EFI        ", 0x10, 3, 0);
        entry(&mut disk[3], b"BOOT       ", 0x10, 4, 0);
        // A directory of the file's name first: only the file counts.
        entry(&mut disk[4], b"BOOTX64 EFI", 0x10, 9, 0);
        let mut second = [0u8; SECTOR];
        entry(&mut second, b"BOOTX64 EFI", 0x20, 5, 1000);
        disk[4][32..64].copy_from_slice(&second[..32]);
        let path = [*b"EFI        ", *b"BOOT       ", *b"BOOTX64 EFI"];
        let walk = |disk: &[[u8; SECTOR]; 10], path: &[[u8; 11]], stop_after: usize| {
            let mut read = |s: u64, buf: &mut [u8; SECTOR]| -> Result<(), ()> {
                *buf = *disk.get(s as usize).ok_or(())?;
                Ok(())
            };
            let mut seen = std::vec::Vec::new();
            let found = each_file_sector(&mut read, path, 10, &mut |_, sector| {
                seen.push(sector);
                Ok(seen.len() < stop_after)
            });
            (found, seen)
        };
        assert_eq!(walk(&disk, &path, 9), (Ok(true), std::vec![5, 7]));
        assert_eq!(walk(&disk, &path, 1), (Ok(true), std::vec![5]));
        assert_eq!(
            walk(&disk, &path[1..], 9),
            (Ok(false), std::vec![]),
            "not in the root"
        );
        let mut broken = disk;
        broken[1][20..24].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            walk(&broken, &path, 9),
            (Ok(false), std::vec![5]),
            "chain ends early"
        );
    }
}
