//! Raspberry Pi images in QEMU's raspi3b and raspi4b machines: the default arm64 kernel (with
//! rustkrazy's tryboot patch, which says so in the boot log), Debian's firmware and the
//! mainline device trees; the harness plays the firmware's part (config.txt chooses the
//! slot). The appliance boots to init from the SD card (on the Pi 4, a USB stick: see
//! `imgtool::qemu`), gets a lease over USB networking (QEMU's usb-net, the CDC Ethernet
//! driver), and admind answers; on the Pi 3 a push is tried
//! through tryboot and committed, and a trial whose init dies returns to the committed slot.

mod common;

use common::*;
use harness::{Options, Vm};
use imgtool::qemu::Board;
use std::time::{Duration, Instant};

/// The Pi 3 emulated on x86 (TCG), USB networking included, is slow.
const RASPI_TIMEOUT: Duration = Duration::from_secs(420);

#[test]
fn an_rpi_image_boots_in_raspi3b_gets_a_lease_and_admind_answers() {
    let s = Scratch::new("raspi3b");
    let image = rpi_image(&s, &["--hostname", "pi-test"]);
    // The readers x86 images pass, and every slot's device trees beside the firmware.
    let dump = stdout(&run_ok(
        std::process::Command::new("sfdisk")
            .arg("--dump")
            .arg(&image),
    ));
    assert!(
        dump.contains("type=c, bootable") && dump.matches("type=83").count() == 3,
        "{dump}"
    );
    assert_boot_partition_clean(&s, &image);
    e2fsck_data(&image); // fails unless e2fsck -fn finds nothing
    assert!(squashfs_list(&image, ROOT_A_OFFSET).contains("bin/init"));
    let listing = stdout(&run_ok(
        std::process::Command::new("mdir")
            .arg("-i")
            .arg(format!("{}@@1M", image.display()))
            .arg("-b")
            .arg("::"),
    ));
    for prefix in boot::rpi::SLOT_PREFIXES {
        for tree in boot::kernel::RPI_DEVICE_TREES {
            assert!(
                listing.contains(&format!("{prefix}{tree}")),
                "no {prefix}{tree}:\n{listing}"
            );
        }
    }
    for file in [
        "bootcode.bin",
        "start.elf",
        "start4.elf",
        "config.txt",
        "tryboot.txt",
    ] {
        assert!(listing.contains(file), "no {file}:\n{listing}");
    }

    // The firmware never reads the record; init repairs a torn copy all the same, and
    // /status says so.
    tear_copy_1(&image, Torn::FirstHalf);
    let status = boots_to_admind(&s, &image, Board::Pi3B, "Raspberry Pi 3 Model B", "pi-test");
    assert!(
        status.contains("init found boot record copy 1 damaged and rewrote it"),
        "{status}"
    );
}

/// The Pi's A/B, with `imgtool qemu` as its firmware: a push (new kernel and root) is armed
/// by the device, which restarts with "0 tryboot"; the trial slot boots from tryboot.txt,
/// init records TRIED, and the commit points config.txt at it. A trial whose init dies
/// panics the kernel, and the restart that follows reads config.txt: the old slot.
#[test]
fn on_raspi3b_a_push_is_tried_through_tryboot_and_a_dying_trial_returns() {
    let s = Scratch::new("raspi3b-push");
    let image = rpi_image(&s, &["--kernel-arg", "rustkrazy.trial_timeout=120"]);
    let mut vm = Vm::boot(&image, &pi3()).unwrap();
    vm.expect_in_order(&["init: boot status: committed slot=2"], RASPI_TIMEOUT);
    status_when_up(&s, &vm);

    // A kernel of its own: the default one with its banners' version changed.
    let kernel = s.path("Image");
    let mut bytes =
        std::fs::read(stdout(&run_ok(imgtool().args(["kernel", "--arch", "rpi"]))).trim()).unwrap();
    let banners: Vec<usize> = (0..bytes.len() - 16)
        .filter(|&i| &bytes[i..i + 16] == b"Linux version 6.")
        .collect();
    assert!(!banners.is_empty(), "no banner in the kernel");
    for at in banners {
        bytes[at + 14] = b'9';
    }
    std::fs::write(&kernel, bytes).unwrap();
    let program = s.path("extra");
    tiny_static_elf_for(&program, 4096, 21, "aarch64");
    let out = remote(&s, vm.admind_port, "push")
        .args(["--timeout", "300", "--kernel"])
        .arg(&kernel)
        .arg("--bin")
        .arg(&program)
        .output()
        .unwrap();
    assert_push_committed(&out, 3, &vm.console());
    let console = vm.console();
    for line in [
        boot::rpi::TRYBOOT_RESTART_LINE,
        "Linux version 9.",
        "init: trial of slot 3 armed, the firmware started slot 3; recorded TRIED",
        "init: boot status: trial slot=3",
    ] {
        assert!(console.contains(line), "no {line:?}:\n{console}");
    }
    let status = status_when_up(&s, &vm);
    assert!(
        status.contains("committed root 3, next boot root 3"),
        "{status}"
    );
    let config = run_ok(
        std::process::Command::new("mtype")
            .arg("-i")
            .arg(format!("{}@@1M", image.display()))
            .arg("::config.txt"),
    )
    .stdout;
    assert_eq!(
        config,
        boot::rpi::settings(boot::layout::Slot::B),
        "config.txt boots slot B now"
    );

    // A power cut between the commit's two writes: the record says root 3, config.txt still
    // root 2. The firmware boots root 2; admind points config.txt at root 3 again, and the
    // next restart boots it.
    vm.kill();
    write_config_txt(&image, &boot::rpi::settings(boot::layout::Slot::A));
    let mut vm = Vm::boot(&image, &pi3()).unwrap();
    vm.expect_in_order(
        &[
            "init: boot status: committed slot=2",
            "admind: config.txt did not name committed root 3; it does now",
        ],
        RASPI_TIMEOUT,
    );
    status_when_up(&s, &vm);
    let at = vm.position();
    run_ok(&mut remote(&s, vm.admind_port, "reboot"));
    vm.wait_for("init: boot status: committed slot=3", at, RASPI_TIMEOUT)
        .unwrap_or_else(|c| panic!("the repaired config.txt did not boot root 3: {c}"));
    status_when_up(&s, &vm);

    // A trial whose init exits at once: the kernel panics, restarts after panic=10, and the
    // firmware (config.txt) starts slot B again, where init sees the rollback.
    let dies = s.path("dies");
    tiny_static_elf_for(&dies, 64, 22, "aarch64");
    let out = remote(&s, vm.admind_port, "push")
        .args([
            "--timeout",
            "300",
            "--no-system-programs",
            "--init",
            "init",
            "--bin",
        ])
        .arg(format!("{}=init", dies.display()))
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        !out.status.success(),
        "a dying trial is no success:\n{said}"
    );
    assert!(
        said.contains("the update was rolled back: the device is back on root 3"),
        "{said}\n{}",
        vm.console()
    );
    let status = status_when_up(&s, &vm);
    assert!(status.contains("rolled-back (from root 2)"), "{status}");
    vm.kill();
}

