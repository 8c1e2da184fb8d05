//! The service list: the programs init supervises and how often each was restarted, for
//! admind's `/status`.
//!
//! Path on the device: [`PATH`]. Text, one `NAME RESTARTS` line per service, in init's
//! order; replaced whole (through [`TEMP_PATH`] and a rename) whenever a count changes.

use core::ffi::CStr;
use core::fmt;

pub const PATH: &CStr = c"/run/rustkrazy/services";
pub const TEMP_PATH: &CStr = c"/run/rustkrazy/services.new";

/// One line of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub restarts: u32,
}

/// The line with its newline.
impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}",
            self.name,
            crate::encoding::Decimal(self.restarts.into())
        )
    }
}

/// The entries of a list; lines that are not `NAME RESTARTS` are skipped.
pub fn parse(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().filter_map(|line| {
        let (name, restarts) = line.split_once(' ')?;
        Some(Entry {
            name,
            restarts: restarts.trim().parse().ok()?,
        })
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
            },
            Entry {
                name: "admind",
                restarts: 12,
            },
        ];
        let text: String = entries.iter().map(|e| e.to_string()).collect();
        assert_eq!(text, "link 0\nadmind 12\n");
        assert!(parse(&text).eq(entries));
        assert!(parse("link\nadmind x\nweb 3\n").eq([Entry {
            name: "web",
            restarts: 3
        }]));
    }
}
