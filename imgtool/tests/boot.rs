//! Images boot under QEMU (no `-kernel`, no KVM) into /bin/init with the default kernel,
//! through our MBR code under SeaBIOS and through our UEFI boot program under OVMF; the
//! one-shot trial boot works end to end under both; the UEFI program refuses what it cannot
//! boot; and mkimg refuses kernels the boot code could not load.

mod common;

use boot::layout::Slot;
use boot::record::{Record, State, COPY_OFFSETS};
use common::*;
use harness::{Options, Vm};
use imgtool::qemu::Firmware;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Generous: QEMU without KVM on a loaded 2-core machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

fn marker(hostname: &str) -> String {
    // The serial console turns "\n" into "\r\n".
    format!("init: hostname is {hostname}\r")
}

/// The newest valid copy of the record: state, committed slot, trial slot.
fn read_record(image: &Path) -> (State, Slot, Slot) {
    let r = read_copies(image).record().expect("a valid boot record");
    (r.state, r.committed, r.trial)
}

/// What a loader writes when it starts a trial: TRY becomes TRIED.
fn tried(record: Record) -> Record {
    Record {
        state: State::Tried,
        ..record
    }
}

/// Puts slot B of image `from` (made for the same instance) into image `to`: its root
/// partition and its command line, which carries that root's verity hash. Two roots that
/// tell themselves apart by hostname.
fn copy_slot_b(from: &Path, to: &Path) {
    let from = std::fs::File::open(from).unwrap();
    let out = std::fs::OpenOptions::new().write(true).open(to).unwrap();
    let mut root = vec![0u8; 256 << 20];
    from.read_exact_at(&mut root, ROOT_B_OFFSET).unwrap();
    out.write_all_at(&root, ROOT_B_OFFSET).unwrap();
    let at = cmdline_at(&from, Slot::B);
    let mut sector = [0u8; 512];
    from.read_exact_at(&mut sector, at).unwrap();
    out.write_all_at(&sector, at).unwrap();
}

/// Boots `image`, waits for init on the root named `expect` and for init's boot status line
/// (`committed slot=2`, `trial slot=3 ...`, `rolled-back slot=2 from=3`).
fn boot_and_see(firmware: Firmware, image: &Path, expect: &str, status: &str) -> String {
    let options = Options {
        firmware,
        ..Options::default()
    };
    let mut vm = Vm::boot(image, &options).expect("start qemu-system-x86_64");
    let at = match vm.wait_for(&marker(expect), 0, BOOT_TIMEOUT) {
        Ok((at, _)) => at,
        Err(console) => panic!("expected init on {expect}: {console}"),
    };
    if let Err(console) = vm.wait_for(&format!("init: boot status: {status}"), at, BOOT_TIMEOUT) {
        panic!("expected boot status {status:?}: {console}");
    }
    vm.kill();
    vm.console()
}

/// Waits for each of `markers` on the console, in order.
fn wait_in_order(vm: &mut Vm, markers: &[impl AsRef<str>]) {
    let mut at = 0;
    for marker in markers {
        let marker = marker.as_ref();
        at = match vm.wait_for(marker, at, BOOT_TIMEOUT) {
            Ok((next, _)) => next,
            Err(console) => panic!("waiting for {marker:?}: {console}"),
        };
    }
}

#[test]
fn default_image_boots_to_init_and_trial_boot_falls_back() {
    trial_boot_life_cycle(Firmware::Bios, "boot");
}

#[test]
fn under_uefi_the_same_trial_boot_life_cycle() {
    trial_boot_life_cycle(Firmware::Uefi, "boot-uefi");
}

