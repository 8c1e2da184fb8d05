//! Wall-clock time on a device that may have no real-time clock (a Raspberry Pi boots at
//! 1970): the two files that carry it, and UTC dates for log lines.
//!
//! | file | writer | reader | contents |
//! |---|---|---|---|
//! | [`SAVED_PATH`] (on /data) | init, every [`SAVE_INTERVAL_S`] and at shutdown | init at boot | `SECONDS\n`, seconds since 1970 UTC |
//! | [`STATUS_PATH`] (on /run) | link, after every SNTP exchange | admind's `/status` | one line, below |
//!
//! The status line is `synchronised server=A.B.C.D offset_ms=N stratum=N at_s=N` (the last
//! good answer: who gave it, how far off our clock was before correcting it, and when, in
//! seconds since 1970) or `unsynchronised` when no server has answered yet.

use crate::encoding::Decimal;
use core::fmt;

/// The clock saved across boots (what Debian's fake-hwclock keeps in /etc).
pub const SAVED_PATH: &core::ffi::CStr = c"/data/rustkrazy/clock";
/// Its folder and the temporary name it is written under before the rename.
pub const SAVED_DIR: &core::ffi::CStr = c"/data/rustkrazy";
pub const SAVED_TEMP_PATH: &core::ffi::CStr = c"/data/rustkrazy/clock.new";
/// How often init saves the clock while running.
pub const SAVE_INTERVAL_S: u64 = 300;

/// link's synchronisation status.
pub const STATUS_PATH: &str = "/run/rustkrazy/clock";
pub const STATUS_TEMP_PATH: &str = "/run/rustkrazy/clock.new";

/// Longest status line [`Status::fmt`] writes.
pub const STATUS_BYTES_MAX: usize = 128;

/// Parses the saved clock: decimal seconds, surrounding white space allowed.
pub fn parse_saved(text: &[u8]) -> Option<u64> {
    let digits = text.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// The time to set at boot: the saved one when the system clock is behind it.
pub fn restore_to(now_s: u64, saved_s: u64) -> Option<u64> {
    (now_s < saved_s).then_some(saved_s)
}

/// What link last learnt from a time server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sync {
    pub server: [u8; 4],
    pub offset_ms: i64,
    pub stratum: u8,
    pub at_s: u64,
}

/// The status line's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Unsynchronised,
    Synchronised(Sync),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Unsynchronised => f.write_str("unsynchronised\n"),
            Status::Synchronised(s) => {
                f.write_str("synchronised server=")?;
                for (i, &byte) in s.server.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{}", Decimal(u64::from(byte)))?;
                }
                f.write_str(" offset_ms=")?;
                if s.offset_ms < 0 {
                    f.write_str("-")?;
                }
                write!(f, "{}", Decimal(s.offset_ms.unsigned_abs()))?;
                f.write_str(" stratum=")?;
                write!(f, "{}", Decimal(u64::from(s.stratum)))?;
                f.write_str(" at_s=")?;
                write!(f, "{}", Decimal(s.at_s))?;
                f.write_str("\n")
            }
        }
    }
}

/// Parses a status line; `None` for anything that is not one.
pub fn parse_status(text: &str) -> Option<Status> {
    let mut words = text.trim().split(' ');
    match words.next()? {
        "unsynchronised" => Some(Status::Unsynchronised),
        "synchronised" => {
            let mut sync = Sync {
                server: [0; 4],
                offset_ms: 0,
                stratum: 0,
                at_s: 0,
            };
            let mut seen = 0;
            for word in words {
                let (key, value) = word.split_once('=')?;
                match key {
                    "server" => {
                        let mut parts = value.split('.');
                        for byte in &mut sync.server {
                            *byte = parts.next()?.parse().ok()?;
                        }
                        if parts.next().is_some() {
                            return None;
                        }
                    }
                    "offset_ms" => sync.offset_ms = value.parse().ok()?,
                    "stratum" => sync.stratum = value.parse().ok()?,
                    "at_s" => sync.at_s = value.parse().ok()?,
                    _ => return None,
                }
                seen += 1;
            }
            (seen == 4).then_some(Status::Synchronised(sync))
        }
        _ => None,
    }
}

/// Seconds since 1970 shown as `YYYY-MM-DDTHH:MM:SSZ`.
pub struct Utc(pub u64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, secs) = (self.0 / 86_400, self.0 % 86_400);
        let (y, m, d) = civil_from_days(days);
        // Digits by hand: core's width and fill machinery costs device binaries kilobytes.
        let mut out = *b"0000-00-00T00:00:00Z";
        let fields = [
            (0, 4, y),
            (5, 2, m),
            (8, 2, d),
            (11, 2, secs / 3600),
            (14, 2, secs / 60 % 60),
            (17, 2, secs % 60),
        ];
        for (at, width, mut value) in fields {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        f.write_str(core::str::from_utf8(&out).unwrap_or("?"))
    }
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian calendar
/// (Howard Hinnant's days-to-civil algorithm, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_clock_parses_digits_only() {
        assert_eq!(parse_saved(b"1764160000\n"), Some(1_764_160_000));
        assert_eq!(parse_saved(b"  42 "), Some(42));
        for bad in [
            &b""[..],
            b"\n",
            b"-5",
            b"12a",
            b"1.5",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_saved(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn restores_only_forward() {
        assert_eq!(restore_to(10, 1_000), Some(1_000));
        assert_eq!(restore_to(1_000, 1_000), None);
        assert_eq!(restore_to(2_000, 1_000), None);
    }

    #[test]
    fn status_round_trips_and_refuses_garbage() {
        let sync = Status::Synchronised(Sync {
            server: [10, 77, 0, 1],
            offset_ms: -1_764_160_000_123,
            stratum: 3,
            at_s: 1_764_160_000,
        });
        for status in [Status::Unsynchronised, sync] {
            let text = std::format!("{status}");
            assert!(text.len() <= STATUS_BYTES_MAX);
            assert_eq!(parse_status(&text), Some(status), "{text}");
        }
        for bad in [
            "",
            "synchronised",
            "synchronised server=1.2.3 offset_ms=0 stratum=1 at_s=0",
            "synchronised server=1.2.3.4.5 offset_ms=0 stratum=1 at_s=0",
            "synchronised server=1.2.3.4 offset_ms=x stratum=1 at_s=0",
            "synchronised server=1.2.3.4 offset_ms=0 stratum=1 at_s=0 extra=1",
            "maybe",
        ] {
            assert_eq!(parse_status(bad), None, "{bad}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(std::format!("{}", Utc(0)), "1970-01-01T00:00:00Z");
        assert_eq!(std::format!("{}", Utc(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(
            std::format!("{}", Utc(1_795_700_000)),
            "2026-11-26T13:33:20Z"
        );
        assert_eq!(
            std::format!("{}", Utc(4_102_444_799)),
            "2099-12-31T23:59:59Z"
        );
    }
}
