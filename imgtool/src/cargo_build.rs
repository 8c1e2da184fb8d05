//! Builds programs with cargo for the appliance's target: release profile, static (musl),
//! cargo's own output streamed to the user's terminal (stderr).

use crate::config::{Arch, Source};
use crate::rootfs::Program;
use anyhow::{bail, Context, Result};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace imgtool was built from: where rustkrazy's own init, link and admind live.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Device programs this workspace builds and every image carries by default.
pub const SYSTEM_PROGRAMS: [&str; 2] = ["link", "admind"];
pub const INIT: &str = "init";

/// Runs cargo builds for one architecture; `cache` holds target folders across runs.
pub struct Builder {
    pub arch: Arch,
    pub cache: PathBuf,
}

impl Builder {
    /// A cargo command building for `target`.
    fn cargo(&self, target: &str) -> Command {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        // Cargo's stdout would mix with ours: send everything it prints to our stderr.
        cmd.stdout(std::io::stderr());
        if target == "aarch64-unknown-linux-musl"
            && std::env::var_os("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER").is_none()
        {
            // Rust's linker needs no C cross toolchain: the musl Rust ships resolves libc
            // for Rust code and for C objects alike.
            cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld");
        }
        // No path of this machine in what it builds (imgtool/rustc-remap says how); a
        // RUSTC_WRAPPER of the user's own in the environment (sccache) takes its place.
        let remap = workspace_dir().join("imgtool").join("rustc-remap");
        if std::env::var_os("RUSTC_WRAPPER").is_none_or(|w| w.is_empty()) && remap.exists() {
            cmd.env("RUSTC_WRAPPER", remap);
        }
        // Crates with C inside: zig compiles it for the target (no effect on all-Rust ones).
        if let Err(e) = crate::c_toolchain::configure(&mut cmd, target, &self.cache) {
            eprintln!("note: cannot set up zig as the C compiler: {e:#}");
        }
        cmd
    }

    /// rustkrazy's own device programs from this workspace.
    pub fn build_system(&self, packages: &[&str]) -> Result<Vec<Program>> {
        let workspace = workspace_dir();
        if !workspace.join("init").join("Cargo.toml").exists() {
            bail!(
                "rustkrazy's sources are not at {} (imgtool was moved?); pass --init and --no-system-programs, or run imgtool from the checkout",
                workspace.display()
            );
        }
        let mut cmd = self.cargo(self.arch.target());
        // From the workspace, so rustup takes the toolchain rust-toolchain.toml pins: std
        // is rebuilt with unstable cargo features (.cargo/device-programs.toml says which
        // and why), which only that compiler is known to spell as the file does.
        cmd.current_dir(&workspace).env("RUSTC_BOOTSTRAP", "1");
        cmd.arg("build")
            .arg("--release")
            .arg("--locked")
            .arg("--target")
            .arg(self.arch.target());
        cmd.arg("--manifest-path").arg(workspace.join("Cargo.toml"));
        cmd.arg("--config")
            .arg(workspace.join(".cargo").join("device-programs.toml"));
        // Its own target folder: a `cargo test`/`cargo run` of the workspace holds the lock
        // on the default one while imgtool runs.
        cmd.arg("--target-dir")
            .arg(workspace.join("target").join("device"));
        for p in packages {
            cmd.arg("-p").arg(p);
        }
        self.run_build(cmd, "rustkrazy's device programs")
    }

