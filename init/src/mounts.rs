//! Filesystems: the kernel's pseudo filesystems, then /boot and /data from the disk the root
//! came from. That disk is found from the root's device number and /sys, so vda, sda,
//! mmcblk0 and nvme0n1 (with their different partition names) all work.

use crate::log;
use crate::sys::{read_file, Console, Text};
use boot::layout;
use core::ffi::CStr;
use core::fmt::Write;
use core::mem::MaybeUninit;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

/// Mounts /proc, /sys, /dev, /tmp and /run, and makes the log folder; a failure is reported
/// and skipped.
pub fn mount_kernel_filesystems(console: &Console) {
    let private = MountFlags::NOSUID | MountFlags::NODEV;
    let hard = private | MountFlags::NOEXEC;
    // Pseudo filesystems: the source is the filesystem type.
    let table: [(&CStr, &CStr, MountFlags, &CStr); 5] = [
        (c"proc", c"/proc", hard, c""),
        (c"sysfs", c"/sys", hard, c""),
        (c"devtmpfs", c"/dev", MountFlags::NOSUID, c"mode=0755"),
        // Every program may write /tmp: a quarter of the RAM at most (and each program's
        // files count against its own memory limit).
        (c"tmpfs", c"/tmp", private, c"mode=1777,size=25%"),
        (c"tmpfs", c"/run", private, c"mode=0755"),
    ];
    for (fstype, target, flags, data) in table {
        let result = mount(fstype, target, fstype, flags, data);
        // A kernel with CONFIG_DEVTMPFS_MOUNT has mounted /dev already: same filesystem,
        // same place, so the kernel says EBUSY.
        if result == Err(Errno::BUSY) && target == c"/dev" {
            continue;
        }
        if let Err(e) = result {
            log!(
                console,
                "init: cannot mount {:?} on {:?}: {}",
                fstype,
                target,
                e
            );
        }
    }
    if let Err(e) = rustix::fs::mkdir(boot::logs::DIR, Mode::from_raw_mode(0o700)) {
        log!(console, "init: cannot make {}: {}", boot::logs::DIR, e);
    }
}

/// The disk the root filesystem lives on, and the partitions init mounts from it.
pub struct Disk {
    /// `/dev/<disk>`, e.g. `/dev/vda`.
    pub device: Text<64>,
    /// `/dev/<partition 1>` and `/dev/<partition 4>`.
    pub boot: Text<64>,
    pub data: Text<64>,
    /// Partition number of the root (2 or 3).
    pub root_partition: u8,
}

