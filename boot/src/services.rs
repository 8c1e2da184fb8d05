//! Per-service settings: the file `imgtool mkimg` writes into the root image and `init` reads.
//!
//! Path on the device: [`PATH`]. Text, one setting per line:
//!
//! ```text
//! # comment
//! <service> arg <value>         one argument, appended in order (argv[1..])
//! <service> env <KEY>=<value>   one environment variable
//! <service> autostart no        do not start on boot (yes is the default)
//! <service> user root|<id>      run as root, or as user and group <id> (default: its own)
//! <service> caps <name> ...     capabilities kept as that user (names: `sandbox`)
//! <service> memory <bytes>      memory limit (default: a share of RAM)
//! <service> tasks <n>           limit on processes and threads (default: 1024)
//! <service> oom <-1000..1000>   OOM score adjustment (default: 0)
//! <service> ready <check>       when a trial may be committed (`readiness`; default: at once)
//! ```
//!
//! The defaults and how init applies them: [`crate::sandbox`].
//!
//! `<service>` is the program's name in /bin. The value is the rest of the line after a single
//! space, verbatim (it may hold spaces); it cannot hold a newline or NUL, which the host refuses.
//! Unknown keys are errors, so a typo does not silently drop a setting.

/// Where the file lives in the root image.
pub const PATH: &str = "/etc/rustkrazy/services";

/// One parsed setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting<'a> {
    Arg(&'a [u8]),
    Env(&'a [u8]),
    Autostart(bool),
    /// The user and group id; 0 is root.
    User(u32),
    /// Capability set, bit n for capability n.
    Caps(u64),
    MemoryBytes(u64),
    Tasks(u32),
    Oom(i16),
    Ready(crate::readiness::Readiness<'a>),
}

/// One line that carries a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub service: &'a [u8],
    pub setting: Setting<'a>,
}

/// Why a line was rejected; carries the 1-based line number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than two fields, or a service name outside [`valid_service_name`].
    Malformed { line: usize },
    /// A key other than arg, env, autostart.
    UnknownKey { line: usize },
    /// `env` without `=`, or an empty key.
    BadEnv { line: usize },
    /// `autostart` with a value other than yes/no.
    BadAutostart { line: usize },
    /// `user`, `memory`, `tasks` or `oom` with a value out of range or not a number.
    BadNumber { line: usize },
    /// `caps` naming something that is not a capability.
    BadCapability { line: usize },
    /// `ready` with something that is not a check (`crate::readiness`).
    BadReadiness { line: usize },
}

/// Largest services file init reads; imgtool refuses to write a larger one.
pub const FILE_BYTES_MAX: usize = 16 << 10;

/// Longest service name accepted (it becomes a file name under /bin, /run/log and /data).
pub const SERVICE_NAME_BYTES_MAX: usize = 64;

/// Service names: 1..=64 bytes of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn valid_service_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= SERVICE_NAME_BYTES_MAX
        && name[0] != b'.'
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Whether a value can be stored in the file (no newline, no NUL).
pub fn valid_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| b == b'\n' || b == b'\0')
}

/// Iterates over the settings in `text`, skipping blank lines and comments.
pub fn parse(text: &[u8]) -> Parser<'_> {
    Parser {
        rest: text,
        line: 0,
    }
}

/// Iterator returned by [`parse`].
pub struct Parser<'a> {
    rest: &'a [u8],
    line: usize,
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let end = self
                .rest
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(self.rest.len());
            let line = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
            self.line += 1;
            let trimmed = trim_start(line);
            if trimmed.is_empty() || trimmed[0] == b'#' {
                continue;
            }
            return Some(parse_line(line, self.line));
        }
        None
    }
}

fn trim_start(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    &line[start..]
}

fn split_field(line: &[u8]) -> (&[u8], Option<&[u8]>) {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    }
}

fn parse_line(line: &[u8], number: usize) -> Result<Entry<'_>, ParseError> {
    let (service, rest) = split_field(line);
    let rest = rest.ok_or(ParseError::Malformed { line: number })?;
    if !valid_service_name(service) {
        return Err(ParseError::Malformed { line: number });
    }
    let (key, value) = split_field(rest);
    let value = value.unwrap_or(&[]);
    let setting = match key {
        b"arg" => Setting::Arg(value),
        b"env" => match value.iter().position(|&b| b == b'=') {
            Some(eq) if eq > 0 => Setting::Env(value),
            _ => return Err(ParseError::BadEnv { line: number }),
        },
        b"autostart" => match value {
            b"yes" => Setting::Autostart(true),
            b"no" => Setting::Autostart(false),
            _ => return Err(ParseError::BadAutostart { line: number }),
        },
        b"user" if value == b"root" => Setting::User(0),
        // (uid_t)-1 is no user: setuid refuses it.
        b"user" => Setting::User(number_in(value, 0..=(u32::MAX - 1).into(), number)? as u32),
        b"caps" => Setting::Caps(
            crate::sandbox::capability_set(value)
                .map_err(|_| ParseError::BadCapability { line: number })?,
        ),
        b"memory" => Setting::MemoryBytes(number_in(value, 1..=i64::MAX, number)? as u64),
        b"tasks" => {
            Setting::Tasks(number_in(value, 1..=crate::sandbox::TASKS_MAX.into(), number)? as u32)
        }
        b"oom" => Setting::Oom(number_in(value, -1000..=1000, number)? as i16),
        b"ready" => Setting::Ready(
            core::str::from_utf8(value)
                .ok()
                .and_then(crate::readiness::parse)
                .ok_or(ParseError::BadReadiness { line: number })?,
        ),
        _ => return Err(ParseError::UnknownKey { line: number }),
    };
    Ok(Entry { service, setting })
}

