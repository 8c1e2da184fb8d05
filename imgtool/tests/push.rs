//! Over-the-air updates end to end in QEMU (BIOS and UEFI): mkimg, boot, `imgtool push` of a changed root
//! (rebooted into the other slot, committed, shown by `imgtool status`); a broken root that
//! rolls back by itself (push says so and fails); a push killed mid-upload, after which the
//! device still runs and the next push succeeds; a boot partition update. After boot, after
//! a committed and after a rolled-back update, init, link and admind are idle (under 1% CPU,
//! no growth).

mod common;

use common::*;
use harness::{Options, Vm};
use imgtool::qemu::Firmware;
use std::os::unix::fs::FileExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// arm64 emulated on x86 (TCG) is several times slower.
const ARM64_BOOT_TIMEOUT: Duration = Duration::from_secs(420);

fn push(s: &Scratch, vm: &Vm, extra: &[&str]) -> Output {
    let mut cmd = remote(s, vm.admind_port, "push");
    cmd.args(["--timeout", "150"]).args(extra);
    cmd.output().unwrap()
}

/// `imgtool status` once admind answers.
fn status_when_up(s: &Scratch, vm: &Vm) -> String {
    common::status_when_up(s, vm.admind_port, Duration::from_secs(90))
}

/// CPU a process may use while nothing happens: 1% of the sampled time, in USER_HZ ticks.
const IDLE_CPU_PERCENT_MAX: u64 = 1;
const USER_HZ: u64 = 100;
/// admind answers the sampling requests themselves; its allocator may keep what a TLS
/// connection used.
const ADMIND_RSS_SLACK_KB: u64 = 256;

/// init, link and admind each use under 1% CPU over 20 s of nothing, and do not grow.
/// A window in which a process was not idle is sampled once more: on a loaded CI machine
/// the guest's tick accounting can charge time the host took to whatever ran (seen once,
/// init at 85 ticks in 32 MiB while the other push tests ran). A process that is busy, or
/// whose timer fires more often than every 20 s, is not idle in either window.
fn assert_idle(s: &Scratch, vm: &Vm, when: &str) {
    if let Err(first) = idle_window(s, vm, when) {
        println!("figure: idle {when}: not idle in the first window ({first}); sampling again");
        if let Err(second) = idle_window(s, vm, when) {
            panic!("{second} (and in the window before: {first})");
        }
    }
}

/// One 20 s window of [`assert_idle`]: why not idle, if not.
fn idle_window(s: &Scratch, vm: &Vm, when: &str) -> Result<(), String> {
    let window = Duration::from_secs(20);
    let before = top(s, vm.admind_port);
    std::thread::sleep(window);
    let after = top(s, vm.admind_port);
    for name in ["init", "link", "admind"] {
        let (Some(a), Some(b)) = (before.get(name), after.get(name)) else {
            panic!("{name} not running {when}: {after:?}");
        };
        let ticks = b.0 - a.0;
        let slack = if name == "admind" {
            ADMIND_RSS_SLACK_KB
        } else {
            0
        };
        println!(
            "figure: idle {when}: {name} {ticks} ticks in {} s ({:.2}% CPU), RSS {} -> {} kB",
            window.as_secs(),
            ticks as f64 / (window.as_secs() * USER_HZ) as f64 * 100.0,
            a.1,
            b.1
        );
        if ticks * 100 > IDLE_CPU_PERCENT_MAX * window.as_secs() * USER_HZ {
            return Err(format!(
                "{name} used {ticks} ticks in {window:?} {when}: not idle"
            ));
        }
        assert!(
            b.1 <= a.1 + slack,
            "{name} grew from {} to {} kB {when}",
            a.1,
            b.1
        );
        assert!(b.1 > 0, "{name}'s RSS reads 0");
    }
    Ok(())
}

fn line_of<'a>(status: &'a str, prefix: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {status}"))
}

