//! The boot record (`boot::record`) as init reads and writes it on the root's disk, and the
//! Raspberry Pi's part of a trial. Its firmware keeps no record: an armed trial starts only
//! after a restart with the argument "0 tryboot" (which our kernel patch passes on to the
//! firmware), and nothing turns TRY into TRIED before init runs, so init does both there.

use crate::mounts::Disk;
use crate::sys::Text;
use boot::layout::Slot;
use boot::record::{Copies, Damage, Record, State, COPY_OFFSETS};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// The restart argument that makes the Pi firmware read tryboot.txt once.
const TRYBOOT_ARGUMENT: &core::ffi::CStr = c"0 tryboot";

fn open(disk: &Disk, write: bool) -> Result<rustix::fd::OwnedFd, Errno> {
    let mut device = Text::<64>::new();
    device.push(disk.device.as_bytes());
    let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
    rustix::fs::open(
        device.as_cstr().ok_or(Errno::INVAL)?,
        access | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Both copies of the record.
pub fn read(disk: &Disk) -> Result<Copies, Errno> {
    let fd = open(disk, false)?;
    let mut sectors = [[0u8; 512]; 2];
    for (sector, at) in sectors.iter_mut().zip(COPY_OFFSETS) {
        if rustix::io::pread(&fd, &mut *sector, at)? != sector.len() {
            return Err(Errno::IO);
        }
    }
    Ok(Copies::read([&sectors[0], &sectors[1]]))
}

/// The build id in `slot`'s trailer (`boot::rootid`), for the boot status.
pub fn build_of(disk: &Disk, slot: Slot) -> Option<[u8; 32]> {
    let fd = open(disk, false).ok()?;
    let partition = slot.partition();
    let at = partition.start_bytes + boot::rootid::offset_in(&partition)?;
    let mut sector = [0u8; 512];
    if rustix::io::pread(&fd, &mut sector, at).ok()? != sector.len() {
        return None;
    }
    boot::rootid::decode(&sector).map(|id| id.build)
}

/// Writes `record` over the copy that is not the newest valid one, one sector, flushed.
pub fn write(disk: &Disk, copies: &Copies, record: &Record) -> Result<(), Errno> {
    let fd = open(disk, true)?;
    let (copy, sector) = copies.next_write(record);
    if rustix::io::pwrite(&fd, &sector, COPY_OFFSETS[copy])? != sector.len() {
        return Err(Errno::IO);
    }
    rustix::fs::fsync(&fd)
}

/// What init does with the record once it runs: the committed slot's boot attempts are
/// over (and a fall-back reported), so it says so in the copy that is not the newest, which
/// also repairs that copy if it was damaged; with no valid copy it writes both, committing
/// `booted`. Returns the damage it found, and what the loader found and repaired.
pub fn settle(disk: &Disk, booted: Slot) -> Result<Damage, Errno> {
    let copies = read(disk)?;
    let damage = copies.damage();
    match copies.record() {
        Some(r) if damage != Damage::None || r != r.reached_init() => {
            write(disk, &copies, &r.reached_init())?;
        }
        Some(_) => {}
        None => {
            // Nothing is known of the other slot: no fall-back to it until a commit.
            let fresh = Record {
                committed: booted,
                trial: booted.other(),
                ..Record::INITIAL.rewriting_trial_slot()
            };
            write(disk, &copies, &fresh)?;
            write(disk, &read(disk)?, &fresh)?;
        }
    }
    Ok(damage)
}

pub fn still_on_trial(disk: &Disk) -> bool {
    let booted = Slot::of_partition(disk.root_partition);
    read(disk)
        .ok()
        .and_then(|c| c.record())
        .is_some_and(|r| booted.is_some_and(|slot| r.is_trial_boot(slot)))
}

/// Whether this machine's firmware chooses slots by config.txt and tryboot.txt (a Pi).
pub fn firmware_has_tryboot() -> bool {
    rustix::fs::access(c"/boot/tryboot.txt", rustix::fs::Access::EXISTS).is_ok()
}

/// Whether a restart now must ask the firmware for the trial slot: a trial is armed and
/// the firmware is the Pi's (elsewhere the boot code reads the record itself).
pub fn restart_needs_tryboot(disk: Option<&Disk>) -> bool {
    disk.and_then(|d| read(d).ok())
        .and_then(|c| c.record())
        .is_some_and(|r| r.state == State::Try)
        && firmware_has_tryboot()
}

/// Restarts with the argument "0 tryboot" (LINUX_REBOOT_CMD_RESTART2); returns only if
/// the kernel refused.
pub fn restart_with_tryboot() {
    // SAFETY: reboot(2) with the documented magic numbers and a NUL-terminated argument
    // that lives for the whole program; no other memory is passed.
    unsafe {
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_RESTART2,
            TRYBOOT_ARGUMENT.as_ptr(),
        )
    };
}
