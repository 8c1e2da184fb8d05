//! QEMU's `raspi3b` and `raspi4b` machines never run the Raspberry Pi firmware: they take
//! `-kernel`, `-dtb` and `-append`. This plays the firmware's part: it reads the image's
//! `config.txt` (or `tryboot.txt`, for a boot after a tryboot restart), takes the slot its
//! `os_prefix` names, and hands QEMU that slot's kernel, the board's device tree and command
//! line, as the firmware would load them from the card. [`run`] also follows restarts: QEMU runs with `-no-reboot`,
//! and each guest restart starts it again from the slot the firmware would choose.

use crate::fat;
use crate::qemu::{Board, Options};
use anyhow::{bail, Context, Result};
use boot::layout::BOOT;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

/// What the firmware would start: the slot, and its files extracted for QEMU.
#[derive(Debug)]
pub struct SlotBoot {
    pub partition: u8,
    pub kernel: PathBuf,
    pub device_tree: PathBuf,
    pub cmdline: String,
}

/// The image's boot partition, read through the image file.
struct BootPartition {
    file: File,
    pos: u64,
}

impl Read for BootPartition {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let size = BOOT.size_bytes.unwrap_or(0);
        let n = (size.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        let n = self
            .file
            .read_at(&mut buf[..n], BOOT.start_bytes + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BootPartition {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
            SeekFrom::End(d) => BOOT.size_bytes.unwrap_or(0).saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

fn boot_partition(image: &Path) -> Result<BootPartition> {
    let file = File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    Ok(BootPartition { file, pos: 0 })
}

/// Whether the image's boot partition holds `path`.
pub fn has_file(image: &Path, path: &str) -> bool {
    boot_partition(image).is_ok_and(|mut p| fat::find(&mut p, path).is_ok())
}

/// Reads the settings file the firmware would read and extracts the chosen slot's files
/// for `board` into `dir`.
pub fn prepare(image: &Path, board: Board, tryboot: bool, dir: &Path) -> Result<SlotBoot> {
    let mut boot = boot_partition(image)?;
    let settings_name = if tryboot {
        boot::rpi::TRYBOOT_TXT
    } else {
        boot::rpi::CONFIG_TXT
    };
    let settings = fat::read_file(&mut boot, settings_name)
        .with_context(|| format!("{}: no /boot/{settings_name}", image.display()))?;
    let Some(partition) = boot::rpi::slot_of(&settings) else {
        bail!("/boot/{settings_name} names no rustkrazy slot (no os_prefix=slot-a- or slot-b-)");
    };
    let i = boot::slot::index(partition);
    let prefix = boot::rpi::SLOT_PREFIXES[i];
    let mut kernel = fat::read_file(&mut boot, boot::slot::KERNEL_FILES[i])?;
    // The slot's region holds the kernel, then zeros; QEMU gets the kernel alone.
    if let Some(len) = boot::slot::kernel_bytes(&kernel) {
        kernel.truncate(len as usize);
    }
    let tree = board.device_tree();
    let device_tree = fat::read_file(&mut boot, &format!("{prefix}{tree}"))
        .with_context(|| format!("no /boot/{prefix}{tree} for QEMU's {}", board.machine()))?;
    let cmdline_sector = fat::read_file(&mut boot, boot::slot::CMDLINE_FILES[i])?;
    let cmdline = String::from_utf8_lossy(boot::slot::cmdline_text(&cmdline_sector))
        .trim()
        .to_string();
    std::fs::create_dir_all(dir)?;
    let slot = SlotBoot {
        partition,
        kernel: dir.join("Image"),
        device_tree: dir.join(tree),
        cmdline,
    };
    std::fs::write(&slot.kernel, kernel)?;
    std::fs::write(&slot.device_tree, device_tree)?;
    Ok(slot)
}

/// Runs the Pi in QEMU as its firmware would, until QEMU ends other than by a guest restart
/// (or, with `no_reboot`, at the first restart). A restart after init's
/// [`boot::rpi::TRYBOOT_RESTART_LINE`] boots from tryboot.txt, any other from config.txt.
/// The console passes through to stdout.
pub fn run(image: &Path, options: &Options) -> Result<ExitStatus> {
    let marker = boot::rpi::TRYBOOT_RESTART_LINE.as_bytes();
    let mut tryboot = false;
    loop {
        let mut cmd = crate::qemu::command_for(image, options, tryboot)?;
        if !options.no_reboot {
            cmd.arg("-no-reboot");
        }
        cmd.stdout(Stdio::piped());
        // QEMU must not outlive us (tests kill this process to pull the power).
        // SAFETY: prctl(PR_SET_PDEATHSIG) in the child before exec; async-signal-safe, no
        // memory shared with the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .context("cannot run qemu-system-aarch64 (apt-get install qemu-system-arm)")?;
        let mut console = child.stdout.take().context("QEMU's console is piped")?;
        let mut out = std::io::stdout();
        let mut seen = Vec::new();
        let mut asked_tryboot = false;
        let mut buf = [0u8; 4096];
        loop {
            let n = console.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            // The tail of what came before, so a line split across reads is still found.
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(marker.len()).any(|w| w == marker) {
                asked_tryboot = true;
            }
            let keep = seen.len().saturating_sub(marker.len());
            seen.drain(..keep);
        }
        let status = child.wait()?;
        if !status.success() || options.no_reboot {
            return Ok(status);
        }
        tryboot = asked_tryboot;
        eprintln!(
            "imgtool qemu: the Pi restarted; starting it from {} as its firmware would",
            if tryboot {
                boot::rpi::TRYBOOT_TXT
            } else {
                boot::rpi::CONFIG_TXT
            }
        );
    }
}