/// One x86_64 image, two firmwares: admind answers after SeaBIOS ran the MBR code and after
/// OVMF ran the UEFI boot program, and under UEFI a push (kernel, command line, root) is
/// tried by the UEFI program and committed; then the slot-signing key is rotated.
#[test]
fn one_image_answers_under_bios_and_uefi_and_a_push_commits_under_uefi() {
    let s = Scratch::new("push-uefi");
    let image = s.path("push.img");
    default_image(&s, &image, 60);
    for firmware in [Firmware::Bios, Firmware::Uefi] {
        let options = Options {
            firmware,
            ..Options::default()
        };
        let mut vm = Vm::boot(&image, &options).unwrap();
        vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
            .unwrap_or_else(|c| panic!("admind did not start under {firmware:?}: {c}"));
        let status = status_when_up(&s, &vm);
        assert!(
            line_of(&status, "boot").starts_with("boot      root 2, committed"),
            "{firmware:?}: {status}"
        );
        if firmware == Firmware::Bios {
            vm.kill();
            continue;
        }
        let console = vm.console();
        assert!(
            console.contains("rustkrazy: UEFI boot program") && !console.contains("SeaBIOS"),
            "not booted by the UEFI program: {console}"
        );
        let extra = s.path("extra");
        tiny_static_elf(&extra, 4096, 12);
        push_through_the_uefi_program(&s, &vm, &extra);
        rotate_keys_under_the_uefi_program(&s, &mut vm, &extra);
        vm.kill();
    }
}

/// A key rotation reaches the UEFI boot program with the pushes that carry it, no boot
/// update: `key new`, a push sealed by the old key whose root trusts both (committed, admind
/// gives the program both keys), `key rotate`, a push sealed by the new key, which the
/// program boots (and admind leaves it holding the new key only). A push sealed by a key
/// the program does not hold is refused before anything is sent.
fn rotate_keys_under_the_uefi_program(s: &Scratch, vm: &mut Vm, program: &std::path::Path) {
    let key = |dir: &std::path::Path, action: &str| {
        text(&run_ok(
            imgtool().args(["key", action, "--instance"]).arg(dir),
        ))
    };
    let program_keys = |status: &str| {
        let line = line_of(
            status,
            "          the UEFI boot program boots slots sealed by",
        );
        line.matches(", ").count() + 1
    };
    let before = status_when_up(s, vm);
    assert_eq!(program_keys(&before), 1, "{before}");
    key(&s.path("instance"), "new");

    // Rotated too early, in a copy of the instance: the program holds only the old key.
    let early = s.path("early-instance");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(s.path("instance"))
            .arg(&early),
    );
    key(&early, "rotate");
    let refused = imgtool()
        .args(["push", "--timeout", "150", "--instance"])
        .arg(&early)
        .args(["--to", &format!("127.0.0.1:{}", vm.admind_port)])
        .args(["--bin", program.to_str().unwrap()])
        .output()
        .unwrap();
    let said = text(&refused);
    assert!(
        !refused.status.success() && said.contains("the device's UEFI boot program holds keys"),
        "{said}"
    );

    tiny_static_elf(program, 4096, 21);
    let bin = ["--bin", program.to_str().unwrap()];
    assert_push_committed(&push(s, vm, &bin), 2, &vm.console());
    let after = status_when_up(s, vm);
    assert_eq!(program_keys(&after), 2, "admind gave it both keys: {after}");
    key(&s.path("instance"), "rotate");
    tiny_static_elf(program, 4096, 22);
    assert_push_committed(&push(s, vm, &bin), 3, &vm.console());
    let sync = "admind: the UEFI boot program now holds the 1 key(s) this root trusts";
    vm.wait_for(sync, 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("{sync:?}: {c}"));
    let last = status_when_up(s, vm);
    assert_eq!(program_keys(&last), 1, "{last}");
}

