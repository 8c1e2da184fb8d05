//! A device's channel settings: the file `imgtool mkimg` writes from the `[update]` table of
//! the appliance file and admind reads, to follow a release channel (`crate::release`).
//!
//! Path on the device: [`PATH`]. Text, one setting per line:
//!
//! ```text
//! # comment
//! url https://10.0.2.2:8443/channel   the channel: https, an IP address (no DNS resolver
//!                                     on the device), an optional port, a path
//! pin sha256//BASE64                  the server's key (SHA-256 of its SubjectPublicKeyInfo,
//!                                     curl's --pinnedpubkey spelling): the only key trusted
//! poll 3600                           seconds between checks (at least 10)
//! jitter 600                          up to this many seconds more, spread by device
//! window 02:00-05:00                  optional: reboot into an update only then (UTC; may
//!                                     wrap past midnight)
//! ```
//!
//! Without the file the device follows no channel. Unknown keys are errors.

use crate::encoding::base64_decode;

pub const PATH: &str = "/etc/rustkrazy/channel";
/// Fewer seconds between checks is refused: a fleet must not hammer its server.
pub const POLL_SECONDS_MIN: u32 = 10;

/// The settings; `url`'s parts borrow the file's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings<'a> {
    pub address: core::net::IpAddr,
    pub port: u16,
    /// The channel's folder on the server, starting with '/', without a trailing '/'.
    pub path: &'a str,
    pub pin: [u8; 32],
    pub poll_seconds: u32,
    pub jitter_seconds: u32,
    /// Minutes after midnight UTC: [start, end).
    pub window: Option<(u16, u16)>,
}

/// Why the file was rejected; `line` is 1-based (0: the file as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
}

/// `https://ADDRESS[:PORT]/PATH` as (address, port, path).
pub fn parse_url(url: &str) -> Option<(core::net::IpAddr, u16, &str)> {
    let rest = url.strip_prefix("https://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse().ok()?),
        _ => (authority, 443),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let path = path.trim_end_matches('/');
    if path
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'?' || b == b'#')
    {
        return None;
    }
    Some((host.parse().ok()?, port, path))
}

/// `HH:MM-HH:MM` as minutes after midnight.
fn parse_window(text: &str) -> Option<(u16, u16)> {
    let minute = |t: &str| {
        let (h, m) = t.split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && t.len() == 5).then_some(h * 60 + m)
    };
    let (start, end) = text.split_once('-')?;
    Some((minute(start)?, minute(end)?)).filter(|(s, e)| s != e)
}

/// Whether `minute` (after midnight UTC) lies in `window`.
pub fn in_window(window: Option<(u16, u16)>, minute: u16) -> bool {
    match window {
        None => true,
        Some((start, end)) if start < end => (start..end).contains(&minute),
        Some((start, end)) => minute >= start || minute < end,
    }
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Settings<'_>, ParseError> {
    let mut url = None;
    let mut pin = None;
    let mut poll = None;
    let mut jitter = 0;
    let mut window = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        let error = |reason| ParseError {
            line: i + 1,
            reason,
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(' ')
            .ok_or(error("expected `<key> <value>`"))?;
        let value = value.trim();
        match key {
            "url" => url = Some(parse_url(value).ok_or(error(
                "a channel is https://ADDRESS[:PORT]/PATH, with an IP address (the device has no DNS resolver)",
            ))?),
            "pin" => {
                let mut out = [0u8; 33];
                let decoded = value
                    .strip_prefix("sha256//")
                    .and_then(|b| base64_decode(b.as_bytes(), &mut out))
                    .filter(|&n| n == 32)
                    .ok_or(error("a pin is sha256// and the base64 of 32 bytes"))?;
                let mut key = [0u8; 32];
                key.copy_from_slice(&out[..decoded]);
                pin = Some(key);
            }
            "poll" => {
                poll = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|&s| s >= POLL_SECONDS_MIN)
                        .ok_or(error("poll is a whole number of seconds, at least 10"))?,
                )
            }
            "jitter" => {
                jitter = value
                    .parse()
                    .map_err(|_| error("jitter is a whole number of seconds"))?
            }
            "window" => {
                window = Some(
                    parse_window(value)
                        .ok_or(error("a window is HH:MM-HH:MM (UTC), start and end differing"))?,
                )
            }
            _ => return Err(error("unknown key: url, pin, poll, jitter and window are known")),
        }
    }
    let whole = |reason| ParseError { line: 0, reason };
    let (address, port, path) = url.ok_or(whole("no url line"))?;
    Ok(Settings {
        address,
        port,
        path,
        pin: pin.ok_or(whole("no pin line: the server's key must be pinned"))?,
        poll_seconds: poll.unwrap_or(3600),
        jitter_seconds: jitter,
        window,
    })
}

/// Whether a device whose identity hashes to `identity_hash` takes a release offered to
/// `rollout` percent of devices: the same devices first at every release, each in its
/// own place in the order.
pub fn in_rollout(identity_hash: &[u8; 32], rollout: u8) -> bool {
    u16::from_le_bytes([identity_hash[0], identity_hash[1]]) % 100 < u16::from(rollout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_file_and_names_the_bad_line() {
        let pin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let text = format!(
            "# c\nurl https://10.0.2.2:8443/ch/\npin {pin}\npoll 60\njitter 5\nwindow 23:00-01:30\n"
        );
        let s = parse(&text).unwrap();
        assert_eq!(s.address, core::net::IpAddr::from([10, 0, 2, 2]));
        assert_eq!((s.port, s.path), (8443, "/ch"));
        assert_eq!((s.poll_seconds, s.jitter_seconds), (60, 5));
        assert_eq!(s.window, Some((23 * 60, 90)));
        assert!(in_window(s.window, 0) && in_window(s.window, 23 * 60));
        assert!(!in_window(s.window, 90) && !in_window(s.window, 12 * 60));
        assert_eq!(
            parse_url("https://[::1]/c"),
            Some(("::1".parse().unwrap(), 443, "/c"))
        );
        for (bad, line) in [
            ("url http://10.0.2.2/c\n", 1),
            ("url https://example.com/c\n", 1),
            (&format!("url https://1.2.3.4/\npin {pin}\npoll 5\n"), 3),
            ("pin sha256//AAAA\n", 1),
            ("window 25:00-01:00\n", 1),
            ("speed 3\n", 1),
            (&format!("pin {pin}\n"), 0),
        ] {
            assert_eq!(parse(bad).unwrap_err().line, line, "{bad}");
        }
    }
}
