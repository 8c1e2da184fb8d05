//! Whether the programs that declared a readiness check (`boot::readiness`, in the services
//! file) pass it now: asked before a trial is committed, so a build whose program crashes or
//! never opens its port is rolled back instead of kept. Each check (connection, request and
//! answer together) is bounded by [`CHECK_TIMEOUT`], so admind's single loop is held at
//! most that long per program.

use boot::readiness::Readiness;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one check may take in all.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the checks look: the services file, /proc, and init's service list (which process
/// is which service).
pub struct Sources<'a> {
    pub config: &'a Path,
    pub proc: &'a Path,
    pub published: &'a Path,
}

/// The first program (in the services file's order) that is not ready, and why, for
/// `/commit`'s answer; `None` when every declared check passes (or none is declared).
pub fn first_not_ready(at: &Sources<'_>) -> Option<(String, String)> {
    let text = std::fs::read(at.config).unwrap_or_default();
    for entry in boot::services::parse(&text).flatten() {
        let boot::services::Setting::Ready(check) = entry.setting else {
            continue;
        };
        let name = String::from_utf8_lossy(entry.service).into_owned();
        let deadline = Instant::now() + CHECK_TIMEOUT;
        if let Err(why) = passes(&name, &check, at, deadline) {
            return Some((name, format!("{why} (its check: ready {check})")));
        }
    }
    None
}

fn passes(
    name: &str,
    check: &Readiness<'_>,
    at: &Sources<'_>,
    deadline: Instant,
) -> Result<(), String> {
    match *check {
        Readiness::Tcp { port } => connect(port, deadline).map(drop),
        Readiness::Http { port, path } => match http_status(port, path, deadline)? {
            200..=299 => Ok(()),
            status => Err(format!("GET {path} on port {port} answered {status}")),
        },
        Readiness::Running { seconds } => {
            match crate::procs::service_running_s(at.proc, at.published, name) {
                Some(ran) if ran >= u64::from(seconds) => Ok(()),
                Some(ran) => Err(format!("it has run {ran} s of the {seconds} s it needs")),
                None => Err("it is not running".into()),
            }
        }
    }
}

/// What is left until `deadline`, never zero (a zero timeout means none to std).
fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// A connection to `port` on the device, over IPv4 or else IPv6 (a program may listen on
/// either).
fn connect(port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port));
    TcpStream::connect_timeout(&v4, left(deadline)).or_else(|e4| {
        TcpStream::connect_timeout(&v6, left(deadline)).map_err(|e6| {
            format!("port {port} does not accept connections (IPv4: {e4}; IPv6: {e6})")
        })
    })
}

/// The status code of `GET path` on `port`.
fn http_status(port: u16, path: &str, deadline: Instant) -> Result<u16, String> {
    let mut stream = connect(port, deadline)?;
    let failed = |e: std::io::Error| format!("GET {path} on port {port}: {e}");
    stream
        .set_write_timeout(Some(left(deadline)))
        .map_err(failed)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    // "HTTP/1.x NNN": the first 12 bytes are enough.
    let mut head = [0u8; 12];
    let mut got = 0;
    // A server that trickles its answer gets what is left of the check, not a wait per byte.
    while got < head.len() && Instant::now() < deadline {
        stream
            .set_read_timeout(Some(left(deadline)))
            .map_err(failed)?;
        match stream.read(&mut head[got..]).map_err(failed)? {
            0 => break,
            n => got += n,
        }
    }
    let line = std::str::from_utf8(&head[..got]).unwrap_or("");
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5)?.parse().ok())
        .ok_or_else(|| format!("GET {path} on port {port}: not an HTTP answer ({line:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on a free port that answers one connection with `answer`.
    fn serve_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            }
        });
        port
    }

    fn at(config: &Path) -> Sources<'_> {
        Sources {
            config,
            proc: Path::new("/proc"),
            published: Path::new("/nonexistent"),
        }
    }

    fn check_file(lines: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "admind-ready-{}-{}",
            std::process::id(),
            lines.len()
        ));
        std::fs::write(&path, lines).unwrap();
        path
    }

    #[test]
    fn ready_when_every_declared_check_passes() {
        let ok = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = open.local_addr().unwrap().port();
        let config = check_file(&format!(
            "web ready http {ok} /healthz\nweb arg x\ndb ready tcp {tcp}\n"
        ));
        assert_eq!(first_not_ready(&at(&config)), None);
        assert_eq!(first_not_ready(&at(Path::new("/nonexistent"))), None);
    }

    #[test]
    fn names_the_first_program_that_is_not_ready_and_why() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = check_file(&format!("web ready tcp {closed}\n"));
        let (name, why) = first_not_ready(&at(&config)).unwrap();
        assert_eq!(name, "web");
        assert!(
            why.contains(&format!("port {closed} does not accept")),
            "{why}"
        );
        assert!(why.contains(&format!("ready tcp {closed}")), "{why}");

        let failing = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let config = check_file(&format!("api ready http {failing} /\n"));
        let (name, why) = first_not_ready(&at(&config)).unwrap();
        assert_eq!(
            (name.as_str(), why.contains("answered 503")),
            ("api", true),
            "{why}"
        );

        let garbage = serve_once("SSH-2.0-x\r\n");
        let config = check_file(&format!("api ready http {garbage} /\n"));
        let (_, why) = first_not_ready(&at(&config)).unwrap();
        assert!(why.contains("not an HTTP answer"), "{why}");

        let config = check_file("nosuch ready running 5\n");
        let (_, why) = first_not_ready(&at(&config)).unwrap();
        assert!(why.contains("it is not running"), "{why}");
    }
}
