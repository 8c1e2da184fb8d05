//! The x86 MBR boot code (`boot/mbr/mbr.S`, assembled into `boot/mbr/mbr.bin` and its
//! second stage `boot/mbr/stage2.bin`) and the fields at the end of the first stage that
//! `imgtool mkimg` fills: where the second stage lies (one of [`STAGE2_LBAS`]), and the table
//! of where each root slot's kernel and cmdline files lie. The files' places never change
//! after mkimg (they are preallocated regions), so admind reads the table from the disk to
//! find the slot files it rewrites. The second stage has two places so that replacing the
//! boot code is one sector write (`mbr::with_stage2_at`): the new second stage goes where
//! the running one is not, then the first stage that names it.

/// Bytes of boot code before the disk signature (what a BIOS runs).
pub const CODE_BYTES: usize = 440;

/// The boot code, with an empty table.
pub const CODE: &[u8; CODE_BYTES] = include_bytes!("../mbr/mbr.bin");

/// The second stage, which the first loads (the record's logic and the kernel loader).
pub const STAGE2: &[u8; 1024] = include_bytes!("../mbr/stage2.bin");

/// The second stage's two places, each alone in its 4 KiB of the gap; mkimg uses the first.
pub const STAGE2_LBAS: [u32; 2] = [16, 24];

/// Offset of the first stage's field naming its second stage's sector (`.org 420`).
pub const STAGE2_FIELD_OFFSET: usize = 420;

/// Where the boot code in `mbr` loads its second stage from.
pub fn stage2_lba(mbr: &[u8]) -> Option<u32> {
    let raw = mbr.get(STAGE2_FIELD_OFFSET..STAGE2_FIELD_OFFSET + 4)?;
    Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

/// The bytes of two-stage boot code (first stage, then second) that its sender chooses: the
/// first stage before its fields, and the second stage. The disk's own fields (where its
/// second stage is, the slot table) are not among them: admind answers a boot code update
/// with the SHA-256 of these parts as it reads them back, and a sender hashes the same.
pub fn chosen_parts(code: &[u8]) -> [&[u8]; 2] {
    let first = &code[..STAGE2_FIELD_OFFSET.min(code.len())];
    let second = code.get(CODE_BYTES..).unwrap_or_default();
    [first, second]
}

/// `code` (440 bytes or more) loading its second stage from `lba`.
pub fn with_stage2_at(code: &[u8; CODE_BYTES], lba: u32) -> [u8; CODE_BYTES] {
    let mut out = *code;
    out[STAGE2_FIELD_OFFSET..STAGE2_FIELD_OFFSET + 4].copy_from_slice(&lba.to_le_bytes());
    out
}

/// Offset of the table in the boot code (`.org 424` in mbr.S).
pub const TABLE_OFFSET: usize = 424;

/// Where the boot code finds its files, in 512-byte sectors from the start of the disk;
/// indexed as `crate::slot::index` says (slot A first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub kernel_lba: [u32; 2],
    pub cmdline_lba: [u32; 2],
}

impl Table {
    /// Whether `len` bytes at disk byte `at` overlap a slot's kernel or command line (what
    /// a write there would change after the slot was sealed).
    pub fn overlaps_slot_files(&self, at: u64, len: u64) -> bool {
        let regions = (0..2).flat_map(|i| {
            [
                (self.kernel_lba[i], crate::slot::KERNEL_REGION_BYTES),
                (self.cmdline_lba[i], crate::slot::CMDLINE_REGION_BYTES),
            ]
        });
        regions.into_iter().any(|(lba, region)| {
            let start = u64::from(lba) * crate::layout::SECTOR_BYTES;
            at < start.saturating_add(region) && start < at.saturating_add(len)
        })
    }

    /// The boot code with this table filled in, loading its second stage from the first
    /// of [`STAGE2_LBAS`].
    pub fn patch(&self) -> [u8; 440] {
        let mut code = with_stage2_at(CODE, STAGE2_LBAS[0]);
        code[TABLE_OFFSET..].copy_from_slice(&self.encode());
        code
    }

    fn encode(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let fields = [
            self.kernel_lba[0],
            self.kernel_lba[1],
            self.cmdline_lba[0],
            self.cmdline_lba[1],
        ];
        for (i, value) in fields.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&value.to_le_bytes());
        }
        out
    }

    /// The table in an MBR (or its 440 bytes of code); `None` when it is empty (no
    /// rustkrazy boot code there).
    pub fn read(mbr: &[u8]) -> Option<Table> {
        let raw = mbr.get(TABLE_OFFSET..TABLE_OFFSET + 16)?;
        let field = |i: usize| {
            u32::from_le_bytes([raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]])
        };
        let table = Table {
            kernel_lba: [field(0), field(1)],
            cmdline_lba: [field(2), field(3)],
        };
        (table.kernel_lba[0] != 0).then_some(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_empty_in_the_source_and_ends_the_code() {
        assert!(CODE[STAGE2_FIELD_OFFSET..].iter().all(|&b| b == 0));
        assert_eq!(Table::read(CODE), None);
        let table = Table {
            kernel_lba: [0x0102_0304, 5],
            cmdline_lba: [6, 7],
        };
        let patched = table.patch();
        assert_eq!(&patched[TABLE_OFFSET..TABLE_OFFSET + 4], &[4, 3, 2, 1]);
        assert_eq!(&patched[436..440], &[7, 0, 0, 0]);
        assert_eq!(patched[..STAGE2_FIELD_OFFSET], CODE[..STAGE2_FIELD_OFFSET]);
        assert_eq!(Table::read(&patched), Some(table));
        assert_eq!(stage2_lba(&patched), Some(STAGE2_LBAS[0]));
        assert_eq!(stage2_lba(&with_stage2_at(&patched, 24)), Some(24));
    }

    /// The embedded bytes are exactly what the committed source assembles to.
    #[test]
    fn embedded_code_matches_a_fresh_assembly() {
        let dir = std::env::temp_dir().join(format!("rk-mbr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mbr/assemble.sh");
        let status = std::process::Command::new("sh")
            .arg(script)
            .arg(&dir)
            .status()
            .expect("run assemble.sh (needs binutils)");
        assert!(status.success(), "assemble.sh failed");
        let first = std::fs::read(dir.join("mbr.bin")).unwrap();
        let second = std::fs::read(dir.join("stage2.bin")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            first[..] == CODE[..] && second[..] == STAGE2[..],
            "boot/mbr/mbr.bin or stage2.bin is stale: run boot/mbr/assemble.sh"
        );
    }
}
