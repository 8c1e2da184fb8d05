//! Programs cannot hurt the appliance: a compromised program (ci/testsvc's `hostile`), run
//! with no settings under a real kernel in QEMU, is refused or stopped at each attack, and
//! admind stays reachable and names the limits it hit.

mod common;

use common::*;
use harness::{Options, Vm};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(240);

/// The console line holding `marker` after `from`, and the position past it.
fn line(vm: &mut Vm, marker: &str, from: usize) -> (String, usize) {
    vm.wait_line(marker, from, TIMEOUT)
        .unwrap_or_else(|console| panic!("waiting for {marker:?}: {console}"))
}

/// The number after `before` in `text`.
fn number_after(text: &str, before: &str) -> u64 {
    let rest = &text[text
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {text:?}"))
        + before.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {before:?} in {text:?}"))
}

#[test]
fn a_compromised_default_program_is_refused_or_contained_and_admind_stays_reachable() {
    let s = Scratch::new("sandbox-hostile");
    let image = image_with(&s, "a.img", &["hostile"], None);
    let memory_mib = 512;
    let mut vm = Vm::boot(
        &image,
        &Options {
            memory_mib,
            ..Options::default()
        },
    )
    .expect("start qemu");

    let (_, mut at) = line(&mut vm, "hostile: own folder: done", 0);
    let (user, _) = line(&mut vm, "hostile: running as user ", 0);
    assert_ne!(number_after(&user, "as user "), 0, "{user}");
    // Secrets, init's files, other folders on /data, admind itself: all refused.
    for attack in [
        "read /data/admind/key.pem: refused (Permission denied",
        "read /etc/admind/password.hash: refused (Permission denied",
        "write /run/rustkrazy/boot-status: refused (Permission denied",
        "write /data/planted: refused (Permission denied",
        "write into admind's folder: refused (Permission denied",
        "write admind's log: refused (Permission denied",
        "leave its control group: refused (Permission denied",
        "kill admind: refused (Operation not permitted",
    ] {
        (_, at) = line(&mut vm, &format!("hostile: {attack}"), at);
    }
    // The fork loop stops at the task limit.
    let (forks, next) = line(&mut vm, "hostile: fork 10000 children: refused (after ", at);
    let children = number_after(&forks, "after ");
    assert!(
        (100..boot::sandbox::TASKS_DEFAULT.into()).contains(&children),
        "{forks}"
    );
    // /tmp is full at a quarter of the RAM.
    let (fill, next) = line(&mut vm, "hostile: fill /tmp: refused (at ", next);
    let filled_mib = number_after(&fill, "at ");
    assert!(filled_mib <= u64::from(memory_mib) / 4, "{fill}");
    assert!(fill.contains("No space left on device"), "{fill}");
    // The allocation ends at the memory limit (half the RAM): the kernel kills the program,
    // and only the program.
    let (_, next) = line(&mut vm, "init: hostile exited on signal 9", next);
    line(
        &mut vm,
        "hostile: running again after the first run; idle",
        next,
    );
    let console = vm.console();
    assert!(
        !console.contains("hostile: allocate 1 GiB: done"),
        "{console}"
    );
    // Nothing else was killed or restarted.
    for other in ["link", "admind"] {
        assert!(
            !console.contains(&format!("init: {other} exited")),
            "{console}"
        );
    }

    // admind answers, and /status names the program and the limits it hit.
    let status = stdout(&run_ok(&mut remote(&s, vm.admind_port, "status")));
    let processes = top(&s, vm.admind_port);
    vm.kill();
    let service = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(&format!("service   {name} ")))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .to_string()
    };
    let hostile = service("hostile");
    assert!(
        hostile.contains("killed at its memory limit: 1"),
        "{status}"
    );
    assert!(
        hostile.contains("forks refused at its task limit: "),
        "{status}"
    );
    assert!(service("admind").contains(" user root"), "{status}");
    for name in ["init", "link", "admind"] {
        let (_, rss) = processes[name];
        println!("figure: {name} RSS {rss} kB after a program was killed at its memory limit ({memory_mib} MiB machine)");
    }
}
