//! The FAT32 boot partition: formatted and filled with fatfs, then read back with a small
//! FAT reader of our own to find where each file landed, because the x86 MBR code loads the
//! kernel and cmdline by sector number and can only do so when they are contiguous.
//!
//! Subdirectories (UEFI wants `EFI/BOOT/BOOTX64.EFI`) are repaired after fatfs 0.3.6 writes
//! them: it gives their `.` and `..` entries long-name entries, which fsck.vfat rejects.

use crate::output::Region;
use anyhow::{bail, ensure, Context, Result};
use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions};
use std::io::{Read, Seek, SeekFrom, Write};

const SECTOR_BYTES: u64 = 512;
/// 2 KiB clusters keep a 256 MiB volume above FAT32's 65525-cluster minimum (4 KiB would
/// silently make it FAT16) while keeping the two FATs at 512 KiB each.
const CLUSTER_BYTES: u32 = 2048;
/// Longest cluster chain followed before giving up (bounds the reader on a corrupt FAT).
const CHAIN_CLUSTERS_MAX: u64 = 1 << 22;

/// One file for the boot partition.
pub struct BootFile<'a> {
    /// Path from the partition's root, directories separated by '/'.
    pub name: &'a str,
    pub data: &'a [u8],
}

/// Where a file's bytes sit, in 512-byte sectors from the start of the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub first_sector: u64,
    pub size_bytes: u64,
    /// Whether the clusters follow each other on disk.
    pub contiguous: bool,
}

/// Formats the region as FAT32 and writes `files` into the root directory.
pub fn write(
    mut region: Region<'_>,
    volume_id: u32,
    time_unix: u32,
    hidden_sectors: u32,
    files: &[BootFile<'_>],
    fragment_file: Option<usize>,
) -> Result<()> {
    let options = FormatVolumeOptions::new()
        .fat_type(FatType::Fat32)
        .bytes_per_cluster(CLUSTER_BYTES)
        .volume_id(volume_id)
        .volume_label(*b"BOOT       ");
    fatfs::format_volume(&mut region, options).context("cannot format the boot partition")?;
    patch_hidden_sectors(&mut region, hidden_sectors)?;
    region.seek(SeekFrom::Start(0))?;
    let clock: &'static FixedClock = Box::leak(Box::new(FixedClock(fat_time(time_unix))));
    let fs = FileSystem::new(&mut region, FsOptions::new().time_provider(clock))
        .context("cannot open the freshly formatted boot partition")?;
    ensure!(
        fs.fat_type() == FatType::Fat32,
        "boot partition came out as {:?}, not FAT32",
        fs.fat_type()
    );
    let mut dirs: Vec<&str> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut dir = fs.root_dir();
        let mut leaf = file.name;
        while let Some((parent, rest)) = leaf.split_once('/') {
            dir = dir.create_dir(parent)?;
            let path = &file.name[..file.name.len() - rest.len() - 1];
            if !dirs.contains(&path) {
                dirs.push(path);
            }
            leaf = rest;
        }
        let mut out = dir.create_file(leaf)?;
        out.truncate()?;
        let mut data = file.data;
        if fragment_file == Some(i) {
            // Tests only: one cluster of the file, then another file's cluster, then the
            // rest, so the file's chain jumps.
            let first = data.len().min(CLUSTER_BYTES as usize);
            out.write_all(&data[..first])?;
            out.flush()?;
            fs.root_dir().create_file("pin")?.write_all(&[1])?;
            data = &data[first..];
        }
        out.write_all(data).map_err(|e| {
            if e.kind() == std::io::ErrorKind::Other || e.kind() == std::io::ErrorKind::WriteZero {
                anyhow::anyhow!(
                    "{} ({} bytes) does not fit in the 256 MiB boot partition",
                    file.name,
                    file.data.len()
                )
            } else {
                anyhow::Error::new(e)
                    .context(format!("cannot write {} to the boot partition", file.name))
            }
        })?;
        out.flush()?;
    }
    let free_clusters = fs.stats()?.free_clusters();
    fs.unmount().context("cannot finish the boot partition")?;
    patch_free_count(&mut region, free_clusters)?;
    // Parents come before their children in `dirs`, as they were created.
    for dir in dirs {
        repair_dot_entries(&mut region, dir)?;
    }
    Ok(())
}

