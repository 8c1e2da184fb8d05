//! `imgtool publish`: a signed release written into a channel folder (`boot::release`),
//! ready for any static web server or object store to serve; and pruning old releases.
//!
//! The root and the kernel go in as content-defined chunks (`boot::chunks`), each file
//! named by its SHA-256 and written once: a release with one program changed adds only
//! that program's chunks and the tables after it. Every file is written under a temporary
//! name and renamed into place, chunks and indexes before the manifests that name them,
//! the channel's `manifest` last: a reader never sees a release that is not whole.

use crate::config::Plan;
use crate::instance::Instance;
use anyhow::{bail, Context, Result};
use boot::encoding::Base64;
use boot::release::{self, ChunkPath, Image, IndexPath, Manifest, Slot};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub struct Options {
    pub channel: PathBuf,
    /// Percent of devices that should take the release.
    pub rollout: u8,
    /// After publishing, keep this many newest releases and remove the rest.
    pub keep: Option<usize>,
}

/// What a publish wrote, for its report.
#[derive(Debug, Default)]
pub struct Report {
    pub version: u64,
    pub root_bytes: u64,
    pub kernel_bytes: u64,
    pub chunks: usize,
    /// Chunks (and their bytes) the channel did not hold yet.
    pub new_chunks: usize,
    pub new_bytes: u64,
    /// Both indexes' bytes.
    pub index_bytes: u64,
    pub pruned: Option<Pruned>,
}

#[derive(Debug, Default)]
pub struct Pruned {
    pub releases: usize,
    pub files: usize,
    pub bytes: u64,
}

pub fn publish(plan: &Plan, instance: &Instance, options: &Options) -> Result<Report> {
    let version = crate::instance::seal_version()?;
    let channel = &options.channel;
    let _lock = lock(channel)?;
    if let Some(newest) = newest_version(channel)? {
        if version <= newest {
            bail!("{} already holds release {newest}; this one would be {version}, which devices would refuse as not newer (its version is SOURCE_DATE_EPOCH, else the time now)", channel.display());
        }
    }
    let root = crate::root_image::build(plan, instance)?;
    let kernel = crate::boot_partition::read_kernel(plan.kernel.as_deref(), instance.arch)?;
    let mut report = Report {
        version,
        root_bytes: root.image.len() as u64,
        kernel_bytes: kernel.len() as u64,
        ..Report::default()
    };
    let mut dirs = HashSet::new();
    let root_image = store_image(channel, &root.image, &mut report, &mut dirs)?;
    let kernel_image = store_image(channel, &kernel, &mut report, &mut dirs)?;
    // The chunks' and indexes' names, and their folders' in theirs, are on the disk
    // before a manifest names them.
    dirs.insert(channel.join(release::CHUNKS));
    dirs.insert(channel.to_path_buf());
    for dir in &dirs {
        sync_dir(dir)?;
    }

    let mut cmdlines = Vec::new();
    for partition in [2u8, 3] {
        let line = crate::boot_partition::cmdline(
            instance.arch,
            instance.disk_signature,
            partition,
            &root.verity,
            &plan.kernel_args,
        )?;
        let build = crate::mkimg::slot_id(root.part(), &kernel, &line).build;
        let seal = instance.seal(&build, version, None)?;
        cmdlines.push((line, build, Base64(&seal.encode()).to_string()));
    }
    let slot = |i: usize| Slot {
        build: cmdlines[i].1,
        seal: &cmdlines[i].2,
        cmdline: cmdlines[i].0.trim_end_matches('\n'),
    };
    let manifest = Manifest {
        version,
        arch: instance.arch.name(),
        rollout: options.rollout,
        signer: instance.signer_id()?,
        kernel: kernel_image,
        root: root_image,
        slots: [slot(0), slot(1)],
    };
    let text = manifest.to_string();
    let signature = instance.sign_release(text.as_bytes())?;
    let signed = format!("{text}signature {}\n", Base64(&signature));
    let release_dir = channel.join(release::RELEASES).join(version.to_string());
    std::fs::create_dir_all(&release_dir)
        .with_context(|| format!("cannot create {}", release_dir.display()))?;
    write_whole(&release_dir.join(release::MANIFEST), signed.as_bytes())?;
    sync_dir(&release_dir)?;
    sync_dir(&channel.join(release::RELEASES))?;
    write_whole(&channel.join(release::MANIFEST), signed.as_bytes())?;
    sync_dir(channel)?;
    if let Some(keep) = options.keep {
        report.pruned = Some(prune(channel, keep)?);
    }
    Ok(report)
}

