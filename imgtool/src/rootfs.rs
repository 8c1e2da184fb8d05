//! A root filesystem image (SquashFS 4.0, gzip or LZ4, pure Rust through backhand): /bin with init
//! and the programs, the mount points init needs, and /etc.
//!
//! Every node is root-owned and carries the same timestamp, so the same inputs give the same
//! bytes.

use anyhow::{ensure, Context, Result};
use backhand::kind::Kind;
use backhand::{FilesystemWriter, NodeHeader};
use std::io::Cursor;
use std::path::PathBuf;

use crate::config::Compression;
use crate::squashfs_blocks;

/// SquashFS data block size, mksquashfs's default: larger blocks compress a little better
/// but make every small read on the device decompress more.
const BLOCK_BYTES: u32 = 1 << 17;

/// Directories the device mounts filesystems on, or writes to.
pub const MOUNT_POINTS: [&str; 7] = ["boot", "data", "dev", "proc", "sys", "tmp", "run"];

/// An executable for /bin.
#[derive(Clone, Debug)]
pub struct Program {
    pub name: String,
    pub path: PathBuf,
}

/// A file for /etc (path relative to the root, e.g. `etc/hostname`).
#[derive(Clone, Debug)]
pub struct EtcFile {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u16,
}

/// Everything that goes into a root image.
pub struct Contents<'a> {
    /// The program installed as /bin/init.
    pub init: &'a Program,
    pub programs: &'a [Program],
    pub etc: &'a [EtcFile],
    /// Symlinks, `(path, target)`, e.g. `("etc/resolv.conf", "/run/resolv.conf")`.
    pub symlinks: &'a [(&'a str, &'a str)],
    pub time_unix: u32,
    pub compression: Compression,
}

/// Builds the SquashFS image in memory and refuses one larger than `limit_bytes`.
pub fn build(contents: &Contents<'_>, limit_bytes: u64) -> Result<Vec<u8>> {
    let t = contents.time_unix;
    let dir = NodeHeader::new(0o755, 0, 0, t);
    let exe = NodeHeader::new(0o755, 0, 0, t);
    let programs: Vec<(String, Vec<u8>)> = std::iter::once(("init", contents.init))
        .chain(contents.programs.iter().map(|p| (p.name.as_str(), p)))
        .map(|(name, p)| {
            let data = std::fs::read(&p.path)
                .with_context(|| format!("cannot read {}", p.path.display()))?;
            Ok((name.to_string(), data))
        })
        .collect::<Result<_>>()?;
    let mut fs = FilesystemWriter::default();
    let hook = squashfs_blocks::hook(contents.compression);
    fs.set_kind(Kind::new_v4(hook));
    fs.set_time(t);
    fs.set_root_mode(0o755);
    fs.set_compressor(squashfs_blocks::superblock_settings(contents.compression)?);
    fs.set_block_size(BLOCK_BYTES);
    let files: Vec<&[u8]> = programs.iter().map(|(_, data)| data.as_slice()).collect();
    // Held until `fs.write` below has taken every block it stores.
    let _stored = squashfs_blocks::compress_ahead(hook, &files, BLOCK_BYTES)?;

    for name in ["bin", "etc"].iter().chain(MOUNT_POINTS.iter()) {
        fs.push_dir(name, dir)?;
    }
    // The kernel opens /dev/console on the root for init's stdin/stdout/stderr, before
    // init can mount devtmpfs: without this node PID 1 starts with no output at all.
    fs.push_char_device(5 << 8 | 1, "dev/console", NodeHeader::new(0o600, 0, 0, t))?;
    for (name, data) in &programs {
        fs.push_file(Cursor::new(data.as_slice()), format!("bin/{name}"), exe)?;
    }
    for file in contents.etc {
        if let Some((parent, _)) = file.path.rsplit_once('/') {
            fs.push_dir_all(parent, dir)?;
        }
        let header = NodeHeader::new(file.mode, 0, 0, t);
        fs.push_file(Cursor::new(file.data.clone()), &file.path, header)?;
    }
    for (path, target) in contents.symlinks {
        fs.push_symlink(*target, *path, NodeHeader::new(0o777, 0, 0, t))?;
    }

    let mut image = Cursor::new(Vec::new());
    fs.write(&mut image)
        .context("cannot build the SquashFS root image")?;
    let image = image.into_inner();
    ensure!(
        image.len() as u64 <= limit_bytes,
        "the root image is {} but a root partition holds {}; drop or shrink programs (largest: {})",
        crate::size::human(image.len() as u64),
        crate::size::human(limit_bytes),
        largest_program(contents)
    );
    Ok(image)
}

fn largest_program(contents: &Contents<'_>) -> String {
    std::iter::once(contents.init)
        .chain(contents.programs)
        .filter_map(|p| Some((std::fs::metadata(&p.path).ok()?.len(), &p.name)))
        .max()
        .map(|(len, name)| format!("{name}, {}", crate::size::human(len)))
        .unwrap_or_default()
}
