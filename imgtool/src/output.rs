//! Where an image is written: a new sparse file (written beside its final name and renamed
//! into place only when complete) or a block device (written in place, MBR last).

use crate::ext4::WriteAt;
use anyhow::{bail, Context, Result};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An image being written. Dropping it before [`Output::finish`] removes a partial file.
pub struct Output {
    file: File,
    size_bytes: u64,
    kind: Kind,
    /// For a new sparse file: the byte ranges written so far. Zeros written where nothing
    /// was written before are skipped, since the file already reads as zero there; this
    /// keeps formatters' zero-filling (fatfs clears both FATs) from allocating space.
    written: Option<RefCell<Written>>,
}

/// Disjoint written ranges, start -> end.
#[derive(Default)]
struct Written(BTreeMap<u64, u64>);

impl Written {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.0
            .range(..end)
            .next_back()
            .is_some_and(|(_, &e)| e > start)
    }

    fn add(&mut self, mut start: u64, mut end: u64) {
        // Merge with every range touching [start, end).
        while let Some((&s, &e)) = self
            .0
            .range(..=end)
            .next_back()
            .filter(|(_, &e)| e >= start)
        {
            self.0.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.0.insert(start, end);
    }
}

enum Kind {
    File {
        temp: PathBuf,
        path: PathBuf,
        finished: bool,
    },
    Device {
        path: PathBuf,
    },
}

impl Output {
    /// Opens `path` for an image of `size_bytes` (required for files; for a block device it
    /// defaults to the device's size and may not exceed it).
    pub fn open(path: &Path, size_bytes: Option<u64>) -> Result<Output> {
        let meta = std::fs::metadata(path).ok();
        if meta
            .as_ref()
            .is_some_and(|m| m.file_type().is_block_device())
        {
            return Self::open_device(path, size_bytes);
        }
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            bail!(
                "target {} is a directory; name an image file or a block device",
                path.display()
            );
        }
        let size_bytes = size_bytes.context("an image file needs a size (--size, e.g. 2G)")?;
        let name = path
            .file_name()
            .with_context(|| format!("target {} names no file", path.display()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = dir.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)
            .with_context(|| {
                format!(
                    "cannot create the image in {}: choose a writable target",
                    dir.display()
                )
            })?;
        let output = Output {
            file,
            size_bytes,
            written: Some(RefCell::default()),
            kind: Kind::File {
                temp,
                path: path.to_path_buf(),
                finished: false,
            },
        };
        // set_len only sets the size: the file stays sparse until ranges are written.
        output.file.set_len(size_bytes).with_context(|| {
            format!(
                "cannot size {} to {size_bytes} bytes (is the filesystem full or limited?)",
                path.display()
            )
        })?;
        Ok(output)
    }

    fn open_device(path: &Path, size_bytes: Option<u64>) -> Result<Output> {
        // O_EXCL on a block device fails with EBUSY while it (or a partition) is mounted.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_o_excl())
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::EBUSY) {
                    anyhow::anyhow!("{} is in use (mounted?); unmount it first", path.display())
                } else {
                    anyhow::Error::new(e)
                        .context(format!("cannot open {} for writing", path.display()))
                }
            })?;
        let device_bytes =
            block_device_size(&file).with_context(|| format!("cannot size {}", path.display()))?;
        let size_bytes = match size_bytes {
            Some(s) if s > device_bytes => bail!(
                "--size {} exceeds {} ({} bytes)",
                crate::size::human(s),
                path.display(),
                device_bytes
            ),
            Some(s) => s,
            None => device_bytes,
        };
        Ok(Output {
            file,
            size_bytes,
            written: None,
            kind: Kind::Device {
                path: path.to_path_buf(),
            },
        })
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn is_device(&self) -> bool {
        matches!(self.kind, Kind::Device { .. })
    }

    /// A window onto `len` bytes at `start`.
    pub fn region(&self, start: u64, len: u64) -> Region<'_> {
        assert!(
            start + len <= self.size_bytes,
            "region past the end of the image"
        );
        Region {
            file: &self.file,
            written: self.written.as_ref(),
            start,
            len,
            pos: 0,
        }
    }

    /// Flushes to stable storage and, for a file, moves it to its final name.
    pub fn finish(mut self) -> Result<()> {
        self.file
            .sync_all()
            .context("cannot flush the image to disk")?;
        if let Kind::File {
            temp,
            path,
            finished,
        } = &mut self.kind
        {
            std::fs::rename(&*temp, &*path)
                .with_context(|| format!("cannot move the image to {}", path.display()))?;
            *finished = true;
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                // Make the rename itself durable.
                File::open(dir).and_then(|d| d.sync_all()).ok();
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        match &self.kind {
            Kind::File { path, .. } | Kind::Device { path } => path,
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Kind::File {
            temp,
            finished: false,
            ..
        } = &self.kind
        {
            let _ = std::fs::remove_file(temp);
        }
    }
}

fn libc_o_excl() -> i32 {
    libc::O_EXCL
}

/// BLKGETSIZE64: the device's size in bytes.
fn block_device_size(file: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    // _IOR(0x12, 114, size_t)
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes exactly one u64 through the pointer, which points at a
    // live local; the descriptor is an open block device.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// `len` bytes of the image starting at `start`, usable as a file by fatfs and backhand.
pub struct Region<'a> {
    file: &'a File,
    written: Option<&'a RefCell<Written>>,
    start: u64,
    len: u64,
    pos: u64,
}

impl Region<'_> {
    fn check(&self, offset: u64, n: usize) -> io::Result<()> {
        if offset
            .checked_add(n as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        Ok(())
    }
}

impl Region<'_> {
    /// Writes `data` at `offset`, or skips it if it is all zeros over never-written space
    /// of a new sparse file.
    fn put(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len())?;
        let (start, end) = (self.start + offset, self.start + offset + data.len() as u64);
        if let Some(written) = self.written {
            let mut written = written.borrow_mut();
            if !written.overlaps(start, end) && data.iter().all(|&b| b == 0) {
                return Ok(());
            }
            written.add(start, end);
        }
        self.file.write_all_at(data, start)
    }
}

impl WriteAt for Region<'_> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.put(offset, data)
    }
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let n = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Region<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put(self.pos, buf)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Region<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the partition")
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::Written;

    #[test]
    fn written_ranges_merge_and_overlap() {
        let mut w = Written::default();
        w.add(10, 20);
        w.add(30, 40);
        assert!(w.overlaps(15, 16) && w.overlaps(0, 11) && w.overlaps(39, 50));
        assert!(!w.overlaps(20, 30) && !w.overlaps(0, 10) && !w.overlaps(40, 41));
        w.add(20, 30);
        assert_eq!(w.0.len(), 1);
        assert_eq!(w.0.get(&10), Some(&40));
        w.add(5, 12);
        assert_eq!(w.0.into_iter().collect::<Vec<_>>(), [(5, 40)]);
    }
}
