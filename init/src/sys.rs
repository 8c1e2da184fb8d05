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
}

/// Forks; the child joins a new process group, gets /dev/null as stdin and the pipes as
/// stdout/stderr, an empty signal mask, and execs. Returns the child's pid.
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
    // async-signal-safe calls (sigprocmask, setpgid, dup2, execve, write, _exit) before
    // exec or exit, and touches no allocator or lock.
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
            libc::execve(exec.path, exec.argv.as_ptr(), exec.envp.as_ptr());
            let msg = b"init: exec failed\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
    }
    // A positive pid from fork is a valid Pid.
    Ok(rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT))
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
