//! Checks that a program can run on the appliance: a static ELF executable for its CPU. There
//! is no dynamic loader and no C library on the device, so a dynamic binary would only fail
//! there with a baffling "not found".

use crate::config::Arch;
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const PT_INTERP: u32 = 3;
const PHNUM_MAX: u16 = 256;

/// Refuses anything but a 64-bit little-endian static executable for `arch`.
pub fn check_static_executable(path: &Path, arch: Arch) -> Result<()> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot open program {}", path.display()))?;
    let mut header = [0u8; 64];
    if file.read_exact(&mut header).is_err() || &header[0..4] != b"\x7fELF" {
        bail!(
            "{} is not an ELF executable; pass a program built for {}",
            path.display(),
            arch.target()
        );
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    if header[4] != 2 || header[5] != 1 {
        bail!(
            "{} is not a 64-bit little-endian ELF; build it for {}",
            path.display(),
            arch.target()
        );
    }
    let machine = u16_at(0x12);
    if machine != arch.elf_machine() {
        bail!(
            "{} is built for ELF machine {machine}, not {} ({}); build it for {}",
            path.display(),
            arch.name(),
            arch.elf_machine(),
            arch.target()
        );
    }
    if !matches!(u16_at(0x10), 2 | 3) {
        bail!(
            "{} is not an executable (ELF type {})",
            path.display(),
            u16_at(0x10)
        );
    }
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into().unwrap());
    let phentsize = u16_at(0x36) as u64;
    let phnum = u16_at(0x38).min(PHNUM_MAX);
    for i in 0..phnum as u64 {
        let mut ph = [0u8; 4];
        file.seek(SeekFrom::Start(phoff + i * phentsize))?;
        file.read_exact(&mut ph)
            .with_context(|| format!("{}: truncated program headers", path.display()))?;
        if u32::from_le_bytes(ph) == PT_INTERP {
            bail!(
                "{} is dynamically linked; the appliance has no dynamic loader: build it with --target {} (static)",
                path.display(),
                arch.target()
            );
        }
    }
    Ok(())
}
