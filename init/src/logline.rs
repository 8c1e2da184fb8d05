//! Service output: split into lines, stamped with the time since boot, appended to
//! `/run/log/NAME.log` (stdout) or `/run/log/NAME.err` (stderr), each capped at
//! [`LOG_BYTES_MAX`] and rotated once to `NAME.log.1`, so a chatty service holds at most
//! twice the cap in RAM.

/// Cap of one log file before it is rotated.
pub const LOG_BYTES_MAX: u64 = 256 << 10;
/// Longest line kept whole; longer output is cut into lines of this length.
pub const LINE_BYTES_MAX: usize = 1024;

/// Whether appending `incoming` bytes to a file of `size` bytes must rotate it first.
pub fn must_rotate(size: u64, incoming: u64) -> bool {
    size > 0 && size + incoming > LOG_BYTES_MAX
}

/// Whether a service's line already starts with `NAME: `, as link's and admind's do; the
/// console then shows it without init's own `NAME: ` in front (one prefix per line).
pub fn names_itself(line: &[u8], name: &[u8]) -> bool {
    line.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(b": "))
}

/// Collects bytes of one stream and yields complete lines (without the newline).
pub struct LineSplitter {
    buf: [u8; LINE_BYTES_MAX],
    len: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter {
            buf: [0; LINE_BYTES_MAX],
            len: 0,
        }
    }
}

impl LineSplitter {
    /// Feeds `data`, calling `line` for every complete line (and for every full buffer).
    pub fn feed(&mut self, data: &[u8], mut line: impl FnMut(&[u8])) {
        for &b in data {
            if b == b'\n' {
                line(&self.buf[..self.len]);
                self.len = 0;
                continue;
            }
            if self.len == LINE_BYTES_MAX {
                line(&self.buf[..self.len]);
                self.len = 0;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Emits a pending partial line (the stream ended without a newline).
    pub fn flush(&mut self, mut line: impl FnMut(&[u8])) {
        if self.len > 0 {
            line(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

/// Formats `[ssss.mmm] ` (seconds.milliseconds since boot) into `out`; returns its length.
pub fn stamp(uptime_ms: u64, out: &mut [u8; 24]) -> usize {
    let mut digits = [0u8; 20];
    let secs = boot::encoding::decimal_digits(uptime_ms / 1000, &mut digits);
    // The seconds right-aligned in five columns (at most 17 digits: it fits the 24 bytes).
    let open = &b"[    "[..5usize.saturating_sub(secs.len()) + 1];
    let ms = uptime_ms % 1000;
    let frac = [
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b']',
        b' ',
    ];
    let mut at = 0;
    for part in [open, secs, &frac] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_names_its_service_gets_no_second_prefix() {
        assert!(names_itself(b"link: eth0: lease", b"link"));
        assert!(!names_itself(b"linked: yes", b"link"));
        assert!(!names_itself(b"link:no space", b"link"));
        assert!(!names_itself(b"", b"link"));
        assert!(!names_itself(b"hello", b"link"));
    }

    #[test]
    fn splits_lines_and_long_output() {
        let mut s = LineSplitter::default();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        s.feed(b"one\ntw", |l| lines.push(l.to_vec()));
        s.feed(b"o\n\nthree", |l| lines.push(l.to_vec()));
        assert_eq!(lines, [b"one".to_vec(), b"two".to_vec(), b"".to_vec()]);
        s.flush(|l| lines.push(l.to_vec()));
        assert_eq!(lines.last().unwrap(), b"three");
        lines.clear();
        s.feed(&[b'x'; LINE_BYTES_MAX * 2 + 5], |l| lines.push(l.to_vec()));
        s.flush(|l| lines.push(l.to_vec()));
        assert_eq!(
            lines.iter().map(Vec::len).collect::<Vec<_>>(),
            [LINE_BYTES_MAX, LINE_BYTES_MAX, 5]
        );
    }

    #[test]
    fn rotation_keeps_files_under_the_cap() {
        assert!(
            !must_rotate(0, LOG_BYTES_MAX * 3),
            "an empty file takes any line"
        );
        assert!(!must_rotate(LOG_BYTES_MAX - 10, 10));
        assert!(must_rotate(LOG_BYTES_MAX - 10, 11));
    }

    #[test]
    fn stamps() {
        let mut out = [0u8; 24];
        let n = stamp(12_345, &mut out);
        assert_eq!(&out[..n], b"[   12.345] ");
        let n = stamp(123_456_789, &mut out);
        assert_eq!(&out[..n], b"[123456.789] ");
    }
}
