//! QEMU's `raspi3b` and `raspi4b` machines never run the Raspberry Pi firmware: they take
//! `-kernel`, `-dtb` and `-append`. This plays the firmware's part: it reads the image's
//! `config.txt` (or `tryboot.txt`, for a boot after a tryboot restart), takes the slot its
//! `os_prefix` names, and hands QEMU that slot's kernel, the board's device tree and command
//! line, as the firmware would load them from the card (`crate::qemu::run_raspi` follows
//! restarts with it).

use crate::fat;
use anyhow::{bail, Context, Result};
use boot::layout::BOOT;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What the firmware would start: the slot, and its files extracted for QEMU.
#[derive(Debug)]
pub struct SlotBoot {
    pub slot: boot::layout::Slot,
    pub kernel: PathBuf,
    pub device_tree: PathBuf,
    pub cmdline: String,
}

/// The Raspberry Pi QEMU emulates for a Pi image (every image carries both boards' trees).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Board {
    /// QEMU's `raspi3b`: 1 GiB.
    #[value(name = "3b")]
    Pi3B,
    /// QEMU's `raspi4b` (QEMU 9.0 and later): 2 GiB; what most Pi users run.
    #[default]
    #[value(name = "4b")]
    Pi4B,
}

impl Board {
    /// QEMU's name for the machine.
    pub fn machine(self) -> &'static str {
        match self {
            Board::Pi3B => "raspi3b",
            Board::Pi4B => "raspi4b",
        }
    }

    /// The board's device tree as mkimg names it without the slot prefix.
    pub fn device_tree(self) -> &'static str {
        match self {
            Board::Pi3B => "bcm2837-rpi-3-b.dtb",
            Board::Pi4B => "bcm2711-rpi-4-b.dtb",
        }
    }

    /// The word `imgtool qemu --board` takes for it.
    pub fn option(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// What the command line gains in QEMU: the Pi 4 B's console on the PL011. Its device
    /// tree names the mini UART, and with the console there the kernel stalled in the SD
    /// controllers' probe under QEMU 10.0 (two boots of two), while on the PL011 it boots.
    pub(crate) fn console_arg(self) -> &'static str {
        match self {
            Board::Pi3B => "",
            Board::Pi4B => " console=ttyAMA0",
        }
    }

    /// The board's memory: QEMU takes no other size.
    pub(crate) fn memory_mib(self) -> u32 {
        match self {
            Board::Pi3B => 1024,
            Board::Pi4B => 2048,
        }
    }
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
    let Some(slot) = boot::rpi::slot_of(&settings) else {
        bail!("/boot/{settings_name} names no rustkrazy slot (no os_prefix=slot-a- or slot-b-)");
    };
    let i = slot.index();
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
        slot,
        kernel: dir.join("Image"),
        device_tree: dir.join(tree),
        cmdline,
    };
    std::fs::write(&slot.kernel, kernel)?;
    std::fs::write(&slot.device_tree, device_tree)?;
    Ok(slot)
}
