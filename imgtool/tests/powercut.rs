//! Power cuts during updates: the VM is killed (SIGKILL to QEMU, no shutdown of any kind) at
//! chosen phases of a push that carries a new kernel, command line and root, and at random
//! moments; after each cut the VM boots again and the device must answer on the old slot or
//! the new one, never neither. Two phases cut as the boot record is written, by the boot
//! code as the trial starts and by init once it runs, and tear that write: the copy written
//! last keeps its first half and gets the older copy's second. The run ends with a push that
//! succeeds, then /data passes `e2fsck -fn` and /boot `fsck.vfat -n`.
//!
//! `RUSTKRAZY_POWERCUTS` sets the number of cuts (default 18: every phase twice; CI runs
//! that); `ci/powercut` runs 100 and prints the survivors per phase.

mod common;

use boot::record::{Record, State};
use common::*;
use harness::{Options, Vm};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Where in a push the power goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    KernelUpload,
    RootUpload,
    Arm,
    Reboot,
    /// The boot code has written TRIED and the trial's kernel starts; that write is torn.
    LoaderRecordWrite,
    TrialBoot,
    /// As TrialBoot; then on the next boot (the committed slot's, whose attempt the boot
    /// code counts) a second cut once init has set the count back, and that write is torn.
    InitRecordWrite,
    Commit,
    Random,
}

const PHASES: [Phase; 9] = [
    Phase::KernelUpload,
    Phase::RootUpload,
    Phase::Arm,
    Phase::Reboot,
    Phase::LoaderRecordWrite,
    Phase::TrialBoot,
    Phase::InitRecordWrite,
    Phase::Commit,
    Phase::Random,
];

fn cuts() -> usize {
    std::env::var("RUSTKRAZY_POWERCUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2 * PHASES.len())
}

/// Tears the record copy written last, as a power cut during its write would: its first
/// half stays, its second half is the other copy's. Returns the record it held and the one
/// the boot code goes by now.
fn tear_newest_record_copy(image: &std::path::Path) -> (Record, Record) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut sectors = [[0u8; 512]; 2];
    for (sector, at) in sectors.iter_mut().zip(boot::record::COPY_OFFSETS) {
        file.read_exact_at(sector, at).unwrap();
    }
    let copies = boot::record::Copies::read([&sectors[0], &sectors[1]]);
    let (newest, lost, _) = copies.newest.expect("a valid copy before the tear");
    let mut torn = sectors[newest];
    torn[256..].copy_from_slice(&sectors[1 - newest][256..]);
    file.write_all_at(&torn, boot::record::COPY_OFFSETS[newest])
        .unwrap();
    sectors[newest] = torn;
    let now = boot::record::Copies::read([&sectors[0], &sectors[1]]);
    (lost, now.record().expect("the older copy is valid"))
}

