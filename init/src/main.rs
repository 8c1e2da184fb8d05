//! rustkrazy's PID 1.
//!
//! 1. Refuses to run unless it is PID 1.
//! 2. Mounts /proc, /sys, /dev, /tmp, /run, then /boot and /data from the root's disk.
//! 3. Works out whether this is a trial boot (boot record + booted slot) and writes a one-line
//!    status to /run/rustkrazy/boot-status; an uncommitted trial reboots at its deadline.
//! 4. Starts every executable in /bin except itself, each in its own process group, output
//!    into capped logs under /run/log and echoed to the console; restarts with backoff.
//! 5. Reaps every child, orphans included; feeds /dev/watchdog if there is one; keeps the
//!    saved clock on /data (restored at boot on boards without a real-time clock).
//! 6. SIGUSR1, SIGINT (ctrl-alt-del), SIGTERM: reboot. SIGUSR2, SIGPWR: power off. Both stop
//!    the services (SIGTERM, bounded wait, SIGKILL), sync, unmount, then reboot(2).
//!
//! Nothing that comes from outside may panic: errors are logged and survived.
#![no_std]
#![no_main]

mod clock;
mod mounts;
mod record;
mod sandbox;
mod service_log;
mod services;
mod shutdown;
mod sys;
mod wait;

use core::ffi::{c_char, c_int};
use core::fmt::Write;
use rustix::fs::{Mode, OFlags};
use rustix::system::RebootCommand;
use services::Supervisor;
use sys::{now_ms, Console, Text};

// musl's start-up code calls `main` below; fork/execve/signalfd come from musl too.
runtime::device_program!();

/// Logs one line to the console: `log!(console, "fmt", args...)`.
#[macro_export]
macro_rules! log {
    ($console:expr, $($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut line: $crate::sys::Text<512> = $crate::sys::Text::new();
        let mut stamp = [0u8; 24];
        let n = init::logline::stamp($crate::sys::now_ms(), &mut stamp);
        line.push(&stamp[..n]);
        let _ = core::write!(line, $($arg)*);
        line.push(b"\n");
        $console.write(line.as_bytes());
    }};
}

/// How often /dev/watchdog is fed (drivers time out after 30-60 s by default).
const WATCHDOG_FEED_MS: u64 = 10_000;
/// Bound on /proc/cmdline and /etc/hostname reads.
const SMALL_FILE_BYTES_MAX: usize = 4096;

#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    if rustix::process::getpid() != rustix::process::Pid::INIT {
        sys::write_stderr(b"init: rustkrazy's init must be the first process (PID 1), started by the kernel; not starting\n");
        return 1;
    }
    let console = Console::open();
    log!(console, "init: rustkrazy init starting");
    let signals = match sys::signal_fd(&services::HANDLED_SIGNALS) {
        Ok(fd) => Some(fd),
        Err(e) => {
            log!(
                console,
                "init: cannot set up signal handling ({}); reaping by polling",
                e
            );
            None
        }
    };
    // Ctrl-alt-del sends SIGINT to init instead of rebooting on the spot.
    let _ = rustix::system::reboot(RebootCommand::CadOff);

    mounts::mount_kernel_filesystems(&console);
    set_hostname(&console);
    let mut buf = [0u8; SMALL_FILE_BYTES_MAX];
    let cmdline = init::cmdline::parse(sys::read_file(c"/proc/cmdline", &mut buf).unwrap_or(&[]));
    let disk = match mounts::root_disk() {
        Ok(mut disk) => {
            mounts::mount_disk(&console, &mut disk);
            Some(disk)
        }
        Err(e) => {
            log!(
                console,
                "init: cannot find the root's disk ({}); no /boot, no /data",
                e
            );
            None
        }
    };
    // Before any service starts: none of them should see 1970 on a board without a clock.
    clock::restore(&console);
    let trial_deadline_ms = boot_status(&console, disk.as_ref(), &cmdline);

    let mut supervisor = Supervisor::new();
    supervisor.load(&console);
    supervisor.start_all(&console);
    let watchdog = open_watchdog(&console, cmdline.watchdog);
    let running = Running {
        console: &console,
        signals: signals.as_ref(),
        disk: disk.as_ref(),
        cmdline: &cmdline,
        watchdog: watchdog.as_ref(),
    };
    running.supervise(&mut supervisor, trial_deadline_ms)
}

