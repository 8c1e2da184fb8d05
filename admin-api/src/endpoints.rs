//! The management API's contract besides `/status` (`crate::status`): every endpoint's path,
//! the headers and the user both ends name, and the answers of the calls imgtool reads.
//! admind's route table and handlers, and imgtool's client, take them from here.

use crate::json::documents;

/// The one user of HTTP Basic; the password is the instance's.
pub const USER: &str = "rustkrazy";

/// The SHA-256 (hex) an upload must have as the disk holds it, or it is refused.
pub const EXPECTED_SHA256: &str = "X-Expected-SHA256";
/// A slot's seal (base64, `boot::seal`), for `/switch` on a device that requires one.
pub const SLOT_SEAL: &str = "X-Slot-Seal";

// Each slot's parts, then what boots: POST (or PUT).
pub const UPDATE_ROOT: &str = "/update/root";
/// The root as a chunk plan and the chunks the device lacks (`boot::chunks`), with the
/// whole image's X-Expected-SHA256.
pub const UPDATE_ROOT_CHUNKS: &str = "/update/root-chunks";
pub const UPDATE_KERNEL: &str = "/update/kernel";
pub const UPDATE_CMDLINE: &str = "/update/cmdline";
pub const UPDATE_BOOT: &str = "/update/boot";
pub const UPDATE_MBR: &str = "/update/mbr";
/// `?mode=try` (default) arms a one-shot trial; `?mode=now` commits at once.
pub const SWITCH: &str = "/switch";
pub const COMMIT: &str = "/commit";
/// How `/commit`'s 503 answer starts while a program is not ready (`boot::readiness`):
/// `not committing: NAME is not ready: WHY`. Clients ask again; other 503s are errors.
pub const NOT_READY: &str = "not committing: ";
/// What follows the program's name in that answer.
pub const NOT_READY_AFTER_NAME: &str = " is not ready: ";
pub const REBOOT: &str = "/reboot";
pub const SHUTDOWN: &str = "/shutdown";
// What the device says: GET (or HEAD).
pub const STATUS: &str = "/status";
/// The running root's chunk index (`boot::chunks`), binary.
pub const ROOT_INDEX: &str = "/root/index";
/// `?service=NAME&stream=stdout|stderr`.
pub const LOGS: &str = "/logs";
// Files, by `?path=` (relative to /data, or absolute).
pub const DATA_READ: &str = "/data/read";
pub const DATA_LIST: &str = "/data/list";
pub const DATA_WRITE: &str = "/data/write";
pub const DATA_MKDIR: &str = "/data/mkdir";
pub const DATA_REMOVE: &str = "/data/remove";
pub const DATA_REMOVEDIR: &str = "/data/removedir";
// Processes.
pub const PROC_TOP: &str = "/proc/top";
/// `?process=PID|NAME&signal=NAME`.
pub const PROC_KILL: &str = "/proc/kill";

documents! {
    /// What an upload answers once the disk holds it, read back: `/update/root`,
    /// `/update/kernel`, `/update/cmdline` (with the slot), `/update/boot`, `/update/mbr`.
    pub struct Stored {
        /// The root slot written; `None` for what both slots share (boot partition, MBR).
        pub slot: Option<u8>,
        pub bytes: u64,
        /// SHA-256 of what the disk holds, hex.
        pub sha256: String,
        /// A root's: the slot's build id over root, kernel and command line, hex.
        pub build: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Json;

    #[test]
    fn what_admind_writes_imgtool_reads_back() {
        let stored = Stored {
            slot: Some(3),
            bytes: 42,
            sha256: "ab".repeat(32),
            build: None,
        };
        let text = stored.to_json();
        let back: Stored = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stored);
    }
}
