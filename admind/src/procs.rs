//! Processes from /proc: the process list, services (children of init) with the restart
//! counts init publishes, memory, and signals.

use admin_api::json::string as json_string;
use admin_api::status::Service;
use std::path::Path;

/// One line of /proc/PID/stat, the fields used here.
struct Stat {
    pid: i32,
    name: String,
    state: char,
    ppid: i32,
    cpu_ticks: u64,
    rss_pages: i64,
    /// When it started, in clock ticks since boot.
    start_ticks: u64,
}

/// Clock ticks per second in /proc (USER_HZ, 100 on every Linux architecture we build for).
const TICKS_PER_S: u64 = 100;

fn stat(proc: &Path, pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(proc.join(pid).join("stat")).ok()?;
    // The name is in parentheses and may itself hold spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        pid: pid.parse().ok()?,
        name,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        cpu_ticks: rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?,
        rss_pages: rest.get(21)?.parse().ok()?,
        start_ticks: rest.get(19)?.parse().ok()?,
    })
}

/// Resident memory in kB. `smaps_rollup` counts the page tables' pages exactly; stat's
/// counter is per-CPU and batched, so a small program such as link reads 0 there.
fn rss_kb(proc: &Path, s: &Stat) -> i64 {
    let exact = std::fs::read_to_string(proc.join(s.pid.to_string()).join("smaps_rollup"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Rss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        });
    exact.unwrap_or(s.rss_pages * PAGE_KB)
}

/// Page size of the devices we build for (x86_64, arm64 with 4 KiB pages).
const PAGE_KB: i64 = 4;

fn all(proc: &Path) -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut list: Vec<Stat> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| stat(proc, &name))
                .flatten()
        })
        .collect();
    list.sort_by_key(|s| s.pid);
    list
}

/// JSON list of every process.
pub fn top(proc: &Path) -> String {
    let items: Vec<String> = all(proc)
        .iter()
        .map(|s| {
            format!(
                "{{\"pid\":{},\"ppid\":{},\"name\":{},\"state\":\"{}\",\"rss_kb\":{},\"cpu_ticks\":{}}}",
                s.pid,
                s.ppid,
                json_string(&s.name),
                s.state,
                rss_kb(proc, s),
                s.cpu_ticks
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

/// The services init supervises, from its service list ([`boot::service_list`]),
/// with pid, state, RSS and user of the running ones (init's children, by the pid init
/// published), and what their
/// control groups under `cgroups` stopped. Without the list: init's children, restart
/// counts unknown.
pub fn services(proc: &Path, published: &Path, cgroups: &Path) -> Vec<Service> {
    let children: Vec<Stat> = all(proc).into_iter().filter(|s| s.ppid == 1).collect();
    let text = std::fs::read_to_string(published).unwrap_or_default();
    let mut listed: Vec<(String, Option<u32>, Option<u32>)> = boot::service_list::parse(&text)
        .map(|e| (e.name.to_string(), Some(e.restarts), e.pid))
        .collect();
    if listed.is_empty() {
        listed = children
            .iter()
            .map(|c| (c.name.clone(), None, c.pid.try_into().ok()))
            .collect();
    }
    listed
        .into_iter()
        .map(|(name, restarts, pid)| {
            // The pid init published: a process's name is its own to change.
            let running = children.iter().find(|c| pid == c.pid.try_into().ok());
            let counter = |file: &str, key: &str| {
                let text = std::fs::read_to_string(cgroups.join(&name).join(file)).ok()?;
                Some(boot::sandbox::event_count(&text, key))
            };
            Service {
                pid: running.map(|s| s.pid),
                state: running.map_or("stopped".into(), |s| s.state.to_string()),
                rss_kb: running.map_or(0, |s| rss_kb(proc, s).max(0) as u64),
                restarts,
                user: running.and_then(|s| user(proc, s.pid)),
                memory_kills: counter("memory.events", "oom_kill"),
                tasks_refused: counter("pids.events", "max"),
                name,
            }
        })
        .collect()
}

/// How long service `name` has been running, in seconds: the process init's service list
/// (`published`) names, still init's child; `None` if it is not running.
pub fn service_running_s(proc: &Path, published: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(published).ok()?;
    let pid = boot::service_list::parse(&text)
        .find(|e| e.name == name)?
        .pid?;
    let child = stat(proc, &pid.to_string()).filter(|s| s.ppid == 1)?;
    let uptime = std::fs::read_to_string(proc.join("uptime")).ok()?;
    // Whole seconds: parsing the fraction as a float would link 10 KB of float parsing.
    let up_s: u64 = uptime.split(['.', ' ']).next()?.parse().ok()?;
    Some(up_s.saturating_sub(child.start_ticks / TICKS_PER_S))
}

/// The real user id of process `pid` (`Uid:` in its status).
fn user(proc: &Path, pid: i32) -> Option<u32> {
    let text = std::fs::read_to_string(proc.join(pid.to_string()).join("status")).ok()?;
    let ids = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    ids.split_whitespace().next()?.parse().ok()
}

/// (MemTotal, MemAvailable) in kB.
pub fn memory(proc: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(proc.join("meminfo")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// PIDs matching `target`: a PID, or a process name.
pub fn find(proc: &Path, target: &str) -> Vec<i32> {
    if let Ok(pid) = target.parse::<i32>() {
        return all(proc)
            .iter()
            .filter(|s| s.pid == pid)
            .map(|s| s.pid)
            .collect();
    }
    all(proc)
        .iter()
        .filter(|s| s.name == target)
        .map(|s| s.pid)
        .collect()
}

pub fn parse_signal(name: &str) -> Option<rustix::process::Signal> {
    use rustix::process::Signal;
    // The original rustkrazy's calls use lower case (`signal=term`).
    let name = name.to_ascii_uppercase();
    let name = name.trim_start_matches("SIG");
    Some(match name {
        "TERM" | "15" => Signal::TERM,
        "KILL" | "9" => Signal::KILL,
        "HUP" | "1" => Signal::HUP,
        "INT" | "2" => Signal::INT,
        "USR1" | "10" => Signal::USR1,
        "USR2" | "12" => Signal::USR2,
        "ALRM" | "14" => Signal::ALARM,
        "STOP" | "19" => Signal::STOP,
        "CONT" | "18" => Signal::CONT,
        _ => return None,
    })
}

pub fn send_signal(pid: i32, signal: rustix::process::Signal) -> rustix::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(rustix::io::Errno::SRCH)?;
    rustix::process::kill_process(pid, signal)
}
