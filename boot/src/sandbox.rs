//! What init confines each program to, and where admind reads what the confinement stopped:
//! the program's user, its capabilities, its control group with a memory and a task limit,
//! its OOM priority and its private folder on /data. The settings come from the services
//! file ([`crate::services`]); the defaults are here.
//!
//! Control groups (cgroup v2, mounted at [`CGROUP_ROOT`]): one per program, [`CGROUP_ROOT`]
//! `/NAME`, created by init with `memory.max` and `pids.max` written, joined by the program
//! before it execs. Their `memory.events` (`oom_kill N`) and `pids.events` (`max N`) count
//! what the limits stopped; admind reports them in `/status`.

/// Where init mounts cgroup2.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Tasks (processes and threads) a program may have at once, unless it says otherwise:
/// room for a thread pool (tokio's blocking pool is up to 512) without letting a fork loop
/// fill the process table.
pub const TASKS_DEFAULT: u32 = 1024;
/// Most tasks a limit may name (the kernel's PID_MAX_LIMIT: `pids.max` refuses more).
pub const TASKS_MAX: u32 = 4 << 20;
/// A program's memory limit, unless it says otherwise: this share of the machine's RAM, so
/// one program cannot take the memory init, link and admind need.
pub const MEMORY_SHARE_DEFAULT: (u64, u64) = (1, 2);

/// The OOM score adjustment imgtool gives rustkrazy's own programs (link and admind): when
/// the machine runs out of memory, every other program goes before them. (init, PID 1, is
/// never chosen.)
pub const OOM_SYSTEM: i16 = -900;

/// First and last user id a program gets by default (see [`default_uid`]). Below: the ids
/// conventional Linux systems reserve; above: 65534 (nobody) and the 32-bit range some
/// tools mishandle.
pub const DEFAULT_UID_FIRST: u32 = 10_000;
pub const DEFAULT_UID_LAST: u32 = 59_999;

/// The user (and group) a program runs as when the services file names none: a number
/// derived from its name, so it is the same on every boot and after every update, and the
/// files it leaves in its folder on /data stay its own. imgtool refuses an image in which
/// two programs would share one (`user = N` settles it).
pub fn default_uid(name: &[u8]) -> u32 {
    // FNV-1a: stable, and spreads short names well.
    let hash = name.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    DEFAULT_UID_FIRST + hash % (DEFAULT_UID_LAST - DEFAULT_UID_FIRST + 1)
}

/// Folder on /data each program that does not run as root owns (mode 0700): `/data/NAME`.
/// The name [`SYSTEM_DATA_NAME`] is init's own and gets no folder.
pub const DATA_DIR: &str = "/data";
pub const SYSTEM_DATA_NAME: &[u8] = b"rustkrazy";

/// Linux capability names as the appliance file spells them (without `CAP_`, lower case),
/// at their bit numbers (linux/capability.h).
pub const CAPABILITIES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The capability set (bit n = capability n) of space-separated names, or the first name
/// that is not one.
pub fn capability_set(names: &[u8]) -> Result<u64, &[u8]> {
    let mut set = 0u64;
    for name in names.split(|&b| b == b' ').filter(|n| !n.is_empty()) {
        let bit = CAPABILITIES
            .iter()
            .position(|c| c.as_bytes() == name)
            .ok_or(name)?;
        set |= 1 << bit;
    }
    Ok(set)
}

/// A counter from a cgroup events file (`memory.events`, `pids.events`): the number after
/// `key` on its line, 0 when absent.
pub fn event_count(events: &str, key: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_users_are_stable_in_range_and_differ() {
        assert_eq!(default_uid(b"web"), default_uid(b"web"));
        for name in [&b"a"[..], b"web", b"admind", &[b'z'; 64]] {
            let uid = default_uid(name);
            assert!((DEFAULT_UID_FIRST..=DEFAULT_UID_LAST).contains(&uid));
        }
        assert_ne!(default_uid(b"web"), default_uid(b"web2"));
    }

    #[test]
    fn capability_names_map_to_their_bits() {
        assert_eq!(capability_set(b"net_bind_service"), Ok(1 << 10));
        assert_eq!(capability_set(b"chown  net_raw"), Ok(1 | 1 << 13));
        assert_eq!(capability_set(b""), Ok(0));
        assert_eq!(
            capability_set(b"net_bind_service CAP_KILL"),
            Err(&b"CAP_KILL"[..])
        );
        assert_eq!(CAPABILITIES[40], "checkpoint_restore");
    }

    #[test]
    fn event_counters_are_read_by_key() {
        let events = "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(event_count(events, "max"), 7);
        assert_eq!(event_count(events, "oom_kill"), 2);
        assert_eq!(event_count(events, "oom"), 2);
        assert_eq!(event_count(events, "missing"), 0);
        assert_eq!(event_count("", "max"), 0);
    }
}