/// A decimal number (optionally negative) within `range`.
fn number_in(
    value: &[u8],
    range: core::ops::RangeInclusive<i64>,
    line: usize,
) -> Result<i64, ParseError> {
    core::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| range.contains(n))
        .ok_or(ParseError::BadNumber { line })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_line() {
        let text = b"# header\n\nweb arg --listen\nweb arg a b  c\nweb env RUST_LOG=info\nbatch autostart no\nweb arg \n";
        let got: [_; 5] = core::array::from_fn({
            let mut it = parse(text);
            move |_| it.next().unwrap().unwrap()
        });
        assert_eq!(
            got[0],
            Entry {
                service: b"web",
                setting: Setting::Arg(b"--listen")
            }
        );
        assert_eq!(got[1].setting, Setting::Arg(b"a b  c"));
        assert_eq!(got[2].setting, Setting::Env(b"RUST_LOG=info"));
        assert_eq!(
            got[3],
            Entry {
                service: b"batch",
                setting: Setting::Autostart(false)
            }
        );
        assert_eq!(got[4].setting, Setting::Arg(b""));
        assert!(parse(text).nth(5).is_none());
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        let first_error = |text: &[u8]| parse(text).find_map(|r| r.err());
        assert_eq!(
            first_error(b"web\n"),
            Some(ParseError::Malformed { line: 1 })
        );
        assert_eq!(
            first_error(b"\nw/b arg x"),
            Some(ParseError::Malformed { line: 2 })
        );
        assert_eq!(
            first_error(b"web args x"),
            Some(ParseError::UnknownKey { line: 1 })
        );
        assert_eq!(
            first_error(b"web env NOEQUALS"),
            Some(ParseError::BadEnv { line: 1 })
        );
        assert_eq!(
            first_error(b"web env =v"),
            Some(ParseError::BadEnv { line: 1 })
        );
        assert_eq!(
            first_error(b"web autostart maybe"),
            Some(ParseError::BadAutostart { line: 1 })
        );
    }

    #[test]
    fn parses_the_confinement_settings() {
        let settings: Vec<Setting> = parse(
            b"web user root\nweb user 20000\nweb caps net_bind_service kill\nweb memory 67108864\nweb tasks 16\nweb oom -900\nweb ready tcp 80\n",
        )
        .map(|e| e.unwrap().setting)
        .collect();
        assert_eq!(
            settings,
            [
                Setting::User(0),
                Setting::User(20000),
                Setting::Caps(1 << 10 | 1 << 5),
                Setting::MemoryBytes(64 << 20),
                Setting::Tasks(16),
                Setting::Oom(-900),
                Setting::Ready(crate::readiness::Readiness::Tcp { port: 80 }),
            ]
        );
        let first_error = |text: &[u8]| parse(text).find_map(|r| r.err());
        for bad in [
            &b"web user nobody"[..],
            b"web user -1",
            b"web memory 0",
            b"web memory 1G",
            b"web tasks 0",
            b"web tasks 4194305",
            b"web user 4294967295",
            b"web oom 1001",
            b"web oom",
        ] {
            assert_eq!(
                first_error(bad),
                Some(ParseError::BadNumber { line: 1 }),
                "{bad:?}"
            );
        }
        assert_eq!(
            first_error(b"web caps net_bind_service cap_kill"),
            Some(ParseError::BadCapability { line: 1 })
        );
        assert_eq!(
            first_error(b"web ready udp 53"),
            Some(ParseError::BadReadiness { line: 1 })
        );
    }

    #[test]
    fn service_names() {
        assert!(valid_service_name(b"admind"));
        assert!(valid_service_name(b"my-app_2.0"));
        assert!(!valid_service_name(b""));
        assert!(!valid_service_name(b".hidden"));
        assert!(!valid_service_name(b"a/b"));
        assert!(!valid_service_name(&[b'a'; 65]));
    }
}