/// Rewrites the first cluster of directory `path` so that it starts with plain `.` and `..`
/// entries (`..` is cluster 0 when the parent is the root), as FAT requires, keeping every
/// other entry in order.
fn repair_dot_entries(region: &mut Region<'_>, path: &str) -> Result<()> {
    let bpb = Bpb::read(region)?;
    let (parent_cluster, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (lookup(region, &bpb, parent)?.first_cluster, name),
        None => (bpb.root_cluster, path),
    };
    let this = lookup_in(region, &bpb, parent_cluster, name)?;
    ensure!(
        chain(region, &bpb, this.first_cluster)?.len() == 1,
        "boot partition directory {path} holds more entries than one cluster; keep it small"
    );
    let at = bpb.cluster_sector(this.first_cluster) * SECTOR_BYTES;
    let mut data = vec![0u8; bpb.cluster_bytes() as usize];
    region.seek(SeekFrom::Start(at))?;
    region.read_exact(&mut data)?;
    let entries: Vec<&[u8]> = data.chunks_exact(32).take_while(|e| e[0] != 0).collect();
    let is_dot = |e: &[u8]| &e[..11] == b".          " || &e[..11] == b"..         ";
    let mut kept: Vec<[u8; 32]> = Vec::new();
    let mut dots: Vec<[u8; 32]> = Vec::new();
    let mut pending_long: Vec<[u8; 32]> = Vec::new();
    for entry in entries {
        let entry: [u8; 32] = entry.try_into().expect("chunks of 32");
        if entry[11] == 0x0f && entry[0] != 0xe5 {
            pending_long.push(entry);
        } else if is_dot(&entry) {
            pending_long.clear(); // the stray long names fatfs gave the dot entries
            dots.push(entry);
        } else {
            kept.append(&mut pending_long);
            kept.push(entry);
        }
    }
    ensure!(
        dots.len() == 2 && &dots[0][..2] == b". " && &dots[1][..2] == b"..",
        "boot partition directory {path} has no '.' and '..' entries"
    );
    let parent_field = if parent_cluster == bpb.root_cluster {
        0
    } else {
        parent_cluster
    };
    dots[1][20..22].copy_from_slice(&((parent_field >> 16) as u16).to_le_bytes());
    dots[1][26..28].copy_from_slice(&(parent_field as u16).to_le_bytes());
    let mut fixed = vec![0u8; data.len()];
    for (slot, entry) in dots.iter().chain(kept.iter()).enumerate() {
        fixed[32 * slot..32 * slot + 32].copy_from_slice(entry);
    }
    region.seek(SeekFrom::Start(at))?;
    region.write_all(&fixed)?;
    Ok(())
}

/// fatfs leaves the FSInfo free-cluster count "unknown", which fsck.vfat reports; we know it.
fn patch_free_count(region: &mut Region<'_>, free_clusters: u32) -> Result<()> {
    let mut bpb = [0u8; 512];
    region.seek(SeekFrom::Start(0))?;
    region.read_exact(&mut bpb)?;
    let fs_info_sector = u16::from_le_bytes([bpb[0x30], bpb[0x31]]) as u64;
    let mut fs_info = [0u8; 512];
    region.seek(SeekFrom::Start(fs_info_sector * SECTOR_BYTES))?;
    region.read_exact(&mut fs_info)?;
    ensure!(
        &fs_info[0..4] == b"RRaA" && &fs_info[484..488] == b"rrAa",
        "boot partition has no FSInfo sector"
    );
    fs_info[488..492].copy_from_slice(&free_clusters.to_le_bytes());
    region.seek(SeekFrom::Start(fs_info_sector * SECTOR_BYTES))?;
    region.write_all(&fs_info)?;
    Ok(())
}

/// fatfs always writes 0 hidden sectors; firmware that reads the BPB expects the partition's
/// LBA there. Patch the boot sector and its backup (sector 6 on FAT32).
fn patch_hidden_sectors(region: &mut Region<'_>, hidden_sectors: u32) -> Result<()> {
    for sector in [0u64, 6] {
        region.seek(SeekFrom::Start(sector * SECTOR_BYTES + 0x1c))?;
        region.write_all(&hidden_sectors.to_le_bytes())?;
    }
    Ok(())
}

