//! Processes from /proc: the process list, services (children of init) with the restart
//! counts init publishes, memory, and signals.

use crate::http::json_string;
use std::path::Path;

/// One line of /proc/PID/stat, the fields used here.
struct Stat {
    pid: i32,
    name: String,
    state: char,
    ppid: i32,
    cpu_ticks: u64,
    rss_pages: i64,
}

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
    })
}

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
    let page_kb = 4;
    let items: Vec<String> = all(proc)
        .iter()
        .map(|s| {
            format!(
                "{{\"pid\":{},\"ppid\":{},\"name\":{},\"state\":\"{}\",\"rss_kb\":{},\"cpu_ticks\":{}}}",
                s.pid,
                s.ppid,
                json_string(&s.name),
                s.state,
                s.rss_pages * page_kb,
                s.cpu_ticks
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

/// init's children, with restart counts from init's /run/rustkrazy/services when present
/// (lines `NAME RESTARTS`).
pub fn services(proc: &Path) -> String {
    let counts = std::fs::read_to_string("/run/rustkrazy/services").unwrap_or_default();
    let restarts = |name: &str| -> String {
        counts
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .map(|r| r.trim().to_string())
            .unwrap_or("null".into())
    };
    let items: Vec<String> = all(proc)
        .iter()
        .filter(|s| s.ppid == 1)
        .map(|s| {
            format!(
                "{{\"name\":{},\"pid\":{},\"state\":\"{}\",\"rss_kb\":{},\"restarts\":{}}}",
                json_string(&s.name),
                s.pid,
                s.state,
                s.rss_pages * 4,
                restarts(&s.name)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
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
    let name = name.trim_start_matches("SIG");
    Some(match name {
        "TERM" | "15" => Signal::TERM,
        "KILL" | "9" => Signal::KILL,
        "HUP" | "1" => Signal::HUP,
        "INT" | "2" => Signal::INT,
        "USR1" | "10" => Signal::USR1,
        "USR2" | "12" => Signal::USR2,
        "STOP" | "19" => Signal::STOP,
        "CONT" | "18" => Signal::CONT,
        _ => return None,
    })
}

pub fn send_signal(pid: i32, signal: rustix::process::Signal) -> rustix::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(rustix::io::Errno::SRCH)?;
    rustix::process::kill_process(pid, signal)
}
