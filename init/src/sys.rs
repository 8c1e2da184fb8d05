//! The system glue only PID 1 needs, beyond the device runtime: a non-blocking console,
//! fork/exec and signals through musl.

use core::ffi::c_char;
pub use runtime::clock::monotonic_ms as now_ms;
pub use runtime::file::{read_file, write_all};
pub use runtime::output::write_stderr;
pub use runtime::Text;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// The console, opened non-blocking: a slow serial line drops lines rather than stalling
/// PID 1.
pub struct Console {
    fd: Option<OwnedFd>,
}

impl Console {
    pub fn open() -> Console {
        let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(c"/dev/console", flags, Mode::empty())
            .ok()
            .or_else(|| {
                // No /dev/console node (e.g. run in a container): fall back to stderr.
                // SAFETY: fd 2 is only borrowed for the duplication; if it is not open,
                // the call fails and we go without a console.
                let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
                rustix::io::fcntl_dupfd_cloexec(stderr, 3).ok()
            });
        Console { fd }
    }

    pub fn write(&self, bytes: &[u8]) {
        if let Some(fd) = &self.fd {
            let _ = write_all(fd, bytes);
        }
    }
}

/// What a child needs to become a service.
pub struct Exec<'a> {
    pub path: *const c_char,
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    pub stdout: &'a OwnedFd,
    pub stderr: &'a OwnedFd,
    pub confinement: &'a init::confinement::Confinement,
    /// The group's `cgroup.procs`; `None` when there are no groups (rlimits instead).
    pub cgroup_procs: Option<&'a core::ffi::CStr>,
    /// `oom_score_adj`'s value as text.
    pub oom: &'a [u8],
}

/// Forks; the child joins a new process group, gets /dev/null as stdin and the pipes as
/// stdout/stderr, an empty signal mask, its confinement (`confine`), and execs. Returns
/// the child's pid.
pub fn spawn(exec: &Exec<'_>) -> Result<rustix::process::Pid, Errno> {
    use rustix::fd::AsRawFd;
    let null = rustix::fs::open(
        c"/dev/null",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let (null_fd, out_fd, err_fd) = (
        null.as_raw_fd(),
        exec.stdout.as_raw_fd(),
        exec.stderr.as_raw_fd(),
    );
    // SAFETY: init is single-threaded, so the child is a complete copy; it only makes
    // async-signal-safe system calls (sigprocmask, setpgid, dup2, open, write, setrlimit,
    // setgroups, setgid, setuid, prctl, capset, execve, _exit) before exec or exit, and
    // touches no allocator or lock.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::from_raw_os_error(unsafe_errno()));
    }
    if pid == 0 {
        // SAFETY: see above; every pointer passed lives in the parent's (copied) stack
        // frame, and argv/envp are NULL-terminated arrays of NUL-terminated strings built
        // by the caller.
        unsafe {
            let mut empty: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, core::ptr::null_mut());
            libc::setpgid(0, 0);
            libc::dup2(null_fd, 0);
            libc::dup2(out_fd, 1);
            libc::dup2(err_fd, 2);
            if let Err(why) = confine(exec) {
                say(b"init: not starting: cannot leave root (");
                say(why);
                say(b")\n");
                libc::_exit(126);
            }
            libc::execve(exec.path, exec.argv.as_ptr(), exec.envp.as_ptr());
            let msg = b"init: exec failed\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
    }
    // A positive pid from fork is a valid Pid.
    Ok(rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT))
}

/// Writes to the child's stderr (its log).
fn say(text: &[u8]) {
    // SAFETY: fd 2 is the child's; a failed write only loses the message.
    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}

/// The child's confinement, in this order because each step needs root: join the group
/// (or take rlimits), set the OOM priority, then become the service's user, keeping only
/// its capabilities, with no way back (`no_new_privs`). A failure to apply a limit is said
/// and survived; a failure to leave root stops the start: `Err` names the call. Called only
/// in the forked child, before exec (see `spawn`).
fn confine(exec: &Exec<'_>) -> Result<(), &'static [u8]> {
    let c = exec.confinement;
    // SAFETY: the path is a NUL-terminated C string; the written byte lives in .rodata; the
    // descriptor is left to exec (close-on-exec).
    let joined = exec.cgroup_procs.is_some_and(|procs| unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1
    });
    // Root (link, admind) keeps its address space whole without a group: RLIMIT_AS counts
    // what is mapped, not what is used.
    if !joined && !c.is_root() {
        if exec.cgroup_procs.is_some() {
            say(b"init: cannot join the program's control group; its limits are rlimits\n");
        }
        let limit = |bytes: u64| libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        unsafe {
            libc::setrlimit(libc::RLIMIT_AS, &limit(c.memory_bytes));
            libc::setrlimit(libc::RLIMIT_NPROC, &limit(c.tasks.into()));
        }
    }
    if c.oom != 0 {
        // SAFETY: a NUL-terminated path, and a write from a live slice of its length.
        let set = unsafe {
            let fd = libc::open(
                c"/proc/self/oom_score_adj".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            fd >= 0 && libc::write(fd, exec.oom.as_ptr().cast(), exec.oom.len()) > 0
        };
        if !set {
            say(b"init: cannot set the program's OOM score adjustment\n");
        }
    }
    if c.is_root() {
        return Ok(());
    }
    let check = |result: libc::c_long, call: &'static [u8]| match result {
        0 => Ok(()),
        _ => Err(call),
    };
    // SAFETY: plain system calls on this process; setgroups gets an empty list.
    unsafe {
        check(libc::setgroups(0, core::ptr::null()).into(), b"setgroups")?;
        check(libc::setgid(c.uid).into(), b"setgid")?;
        if c.caps != 0 {
            check(
                libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0).into(),
                b"keepcaps",
            )?;
        }
        check(libc::setuid(c.uid).into(), b"setuid")?;
    }
    if c.caps != 0 {
        // struct __user_cap_header_struct, then two __user_cap_data_struct (version 3):
        // effective, permitted, inheritable for capabilities 0-31, then 32-63.
        let header: [u32; 2] = [0x2008_0522, 0];
        let (low, high) = (c.caps as u32, (c.caps >> 32) as u32);
        let data: [u32; 6] = [low, low, low, high, high, high];
        // SAFETY: both arrays live until the call returns and have the kernel's layout.
        let set = unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) };
        check(set, b"capset")?;
        // Ambient: kept across exec for a program file with no capabilities of its own.
        for cap in (0..64u64).filter(|bit| c.caps & 1 << bit != 0) {
            let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
            // SAFETY: prctl with integer arguments only.
            let raised = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, raise, cap, 0, 0) };
            check(raised.into(), b"ambient capabilities")?;
        }
    }
    // SAFETY: prctl with integer arguments only.
    let sealed = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(sealed.into(), b"no_new_privs")
}

fn unsafe_errno() -> i32 {
    // SAFETY: musl's __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Blocks the signals init handles and returns a signalfd that reports them.
pub fn signal_fd(signals: &[i32]) -> Result<OwnedFd, Errno> {
    use rustix::fd::FromRawFd;
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; signalfd
    // returns a new descriptor (or -1), which we own from here on.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) != 0 {
            return Err(Errno::from_raw_os_error(unsafe_errno()));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(Errno::from_raw_os_error(unsafe_errno()));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one pending signal number from a signalfd, if any.
pub fn next_signal(fd: &OwnedFd) -> Option<i32> {
    let mut info = [0u8; 128]; // struct signalfd_siginfo
    match rustix::io::read(fd, &mut info) {
        Ok(128) => Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32),
        _ => None,
    }
}