/// The Pi 4 B in QEMU's raspi4b (QEMU 9.0 or later; what `imgtool qemu` boots by default):
/// the slot's bcm2711 device tree, 2 GiB, the image as a USB stick and USB networking (QEMU
/// models the SoC's dwc2 port, not the Pi 4's PCIe USB or its GENET Ethernet). The kernel, init,
/// link's lease and admind, over the network.
#[test]
fn an_rpi_image_boots_in_raspi4b_gets_a_lease_and_admind_answers() {
    let s = Scratch::new("raspi4b");
    let image = rpi_image(&s, &["--hostname", "pi4-test"]);
    boots_to_admind(
        &s,
        &image,
        Board::Pi4B,
        "Raspberry Pi 4 Model B",
        "pi4-test",
    );
}

/// Boots `image` on `board` and checks the kernel's model line, the tryboot patch, init,
/// link's lease and admind's status (hostname, committed root 2); prints the times.
/// Boots `image` on `board` to admind; returns `imgtool status`.
fn boots_to_admind(
    s: &Scratch,
    image: &std::path::Path,
    board: Board,
    model: &str,
    host: &str,
) -> String {
    let started = Instant::now();
    let options = Options {
        board,
        ..Options::default()
    };
    let mut vm = Vm::boot(image, &options).unwrap();
    let at = vm.expect_in_order(
        &[
            &format!("Machine model: {model}"),
            "rustkrazy: restarts with \"tryboot\" set the tryboot flag",
            &format!("init: hostname is {host}"),
            "init: boot status: committed slot=2",
        ],
        RASPI_TIMEOUT,
    );
    let init_at = started.elapsed();
    for marker in [" lease ", "admind: listening on"] {
        vm.wait_for(marker, at, RASPI_TIMEOUT)
            .unwrap_or_else(|c| panic!("waiting for {marker:?}: {c}"));
    }
    println!(
        "figure: {}, QEMU start to init's boot status: {:.1} s, to admind listening: {:.1} s",
        board.machine(),
        init_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let status = status_when_up(s, &vm);
    vm.kill();
    assert!(status.contains(host), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("boot      root 2, committed")),
        "{status}"
    );
    status
}

/// The Pi 3 B in QEMU's raspi3b.
fn pi3() -> Options {
    Options {
        board: Board::Pi3B,
        ..Options::default()
    }
}

/// A 1 GiB rpi image of the scratch instance (default kernel and firmware), with `extra`
/// mkimg flags.
fn rpi_image(s: &Scratch, extra: &[&str]) -> std::path::PathBuf {
    let image = s.path("pi.img");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--arch", "rpi", "--size", "1G"])
            .args(extra)
            .arg(&image),
    );
    image
}

/// `imgtool status` once admind answers.
fn status_when_up(s: &Scratch, vm: &Vm) -> String {
    common::status_when_up(s, vm.admind_port, Duration::from_secs(180))
}

/// Overwrites the image's config.txt in place, where `boot::fat32` finds it.
fn write_config_txt(image: &std::path::Path, content: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let base = boot::layout::BOOT.start_bytes;
    let mut read = |sector: u64, buf: &mut [u8; 512]| file.read_exact_at(buf, base + sector * 512);
    let short = boot::fat32::short_name(boot::rpi::CONFIG_TXT).unwrap();
    let sectors = boot::layout::BOOT.size_bytes.unwrap() / boot::layout::SECTOR_BYTES;
    let config = boot::fat32::find_in_root(&mut read, &short, sectors)
        .unwrap()
        .expect("config.txt on /boot");
    assert_eq!(config.bytes as usize, content.len());
    file.write_all_at(content, base + config.first_sector * 512)
        .unwrap();
}