/// Pushes `program` (one more in /bin) and checks that the UEFI program started the trial
/// and the device committed it.
fn push_through_the_uefi_program(s: &Scratch, vm: &Vm, program: &std::path::Path) {
    let out = push(s, vm, &["--bin", &program.display().to_string()]);
    assert_push_committed(&out, 3, &vm.console());
    assert!(
        vm.console()
            .contains("rustkrazy: booting slot B (trial, once)"),
        "the UEFI program did not start the trial: {}",
        vm.console()
    );
    let after = status_when_up(s, vm);
    assert!(
        line_of(&after, "record").contains("committed root 3, next boot root 3"),
        "{after}"
    );
}

/// An aarch64 image (default arm64 kernel, programs for aarch64-unknown-linux-musl) boots in
/// QEMU's arm64 `virt` machine under AAVMF through the UEFI boot program, which refuses a
/// trial changed after sealing, gets a lease, admind answers, and a push is tried and
/// committed.
#[test]
fn an_aarch64_image_boots_under_aavmf_gets_a_lease_and_a_push_commits() {
    let s = Scratch::new("push-aarch64");
    let image = s.path("arm.img");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--arch", "aarch64", "--size", "1G"])
            .args(["--kernel-arg", "rustkrazy.trial_timeout=120"])
            .arg(&image),
    );
    // An armed trial of slot B whose command line changed after it was sealed: the UEFI
    // program refuses it and boots slot A. And a torn copy of the record: the UEFI program
    // goes by the other, init repairs.
    add_to_cmdline(&image, boot::layout::Slot::B, "init=/bin/sh");
    write_record(&image, boot::record::Record::INITIAL.arm());
    tear_copy_1(&image, Torn::SecondHalf);
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    vm.expect_in_order(
        &[
            "rustkrazy: copy 1 of the boot record is damaged (BadChecksum)",
            "rustkrazy: booting slot B (trial, once)",
            "rustkrazy: refusing slot B: its command line is not the one its seal covers",
            "rustkrazy: booting slot A",
            "EFI stub: Booting Linux Kernel",
            "init: boot status: rolled-back slot=2 from=3 record-damaged=1 refused=3:cmdline-altered",
            "link: eth0: lease",
        ],
        ARM64_BOOT_TIMEOUT,
    );
    let status = status_when_up(&s, &vm);
    assert!(
        line_of(&status, "boot").starts_with("boot      root 2, rolled-back (from root 3)"),
        "{status}"
    );
    assert!(
        status.contains("init found boot record copy 1 damaged and rewrote it")
            && status.contains("the UEFI boot program refused slot 3:cmdline-altered"),
        "{status}"
    );
    let extra = s.path("extra");
    tiny_static_elf_for(&extra, 4096, 13, "aarch64");
    push_through_the_uefi_program(&s, &vm, &extra);
    vm.kill();
}

