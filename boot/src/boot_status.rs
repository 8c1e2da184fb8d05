//! The boot status: one line init writes at start-up saying how this system booted, for
//! admind (and the demo page) to read instead of working it out again.
//!
//! Path on the device: [`PATH`]. Text, one line, words separated by single spaces:
//!
//! ```text
//! committed slot=2 disk=/dev/vda
//! trial slot=3 timeout_s=300 disk=/dev/vda
//! rolled-back slot=2 from=3 disk=/dev/mmcblk0
//! fell-back slot=2 from=3 record-damaged=1 disk=/dev/vda
//! rolled-back slot=2 from=3 refused=3:kernel-altered disk=/dev/vda
//! committed slot=2 disk=/dev/vda build=<64 hex digits>
//! ```
//!
//! `slot` is the root partition booted (2 or 3); `disk` is the whole disk holding it, absent
//! when init could not find it; `record-damaged` (1, 2 or both) names the copies of the boot
//! record init found damaged and rewrote (`crate::record`), absent when both were valid;
//! `refused` is the first slot the UEFI boot program refused at this boot, and why (it
//! passes `rustkrazy.refused=` on the command line: `incomplete`, `unsealed`,
//! `other-machine`, `unknown-key`, `kernel-altered`, `cmdline-altered`, `bad-signature`);
//! `build` is the build id in the booted slot's trailer (`crate::rootid`), there for
//! programs that may not read the disk. Unknown words are ignored, so fields can be added.

use crate::layout::Slot;
pub use crate::record::Damage;
use core::ffi::CStr;
use core::fmt;

/// Where init keeps what it reports (boot status, services), a tmpfs.
pub const RUN_DIR: &CStr = c"/run/rustkrazy";
/// Where the boot status line is.
pub const PATH: &CStr = c"/run/rustkrazy/boot-status";

/// How the running slot came to be booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The committed slot, as planned.
    Committed,
    /// A one-shot trial: committed by userspace within `timeout_s` or rebooted away from.
    Trial { timeout_s: u32 },
    /// The committed slot, after a trial of slot `from` ended without a commit.
    RolledBack { from: Slot },
    /// The loader committed this slot after the committed slot `from` failed to reach init
    /// `crate::record::MAX_ATTEMPTS` times.
    FellBack { from: Slot },
}

impl How {
    /// The line's first word.
    pub const fn name(&self) -> &'static str {
        match self {
            How::Committed => "committed",
            How::Trial { .. } => "trial",
            How::RolledBack { .. } => "rolled-back",
            How::FellBack { .. } => "fell-back",
        }
    }
}

/// One boot status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootStatus<'a> {
    pub how: How,
    /// The root slot booted.
    pub slot: Slot,
    /// The whole disk holding the root, e.g. `/dev/vda`.
    pub disk: Option<&'a str>,
    pub damage: Damage,
    /// `<partition>:<why>`: a slot the UEFI boot program refused ([`refusal`]).
    pub refused: Option<&'a str>,
    /// The booted slot's build id, 64 lowercase hex digits.
    pub build: Option<&'a str>,
}

/// `value` if it is a refusal as the boot program states it, `<partition>:<why>` (2 or
/// 3, then up to 20 lowercase letters and dashes).
pub fn refusal(value: &str) -> Option<&str> {
    let (slot, why) = value.split_once(':')?;
    let why_ok =
        (1..=20).contains(&why.len()) && why.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    (matches!(slot, "2" | "3") && why_ok).then_some(value)
}

/// The line without its newline.
impl fmt::Display for BootStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::encoding::Decimal;
        write!(
            f,
            "{} slot={}",
            self.how.name(),
            Decimal(self.slot.number().into())
        )?;
        match self.how {
            How::Committed => {}
            How::Trial { timeout_s } => write!(f, " timeout_s={}", Decimal(timeout_s.into()))?,
            How::RolledBack { from } | How::FellBack { from } => {
                write!(f, " from={}", Decimal(from.number().into()))?
            }
        }
        match self.damage {
            Damage::None => {}
            Damage::Copy(n) => write!(f, " record-damaged={}", Decimal(n.into()))?,
            Damage::Both => write!(f, " record-damaged=both")?,
        }
        if let Some(refused) = self.refused {
            write!(f, " refused={refused}")?;
        }
        if let Some(disk) = self.disk {
            write!(f, " disk={disk}")?;
        }
        if let Some(build) = self.build {
            write!(f, " build={build}")?;
        }
        Ok(())
    }
}

