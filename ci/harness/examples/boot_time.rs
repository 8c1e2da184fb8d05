//! Boot time figures: QEMU start to init's first console line, median of 5, for an image
//! booted through the MBR code and for the same kernel and disk booted with `-kernel`.
//!
//! `cargo run --release -p harness --example boot_time -- IMAGE KERNEL CMDLINE`

use harness::{Options, Vm};
use std::path::Path;
use std::time::Duration;

const RUNS: usize = 5;
const MARKER: &str = "init: rustkrazy init starting";
const TIMEOUT: Duration = Duration::from_secs(300);

fn median_boot(image: &Path, options: &Options) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let mut vm = Vm::boot(image, options).expect("start qemu");
            let (_, took) = vm
                .wait_for(MARKER, 0, TIMEOUT)
                .unwrap_or_else(|e| panic!("{e}"));
            vm.kill();
            took
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, kernel, cmdline] = &args[..] else {
        eprintln!("usage: boot_time IMAGE KERNEL CMDLINE");
        std::process::exit(2);
    };
    let image = Path::new(image);
    let via_mbr = median_boot(image, &Options::default());
    let direct = Options {
        extra_args: vec![
            "-kernel".into(),
            kernel.clone(),
            "-append".into(),
            cmdline.clone(),
        ],
        ..Options::default()
    };
    let via_kernel = median_boot(image, &direct);
    println!("QEMU start to init's first line, median of {RUNS}:");
    println!(
        "  through the MBR boot code: {:.2} s",
        via_mbr.as_secs_f64()
    );
    println!(
        "  with -kernel:              {:.2} s",
        via_kernel.as_secs_f64()
    );
    println!(
        "  boot code overhead:        {:.2} s",
        via_mbr.as_secs_f64() - via_kernel.as_secs_f64()
    );
}
