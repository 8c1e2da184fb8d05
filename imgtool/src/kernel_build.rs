//! `imgtool kernel`: builds a Linux kernel from source with rustkrazy's config fragment merged
//! onto `make tinyconfig`, everything built in (no modules, no initramfs).
//!
//! Every build applies rustkrazy's patches (`boot/kernel/*.patch`, `boot::kernel`) first;
//! arm64 builds also build the Raspberry Pi device trees. Results are cached under `~/.cache/rustkrazy/kernel/<key>/`,
//! keyed by the source (path, size and modification time of a tarball; path of a tree plus
//! its Makefile's contents), the fragment, the patches and the architecture, so a second call
//! returns at once; every arm64 machine shares one build.

use crate::config::Arch;
use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bumped whenever the recipe (the commands below) changes, to invalidate the cache.
const RECIPE_VERSION: &str = "1";
/// Where Debian's linux-source package puts its tarball.
const DEBIAN_SOURCE_DIR: &str = "/usr/src";

/// Debian's newest `linux-source-*.tar.xz`.
pub fn default_source() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(DEBIAN_SOURCE_DIR)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("linux-source-") && name.ends_with(".tar.xz")
        })
        .collect();
    found.sort_by_key(|a| version_key(a));
    found.pop().context(
        "no kernel source: install Debian's with `apt-get install linux-source-6.12 flex bison bc libelf-dev` \
         or pass --source TARBALL_OR_DIR",
    )
}

fn version_key(path: &Path) -> Vec<u64> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.trim_start_matches("linux-source-")
        .trim_end_matches(".tar.xz")
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}

fn cache_key(source: &Path, recipe: &Recipe) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(RECIPE_VERSION);
    hash.update(recipe.make_arch);
    for fragment in recipe.fragments {
        hash.update(fragment);
    }
    for (name, text) in recipe.patches {
        hash.update(name);
        hash.update(text);
    }
    for tree in recipe.device_trees {
        hash.update(tree);
    }
    let source = source
        .canonicalize()
        .with_context(|| format!("kernel source {} not found", source.display()))?;
    hash.update(source.as_os_str().as_encoded_bytes());
    if source.is_dir() {
        hash.update(
            std::fs::read(source.join("Makefile")).context("kernel source tree has no Makefile")?,
        );
    } else {
        let meta = std::fs::metadata(&source)?;
        hash.update(meta.len().to_le_bytes());
        hash.update(
            meta.modified()?
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
                .to_le_bytes(),
        );
    }
    Ok(boot::encoding::Hex(&hash.finalize()[..12]).to_string())
}

/// How one kernel is built: make's architecture, the fragments and patches, what comes out.
/// Every arm64 machine (UEFI and Raspberry Pi) shares one recipe, so one build.
struct Recipe {
    make_arch: &'static str,
    /// Merged onto tinyconfig in order: the architecture's, then what programs expect.
    fragments: &'static [&'static str],
    /// Applied in order with `patch -p1` to the unpacked source: (file name, text).
    patches: &'static [(&'static str, &'static str)],
    /// Cross compiler prefix, and the Debian package that has it.
    cross: Option<(&'static str, &'static str)>,
    /// make target, and where it leaves the file.
    target: &'static str,
    output: &'static str,
    /// Device trees built beside it (file names under `dts_dir`), kept in `dtbs/`.
    device_trees: &'static [&'static str],
    dts_dir: &'static str,
}