/// /dev/watchdog, opened unless the command line says to leave it alone; said either way.
fn open_watchdog(console: &Console, wanted: bool) -> Option<rustix::fd::OwnedFd> {
    if !wanted {
        log!(
            console,
            "init: /dev/watchdog left alone (rustkrazy.watchdog=off)"
        );
        return None;
    }
    let watchdog = rustix::fs::open(
        c"/dev/watchdog",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok();
    if watchdog.is_some() {
        log!(
            console,
            "init: feeding /dev/watchdog every {} s",
            WATCHDOG_FEED_MS / 1000
        );
    }
    watchdog
}

/// What the main loop works with, once the system is up.
struct Running<'a> {
    console: &'a Console,
    signals: Option<&'a rustix::fd::OwnedFd>,
    disk: Option<&'a mounts::Disk>,
    cmdline: &'a init::cmdline::Cmdline<'a>,
    watchdog: Option<&'a rustix::fd::OwnedFd>,
}

impl Running<'_> {
    /// Supervises the services until shutdown: feeds the watchdog, saves the clock, and
    /// reboots to the committed root when a trial is not committed by its deadline.
    fn supervise(&self, supervisor: &mut Supervisor, mut trial_deadline_ms: Option<u64>) -> ! {
        let console = self.console;
        let mut next_feed_ms = 0;
        let mut next_clock_save_ms = now_ms() + boot::clock::SAVE_INTERVAL_S * 1000;
        loop {
            let now = now_ms();
            if now >= next_clock_save_ms {
                clock::save(console);
                next_clock_save_ms = now + boot::clock::SAVE_INTERVAL_S * 1000;
            }
            if let Some(fd) = self.watchdog {
                if now >= next_feed_ms {
                    let _ = rustix::io::write(fd, b"k");
                    next_feed_ms = now + WATCHDOG_FEED_MS;
                }
            }
            if trial_deadline_ms.is_some_and(|deadline| now >= deadline) {
                // Checked once: committed (or no disk to tell) leaves nothing to wait for,
                // and a deadline left in place would wake us at once forever.
                trial_deadline_ms = None;
                self.end_of_trial(supervisor);
            }
            let mut wake_ms = supervisor
                .next_restart_ms()
                .unwrap_or(u64::MAX)
                .min(next_clock_save_ms);
            if self.watchdog.is_some() {
                wake_ms = wake_ms.min(next_feed_ms);
            }
            if let Some(deadline) = trial_deadline_ms {
                wake_ms = wake_ms.min(deadline);
            }
            if let Some(action) = supervisor.wait_and_handle(console, self.signals, wake_ms) {
                let tryboot =
                    action == RebootCommand::Restart && record::restart_needs_tryboot(self.disk);
                supervisor.shutdown(console, self.signals, action, tryboot);
            }
        }
    }

    /// The trial's deadline has come: reboot to the committed root unless it was committed.
    fn end_of_trial(&self, supervisor: &mut Supervisor) {
        let console = self.console;
        match self.disk.map(record::still_on_trial) {
            Some(true) => {
                log!(
                    console,
                    "init: trial boot not committed within {} s; rebooting to the committed root",
                    self.cmdline.trial_timeout_s
                );
                supervisor.shutdown(console, self.signals, RebootCommand::Restart, false);
            }
            Some(false) => log!(console, "init: the trial boot was committed in time"),
            None => {}
        }
    }
}

/// Sets the hostname from /etc/hostname.
fn set_hostname(console: &Console) {
    let mut buf = [0u8; 256];
    if let Ok(name) = sys::read_file(c"/etc/hostname", &mut buf) {
        let name = name.trim_ascii();
        match rustix::system::sethostname(name) {
            Ok(()) => log!(console, "init: hostname is {}", services::show(name)),
            Err(e) => log!(console, "init: cannot set hostname: {}", e),
        }
    }
}