/// Two roots told apart by hostname and command line: the committed one boots; an armed
/// trial boots once, with its own command line; uncommitted, the next boot falls back;
/// committed, it stays.
fn trial_boot_life_cycle(firmware: Firmware, scratch: &str) {
    default_kernel();
    let s = Scratch::new(scratch);
    let boot_and_see =
        |image: &Path, expect: &str, status: &str| boot_and_see(firmware, image, expect, status);
    let image = s.path("a.img");
    // Default everything (kernel, init, system programs), except a hostname as the marker.
    let mut cmd = imgtool();
    cmd.arg("mkimg")
        .arg("--instance")
        .arg(s.path("instance"))
        .args(["--size", "1G", "--hostname", "slot-a"])
        .args(["--kernel-arg", "rk.cmdline=a"]);
    run_ok(cmd.arg(&image));
    assert_eq!(read_copies(&image).record(), Some(Record::INITIAL));
    boot_and_see(&image, "slot-a", "committed slot=2");

    // Root B from a second build (same instance, another hostname), copied into slot 3.
    let other = s.path("b.img");
    let mut cmd = imgtool();
    cmd.arg("mkimg")
        .arg("--instance")
        .arg(s.path("instance"))
        .args(["--size", "1G", "--hostname", "slot-b"])
        .args(["--kernel-arg", "rk.cmdline=b"]);
    run_ok(cmd.arg(&other));
    // Each slot's own command line, marked, so the console says which one was loaded.
    copy_slot_b(&other, &image);
    let console = boot_and_see(&image, "slot-a", "committed slot=2"); // committed is still A
    assert!(console.contains("rk.cmdline=a") && !console.contains("rk.cmdline=b"));

    // TRY: the trial slot boots once, with its own command line, and the MBR code records
    // TRIED.
    write_record(&image, Record::INITIAL.arm());
    let console = boot_and_see(&image, "slot-b", "trial slot=3 timeout_s=300");
    assert!(
        console.contains("rk.cmdline=b") && !console.contains("rk.cmdline=a"),
        "the record chose slot B's command line with root B"
    );
    assert_eq!(read_record(&image), (State::Tried, Slot::A, Slot::B));

    // No commit: the next boot is back on the committed root, and stays so.
    boot_and_see(&image, "slot-a", "rolled-back slot=2 from=3");
    assert_eq!(read_record(&image), (State::Tried, Slot::A, Slot::B));

    // Try again and commit: B is now what boots.
    write_record(&image, Record::INITIAL.arm());
    boot_and_see(&image, "slot-b", "trial slot=3");
    write_record(&image, tried(Record::INITIAL.arm()).commit());
    boot_and_see(&image, "slot-b", "committed slot=3");
    assert_eq!(read_record(&image), (State::Committed, Slot::B, Slot::A));
    let settled = read_copies(&image);
    assert_eq!(
        (settled.damage(), settled.record().map(|r| r.attempts)),
        (boot::record::Damage::None, Some(0)),
        "the boot code counted the boot, init reset the count"
    );
}

