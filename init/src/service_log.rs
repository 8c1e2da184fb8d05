//! A service's output: each stream (stdout, stderr) read from its pipe, split into lines,
//! stamped, appended to a capped log under /run/log and echoed to the console.

use crate::sys::{self, now_ms, Console, Text};
use init::logline::{must_rotate, LineSplitter};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Bytes read from a service's pipe per wakeup.
const READ_CHUNK_BYTES: usize = 4096;

/// One output stream of a service: the pipe, a partial line, the log file.
pub struct Stream {
    pub pipe: Option<OwnedFd>,
    lines: LineSplitter,
    log: LogFile,
}

impl Stream {
    pub fn new(suffix: &'static [u8]) -> Stream {
        Stream {
            pipe: None,
            lines: LineSplitter::default(),
            log: LogFile {
                file: None,
                bytes: 0,
                suffix,
            },
        }
    }
}

/// `/run/log/NAME<suffix>`, capped and rotated once to `NAME<suffix>.1` (`boot::logs`).
struct LogFile {
    file: Option<OwnedFd>,
    bytes: u64,
    suffix: &'static [u8],
}

impl LogFile {
    fn append(&mut self, name: &[u8], entry: &[u8]) {
        let mut path: Text<96> = Text::new();
        path.push(boot::logs::DIR.as_bytes());
        path.push(b"/");
        path.push(name);
        path.push(self.suffix);
        if must_rotate(self.bytes, entry.len() as u64) {
            self.file = None;
            let mut rotated: Text<96> = Text::new();
            rotated.push(path.as_bytes());
            rotated.push(boot::logs::ROTATED_SUFFIX.as_bytes());
            let mut from = path.clone();
            if let (Some(from), Some(to)) = (from.as_cstr(), rotated.as_cstr()) {
                let _ = rustix::fs::rename(from, to);
            }
        }
        if self.file.is_none() {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::APPEND | OFlags::CLOEXEC;
            let Some(p) = path.as_cstr() else { return };
            self.file = rustix::fs::open(p, flags, Mode::from_raw_mode(0o644)).ok();
            self.bytes = 0;
        }
        if let Some(file) = &self.file {
            if sys::write_all(file, entry).is_ok() {
                self.bytes += entry.len() as u64;
            }
        }
    }
}

/// Stamps a line, appends it to the stream's log and echoes it to the console.
fn log_line(console: &Console, name: &[u8], log: &mut LogFile, line: &[u8]) {
    let mut stamp = [0u8; 24];
    let n = init::logline::stamp(now_ms(), &mut stamp);
    let mut entry: Text<{ init::logline::LINE_BYTES_MAX + 32 }> = Text::new();
    entry.push(&stamp[..n]);
    entry.push(line);
    entry.push(b"\n");
    log.append(name, entry.as_bytes());
    let mut echo: Text<{ init::logline::LINE_BYTES_MAX + 128 }> = Text::new();
    echo.push(&stamp[..n]);
    if !init::logline::names_itself(line, name) {
        echo.push(name);
        echo.push(b": ");
    }
    echo.push(line);
    echo.push(b"\n");
    console.write(echo.as_bytes());
}

impl Stream {
    /// Reads what service `name` wrote on this stream and logs it line by line.
    pub(crate) fn drain(&mut self, console: &Console, name: &[u8]) {
        let Stream { pipe, lines, log } = self;
        let Some(fd) = pipe else { return };
        let mut buf = [0u8; READ_CHUNK_BYTES];
        match rustix::io::read(&*fd, &mut buf) {
            Ok(0) => {
                *pipe = None;
                lines.flush(|line| log_line(console, name, log, line));
            }
            Ok(n) => lines.feed(&buf[..n], |line| log_line(console, name, log, line)),
            Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(_) => *pipe = None,
        }
    }
}
