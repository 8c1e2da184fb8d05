//! Writing to the standard descriptors: services' stdout and stderr are pipes init logs.

use crate::file::write_all;
use rustix::fd::BorrowedFd;

/// Writes all of `bytes` to standard output; a closed or failing stdout is ignored.
pub fn write_stdout(bytes: &[u8]) {
    // SAFETY: fd 1 is only borrowed for this write; if it is not open, the write fails.
    let _ = write_all(unsafe { BorrowedFd::borrow_raw(1) }, bytes);
}

/// Writes all of `bytes` to standard error; a closed or failing stderr is ignored.
pub fn write_stderr(bytes: &[u8]) {
    // SAFETY: fd 2 is only borrowed for this write; if it is not open, the write fails.
    let _ = write_all(unsafe { BorrowedFd::borrow_raw(2) }, bytes);
}

/// Formats one line (cut at 256 bytes) and writes it to stdout: `say!("x: {}", y)`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut line: $crate::Text<256> = $crate::Text::new();
        let _ = core::write!(line, $($arg)*);
        line.push(b"\n");
        $crate::output::write_stdout(line.as_bytes());
    }};
}