#[derive(Debug)]
struct FixedClock(fatfs::DateTime);

impl fatfs::TimeProvider for FixedClock {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// Converts Unix time to a FAT timestamp (UTC), clamped to FAT's 1980..=2107 range.
fn fat_time(unix: u32) -> fatfs::DateTime {
    let days = unix as i64 / 86400;
    let secs = unix as i64 % 86400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u16;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u16;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    let (date, time) = if year < 1980 {
        (
            fatfs::Date {
                year: 1980,
                month: 1,
                day: 1,
            },
            fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        )
    } else {
        let time = fatfs::Time {
            hour: (secs / 3600) as u16,
            min: (secs / 60 % 60) as u16,
            sec: (secs % 60) as u16,
            millis: 0,
        };
        (
            fatfs::Date {
                year: year.min(2107),
                month,
                day,
            },
            time,
        )
    };
    fatfs::DateTime { date, time }
}

/// The fields of the FAT32 boot sector this reader needs.
struct Bpb {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    reserved_sectors: u64,
    fats: u64,
    sectors_per_fat: u64,
    root_cluster: u32,
}

impl Bpb {
    fn read<R: Read + Seek>(region: &mut R) -> Result<Bpb> {
        let mut sector = [0u8; 512];
        region.seek(SeekFrom::Start(0))?;
        region.read_exact(&mut sector)?;
        let u16_at = |at: usize| u16::from_le_bytes([sector[at], sector[at + 1]]) as u64;
        let u32_at = |at: usize| u32::from_le_bytes(sector[at..at + 4].try_into().unwrap());
        let bpb = Bpb {
            bytes_per_sector: u16_at(0x0b),
            sectors_per_cluster: sector[0x0d] as u64,
            reserved_sectors: u16_at(0x0e),
            fats: sector[0x10] as u64,
            sectors_per_fat: u32_at(0x24) as u64,
            root_cluster: u32_at(0x2c),
        };
        ensure!(
            bpb.bytes_per_sector == SECTOR_BYTES
                && bpb.sectors_per_cluster > 0
                && sector[510..512] == [0x55, 0xaa],
            "boot partition has no FAT32 boot sector"
        );
        Ok(bpb)
    }

    fn cluster_bytes(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }

