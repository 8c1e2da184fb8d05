//! How a program says it is healthy, so a trial is committed only when it is: written as
//! `ready = "..."` in the appliance file and `<service> ready ...` in the services file
//! ([`crate::services`]), checked by admind before it commits a trial.
//!
//! ```text
//! tcp 80               a connection to port 80 on the device itself is accepted
//! http 80 /healthz     GET /healthz on that port answers 2xx
//! running 10           it has run 10 seconds without exiting
//! ```

use core::fmt;

/// One program's readiness check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness<'a> {
    Tcp {
        port: u16,
    },
    /// `path` starts with `/` and holds no space or control character.
    Http {
        port: u16,
        path: &'a str,
    },
    Running {
        seconds: u32,
    },
}

/// Longest HTTP path accepted (it goes into one request line).
pub const PATH_BYTES_MAX: usize = 256;

/// Parses a check as written above; `None` for anything else.
pub fn parse(text: &str) -> Option<Readiness<'_>> {
    let mut words = text.split(' ');
    let check = match (words.next()?, words.next()?, words.next()) {
        ("tcp", port, None) => Readiness::Tcp {
            port: port_of(port)?,
        },
        ("http", port, Some(path)) => {
            let plain = path.starts_with('/')
                && path.len() <= PATH_BYTES_MAX
                && path.bytes().all(|b| b.is_ascii_graphic());
            Readiness::Http {
                port: port_of(port)?,
                path: plain.then_some(path)?,
            }
        }
        ("running", seconds, None) => Readiness::Running {
            seconds: seconds.parse().ok().filter(|s| (1..=3600).contains(s))?,
        },
        _ => return None,
    };
    words.next().is_none().then_some(check)
}

fn port_of(text: &str) -> Option<u16> {
    text.parse().ok().filter(|&p| p != 0)
}

impl fmt::Display for Readiness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::Tcp { port } => write!(f, "tcp {port}"),
            Readiness::Http { port, path } => write!(f, "http {port} {path}"),
            Readiness::Running { seconds } => write!(f, "running {seconds}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_round_trip() {
        for (text, check) in [
            ("tcp 80", Readiness::Tcp { port: 80 }),
            (
                "http 8080 /healthz?deep=1",
                Readiness::Http {
                    port: 8080,
                    path: "/healthz?deep=1",
                },
            ),
            ("running 10", Readiness::Running { seconds: 10 }),
        ] {
            assert_eq!(parse(text), Some(check), "{text}");
            assert_eq!(check.to_string(), text);
        }
    }

    #[test]
    fn refuses_what_is_not_a_check() {
        for bad in [
            "",
            "tcp",
            "tcp 0",
            "tcp 65536",
            "tcp 80 81",
            "http 80",
            "http 80 healthz",
            "http 80 /a b",
            "running 0",
            "running 3601",
            "udp 53",
            "tcp  80",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
