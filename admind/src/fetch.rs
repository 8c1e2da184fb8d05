//! One HTTPS GET on a non-blocking socket that the event loop polls beside its clients:
//! admind's side of following a channel (`crate::follow`). TLS 1.3 to a server whose key
//! is pinned (`admin_api::pinning`), HTTP/1.1 with `Connection: close`. The answer must be
//! 200 with a Content-Length of at most the caller's limit, and must keep moving: nothing
//! for [`STALL_TIMEOUT`] gives it up.

use rustix::fd::IntoRawFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustls::ClientConnection;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server that sends nothing for this long is given up.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// However it trickles, an answer must come at this rate on average (after a
/// [`STALL_TIMEOUT`] of grace for connecting and the handshake).
pub const RATE_MIN_BYTES_PER_S: u64 = 16 * 1024;
/// The most bytes of an answer's head.
const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Socket reads per step, so a fast server cannot starve the loop's clients.
const READS_PER_STEP_MAX: usize = 16;

pub struct Fetch {
    tcp: TcpStream,
    tls: ClientConnection,
    /// `GET PATH`, for messages.
    what: String,
    received: Vec<u8>,
    /// Once the head is in: where the body starts and how long it is.
    body: Option<(usize, usize)>,
    limit: usize,
    /// The server has closed its side.
    closed: bool,
    /// When the server is given up: [`STALL_TIMEOUT`] without a byte, or the whole
    /// answer's time at [`RATE_MIN_BYTES_PER_S`] past.
    pub deadline: Instant,
    give_up: Instant,
}

impl Fetch {
    /// Connects (without waiting) and queues the request; `limit`: the largest body taken.
    pub fn start(
        server: SocketAddr,
        tls: &Arc<rustls::ClientConfig>,
        path: &str,
        limit: usize,
    ) -> Result<Fetch, String> {
        let what = format!("GET https://{server}{path}");
        let family = match server {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)
            .map_err(|e| format!("{what}: no socket: {e}"))?;
        // SAFETY: the descriptor was just made and is owned by nothing else from here on.
        let tcp = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
        match rustix::net::connect(borrow(&tcp), &server) {
            Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
            Err(e) => return Err(format!("{what}: cannot connect: {e}")),
        }
        let name = rustls::pki_types::ServerName::IpAddress(server.ip().into());
        let mut tls = ClientConnection::new(Arc::clone(tls), name)
            .map_err(|e| format!("{what}: TLS: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {server}\r\nUser-Agent: rustkrazy-admind\r\nConnection: close\r\n\r\n"
        );
        io::Write::write_all(&mut tls.writer(), request.as_bytes())
            .map_err(|e| format!("{what}: {e}"))?;
        Ok(Fetch {
            tcp,
            tls,
            what,
            received: Vec::new(),
            body: None,
            limit,
            closed: false,
            deadline: Instant::now() + STALL_TIMEOUT,
            give_up: Instant::now()
                + STALL_TIMEOUT
                + Duration::from_secs(limit as u64 / RATE_MIN_BYTES_PER_S),
        })
    }

    pub fn socket(&self) -> rustix::fd::BorrowedFd<'_> {
        borrow(&self.tcp)
    }

    /// Whether it waits to send (else only to receive).
    pub fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Moves what can move now; `Some(body)` once the whole answer is in.
    pub fn step(&mut self, now: Instant) -> Result<Option<Vec<u8>>, String> {
        let moved = self.pump().map_err(|e| format!("{}: {e}", self.what))?;
        if moved {
            self.deadline = (now + STALL_TIMEOUT).min(self.give_up);
        }
        if self.body.is_none() {
            self.read_head()?;
        }
        if let Some((start, len)) = self.body {
            if self.received.len() >= start + len {
                self.received.truncate(start + len);
                self.received.drain(..start);
                return Ok(Some(std::mem::take(&mut self.received)));
            }
        }
        let ended = !moved && self.closed;
        if ended || now >= self.deadline {
            let got = match self.body {
                Some((start, len)) => {
                    format!("{} of {len} body bytes", self.received.len() - start)
                }
                None => format!("{} bytes and no whole head", self.received.len()),
            };
            let why = if ended {
                "the server closed the connection"
            } else {
                "the server stalled"
            };
            return Err(format!("{}: {why} after {got}", self.what));
        }
        Ok(None)
    }
}

impl Fetch {
    /// Sends and receives what the socket takes now; whether anything moved.
    fn pump(&mut self) -> io::Result<bool> {
        let mut moved = self.send()?;
        for _ in 0..READS_PER_STEP_MAX {
            if self.closed {
                break;
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => self.closed = true,
                Ok(_) => moved = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            self.tls
                .process_new_packets()
                .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
            let mut buf = [0u8; 16 * 1024];
            loop {
                match self.tls.reader().read(&mut buf) {
                    Ok(0) => {
                        self.closed = true;
                        break;
                    }
                    Ok(n) if self.received.len() + n > HEAD_BYTES_MAX + self.limit => {
                        return Err(io::Error::other(format!(
                            "the answer is over {} bytes",
                            self.limit
                        )))
                    }
                    Ok(n) => self.received.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        self.closed = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            moved |= self.send()?;
        }
        Ok(moved)
    }

    /// Hands rustls' records to the socket while it takes them.
    fn send(&mut self) -> io::Result<bool> {
        let mut moved = false;
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(_) => moved = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Reads the answer's head once it is whole: 200, and the body's length.
    fn read_head(&mut self) -> Result<(), String> {
        let what = &self.what;
        let end = self.received.windows(4).position(|w| w == b"\r\n\r\n");
        let Some(end) = end.filter(|&e| e <= HEAD_BYTES_MAX) else {
            if self.received.len() > HEAD_BYTES_MAX {
                return Err(format!(
                    "{what}: the answer's head is over {HEAD_BYTES_MAX} bytes"
                ));
            }
            return Ok(());
        };
        let head = String::from_utf8_lossy(&self.received[..end]);
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default();
        if first.strip_prefix("HTTP/1.").and_then(|l| l.get(2..5)) != Some("200") {
            let shown: String = first.chars().take(64).collect();
            return Err(format!("{what}: the server answered {shown:?}"));
        }
        let mut length = None;
        for (name, value) in lines.filter_map(|l| l.split_once(':')) {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            }
            if name.eq_ignore_ascii_case("transfer-encoding") && value != "identity" {
                let shown: String = value.chars().take(32).collect();
                return Err(format!("{what}: the server sent Transfer-Encoding {shown:?}; a channel is static files, served with a Content-Length"));
            }
        }
        let len = length.ok_or_else(|| format!("{what}: the answer has no Content-Length"))?;
        if len > self.limit {
            return Err(format!(
                "{what}: the answer is {len} bytes; at most {} are taken",
                self.limit
            ));
        }
        self.body = Some((end + 4, len));
        self.received
            .reserve_exact((end + 4 + len).saturating_sub(self.received.len()));
        Ok(())
    }
}

/// rustix's view of a std socket (admind builds rustix without its `std` feature, which
/// would reach init and link through feature unification).
pub fn borrow(socket: &impl std::os::fd::AsRawFd) -> rustix::fd::BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `socket`, which outlives the returned borrow.
    unsafe { rustix::fd::BorrowedFd::borrow_raw(socket.as_raw_fd()) }
}
