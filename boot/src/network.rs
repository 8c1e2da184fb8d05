//! Network settings: the file `imgtool mkimg` writes from the `[network]` table of
//! appliance.toml and `link` reads.
//!
//! Path on the device: [`PATH`]. Text, one setting per line:
//!
//! ```text
//! # comment
//! interface <name>              configure only the named interfaces (repeatable, up to 4);
//!                               without any, every Ethernet interface is configured
//! address <a.b.c.d>/<prefix>    a static IPv4 address instead of DHCP (needs exactly one
//!                               interface line)
//! gateway <a.b.c.d>             static default route (only with address)
//! dns <a.b.c.d>                 static DNS server (only with address; up to 3)
//! ntp <name or a.b.c.d>         time server (up to 3), instead of DHCP's (option 42) and
//!                               the default, [`NTP_DEFAULT`]
//! ntp off                       no time synchronisation
//! ```
//!
//! A missing file means DHCP on every Ethernet interface. IPv6 is always left to the kernel's
//! SLAAC. Unknown keys are errors, so a typo does not silently switch DHCP back on.

/// Where the file lives in the root image.
pub const PATH: &str = "/etc/rustkrazy/network";
/// Interfaces that can be named.
pub const INTERFACES_MAX: usize = 4;
/// DNS servers kept (musl reads at most 3).
pub const DNS_MAX: usize = 3;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const INTERFACE_NAME_BYTES_MAX: usize = 15;

/// Time servers kept.
pub const NTP_MAX: usize = 3;
/// The time server asked when neither the settings nor DHCP name one.
pub const NTP_DEFAULT: &str = "pool.ntp.org";
/// Longest time server name kept.
pub const HOST_BYTES_MAX: usize = 63;

pub type Ipv4 = [u8; 4];

/// A host name (or dotted quad), stored inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    bytes: [u8; HOST_BYTES_MAX],
    len: u8,
}

