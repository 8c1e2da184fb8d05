//! Boot time figures, median of 5: QEMU start to init's first console line for an image
//! booted through the MBR code (SeaBIOS), through the UEFI boot program (OVMF), and for the
//! same kernel and disk booted with `-kernel`; and, under UEFI, the time from our program's
//! hand-over line to the kernel's first line.
//!
//! `cargo run --release -p harness --example boot_time -- IMAGE KERNEL CMDLINE`

use harness::{Options, Vm};
use imgtool::qemu::Firmware;
use std::path::Path;
use std::time::Duration;

const RUNS: usize = 5;
const INIT: &str = "init: rustkrazy init starting";
const HAND_OVER: &str = "rustkrazy: booting slot";
const KERNEL: &str = "Linux version";
const TIMEOUT: Duration = Duration::from_secs(300);

/// Medians of (QEMU start to init, hand-over to kernel start when `uefi`).
fn median_boot(image: &Path, options: &Options, uefi: bool) -> (Duration, Duration) {
    let mut to_init = Vec::new();
    let mut hand_over = Vec::new();
    for _ in 0..RUNS {
        let mut vm = Vm::boot(image, options).expect("start qemu");
        let fail = |e: String| -> (usize, Duration) { panic!("{e}") };
        if uefi {
            let (at, loader) = vm.wait_for(HAND_OVER, 0, TIMEOUT).unwrap_or_else(fail);
            let (_, kernel) = vm.wait_for(KERNEL, at, TIMEOUT).unwrap_or_else(fail);
            hand_over.push(kernel - loader);
        }
        to_init.push(vm.wait_for(INIT, 0, TIMEOUT).unwrap_or_else(fail).1);
        vm.kill();
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    (median(to_init), median(hand_over))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, kernel, cmdline] = &args[..] else {
        eprintln!("usage: boot_time IMAGE KERNEL CMDLINE");
        std::process::exit(2);
    };
    let image = Path::new(image);
    let (via_mbr, _) = median_boot(image, &Options::default(), false);
    let uefi = Options {
        firmware: Firmware::Uefi,
        ..Options::default()
    };
    let (via_uefi, hand_over) = median_boot(image, &uefi, true);
    let direct = Options {
        extra_args: vec![
            "-kernel".into(),
            kernel.clone(),
            "-append".into(),
            cmdline.clone(),
        ],
        ..Options::default()
    };
    let (via_kernel, _) = median_boot(image, &direct, false);
    println!("QEMU start to init's first line, median of {RUNS}:");
    println!(
        "  BIOS, through the MBR boot code:     {:.2} s",
        via_mbr.as_secs_f64()
    );
    println!(
        "  UEFI, through the UEFI boot program: {:.2} s",
        via_uefi.as_secs_f64()
    );
    println!(
        "  BIOS, with -kernel:                  {:.2} s",
        via_kernel.as_secs_f64()
    );
    println!(
        "  MBR code overhead:                   {:.2} s",
        via_mbr.as_secs_f64() - via_kernel.as_secs_f64()
    );
    println!(
        "UEFI program's hand-over line to the kernel's first line, median of {RUNS}: {:.3} s",
        hand_over.as_secs_f64()
    );
}
