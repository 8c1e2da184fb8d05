//! The Raspberry Pi boot files (bootcode.bin, start*.elf, fixup*.dat) from Debian's
//! `raspi-firmware` package, in the non-free-firmware section. Fetched once with apt into
//! `~/.cache/rustkrazy/rpi-firmware/`, through a sources list of our own so the machine's apt
//! configuration is neither needed nor touched; the package's version and its copyright file
//! (the Broadcom licence the files ship under) go onto /boot beside the files.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the package keeps the boot files.
const PACKAGE_DIR: &str = "usr/lib/raspi-firmware";
/// The package's licence statement.
const COPYRIGHT: &str = "usr/share/doc/raspi-firmware/copyright";
/// Names on /boot for the version and the licence.
pub const VERSION_FILE: &str = "raspi-firmware.version";
pub const COPYRIGHT_FILE: &str = "raspi-firmware.copyright";

/// The folder holding the firmware files (and [`VERSION_FILE`], [`COPYRIGHT_FILE`]),
/// fetching the package first if it is not cached.
pub fn fetch(cache: &Path) -> Result<PathBuf> {
    let root = cache.join("rpi-firmware");
    let files = root.join("files");
    if files.join(VERSION_FILE).is_file() {
        return Ok(files);
    }
    let apt = root.join("apt");
    for dir in ["lists/partial", "archives/partial", "sources", "deb"] {
        std::fs::create_dir_all(apt.join(dir))?;
    }
    std::fs::write(
        apt.join("sources/raspi-firmware.sources"),
        format!(
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: {}\n\
             Components: main non-free-firmware\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
            debian_suite()
        ),
    )?;
    let apt_options = |cmd: &mut Command| {
        for (key, value) in [
            ("Dir::Etc::SourceList", PathBuf::from("/dev/null")),
            ("Dir::Etc::SourceParts", apt.join("sources")),
            ("Dir::State::Lists", apt.join("lists")),
            ("Dir::Cache::Archives", apt.join("archives")),
        ] {
            cmd.arg("-o").arg(format!("{key}={}", value.display()));
        }
        cmd.stdout(std::io::stderr());
    };
    eprintln!("rpi firmware: fetching Debian's raspi-firmware package");
    let mut update = Command::new("apt-get");
    update.arg("-q");
    apt_options(&mut update);
    run(update.arg("update"), "apt-get update (for raspi-firmware)")?;
    let mut download = Command::new("apt-get");
    apt_options(&mut download);
    download.current_dir(apt.join("deb"));
    run(
        download.args(["download", "raspi-firmware"]),
        "apt-get download raspi-firmware",
    )?;
    let deb = std::fs::read_dir(apt.join("deb"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let unpacked = root.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpacked);
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked),
        "dpkg-deb -x raspi-firmware",
    )?;
    let version = Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .arg("Version")
        .output()
        .context("cannot run dpkg-deb")?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();

    let partial = root.join("files.partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)?;
    let mut count = 0;
    for entry in std::fs::read_dir(unpacked.join(PACKAGE_DIR))? {
        let entry = entry?;
        std::fs::copy(entry.path(), partial.join(entry.file_name()))?;
        count += 1;
    }
    if count == 0 || !partial.join("bootcode.bin").is_file() {
        bail!("Debian's raspi-firmware {version} has no boot files in /{PACKAGE_DIR}");
    }
    std::fs::copy(unpacked.join(COPYRIGHT), partial.join(COPYRIGHT_FILE))?;
    std::fs::write(
        partial.join(VERSION_FILE),
        format!("Debian raspi-firmware {version}\n"),
    )?;
    let _ = std::fs::remove_dir_all(&files);
    std::fs::rename(&partial, &files)?;
    let _ = std::fs::remove_dir_all(&unpacked);
    eprintln!("rpi firmware: Debian raspi-firmware {version}, {count} files");
    Ok(files)
}

/// The machine's Debian release (raspi-firmware is taken from the same one).
fn debian_suite() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "bookworm".to_string())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| {
        format!("cannot run {what} (a Debian machine with apt is needed; or pass --firmware DIR)")
    })?;
    if !status.success() {
        bail!("{what} failed ({status}); pass --firmware DIR with the Pi boot files instead");
    }
    Ok(())
}
