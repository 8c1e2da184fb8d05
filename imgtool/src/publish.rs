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
    let root_image = store_image(channel, &root.image, &mut report)?;
    let kernel_image = store_image(channel, &kernel, &mut report)?;

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
    write_whole(&channel.join(release::MANIFEST), signed.as_bytes())?;
    if let Some(keep) = options.keep {
        report.pruned = Some(prune(channel, keep)?);
    }
    Ok(report)
}

/// Stores `image`'s chunks and index in the channel; what the manifest says of it.
fn store_image(channel: &Path, image: &[u8], report: &mut Report) -> Result<Image> {
    let cut = crate::chunking::cut(image);
    for (range, sha256) in &cut {
        let path = channel.join(ChunkPath(sha256).to_string());
        report.chunks += 1;
        if path.exists() {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_whole(&path, &image[range.clone()])?;
        report.new_chunks += 1;
        report.new_bytes += range.len() as u64;
    }
    let index = crate::chunking::index(&cut);
    let index_sha: [u8; 32] = Sha256::digest(&index).into();
    let path = channel.join(IndexPath(&index_sha).to_string());
    std::fs::create_dir_all(channel.join(release::INDEXES))?;
    if !path.exists() {
        write_whole(&path, &index)?;
    }
    report.index_bytes += index.len() as u64;
    Ok(Image {
        bytes: image.len() as u64,
        sha256: Sha256::digest(image).into(),
        index: index_sha,
    })
}

/// Writes `bytes` to a temporary name beside `path`, syncs, renames it into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// The channel's releases, newest first: version and manifest text.
fn releases(channel: &Path) -> Result<Vec<(u64, String)>> {
    let dir = channel.join(release::RELEASES);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path().join(release::MANIFEST);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let version = release::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .manifest
            .version;
        out.push((version, text));
    }
    out.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(out)
}

fn newest_version(channel: &Path) -> Result<Option<u64>> {
    Ok(releases(channel)?.first().map(|r| r.0))
}

/// Keeps the newest `keep` releases (at least one) and every chunk and index they name;
/// removes the other releases, then the files nothing kept names.
pub fn prune(channel: &Path, keep: usize) -> Result<Pruned> {
    let all = releases(channel)?;
    let mut pruned = Pruned::default();
    let mut wanted = HashSet::new();
    for (i, (version, text)) in all.iter().enumerate() {
        if i >= keep.max(1) {
            let dir = channel.join(release::RELEASES).join(version.to_string());
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
            pruned.releases += 1;
            continue;
        }
        let manifest = release::parse(text)
            .map_err(|e| anyhow::anyhow!("release {version}: {e}"))?
            .manifest;
        for image in [manifest.kernel, manifest.root] {
            let index_path = channel.join(IndexPath(&image.index).to_string());
            let index = std::fs::read(&index_path).with_context(|| {
                format!(
                    "release {version} names {} but it cannot be read: not pruning",
                    index_path.display()
                )
            })?;
            let chunks = boot::chunks::index_chunks(&index).with_context(|| {
                format!("{} is not a chunk index: not pruning", index_path.display())
            })?;
            wanted.extend(chunks.map(|c| channel.join(ChunkPath(&c.sha256).to_string())));
            wanted.insert(index_path);
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
