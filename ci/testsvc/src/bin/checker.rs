//! Reports what the tests check from inside the appliance: its arguments and environment
//! and the mounts (once), then every 2 seconds
//! zombie count, the logger's log sizes, init's memory and CPU time.
use std::fs;

fn zombies() -> usize {
    let Ok(dir) = fs::read_dir("/proc") else {
        return usize::MAX;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .count()
}

fn size(path: &str) -> i64 {
    fs::metadata(path).map(|m| m.len() as i64).unwrap_or(-1)
}

fn init_stats() -> (String, u64) {
    let status = fs::read_to_string("/proc/1/status").unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: ?")
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_string();
    let stat = fs::read_to_string("/proc/1/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // After the name: state is field 0, utime field 11, stime field 12.
    let ticks = fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
    (rss, ticks)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let greeting = std::env::var("GREETING").unwrap_or_default();
    println!(
        "checker: args={args:?} GREETING={greeting} PATH={}",
        std::env::var("PATH").unwrap_or_default()
    );
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 4 {
            println!("checker: mount {} {} {}", f[1], f[2], f[3]);
        }
    }
    loop {
        let (rss, ticks) = init_stats();
        println!(
            "checker: zombies={} logger.log={} logger.log.1={} init_rss_kb={} init_cpu_ticks={}",
            zombies(),
            size("/run/log/logger.log"),
            size("/run/log/logger.log.1"),
            rss,
            ticks
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}
