//! Supervision: every executable in /bin except init, started with the settings from
//! `boot::services::PATH`, restarted with backoff, reaped, and listed for admind.
//! Output: `service_log`; the wait: `wait`; the end: `shutdown`.

use crate::log;
use crate::sandbox;
use crate::service_log::Stream;
use crate::sys::{self, now_ms, Console, Text};
use core::fmt::Write;
use core::mem::MaybeUninit;
use init::backoff::Backoff;
use init::confinement::Confinement;
use init::exec_args::{self, ExecArgs};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, WaitOptions};

/// Most services supervised; more executables in /bin are reported and left alone.
pub const SERVICES_MAX: usize = 32;
const CONFIG_BYTES_MAX: usize = boot::services::FILE_BYTES_MAX;

/// Signals init takes through its signalfd.
pub const HANDLED_SIGNALS: [i32; 6] = [
    libc::SIGCHLD,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGPWR,
];

pub(crate) struct Service {
    pub name: Text<65>,
    pub pid: Option<Pid>,
    started_ms: u64,
    pub restart_at_ms: Option<u64>,
    backoff: Backoff,
    restarts: u32,
    autostart: bool,
    confinement: Confinement,
    /// It has a control group with its limits; otherwise rlimits.
    grouped: bool,
    pub streams: [Stream; 2],
}

pub struct Supervisor {
    pub(crate) services: [Option<Service>; SERVICES_MAX],
    config: [u8; CONFIG_BYTES_MAX],
    config_len: usize,
}

impl Supervisor {
    /// Reads what service `i` wrote on stream `j` (0 stdout, 1 stderr) and logs it line by
    /// line (`service_log`).
    pub(crate) fn drain(&mut self, console: &Console, i: usize, j: usize) {
        if let Some(Some(Service { name, streams, .. })) = self.services.get_mut(i) {
            if let Some(stream) = streams.get_mut(j) {
                stream.drain(console, name.as_bytes());
            }
        }
    }

    pub fn new() -> Supervisor {
        Supervisor {
            services: [const { None }; SERVICES_MAX],
            config: [0; CONFIG_BYTES_MAX],
            config_len: 0,
        }
    }

    /// Reads the services file, lists /bin and sets up each service's confinement.
    pub fn load(&mut self, console: &Console) {
        let (groups, ram_bytes) = sandbox::prepare(console);
        match sys::read_file(c"/etc/rustkrazy/services", &mut self.config) {
            Ok(text) => {
                self.config_len = text.len();
                if self.config_len == CONFIG_BYTES_MAX {
                    // Not half a line: a cut `user 20000` would read as `user 2000`.
                    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
                    self.config_len = whole;
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
                confinement: Confinement::for_service(name, self.config(), ram_bytes),
                grouped: false,
                streams: [
                    Stream::new(boot::logs::STDOUT_SUFFIX.as_bytes()),
                    Stream::new(boot::logs::STDERR_SUFFIX.as_bytes()),
                ],
            };
            service.name.push(name);
            let settings = boot::services::parse(self.config()).flatten();
            for entry in settings.filter(|e| e.service == name) {
                if let boot::services::Setting::Autostart(on) = entry.setting {
                    service.autostart = on;
                }
            }
            service.grouped = sandbox::set_up(console, name, &service.confinement, groups);
            self.services[slot] = Some(service);
            slot += 1;
        }
    }

    fn config(&self) -> &[u8] {
        &self.config[..self.config_len]
    }

    /// Writes the service list ([`boot::service_list`]) for admind's status, through a
    /// rename so readers never see half a file.
    pub(crate) fn publish(&self) {
        let mut text: Text<4096> = Text::new();
        for s in self.services.iter().flatten() {
            let entry = boot::service_list::Entry {
                name: core::str::from_utf8(s.name.as_bytes()).unwrap_or("?"),
                restarts: s.restarts,
                pid: s.pid.map(|p| p.as_raw_nonzero().get().unsigned_abs()),
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
    pub(crate) fn start(&mut self, console: &Console, i: usize) {
        let config = &self.config[..self.config_len];
        let Some(service) = self.services[i].as_mut() else {
            return;
        };
        let name = service.name.as_bytes();
        let Some(args) = ExecArgs::for_service(name, config) else {
            return;
        };
        if args.dropped > 0 {
            log!(console, "init: {}: {} arguments/variables over the limits ({} args, {} variables, {} bytes) left out", show(name), args.dropped, exec_args::ARGS_MAX, exec_args::ENVS_MAX, exec_args::STRINGS_BYTES_MAX);
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
        let (argv, envp) = (args.argv(), args.envp());
        let mut procs = sandbox::path(name, b"cgroup.procs");
        let mut oom: Text<8> = Text::new();
        let _ = write!(oom, "{}", service.confinement.oom);
        let exec = sys::Exec {
            path: args.path(),
            argv: &argv,
            envp: &envp,
            stdout: &out_w,
            stderr: &err_w,
            confinement: &service.confinement,
            cgroup_procs: procs.as_cstr().filter(|_| service.grouped),
            oom: oom.as_bytes(),
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
        // admind's readiness checks need the new pid.
        self.publish();
    }

    /// The earliest pending restart.
    pub fn next_restart_ms(&self) -> Option<u64> {
        self.services
            .iter()
            .flatten()
            .filter_map(|s| s.restart_at_ms)
            .min()
    }

    /// Collects every exited child; schedules restarts for services.
    pub(crate) fn reap(&mut self, console: &Console) {
        let mut changed = false;
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
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
            let _ = match (status.exit_status(), status.terminating_signal()) {
                (Some(code), _) => write!(how, "with status {code}"),
                (_, Some(sig)) => write!(how, "on signal {sig}"),
                _ => how.write_str("(unknown status)"),
            };
            log!(
                console,
                "init: {} exited {} after {} ms; restarting in {} ms",
                show(service.name.as_bytes()),
                show(how.as_bytes()),
                ran_ms,
                delay
            );
        }
        if changed {
            self.publish();
        }
    }
}

/// Bytes as text for messages (names are validated ASCII; anything else shows as '?').
pub fn show(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}
