//! rustkrazy's init booted as the real PID 1 under QEMU, with test programs from ci/testsvc
//! that each misbehave in one way: mounts, restarts with backoff, orphan reaping, capped
//! logs, a broken /data, reboot on SIGUSR1 and power off on SIGUSR2 with /data clean, the
//! saved clock moving a 1970 clock forward; and a third-party init that mounts nothing.

mod common;

use common::*;
use harness::{Options, Vm};
use std::process::Command;
use std::time::Duration;

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

fn wait(vm: &mut Vm, marker: &str, from: usize) -> usize {
    match vm.wait_for(marker, from, BOOT_TIMEOUT) {
        Ok((at, _)) => at,
        Err(console) => panic!("waiting for {marker:?}: {console}"),
    }
}

/// Waits for the next whole console line holding `marker` after `from`; returns it and the
/// position past it.
fn next_line(vm: &mut Vm, marker: &str, from: usize) -> (String, usize) {
    vm.wait_line(marker, from, BOOT_TIMEOUT)
        .unwrap_or_else(|console| panic!("waiting for {marker:?}: {console}"))
}

fn field(line: &str, key: &str) -> i64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.trim_end_matches('\r').parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

#[test]
fn init_mounts_supervises_reaps_and_caps_logs() {
    let s = Scratch::new("init-supervise");
    let image = image_with(
        &s,
        "a.img",
        &[
            "crasher",
            "orphaner",
            "logger",
            "sleeper",
            "sleeper=sleeper2",
            "sleeper=sleeper3",
            "sleeper=sleeper4",
        ],
        // The checker reads the logs' sizes in /run/log, which only root may enter.
        Some(&format!(
            "[[programs]]\nbin = \"{}\"\nuser = \"root\"\n",
            testsvc().join("checker").display()
        )),
    );
    let mut vm = Vm::boot(&image, &Options::default()).expect("start qemu");

    // Mounts with the right types.
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/tmp", "tmpfs"),
        ("/run", "tmpfs"),
        ("/boot", "vfat"),
        ("/data", "ext4"),
    ] {
        wait(&mut vm, &format!("checker: mount {point} {fstype} "), 0);
    }

    // The crasher is restarted with growing gaps, and the console says so.
    let mut at = 0;
    for delay in [1000, 2000, 4000, 8000] {
        at = wait(&mut vm, "init: crasher exited with status 1 after ", at);
        at = wait(&mut vm, &format!("restarting in {delay} ms"), at);
    }

    // Orphans were left (the orphaner ran several times) and none stayed a zombie.
    let mut orphans = 0;
    for _ in 0..3 {
        orphans = wait(&mut vm, "orphaner: left child", orphans);
    }
    let (line, _) = next_line(&mut vm, "checker: zombies=", orphans.max(at));
    assert_eq!(field(&line, "zombies="), 0, "{line}");

    // The logger wrote 4 MiB; its log was rotated once and both files stay under the cap.
    at = wait(&mut vm, "logger: done", 0);
    let (line, _) = next_line(&mut vm, "checker: zombies=", at);
    let (log, log1) = (field(&line, "logger.log="), field(&line, "logger.log.1="));
    let cap = 256 << 10;
    assert!(log > 0 && log <= cap && log1 > 0 && log1 <= cap, "{line}");

    // Figures: init's memory with these 8 services, and its CPU time so far.
    eprintln!(
        "figures: init RSS {} kB with 10 services (8 here, link, admind); init CPU ticks {}",
        field(&line, "init_rss_kb="),
        field(&line, "init_cpu_ticks=")
    );
    vm.kill();
}

#[test]
fn a_broken_data_partition_does_not_stop_the_services() {
    let s = Scratch::new("init-nodata");
    let config = format!(
        "[[programs]]\nbin = \"{}\"\nargs = [\"--one\", \"two words\"]\nenv = {{ GREETING = \"hello there\" }}\n",
        testsvc().join("checker").display()
    );
    let image = image_with(&s, "a.img", &[], Some(&config));
    // Wipe the ext4 superblock (and its magic) of /data.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0u8; 4096], DATA_OFFSET).unwrap();
    drop(file);
    let mut vm = Vm::boot(&image, &Options::default()).expect("start qemu");
    // Arguments and environment from the appliance file reach the program.
    wait(
        &mut vm,
        "checker: args=[\"--one\", \"two words\"] GREETING=hello there PATH=/bin",
        0,
    );
    let at = wait(&mut vm, "init: cannot mount \"/dev/vda4\" on \"/data\"", 0);
    wait(&mut vm, "checker: zombies=0", at);
    vm.kill();
}

