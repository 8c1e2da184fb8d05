//! A fixed-size text buffer that `write!` formats into: the device programs' string type
//! (they have no allocator). What does not fit is cut off, never a panic.

use core::ffi::CStr;
use core::fmt;

/// A fixed buffer that `write!` formats into, truncating what does not fit.
#[derive(Clone)]
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Text {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text as a C string; `None` if it does not fit with its NUL or holds a NUL.
    pub fn as_cstr(&mut self) -> Option<&CStr> {
        if self.len >= N || self.as_bytes().contains(&0) {
            return None;
        }
        self.buf[self.len] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).ok()
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// A number in decimal without core's width and fill machinery, which costs the device
/// binaries kilobytes.
pub struct Decimal(pub u64);

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = self.0;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        f.write_str(core::str::from_utf8(&digits[at..]).unwrap_or("?"))
    }
}
