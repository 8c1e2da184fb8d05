//! Supervision: every executable in /bin except init, started with the settings from
//! `boot::services::PATH`, output logged, restarted with backoff, reaped; and shutdown.

use crate::log;
use crate::sys::{self, now_ms, Console, Text};
use core::ffi::c_char;
use core::fmt::Write;
use core::mem::MaybeUninit;
use init::backoff::Backoff;
use init::logline::{must_rotate, LineSplitter};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::system::RebootCommand;

/// Most services supervised; more executables in /bin are reported and left alone.
pub const SERVICES_MAX: usize = 32;
/// Bound on the services file.
const CONFIG_BYTES_MAX: usize = 16 << 10;
/// Bounds on one service's command line and environment.
const ARGS_MAX: usize = 32;
const ENVS_MAX: usize = 32;
const EXEC_BYTES_MAX: usize = 8192;
/// How long services get to exit after SIGTERM at shutdown.
const SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Bytes read from a service's pipe per wakeup.
const READ_CHUNK_BYTES: usize = 4096;

/// Signals init takes through its signalfd.
pub const HANDLED_SIGNALS: [i32; 6] = [
    libc::SIGCHLD,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGPWR,
];

/// One output stream of a service: the pipe, a partial line, the log file.
struct Stream {
    pipe: Option<OwnedFd>,
    lines: LineSplitter,
    log: LogFile,
}

impl Stream {
    fn new(suffix: &'static [u8]) -> Stream {
        Stream {
            pipe: None,
            lines: LineSplitter::default(),
            log: LogFile {
                file: None,
                bytes: 0,
                suffix,
            },
        }
    }
}

/// `/tmp/NAME<suffix>`, capped and rotated once to `/tmp/NAME<suffix>.1`.
struct LogFile {
    file: Option<OwnedFd>,
    bytes: u64,
    suffix: &'static [u8],
}

impl LogFile {
    fn append(&mut self, name: &[u8], entry: &[u8]) {
        let mut path: Text<96> = Text::new();
        path.push(b"/tmp/");
        path.push(name);
        path.push(self.suffix);
        if must_rotate(self.bytes, entry.len() as u64) {
            self.file = None;
            let mut rotated: Text<96> = Text::new();
            rotated.push(path.as_bytes());
            rotated.push(b".1");
            let mut from = path.clone();
            if let (Some(from), Some(to)) = (from.as_cstr(), rotated.as_cstr()) {
                let _ = rustix::fs::rename(from, to);
            }
        }
        if self.file.is_none() {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::APPEND | OFlags::CLOEXEC;
            let Some(p) = path.as_cstr() else { return };
            self.file = rustix::fs::open(p, flags, Mode::from_raw_mode(0o644)).ok();
            self.bytes = 0;
        }
        if let Some(file) = &self.file {
            if sys::write_all(file, entry).is_ok() {
                self.bytes += entry.len() as u64;
            }
        }
    }
}

/// Stamps a line, appends it to the stream's log and echoes it to the console.
fn log_line(console: &Console, name: &[u8], log: &mut LogFile, line: &[u8]) {
    let mut stamp = [0u8; 24];
    let n = init::logline::stamp(now_ms(), &mut stamp);
    let mut entry: Text<{ init::logline::LINE_BYTES_MAX + 32 }> = Text::new();
    entry.push(&stamp[..n]);
    entry.push(line);
    entry.push(b"\n");
    log.append(name, entry.as_bytes());
    let mut echo: Text<{ init::logline::LINE_BYTES_MAX + 128 }> = Text::new();
    echo.push(&stamp[..n]);
    if !init::logline::names_itself(line, name) {
        echo.push(name);
        echo.push(b": ");
    }
    echo.push(line);
    echo.push(b"\n");
    console.write(echo.as_bytes());
}

struct Service {
    name: Text<65>,
    pid: Option<Pid>,
    started_ms: u64,
    restart_at_ms: Option<u64>,
    backoff: Backoff,
    restarts: u32,
    autostart: bool,
    streams: [Stream; 2],
}