#[test]
fn kernels_the_boot_code_cannot_load_are_refused() {
    let s = Scratch::new("badkernel");
    let app = s.path("app");
    tiny_static_elf(&app, 10, 1);
    // mkimg with this kernel (and extra flags) must fail, say `expect`, and leave no image.
    let refuses = |kernel: &Path, extra: &[&str], expect: &str| {
        let bin = format!("{}=init", app.display());
        let mut cmd = imgtool();
        cmd.arg("mkimg").arg("--instance").arg(s.path("i"));
        cmd.args([
            "--no-system-programs",
            "--bin",
            &bin,
            "--init",
            "init",
            "--size",
            "1G",
        ]);
        let out = cmd
            .arg("--kernel")
            .arg(kernel)
            .args(extra)
            .arg(s.path("x.img"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "expected {expect:?}:\n{err}"
        );
        assert!(!s.path("x.img").exists());
    };

    // Larger than a slot's kernel region.
    fake_bzimage(&s.path("huge"), 65 << 20);
    refuses(&s.path("huge"), &[], "a slot holds at most 67108864");

    // Fragmented on the FAT partition.
    fake_bzimage(&s.path("k"), 1 << 20);
    refuses(
        &s.path("k"),
        &["--fragment-kernel-for-tests"],
        "/boot/slot-a-vmlinuz was written in fragments",
    );

    // Not a bzImage (an ELF file), and a kernel too old for cmd_line_ptr.
    refuses(&app, &[], "is not an x86 Linux kernel");
    let mut old = std::fs::read(s.path("k")).unwrap();
    old[0x206..0x208].copy_from_slice(&0x0201u16.to_le_bytes());
    std::fs::write(s.path("old"), old).unwrap();
    refuses(&s.path("old"), &[], "uses boot protocol 2.01");
}

/// The whole rollback promise: an update on trial that nobody commits is abandoned by init
/// at its deadline, and the machine comes back on the committed root by itself.
#[test]
fn an_uncommitted_trial_rolls_back_by_itself() {
    let s = Scratch::new("rollback");
    let build = |hostname: &str, image: &Path| {
        let mut cmd = imgtool();
        cmd.arg("mkimg").arg("--instance").arg(s.path("instance"));
        cmd.args([
            "--size",
            "1G",
            "--hostname",
            hostname,
            "--kernel-arg",
            "rustkrazy.trial_timeout=5",
        ]);
        run_ok(cmd.arg(image));
    };
    let image = s.path("a.img");
    build("slot-a", &image);
    build("slot-b", &s.path("b.img"));
    copy_slot_b(&s.path("b.img"), &image);
    write_record(&image, Record::INITIAL.arm());

    let mut vm = Vm::boot(&image, &Options::default()).expect("start qemu-system-x86_64");
    wait_in_order(
        &mut vm,
        &[
            marker("slot-b"),
            "init: boot status: trial slot=3 timeout_s=5".to_string(),
            "init: trial boot not committed within 5 s".to_string(),
            "init: reboot now".to_string(),
            marker("slot-a"),
            "init: boot status: rolled-back slot=2 from=3".to_string(),
        ],
    );
    vm.kill();
    assert_eq!(read_record(&image), (State::Tried, Slot::A, Slot::B));
}

/// An image of the scratch instance whose slot A holds root "slot-a" and slot B root
/// "slot-b" (with its own command line), both complete; `extra` mkimg flags for both.
fn two_slot_image(s: &Scratch, extra: &[&str]) -> std::path::PathBuf {
    let build = |hostname: &str, image: &Path| {
        let mut cmd = imgtool();
        cmd.arg("mkimg").arg("--instance").arg(s.path("instance"));
        cmd.args(["--size", "1G", "--hostname", hostname])
            .args(extra);
        run_ok(cmd.arg(image));
    };
    let image = s.path("a.img");
    build("slot-a", &image);
    build("slot-b", &s.path("b.img"));
    copy_slot_b(&s.path("b.img"), &image);
    std::fs::remove_file(s.path("b.img")).unwrap();
    image
}

/// Each way a write of copy 1 can be torn: the boot code boots what copy 2 says (slot B
/// committed) and init repairs copy 1; with both copies garbage it boots slot A and init
/// writes a record committing it; and the status line says what init found.
fn damaged_record_copies(firmware: Firmware, scratch: &str, tears: &[Torn]) {
    default_kernel();
    let s = Scratch::new(scratch);
    let image = two_slot_image(&s, &[]);
    let b_committed = tried(Record::INITIAL.arm()).commit();
    for &how in tears {
        write_record(&image, b_committed);
        tear_copy_1(&image, how);
        let console = boot_and_see(
            firmware,
            &image,
            "slot-b",
            "committed slot=3 record-damaged=1",
        );
        assert!(
            console.contains("init: copy 1 of the boot record was damaged; repaired"),
            "{how:?}: {console}"
        );
        let after = read_copies(&image);
        assert_eq!(after.damage(), boot::record::Damage::None, "{how:?}");
        assert_eq!(read_record(&image), (State::Committed, Slot::B, Slot::A));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    file.write_all_at(&[0x5a; 512], COPY_OFFSETS[0]).unwrap();
    file.write_all_at(&[0; 512], COPY_OFFSETS[1]).unwrap();
    let console = boot_and_see(
        firmware,
        &image,
        "slot-a",
        "committed slot=2 record-damaged=both",
    );
    assert!(
        console.contains(
            "init: both copies of the boot record were damaged; wrote one committing slot 2"
        ),
        "{console}"
    );
    if firmware == Firmware::Uefi {
        assert!(
            console.contains("rustkrazy: no valid boot record; booting root A, the default"),
            "{console}"
        );
    }
    let after = read_copies(&image);
    assert_eq!(after.damage(), boot::record::Damage::None);
    assert_eq!(read_record(&image), (State::Committed, Slot::A, Slot::B));
}

#[test]
fn under_seabios_a_torn_record_copy_boots_the_other_and_is_repaired() {
    damaged_record_copies(
        Firmware::Bios,
        "torn-bios",
        &[Torn::FirstHalf, Torn::SecondHalf, Torn::Zeros],
    );
}

#[test]
fn under_ovmf_a_torn_record_copy_boots_the_other_and_is_repaired() {
    damaged_record_copies(Firmware::Uefi, "torn-uefi", &[Torn::SecondHalf]);
}

/// Where slot `slot`'s kernel starts in `image`, as the MBR table says.
fn kernel_at(image: &Path, slot: Slot) -> u64 {
    let mut mbr = [0u8; 512];
    std::fs::File::open(image)
        .unwrap()
        .read_exact_at(&mut mbr, 0)
        .unwrap();
    let table = boot::mbr::Table::read(&mbr).unwrap();
    u64::from(table.kernel_lba[slot.index()]) * 512
}

/// Zeroes the start of slot `slot`'s kernel.
fn zero_kernel(image: &Path, slot: Slot) {
    let file = std::fs::OpenOptions::new().write(true).open(image).unwrap();
    file.write_all_at(&[0; 4096], kernel_at(image, slot))
        .unwrap();
}

/// A committed slot whose kernel is gone: the boot code says why, restarts, and after
/// `MAX_ATTEMPTS` boots that never reached init it commits the other, complete slot and
/// boots it; init says so.
fn a_committed_slot_without_a_kernel_falls_back(firmware: Firmware, scratch: &str, why: &str) {
    default_kernel();
    let s = Scratch::new(scratch);
    let image = two_slot_image(&s, &[]);
    write_record(&image, tried(Record::INITIAL.arm()).commit());
    boot_and_see(firmware, &image, "slot-b", "committed slot=3");
    zero_kernel(&image, Slot::B);
    let options = Options {
        firmware,
        ..Options::default()
    };
    let mut vm = Vm::boot(&image, &options).unwrap();
    let mut markers = vec![why.to_string(); boot::record::MAX_ATTEMPTS as usize];
    markers.extend([
        marker("slot-a"),
        "init: slot 3 did not reach init in 3 boots; the boot code fell back to this slot"
            .to_string(),
        "init: boot status: fell-back slot=2 from=3".to_string(),
    ]);
    wait_in_order(&mut vm, &markers);
    vm.kill();
    let record = read_copies(&image).record().unwrap();
    assert_eq!(
        (
            record.state,
            record.committed,
            record.attempts,
            record.fell_back
        ),
        (State::Committed, Slot::A, 0, false),
        "init reset the count and cleared the fall-back once reported"
    );
}

#[test]
fn under_seabios_a_committed_slot_that_stops_booting_falls_back() {
    a_committed_slot_without_a_kernel_falls_back(
        Firmware::Bios,
        "fallback-bios",
        "rustkrazy: not a bzImage",
    );
}

#[test]
fn under_ovmf_a_committed_slot_that_stops_booting_falls_back() {
    a_committed_slot_without_a_kernel_falls_back(
        Firmware::Uefi,
        "fallback-uefi",
        "rustkrazy: cannot boot: no kernel in /boot/slot-b-vmlinuz",
    );
}

/// The UEFI program refuses an armed trial slot without a kernel, naming its file, after
/// the record says TRIED: its restart boots the committed slot.
#[test]
fn the_uefi_program_refuses_a_trial_without_a_kernel_and_rolls_back() {
    default_kernel();
    let s = Scratch::new("uefi-refuse");
    let image = two_slot_image(&s, &[]);
    write_record(&image, Record::INITIAL.arm());
    zero_kernel(&image, Slot::B);
    let options = Options {
        firmware: Firmware::Uefi,
        ..Options::default()
    };
    let mut vm = Vm::boot(&image, &options).unwrap();
    wait_in_order(
        &mut vm,
        &[
            "rustkrazy: cannot boot: no kernel in /boot/slot-b-vmlinuz",
            "rustkrazy: restarting in 5 s",
            &marker("slot-a"),
            "init: boot status: rolled-back slot=2 from=3",
        ],
    );
    vm.kill();
    assert_eq!(read_record(&image), (State::Tried, Slot::A, Slot::B));
}

fn uefi() -> Options {
    Options {
        firmware: Firmware::Uefi,
        ..Options::default()
    }
}

/// The UEFI program holds the instance's keys and checks each slot's seal: an armed trial
/// whose command line, then kernel, changed after it was sealed is refused with the reason,
/// the committed slot boots at once, and init's boot status carries the refusal.
#[test]
fn under_ovmf_a_trial_changed_after_sealing_is_refused_and_the_committed_slot_boots() {
    default_kernel();
    let s = Scratch::new("seal-trial-uefi");
    let image = two_slot_image(&s, &[]);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut sealed_cmdline = [0u8; 512];
    file.read_exact_at(&mut sealed_cmdline, cmdline_at(&file, Slot::B))
        .unwrap();
    add_to_cmdline(&image, Slot::B, "init=/bin/sh");
    write_record(&image, Record::INITIAL.arm());
    let mut vm = Vm::boot(&image, &uefi()).unwrap();
    wait_in_order(
        &mut vm,
        &[
            "rustkrazy: booting slot B (trial, once)",
            "rustkrazy: refusing slot B: its command line is not the one its seal covers",
            "rustkrazy: booting slot A",
            &marker("slot-a"),
            "init: boot status: rolled-back slot=2 from=3 refused=3:cmdline-altered",
        ],
    );
    vm.kill();
    assert_eq!(read_record(&image), (State::Tried, Slot::A, Slot::B));

    // The sealed command line back; one byte of the kernel's body changed instead.
    file.write_all_at(&sealed_cmdline, cmdline_at(&file, Slot::B))
        .unwrap();
    flip_byte(&image, kernel_at(&image, Slot::B) + MIB);
    write_record(&image, Record::INITIAL.arm());
    let mut vm = Vm::boot(&image, &uefi()).unwrap();
    wait_in_order(
        &mut vm,
        &[
            "rustkrazy: refusing slot B: its kernel is not the one its seal covers",
            &marker("slot-a"),
            "init: boot status: rolled-back slot=2 from=3 refused=3:kernel-altered",
        ],
    );
    vm.kill();
}

/// A committed slot whose kernel changed after sealing: refused on each of its attempts,
/// then the other slot, whose seal holds, is committed and boots, in the same power-on.
#[test]
fn under_ovmf_a_committed_slot_changed_after_sealing_gives_way_to_the_other() {
    default_kernel();
    let s = Scratch::new("seal-committed-uefi");
    let image = two_slot_image(&s, &[]);
    write_record(&image, tried(Record::INITIAL.arm()).commit());
    flip_byte(&image, kernel_at(&image, Slot::B) + MIB);
    let mut vm = Vm::boot(&image, &uefi()).unwrap();
    let refused = "rustkrazy: refusing slot B: its kernel is not the one its seal covers";
    let mut markers = vec![refused.to_string(); boot::record::MAX_ATTEMPTS as usize];
    markers.extend([
        "rustkrazy: slot B did not reach init in 3 boots; falling back to slot A".to_string(),
        marker("slot-a"),
        "init: boot status: fell-back slot=2 from=3 refused=3:kernel-altered".to_string(),
    ]);
    wait_in_order(&mut vm, &markers);
    vm.kill();
    assert_eq!(read_record(&image), (State::Committed, Slot::A, Slot::B));
}

/// Slots without seals (as a program with the instance's keys sees an image made before
/// seals): nothing boots, and the console says why.
#[test]
fn under_ovmf_an_unsealed_image_boots_nothing_and_says_why() {
    default_kernel();
    let s = Scratch::new("unsealed-uefi");
    let image = two_slot_image(&s, &[]);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    for root in [ROOT_A_OFFSET, ROOT_B_OFFSET] {
        let seal_at = root + (256 * MIB) - 512 + boot::rootid::SEAL_OFFSET as u64;
        file.write_all_at(&[0; boot::seal::SEAL_BYTES], seal_at)
            .unwrap();
    }
    let mut vm = Vm::boot(&image, &uefi()).unwrap();
    wait_in_order(
        &mut vm,
        &[
            "rustkrazy: refusing slot A: it carries no seal, and this boot program boots only sealed slots",
            "rustkrazy: cannot boot: no slot passes its seal check",
            "rustkrazy: restarting in 5 s",
        ],
    );
    vm.kill();
    assert!(!vm.console().contains("init:"), "{}", vm.console());
}

/// Where the stored data of `path` starts in the SquashFS root at `offset` of `image`
/// (from the root's start), and how many bytes of full blocks it has there.
fn squashfs_file_blocks(image: &Path, offset: u64, path: &str) -> (u64, u64) {
    let file = std::io::BufReader::new(std::fs::File::open(image).unwrap());
    let fs = backhand::FilesystemReader::from_reader_with_offset(file, offset).unwrap();
    let node = fs
        .files()
        .find(|n| n.fullpath == Path::new(path))
        .unwrap_or_else(|| panic!("no {path} in the root"));
    let backhand::InnerNode::File(backhand::SquashfsFileReader::Basic(f)) = &node.inner else {
        panic!("{path} is not a plain file");
    };
    let stored: u64 = f.block_sizes.iter().map(|d| u64::from(d.size())).sum();
    assert!(
        stored > 3 * 4096,
        "{path} has {stored} bytes in full blocks"
    );
    (u64::from(f.blocks_start), stored)
}

fn flip_byte(image: &Path, at: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], at).unwrap();
}

