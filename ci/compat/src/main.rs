//! The compatibility suite: what ordinary programs built from real crates do, run on the
//! appliance as a user's program runs (imgtool/tests/compat.rs reads what it prints).
//!
//! `compat` runs every check once, prints one line per check (`compat: NAME: ok (...)` or
//! `compat: NAME: FAILED: ...` with the errno), the system call census, a summary line, and
//! then waits (it is a service: init would start it again if it ended). `compat census` prints
//! the census alone (the test runs it on the host for the Debian kernel's answers). The other
//! modes are the second processes the checks start.

mod census;
mod checks;

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            run_checks();
            census::print();
            // A service that ended would be started again; this one has said all it has.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Some("census") => census::print(),
        Some(mode) => std::process::exit(checks::second_process(mode, &args[1..])),
    }
}

fn run_checks() {
    let mut failed = 0;
    for (name, check) in checks::ALL {
        match check() {
            Ok(detail) => println!("compat: {name}: ok ({detail})"),
            Err(e) => {
                failed += 1;
                println!("compat: {name}: FAILED: {e}");
            }
        }
    }
    match failed {
        0 => println!("compat: every check ok ({} checks)", checks::ALL.len()),
        n => println!("compat: {n} of {} checks FAILED", checks::ALL.len()),
    }
}
