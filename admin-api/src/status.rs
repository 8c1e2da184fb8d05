//! The `GET /status` document: what admind reports about the device, and what `imgtool
//! status` and `imgtool push` read. One definition; admind encodes it with [`crate::json`],
//! clients decode it with serde.

use crate::json::{object, Json};
use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
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
    /// Each root slot (partition number) and what it holds.
    pub roots: BTreeMap<u8, Root>,
    pub memory: Memory,
    pub services: Vec<Service>,
}

/// The wall clock and who keeps it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Clock {
    pub now_s: u64,
    /// `None`: nobody keeps time (no link, or `ntp off`).
    pub synchronised: Option<bool>,
    /// When synchronised: the last answer's server, offset and stratum, and when it came.
    pub server: Option<String>,
    pub offset_ms: Option<i64>,
    pub stratum: Option<u8>,
    pub last_sync_s: Option<u64>,
}

/// How this system booted (init's boot status).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Boot {
    /// committed, trial or rolled-back.
    pub state: String,
    /// rolled-back: the slot given up.
    pub from: Option<u8>,
}

/// The trial-boot record.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Record {
    /// committed, try or tried.
    pub state: String,
    pub committed: u8,
    pub trial: u8,
    pub next_boot: u8,
}

/// One root slot: its build (kernel + command line + root, from the trailer; `None`:
/// incomplete) and the kernel and command line on the disk now.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Root {
    pub build: Option<String>,
    pub root: Option<Part>,
    pub kernel: Option<Part>,
    pub cmdline: Option<Part>,
    pub kernel_version: Option<String>,
    pub cmdline_text: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Part {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Memory {
    pub total_kb: u64,
    pub available_kb: u64,
}

/// A program init supervises.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Service {
    pub name: String,
    /// `None`: not running.
    pub pid: Option<i32>,
    /// /proc's one-letter state, or "stopped".
    pub state: String,
    pub rss_kb: u64,
    /// `None`: init published no count.
    pub restarts: Option<u32>,
}

impl Json for Status {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("hostname", &self.hostname)
                .field("boot_id", &self.boot_id)
                .field("uptime_s", &self.uptime_s)
                .field("clock", &self.clock)
                .field("admind_uptime_s", &self.admind_uptime_s)
                .field("active_slot", &self.active_slot)
                .field("uncommitted_trial", &self.uncommitted_trial)
                .field("boot", &self.boot)
                .field("record", &self.record)
                .field("roots", &self.roots)
                .field("memory", &self.memory)
                .field("services", &self.services);
        })
    }
}

impl Json for BTreeMap<u8, Root> {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            for (slot, root) in self {
                o.field(&slot.to_string(), root);
            }
        })
    }
}

impl Json for Clock {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("now_s", &self.now_s)
                .field("synchronised", &self.synchronised);
            // Only a synchronised clock has a last answer.
            if self.server.is_some() {
                o.field("server", &self.server)
                    .field("offset_ms", &self.offset_ms)
                    .field("stratum", &self.stratum)
                    .field("last_sync_s", &self.last_sync_s);
            }
        })
    }
}

impl Json for Boot {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("state", &self.state).field("from", &self.from);
        })
    }
}

impl Json for Record {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("state", &self.state)
                .field("committed", &self.committed)
                .field("trial", &self.trial)
                .field("next_boot", &self.next_boot);
        })
    }
}

impl Json for Root {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("build", &self.build)
                .field("root", &self.root)
                .field("kernel", &self.kernel)
                .field("cmdline", &self.cmdline)
                .field("kernel_version", &self.kernel_version)
                .field("cmdline_text", &self.cmdline_text);
        })
    }
}

impl Json for Part {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("bytes", &self.bytes).field("sha256", &self.sha256);
        })
    }
}

impl Json for Memory {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("total_kb", &self.total_kb)
                .field("available_kb", &self.available_kb);
        })
    }
}

impl Json for Service {
    fn write_json(&self, out: &mut String) {
        object(out, |o| {
            o.field("name", &self.name)
                .field("pid", &self.pid)
                .field("state", &self.state)
                .field("rss_kb", &self.rss_kb)
                .field("restarts", &self.restarts);
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
            }),
            record: Some(Record {
                state: "tried".into(),
                committed: 2,
                trial: 3,
                next_boot: 2,
            }),
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
            }],
        };
        let text = status.to_json();
        assert!(text.contains("\"3\":{\"build\":\""), "{text}");
        let back: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(back, status);
        // A clock nobody keeps: no last answer at all.
        let unkept = Clock {
            now_s: 1,
            ..Clock::default()
        };
        assert_eq!(unkept.to_json(), "{\"now_s\":1,\"synchronised\":null}");
    }
}
