//! Recognises kernel images, so a wrong file is refused before an image is written.

use crate::config::Arch;
use anyhow::{bail, Result};
use std::path::Path;

/// Oldest x86 boot protocol accepted: 2.04 made `syssize` 32 bits, from which the MBR code
/// takes the kernel's length (2.02 introduced `cmd_line_ptr`, which it also uses).
pub const X86_BOOT_PROTOCOL_MIN: u16 = 0x0204;

/// Checks that `data` (read from `path`) is a kernel the appliance's firmware can start.
pub fn check(path: &Path, data: &[u8], arch: Arch) -> Result<()> {
    match arch {
        Arch::X86_64 => check_bzimage(path, data),
        Arch::Aarch64 => check_arm64_efi(path, data),
        Arch::Rpi => check_arm64(path, data),
    }
}

/// UEFI firmware starts the kernel through its EFI stub: an uncompressed arm64 `Image`, a
/// PE file whose length its header gives (the UEFI program reads exactly that much).
fn check_arm64_efi(path: &Path, data: &[u8]) -> Result<()> {
    check_arm64(path, data)?;
    let hint = "pass arch/arm64/boot/Image of a kernel built with CONFIG_EFI (imgtool kernel --arch aarch64 builds one)";
    match boot::slot::pe_bytes(data) {
        None => bail!("{} has no EFI stub (no PE header); {hint}", path.display()),
        Some(n) if n != data.len() as u64 => bail!(
            "{}: its PE header describes {n} bytes, the file has {}; {hint}",
            path.display(),
            data.len()
        ),
        Some(_) => Ok(()),
    }
}

fn check_bzimage(path: &Path, data: &[u8]) -> Result<()> {
    let hint = "pass an x86_64 bzImage (arch/x86/boot/bzImage, or Debian's /boot/vmlinuz-*)";
    if data.len() < 0x1000 || data[0x1fe..0x200] != [0x55, 0xaa] || &data[0x202..0x206] != b"HdrS" {
        bail!(
            "{} is not an x86 Linux kernel (no boot sector signature or 'HdrS' header); {hint}",
            path.display()
        );
    }
    let version = u16::from_le_bytes([data[0x206], data[0x207]]);
    if version < X86_BOOT_PROTOCOL_MIN {
        bail!(
            "{} uses boot protocol {}.{:02}, older than {}.{:02}; {hint}",
            path.display(),
            version >> 8,
            version & 0xff,
            X86_BOOT_PROTOCOL_MIN >> 8,
            X86_BOOT_PROTOCOL_MIN & 0xff
        );
    }
    // The MBR code and admind take the length from the header; it must be the file's.
    if boot::slot::bzimage_bytes(data) != Some(data.len() as u64) {
        bail!(
            "{}: the bzImage header (setup_sects, syssize) does not describe the file's {} bytes; {hint}",
            path.display(),
            data.len()
        );
    }
    const LOADED_HIGH: u8 = 0x01;
    if data[0x211] & LOADED_HIGH == 0 {
        bail!(
            "{} is a zImage that loads below 1 MiB, not a bzImage; {hint}",
            path.display()
        );
    }
    Ok(())
}

fn check_arm64(path: &Path, data: &[u8]) -> Result<()> {
    let is_image = data.len() >= 64 && &data[0x38..0x3c] == b"ARM\x64";
    let is_gzip = data.starts_with(&[0x1f, 0x8b]);
    if !is_image && !is_gzip {
        bail!(
            "{} is not an arm64 Linux kernel (no 'ARM\\x64' magic, not gzip); pass arch/arm64/boot/Image",
            path.display()
        );
    }
    Ok(())
}