#[test]
fn sigusr1_reboots_and_sigusr2_powers_off_with_data_clean() {
    let s = Scratch::new("init-signals");
    // The signaller gets its arguments from the appliance file (and root, to signal init);
    // an idle program is not started on boot.
    let config = |signal: &str| {
        format!(
            "[[programs]]\nbin = \"{}\"\nargs = [\"{signal}\", \"3\"]\nuser = \"root\"\n\
             [[programs]]\nbin = \"{}\"\nname = \"idle\"\nautostart = false\n",
            testsvc().join("signaller").display(),
            testsvc().join("sleeper").display()
        )
    };
    // SIGUSR1: a clean reboot, and the machine comes back.
    let image = image_with(&s, "reboot.img", &[], Some(&config("USR1")));
    let mut vm = Vm::boot(&image, &Options::default()).expect("start qemu");
    wait(
        &mut vm,
        "init: idle is not started on boot (autostart no)",
        0,
    );
    let at = wait(&mut vm, "init: stopping services to reboot", 0);
    let at = wait(&mut vm, "init: reboot now", at);
    wait(&mut vm, "init: rustkrazy init starting", at);
    vm.kill();

    // SIGUSR2: power off; QEMU exits by itself and /data was unmounted cleanly.
    let image = image_with(&s, "poweroff.img", &[], Some(&config("USR2")));
    let mut vm = Vm::boot(
        &image,
        &Options {
            no_reboot: true,
            ..Options::default()
        },
    )
    .expect("start qemu");
    let at = wait(&mut vm, "signaller: wrote /data/written-before-shutdown", 0);
    wait(&mut vm, "init: power off now", at);
    let status = vm.wait_exit(Duration::from_secs(60));
    assert!(
        status.is_some(),
        "QEMU did not exit after power off:\n{}",
        vm.console()
    );
    let spec = format!("{}?offset={DATA_OFFSET}", image.display());
    let header = stdout(&run_ok(Command::new("dumpe2fs").arg("-h").arg(&spec)));
    assert!(
        header
            .lines()
            .any(|l| l.starts_with("Filesystem state:") && l.trim_end().ends_with(" clean")),
        "{header}"
    );
    assert!(!header.contains("needs_recovery"), "{header}");
    e2fsck_data(&image);
    let cat = run_ok(
        Command::new("debugfs")
            .arg("-R")
            .arg("cat /written-before-shutdown")
            .arg(&spec),
    );
    assert_eq!(stdout(&cat), "persisted\n");

    // The clock was saved at shutdown (init also saves it every few minutes).
    let saved = stdout(&run_ok(
        Command::new("debugfs")
            .arg("-R")
            .arg("cat /rustkrazy/clock")
            .arg(&spec),
    ));
    let saved_s: u64 = saved.trim().parse().unwrap_or_else(|_| panic!("{saved:?}"));
    let host_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        saved_s + 600 > host_s && saved_s <= host_s + 5,
        "saved {saved_s}, host {host_s}"
    );
    // A board without a real-time clock starts in 1970 (QEMU's CMOS clock set there); with
    // no time server to ask, init moves the clock forward to the saved time before any
    // service starts.
    let mut vm = Vm::boot(
        &image,
        &Options {
            no_reboot: true,
            extra_args: vec!["-rtc".into(), "base=1970-01-02T00:00:00".into()],
            ..Options::default()
        },
    )
    .expect("start qemu");
    let (line, at) = next_line(&mut vm, "init: clock set forward from 1970-01-02T", 0);
    assert!(
        line.contains(&format!("to the saved {}", boot::clock::Utc(saved_s))),
        "{line}"
    );
    let first_start = wait(&mut vm, "init: started ", 0);
    assert!(
        first_start > at,
        "the clock is set before any service starts"
    );
    vm.kill();
}

#[test]
fn a_third_party_init_that_mounts_nothing_finds_dev_and_the_disk() {
    let s = Scratch::new("init-bare");
    let image = s.path("bare.img");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--size", "1G", "--no-system-programs", "--init", "bareinit"])
            .arg("--bin")
            .arg(testsvc().join("bareinit"))
            .arg(&image),
    );
    let mut vm = Vm::boot(&image, &Options::default()).expect("start qemu");
    let at = wait(&mut vm, "bareinit: pid 1 opened /dev/console", 0);
    wait(&mut vm, "bareinit: done", at);
    let said = vm.console();
    for n in 1..=4 {
        assert!(
            said.contains(&format!("bareinit: read /dev/vda{n}")),
            "{said}"
        );
    }
    assert!(!said.contains("bareinit: cannot"), "{said}");
    vm.kill();
}
