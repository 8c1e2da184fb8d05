//! The connection loop: one connection at a time, each bounded in time. A client gets
//! [`HANDSHAKE_TIMEOUT`] for TLS and [`HEAD_TIMEOUT`] per request head; a body must keep
//! moving at [`PROGRESS_BYTES_MIN`] per [`PROGRESS_WINDOW`]. So a silent or trickling
//! client holds the server for seconds, not forever.

use crate::api::{After, Api};
use crate::http::{self, BodyKind, Buffered, HttpError};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
pub const PROGRESS_WINDOW: Duration = Duration::from_secs(5);
pub const PROGRESS_BYTES_MIN: u64 = 16 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection whose reads honour a deadline or a minimum rate.
pub struct Conn {
    tls: StreamOwned<ServerConnection, TcpStream>,
    deadline: Option<Instant>,
    window_start: Instant,
    window_bytes: u64,
}

fn timed_out(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, why.to_string())
}

impl Conn {
    fn set_deadline(&mut self, after: Duration) {
        self.deadline = Some(Instant::now() + after);
    }

    /// Body mode: no deadline, but a minimum rate.
    fn set_progress(&mut self) {
        self.deadline = None;
        self.window_start = Instant::now();
        self.window_bytes = 0;
    }

    fn arm_timeout(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let wait = match self.deadline {
            Some(d) if now >= d => return Err(timed_out("deadline passed")),
            Some(d) => d - now,
            None => {
                if now.duration_since(self.window_start) >= PROGRESS_WINDOW {
                    if self.window_bytes < PROGRESS_BYTES_MIN {
                        return Err(timed_out("the client sends too slowly"));
                    }
                    self.window_start = now;
                    self.window_bytes = 0;
                }
                PROGRESS_WINDOW - now.duration_since(self.window_start)
            }
        };
        self.tls
            .sock
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.arm_timeout()?;
            match self.tls.read(buf) {
                Ok(n) => {
                    self.window_bytes += n as u64;
                    return Ok(n);
                }
                // A read timeout fires per window; the next round decides if that is fatal.
                Err(e) if http::is_timeout(&e) && self.deadline.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush()
    }
}

/// Serves forever.
pub fn serve(listener: TcpListener, config: Arc<ServerConfig>, api: &mut Api) {
    for stream in listener.incoming() {
        match stream {
            Ok(tcp) => {
                let after = handle(tcp, &config, api);
                match after {
                    Some(After::Reboot) => log_signal(api, false),
                    Some(After::PowerOff) => log_signal(api, true),
                    None => {}
                }
            }
            Err(e) => {
                eprintln!("admind: accept failed: {e}");
                // Out of descriptors or memory: do not spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn log_signal(api: &Api, power_off: bool) {
    let what = if power_off { "power off" } else { "reboot" };
    match api.device.signal_init(power_off) {
        Ok(()) => println!("admind: asked init to {what}"),
        Err(e) => eprintln!("admind: cannot ask init to {what}: {}", e.reason),
    }
}

fn handle(tcp: TcpStream, config: &Arc<ServerConfig>, api: &mut Api) -> Option<After> {
    let peer = tcp
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
    let connection = ServerConnection::new(Arc::clone(config)).ok()?;
    let mut conn = Conn {
        tls: StreamOwned::new(connection, tcp),
        deadline: None,
        window_start: Instant::now(),
        window_bytes: 0,
    };
    conn.set_deadline(HANDSHAKE_TIMEOUT);
    while conn.tls.conn.is_handshaking() {
        let step = conn
            .arm_timeout()
            .and_then(|_| conn.tls.conn.complete_io(&mut conn.tls.sock));
        if let Err(e) = step {
            println!("admind: {peer}: TLS handshake failed: {e}");
            return None;
        }
    }
    let mut reader = Buffered::new(conn);
    loop {
        reader.inner.set_deadline(HEAD_TIMEOUT);
        let req = match reader.read_head() {
            Ok(Some(req)) => req,
            Ok(None) => return None,
            Err(e) => {
                println!("admind: {peer}: refused: {} {}", e.status, e.reason);
                refuse(&mut reader.inner, &e);
                return None;
            }
        };
        let started = Instant::now();
        let limit = api.body_limit(&req);
        if let BodyKind::Length(n) = req.body {
            if n > limit {
                let e = HttpError::new(413, format!("{} takes at most {limit} bytes", req.path));
                println!("admind: {peer}: {} {} 413", req.method, req.path);
                refuse(&mut reader.inner, &e);
                return None;
            }
        }
        if let Some(reply) = api.authenticate(&req) {
            println!(
                "admind: {peer}: {} {} {}",
                req.method, req.path, reply.status
            );
            // Unread body bytes would be taken for the next request: close instead.
            let _ = http::respond(
                &mut reader.inner,
                reply.status,
                reply.content_type,
                &reply.body,
                false,
                &[("WWW-Authenticate", "Basic realm=\"rustkrazy\"")],
            );
            return None;
        }
        reader.inner.set_progress();
        let streams = req.method == "GET" || req.method == "HEAD";
        let (reply, body_done, received) = if streams {
            if !matches!(req.body, BodyKind::None | BodyKind::Length(0)) {
                refuse(
                    &mut reader.inner,
                    &HttpError::new(400, "GET requests carry no body"),
                );
                return None;
            }
            (
                api.handle(&req, &mut io::empty(), &mut reader.inner),
                true,
                0,
            )
        } else {
            let mut body = http::Body::new(&mut reader, req.body, limit);
            let reply = api.handle(&req, &mut body, &mut io::sink());
            // Anything left over must be read so the next request starts in the right place;
            // after an error the connection closes instead.
            let ok = reply.as_ref().is_some_and(|r| r.status < 400) && body.drain().is_ok();
            (reply, ok && body.is_done(), body.total())
        };
        let keep = req.keep_alive && body_done;
        let mut after = None;
        match reply {
            Some(reply) => {
                println!(
                    "admind: {peer}: {} {} {} ({received} bytes in, {} ms)",
                    req.method,
                    req.path,
                    reply.status,
                    started.elapsed().as_millis()
                );
                let keep = keep && reply.after.is_none();
                if http::respond(
                    &mut reader.inner,
                    reply.status,
                    reply.content_type,
                    &reply.body,
                    keep,
                    &[],
                )
                .is_err()
                {
                    return None;
                }
                if reply.after.is_some() || !keep {
                    reader.inner.tls.conn.send_close_notify();
                    let _ = reader.inner.flush();
                    return reply.after;
                }
                after = reply.after;
            }
            None => println!(
                "admind: {peer}: {} {} 200 (streamed, {} ms)",
                req.method,
                req.path,
                started.elapsed().as_millis()
            ),
        }
        if !keep {
            return after;
        }
    }
}

/// Answers with an error and closes.
fn refuse(conn: &mut Conn, e: &HttpError) {
    let body = format!("{{\"error\":{}}}\n", http::json_string(&e.reason));
    let _ = http::respond(
        conn,
        e.status,
        "application/json",
        body.as_bytes(),
        false,
        &[],
    );
    conn.tls.conn.send_close_notify();
    let _ = conn.flush();
}
