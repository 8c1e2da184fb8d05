//! Real programs run as they do on any Linux: the compatibility suite (`ci/compat`, built from
//! crates.io as a user builds: `mkimg --path`, zig compiling SQLite and ring) runs on an
//! x86_64 appliance (SeaBIOS) and an aarch64 one (AAVMF). SQLite in WAL mode on /data with a
//! second process, tokio's multi-threaded runtime, notify, memmap2, threads, child processes
//! and pipes, ring's random numbers; and the system call census, held against the host
//! kernel's answers. On x86_64 the database keeps its rows across a reboot and a push.

mod common;

use common::*;
use harness::{Options, Vm};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

fn compat_crate() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/compat")
}

/// The suite's log once it has printed its census (its last line), asked through admind.
fn suite_log(s: &Scratch, vm: &Vm) -> String {
    status_when_up(s, vm.admind_port, BOOT_TIMEOUT);
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let out = remote(s, vm.admind_port, "logs")
            .arg("compat")
            .output()
            .unwrap();
        let log = stdout(&out);
        if log.contains(" calls, missing (ENOSYS)") {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "the suite did not finish:\n{log}\n{}",
            vm.console()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Builds an image of the suite for `arch` as a user would, boots it, and returns the VM
/// and the suite's log once every check passed.
fn boot_suite(s: &Scratch, arch: &str) -> (Vm, String) {
    let image = s.path("compat.img");
    let started = Instant::now();
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--arch", arch, "--size", "1G", "--path"])
            .arg(compat_crate())
            .arg(&image),
    );
    println!(
        "figure: mkimg with the compatibility suite for {arch}: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let vm = Vm::boot(&image, &Options::default()).unwrap();
    let log = suite_log(s, &vm);
    println!("{log}");
    assert_suite_passed(&log);
    (vm, log)
}

/// Every check ok, and no call a program uses missing.
fn assert_suite_passed(log: &str) {
    assert!(
        log.contains("compat: every check ok (7 checks)"),
        "a check failed:\n{log}"
    );
    assert!(
        log.contains("missing (ENOSYS) that programs use: none"),
        "{log}"
    );
}

/// The census lines (`census: NAME USERS: ANSWER`, after init's time stamp on the device)
/// as (name and users, answer), without the summary.
fn census(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once("census: ").map(|(_, rest)| rest))
        .filter(|l| !l.contains(" calls, missing (ENOSYS)"))
        .filter_map(|l| l.rsplit_once(": "))
        .map(|(call, answer)| (call.to_string(), answer.trim().to_string()))
        .collect()
}

/// The rows the SQLite check counted.
fn sqlite_rows(log: &str) -> u32 {
    let line = log
        .lines()
        .find(|l| l.contains("compat: sqlite: ok"))
        .unwrap_or_else(|| panic!("no sqlite line:\n{log}"));
    let after = line
        .split(" rows ")
        .nth(1)
        .expect("rows in the sqlite line");
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {line}"))
}

#[test]
fn the_suite_passes_on_x86_64_and_the_database_survives_a_reboot_and_a_push() {
    let s = Scratch::new("compat-x86");
    let (mut vm, log) = boot_suite(&s, "x86_64");
    assert_eq!(sqlite_rows(&log), 1, "{log}");

    // The same calls on the host's kernel: every call a program uses answers alike (same
    // errno, or ok) on both, so each is there and checks its arguments as Linux does.
    let host = compat_crate().join("target/x86_64-unknown-linux-musl/release/compat");
    let host_census = census(&stdout(&run_ok(
        std::process::Command::new(&host).arg("census"),
    )));
    let device_census = census(&log);
    assert_eq!(host_census.len(), device_census.len(), "{log}");
    println!("figure: census, call and its users: host kernel / appliance");
    for ((call, on_host), (_, on_device)) in host_census.iter().zip(&device_census) {
        println!("figure:   {call:<48} {on_host:<12} {on_device}");
        if !call.ends_with("optional") {
            assert_eq!(
                on_device, on_host,
                "{call}: the appliance and the host differ"
            );
        }
    }

    // A reboot: the suite runs again on the same database.
    let at = vm.position();
    run_ok(&mut remote(&s, vm.admind_port, "reboot"));
    vm.wait_for("init: rustkrazy init starting", at, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("no second boot: {c}"));
    let log = suite_log(&s, &vm);
    assert_suite_passed(&log);
    assert_eq!(sqlite_rows(&log), 2, "{log}");

    // A push of a new build (one more program): the trial slot finds the rows on /data.
    let extra = s.path("extra");
    tiny_static_elf(&extra, 4096, 31);
    let out = remote(&s, vm.admind_port, "push")
        .args(["--timeout", "300", "--path"])
        .arg(compat_crate())
        .arg("--bin")
        .arg(&extra)
        .output()
        .unwrap();
    assert_push_committed(&out, 3, &vm.console());
    let log = suite_log(&s, &vm);
    assert_suite_passed(&log);
    assert_eq!(sqlite_rows(&log), 3, "{log}");
    vm.kill();
}

#[test]
fn the_suite_passes_on_aarch64_under_uefi() {
    let s = Scratch::new("compat-arm");
    let (mut vm, _) = boot_suite(&s, "aarch64");
    vm.kill();
}