    /// rustkrazy's UEFI boot program for this architecture (`boot/uefi`), if its machines
    /// boot through UEFI: the `/boot` path it goes to and its bytes.
    pub fn build_uefi(&self) -> Result<Option<(&'static str, Vec<u8>)>> {
        let Some((target, boot_path)) = self.arch.uefi() else {
            return Ok(None);
        };
        let manifest = workspace_dir().join("boot").join("uefi").join("Cargo.toml");
        if !manifest.is_file() {
            eprintln!(
                "note: no UEFI boot program ({} is missing): the image boots from BIOS only",
                manifest.display()
            );
            return Ok(None);
        }
        let mut cmd = self.cargo(target);
        cmd.arg("build")
            .arg("--release")
            .arg("--locked")
            .arg("--target")
            .arg(target);
        cmd.arg("--manifest-path").arg(&manifest);
        cmd.arg("--target-dir")
            .arg(workspace_dir().join("target").join("uefi"));
        let programs = self.run_build(cmd, "rustkrazy's UEFI boot program").with_context(|| {
            format!("is the Rust target installed? `rustup target add {target}` (ci/install-deps does)")
        })?;
        let path = &programs[0].path;
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Some((boot_path, data)))
    }

    /// Builds or fetches one user program source; returns its executables.
    pub fn build(&self, source: &Source) -> Result<Vec<Program>> {
        match source {
            Source::Bin { file, name } => {
                let name = match name {
                    Some(n) => n.clone(),
                    None => file
                        .file_name()
                        .with_context(|| format!("--bin {} names no file", file.display()))?
                        .to_string_lossy()
                        .into_owned(),
                };
                if !file.is_file() {
                    bail!("--bin {}: no such file", file.display());
                }
                Ok(vec![Program {
                    name,
                    path: file.clone(),
                }])
            }
            Source::Path(dir) => {
                let manifest = dir.join("Cargo.toml");
                if !manifest.is_file() {
                    bail!("--path {}: no Cargo.toml there", dir.display());
                }
                let mut cmd = self.cargo(self.arch.target());
                cmd.arg("build")
                    .arg("--release")
                    .arg("--target")
                    .arg(self.arch.target());
                cmd.arg("--manifest-path").arg(&manifest);
                self.run_build(cmd, &format!("--path {}", dir.display()))
            }
            Source::Crate { name, version } => {
                let mut cmd = self.cargo(self.arch.target());
                cmd.arg("install").arg(name);
                if let Some(v) = version {
                    cmd.arg("--version").arg(v);
                }
                self.run_install(cmd, &format!("--crate {name}"))
            }
            Source::Git { url, krate } => {
                let mut cmd = self.cargo(self.arch.target());
                cmd.arg("install").arg("--git").arg(url);
                if let Some(k) = krate {
                    cmd.arg(k);
                }
                self.run_install(cmd, &format!("--git {url}"))
            }
        }
    }

    /// `cargo build`, reading the executables it produced from its JSON messages.
    fn run_build(&self, mut cmd: Command, what: &str) -> Result<Vec<Program>> {
        cmd.arg("--message-format").arg("json-render-diagnostics");
        cmd.stdout(Stdio::piped());
        let output = cmd
            .spawn()
            .context("cannot run cargo")?
            .wait_with_output()?;
        if !output.status.success() {
            bail!(
                "building {what} for {} failed (cargo's messages are above){}",
                self.arch.target(),
                crate::c_toolchain::failure_hint(self.arch.target())
            );
        }
        let mut programs = Vec::new();
        for line in output
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact"
                || !msg["target"]["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            {
                continue;
            }
            if let (Some(exe), Some(name)) =
                (msg["executable"].as_str(), msg["target"]["name"].as_str())
            {
                programs.push(Program {
                    name: name.to_string(),
                    path: PathBuf::from(exe),
                });
            }
        }
        if programs.is_empty() {
            bail!("{what} builds no binary");
        }
        Ok(programs)
    }

    /// `cargo install` into a fresh root; its bin/ holds the executables.
    fn run_install(&self, mut cmd: Command, what: &str) -> Result<Vec<Program>> {
        // One fresh root per source: two sources whose names share a long prefix must not
        // see each other's executables.
        let digest = sha2::Sha256::digest(what.as_bytes());
        let root = self.cache.join("install").join(format!(
            "{}-{}-{}",
            std::process::id(),
            boot::encoding::Hex(&digest[..6]),
            sanitize(what)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        cmd.arg("--target").arg(self.arch.target());
        cmd.arg("--root").arg(&root).arg("--force");
        cmd.arg("--target-dir").arg(self.cache.join("target"));
        let status = cmd.status().context("cannot run cargo")?;
        if !status.success() {
            bail!(
                "installing {what} for {} failed (cargo's messages are above){}",
                self.arch.target(),
                crate::c_toolchain::failure_hint(self.arch.target())
            );
        }
        let mut programs = Vec::new();
        for entry in std::fs::read_dir(root.join("bin"))? {
            let entry = entry?;
            programs.push(Program {
                name: entry.file_name().to_string_lossy().into_owned(),
                path: entry.path(),
            });
        }
        programs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(programs)
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect()
}

/// Where imgtool keeps build caches: `$XDG_CACHE_HOME/rustkrazy` or `~/.cache/rustkrazy`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rustkrazy")
}