/// Finds the root's disk: stat("/") gives the root's device number; /sys/dev/block/M:m is
/// that partition (for a verified root, the device-mapper device's one `slaves` entry is),
/// its parent directory is the disk, whose subdirectories with a `partition` file are the
/// partitions.
pub fn root_disk() -> Result<Disk, Errno> {
    let root = rustix::fs::stat(c"/")?;
    let (major, minor) = (
        rustix::fs::major(root.st_dev),
        rustix::fs::minor(root.st_dev),
    );
    let mut part_dir: Text<64> = Text::new();
    let _ = write!(part_dir, "/sys/dev/block/{major}:{minor}");
    if let Some(mapped) = mapped_partition(&part_dir) {
        part_dir = mapped;
    }
    let mut number = Text::<80>::new();
    number.push(part_dir.as_bytes());
    number.push(b"/partition");
    let mut buf = [0u8; 16];
    let root_partition = parse_number(read_file(
        number.as_cstr().ok_or(Errno::NAMETOOLONG)?,
        &mut buf,
    )?)
    .ok_or(Errno::INVAL)?;
    let mut disk_dir = part_dir;
    disk_dir.push(b"/..");
    let dir = rustix::fs::open(
        disk_dir.as_cstr().ok_or(Errno::NAMETOOLONG)?,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;

    // The disk's own name: its "dev" file holds M:m, and /sys/dev/block/M:m is a link to it;
    // simpler, the "uevent" file says DEVNAME=<name>.
    let mut uevent = [0u8; 512];
    let disk_name = devname(
        rustix::fs::openat(
            &dir,
            c"uevent",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?,
        &mut uevent,
    )?;
    let mut disk = Disk {
        device: Text::new(),
        boot: Text::new(),
        data: Text::new(),
        root_partition: root_partition as u8,
    };
    disk.device.push(b"/dev/");
    disk.device.push(disk_name);

    let mut entries = [MaybeUninit::<u8>::uninit(); 2048];
    let mut iter = rustix::fs::RawDir::new(&dir, &mut entries);
    while let Some(entry) = iter.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.starts_with(b".") || name.len() > 40 {
            continue;
        }
        let mut path = Text::<64>::new();
        path.push(name);
        path.push(b"/partition");
        let Some(path) = path.as_cstr() else { continue };
        let Ok(fd) =
            rustix::fs::openat(&dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        else {
            continue;
        };
        let mut n = [0u8; 16];
        let len = rustix::io::read(&fd, &mut n).unwrap_or(0);
        let target = match parse_number(&n[..len]) {
            Some(n) if n == u32::from(layout::BOOT.number) => &mut disk.boot,
            Some(n) if n == u32::from(layout::DATA.number) => &mut disk.data,
            _ => continue,
        };
        target.push(b"/dev/");
        target.push(name);
    }
    Ok(disk)
}

/// The partition under a device-mapper device (`DIR/slaves/NAME`), if `dir` is one.
fn mapped_partition(dir: &Text<64>) -> Option<Text<64>> {
    let mut slaves = Text::<64>::new();
    slaves.push(dir.as_bytes());
    slaves.push(b"/slaves");
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(slaves.as_cstr()?, flags, Mode::empty()).ok()?;
    let mut entries = [MaybeUninit::<u8>::uninit(); 512];
    let mut iter = rustix::fs::RawDir::new(&fd, &mut entries);
    while let Some(Ok(entry)) = iter.next() {
        let name = entry.file_name().to_bytes();
        if !name.starts_with(b".") {
            slaves.push(b"/");
            slaves.push(name);
            return Some(slaves);
        }
    }
    None
}

fn devname(fd: rustix::fd::OwnedFd, buf: &mut [u8; 512]) -> Result<&[u8], Errno> {
    let len = rustix::io::read(&fd, &mut buf[..])?;
    buf[..len]
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"DEVNAME="))
        .ok_or(Errno::NOENT)
}

fn parse_number(text: &[u8]) -> Option<u32> {
    init::cmdline::parse_u32(text.trim_ascii())
}

/// Mounts /boot (vfat, read-only: nothing on the device writes it, and a read-only mount
/// never writes back stale FAT state over a boot partition admind has replaced) and /data
/// (ext4); a partition that will not mount is reported and the system carries on without it. /data uses options for power loss: the journal in
/// ordered mode (the default), remount read-only on errors rather than corrupt further.
pub fn mount_disk(console: &Console, disk: &mut Disk) {
    let parts: [(&mut Text<64>, &CStr, &CStr, MountFlags, &CStr); 2] = [
        (
            &mut disk.boot,
            c"/boot",
            c"vfat",
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"",
        ),
        (
            &mut disk.data,
            c"/data",
            c"ext4",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOATIME,
            c"errors=remount-ro",
        ),
    ];
    for (device, target, fstype, flags, data) in parts {
        let Some(source) = device.as_cstr() else {
            log!(
                console,
                "init: no partition for {:?} on the root disk; carrying on without it",
                target
            );
            continue;
        };
        match mount(source, target, fstype, flags, data) {
            Ok(()) => log!(console, "init: mounted {:?} on {:?}", source, target),
            Err(e) => log!(
                console,
                "init: cannot mount {:?} on {:?} ({}); carrying on without it",
                source,
                target,
                e
            ),
        }
    }
}

/// Unmounts /data and /boot for shutdown; a busy one is remounted read-only instead, so the
/// filesystem is clean either way.
pub fn unmount_disk(console: &Console) {
    for target in [c"/data", c"/boot"] {
        match unmount(target, UnmountFlags::empty()) {
            Ok(()) | Err(Errno::INVAL) => {} // EINVAL: not mounted
            Err(e) => {
                let r = rustix::mount::mount_remount(target, MountFlags::RDONLY, c"");
                log!(
                    console,
                    "init: cannot unmount {:?} ({}); read-only remount: {:?}",
                    target,
                    e,
                    r
                );
            }
        }
    }
}
