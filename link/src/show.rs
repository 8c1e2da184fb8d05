//! Addresses and bytes as log text. Small on purpose: core's `Ipv4Addr`/`Ipv6Addr` `Display`
//! support padding and width, which costs kilobytes in a binary with a 64 KiB budget.

use boot::encoding::Decimal;
use core::fmt::{self, Display, Formatter, Write};

fn hex(f: &mut Formatter<'_>, n: u32, min_digits: usize) -> fmt::Result {
    let mut started = false;
    for shift in (0..8).rev() {
        let d = (n >> (shift * 4)) & 0xf;
        if d != 0 || started || shift < min_digits {
            started = true;
            f.write_char(b"0123456789abcdef"[d as usize] as char)?;
        }
    }
    Ok(())
}

/// Dotted quad.
pub struct Ip4(pub [u8; 4]);

impl Display for Ip4 {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, &b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            write!(f, "{}", Decimal(u64::from(b)))?;
        }
        Ok(())
    }
}

/// RFC 5952 text: lowercase, leading zeros dropped, the longest run (two or more) of zero
/// groups written `::`.
pub struct Ip6(pub [u8; 16]);

impl Display for Ip6 {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let groups: [u16; 8] =
            core::array::from_fn(|i| u16::from_be_bytes([self.0[2 * i], self.0[2 * i + 1]]));
        let (mut best, mut best_len, mut run, mut run_len) = (8, 1, 0, 0);
        for (i, &g) in groups.iter().enumerate() {
            if g == 0 {
                if run_len == 0 {
                    run = i;
                }
                run_len += 1;
                if run_len > best_len {
                    (best, best_len) = (run, run_len);
                }
            } else {
                run_len = 0;
            }
        }
        let mut i = 0;
        while i < 8 {
            if i == best {
                f.write_str("::")?;
                i += best_len;
                continue;
            }
            if i > 0 && i != best + best_len {
                f.write_char(':')?;
            }
            hex(f, u32::from(groups[i]), 1)?;
            i += 1;
        }
        Ok(())
    }
}

pub struct Mac(pub [u8; 6]);

impl Display for Mac {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, &b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(':')?;
            }
            hex(f, u32::from(b), 2)?;
        }
        Ok(())
    }
}

/// Bytes (names from the kernel or the command line) as text, anything unprintable as
/// `\xNN`.
pub struct Shown<'a>(pub &'a [u8]);

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                f.write_char(b as char)?;
            } else {
                f.write_str("\\x")?;
                hex(f, u32::from(b), 2)?;
            }
        }
        Ok(())
    }
}

/// What comes with an address: " via GW dns A,B", as applicable.
pub struct Extras<'a> {
    pub gateway: Option<[u8; 4]>,
    pub dns: &'a [[u8; 4]],
}

impl Display for Extras<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(gw) = self.gateway {
            write!(f, " via {}", Ip4(gw))?;
        }
        for (i, s) in self.dns.iter().enumerate() {
            write!(f, "{}{}", if i == 0 { " dns " } else { "," }, Ip4(*s))?;
        }
        Ok(())
    }
}

/// A lease time: seconds, or "ever".
pub struct LeaseTime(pub u32);

impl Display for LeaseTime {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            u32::MAX => f.write_str("ever"),
            s => write!(f, "{} s", Decimal(u64::from(s))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn matches_the_standard_text() {
        for ip in [
            [0, 0, 0, 0],
            [10, 0, 2, 15],
            [255, 255, 255, 255],
            [192, 168, 100, 9],
        ] {
            assert_eq!(Ip4(ip).to_string(), Ipv4Addr::from(ip).to_string());
        }
        let samples = [
            "::",
            "::1",
            "fe80::5054:ff:fe12:3456",
            "2001:db8::1:0:0:1",
            "2001:db8:0:1:1:1:1:1",
            "1::",
            "1:0:0:2::3",
            "fec0::5054:ff:fe12:3456",
            "1:2:3:4:5:6:7:8",
            "2001:0:0:1:0:0:0:1",
            "1:0:0:2:0:0:3:4",
        ];
        for text in samples {
            let ip: Ipv6Addr = text.parse().unwrap();
            assert_eq!(Ip6(ip.octets()).to_string(), ip.to_string(), "{text}");
        }
        assert_eq!(
            Mac([0x52, 0x54, 0, 0x12, 0x34, 0xab]).to_string(),
            "52:54:00:12:34:ab"
        );
        assert_eq!(Shown(b"eth0\x01").to_string(), "eth0\\x01");
        let extras = Extras {
            gateway: Some([10, 0, 0, 1]),
            dns: &[[10, 0, 0, 2], [9, 9, 9, 9]],
        };
        assert_eq!(extras.to_string(), " via 10.0.0.1 dns 10.0.0.2,9.9.9.9");
        assert_eq!(
            Extras {
                gateway: None,
                dns: &[]
            }
            .to_string(),
            ""
        );
        assert_eq!(LeaseTime(86400).to_string(), "86400 s");
        assert_eq!(LeaseTime(u32::MAX).to_string(), "ever");
    }
}