/// Stores `image`'s chunks and index in the channel, adding the folders it wrote into to
/// `dirs`; what the manifest says of it.
fn store_image(
    channel: &Path,
    image: &[u8],
    report: &mut Report,
    dirs: &mut HashSet<PathBuf>,
) -> Result<Image> {
    let cut = crate::chunking::cut(image);
    for (range, sha256) in &cut {
        let path = channel.join(ChunkPath(sha256).to_string());
        report.chunks += 1;
        // Kept if it holds what its name says (a damaged one is written again).
        // Its folder is synced either way: a chunk a crashed publish left may not be yet.
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dirs.insert(dir.to_path_buf());
        }
        if std::fs::read(&path).is_ok_and(|b| <[u8; 32]>::from(Sha256::digest(&b)) == *sha256) {
            continue;
        }
        write_whole(&path, &image[range.clone()])?;
        report.new_chunks += 1;
        report.new_bytes += range.len() as u64;
    }
    let index = crate::chunking::index(&cut);
    let index_sha: [u8; 32] = Sha256::digest(&index).into();
    let path = channel.join(IndexPath(&index_sha).to_string());
    std::fs::create_dir_all(channel.join(release::INDEXES))?;
    if std::fs::read(&path).ok().as_deref() != Some(&index[..]) {
        write_whole(&path, &index)?;
        dirs.insert(channel.join(release::INDEXES));
    }
    report.index_bytes += index.len() as u64;
    Ok(Image {
        bytes: image.len() as u64,
        sha256: Sha256::digest(image).into(),
        index: index_sha,
    })
}

/// Writes `bytes` to a temporary name of this process beside `path`, syncs, renames it
/// into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension(format!("partial-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::File::create_new(&temp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// One publish or prune at a time per channel: a prune must see every release a publish
/// is writing. Held until dropped.
fn lock(channel: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(channel)
        .with_context(|| format!("cannot create {}", channel.display()))?;
    let path = channel.join(".publish.lock");
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another imgtool publish is writing to {} (it holds {}); try again when it has finished",
            channel.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// The channel's releases, newest first: version, folder and manifest text.
fn releases(channel: &Path) -> Result<Vec<(u64, PathBuf, String)>> {
    let dir = channel.join(release::RELEASES);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let dir = entry?.path();
        let path = dir.join(release::MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // A folder a publish made and never finished: nothing names its files.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let version = release::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .manifest
            .version;
        out.push((version, dir, text));
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(out)
}

fn newest_version(channel: &Path) -> Result<Option<u64>> {
    Ok(releases(channel)?.first().map(|r| r.0))
}

/// The files `manifest` (a manifest's text) names: its indexes and their chunks.
fn named_files(channel: &Path, manifest: &str, wanted: &mut HashSet<PathBuf>) -> Result<()> {
    let manifest = release::parse(manifest)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .manifest;
    for image in [manifest.kernel, manifest.root] {
        let index_path = channel.join(IndexPath(&image.index).to_string());
        let index = std::fs::read(&index_path).with_context(|| {
            format!(
                "release {} names {} but it cannot be read: not pruning",
                manifest.version,
                index_path.display()
            )
        })?;
        let chunks = boot::chunks::index_chunks(&index).with_context(|| {
            format!("{} is not a chunk index: not pruning", index_path.display())
        })?;
        wanted.extend(chunks.map(|c| channel.join(ChunkPath(&c.sha256).to_string())));
        wanted.insert(index_path);
    }
    Ok(())
}

/// Keeps the newest `keep` releases (at least one), the one the channel's manifest
/// names, and every chunk and index they name; removes the other releases, then the files
/// nothing kept names. The caller holds the channel's [`lock`].
fn prune(channel: &Path, keep: usize) -> Result<Pruned> {
    let all = releases(channel)?;
    let mut wanted = HashSet::new();
    // What devices poll stays whole, whatever it names.
    let top = channel.join(release::MANIFEST);
    match std::fs::read_to_string(&top) {
        Ok(text) => named_files(channel, &text, &mut wanted)
            .with_context(|| format!("{}", top.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", top.display())),
    }
    for (_, _, text) in all.iter().take(keep.max(1)) {
        named_files(channel, text, &mut wanted)?;
    }
    let mut pruned = Pruned::default();
    for (_, dir, _) in all.iter().skip(keep.max(1)) {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        pruned.releases += 1;
    }
    // What a publish that died left (the lock says none is running): release folders
    // without a manifest, and manifests never renamed into place.
    let kept: HashSet<&PathBuf> = all.iter().map(|r| &r.1).collect();
    for entry in std::fs::read_dir(channel.join(release::RELEASES))? {
        let dir = entry?.path();
        if dir.is_dir() && !kept.contains(&dir) && !dir.join(release::MANIFEST).exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
            pruned.files += 1;
        }
    }
    for entry in std::fs::read_dir(channel)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&format!("{}.partial-", release::MANIFEST)) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            pruned.files += 1;
        }
    }
    let mut files = Vec::new();
    for dir in [
        channel.join(release::INDEXES),
        channel.join(release::CHUNKS),
    ] {
        collect_files(&dir, &mut files)?;
    }
    for file in files.into_iter().filter(|f| !wanted.contains(f)) {
        pruned.bytes += file.metadata().map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        pruned.files += 1;
    }
    Ok(pruned)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_files(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}
