//! The appliance over time, on a network of its own (harness::Lab: dnsmasq with 2-minute
//! leases, chronyd): booted with its clock in 1970, it must step the clock from chrony, take
//! an update whose trial deadline then passes, renew its lease every minute, restart a
//! crashing service and rotate a chatty one's log; sampled every minute (CPU ticks and RSS
//! of every process, from admind's /proc/top through curl), no system program may use more
//! CPU than its limit in any minute or grow.
//!
//! `RUSTKRAZY_SOAK_MINUTES` sets the sampled time (default 3, what CI runs; at least 2);
//! `ci/soak` runs 30 minutes and prints the table.

mod common;

use common::*;
use harness::{Lab, Options, Vm};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const USER_HZ: u64 = 100;
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// CPU limits per minute, in percent. link and admind have nothing to do but a lease
/// renewal and a time poll (link) or the sampling request (admind); init carries the
/// chatty service's 60 lines a second into two log files and the console, and restarts
/// the crasher.
const CPU_PERCENT_MAX: [(&str, f64); 3] = [("init", 5.0), ("link", 1.0), ("admind", 2.0)];
/// RSS growth allowed from the first sample to the last: none for the no_std programs;
/// admind's allocator may keep what a TLS connection used.
const RSS_GROWTH_KB_MAX: [(&str, u64); 3] = [("init", 0), ("link", 0), ("admind", 256)];

/// One `/proc/top` sample: name -> (CPU ticks, RSS kB); the first process of each name.
type Sample = BTreeMap<String, (u64, u64)>;

fn top(s: &Scratch, lab: &Lab, address: &str) -> Sample {
    let password = std::fs::read_to_string(s.path("instance/password")).unwrap();
    let out = run_ok(
        lab.command("curl")
            .args(["-sS", "--fail", "--max-time", "30", "-k", "--pinnedpubkey"])
            .arg(common::pinned_key(s, &format!("{address}:8443")).expect("status pinned it"))
            .arg("--resolve")
            .arg(format!("rustkrazy:8443:{address}"))
            .arg("-u")
            .arg(format!("rustkrazy:{password}"))
            .arg(format!("https://rustkrazy:8443/{}", "proc/top")),
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut sample = Sample::new();
    for p in list.as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let value = (
            p["cpu_ticks"].as_u64().unwrap(),
            p["rss_kb"].as_u64().unwrap(),
        );
        sample.entry(name).or_insert(value);
    }
    sample
}

fn remote(s: &Scratch, lab: &Lab, address: &str, command: &str) -> Command {
    let mut cmd = lab.command(env!("CARGO_BIN_EXE_imgtool"));
    cmd.arg(command)
        .arg("--instance")
        .arg(s.path("instance"))
        .arg("--to")
        .arg(format!("{address}:8443"));
    cmd
}