/// A push of `kernel` (and a root that differs from the last by `seed`) running in the
/// background, its stderr collected.
struct Push {
    child: Child,
    said: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Push {
    fn start(s: &Scratch, port: u16, kernel: &std::path::Path, seed: u64) -> Push {
        let extra = s.path("extra");
        tiny_static_elf(&extra, 3 << 20, seed);
        let mut child = remote(s, port, "push")
            .args(["--timeout", "90", "--kernel"])
            .arg(kernel)
            .args(["--kernel-arg", "rustkrazy.trial_timeout=30", "--bin"])
            .arg(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&said);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Push { child, said }
    }

    fn said(&self) -> String {
        self.said.lock().unwrap().clone()
    }

    /// Waits until push has said `marker` (or ended).
    fn wait_for(&mut self, marker: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.said().contains(marker) {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return self.said().contains(marker);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.said()
    }
}

/// The slot a freshly booted device answers from, through `imgtool status`.
fn answering_slot(s: &Scratch, vm: &Vm) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(150);
    while Instant::now() < deadline {
        let out = remote(s, vm.admind_port, "status").output().unwrap();
        if out.status.success() {
            let text = stdout(&out);
            return text
                .lines()
                .find(|l| l.starts_with("boot "))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|n| n.trim_end_matches(',').parse().ok());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

/// Waits until the device answers and is not in an uncommitted trial (a cut after arming
/// leaves one, which init's deadline ends by rebooting into the committed slot).
fn settle(s: &Scratch, vm: &Vm) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline {
        let out = remote(s, vm.admind_port, "status").output().unwrap();
        if out.status.success() && !stdout(&out).contains("uncommitted") {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("the device never settled: {}", vm.console());
}

#[test]
fn every_power_cut_leaves_a_device_that_answers() {
    let s = Scratch::new("powercut");
    let image = s.path("p.img");
    default_image(&s, &image, 30);

    let mut survived: BTreeMap<Phase, (usize, usize)> = BTreeMap::new();
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for cut in 0..cuts() {
        let phase = PHASES[cut % PHASES.len()];
        settle(&s, &vm);
        let from = vm.position();
        // A kernel no slot holds yet, so every push carries a kernel upload.
        let kernel = s.path("kernel");
        retagged_kernel(&format!("c{cut:03}"), &kernel);
        let mut push = Push::start(&s, vm.admind_port, &kernel, cut as u64 + 100);
        let reached = match phase {
            Phase::KernelUpload => push.wait_for("push: sending the kernel", BOOT_TIMEOUT),
            Phase::RootUpload => push.wait_for("push: sending the root image", BOOT_TIMEOUT),
            Phase::Arm => push.wait_for("written and verified by the device", BOOT_TIMEOUT),
            Phase::Reboot => push.wait_for("armed; the device reboots", BOOT_TIMEOUT),
            Phase::LoaderRecordWrite => vm.wait_for("Linux version", from, BOOT_TIMEOUT).is_ok(),
            Phase::TrialBoot | Phase::InitRecordWrite => vm
                .wait_for("init: boot status: trial", from, BOOT_TIMEOUT)
                .is_ok(),
            Phase::Commit => vm.wait_for("POST /commit", from, BOOT_TIMEOUT).is_ok(),
            Phase::Random => {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                std::thread::sleep(Duration::from_millis(state % 20_000));
                true
            }
        };
        // Into the middle of an upload, not its first byte.
        if matches!(phase, Phase::KernelUpload | Phase::RootUpload) {
            std::thread::sleep(Duration::from_millis(50 + state % 200));
        }
        vm.kill(); // the power cut
        let said = push.kill();
        assert!(reached, "cut {cut}: push never reached {phase:?}:\n{said}");
        if phase == Phase::InitRecordWrite {
            vm = Vm::boot(&image, &Options::default()).unwrap();
            let wrote = vm.wait_for("init: boot status: rolled-back", 0, BOOT_TIMEOUT);
            vm.kill();
            assert!(wrote.is_ok(), "cut {cut}: no boot after the trial's cut");
        }
        // The torn write is the one the phase names: the boot code's TRY -> TRIED, or
        // init's reset of the count the boot code raised.
        match phase {
            Phase::LoaderRecordWrite => {
                let (lost, now) = tear_newest_record_copy(&image);
                assert_eq!(
                    (lost.state, now.state),
                    (State::Tried, State::Try),
                    "cut {cut}"
                );
            }
            Phase::InitRecordWrite => {
                let (lost, now) = tear_newest_record_copy(&image);
                assert_eq!((lost.attempts, now.attempts), (0, 1), "cut {cut}");
            }
            _ => {}
        }
        vm = Vm::boot(&image, &Options::default()).unwrap();
        let slot = answering_slot(&s, &vm);
        let entry = survived.entry(phase).or_default();
        entry.1 += 1;
        if slot.is_some() {
            entry.0 += 1;
        }
        assert!(
            slot.is_some(),
            "cut {cut} at {phase:?}: the device does not answer after the power came back:\n{said}\n{}",
            vm.console()
        );
        let console = vm.console();
        let how = console
            .lines()
            .rev()
            .find_map(|l| l.split_once("init: boot status: ").map(|(_, how)| how))
            .unwrap_or("?");
        println!(
            "powercut {cut}: {phase:?}: back on slot {} ({})",
            slot.unwrap_or(0),
            how.trim_end()
        );
    }
    for (phase, (ok, all)) in &survived {
        println!("figure: power cuts at {phase:?}: {ok} of {all} survived");
    }

    // An update still goes through, and the disk is clean.
    settle(&s, &vm);
    let kernel = s.path("kernel");
    retagged_kernel("end", &kernel);
    let mut push = Push::start(&s, vm.admind_port, &kernel, 999);
    let _ = push.child.wait();
    let said = push.said();
    assert!(said.contains("committed"), "the last push:\n{said}");
    // A clean stop (a reboot through admind, caught before the next boot) before checking
    // the file systems.
    let from_end = vm.position();
    let out = remote(&s, vm.admind_port, "reboot").output().unwrap();
    assert!(out.status.success());
    let _ = vm.wait_for("init: reboot now", from_end, Duration::from_secs(60));
    vm.kill();
    let report = e2fsck_data(&image);
    assert!(!report.contains("UNEXPECTED"), "{report}");
    assert_boot_partition_clean(&s, &image);
}