fn recipe(arch: Arch) -> Recipe {
    match arch {
        Arch::X86_64 => Recipe {
            make_arch: "x86_64",
            fragments: &[
                boot::kernel::X86_64_FRAGMENT,
                boot::kernel::PROGRAMS_FRAGMENT,
                boot::kernel::VERITY_FRAGMENT,
            ],
            patches: boot::kernel::X86_64_PATCHES,
            cross: None,
            target: "bzImage",
            output: "arch/x86/boot/bzImage",
            device_trees: &[],
            dts_dir: "",
        },
        // The uncompressed Image: its EFI stub is what UEFI firmware starts, and the Pi
        // firmware loads it as it is.
        Arch::Aarch64 | Arch::Rpi => Recipe {
            make_arch: "arm64",
            fragments: &[
                boot::kernel::ARM64_FRAGMENT,
                boot::kernel::PROGRAMS_FRAGMENT,
                boot::kernel::VERITY_FRAGMENT,
            ],
            patches: boot::kernel::ARM64_PATCHES,
            cross: Some(("aarch64-linux-gnu-", "gcc-aarch64-linux-gnu")),
            target: "Image",
            output: "arch/arm64/boot/Image",
            device_trees: &boot::kernel::RPI_DEVICE_TREES,
            dts_dir: "broadcom",
        },
    }
}

/// The device trees built with `kernel` (a path [`build`] returned), by file name.
pub fn device_trees(kernel: &Path) -> PathBuf {
    kernel.with_file_name("dtbs")
}

/// Returns the path of a kernel built from `source` for `arch`, building it if not cached.
pub fn build(arch: Arch, source: Option<&Path>, cache: &Path) -> Result<PathBuf> {
    let recipe = recipe(arch);
    let source = match source {
        Some(s) => s.to_path_buf(),
        None => default_source()?,
    };
    let key = cache_key(&source, &recipe)?;
    let dir = cache
        .join("kernel")
        .join(format!("{}-{key}", recipe.make_arch));
    let image = dir.join(recipe.target);
    if image.is_file() {
        eprintln!("kernel: cached {}", image.display());
        return Ok(image);
    }
    // One build per key at a time: concurrent callers wait here, then find it cached.
    std::fs::create_dir_all(&dir)?;
    let _lock = lock(&dir.join("lock"))?;
    if image.is_file() {
        eprintln!("kernel: cached {} (built meanwhile)", image.display());
        return Ok(image);
    }
    if let Some((prefix, package)) = recipe.cross {
        let gcc = format!("{prefix}gcc");
        ensure!(
            Command::new(&gcc).arg("--version").output().is_ok(),
            "building a {} kernel needs the cross compiler {gcc}: apt-get install {package}",
            arch.name()
        );
    }
    let tree = dir.join("src");
    let started = std::time::Instant::now();
    // A tree is reused only when it was unpacked and patched completely.
    let prepared = tree.join(".rustkrazy-prepared");
    if !prepared.is_file() {
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&tree)?;
        if source.is_dir() {
            eprintln!("kernel: copying {}", source.display());
            run(Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", source.display()))
                .arg(&tree))?;
        } else {
            eprintln!("kernel: unpacking {}", source.display());
            run(Command::new("tar")
                .arg("-xf")
                .arg(&source)
                .arg("-C")
                .arg(&tree)
                .arg("--strip-components=1"))?;
        }
        for (name, text) in recipe.patches {
            eprintln!("kernel: applying boot/kernel/{name}");
            let file = dir.join(name);
            std::fs::write(&file, text)?;
            run(Command::new("patch")
                .current_dir(&tree)
                .args(["-p1", "--forward", "--batch", "-i"])
                .arg(&file)
                .stdout(std::io::stderr()))
            .with_context(|| {
                format!("boot/kernel/{name} does not apply to {}", source.display())
            })?;
        }
        std::fs::write(&prepared, b"")?;
    }
    let fragment = recipe.fragments.concat();
    let fragment_path = dir.join("rustkrazy.config");
    std::fs::write(&fragment_path, &fragment)?;
    run(make(&tree, &recipe).arg("tinyconfig"))?;
    run(Command::new("scripts/kconfig/merge_config.sh")
        .current_dir(&tree)
        .arg("-m")
        .arg(".config")
        .arg(&fragment_path)
        .stdout(std::io::stderr()))?;
    run(make(&tree, &recipe).arg("olddefconfig"))?;
    check_config(&tree.join(".config"), &fragment)?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    eprintln!(
        "kernel: building {} with {jobs} jobs (several minutes on 2 cores; progress below)",
        recipe.target
    );
    let dtb_targets: Vec<String> = recipe
        .device_trees
        .iter()
        .map(|name| format!("{}/{name}", recipe.dts_dir))
        .collect();
    run(make(&tree, &recipe)
        .arg(format!("-j{jobs}"))
        .arg(recipe.target)
        .args(&dtb_targets))?;
    if !recipe.device_trees.is_empty() {
        let dtbs = device_trees(&image);
        let partial = dir.join("dtbs.partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)?;
        for name in recipe.device_trees {
            let built = tree
                .join("arch")
                .join(recipe.make_arch)
                .join("boot/dts")
                .join(recipe.dts_dir)
                .join(name);
            std::fs::copy(&built, partial.join(name))
                .with_context(|| format!("kernel build made no {}", built.display()))?;
        }
        let _ = std::fs::remove_dir_all(&dtbs);
        std::fs::rename(&partial, &dtbs)?;
    }
    let built = tree.join(recipe.output);
    let partial = dir.join(format!("{}.partial", recipe.target));
    std::fs::copy(&built, &partial)
        .with_context(|| format!("kernel build made no {}", built.display()))?;
    std::fs::rename(&partial, &image)?;
    eprintln!(
        "kernel: built {} in {:.0?}",
        image.display(),
        started.elapsed()
    );
    Ok(image)
}

