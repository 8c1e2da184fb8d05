//! The `GET /status` document: what admind reports about the device, and what `imgtool
//! status` and `imgtool push` read. One definition; admind encodes it with [`crate::json`]
//! (fields in the order written here, `null` for `None`), clients decode it with serde.

use crate::json::{documents, object, Json};
use std::collections::BTreeMap;

documents! {
    pub struct Status {
        pub hostname: String,
        /// Changes with every boot: how a client tells a fresh boot from the old system.
        pub boot_id: String,
        pub uptime_s: u64,
        pub clock: Clock,
        pub admind_uptime_s: u64,
        /// The root slot running now; `None` if init did not report it.
        pub active_slot: Option<u8>,
        /// This boot is a trial nobody has committed yet (it rolls back by itself).
        pub uncommitted_trial: bool,
        pub boot: Option<Boot>,
        pub record: Option<Record>,
        /// Slots are armed only with a seal by a key this root trusts; `false`: this root
        /// has no trust file and arms unsealed slots.
        pub seals_required: bool,
        /// The keys the UEFI boot program on /boot holds now (signer ids, hex); `None`
        /// when this system was not booted through it (BIOS, a Raspberry Pi).
        pub boot_program_keys: Option<Vec<String>>,
        /// Each root slot (partition number) and what it holds.
        pub roots: BTreeMap<u8, Root>,
        pub memory: Memory,
        pub services: Vec<Service>,
        /// The release channel this device follows (`boot::channel`); `None`: none.
        pub channel: Option<Channel>,
    }

    /// A device following a channel: where, what it is doing, and why.
    pub struct Channel {
        pub url: String,
        /// waiting, checking, fetching, armed (reboots in the window) or trial (commits
        /// when its programs are ready).
        pub state: String,
        /// Wall-clock seconds at the last check of the manifest.
        pub last_check_s: Option<u64>,
        /// What the last check found, and why the device did or did not update.
        pub result: String,
        /// The version the channel offered at the last check.
        pub offered: Option<u64>,
        /// Bytes fetched (indexes and chunks) for the update in progress or the last one.
        pub fetched_bytes: u64,
        /// The channel and release this system came from, once committed.
        pub updated_from: Option<String>,
    }

    /// The wall clock and who keeps it.
    pub struct Clock {
        pub now_s: u64,
        /// `None`: nobody keeps time (no link, or `ntp off`).
        pub synchronised: Option<bool>,
        /// When synchronised: the last answer's server, offset and stratum, and when.
        pub server: Option<String>,
        pub offset_ms: Option<i64>,
        pub stratum: Option<u8>,
        pub last_sync_s: Option<u64>,
    }

    /// How this system booted (init's boot status).
    pub struct Boot {
        /// committed, trial, rolled-back or fell-back.
        pub state: String,
        /// rolled-back, fell-back: the slot given up.
        pub from: Option<u8>,
        /// Copies of the boot record init found damaged and rewrote at this boot: 1, 2
        /// or both.
        pub record_damaged: Option<String>,
        /// `<partition>:<why>`: a slot the UEFI boot program refused for its seal at
        /// this boot, booting this one instead (`boot::boot_status`).
        pub refused: Option<String>,
        /// trial: seconds after start-up at which init gives the trial up.
        pub timeout_s: Option<u32>,
    }

    /// The trial-boot record.
    pub struct Record {
        /// committed, try or tried.
        pub state: String,
        pub committed: u8,
        pub trial: u8,
        pub next_boot: u8,
        /// Boots of the committed slot that have not reached init (the boot code falls
        /// back to a complete other slot after `boot::record::MAX_ATTEMPTS`); `None`
        /// from an admind that predates two-copy records.
        pub attempts: Option<u8>,
        /// Copies damaged on the disk now (1, 2 or both); the next record write repairs
        /// one, a restart both.
        pub damaged: Option<String>,
    }

    /// One root slot: its build (kernel + command line + root, from the trailer; `None`:
    /// incomplete) and the kernel and command line on the disk now.
    pub struct Root {
        pub build: Option<String>,
        pub root: Option<Part>,
        pub kernel: Option<Part>,
        pub cmdline: Option<Part>,
        pub kernel_version: Option<String>,
        pub cmdline_text: Option<String>,
        /// `None`: the slot is not sealed.
        pub seal: Option<Seal>,
    }

    /// A slot's seal (`boot::seal`), as its trailer holds it.
    pub struct Seal {
        /// SHA-256 of the signing key's public key, hex.
        pub signer: String,
        pub version: u64,
        pub arch: String,
        pub older_allowed: bool,
    }

    pub struct Part {
        pub bytes: u64,
        /// Lowercase hex.
        pub sha256: String,
    }

    pub struct Memory {
        pub total_kb: u64,
        pub available_kb: u64,
    }

    /// A program init supervises.
    pub struct Service {
        pub name: String,
        /// `None`: not running.
        pub pid: Option<i32>,
        /// /proc's one-letter state, or "stopped".
        pub state: String,
        pub rss_kb: u64,
        /// `None`: init published no count.
        pub restarts: Option<u32>,
        /// The user it runs as (0: root); `None`: not running.
        pub user: Option<u32>,
        /// Times the kernel killed it at its memory limit, and forks or threads its task
        /// limit refused, this boot (its control group's counters; `boot::sandbox`).
        /// `None`: it has no control group.
        pub memory_kills: Option<u64>,
        pub tasks_refused: Option<u64>,
    }
}

