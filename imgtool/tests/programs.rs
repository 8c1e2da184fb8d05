//! Real programs. A crates.io program with C inside (rustls-cert-gen, whose ring compiles C
//! and assembly) builds through zig's C compiler for x86_64 and aarch64: the x86_64
//! appliance runs it and openssl reads the certificate it made; the aarch64 binary does the
//! same under qemu-aarch64-static. Programs come from git repositories (file:// URLs), a
//! named crate and a repository's default. The demo appliance's web page answers through a
//! forwarded port.

mod common;

use common::*;
use harness::{Options, Vm};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// A small published program whose dependency ring compiles C.
const CERT_GEN: &str = "rustls-cert-gen@0.2.0";

/// The subject alternative names openssl reads from a PEM certificate.
fn openssl_sans(pem: &Path) -> String {
    stdout(&run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(pem),
    ))
}

/// `unsquashfs -cat` of a binary in root A.
fn root_file(image: &Path, path: &str) -> Vec<u8> {
    run_ok(
        Command::new("unsquashfs")
            .arg("-o")
            .arg(ROOT_A_OFFSET.to_string())
            .arg("-cat")
            .arg(image)
            .arg(path),
    )
    .stdout
}

#[test]
fn a_crates_io_program_with_c_inside_builds_for_both_arches_and_runs() {
    let s = Scratch::new("crate-c");
    let appliance = s.path("appliance.toml");
    std::fs::write(
        &appliance,
        format!(
            "size = \"1G\"\n[[programs]]\ncrate = \"{CERT_GEN}\"\n\
             args = [\"--output=/data/rustls-cert-gen/certs\", \"--san=appliance.test\"]\n"
        ),
    )
    .unwrap();

    // x86_64: the appliance runs it; the certificate it wrote to /data is a real one.
    let image = s.path("x86.img");
    let started = Instant::now();
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .arg("--config")
            .arg(&appliance)
            .arg(&image),
    );
    println!(
        "figure: mkimg with {CERT_GEN} for x86_64: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut vm = Vm::boot(&image, &Options::default()).unwrap();
    for marker in [
        "init: rustls-cert-gen exited with status 0",
        "admind: listening on",
    ] {
        vm.wait_for(marker, 0, BOOT_TIMEOUT)
            .unwrap_or_else(|c| panic!("waiting for {marker:?}: {c}"));
    }
    let password = std::fs::read_to_string(s.path("instance/password")).unwrap();
    let pem = s.path("x86-cert.pem");
    run_ok(
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "30"])
            .args(common::curl_trust(&s, vm.admind_port))
            .arg("-u")
            .arg(format!("rustkrazy:{password}"))
            .arg(format!(
                "https://127.0.0.1:{}/data/read?path=rustls-cert-gen/certs/cert.pem",
                vm.admind_port
            ))
            .arg("-o")
            .arg(&pem),
    );
    vm.kill();
    let sans = openssl_sans(&pem);
    assert!(sans.contains("DNS:appliance.test"), "{sans}");

    // aarch64: the same program, cross-built; it runs under qemu-aarch64-static.
    let arm = s.path("arm.img");
    let started = Instant::now();
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("arm-instance"))
            .args(["--arch", "aarch64", "--config"])
            .arg(&appliance)
            .arg(&arm),
    );
    println!(
        "figure: mkimg with {CERT_GEN} for aarch64: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let binary = s.path("rustls-cert-gen.aarch64");
    std::fs::write(&binary, root_file(&arm, "bin/rustls-cert-gen")).unwrap();
    set_executable(&binary);
    let file = stdout(&run_ok(Command::new("file").arg(&binary)));
    assert!(
        file.contains("ARM aarch64") && file.contains("statically linked"),
        "{file}"
    );
    let out_dir = s.path("arm-certs");
    run_ok(
        Command::new("qemu-aarch64-static")
            .arg(&binary)
            .arg(format!("--output={}", out_dir.display()))
            .arg("--san=arm.test"),
    );
    let sans = openssl_sans(&out_dir.join("cert.pem"));
    assert!(sans.contains("DNS:arm.test"), "{sans}");
}

/// A git repository holding `files` (path, contents), committed; returns its file:// URL.
fn git_repo(dir: &Path, files: &[(&str, &str)]) -> String {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .args([
                    "-c",
                    "user.name=test",
                    "-c",
                    "user.email=test@example.invalid",
                ])
                .arg("-C")
                .arg(dir)
                .args(args),
        )
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "programs"]);
    format!("file://{}", dir.display())
}

