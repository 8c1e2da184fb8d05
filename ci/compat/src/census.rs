//! The system call census: each call a program may make, made with arguments that make it do
//! nothing (a bad descriptor, a null pointer, unknown flags or an empty range; the kernel
//! refuses most, and a few succeed having nothing to do), and what the kernel answered.
//! ENOSYS means the kernel was built without it. Some rows are one argument away from harm
//! (seccomp's operation 0 is strict mode; close_range with its bounds swapped closes
//! descriptors): change an argument only with the kernel's checks in front of you. One line per call:
//! `census: NAME USERS: ok|ENOSYS|EINVAL|...`; USERS ending in "optional" marks calls no
//! program needs to work (the test requires the others to be there).

use linux_raw_sys::general as nr;

/// (name, number, arguments, who uses it).
type Call = (&'static str, u32, [usize; 6], &'static str);

const BAD_FD: usize = usize::MAX; // -1
const BAD_FLAGS: usize = 0xffff;

// One line per call, read as a table (rustfmt would spread each row over eight).
#[rustfmt::skip]
const CALLS: &[Call] = &[
    ("futex", nr::__NR_futex, [0, 1, 0, 0, 0, 0], "std"),
    ("epoll_create1", nr::__NR_epoll_create1, [BAD_FLAGS, 0, 0, 0, 0, 0], "tokio"),
    ("epoll_pwait", nr::__NR_epoll_pwait, [BAD_FD, 0, 1, 0, 0, 8], "tokio"),
    ("eventfd2", nr::__NR_eventfd2, [0, BAD_FLAGS, 0, 0, 0, 0], "tokio"),
    ("timerfd_create", nr::__NR_timerfd_create, [BAD_FD, 0, 0, 0, 0, 0], "timers"),
    ("signalfd4", nr::__NR_signalfd4, [BAD_FD, 0, 8, 0, 0, 0], "signal handling"),
    ("pipe2", nr::__NR_pipe2, [0, BAD_FLAGS, 0, 0, 0, 0], "std"),
    ("accept4", nr::__NR_accept4, [BAD_FD, 0, 0, 0, 0, 0], "std"),
    ("socket", nr::__NR_socket, [BAD_FD, 0, 0, 0, 0, 0], "std"),
    ("getrandom", nr::__NR_getrandom, [0, 0, 1, 0, 0, 0], "std, ring"),
    ("statx", nr::__NR_statx, [BAD_FD, 0, 0, 0, 0, 0], "std::fs::metadata"),
    ("copy_file_range", nr::__NR_copy_file_range, [BAD_FD, 0, BAD_FD, 0, 1, 0], "std::fs::copy"),
    ("sendfile", nr::__NR_sendfile, [BAD_FD, BAD_FD, 0, 1, 0, 0], "std::fs::copy, web servers"),
    ("splice", nr::__NR_splice, [BAD_FD, 0, BAD_FD, 0, 1, 0], "std::io::copy"),
    ("clone3", nr::__NR_clone3, [0, 0, 0, 0, 0, 0], "glibc programs"),
    ("pidfd_open", nr::__NR_pidfd_open, [0, 0, 0, 0, 0, 0], "process supervisors"),
    ("close_range", nr::__NR_close_range, [10, 5, 0, 0, 0, 0], "process spawners"),
    ("sched_getaffinity", nr::__NR_sched_getaffinity, [0, 0, 0, 0, 0, 0], "std, tokio"),
    ("prlimit64", nr::__NR_prlimit64, [0, 999, 0, 0, 0, 0], "std (stack size)"),
    ("preadv2", nr::__NR_preadv2, [BAD_FD, 0, 0, 0, 0, 0], "databases"),
    ("openat2", nr::__NR_openat2, [BAD_FD, 0, 0, 0, 0, 0], "path resolvers"),
    ("faccessat2", nr::__NR_faccessat2, [BAD_FD, 0, 0, BAD_FLAGS, 0, 0], "C libraries' access()"),
    ("flock", nr::__NR_flock, [BAD_FD, 1, 0, 0, 0, 0], "lock files, SQLite"),
    ("fallocate", nr::__NR_fallocate, [BAD_FD, 0, 0, 1, 0, 0], "SQLite"),
    ("sync_file_range", nr::__NR_sync_file_range, [BAD_FD, 0, 0, 0, 0, 0], "databases"),
    ("madvise", nr::__NR_madvise, [0, 0, BAD_FLAGS, 0, 0, 0], "allocators, memmap2"),
    ("fadvise64", nr::__NR_fadvise64, [BAD_FD, 0, 0, 0, 0, 0], "SQLite, std::fs users"),
    ("mremap", nr::__NR_mremap, [0, 0, 0, 0, 0, 0], "allocators"),
    ("msync", nr::__NR_msync, [0, 0, BAD_FLAGS, 0, 0, 0], "memmap2"),
    ("mlock", nr::__NR_mlock, [0, 0, 0, 0, 0, 0], "key stores"),
    ("memfd_create", nr::__NR_memfd_create, [0, 0, 0, 0, 0, 0], "std, allocators"),
    ("membarrier", nr::__NR_membarrier, [0, 0, 0, 0, 0, 0], "userspace RCU"),
    ("inotify_init1", nr::__NR_inotify_init1, [BAD_FLAGS, 0, 0, 0, 0, 0], "notify"),
    ("name_to_handle_at", nr::__NR_name_to_handle_at, [BAD_FD, 0, 0, 0, 0, 0], "file servers"),
    ("io_uring_setup", nr::__NR_io_uring_setup, [0, 0, 0, 0, 0, 0], "tokio-uring"),
    ("io_setup", nr::__NR_io_setup, [0, 0, 0, 0, 0, 0], "Linux AIO"),
    ("shmctl", nr::__NR_shmctl, [BAD_FD, 2, 0, 0, 0, 0], "SysV IPC"),
    ("semctl", nr::__NR_semctl, [BAD_FD, 0, 2, 0, 0, 0], "SysV IPC"),
    ("msgctl", nr::__NR_msgctl, [BAD_FD, 2, 0, 0, 0, 0], "SysV IPC"),
    ("mq_open", nr::__NR_mq_open, [0, 0, 0, 0, 0, 0], "POSIX message queues"),
    // glibc registers it to speed up sched_getcpu, and goes on without it.
    ("rseq", nr::__NR_rseq, [0, 0, BAD_FLAGS, 0, 0, 0], "glibc, optional"),
    ("fanotify_init", nr::__NR_fanotify_init, [usize::MAX, 0, 0, 0, 0, 0], "none, optional"),
    ("userfaultfd", nr::__NR_userfaultfd, [BAD_FLAGS, 0, 0, 0, 0, 0], "none, optional"),
    ("seccomp", nr::__NR_seccomp, [BAD_FLAGS, 0, 0, 0, 0, 0], "none, optional"),
    ("landlock_create_ruleset", nr::__NR_landlock_create_ruleset, [0, 0, BAD_FLAGS, 0, 0, 0], "none, optional"),
    ("bpf", nr::__NR_bpf, [BAD_FLAGS, 0, 0, 0, 0, 0], "none, optional"),
    ("perf_event_open", nr::__NR_perf_event_open, [0, 0, BAD_FD, BAD_FD, 0, 0], "none, optional"),
    ("pkey_alloc", nr::__NR_pkey_alloc, [BAD_FLAGS, 0, 0, 0, 0, 0], "none, optional"),
];

pub fn print() {
    let mut missing = Vec::new();
    for &(name, number, a, users) in CALLS {
        // SAFETY: CALLS' arguments make each call a no-op (refused, or an empty request): no
        // memory of ours is read or written, no descriptor or process is touched.
        let r =
            unsafe { libc::syscall(number as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
        let answer = if r >= 0 {
            "ok".to_string()
        } else {
            errno_name(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        };
        if answer == "ENOSYS" && !users.ends_with("optional") {
            missing.push(name);
        }
        println!("census: {name} {users}: {answer}");
    }
    println!(
        "census: {} calls, missing (ENOSYS) that programs use: {}",
        CALLS.len(),
        if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(" ")
        }
    );
}

fn errno_name(e: i32) -> String {
    match e {
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::EBADF => "EBADF",
        libc::EFAULT => "EFAULT",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::E2BIG => "E2BIG",
        _ => return format!("errno {e}"),
    }
    .to_string()
}
