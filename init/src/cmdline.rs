//! The kernel command line (`/proc/cmdline`): what init needs from it.
//!
//! - `root=PARTUUID=<signature>-<NN>`, or for a verified root the partition under it,
//!   `dm-mod.waitfor=PARTUUID=<signature>-<NN>`: which root slot was booted (NN = 02 or 03).
//! - `rustkrazy.trial_timeout=<seconds>`: how long an uncommitted trial boot may run before
//!   init reboots back to the committed root (default [`TRIAL_TIMEOUT_S_DEFAULT`]).
//! - `rustkrazy.watchdog=off`: leave /dev/watchdog alone (for machines whose watchdog misbehaves,
//!   such as QEMU's raspi3b, which resets at once when the watchdog is started).
//! - `rustkrazy.refused=<partition>:<why>`: the UEFI boot program refused that slot's seal
//!   and booted this one (`boot::boot_status::refusal`), for the boot status.

/// Seconds a trial boot may run uncommitted, unless the cmdline says otherwise.
pub const TRIAL_TIMEOUT_S_DEFAULT: u32 = 300;
/// Upper bound accepted for `rustkrazy.trial_timeout` (a day).
pub const TRIAL_TIMEOUT_S_MAX: u32 = 86_400;

/// What init takes from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cmdline<'a> {
    /// Partition number of the root, from `root=PARTUUID=...-NN` or
    /// `dm-mod.waitfor=PARTUUID=...-NN`.
    pub root_partition: Option<u8>,
    pub trial_timeout_s: u32,
    /// Whether init opens and feeds /dev/watchdog.
    pub watchdog: bool,
    pub refused: Option<&'a str>,
}

/// Parses the command line; unknown words are ignored, malformed values fall back.
pub fn parse(text: &[u8]) -> Cmdline<'_> {
    let mut out = Cmdline {
        root_partition: None,
        trial_timeout_s: TRIAL_TIMEOUT_S_DEFAULT,
        watchdog: true,
        refused: None,
    };
    for word in text
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        let uuid = word
            .strip_prefix(b"root=PARTUUID=")
            .or(word.strip_prefix(b"dm-mod.waitfor=PARTUUID="));
        if let Some(uuid) = uuid {
            out.root_partition = partuuid_partition(uuid);
        } else if let Some(value) = word.strip_prefix(b"rustkrazy.trial_timeout=") {
            if let Some(s) = parse_u32(value).filter(|&s| (1..=TRIAL_TIMEOUT_S_MAX).contains(&s)) {
                out.trial_timeout_s = s;
            }
        } else if word == b"rustkrazy.watchdog=off" {
            out.watchdog = false;
        } else if let Some(value) = word.strip_prefix(b"rustkrazy.refused=") {
            out.refused = core::str::from_utf8(value)
                .ok()
                .and_then(boot::boot_status::refusal);
        }
    }
    out
}

/// `1a2b3c4d-02` -> 2. MBR PARTUUIDs are 8 hex digits, a dash, 2 hex digits.
fn partuuid_partition(uuid: &[u8]) -> Option<u8> {
    if uuid.len() != 11 || uuid[8] != b'-' || !uuid[..8].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    Some(hex(uuid[9])? * 16 + hex(uuid[10])?)
}

/// Decimal digits only, no sign, no overflow.
pub fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |n, &d| {
        n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_root_slot_and_trial_timeout() {
        let c = parse(b"console=ttyS0 root=PARTUUID=1a2b3c4d-03 ro rustkrazy.trial_timeout=90\n");
        assert_eq!(
            c,
            Cmdline {
                root_partition: Some(3),
                trial_timeout_s: 90,
                watchdog: true,
                refused: None,
            }
        );
        let refused = parse(b"root=PARTUUID=1a2b3c4d-02 rustkrazy.refused=3:kernel-altered");
        assert_eq!(refused.refused, Some("3:kernel-altered"));
        assert_eq!(parse(b"rustkrazy.refused=3:Kernel").refused, None);
        let verified = b"dm-mod.create=\"r,,,ro,0 8 verity 1 PARTUUID=1a2b3c4d-02\" \
            dm-mod.waitfor=PARTUUID=1a2b3c4d-02 root=/dev/dm-0";
        assert_eq!(parse(verified).root_partition, Some(2));
        assert!(!parse(b"root=PARTUUID=1a2b3c4d-02 rustkrazy.watchdog=off").watchdog);
        assert!(parse(b"rustkrazy.watchdog=of").watchdog);
    }

    #[test]
    fn malformed_values_fall_back() {
        for text in [
            &b"root=PARTUUID=1a2b3c4d-0x rustkrazy.trial_timeout=-5"[..],
            b"root=PARTUUID=zz2b3c4d-02 rustkrazy.trial_timeout=99999999999",
            b"root=/dev/vda2 rustkrazy.trial_timeout=0",
            b"",
        ] {
            let c = parse(text);
            assert_eq!(c.root_partition, None, "{text:?}");
            assert_eq!(c.trial_timeout_s, TRIAL_TIMEOUT_S_DEFAULT, "{text:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"12a"), None);
    }
}
