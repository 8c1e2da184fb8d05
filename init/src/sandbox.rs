//! Confinement, the parent's half (the child's half is in `sys::spawn`): cgroup v2 mounted
//! with the memory and pids controllers, one group per service with its limits written, and
//! each unprivileged service's folder on /data. What cannot be applied is said on the
//! console; a service whose group is missing gets rlimits instead.

use crate::log;
use crate::sys::{Console, Text};
use boot::sandbox;
use core::fmt::Write;
use init::confinement::Confinement;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// `/sys/fs/cgroup/NAME/FILE` and similar paths, with room for the longest service name.
pub type Path = Text<128>;

/// Mounts cgroup2 and hands the memory and pids controllers to the services' groups;
/// whether services get groups. Also the machine's RAM, which the default limit is a share of.
pub fn prepare(console: &Console) -> (bool, u64) {
    let ram = rustix::system::sysinfo();
    let ram_bytes = (ram.totalram as u64).saturating_mul(u64::from(ram.mem_unit.max(1)));
    let flags = rustix::mount::MountFlags::NOSUID
        | rustix::mount::MountFlags::NODEV
        | rustix::mount::MountFlags::NOEXEC;
    let mounted = rustix::mount::mount(c"cgroup2", sandbox::CGROUP_ROOT, c"cgroup2", flags, c"")
        .and_then(|()| write_text(&path(&[], b"cgroup.subtree_control"), b"+memory +pids"));
    if let Err(e) = mounted {
        log!(
            console,
            "init: no cgroup v2 with memory and pids ({}): programs' memory and task limits are rlimits",
            e
        );
    }
    (mounted.is_ok(), ram_bytes)
}

/// `CGROUP_ROOT/NAME/FILE` (`NAME/` left out when `name` is empty).
pub fn path(name: &[u8], file: &[u8]) -> Path {
    let mut p = Path::new();
    p.push(sandbox::CGROUP_ROOT.as_bytes());
    p.push(b"/");
    if !name.is_empty() {
        p.push(name);
        p.push(b"/");
    }
    p.push(file);
    p
}

/// Creates service `name`'s group with its limits (when there are groups) and, for a service
/// that does not run as root, its folder on /data. Done once per boot. Whether the service
/// has its group: one whose limits could not be written is removed (rlimits instead), so no
/// program runs in a group without limits.
pub fn set_up(console: &Console, name: &[u8], c: &Confinement, groups: bool) -> bool {
    // Names are validated ASCII (boot::services).
    let shown = core::str::from_utf8(name).unwrap_or("?");
    let mut grouped = false;
    if groups {
        let mut dir = path(name, b"");
        let made = match dir.as_cstr() {
            Some(dir) => match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o755)) {
                Err(Errno::EXIST) => Ok(()),
                other => other,
            },
            None => Err(Errno::NAMETOOLONG),
        };
        let mut memory: Text<24> = Text::new();
        let mut tasks: Text<24> = Text::new();
        let _ = write!(memory, "{}", c.memory_bytes);
        let _ = write!(tasks, "{}", c.tasks);
        let limited = made
            .and_then(|()| write_text(&path(name, b"memory.max"), memory.as_bytes()))
            .and_then(|()| write_text(&path(name, b"pids.max"), tasks.as_bytes()));
        match limited {
            Ok(()) => grouped = true,
            Err(e) => {
                if let Some(dir) = dir.as_cstr() {
                    let _ = rustix::fs::rmdir(dir);
                }
                log!(
                    console,
                    "init: {}: cannot set up its control group ({}); its limits are rlimits",
                    shown,
                    e
                );
            }
        }
    }
    if !c.is_root() && name != sandbox::SYSTEM_DATA_NAME {
        if let Err(e) = own_data_dir(name, c.uid) {
            log!(
                console,
                "init: {}: no folder of its own in {} ({})",
                shown,
                sandbox::DATA_DIR,
                e
            );
        }
    }
    grouped
}

/// `/data/NAME`, made (mode 0700) or handed over to `uid` if another user owns it.
fn own_data_dir(name: &[u8], uid: u32) -> Result<(), Errno> {
    let mut dir: Text<96> = Text::new();
    dir.push(sandbox::DATA_DIR.as_bytes());
    dir.push(b"/");
    dir.push(name);
    let dir = dir.as_cstr().ok_or(Errno::NAMETOOLONG)?;
    match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    // Not following a link: the folder itself, whoever made it.
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let id = rustix::fs::fstat(&fd)?;
    if id.st_uid != uid || id.st_gid != uid {
        let owner = Some(rustix::process::Uid::from_raw(uid));
        let group = Some(rustix::process::Gid::from_raw(uid));
        rustix::fs::fchown(&fd, owner, group)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
    }
    Ok(())
}

fn write_text(path: &Path, text: &[u8]) -> Result<(), Errno> {
    let mut path = path.clone();
    let path = path.as_cstr().ok_or(Errno::NAMETOOLONG)?;
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    crate::sys::write_all(&fd, text)
}
