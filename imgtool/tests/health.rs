//! A trial is committed only when its programs say they are healthy: pushes of a build whose
//! web server crashes on start and of one whose server never opens its port are rolled back
//! and push names the program (with its last log lines); a healthy build commits.

mod common;

use common::*;
use harness::{Options, Vm};
use std::time::Duration;

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Short, so a trial that never gets ready ends soon (push gives up 20 s before it), with
/// room for a slow emulated boot.
const TRIAL_S: u32 = 90;

/// An appliance file whose one program, `web`, is testsvc's `program` with a readiness check.
fn appliance(s: &Scratch, file: &str, program: &str) -> std::path::PathBuf {
    let path = s.path(file);
    std::fs::write(
        &path,
        format!(
            "[[programs]]\nbin = \"{}\"\nname = \"web\"\nready = \"tcp 7777\"\n",
            testsvc().join(program).display()
        ),
    )
    .unwrap();
    path
}

fn push(s: &Scratch, vm: &Vm, config: &std::path::Path) -> std::process::Output {
    remote(s, vm.admind_port, "push")
        .args(["--timeout", "150", "--kernel-arg"])
        .arg(format!("rustkrazy.trial_timeout={TRIAL_S}"))
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn a_build_whose_program_is_not_ready_rolls_back_and_a_healthy_one_commits() {
    let s = Scratch::new("health");
    let image = s.path("a.img");
    let healthy = appliance(&s, "healthy.toml", "greeter");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--size", "1G", "--kernel-arg"])
            .arg(format!("rustkrazy.trial_timeout={TRIAL_S}"))
            .arg("--config")
            .arg(&healthy)
            .arg(&image),
    );
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    vm.wait_for("admind: listening on", 0, BOOT_TIMEOUT)
        .unwrap_or_else(|c| panic!("admind did not start: {c}"));
    status_when_up(&s, vm.admind_port, Duration::from_secs(90));

    // A web server that crashes on start: rolled back, named, with what it printed.
    let out = push(&s, &vm, &appliance(&s, "crashing.toml", "crasher"));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    for expected in [
        "not committing: web is not ready: port 7777 does not accept connections",
        "the update was rolled back",
        "the device is back on root 2",
        "web's last stdout lines:",
        "crasher: starting and failing",
    ] {
        assert!(said.contains(expected), "{expected:?} in:\n{said}");
    }

    // A web server that never opens its port: the same.
    let out = push(&s, &vm, &appliance(&s, "silent.toml", "sleeper"));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    for expected in [
        "not committing: web is not ready: port 7777 does not accept connections",
        "the device is back on root 2",
    ] {
        assert!(said.contains(expected), "{expected:?} in:\n{said}");
    }
    let status = status_when_up(&s, vm.admind_port, Duration::from_secs(90));
    assert!(status.contains("root 2, rolled-back"), "{status}");

    // A healthy build commits.
    let out = push(&s, &vm, &healthy);
    assert_push_committed(&out, 3, &vm.console());
    vm.kill();
}
