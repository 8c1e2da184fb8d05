//! The Raspberry Pi firmware's settings files, which choose the slot on a Pi: `config.txt`
//! names the committed slot's files through `os_prefix` (its kernel, command line and device
//! trees: `slot-a-vmlinuz`, `slot-a-cmdline.txt`, `slot-a-bcm2837-rpi-3-b.dtb`), and
//! `tryboot.txt` names the other slot's; the firmware reads tryboot.txt instead of config.txt
//! once, after a restart that set its tryboot flag. Both files are exactly one sector, so
//! pointing either at the other slot rewrites one sector in place.

use crate::layout::Slot;

pub const CONFIG_TXT: &str = "config.txt";
pub const TRYBOOT_TXT: &str = "tryboot.txt";
/// Each slot's `os_prefix`, slot A (root partition 2) first, as `crate::slot` orders them.
pub const SLOT_PREFIXES: [&str; 2] = ["slot-a-", "slot-b-"];
/// Length of both settings files.
pub const SETTINGS_BYTES: usize = 512;

const OS_PREFIX: &str = "os_prefix=";

/// init's console line before it restarts with "0 tryboot": what a stand-in for the firmware
/// (`imgtool qemu`, which cannot see the flag) watches for.
pub const TRYBOOT_RESTART_LINE: &str =
    "init: restarting with \"0 tryboot\" (the firmware starts the trial slot)";

/// The settings file that boots `slot`: mainline device tree
/// names (`upstream_kernel=1`), 64-bit, the UART on, and that slot's prefix; padded with a
/// comment to [`SETTINGS_BYTES`].
pub fn settings(slot: Slot) -> [u8; SETTINGS_BYTES] {
    let prefix = SLOT_PREFIXES[slot.index()];
    let lines: [&str; 9] = [
        "# Raspberry Pi firmware settings, written by rustkrazy (format: boot/src/rpi.rs).\n",
        "# os_prefix chooses the slot: its kernel, command line and device trees.\n",
        "arm_64bit=1\n",
        "upstream_kernel=1\n",
        "enable_uart=1\n",
        OS_PREFIX,
        prefix,
        "\nkernel=vmlinuz\n",
        "cmdline=cmdline.txt\n",
    ];
    let mut out = [b'#'; SETTINGS_BYTES];
    let mut at = 0;
    for line in lines {
        out[at..at + line.len()].copy_from_slice(line.as_bytes());
        at += line.len();
    }
    // The rest: one comment line of '#', ending the file.
    out[SETTINGS_BYTES - 1] = b'\n';
    out
}

/// What `config.txt` and `tryboot.txt` hold while `committed` is the committed slot:
/// config.txt boots it, tryboot.txt the other slot.
pub fn files_for(committed: Slot) -> [(&'static str, [u8; SETTINGS_BYTES]); 2] {
    [
        (CONFIG_TXT, settings(committed)),
        (TRYBOOT_TXT, settings(committed.other())),
    ]
}

/// The slot a settings file boots, from its `os_prefix` line; `None` if it has none of
/// ours.
pub fn slot_of(settings: &[u8]) -> Option<Slot> {
    let text = core::str::from_utf8(settings).ok()?;
    let prefix = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(OS_PREFIX))?
        .trim();
    match SLOT_PREFIXES.iter().position(|p| *p == prefix)? {
        0 => Some(Slot::A),
        _ => Some(Slot::B),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::{CMDLINE_FILES, KERNEL_FILES};

    #[test]
    fn one_sector_naming_each_slots_files() {
        for slot in [Slot::A, Slot::B] {
            let file = settings(slot);
            assert_eq!(file.len(), SETTINGS_BYTES);
            assert_eq!(file[SETTINGS_BYTES - 1], b'\n');
            assert_eq!(slot_of(&file), Some(slot));
            let text = core::str::from_utf8(&file).unwrap();
            let prefix = SLOT_PREFIXES[slot.index()];
            // The firmware prepends the prefix: the names must come out as the slot files.
            assert!(
                text.contains("\nkernel=vmlinuz\n") && text.contains("\ncmdline=cmdline.txt\n")
            );
            assert_eq!(format!("{prefix}vmlinuz"), KERNEL_FILES[slot.index()]);
            assert_eq!(format!("{prefix}cmdline.txt"), CMDLINE_FILES[slot.index()]);
        }
        assert_eq!(slot_of(b"arm_64bit=1\n"), None);
        assert_eq!(slot_of(b"os_prefix=other-\n"), None);
        assert_eq!(slot_of(&[0xff; 4]), None);
    }
}