/// dm-verity: a byte changed in the trial root where admind's program starts (read at
/// boot) is an I/O error the kernel reports, admind never comes up, and the trial rolls
/// back; the same change in a program nothing starts does not matter (verity checks the
/// blocks that are read), and that trial commits.
#[test]
fn a_changed_root_block_fails_its_trial_only_where_it_is_read() {
    default_kernel();
    let s = Scratch::new("verity");
    let idle = s.path("idle");
    tiny_static_elf(&idle, 400_000, 11);
    std::fs::write(
        s.path("appliance.toml"),
        format!(
            "[[programs]]\nbin = \"{}\"\nautostart = false\n",
            idle.display()
        ),
    )
    .unwrap();
    let build = |hostname: &str, image: &Path| {
        let mut cmd = imgtool();
        cmd.arg("mkimg").arg("--instance").arg(s.path("instance"));
        cmd.args(["--size", "1G", "--hostname", hostname]);
        cmd.args(["--kernel-arg", "rustkrazy.trial_timeout=20", "--config"]);
        run_ok(cmd.arg(s.path("appliance.toml")).arg(image));
    };
    let image = s.path("a.img");
    build("slot-a", &image);
    build("slot-b", &s.path("b.img"));
    copy_slot_b(&s.path("b.img"), &image);
    write_record(&image, Record::INITIAL.arm());

    // Read when admind starts: the first 4 KiB block wholly inside admind's stored data
    // (the root's first block, which the mount reads, may begin it).
    let read = s.path("read.img");
    std::fs::copy(&image, &read).unwrap();
    let (admind_at, stored) = squashfs_file_blocks(&read, ROOT_B_OFFSET, "/bin/admind");
    let at = (admind_at / 4096 + 1) * 4096 + 100;
    assert!(at < admind_at + stored);
    flip_byte(&read, ROOT_B_OFFSET + at);
    let mut vm = Vm::boot(&read, &Options::default()).expect("start qemu-system-x86_64");
    wait_in_order(
        &mut vm,
        &[
            marker("slot-b"),
            "init: boot status: trial slot=3".to_string(),
            "is corrupted".to_string(),
            "init: trial boot not committed within 20 s".to_string(),
            marker("slot-a"),
            "init: boot status: rolled-back slot=2 from=3".to_string(),
        ],
    );
    vm.kill();
    let console = vm.console();
    assert!(console.contains("device-mapper: verity"), "{console}");

    // Never read: the middle of the idle program; the trial comes up and commits.
    let unread = s.path("unread.img");
    std::fs::copy(&image, &unread).unwrap();
    let (idle_at, idle_stored) = squashfs_file_blocks(&unread, ROOT_B_OFFSET, "/bin/idle");
    flip_byte(&unread, ROOT_B_OFFSET + idle_at + idle_stored / 2);
    let mut vm = Vm::boot(&unread, &Options::default()).expect("start qemu-system-x86_64");
    let at = match vm.wait_for("init: boot status: trial slot=3", 0, BOOT_TIMEOUT) {
        Ok((at, _)) => at,
        Err(console) => panic!("the trial did not start: {console}"),
    };
    if let Err(console) = vm.wait_for("admind: listening on", at, BOOT_TIMEOUT) {
        panic!("admind did not come up on the trial slot: {console}");
    }
    let port = vm.admind_port;
    let password = std::fs::read_to_string(s.path("instance/password")).unwrap();
    let out = run_ok(
        Command::new("curl")
            .args(["-sS", "--max-time", "60", "-X", "POST"])
            .args(common::curl_trust(&s, port))
            .args(["-u", &format!("rustkrazy:{password}")])
            .arg(format!("https://127.0.0.1:{port}/commit")),
    );
    assert!(stdout(&out).contains("\"committed\":3"), "{}", stdout(&out));
    vm.kill();
    assert!(!vm.console().contains("is corrupted"), "{}", vm.console());
    assert_eq!(read_record(&unread), (State::Committed, Slot::B, Slot::A));
}