/// Root slots by partition number: an object whose keys are the numbers.
impl Json for BTreeMap<u8, Root> {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            for (slot, root) in self {
                o.field(&slot.to_string(), root);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_admind_writes_a_client_reads_back() {
        let part = |n: u64| Part {
            bytes: n,
            sha256: "ab".repeat(32),
        };
        let status = Status {
            hostname: "thermo-\"1\"".into(),
            boot_id: "b-1".into(),
            uptime_s: 7,
            clock: Clock {
                now_s: 1_800_000_000,
                synchronised: Some(true),
                server: Some("10.0.0.1".into()),
                offset_ms: Some(-12),
                stratum: Some(2),
                last_sync_s: Some(1_799_999_990),
            },
            admind_uptime_s: 5,
            active_slot: Some(3),
            uncommitted_trial: true,
            boot: Some(Boot {
                state: "trial".into(),
                from: None,
                record_damaged: Some("both".into()),
                refused: None,
                timeout_s: Some(300),
            }),
            record: Some(Record {
                state: "tried".into(),
                committed: 2,
                trial: 3,
                next_boot: 2,
                attempts: Some(0),
                damaged: None,
            }),
            seals_required: true,
            boot_program_keys: Some(vec!["ab".repeat(32)]),
            roots: BTreeMap::from([
                (2, Root::default()),
                (
                    3,
                    Root {
                        build: Some("cd".repeat(32)),
                        root: Some(part(4096)),
                        kernel: Some(part(1 << 20)),
                        cmdline: Some(part(40)),
                        kernel_version: Some("6.12.0 (x)".into()),
                        cmdline_text: Some("console=ttyS0\n".into()),
                        seal: Some(Seal {
                            signer: "5a".repeat(32),
                            version: 1_800_000_000,
                            arch: "rpi".into(),
                            older_allowed: false,
                        }),
                    },
                ),
            ]),
            memory: Memory {
                total_kb: 1000,
                available_kb: 500,
            },
            services: vec![Service {
                name: "link".into(),
                pid: None,
                state: "stopped".into(),
                rss_kb: 0,
                restarts: Some(4),
                user: Some(20_000),
                memory_kills: Some(1),
                tasks_refused: None,
            }],
            channel: Some(Channel {
                url: "https://10.0.2.2:8443/c".into(),
                state: "waiting".into(),
                last_check_s: None,
                result: "up to date".into(),
                offered: Some(7),
                fetched_bytes: 0,
                updated_from: None,
            }),
        };
        let text = status.to_json();
        assert!(text.contains("\"3\":{\"build\":\""), "{text}");
        let back: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(back, status);
        // A clock nobody keeps: every detail null.
        let unkept = Clock {
            now_s: 1,
            ..Clock::default()
        };
        assert_eq!(
            unkept.to_json(),
            "{\"now_s\":1,\"synchronised\":null,\"server\":null,\"offset_ms\":null,\"stratum\":null,\"last_sync_s\":null}"
        );
    }
}
