//! A slot is kernel + command line + root, chosen together by the boot record. Each root
//! partition has its own kernel and command line on /boot, in files `imgtool mkimg`
//! allocates once, contiguously, at their full size ([`KERNEL_REGION_BYTES`],
//! [`CMDLINE_REGION_BYTES`]); an update rewrites their bytes by sector, never the FAT, and
//! never a sector of the other slot. Where they lie is in the MBR code's table
//! (`crate::mbr::Table`), which the device reads.
//!
//! ```text
//! /boot/slot-a-cmdline.txt   one sector: the command line, NUL-padded
//! /boot/slot-a-vmlinuz       64 MiB: the kernel, then zeros (its header says its length)
//! /boot/slot-b-cmdline.txt
//! /boot/slot-b-vmlinuz
//! ```
//!
//! The `slot-a-` prefix is what the Raspberry Pi firmware's `os_prefix` takes.

/// Room for one slot's kernel.
pub const KERNEL_REGION_BYTES: u64 = 64 << 20;
/// Room for one slot's command line: one sector, NUL-terminated for the MBR code.
pub const CMDLINE_REGION_BYTES: u64 = 512;
/// The first bytes of a slot's kernel, which hold its length ([`kernel_bytes`]): a bzImage's
/// setup header, a PE file's section table.
pub const KERNEL_HEADER_BYTES: usize = 4096;
/// Longest command line (the sector keeps a NUL after it).
pub const CMDLINE_BYTES_MAX: usize = 511;
const _: () = assert!(CMDLINE_BYTES_MAX < CMDLINE_REGION_BYTES as usize);

/// `/boot` file names of each slot's kernel and command line, slot A (root partition 2)
/// first, as `crate::mbr::Table` and `Slot::index` order them.
pub const KERNEL_FILES: [&str; 2] = ["slot-a-vmlinuz", "slot-b-vmlinuz"];
pub const CMDLINE_FILES: [&str; 2] = ["slot-a-cmdline.txt", "slot-b-cmdline.txt"];

/// Length of the x86 bzImage whose first bytes are `header` (at least 0x1f8 of them):
/// the boot sector and setup (`setup_sects` + 1 sectors; 0 means 4) and the protected-mode
/// part (`syssize` 16-byte paragraphs), as the MBR code reads it. `None` if `header` is not
/// a bzImage of boot protocol 2.04 or later.
pub fn bzimage_bytes(header: &[u8]) -> Option<u64> {
    let field = |at: usize, len: usize| header.get(at..at + len);
    if field(0x202, 4)? != b"HdrS" || u16::from_le_bytes(field(0x206, 2)?.try_into().ok()?) < 0x0204
    {
        return None;
    }
    let setup_sects = match header[0x1f1] {
        0 => 4,
        n => u64::from(n),
    };
    let syssize = u64::from(u32::from_le_bytes(field(0x1f4, 4)?.try_into().ok()?));
    Some((setup_sects + 1) * 512 + syssize * 16)
}

/// Length of the PE file (a kernel with an EFI stub, such as an arm64 `Image`) whose first
/// bytes are `header` (they must reach the end of its section table): where its last
/// section's data ends. `None` if `header` is not a PE file.
pub fn pe_bytes(header: &[u8]) -> Option<u64> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(header.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(header.get(at..at + 4)?.try_into().ok()?));
    if header.get(..2)? != b"MZ" {
        return None;
    }
    let pe = usize::try_from(u32_at(0x3c)?).ok()?;
    if header.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let sections = usize::from(u16_at(pe + 6)?);
    let table = pe + 24 + usize::from(u16_at(pe + 20)?);
    let mut end = 0u64;
    for i in 0..sections {
        let entry = table + 40 * i;
        let raw_size = u64::from(u32_at(entry + 16)?);
        let raw_offset = u64::from(u32_at(entry + 20)?);
        end = end.max(raw_offset + raw_size);
    }
    (end > 0).then_some(end)
}

/// Length of the kernel whose first bytes are `header`: an x86 bzImage by its setup
/// header, any other kernel by its PE header.
pub fn kernel_bytes(header: &[u8]) -> Option<u64> {
    bzimage_bytes(header).or_else(|| pe_bytes(header))
}

/// The command line in a slot's cmdline sector: the bytes before the first NUL.
pub fn cmdline_text(sector: &[u8]) -> &[u8] {
    let end = sector.iter().position(|&b| b == 0).unwrap_or(sector.len());
    &sector[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_slot_prefix() {
        assert_eq!(
            KERNEL_FILES[crate::layout::Slot::A.index()],
            "slot-a-vmlinuz"
        );
        assert_eq!(
            CMDLINE_FILES[crate::layout::Slot::B.index()],
            "slot-b-cmdline.txt"
        );
    }

    #[test]
    fn bzimage_length_from_its_header() {
        let mut h = [0u8; 0x400];
        h[0x1f1] = 27;
        h[0x1f4..0x1f8].copy_from_slice(&0x1000u32.to_le_bytes());
        h[0x202..0x206].copy_from_slice(b"HdrS");
        h[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        assert_eq!(bzimage_bytes(&h), Some(28 * 512 + 0x1000 * 16));
        h[0x1f1] = 0;
        assert_eq!(bzimage_bytes(&h), Some(5 * 512 + 0x1000 * 16));
        h[0x206] = 0x03; // protocol 2.03
        h[0x207] = 0x02;
        assert_eq!(bzimage_bytes(&h), None);
        assert_eq!(bzimage_bytes(&[0u8; 0x200]), None);
        assert_eq!(bzimage_bytes(&[0u8; 10]), None);
    }

    #[test]
    fn pe_length_is_where_the_last_section_ends() {
        let mut h = [0u8; 0x200];
        h[..2].copy_from_slice(b"MZ");
        h[0x3c] = 0x40;
        h[0x40..0x44].copy_from_slice(b"PE\0\0");
        h[0x46] = 2; // sections
        h[0x54] = 0x10; // optional header size
        let table = 0x40 + 24 + 0x10;
        for (i, (size, offset)) in [(0x3000u32, 0x1000u32), (0x800, 0x400)].iter().enumerate() {
            let e = table + 40 * i;
            h[e + 16..e + 20].copy_from_slice(&size.to_le_bytes());
            h[e + 20..e + 24].copy_from_slice(&offset.to_le_bytes());
        }
        assert_eq!(pe_bytes(&h), Some(0x4000));
        assert_eq!(kernel_bytes(&h), Some(0x4000));
        assert_eq!(pe_bytes(&h[..table + 50]), None, "section table cut short");
        h[0x3c] = 0xff;
        assert_eq!(pe_bytes(&h), None);
        assert_eq!(pe_bytes(b"MZ"), None);
        assert_eq!(kernel_bytes(&[0u8; 0x400]), None);
    }

    #[test]
    fn cmdline_stops_at_the_first_nul() {
        assert_eq!(
            cmdline_text(b"console=ttyS0 ro\n\0\0\0"),
            b"console=ttyS0 ro\n"
        );
        assert_eq!(cmdline_text(b"abc"), b"abc");
        assert_eq!(cmdline_text(b"\0abc"), b"");
    }
}