/// A trial slot whose root partition never appears (its command line names partition 9):
/// dm-init gives up after 30 s (boot/kernel/dm-init-waitfor-timeout.patch), the kernel
/// panics for want of a root and reboots, and the committed slot comes back.
#[test]
fn a_trial_whose_root_never_appears_falls_back_instead_of_hanging() {
    default_kernel();
    let s = Scratch::new("verity-missing");
    let image = s.path("a.img");
    let mut cmd = imgtool();
    cmd.arg("mkimg").arg("--instance").arg(s.path("instance"));
    run_ok(
        cmd.args(["--size", "1G", "--hostname", "slot-a"])
            .arg(&image),
    );
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let at = cmdline_at(&file, Slot::B);
    let mut sector = [0u8; 512];
    file.read_exact_at(&mut sector, at).unwrap();
    let line = String::from_utf8_lossy(boot::slot::cmdline_text(&sector)).replace("-03", "-09");
    let mut new = line.into_bytes();
    new.resize(512, 0);
    file.write_all_at(&new, at).unwrap();
    write_record(&image, Record::INITIAL.arm());

    let mut vm = Vm::boot(&image, &Options::default()).expect("start qemu-system-x86_64");
    wait_in_order(
        &mut vm,
        &[
            "waiting for device PARTUUID=",
            "did not appear within 30 s: no mapped devices",
            "Kernel panic",
            "init: hostname is slot-a",
            "init: boot status: rolled-back slot=2 from=3",
        ],
    );
    vm.kill();
}
