//! The C side of musl builds: crates whose build scripts compile C (ring, aws-lc-rs, a
//! bundled SQLite) get zig's C compiler for the program's target, so they build for every
//! arch without the user configuring anything. zig carries musl headers for every target
//! (Debian has no musl cross compiler for arm64, and musl-gcc only for the host); it comes
//! from PyPI's `ziglang` package, which `ci/install-deps` installs.
//!
//! cc-rs takes the compiler from `CC_<target>`; it points at a small wrapper script imgtool
//! writes, which turns cc-rs's clang-style `--target=<rust triple>` into zig's own target
//! and turns off the UB sanitizer zig enables for unoptimised C (its runtime is not linked).
//! Linking stays Rust's: the C objects resolve against the musl Rust ships.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ziglang release `ci/install-deps` installs, for messages.
pub const ZIGLANG: &str = "ziglang==0.17.1";

/// What to add to a failed build's message: when no C compiler was set up for `target`,
/// how to get one (cc-rs's own `failed to find tool` names a compiler nobody has).
pub fn failure_hint(target: &str) -> String {
    let var = format!("CC_{}", target.replace('-', "_"));
    if std::env::var_os(&var).is_some() || find_zig().is_some() {
        return String::new();
    }
    format!(
        "; if they say a C compiler is missing, install zig, which imgtool uses to compile \
         C for {target}: `pip install {ZIGLANG}` (ci/install-deps does), or set {var}"
    )
}

/// zig's name for a Rust musl target.
fn zig_target(rust_target: &str) -> Option<&'static str> {
    match rust_target {
        "x86_64-unknown-linux-musl" => Some("x86_64-linux-musl"),
        "aarch64-unknown-linux-musl" => Some("aarch64-linux-musl"),
        _ => None,
    }
}

/// The zig executable: `zig` on PATH, else the one inside Python's ziglang package.
pub fn find_zig() -> Option<PathBuf> {
    let works = |zig: &Path| {
        Command::new(zig)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(Path::new("zig")) {
        return Some(PathBuf::from("zig"));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, ziglang; print(os.path.dirname(ziglang.__file__))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let zig = Path::new(dir.trim()).join("zig");
    (out.status.success() && works(&zig)).then_some(zig)
}

/// Points cargo's C builds for `rust_target` at zig through wrappers in `cache`, unless
/// the user set `CC_<target>` already. Returns whether it did.
pub fn configure(cmd: &mut Command, rust_target: &str, cache: &Path) -> Result<bool> {
    let var = rust_target.replace('-', "_");
    if std::env::var_os(format!("CC_{var}")).is_some() {
        return Ok(false);
    }
    // Looking for zig runs Python: only for targets zig can build for.
    let Some(zig_target) = zig_target(rust_target) else {
        return Ok(false);
    };
    let Some(zig) = find_zig() else {
        return Ok(false);
    };
    let dir = cache.join("cc").join(rust_target);
    std::fs::create_dir_all(&dir)?;
    let cc = wrapper(
        &dir,
        "cc",
        &format!("cc -target {zig_target} -fno-sanitize=undefined"),
        &zig,
    )?;
    let cxx = wrapper(
        &dir,
        "c++",
        &format!("c++ -target {zig_target} -fno-sanitize=undefined"),
        &zig,
    )?;
    let ar = wrapper(&dir, "ar", "ar", &zig)?;
    cmd.env(format!("CC_{var}"), cc)
        .env(format!("CXX_{var}"), cxx)
        .env(format!("AR_{var}"), ar);
    Ok(true)
}

/// Writes `dir/name`: a script running `zig <subcommand> <args>` without cc-rs's
/// `--target=...` (zig does not know Rust's triples; the subcommand names the target).
fn wrapper(dir: &Path, name: &str, subcommand: &str, zig: &Path) -> Result<PathBuf> {
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\n\
         # Written by imgtool (imgtool/src/c_toolchain.rs): zig as {name} for cc-rs.\n\
         for arg do\n  shift\n  case \"$arg\" in --target=*) continue ;; esac\n  set -- \"$@\" \"$arg\"\ndone\n\
         exec '{}' {subcommand} \"$@\"\n",
        zig.display()
    );
    if std::fs::read_to_string(&path).ok().as_deref() != Some(script.as_str()) {
        let partial = dir.join(format!("{name}.partial"));
        std::fs::write(&partial, &script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper drops cc-rs's target flag and keeps every other argument, spaces and
    /// all (checked with `echo` standing in for zig).
    #[test]
    fn wrapper_drops_rusts_target_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("imgtool-cc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cc = wrapper(
            &dir,
            "cc",
            "cc -target aarch64-linux-musl",
            Path::new("echo"),
        )
        .unwrap();
        let out = Command::new(&cc)
            .args([
                "--target=aarch64-unknown-linux-musl",
                "-O2",
                "a b.c",
                "-o",
                "x.o",
            ])
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "cc -target aarch64-linux-musl -O2 a b.c -o x.o\n"
        );
    }

    #[test]
    fn knows_both_musl_targets() {
        assert_eq!(
            zig_target("x86_64-unknown-linux-musl"),
            Some("x86_64-linux-musl")
        );
        assert_eq!(
            zig_target("aarch64-unknown-linux-musl"),
            Some("aarch64-linux-musl")
        );
        assert_eq!(zig_target("riscv64gc-unknown-linux-musl"), None);
    }
}
