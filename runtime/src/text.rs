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

#[cfg(test)]
mod tests {
    use super::Text;
    use core::fmt::Write;

    #[test]
    fn cuts_what_does_not_fit_and_makes_c_strings_only_when_they_fit() {
        let mut t: Text<8> = Text::new();
        let _ = write!(t, "abc{}", 12345678);
        assert_eq!(t.as_bytes(), b"abc12345");
        assert!(t.as_cstr().is_none(), "no room for the NUL");
        let mut t: Text<8> = Text::new();
        t.push(b"/run");
        assert_eq!(t.as_cstr().unwrap().to_bytes(), b"/run");
        t.push(b"\0x");
        assert!(t.as_cstr().is_none(), "holds a NUL");
    }
}