impl Host {
    /// `None` unless [`valid_host_name`] and at most [`HOST_BYTES_MAX`] bytes.
    pub fn new(name: &[u8]) -> Option<Host> {
        if name.len() > HOST_BYTES_MAX || !valid_host_name(name) {
            return None;
        }
        let mut bytes = [0; HOST_BYTES_MAX];
        bytes[..name.len()].copy_from_slice(name);
        Some(Host {
            bytes,
            len: name.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl Default for Host {
    fn default() -> Self {
        Host {
            bytes: [0; HOST_BYTES_MAX],
            len: 0,
        }
    }
}

/// Whether `name` can be looked up in DNS: dot-separated labels of 1 to 63 letters, digits
/// or hyphens (not at either end), 253 bytes at most, an optional final dot. Dotted quads
/// pass too (all digits).
pub fn valid_host_name(name: &[u8]) -> bool {
    let name = name.strip_suffix(b".").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split(|&b| b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
                && label[0] != b'-'
                && label[label.len() - 1] != b'-'
        })
}

/// An interface name, stored inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Name {
    bytes: [u8; INTERFACE_NAME_BYTES_MAX],
    len: u8,
}

impl Name {
    /// `None` unless 1..=15 bytes without `/`, whitespace, NUL or `:`, and not `.`/`..`.
    pub fn new(name: &[u8]) -> Option<Name> {
        let ok = !name.is_empty()
            && name.len() <= INTERFACE_NAME_BYTES_MAX
            && name != b"."
            && name != b".."
            && name
                .iter()
                .all(|&b| b.is_ascii_graphic() && b != b'/' && b != b':');
        if !ok {
            return None;
        }
        let mut bytes = [0; INTERFACE_NAME_BYTES_MAX];
        bytes[..name.len()].copy_from_slice(name);
        Some(Name {
            bytes,
            len: name.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A static IPv4 configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Static {
    pub address: Ipv4,
    pub prefix: u8,
    pub gateway: Option<Ipv4>,
    pub dns: [Ipv4; DNS_MAX],
    pub dns_count: usize,
}

/// The whole file, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    pub interfaces: [Name; INTERFACES_MAX],
    pub interface_count: usize,
    /// `None`: DHCP.
    pub ipv4_static: Option<Static>,
    pub ntp: [Host; NTP_MAX],
    pub ntp_count: usize,
    /// `ntp off`: the clock is left alone.
    pub ntp_off: bool,
}

impl Settings {
    pub fn interfaces(&self) -> &[Name] {
        &self.interfaces[..self.interface_count]
    }

    /// Time servers named in the settings (empty: DHCP's, else [`NTP_DEFAULT`]).
    pub fn ntp(&self) -> &[Host] {
        &self.ntp[..self.ntp_count]
    }

    /// Whether the interface called `name` is to be configured (Ethernet-ness is the caller's
    /// business).
    pub fn wants(&self, name: &[u8]) -> bool {
        self.interface_count == 0 || self.interfaces().iter().any(|n| n.as_bytes() == name)
    }
}

/// Why the file was rejected; `line` is 1-based (0: the file as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
}

/// Parses the file's bytes.
pub fn parse(text: &[u8]) -> Result<Settings, ParseError> {
    let mut parsing = Parsing::default();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = trim(raw);
        if raw.is_empty() || raw[0] == b'#' {
            continue;
        }
        let (key, value) = match raw.iter().position(|&b| b == b' ') {
            Some(at) => (&raw[..at], trim(&raw[at + 1..])),
            None => {
                return Err(ParseError {
                    line,
                    reason: "expected `<key> <value>`",
                })
            }
        };
        parsing
            .take(key, value, line)
            .map_err(|reason| ParseError { line, reason })?;
    }
    parsing.finish()
}

/// The file read so far.
#[derive(Default)]
struct Parsing {
    settings: Settings,
    address: Option<(Ipv4, u8)>,
    gateway: Option<Ipv4>,
    dns: [Ipv4; DNS_MAX],
    dns_count: usize,
    /// The last `dns` line, to name in an error about the file as a whole.
    dns_line: usize,
}

impl Parsing {
    /// Takes one `key value` line.
    fn take(&mut self, key: &[u8], value: &[u8], line: usize) -> Result<(), &'static str> {
        let settings = &mut self.settings;
        match key {
            b"interface" => {
                let name = Name::new(value)
                    .ok_or("an interface name is 1 to 15 characters without spaces, '/' or ':'")?;
                if settings.interface_count == INTERFACES_MAX {
                    return Err("at most 4 interfaces can be named");
                }
                if settings.interfaces().contains(&name) {
                    return Err("interface named twice");
                }
                settings.interfaces[settings.interface_count] = name;
                settings.interface_count += 1;
            }
            b"address" => {
                if self.address.is_some() {
                    return Err("only one static address can be given");
                }
                self.address =
                    Some(parse_cidr(value).ok_or(
                        "an address is written a.b.c.d/prefix, with a prefix from 1 to 32",
                    )?);
            }
            b"gateway" => {
                if self.gateway.is_some() {
                    return Err("only one gateway can be given");
                }
                self.gateway = Some(parse_ipv4(value).ok_or("a gateway is written a.b.c.d")?);
            }
            b"dns" => {
                if self.dns_count == DNS_MAX {
                    return Err("at most 3 DNS servers can be given");
                }
                self.dns[self.dns_count] =
                    parse_ipv4(value).ok_or("a DNS server is written a.b.c.d")?;
                self.dns_count += 1;
                self.dns_line = line;
            }
            b"ntp" if value == b"off" => {
                if settings.ntp_count > 0 {
                    return Err("`ntp off` cannot go with time servers");
                }
                settings.ntp_off = true;
            }
            b"ntp" => {
                if settings.ntp_off {
                    return Err("`ntp off` cannot go with time servers");
                }
                if settings.ntp_count == NTP_MAX {
                    return Err("at most 3 time servers can be given");
                }
                settings.ntp[settings.ntp_count] = Host::new(value).ok_or(
                    "a time server is a host name (letters, digits, '-', '.'; at most 63 bytes) or a.b.c.d",
                )?;
                settings.ntp_count += 1;
            }
            _ => return Err("unknown key (expected interface, address, gateway, dns or ntp)"),
        }
        Ok(())
    }

    /// The settings, once what only the whole file shows is checked.
    fn finish(self) -> Result<Settings, ParseError> {
        let mut settings = self.settings;
        match self.address {
            Some((address, prefix)) => {
                if settings.interface_count != 1 {
                    return Err(ParseError {
                        line: 0,
                        reason: "a static address needs exactly one interface line",
                    });
                }
                settings.ipv4_static = Some(Static {
                    address,
                    prefix,
                    gateway: self.gateway,
                    dns: self.dns,
                    dns_count: self.dns_count,
                });
            }
            None if self.gateway.is_some() || self.dns_count > 0 => {
                return Err(ParseError {
                    line: self.dns_line,
                    reason: "gateway and dns only go with a static address (DHCP supplies its own)",
                })
            }
            None => {}
        }
        Ok(settings)
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

/// Dotted quad, each part 0..=255 in decimal without leading zeros.
pub fn parse_ipv4(s: &[u8]) -> Option<Ipv4> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for slot in out.iter_mut() {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut value: u16 = 0;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + (b - b'0') as u16;
        }
        *slot = u8::try_from(value).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `a.b.c.d/prefix` with prefix 1..=32.
pub fn parse_cidr(s: &[u8]) -> Option<(Ipv4, u8)> {
    let slash = s.iter().position(|&b| b == b'/')?;
    let ip = parse_ipv4(&s[..slash])?;
    let prefix = &s[slash + 1..];
    if prefix.is_empty() || prefix.len() > 2 || !prefix.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let prefix = prefix.iter().fold(0u8, |v, &b| v * 10 + (b - b'0'));
    (1..=32).contains(&prefix).then_some((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_settings_means_dhcp_everywhere() {
        let s = parse(b"# nothing\n\n").unwrap();
        assert_eq!(s.ipv4_static, None);
        assert!(s.wants(b"eth0") && s.wants(b"enp1s0"));
    }

    #[test]
    fn static_configuration() {
        let s = parse(
            b"interface eth0\naddress 192.168.1.10/24\ngateway 192.168.1.1\ndns 1.1.1.1\ndns 9.9.9.9\n",
        )
        .unwrap();
        assert!(s.wants(b"eth0") && !s.wants(b"eth1"));
        let st = s.ipv4_static.unwrap();
        assert_eq!((st.address, st.prefix), ([192, 168, 1, 10], 24));
        assert_eq!(st.gateway, Some([192, 168, 1, 1]));
        assert_eq!(&st.dns[..st.dns_count], &[[1, 1, 1, 1], [9, 9, 9, 9]]);
    }

    #[test]
    fn refuses_what_would_be_silently_wrong() {
        let cases: &[(&[u8], usize)] = &[
            (b"interfaces eth0\n", 1),
            (b"interface\n", 1),
            (b"interface a/b\n", 1),
            (b"interface 0123456789abcdef\n", 1),
            (b"interface eth0\ninterface eth0\n", 2),
            (b"interface eth0\naddress 10.0.0.1\n", 2),
            (b"interface eth0\naddress 10.0.0.256/8\n", 2),
            (b"interface eth0\naddress 10.0.0.1/33\n", 2),
            (b"interface eth0\naddress 010.0.0.1/8\n", 2),
            (b"address 10.0.0.1/8\n", 0),
            (b"interface a\ninterface b\naddress 10.0.0.1/8\n", 0),
            (b"dns 1.1.1.1\n", 1),
            (b"interface e\naddress 1.2.3.4/8\ndns 1.1.1.1\ndns 1.1.1.2\ndns 1.1.1.3\ndns 1.1.1.4\n", 6),
            (b"ntp a\nntp b\nntp c\nntp d\n", 4),
            (b"ntp off\nntp a\n", 2),
            (b"ntp a\nntp off\n", 2),
            (b"ntp bad_name\n", 1),
            (b"ntp -a.org\n", 1),
            (b"ntp aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org\n", 1),
        ];
        for (text, line) in cases {
            let e = parse(text).expect_err(core::str::from_utf8(text).unwrap());
            assert_eq!(
                e.line,
                *line,
                "{:?}: {}",
                core::str::from_utf8(text),
                e.reason
            );
        }
    }

    #[test]
    fn time_servers() {
        let s = parse(b"ntp pool.ntp.org\nntp 10.77.0.1\n").unwrap();
        let names: std::vec::Vec<&[u8]> = s.ntp().iter().map(|h| h.as_bytes()).collect();
        assert_eq!(names, [&b"pool.ntp.org"[..], b"10.77.0.1"]);
        assert!(!s.ntp_off);
        let off = parse(b"ntp off\n").unwrap();
        assert!(off.ntp_off && off.ntp().is_empty());
        let none = parse(b"").unwrap();
        assert!(!none.ntp_off && none.ntp().is_empty());
        for good in [&b"a"[..], b"x-1.example", b"pool.ntp.org."] {
            assert!(valid_host_name(good), "{good:?}");
        }
        for bad in [&b""[..], b".", b"a..b", b"a-.org", b"a b", &[b'a'; 64][..]] {
            assert!(!valid_host_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn ipv4_parsing_bounds() {
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some([0; 4]));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some([255; 4]));
        for bad in [
            &b"1.2.3"[..],
            b"1.2.3.4.5",
            b"1..3.4",
            b"1.2.3.4 ",
            b"-1.2.3.4",
            b"1.2.3.1000",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }
}