pub struct Supervisor {
    services: [Option<Service>; SERVICES_MAX],
    config: [u8; CONFIG_BYTES_MAX],
    config_len: usize,
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor {
            services: [const { None }; SERVICES_MAX],
            config: [0; CONFIG_BYTES_MAX],
            config_len: 0,
        }
    }

    /// Reads the services file and lists /bin.
    pub fn load(&mut self, console: &Console) {
        match sys::read_file(c"/etc/rustkrazy/services", &mut self.config) {
            Ok(text) => {
                self.config_len = text.len();
                if self.config_len == CONFIG_BYTES_MAX {
                    log!(
                        console,
                        "init: {} is larger than {} bytes; the rest is ignored",
                        boot::services::PATH,
                        CONFIG_BYTES_MAX
                    );
                }
            }
            Err(Errno::NOENT) => {}
            Err(e) => log!(console, "init: cannot read {}: {}", boot::services::PATH, e),
        }
        for entry in boot::services::parse(self.config()) {
            if let Err(e) = entry {
                log!(
                    console,
                    "init: {}: ignoring a bad line: {:?}",
                    boot::services::PATH,
                    e
                );
            }
        }
        let dir = match rustix::fs::open(
            c"/bin",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(e) => return log!(console, "init: cannot list /bin: {}", e),
        };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
        let mut slot = 0;
        while let Some(Ok(entry)) = entries.next() {
            let name = entry.file_name().to_bytes();
            if name == b"init" || !boot::services::valid_service_name(name) {
                continue;
            }
            if slot == SERVICES_MAX {
                log!(
                    console,
                    "init: more than {} programs in /bin; not starting {}",
                    SERVICES_MAX,
                    show(name)
                );
                continue;
            }
            let mut service = Service {
                name: Text::new(),
                pid: None,
                started_ms: 0,
                restart_at_ms: None,
                backoff: Backoff::default(),
                restarts: 0,
                autostart: true,
                streams: [Stream::new(b".log"), Stream::new(b".err")],
            };
            service.name.push(name);
            for entry in boot::services::parse(&self.config[..self.config_len]).flatten() {
                if entry.service == name {
                    if let boot::services::Setting::Autostart(on) = entry.setting {
                        service.autostart = on;
                    }
                }
            }
            self.services[slot] = Some(service);
            slot += 1;
        }
    }

    fn config(&self) -> &[u8] {
        &self.config[..self.config_len]
    }

    /// Writes the service list ([`boot::service_list`]) for admind's status, through a
    /// rename so readers never see half a file.
    fn publish(&self) {
        let mut text: Text<4096> = Text::new();
        for s in self.services.iter().flatten() {
            let entry = boot::service_list::Entry {
                name: core::str::from_utf8(s.name.as_bytes()).unwrap_or("?"),
                restarts: s.restarts,
            };
            let _ = write!(text, "{}", entry);
        }
        let _ = runtime::file::replace_file(
            boot::service_list::TEMP_PATH,
            boot::service_list::PATH,
            text.as_bytes(),
        );
    }

    pub fn start_all(&mut self, console: &Console) {
        self.publish();
        for i in 0..SERVICES_MAX {
            let autostart = self.services[i].as_ref().is_some_and(|s| s.autostart);
            if autostart {
                self.start(console, i);
            } else if let Some(s) = &self.services[i] {
                log!(
                    console,
                    "init: {} is not started on boot (autostart no)",
                    show(s.name.as_bytes())
                );
            }
        }
    }

    /// Starts service `i`: fresh pipes, argv and environment from the services file.
    fn start(&mut self, console: &Console, i: usize) {
        let mut strings = [0u8; EXEC_BYTES_MAX];
        let mut used = 0;
        let mut argv: [*const c_char; ARGS_MAX + 2] = [core::ptr::null(); ARGS_MAX + 2];
        let mut envp: [*const c_char; ENVS_MAX + 2] = [core::ptr::null(); ENVS_MAX + 2];
        let config = &self.config[..self.config_len];
        let Some(service) = self.services[i].as_mut() else {
            return;
        };
        let name = service.name.as_bytes();
        // Each string is copied in with its NUL; the pointers point into `strings`, which
        // outlives the fork.
        let mut add = |bytes: &[&[u8]]| -> Option<*const c_char> {
            let len: usize = bytes.iter().map(|b| b.len()).sum();
            if used + len + 1 > strings.len() || bytes.iter().any(|b| b.contains(&0)) {
                return None;
            }
            let start = used;
            for b in bytes {
                strings[used..used + b.len()].copy_from_slice(b);
                used += b.len();
            }
            strings[used] = 0;
            used += 1;
            Some(strings[start..].as_ptr().cast())
        };
        let Some(path) = add(&[b"/bin/", name]) else {
            return;
        };
        argv[0] = path;
        envp[0] = add(&[b"PATH=/bin"]).unwrap_or(core::ptr::null());
        let (mut nargs, mut nenvs, mut dropped) = (1, 1, 0);
        for entry in boot::services::parse(config)
            .flatten()
            .filter(|e| e.service == name)
        {
            match entry.setting {
                boot::services::Setting::Arg(a) => match add(&[a]) {
                    Some(p) if nargs <= ARGS_MAX => {
                        argv[nargs] = p;
                        nargs += 1;
                    }
                    _ => dropped += 1,
                },
                boot::services::Setting::Env(e) => match add(&[e]) {
                    Some(p) if nenvs <= ENVS_MAX => {
                        envp[nenvs] = p;
                        nenvs += 1;
                    }
                    _ => dropped += 1,
                },
                boot::services::Setting::Autostart(_) => {}
            }
        }
        if dropped > 0 {
            log!(console, "init: {}: {} arguments/variables over the limits ({} args, {} variables, {} bytes) left out", show(name), dropped, ARGS_MAX, ENVS_MAX, EXEC_BYTES_MAX);
        }
        let pipes = (
            rustix::pipe::pipe_with(PipeFlags::CLOEXEC),
            rustix::pipe::pipe_with(PipeFlags::CLOEXEC),
        );
        let ((out_r, out_w), (err_r, err_w)) = match pipes {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                service.restart_at_ms = Some(now_ms() + service.backoff.delay_after_exit(0));
                return log!(
                    console,
                    "init: cannot start {}: no pipe ({})",
                    show(name),
                    e
                );
            }
        };
        let exec = sys::Exec {
            path,
            argv: &argv,
            envp: &envp,
            stdout: &out_w,
            stderr: &err_w,
        };
        match sys::spawn(&exec) {
            Ok(pid) => {
                for (stream, read) in service.streams.iter_mut().zip([out_r, err_r]) {
                    let _ = rustix::io::ioctl_fionbio(&read, true);
                    stream.pipe = Some(read);
                }
                service.pid = Some(pid);
                service.started_ms = now_ms();
                service.restart_at_ms = None;
                log!(
                    console,
                    "init: started {} (pid {})",
                    show(name),
                    pid.as_raw_nonzero()
                );
            }
            Err(e) => {
                let delay = service.backoff.delay_after_exit(0);
                service.restart_at_ms = Some(now_ms() + delay);
                log!(
                    console,
                    "init: cannot start {} ({}); trying again in {} ms",
                    show(name),
                    e,
                    delay
                );
            }
        }
    }

    /// The earliest pending restart.
    pub fn next_restart_ms(&self) -> Option<u64> {
        self.services
            .iter()
            .flatten()
            .filter_map(|s| s.restart_at_ms)
            .min()
    }

    /// Waits until `wake_ms` or an event (output, signal); handles it. Returns a shutdown
    /// request if a signal asked for one.
    pub fn wait_and_handle(
        &mut self,
        console: &Console,
        signals: Option<&OwnedFd>,
        wake_ms: u64,
    ) -> Option<RebootCommand> {
        // Slot 0: the signalfd; slot 1 + 2i + j: stream j (stdout, stderr) of service i.
        let mut slots: [Option<BorrowedFd<'_>>; 1 + 2 * SERVICES_MAX] =
            [None; 1 + 2 * SERVICES_MAX];
        slots[0] = signals.map(|fd| fd.as_fd());
        for (i, service) in self.services.iter().enumerate() {
            for (j, stream) in service.iter().flat_map(|s| s.streams.iter()).enumerate() {
                slots[1 + 2 * i + j] = stream.pipe.as_ref().map(|pipe| pipe.as_fd());
            }
        }
        // Without a signalfd, children are reaped by polling every second.
        let cap_ms = if signals.is_some() { u64::MAX } else { 1000 };
        let timeout_ms =
            Some(wake_ms.saturating_sub(now_ms()).min(cap_ms)).filter(|&ms| ms < i32::MAX as u64);
        let slot_ready = match runtime::poll::wait_readable(&slots, timeout_ms) {
            Ok(ready) => ready,
            Err(e) => {
                log!(console, "init: poll failed: {}", e);
                [false; 1 + 2 * SERVICES_MAX]
            }
        };
        let mut ready = [(0u8, 0u8); 2 * SERVICES_MAX];
        let mut nready = 0;
        for (k, _) in slot_ready.iter().enumerate().skip(1).filter(|(_, &r)| r) {
            ready[nready] = (((k - 1) / 2) as u8, ((k - 1) % 2) as u8);
            nready += 1;
        }
        let signal_ready = slot_ready[0];
        self.after_wait(console, signals, signal_ready, &ready[..nready])
    }

    /// Handles what a wait found: output to drain, signals, exited children, due restarts.
    fn after_wait(
        &mut self,
        console: &Console,
        signals: Option<&OwnedFd>,
        signal_ready: bool,
        ready: &[(u8, u8)],
    ) -> Option<RebootCommand> {
        for &(i, j) in ready {
            self.drain(console, i as usize, j as usize);
        }
        let mut request = None;
        if signal_ready || signals.is_none() {
            while let Some(sig) = signals.and_then(sys::next_signal) {
                request = request.or(match sig {
                    libc::SIGUSR1 | libc::SIGINT | libc::SIGTERM => Some(RebootCommand::Restart),
                    libc::SIGUSR2 | libc::SIGPWR => Some(RebootCommand::PowerOff),
                    _ => None,
                });
            }
            self.reap(console);
        }
        let now = now_ms();
        for i in 0..SERVICES_MAX {
            if self.services[i]
                .as_ref()
                .is_some_and(|s| s.restart_at_ms.is_some_and(|t| t <= now))
            {
                self.start(console, i);
            }
        }
        request
    }

    /// Reads what a service wrote and logs it line by line.
    fn drain(&mut self, console: &Console, i: usize, j: usize) {
        let Some(Service { name, streams, .. }) = self.services[i].as_mut() else {
            return;
        };
        let Stream { pipe, lines, log } = &mut streams[j];
        let Some(fd) = pipe else { return };
        let mut buf = [0u8; READ_CHUNK_BYTES];
        match rustix::io::read(&*fd, &mut buf) {
            Ok(0) => {
                *pipe = None;
                lines.flush(|line| log_line(console, name.as_bytes(), log, line));
            }
            Ok(n) => lines.feed(&buf[..n], |line| {
                log_line(console, name.as_bytes(), log, line)
            }),
            Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(_) => *pipe = None,
        }
    }

    /// Collects every exited child; schedules restarts for services.
    fn reap(&mut self, console: &Console) {
        let mut changed = false;
        loop {
            let (pid, status) = match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => (pid, status),
                Ok(None) | Err(_) => {
                    if changed {
                        self.publish();
                    }
                    return;
                }
            };
            let Some(service) = self
                .services
                .iter_mut()
                .flatten()
                .find(|s| s.pid == Some(pid))
            else {
                continue; // an orphan: reaped, nothing else to do
            };
            let ran_ms = now_ms().saturating_sub(service.started_ms);
            let delay = service.backoff.delay_after_exit(ran_ms);
            service.pid = None;
            service.restarts = service.restarts.saturating_add(1);
            changed = true;
            service.restart_at_ms = Some(now_ms() + delay);
            let mut how: Text<32> = Text::new();
            match (status.exit_status(), status.terminating_signal()) {
                (Some(code), _) => {
                    let _ = write!(how, "with status {code}");
                }
                (_, Some(sig)) => {
                    let _ = write!(how, "on signal {sig}");
                }
                _ => how.push(b"(unknown status)"),
            }
            log!(
                console,
                "init: {} exited {} after {} ms; restarting in {} ms",
                show(service.name.as_bytes()),
                show(how.as_bytes()),
                ran_ms,
                delay
            );
        }
    }

    /// Stops every service and ends the system with `action`; a restart with `tryboot`
    /// asks the Raspberry Pi firmware for the trial slot. Never returns.
    pub fn shutdown(
        &mut self,
        console: &Console,
        signals: Option<&OwnedFd>,
        action: RebootCommand,
        tryboot: bool,
    ) -> ! {
        let what = if action == RebootCommand::PowerOff {
            "power off"
        } else {
            "reboot"
        };
        log!(console, "init: stopping services to {}", what);
        for service in self.services.iter_mut().flatten() {
            service.restart_at_ms = None;
            if let Some(pid) = service.pid {
                let _ = rustix::process::kill_process_group(pid, Signal::TERM);
            }
        }
        let deadline = now_ms() + SHUTDOWN_GRACE_MS;
        while self.services.iter().flatten().any(|s| s.pid.is_some()) && now_ms() < deadline {
            let _ = self.wait_and_handle(console, signals, deadline.min(now_ms() + 100));
            for service in self.services.iter_mut().flatten() {
                service.restart_at_ms = None;
            }
        }
        // Everything left, services and orphans alike.
        // SAFETY: kill(-1, SIGKILL) signals every process but init itself; no memory involved.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
        for i in 0..SERVICES_MAX {
            for j in 0..2 {
                self.drain(console, i, j);
            }
        }
        crate::clock::save(console);
        rustix::fs::sync();
        crate::mounts::unmount_disk(console);
        rustix::fs::sync();
        if tryboot {
            log!(console, "{}", boot::rpi::TRYBOOT_RESTART_LINE);
            crate::record::restart_with_tryboot();
            log!(
                console,
                "init: the kernel refused the tryboot restart; restarting plainly"
            );
        }
        log!(console, "init: {} now", what);
        let result = rustix::system::reboot(action);
        log!(
            console,
            "init: reboot(2) failed: {:?}; halting here",
            result
        );
        loop {
            let _ = rustix::event::poll(&mut [], None);
        }
    }
}

/// Bytes as text for messages (names are validated ASCII; anything else shows as '?').
pub fn show(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}