fn minutes() -> u64 {
    std::env::var("RUSTKRAZY_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(3)
        .max(2)
}

#[test]
fn soak_on_a_network_of_its_own() {
    let s = Scratch::new("soak");
    let lab = Lab::new("soak").expect("network namespace with dnsmasq and chronyd");
    let image = s.path("soak.img");
    let programs = ["crasher", "chatty"];
    let mut mkimg = imgtool();
    mkimg
        .arg("mkimg")
        .arg("--instance")
        .arg(s.path("instance"))
        .args(["--size", "1G", "--kernel-arg", "rustkrazy.trial_timeout=15"]);
    for p in programs {
        mkimg.arg("--bin").arg(testsvc().join(p));
    }
    run_ok(mkimg.arg(&image));

    // A board without a clock: QEMU's CMOS clock starts in 1970.
    let mut vm = Vm::boot(
        &image,
        &Options {
            lab: Some(lab.link()),
            extra_args: vec!["-rtc".into(), "base=1970-01-02T00:00:00".into()],
            ..Options::default()
        },
    )
    .unwrap();
    let (lease, _) = vm
        .wait_line("link: eth0: lease 10.77.0.", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("no lease from dnsmasq: {c}"));
    let address = lease
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.split('/').next())
        .unwrap()
        .to_string();
    let (stepped, _) = vm
        .wait_line("link: clock stepped by +", 0, Duration::from_secs(60))
        .unwrap_or_else(|c| panic!("the clock was not set from chrony: {c}"));
    let console = vm.console();
    let (lease_at, stepped_at, link_at) = (
        uptime_of(&console, "link: eth0: lease 10.77.0."),
        uptime_of(&console, "link: clock stepped by +"),
        uptime_of(&console, "init: started link"),
    );
    println!(
        "figure: SNTP in QEMU: clock stepped {:.3} s after the lease, {:.3} s after link started, {:.3} s after boot: {stepped}",
        stepped_at - lease_at,
        stepped_at - link_at,
        stepped_at
    );
    assert!(
        stepped.contains("(time server 10.77.0.1, stratum 3)"),
        "{stepped}"
    );
    vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap();
    let status = stdout(&run_ok(&mut remote(&s, &lab, &address, "status")));
    let clock = status
        .lines()
        .find(|l| l.starts_with("clock"))
        .unwrap_or("");
    assert!(
        clock.contains("synchronised with 10.77.0.1 (stratum 3"),
        "{status}"
    );
    let year = boot::clock::Utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .to_string()[..4]
        .to_string();
    assert!(clock.contains(&format!("clock     {year}-")), "{status}");

    // An update: its trial deadline (15 s) passes during the soak.
    let extra = s.path("extra");
    tiny_static_elf(&extra, 4096, 21);
    let mut push = remote(&s, &lab, &address, "push");
    push.args(["--timeout", "150"]);
    for p in programs {
        push.arg("--bin").arg(testsvc().join(p));
    }
    let out = run_ok(push.arg("--bin").arg(&extra));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("committed")
            || stdout(&out).contains("committed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Counted in link's log, not on the console, which drops lines while the chatty
    // service fills it.
    let renewals = || {
        let log = run_ok(remote(&s, &lab, &address, "logs").arg("link"));
        stdout(&log).matches("renewed for").count()
    };
    let renewals_before = renewals();

    // Sample every minute.
    let mut samples = vec![(Instant::now(), top(&s, &lab, &address))];
    for _ in 0..minutes() {
        std::thread::sleep(SAMPLE_EVERY);
        samples.push((Instant::now(), top(&s, &lab, &address)));
    }
    print_table(&samples);

    let mut failures = Vec::new();
    for pair in samples.windows(2) {
        let ((t0, a), (t1, b)) = (&pair[0], &pair[1]);
        let seconds = (*t1 - *t0).as_secs_f64();
        for (name, max) in CPU_PERCENT_MAX {
            let percent = cpu_percent(a, b, name, seconds);
            if percent > max {
                failures.push(format!(
                    "{name} used {percent:.2}% CPU in a minute (limit {max}%)"
                ));
            }
        }
    }
    // Growth is measured from the first minute on: by then every code path (the chatty
    // log's first rotation, a lease renewal, a time poll) has been touched once.
    let (first, last) = (&samples[1].1, &samples[samples.len() - 1].1);
    for (name, slack) in RSS_GROWTH_KB_MAX {
        let (a, b) = (first[name].1, last[name].1);
        if b > a + slack {
            failures.push(format!("{name} grew from {a} to {b} kB"));
        }
    }
    let renewals = renewals() - renewals_before;
    println!(
        "figure: soak: {renewals} lease renewals in {} minutes",
        minutes()
    );
    if renewals < minutes() as usize - 1 {
        failures.push(format!(
            "{renewals} lease renewals in {} minutes (2-minute leases renew every minute)",
            minutes()
        ));
    }
    let log = run_ok(remote(&s, &lab, &address, "logs").arg("chatty"));
    let cap = 256 << 10;
    if !(log.stdout.len() > cap && log.stdout.len() <= 2 * cap) {
        failures.push(format!(
            "chatty's log is {} bytes: expected rotated (over one cap of {cap}, at most two)",
            log.stdout.len()
        ));
    }
    assert!(
        failures.is_empty(),
        "{}\nconsole tail:\n{}",
        failures.join("\n"),
        tail(&vm.console(), 4000)
    );
    vm.kill();
}

/// Seconds since boot of the first console line holding `marker`, from init's stamp
/// (`[   12.345] ...`).
fn uptime_of(console: &str, marker: &str) -> f64 {
    let line = console
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} on the console"));
    line.trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no time stamp in {line:?}"))
}

fn cpu_percent(a: &Sample, b: &Sample, name: &str, seconds: f64) -> f64 {
    let ticks = b[name].0.saturating_sub(a[name].0);
    ticks as f64 / (seconds * USER_HZ as f64) * 100.0
}

fn print_table(samples: &[(Instant, Sample)]) {
    let names = ["init", "link", "admind", "chatty"];
    let mut header = String::from("figure: soak  min");
    for n in names {
        header.push_str(&format!(" | {n:>7} CPU%  RSS kB"));
    }
    println!("{header}");
    for (i, pair) in samples.windows(2).enumerate() {
        let ((t0, a), (t1, b)) = (&pair[0], &pair[1]);
        let seconds = (*t1 - *t0).as_secs_f64();
        let mut row = format!("figure: soak {:>4}", i + 1);
        for n in names {
            if a.contains_key(n) && b.contains_key(n) {
                row.push_str(&format!(
                    " | {:>12.2} {:>7}",
                    cpu_percent(a, b, n, seconds),
                    b[n].1
                ));
            } else {
                row.push_str(&format!(" | {:>20}", "-"));
            }
        }
        println!("{row}");
    }
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut at = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}
