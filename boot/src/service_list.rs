//! The service list: the programs init supervises and how often each was restarted, for
//! admind's `/status`.
//!
//! Path on the device: [`PATH`]. Text, one `NAME RESTARTS PID` line per service, in init's
//! order, PID 0 while it is not running; replaced whole (through [`TEMP_PATH`] and a
//! rename) whenever a service starts or exits. The pid is init's word on which process is
//! the service (a process's name is its own to change).

use core::ffi::CStr;
use core::fmt;

pub const PATH: &CStr = c"/run/rustkrazy/services";
pub const TEMP_PATH: &CStr = c"/run/rustkrazy/services.new";

/// One line of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub restarts: u32,
    /// `None`: not running.
    pub pid: Option<u32>,
}

/// The line with its newline.
impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::encoding::Decimal;
        let pid = self.pid.unwrap_or(0);
        writeln!(
            f,
            "{} {} {}",
            self.name,
            Decimal(self.restarts.into()),
            Decimal(pid.into())
        )
    }
}

/// The entries of a list; lines that are not `NAME RESTARTS PID` are skipped.
pub fn parse(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().filter_map(|line| {
        let mut words = line.split(' ');
        let (name, restarts, pid) = (words.next()?, words.next()?, words.next()?);
        let pid: u32 = pid.parse().ok()?;
        Some(Entry {
            name,
            restarts: restarts.parse().ok()?,
            pid: (pid != 0).then_some(pid),
        })
        .filter(|_| words.next().is_none())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_skip_damaged_lines() {
        let entries = [
            Entry {
                name: "link",
                restarts: 0,
                pid: Some(44),
            },
            Entry {
                name: "admind",
                restarts: 12,
                pid: None,
            },
        ];
        let text: String = entries.iter().map(|e| e.to_string()).collect();
        assert_eq!(text, "link 0 44\nadmind 12 0\n");
        assert!(parse(&text).eq(entries));
        assert!(
            parse("link\nadmind x 1\nweb 3\nold 1 2 3\nweb 3 7\n").eq([Entry {
                name: "web",
                restarts: 3,
                pid: Some(7),
            }])
        );
    }
}
