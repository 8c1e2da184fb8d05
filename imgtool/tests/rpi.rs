//! Raspberry Pi images in QEMU's raspi3b machine: the default arm64 kernel (with rustkrazy's
//! tryboot patch, which says so in the boot log), Debian's firmware and the mainline device
//! tree; the harness plays the firmware's part (config.txt chooses the slot). The appliance
//! boots to init from the SD card, gets a lease over USB networking (QEMU's usb-net, the
//! CDC Ethernet driver), and admind answers.

mod common;

use common::*;
use harness::{Options, Vm};
use std::time::{Duration, Instant};

/// The Pi 3 emulated on x86 (TCG), USB networking included, is slow.
const RASPI_TIMEOUT: Duration = Duration::from_secs(420);

#[test]
fn an_rpi_image_boots_in_raspi3b_gets_a_lease_and_admind_answers() {
    let s = Scratch::new("raspi3b");
    let image = s.path("pi.img");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--arch", "rpi", "--size", "1G", "--hostname", "pi-test"])
            .arg(&image),
    );
    let started = Instant::now();
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    let at = vm.expect_in_order(
        &[
            "Machine model: Raspberry Pi 3 Model B",
            "rustkrazy: restarts with \"tryboot\" set the tryboot flag",
            "init: hostname is pi-test",
            "init: boot status: committed slot=2",
        ],
        RASPI_TIMEOUT,
    );
    for marker in [" lease ", "admind: listening on"] {
        vm.wait_for(marker, at, RASPI_TIMEOUT)
            .unwrap_or_else(|c| panic!("waiting for {marker:?}: {c}"));
    }
    println!(
        "figure: raspi3b, QEMU start to admind listening: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let out = remote(&s, vm.admind_port, "status").output().unwrap();
        if out.status.success() {
            break stdout(&out);
        }
        assert!(
            Instant::now() < deadline,
            "admind never answered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    vm.kill();
    assert!(status.contains("pi-test"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("boot      root 2, committed")),
        "{status}"
    );
}