fn bin_crate(name: &str) -> (String, String) {
    (
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        format!("fn main() {{ println!(\"{name} runs\"); }}\n"),
    )
}

#[test]
fn git_sources_build_a_named_crate_and_a_repositorys_default() {
    let s = Scratch::new("git");
    let (single_toml, single_main) = bin_crate("gitone");
    let one = git_repo(
        &s.path("one"),
        &[("Cargo.toml", &single_toml), ("src/main.rs", &single_main)],
    );
    let (alpha_toml, alpha_main) = bin_crate("alpha");
    let (beta_toml, beta_main) = bin_crate("beta");
    let many = git_repo(
        &s.path("many"),
        &[
            (
                "Cargo.toml",
                "[workspace]\nresolver = \"2\"\nmembers = [\"alpha\", \"beta\"]\n",
            ),
            ("alpha/Cargo.toml", &alpha_toml),
            ("alpha/src/main.rs", &alpha_main),
            ("beta/Cargo.toml", &beta_toml),
            ("beta/src/main.rs", &beta_main),
        ],
    );
    let image = s.path("git.img");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--size", "1G", "--git", &one, "--git"])
            .arg(format!("{many}%beta"))
            .arg(&image),
    );
    let listing = squashfs_list(&image, ROOT_A_OFFSET);
    assert!(
        !listing.contains("bin/alpha"),
        "only the named crate: {listing}"
    );
    for name in ["gitone", "beta"] {
        let binary = s.path(name);
        std::fs::write(&binary, root_file(&image, &format!("bin/{name}"))).unwrap();
        set_executable(&binary);
        let said = stdout(&run_ok(&mut Command::new(&binary)));
        assert_eq!(said, format!("{name} runs\n"));
    }
}

/// README's main command builds the demo appliance; its page answers on a forwarded port
/// with the appliance's hostname and the build `imgtool status` reports for the slot.
#[test]
fn the_demo_appliances_web_page_answers_through_a_forwarded_port() {
    let s = Scratch::new("demo");
    let image = s.path("demo.img");
    let appliance = imgtool::cargo_build::workspace_dir().join("ci/webdemo/appliance.toml");
    run_ok(
        imgtool()
            .arg("mkimg")
            .arg("--instance")
            .arg(s.path("instance"))
            .args(["--size", "1G", "--hostname", "demo-box", "--config"])
            .arg(&appliance)
            .arg(&image),
    );
    let options = Options {
        forwards: vec![80],
        ..Options::default()
    };
    let mut vm = Vm::boot(&image, &options).unwrap();
    for marker in ["webdemo: serving", "admind: listening on"] {
        vm.wait_for(marker, 0, BOOT_TIMEOUT)
            .unwrap_or_else(|c| panic!("waiting for {marker:?}: {c}"));
    }
    let port = vm.host_port(80).unwrap();
    let page = stdout(&run_ok(Command::new("curl").args([
        "-sS",
        "--fail",
        "--max-time",
        "30",
        &format!("http://127.0.0.1:{port}/"),
    ])));
    let status = stdout(&run_ok(&mut remote(&s, vm.admind_port, "status")));
    // A push of the demo (another kernel argument, so another build) commits once the page
    // answers its readiness check (`ready = "http 80 /"`).
    let pushed = remote(&s, vm.admind_port, "push")
        .args([
            "--timeout",
            "150",
            "--hostname",
            "demo-box",
            "--kernel-arg",
            "rustkrazy.demo=2",
            "--config",
        ])
        .arg(&appliance)
        .output()
        .unwrap();
    let said = assert_push_committed(&pushed, 3, &vm.console());
    println!(
        "figure: demo push with a readiness check: {}",
        said.lines()
            .find(|l| l.starts_with("push: done"))
            .unwrap_or("?")
    );
    vm.kill();
    let build = status
        .lines()
        .find(|l| l.starts_with("root 2"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or_else(|| panic!("no root 2 build in {status}"));
    assert!(page.contains("<h1>demo-box</h1>"), "{page}");
    // Port 80 is served by a program that is not root: its capability, not root's powers.
    let webdemo = status
        .lines()
        .find(|l| l.starts_with("service   webdemo "))
        .unwrap_or_else(|| panic!("no webdemo in {status}"));
    assert!(
        webdemo.contains(" user ") && !webdemo.contains(" user root"),
        "{webdemo}"
    );
    assert!(page.contains("A (partition 2)"), "{page}");
    assert!(
        page.contains(&format!("<code>{build}</code>")),
        "the page's build is not {build}:\n{page}\n{status}"
    );
}