/// The memory floor: a 32 MiB machine boots the default appliance and takes an update of
/// its kernel (one no slot holds yet), command line and root, and the pushed root is LZ4 (the
/// kernel reads either compressor; each push chooses its own). Memory stays enough for all
/// three programs afterwards: they answer and are idle.
#[test]
fn a_32_mib_machine_boots_and_takes_a_kernel_and_root_update_to_an_lz4_root() {
    let s = Scratch::new("push-32m");
    let image = s.path("push.img");
    default_image(&s, &image, 60);
    let options = Options {
        memory_mib: 32,
        ..Options::default()
    };
    let mut vm = Vm::boot(&image, &options).unwrap();
    vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start in 32 MiB: {c}"));
    let extra = s.path("extra");
    tiny_static_elf(&extra, 4096, 13);
    let kernel = s.path("kernel");
    retagged_kernel("m32", &kernel);
    let out = push(
        &s,
        &vm,
        &[
            "--compression",
            "lz4",
            "--kernel",
            &kernel.display().to_string(),
            "--bin",
            &extra.display().to_string(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("sending the kernel"), "{text}");
    assert_push_committed(&out, 3, &vm.console());
    let after = status_when_up(&s, &vm);
    assert!(
        line_of(&after, "boot").starts_with("boot      root 3, trial"),
        "{after}"
    );
    // Sealed: the device required it, and both slots carry the instance key's seal.
    assert!(line_of(&after, "seals").contains("required"), "{after}");
    assert_eq!(after.matches("  sealed  by key ").count(), 2, "{after}");
    assert!(
        squashfs_superblock(&image, ROOT_B_OFFSET).contains("Compression lz4"),
        "root 3 is LZ4"
    );
    let console = vm.console();
    assert!(
        !console.contains("Out of memory") && !console.contains("oom-kill"),
        "{console}"
    );
    assert_idle(&s, &vm, "in 32 MiB after an update");
    vm.kill();
}

#[test]
fn push_commits_a_good_root_rolls_back_a_broken_one_and_survives_an_interrupted_upload() {
    let s = Scratch::new("push");
    let image = s.path("push.img");
    default_image(&s, &image, 15);
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start: {c}"));
    let before = status_when_up(&s, &vm);
    assert!(
        line_of(&before, "boot").starts_with("boot      root 2, committed"),
        "{before}"
    );
    let old_build = line_of(&before, "root 2")
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    assert_idle(&s, &vm, "after boot");

    // 1. A changed root: one more program.
    let extra = s.path("extra");
    tiny_static_elf(&extra, 4096, 11);
    let started = Instant::now();
    let out = push(&s, &vm, &["--bin", &extra.display().to_string()]);
    let said = assert_push_committed(&out, 3, &vm.console());
    println!(
        "figure: push in QEMU took {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        said.lines()
            .find(|l| l.starts_with("push: done"))
            .unwrap_or("?")
    );
    // Only the chunks the running root lacks went (boot::chunks): the new program, the
    // tables after it, and the hash tree's changed part.
    let sent = said
        .lines()
        .find(|l| l.starts_with("push: sending the root image to slot 3: "))
        .unwrap_or_else(|| panic!("push did not send the root chunked:\n{said}"));
    let numbers: Vec<u64> = sent
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (bytes_sent, root_bytes) = (numbers[3], numbers[4]);
    println!("figure: a push adding one program sent {bytes_sent} of the root's {root_bytes} bytes: {sent}");
    assert!(bytes_sent * 2 < root_bytes, "{sent}");
    let after = status_when_up(&s, &vm);
    assert!(
        line_of(&after, "boot").starts_with("boot      root 3, trial"),
        "booted as a trial: {after}"
    );
    assert!(
        line_of(&after, "record").contains("committed root 3, next boot root 3"),
        "{after}"
    );
    let new_build = line_of(&after, "root 3")
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    assert_ne!(new_build, old_build);
    assert!(line_of(&after, "root 3").ends_with("(running)"), "{after}");
    // Services with init's restart counts: extra exits at once and is restarted.
    let extra_line = line_of(&after, "service   extra");
    assert!(!extra_line.ends_with("restarts null"), "{after}");
    assert!(
        line_of(&after, "service   admind").contains("restarts 0"),
        "{after}"
    );
    // Past the trial deadline (15 s after the trial booted) nothing spins.
    std::thread::sleep(Duration::from_secs(25));
    assert_idle(&s, &vm, "after a committed update");

    // 2. A broken root: no admind (nor link). The trial never commits; init reboots it after
    // 15 s and the MBR code goes back to root 3.
    let out = push(
        &s,
        &vm,
        &[
            "--no-system-programs",
            "--bin",
            &extra.display().to_string(),
        ],
    );
    let said = text(&out);
    assert!(
        !out.status.success(),
        "a broken root must not be reported as a success:\n{said}"
    );
    assert!(
        said.contains("the update was rolled back: the device is back on root 3"),
        "{said}\n{}",
        vm.console()
    );
    let rolled = status_when_up(&s, &vm);
    assert!(
        line_of(&rolled, "boot").starts_with("boot      root 3, rolled-back (from root 2)"),
        "{rolled}"
    );
    assert!(
        line_of(&rolled, "record").contains("committed root 3"),
        "{rolled}"
    );
    assert!(
        vm.console()
            .contains("trial boot not committed within 15 s"),
        "init rolled it back"
    );
    std::thread::sleep(Duration::from_secs(25));
    assert_idle(&s, &vm, "after a rolled-back update");

    // 3. A push killed mid-upload: a root with 48 MiB of incompressible data takes a while.
    let bulk = s.path("bulk");
    tiny_static_elf(&bulk, 48 << 20, 12);
    let mut child = remote(&s, vm.admind_port, "push")
        .args(["--timeout", "150", "--bin", &bulk.display().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !String::from_utf8_lossy(&seen).contains("upload [") {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap_or(0);
        assert!(
            n > 0 && Instant::now() < deadline,
            "push never started uploading: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let _ = child.wait();
    let still = status_when_up(&s, &vm);
    assert!(
        line_of(&still, "boot").starts_with("boot      root 3"),
        "{still}"
    );
    assert!(
        line_of(&still, "record").contains("next boot root 3"),
        "nothing armed: {still}"
    );
    assert!(
        line_of(&still, "root 2").contains("none"),
        "the half-written slot has no build: {still}"
    );
    // The next push goes through.
    let out = push(&s, &vm, &["--bin", &extra.display().to_string()]);
    assert!(
        out.status.success(),
        "push after an interrupted one:\n{}",
        text(&out)
    );
    let last = status_when_up(&s, &vm);
    assert!(
        line_of(&last, "record").contains("committed root 2, next boot root 2"),
        "{last}"
    );

    // 4. A boot update: new kernel command line, after the root commits. Boot code carries
    // no seal: refused while the new root would require seals, taken with a root that
    // does not.
    let refused = push(&s, &vm, &["--boot", "--bin", &extra.display().to_string()]);
    assert!(
        !refused.status.success()
            && text(&refused).contains("--boot: the new root requires sealed slots"),
        "{}",
        text(&refused)
    );
    std::fs::write(s.path("unsealed.toml"), "sealed_slots = false\n").unwrap();
    let out = push(
        &s,
        &vm,
        &[
            "--boot",
            "--config",
            &s.path("unsealed.toml").display().to_string(),
            "--kernel-arg",
            "rustkrazy.trial_timeout=21",
            "--bin",
            &extra.display().to_string(),
        ],
    );
    let said = text(&out);
    assert!(
        out.status.success(),
        "push --boot:\n{said}\n{}",
        vm.console()
    );
    assert!(
        said.contains("push: the device booted the new boot partition and runs root 3"),
        "{said}"
    );
    assert!(
        vm.console().contains("rustkrazy.trial_timeout=21"),
        "the new command line was booted"
    );

    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("other"))
            .args(["--size", "1G", "--no-system-programs"])
            .arg(s.path("other.img")),
    );
    let out = imgtool()
        .arg("status")
        .arg("--instance")
        .arg(s.path("other"))
        .arg("--to")
        .arg(format!("127.0.0.1:{}", vm.admind_port))
        .output()
        .unwrap();
    // Another instance pins the device's key on first contact, but its password is refused.
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("first contact") && said.contains("401"),
        "{said}"
    );

    // Logs of a service through admind.
    let out = remote(&s, vm.admind_port, "logs")
        .arg("link")
        .output()
        .unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("lease 10.0.2.15/24"),
        "{}",
        text(&out)
    );
    vm.kill();
}

/// A slot is kernel + command line + root: a push carries a new kernel and commits it; a
/// push whose kernel panics before userspace comes back on the old slot by itself.
#[test]
fn push_carries_the_kernel_and_a_kernel_that_panics_rolls_back() {
    let s = Scratch::new("push-kernel");
    let image = s.path("k.img");
    default_image(&s, &image, 30);
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start: {c}"));
    let before = status_when_up(&s, &vm);
    let old_version = line_of(&before, "  kernel").to_string();

    // 1. Another kernel: different bytes, different length.
    let kernel = s.path("bzImage-rk2");
    retagged_kernel("rk2", &kernel);
    let push_kernel = |extra: &[&str]| {
        let mut args = vec![
            "--kernel",
            kernel.to_str().unwrap(),
            "--kernel-arg",
            "rustkrazy.trial_timeout=30",
        ];
        args.extend_from_slice(extra);
        push(&s, &vm, &args)
    };
    let started = Instant::now();
    let out = push_kernel(&[]);
    assert_push_committed(&out, 3, &vm.console());
    println!(
        "figure: push with a kernel change took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let after = status_when_up(&s, &vm);
    assert!(line_of(&after, "root 3").ends_with("(running)"), "{after}");
    let versions: Vec<&str> = after
        .lines()
        .filter(|l| l.starts_with("  kernel"))
        .collect();
    assert!(
        versions[1].contains("rk2") && !old_version.contains("rk2"),
        "slot 3 runs the new kernel: {after}"
    );
    assert_eq!(
        versions[0], old_version,
        "slot 2 keeps the old kernel: {after}"
    );

    // 2. The same again: the slot that gets it (2) holds the old kernel, so it is sent;
    // the command line is the same and is not.
    let out = push_kernel(&[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("slot 2 already holds this command line; not sending it"),
        "{said}"
    );

    // 3. A kernel that panics before userspace (the init it is told to run does not exist):
    // panic=10 reboots it, the MBR code sees TRIED and boots the committed slot.
    let out = push_kernel(&["--kernel-arg", "init=/bin/missing"]);
    let said = text(&out);
    assert!(
        !out.status.success(),
        "a panicking kernel must not be a success:\n{said}"
    );
    assert!(
        said.contains("the update was rolled back: the device is back on root 2"),
        "{said}\n{}",
        vm.console()
    );
    let console = vm.console();
    assert!(
        console.contains("Kernel panic") && console.contains("/bin/missing"),
        "the trial kernel panicked: {console}"
    );
    let back = status_when_up(&s, &vm);
    assert!(
        line_of(&back, "boot").starts_with("boot      root 2, rolled-back (from root 3)"),
        "{back}"
    );
    vm.kill();

    // /boot is a clean FAT file system after all of that.
    assert_boot_partition_clean(&s, &image);
}

/// Rotating the instance's slot-signing key with its own commands: `key new`, a push sealed
/// by the old key whose root trusts both, `key rotate`, a push sealed by the new key whose
/// root revokes the old one; then a push sealed by the old key (from a copy of the
/// instance made before) is refused, and the device stays on its committed slot.
#[test]
fn slot_keys_rotate_and_the_revoked_key_is_refused() {
    let s = Scratch::new("push-keys");
    let image = s.path("push.img");
    default_image(&s, &image, 60);
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start: {c}"));
    let key = |action: &str| {
        text(&run_ok(
            imgtool()
                .args(["key", action, "--instance"])
                .arg(s.path("instance")),
        ))
    };
    key("new");
    let old = s.path("old-instance");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(s.path("instance"))
            .arg(&old),
    );
    let extra = s.path("extra");
    tiny_static_elf(&extra, 4096, 13);
    let bin = ["--bin", extra.to_str().unwrap()];
    assert_push_committed(&push(&s, &vm, &bin), 3, &vm.console());
    key("rotate");
    let listed = key("list");
    assert_eq!(listed.matches("revoked").count(), 1, "{listed}");
    assert!(listed.contains("trusted, seals now"), "{listed}");
    tiny_static_elf(&extra, 4096, 14);
    assert_push_committed(&push(&s, &vm, &bin), 2, &vm.console());

    tiny_static_elf(&extra, 4096, 15);
    let refused = imgtool()
        .args(["push", "--timeout", "150", "--instance"])
        .arg(&old)
        .args(["--to", &format!("127.0.0.1:{}", vm.admind_port)])
        .args(bin)
        .output()
        .unwrap();
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("which this device's root revokes"), "{said}");
    let after = status_when_up(&s, &vm);
    assert!(
        line_of(&after, "record").contains("committed root 2, next boot root 2"),
        "{after}"
    );
    assert!(after.contains("root 2    build"), "{after}");

    // Going back: a slot sealed at an older version is refused, unless sealed to replace
    // exactly what the device has committed (push --allow-older).
    let older = |extra: &[&str]| {
        let mut cmd = remote(&s, vm.admind_port, "push");
        cmd.env("SOURCE_DATE_EPOCH", "1000000000")
            .args(["--timeout", "150"])
            .args(extra)
            .args(bin);
        cmd.output().unwrap()
    };
    let refused = older(&[]);
    let said = text(&refused);
    assert!(
        !refused.status.success() && said.contains("is older than the committed slot's"),
        "{said}"
    );
    assert_push_committed(&older(&["--allow-older"]), 3, &vm.console());
    let after = status_when_up(&s, &vm);
    assert!(
        after.contains("version 1000000000, x86_64, older allowed"),
        "{after}"
    );
    vm.kill();
}

/// The key a device's console says admind made on first boot.
fn key_made(vm: &Vm) -> String {
    let console = vm.console();
    let at = console
        .find("made sha256//")
        .unwrap_or_else(|| panic!("admind made no key:\n{console}"));
    console[at + 5..at + 5 + 52].to_string()
}

/// Two devices flashed from one image make different keys on first boot and imgtool pins
/// each on first contact; a device reflashed at a known address shows a new key and is
/// refused, naming both keys and the way out, until `imgtool forget`.
#[test]
fn each_device_has_its_own_key_and_a_changed_one_is_refused_until_forgotten() {
    let s = Scratch::new("push-identity");
    let image = s.path("one.img");
    default_image(&s, &image, 60);
    let copy = |name: &str| {
        let path = s.path(name);
        run_ok(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(&image)
                .arg(&path),
        );
        path
    };
    let (two, three) = (copy("two.img"), copy("three.img"));
    let mut vms = Vec::new();
    for disk in [&image, &two] {
        let mut vm = Vm::boot(disk, &Options::default()).unwrap();
        vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
            .unwrap_or_else(|c| panic!("admind did not start: {c}"));
        vms.push(vm);
    }
    let mut keys = Vec::new();
    for vm in &vms {
        let said = text(&run_ok(&mut remote(&s, vm.admind_port, "status")));
        let address = format!("127.0.0.1:{}", vm.admind_port);
        let key = key_made(vm);
        assert!(
            said.contains(&format!(
                "first contact with {address}: pinned its key {key}"
            )),
            "{said}"
        );
        assert_eq!(pinned_key(&s, &address).as_deref(), Some(key.as_str()));
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1], "two devices from one image share a key");
    // Known now: no more first-contact message.
    let said = text(&run_ok(&mut remote(&s, vms[0].admind_port, "status")));
    assert!(!said.contains("first contact"), "{said}");

    // Device one is reflashed (a fresh copy of the image) and comes back at its address.
    let port = vms[0].admind_port;
    vms[0].kill();
    let options = Options {
        admind_port: Some(port),
        ..Options::default()
    };
    let reflashed = Vm::boot(&three, &options).unwrap();
    let mut reflashed = reflashed;
    reflashed
        .wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start: {c}"));
    let new_key = key_made(&reflashed);
    let refused = remote(&s, port, "status").output().unwrap();
    let said = text(&refused);
    assert!(
        !refused.status.success(),
        "a changed key was accepted: {said}"
    );
    for needle in [
        keys[0].as_str(),
        new_key.as_str(),
        "imgtool forget",
        "nothing was sent",
    ] {
        assert!(said.contains(needle), "{needle:?} missing from: {said}");
    }
    let out = remote(&s, port, "push").output().unwrap();
    assert!(
        !out.status.success() && text(&out).contains("imgtool forget"),
        "{}",
        text(&out)
    );
    assert_eq!(
        pinned_key(&s, &format!("127.0.0.1:{port}")).as_deref(),
        Some(keys[0].as_str())
    );

    // Accepted: forget, and the next contact pins the new key.
    run_ok(
        imgtool()
            .args(["forget", "--instance"])
            .arg(s.path("instance"))
            .arg("--to")
            .arg(format!("127.0.0.1:{port}")),
    );
    let said = text(&run_ok(&mut remote(&s, port, "status")));
    assert!(
        said.contains(&format!("pinned its key {new_key}")),
        "{said}"
    );
    let forgotten_twice = imgtool()
        .args(["forget", "--instance"])
        .arg(s.path("instance"))
        .args(["--to", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!forgotten_twice.status.success() && text(&forgotten_twice).contains("pins no key"));
}

/// The original rustkrazy's calls, with curl, on a device that requires seals: a root goes
/// into slot 3, `/switch` without a seal is refused, with the one `imgtool seal` prints it
/// arms, and the trial boots and commits, all with curl.
#[test]
fn curl_arms_a_slot_with_the_seal_imgtool_seal_prints() {
    let s = Scratch::new("push-curl");
    let image = s.path("push.img");
    default_image(&s, &image, 60);
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    let (at, _) = vm
        .wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start: {c}"));
    let status: admin_api::status::Status = serde_json::from_str(&stdout(&run_ok(
        remote(&s, vm.admind_port, "status").arg("--json"),
    )))
    .unwrap();
    // Root 2's image (its bytes from the image file), slot 3's kernel and command line as
    // mkimg wrote them.
    let bytes = status.roots[&2].root.as_ref().unwrap().bytes as usize;
    let mut root = vec![0u8; bytes];
    std::fs::File::open(&image)
        .unwrap()
        .read_exact_at(&mut root, ROOT_A_OFFSET)
        .unwrap();
    std::fs::write(s.path("root.img"), &root).unwrap();
    let cmdline = status.roots[&3].cmdline_text.clone().unwrap();
    std::fs::write(s.path("cmdline.txt"), cmdline).unwrap();
    let kernel = stdout(&run_ok(imgtool().arg("kernel")));
    let kernel = kernel.lines().last().unwrap().trim().to_string();

    let password = std::fs::read_to_string(s.path("instance/password")).unwrap();
    let port = vm.admind_port;
    let trust = common::curl_trust(&s, port);
    let curl = |args: &[&str], path: &str| -> (String, String) {
        let out = run_ok(
            Command::new("curl")
                .args(["-sS", "--max-time", "120", "-w", "\n%{http_code}"])
                .args(&trust)
                .args(["-u", &format!("rustkrazy:{password}")])
                .args(args)
                .arg(format!("https://127.0.0.1:{port}{path}")),
        );
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = said.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    let root_arg = format!("@{}", s.path("root.img").display());
    let (code, body) = curl(&["-X", "PUT", "--data-binary", &root_arg], "/update/root");
    assert_eq!(code, "200", "{body}");
    let (code, body) = curl(&["-X", "PUT"], "/switch");
    assert_eq!(
        (code.as_str(), body.contains("arms only sealed slots")),
        ("403", true),
        "{body}"
    );
    let seal = stdout(&run_ok(
        imgtool()
            .args(["seal", "--instance"])
            .arg(s.path("instance"))
            .arg("--root")
            .arg(s.path("root.img"))
            .args(["--kernel", &kernel, "--cmdline"])
            .arg(s.path("cmdline.txt")),
    ));
    let seal = seal.lines().last().unwrap().trim().to_string();
    let header = format!("X-Slot-Seal: {seal}");
    let (code, body) = curl(&["-X", "PUT", "-H", &header], "/switch");
    assert_eq!(code, "200", "{body}");
    assert_eq!(curl(&["-X", "PUT"], "/reboot").0, "200");
    vm.wait_for("admind: listening on", at, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("the trial did not come up: {c}"));
    let after = status_when_up(&s, &vm);
    assert!(
        line_of(&after, "boot").starts_with("boot      root 3, trial"),
        "{after}"
    );
    let (code, body) = curl(&["-X", "PUT"], "/commit");
    assert_eq!(code, "200", "{body}");
    let after = status_when_up(&s, &vm);
    assert!(
        line_of(&after, "record").contains("committed root 3"),
        "{after}"
    );
    vm.kill();
}