    fn cluster_sector(&self, cluster: u32) -> u64 {
        self.reserved_sectors
            + self.fats * self.sectors_per_fat
            + (cluster as u64 - 2) * self.sectors_per_cluster
    }
}

/// Follows a cluster chain; returns the clusters in order.
fn chain<R: Read + Seek>(region: &mut R, bpb: &Bpb, first: u32) -> Result<Vec<u32>> {
    let mut clusters = Vec::new();
    let mut cluster = first;
    while (2..0x0fff_fff8).contains(&cluster) {
        ensure!(
            (clusters.len() as u64) < CHAIN_CLUSTERS_MAX,
            "cluster chain from {first} does not end"
        );
        clusters.push(cluster);
        let mut entry = [0u8; 4];
        region.seek(SeekFrom::Start(
            bpb.reserved_sectors * SECTOR_BYTES + cluster as u64 * 4,
        ))?;
        region.read_exact(&mut entry)?;
        cluster = u32::from_le_bytes(entry) & 0x0fff_ffff;
    }
    Ok(clusters)
}

/// Finds file `path` (case-insensitive, long or 8.3 names, directories separated by '/')
/// and says where its data lies.
pub fn find<R: Read + Seek>(region: &mut R, path: &str) -> Result<Extent> {
    let bpb = Bpb::read(region)?;
    let entry = lookup(region, &bpb, path)?;
    let clusters = chain(region, &bpb, entry.first_cluster)?;
    let contiguous = clusters.windows(2).all(|w| w[1] == w[0] + 1);
    ensure!(
        clusters.len() as u64 * bpb.cluster_bytes() >= entry.size_bytes,
        "{path}: cluster chain shorter than the file"
    );
    let first_sector = if clusters.is_empty() {
        0
    } else {
        bpb.cluster_sector(entry.first_cluster)
    };
    Ok(Extent {
        first_sector,
        size_bytes: entry.size_bytes,
        contiguous,
    })
}

/// The bytes of file `path` (as [`find`] takes it), following its cluster chain.
pub fn read_file<R: Read + Seek>(region: &mut R, path: &str) -> Result<Vec<u8>> {
    let bpb = Bpb::read(region)?;
    let entry = lookup(region, &bpb, path)?;
    let mut data = Vec::with_capacity(entry.size_bytes as usize);
    for cluster in chain(region, &bpb, entry.first_cluster)? {
        let want = (entry.size_bytes - data.len() as u64).min(bpb.cluster_bytes()) as usize;
        if want == 0 {
            break;
        }
        let at = data.len();
        data.resize(at + want, 0);
        region.seek(SeekFrom::Start(bpb.cluster_sector(cluster) * SECTOR_BYTES))?;
        region.read_exact(&mut data[at..])?;
    }
    ensure!(
        data.len() as u64 == entry.size_bytes,
        "{path}: cluster chain shorter than the file"
    );
    Ok(data)
}

/// A directory entry's fields this reader uses.
struct Entry {
    first_cluster: u32,
    size_bytes: u64,
}

/// The entry at `path` from the root directory.
fn lookup<R: Read + Seek>(region: &mut R, bpb: &Bpb, path: &str) -> Result<Entry> {
    let mut dir = bpb.root_cluster;
    let mut names = path.split('/').peekable();
    while let Some(name) = names.next() {
        let entry = lookup_in(region, bpb, dir, name)?;
        if names.peek().is_none() {
            return Ok(entry);
        }
        dir = entry.first_cluster;
    }
    bail!("{path} is not a path in the boot partition")
}

/// The entry named `name` (case-insensitive, long or 8.3 name) in the directory starting at
/// cluster `dir`; volume labels and `.`/`..` are skipped.
fn lookup_in<R: Read + Seek>(region: &mut R, bpb: &Bpb, dir: u32, name: &str) -> Result<Entry> {
    let mut long_name: Vec<u16> = Vec::new();
    for cluster in chain(region, bpb, dir)? {
        let mut data = vec![0u8; bpb.cluster_bytes() as usize];
        region.seek(SeekFrom::Start(bpb.cluster_sector(cluster) * SECTOR_BYTES))?;
        region.read_exact(&mut data)?;
        for entry in data.chunks_exact(32) {
            match (entry[0], entry[11]) {
                (0x00, _) => bail!("{name} is not in the boot partition"),
                (0xe5, _) => long_name.clear(),
                (_, 0x0f) => {
                    // Long-name pieces come last piece first: prepend each.
                    let piece: Vec<u16> = [1..11, 14..26, 28..32]
                        .into_iter()
                        .flat_map(|r| {
                            entry[r]
                                .chunks_exact(2)
                                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        })
                        .take_while(|&c| c != 0 && c != 0xffff)
                        .collect();
                    long_name.splice(0..0, piece);
                }
                _ => {
                    let short = short_name(entry);
                    let long = String::from_utf16_lossy(&long_name);
                    long_name.clear();
                    const VOLUME_LABEL: u8 = 0x08;
                    if entry[11] & VOLUME_LABEL != 0
                        || short.starts_with('.')
                        || !(short.eq_ignore_ascii_case(name) || long.eq_ignore_ascii_case(name))
                    {
                        continue;
                    }
                    let first_cluster = (u16::from_le_bytes([entry[20], entry[21]]) as u32) << 16
                        | u16::from_le_bytes([entry[26], entry[27]]) as u32;
                    let size_bytes = u32::from_le_bytes(entry[28..32].try_into().unwrap()) as u64;
                    return Ok(Entry {
                        first_cluster,
                        size_bytes,
                    });
                }
            }
        }
    }
    bail!("{name} is not in the boot partition")
}

fn short_name(entry: &[u8]) -> String {
    let base = String::from_utf8_lossy(&entry[0..8]).trim_end().to_string();
    let ext = String::from_utf8_lossy(&entry[8..11])
        .trim_end()
        .to_string();
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::fat_time;

    #[test]
    fn converts_unix_time() {
        let t = fat_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        assert_eq!(fat_time(0).date.year, 1980);
        assert_eq!(fat_time(951_782_400).date.month, 2); // 2000-02-29
        assert_eq!(fat_time(951_782_400).date.day, 29);
    }
}