/// Parses a boot status line; `None` unless it names how, and a root slot (and `from` for
/// a roll-back).
pub fn parse(text: &str) -> Option<BootStatus<'_>> {
    let mut words = text.split_ascii_whitespace();
    let first = words.next()?;
    let (mut slot, mut from, mut timeout_s, mut disk) = (None, None, None, None);
    let (mut damage, mut refused, mut build) = (Damage::None, None, None);
    for word in words {
        match word.split_once('=')? {
            ("slot", v) => slot = Some(Slot::of_partition(v.parse().ok()?)?),
            ("from", v) => from = Some(Slot::of_partition(v.parse().ok()?)?),
            ("timeout_s", v) => timeout_s = Some(v.parse().ok()?),
            ("disk", v) => disk = Some(v),
            ("refused", v) => refused = Some(refusal(v)?),
            ("build", v) => {
                let hex =
                    v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                build = Some(v).filter(|_| hex);
            }
            ("record-damaged", "both") => damage = Damage::Both,
            ("record-damaged", v) => {
                damage = Damage::Copy(v.parse().ok().filter(|n| *n == 1 || *n == 2)?)
            }
            _ => {}
        }
    }
    let how = match first {
        "committed" => How::Committed,
        "trial" => How::Trial {
            timeout_s: timeout_s.unwrap_or(0),
        },
        "rolled-back" => How::RolledBack { from: from? },
        "fell-back" => How::FellBack { from: from? },
        _ => return None,
    };
    Some(BootStatus {
        how,
        slot: slot?,
        disk,
        damage,
        refused,
        build,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for status in [
            BootStatus {
                how: How::Committed,
                slot: Slot::A,
                disk: Some("/dev/vda"),
                damage: Damage::None,
                refused: None,
                build: None,
            },
            BootStatus {
                how: How::Trial { timeout_s: 300 },
                slot: Slot::B,
                disk: None,
                damage: Damage::Copy(2),
                refused: None,
                build: None,
            },
            BootStatus {
                how: How::RolledBack { from: Slot::B },
                slot: Slot::A,
                disk: Some("/dev/mmcblk0"),
                damage: Damage::None,
                refused: None,
                build: None,
            },
            BootStatus {
                how: How::FellBack { from: Slot::A },
                slot: Slot::B,
                disk: Some("/dev/vda"),
                damage: Damage::Both,
                refused: Some("2:unsealed"),
                build: Some("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            },
        ] {
            let line = status.to_string();
            assert_eq!(parse(&line), Some(status), "{line}");
            assert_eq!(parse(&format!("{line}\n")), Some(status), "{line}");
        }
        assert_eq!(
            BootStatus {
                how: How::Trial { timeout_s: 5 },
                slot: Slot::B,
                disk: Some("/dev/vda"),
                damage: Damage::Copy(1),
                refused: None,
                build: None,
            }
            .to_string(),
            "trial slot=3 timeout_s=5 record-damaged=1 disk=/dev/vda"
        );
        let line = "rolled-back slot=2 from=3 refused=3:kernel-altered disk=/dev/vda";
        assert_eq!(
            parse(line).and_then(|s| s.refused),
            Some("3:kernel-altered")
        );
        // A build that is not 64 lowercase hex digits is left out, not trusted.
        let short = parse("committed slot=2 build=abc").unwrap();
        assert_eq!(short.build, None);
    }

    #[test]
    fn refuses_lines_without_a_root_slot_or_a_known_state() {
        for bad in [
            "",
            "committed",
            "committed slot",
            "committed slot=4",
            "committed slot=x",
            "booted slot=2",
            "rolled-back slot=2",
            "fell-back slot=2",
            "committed slot=2 record-damaged=3",
            "committed slot=2 refused=4:unsealed",
            "committed slot=2 refused=3:Bad",
            "committed slot=2 refused=3",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert!(
            parse("committed slot=2 later=field").is_some(),
            "new fields are ignored"
        );
    }
}