/// An exclusive flock on `path`, held until the returned file is dropped.
fn lock(path: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(file);
    }
    eprintln!("kernel: another build holds {}; waiting", path.display());
    // SAFETY: as above, now blocking until the other build releases the lock.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot lock the kernel cache");
    }
    Ok(file)
}

fn make(tree: &Path, recipe: &Recipe) -> Command {
    let mut cmd = Command::new("make");
    cmd.current_dir(tree)
        .arg(format!("ARCH={}", recipe.make_arch));
    if let Some((prefix, _)) = recipe.cross {
        cmd.arg(format!("CROSS_COMPILE={prefix}"));
    }
    // make's progress lines go to our stderr, keeping stdout for the result.
    cmd.stdout(std::io::stderr());
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| {
        format!(
            "cannot run {:?} (install build-essential flex bison bc libelf-dev)",
            cmd.get_program()
        )
    })?;
    if !status.success() {
        bail!("{:?} failed: {status}", cmd);
    }
    Ok(())
}

/// Every `CONFIG_X=y` of the fragment must survive olddefconfig, and every `# CONFIG_X is
/// not set` stay off: a missing dependency would otherwise drop an option silently (the
/// kernel would not mount its root), and another option's `select` turn one back on.
fn check_config(config: &Path, fragment: &str) -> Result<()> {
    let have = std::fs::read_to_string(config)?;
    let missing: Vec<&str> = fragment
        .lines()
        .map(str::trim)
        .filter(|l| {
            match l
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
            {
                Some(off) => have.lines().any(|h| h.starts_with(&format!("{off}="))),
                None => l.starts_with("CONFIG_") && !have.lines().any(|h| h == *l),
            }
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "the kernel config does not have these fragment options as the fragment says (unmet dependencies, or selected by another option?): {}",
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_config;

    #[test]
    fn a_config_must_keep_the_fragments_options_on_and_off() {
        let dir = std::env::temp_dir().join(format!("check-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join(".config");
        let fragment = "# comment\nCONFIG_A=y\n# CONFIG_B is not set\n";
        let check = |text: &str| {
            std::fs::write(&config, text).unwrap();
            check_config(&config, fragment)
        };
        assert!(check("CONFIG_A=y\n# CONFIG_B is not set\n").is_ok());
        assert!(
            check("CONFIG_A=y\n").is_ok(),
            "B hidden by its dependencies is off"
        );
        let lost = check("# CONFIG_A is not set\n").unwrap_err().to_string();
        assert!(lost.contains("CONFIG_A=y"), "{lost}");
        let selected = check("CONFIG_A=y\nCONFIG_B=y\n").unwrap_err().to_string();
        assert!(selected.contains("CONFIG_B"), "{selected}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
