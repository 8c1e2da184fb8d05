//! Whole writes, small whole-file reads, and replacing a file through a rename: blocking,
//! no allocation.

use core::ffi::CStr;
use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Writes all of `bytes`, retrying on EINTR; gives up on any other error.
pub fn write_all(fd: impl AsFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(&fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads a whole (small) file into `buf`; returns the bytes read, at most `buf.len()`.
pub fn read_file<'a>(path: &CStr, buf: &'a mut [u8]) -> Result<&'a [u8], Errno> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(&buf[..len])
}

/// Writes `bytes` to `temp` (mode 0644), then renames it over `path`, so readers never see
/// a half-written file.
pub fn replace_file(temp: &CStr, path: &CStr, bytes: &[u8]) -> Result<(), Errno> {
    write_then_rename(temp, path, bytes, false)
}

/// [`replace_file`] for files on a disk: the data reaches the disk before the rename, so a
/// power cut leaves the old file or the new one, never an empty one.
pub fn replace_file_durably(temp: &CStr, path: &CStr, bytes: &[u8]) -> Result<(), Errno> {
    write_then_rename(temp, path, bytes, true)
}

fn write_then_rename(temp: &CStr, path: &CStr, bytes: &[u8], sync: bool) -> Result<(), Errno> {
    let fd = rustix::fs::open(
        temp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    write_all(&fd, bytes)?;
    if sync {
        rustix::fs::fsync(&fd)?;
    }
    drop(fd);
    rustix::fs::rename(temp, path)
}
