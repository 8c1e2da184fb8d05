//! The x86 MBR boot code (`boot/mbr/mbr.S`, assembled into `boot/mbr/mbr.bin`) and the table
//! at its end that `imgtool mkimg` fills with where the kernel and cmdline files lie.

/// The 440 bytes of boot code, with an empty table.
pub const CODE: &[u8; 440] = include_bytes!("../mbr/mbr.bin");

/// Offset of the table in the boot code (`.org 424` in mbr.S).
pub const TABLE_OFFSET: usize = 424;

/// Longest cmdline file the boot code loads (one sector, NUL-terminated).
pub const CMDLINE_BYTES_MAX: usize = 511;

/// Where the boot code finds its files, in 512-byte sectors from the start of the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub kernel_lba: u32,
    pub kernel_sectors: u32,
    /// Cmdline sector for root A (partition 2) and root B (partition 3).
    pub cmdline_lba: [u32; 2],
}

impl Table {
    /// The boot code with this table filled in.
    pub fn patch(&self) -> [u8; 440] {
        let mut code = *CODE;
        let fields = [
            self.kernel_lba,
            self.kernel_sectors,
            self.cmdline_lba[0],
            self.cmdline_lba[1],
        ];
        for (i, value) in fields.iter().enumerate() {
            let at = TABLE_OFFSET + 4 * i;
            code[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_empty_in_the_source_and_ends_the_code() {
        assert!(CODE[TABLE_OFFSET..].iter().all(|&b| b == 0));
        let patched = Table {
            kernel_lba: 0x0102_0304,
            kernel_sectors: 5,
            cmdline_lba: [6, 7],
        }
        .patch();
        assert_eq!(&patched[TABLE_OFFSET..TABLE_OFFSET + 4], &[4, 3, 2, 1]);
        assert_eq!(&patched[436..440], &[7, 0, 0, 0]);
        assert_eq!(patched[..TABLE_OFFSET], CODE[..TABLE_OFFSET]);
    }

    /// The embedded bytes are exactly what the committed source assembles to.
    #[test]
    fn embedded_code_matches_a_fresh_assembly() {
        let dir = std::env::temp_dir().join(format!("rk-mbr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("mbr.bin");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mbr/assemble.sh");
        let status = std::process::Command::new("sh")
            .arg(script)
            .arg(&out)
            .status()
            .expect("run assemble.sh (needs binutils)");
        assert!(status.success(), "assemble.sh failed");
        let fresh = std::fs::read(&out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            fresh[..] == CODE[..],
            "boot/mbr/mbr.bin is stale: run boot/mbr/assemble.sh"
        );
    }
}