/// Reads the boot record from the root's disk, writes the status line and returns the
/// deadline of an uncommitted trial boot.
fn boot_status(
    console: &Console,
    disk: Option<&mounts::Disk>,
    cmdline: &init::cmdline::Cmdline<'_>,
) -> Option<u64> {
    use boot::boot_status::{self, BootStatus, Damage, How};
    use boot::record::{Record, State};
    let booted = disk.map(|d| d.root_partition).or(cmdline.root_partition);
    let booted = booted.and_then(boot::layout::Slot::of_partition)?;
    let copies = disk.and_then(|d| record::read(d).ok());
    let mut found = copies.and_then(|c| c.record());
    // A Pi's firmware keeps no record, so TRY is turned into TRIED here: on the trial slot
    // (this boot is the trial; any restart goes back to the committed slot), and on the
    // committed one too (the trial died before init, or never started: it is over).
    if let (Some(d), Some(c), Some(r)) = (disk, copies, found) {
        if r.state == State::Try && record::firmware_has_tryboot() {
            let tried = Record {
                state: State::Tried,
                ..r
            };
            match record::write(d, &c, &tried) {
                Ok(()) => {
                    log!(
                        console,
                        "init: trial of slot {} armed, the firmware started slot {}; recorded TRIED",
                        r.trial.number(),
                        booted.number()
                    );
                    found = Some(tried);
                }
                Err(e) => log!(console, "init: cannot record TRIED: {}", e),
            }
        }
    }
    let damage = match disk.map(|d| record::settle(d, booted)) {
        Some(Ok(damage)) => damage,
        Some(Err(e)) => {
            log!(console, "init: cannot write the boot record: {}", e);
            Damage::None
        }
        None => Damage::None,
    };
    match damage {
        Damage::None => {}
        Damage::Both => log!(
            console,
            "init: both copies of the boot record were damaged; wrote one committing slot {}",
            booted.number()
        ),
        Damage::Copy(n) => log!(
            console,
            "init: copy {} of the boot record was damaged; repaired from the other",
            n
        ),
    }
    let mut deadline = None;
    let how = match found {
        Some(r) if r.is_trial_boot(booted) => {
            deadline = Some(now_ms() + cmdline.trial_timeout_s as u64 * 1000);
            How::Trial {
                timeout_s: cmdline.trial_timeout_s,
            }
        }
        Some(r) if r.fell_back && booted == r.committed => {
            log!(
                console,
                "init: slot {} did not reach init in {} boots; the boot code fell back to this slot",
                r.trial.number(),
                boot::record::MAX_ATTEMPTS
            );
            How::FellBack { from: r.trial }
        }
        Some(r) if r.state == State::Tried && booted == r.committed => {
            How::RolledBack { from: r.trial }
        }
        _ => How::Committed,
    };
    // The disk, so admind can find the record and the slots without searching again.
    let build = disk.and_then(|d| record::build_of(d, booted));
    let mut build_hex: Text<64> = Text::new();
    if let Some(id) = &build {
        let _ = write!(build_hex, "{}", boot::encoding::Hex(id));
    }
    let status = BootStatus {
        how,
        slot: booted,
        disk: disk.and_then(|d| core::str::from_utf8(d.device.as_bytes()).ok()),
        damage,
        refused: cmdline.refused,
        build: build.and(core::str::from_utf8(build_hex.as_bytes()).ok()),
    };
    log!(console, "init: boot status: {}", status);
    // The longest line (a fall-back with both copies damaged, a refusal, an mmcblk disk and
    // a build) is about 170 bytes.
    let mut line: Text<256> = Text::new();
    let _ = writeln!(line, "{}", status);
    let _ = rustix::fs::mkdir(boot_status::RUN_DIR, Mode::from_raw_mode(0o755));
    let written = rustix::fs::open(
        boot_status::PATH,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .and_then(|fd| sys::write_all(&fd, line.as_bytes()));
    if let Err(e) = written {
        log!(console, "init: cannot write {:?}: {}", boot_status::PATH, e);
    }
    deadline
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // A panic in PID 1 is a bug; reboot rather than leave a machine nobody supervises.
    Console::open().write(b"init: internal error; syncing and rebooting\n");
    rustix::fs::sync();
    let _ = rustix::system::reboot(RebootCommand::Restart);
    loop {
        core::hint::spin_loop();
    }
}
