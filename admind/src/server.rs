//! The event loop: one thread, `poll(2)` over the listener and up to [`CONNECTIONS_MAX`]
//! connections, rustls driven on non-blocking sockets (`read_tls`, `process_new_packets`,
//! `write_tls`). No client can hold the server: each connection has its own deadlines
//! ([`HANDSHAKE_TIMEOUT`] for TLS, [`HEAD_TIMEOUT`] per request head, a body must move
//! [`PROGRESS_BYTES_MIN`] per [`PROGRESS_WINDOW`], an answer must drain within
//! [`SEND_TIMEOUT`]), and when the table is full the connection not yet authenticated that
//! was heard from longest ago is dropped to make room: one that has sent nothing first, one
//! from an address that logged in lately last (a crowd of strangers arriving faster than a
//! handshake completes cannot hold the administrator out). One source address holds at most
//! [`STRANGERS_PER_SOURCE_MAX`] connections that have not authenticated, so a flood of
//! handshakes from one place takes a bounded share of every turn of the loop and of the
//! table; failed logins are throttled per source (`throttle`). Uploads are fed to the disk as their bytes arrive
//! and verified in steps (`upload`), so `/status` is answered while one runs.
//!
//! A refused request gets its 4xx before the connection closes: the answer and
//! close_notify go out, our side is shut for writing, and what the client still sends is
//! read and dropped for up to [`LINGER_TIMEOUT`] (a lingering close), so the kernel does
//! not reset the connection over unread bytes and lose the answer.
//!
//! Memory is bounded per connection: at most [`INPUT_BYTES_MAX`] of received plaintext,
//! [`OUTPUT_CHUNK_BYTES`] of answer waiting for rustls, rustls' own buffers capped at
//! [`TLS_SEND_BUFFER_BYTES`] out and one record in; [`CONNECTION_BYTES_MAX`] in all.

use crate::api::Api;
use crate::fetch::borrow;
use crate::follow::Follower;
use crate::http::{self, refuse, BodyDecoder, BodyKind, Refusal, Request, Shown};
use crate::http::{After, Reply};
use crate::routes;
use crate::throttle::Source;
use crate::upload::Upload;
use rustix::event::{PollFd, PollFlags};
use rustls::{ServerConfig, ServerConnection};
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; one more makes room by dropping the one not authenticated
/// that was heard from longest ago (see the module header for the order).
pub const CONNECTIONS_MAX: usize = 64;
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
pub const PROGRESS_WINDOW: Duration = Duration::from_secs(5);
pub const PROGRESS_BYTES_MIN: u64 = 16 * 1024;
/// An answer that does not move at all for this long is given up.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused client's remaining bytes are read and dropped.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// Plaintext kept from a client: a whole request head plus one read.
pub const INPUT_BYTES_MAX: usize = http::HEAD_BYTES_MAX + READ_BYTES;
/// Answer bytes (a file's next piece) waiting to be handed to rustls.
pub const OUTPUT_CHUNK_BYTES: usize = 16 * 1024;
/// rustls' outgoing buffer per connection.
pub const TLS_SEND_BUFFER_BYTES: usize = 32 * 1024;
/// One TLS record in, decrypted plaintext, our buffers; an upload's 256 KiB disk buffer
/// comes on top, once (one update at a time).
pub const CONNECTION_BYTES_MAX: usize =
    INPUT_BYTES_MAX + OUTPUT_CHUNK_BYTES + TLS_SEND_BUFFER_BYTES + 2 * TLS_RECORD_BYTES;
const TLS_RECORD_BYTES: usize = 16 * 1024 + 256;
/// Bytes taken from rustls or the socket per read.
const READ_BYTES: usize = 16 * 1024;
/// Socket reads per connection per turn of the loop, so one fast client cannot starve the
/// others.
const READS_PER_TURN_MAX: usize = 16;
/// New connections accepted per turn.
const ACCEPTS_PER_TURN_MAX: usize = 64;
/// Connections from one source (see `throttle::Source`) not yet authenticated; more are
/// closed as they arrive.
pub const STRANGERS_PER_SOURCE_MAX: usize = 8;
/// Addresses remembered as having logged in lately (most recent last).
const KNOWN_SOURCES_MAX: usize = 256;

/// Serves forever; follows a channel meanwhile if `follower` is given.
pub fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    api: &mut Api,
    mut follower: Option<Follower>,
) {
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("admind: cannot make the listener non-blocking: {e}");
        return;
    }
    let mut conns: Vec<Connection> = Vec::with_capacity(CONNECTIONS_MAX);
    let mut known: Vec<Source> = Vec::with_capacity(KNOWN_SOURCES_MAX + 1);
    loop {
        let now = Instant::now();
        for c in &mut conns {
            c.on_time(now);
            c.finish_step();
        }
        close_finished(&mut conns, api);
        if let Some(f) = follower.as_mut() {
            f.step(api, now);
        }

        let follower_wake = follower.as_ref().map(Follower::wake);
        let busy = conns.iter().any(Connection::has_work) || follower_wake == Some(None);
        let wake = conns
            .iter()
            .map(|c| c.deadline)
            .chain(follower_wake.flatten())
            .min();
        let timeout = match (busy, wake) {
            (true, _) => Some(Duration::ZERO),
            (false, Some(at)) => Some(at.saturating_duration_since(Instant::now())),
            (false, None) => None,
        };
        let outbound = follower.as_ref().and_then(Follower::socket);
        let (listener_ready, ready) = wait(&listener, &conns, outbound, timeout);
        if listener_ready {
            accept(&listener, &config, &mut conns, &known);
        }
        for (c, (readable, writable)) in conns.iter_mut().zip(ready) {
            if readable {
                c.on_readable(api);
            }
            if writable || readable {
                c.pump_out(api);
            }
        }
        for c in conns.iter().filter(|c| c.authenticated) {
            remember(&mut known, c.source);
        }
        close_finished(&mut conns, api);
    }
}

/// Polls the listener and every connection for what each is waiting for.
/// `outbound`: the follower's socket, and whether it waits to send; its readiness is
/// not returned, as the follower steps every turn.
fn wait(
    listener: &TcpListener,
    conns: &[Connection],
    outbound: Option<(rustix::fd::BorrowedFd<'_>, bool)>,
    timeout: Option<Duration>,
) -> (bool, Vec<(bool, bool)>) {
    let mut fds = Vec::with_capacity(conns.len() + 2);
    fds.push(PollFd::from_borrowed_fd(borrow(listener), PollFlags::IN));
    for c in conns {
        fds.push(PollFd::from_borrowed_fd(borrow(&c.tcp), c.interest()));
    }
    if let Some((fd, sending)) = outbound {
        let out = if sending {
            PollFlags::OUT
        } else {
            PollFlags::empty()
        };
        fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN | out));
    }
    let timeout = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    if let Err(e) = rustix::event::poll(&mut fds, timeout.as_ref()) {
        if e != rustix::io::Errno::INTR {
            eprintln!("admind: poll failed: {e}");
            std::thread::sleep(Duration::from_millis(100));
        }
        return (false, vec![(false, false); conns.len()]);
    }
    let gone = PollFlags::ERR | PollFlags::HUP;
    let listener_ready = !fds[0].revents().is_empty();
    let ready = fds[1..=conns.len()]
        .iter()
        .map(|f| {
            let r = f.revents();
            (
                r.intersects(PollFlags::IN | gone),
                r.contains(PollFlags::OUT),
            )
        })
        .collect();
    (listener_ready, ready)
}

/// Notes that `source` logged in; the oldest of more than [`KNOWN_SOURCES_MAX`] is forgotten.
fn remember(known: &mut Vec<Source>, source: Source) {
    if !known.contains(&source) {
        known.push(source);
        if known.len() > KNOWN_SOURCES_MAX {
            known.remove(0);
        }
    }
}

fn accept(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    conns: &mut Vec<Connection>,
    known: &[Source],
) {
    for _ in 0..ACCEPTS_PER_TURN_MAX {
        let (tcp, address) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                eprintln!("admind: accept failed: {e}");
                // Out of descriptors or memory: let the loop breathe rather than spin.
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        };
        let source = Source::of(address.ip());
        let strangers = conns
            .iter()
            .filter(|c| !c.authenticated && c.source == source)
            .count();
        if strangers >= STRANGERS_PER_SOURCE_MAX {
            drop(tcp); // closed before any TLS work; not logged, as a flood would fill the log
            continue;
        }
        if conns.len() == CONNECTIONS_MAX {
            let quietest_stranger = conns
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.authenticated)
                .min_by_key(|(_, c)| (known.contains(&c.source), c.spoke, c.heard))
                .map(|(i, _)| i);
            match quietest_stranger {
                Some(i) => {
                    let dropped = conns.swap_remove(i);
                    println!(
                        "admind: {}: dropped to make room (table full, not authenticated)",
                        dropped.peer
                    );
                }
                None => {
                    // Every seat is an authenticated client's: the newcomer waits its turn.
                    drop(tcp);
                    continue;
                }
            }
        }
        match Connection::new(tcp, address.ip(), config) {
            Ok(c) => conns.push(c),
            Err(e) => eprintln!("admind: cannot set up a connection: {e}"),
        }
    }
}

/// Removes closed connections, running what their answers asked for (reboot, power off).
fn close_finished(conns: &mut Vec<Connection>, api: &Api) {
    let mut i = 0;
    while i < conns.len() {
        if conns[i].state.is_closed() {
            let c = conns.swap_remove(i);
            if let Some(after) = c.after {
                signal_init(api, after);
            }
        } else {
            i += 1;
        }
    }
}

fn signal_init(api: &Api, after: After) {
    let power_off = after == After::PowerOff;
    let what = if power_off { "power off" } else { "reboot" };
    match api.device.signal_init(power_off) {
        Ok(()) => println!("admind: asked init to {what}"),
        Err(e) => eprintln!("admind: cannot ask init to {what}: {}", e.reason),
    }
}

/// Where a request's body goes.
enum Sink {
    /// Small bodies, handled whole once in.
    Collect(Vec<u8>),
    Upload(Box<dyn Upload>),
}

enum State {
    Handshake,
    /// Waiting for (the rest of) a request head.
    Head,
    Body {
        req: Request,
        decoder: BodyDecoder,
        sink: Sink,
        started: Instant,
    },
    /// The body is in; the upload's remaining work runs a step per turn.
    Finishing {
        req: Request,
        upload: Box<dyn Upload>,
        started: Instant,
    },
    /// An answer going out; `files` follow what rustls holds.
    Sending {
        files: Vec<(File, u64)>,
        keep: bool,
    },
    /// Refused: after the answer, read and drop what still comes.
    Lingering {
        notified: bool,
        shut: bool,
    },
    Closed,
}

impl State {
    fn is_closed(&self) -> bool {
        matches!(self, State::Closed)
    }
}

struct Connection {
    tcp: TcpStream,
    tls: ServerConnection,
    peer: String,
    source: Source,
    /// When the client last sent bytes (or connected), and whether it has sent any: one
    /// that has not is dropped first to make room.
    heard: Instant,
    spoke: bool,
    authenticated: bool,
    state: State,
    deadline: Instant,
    /// Body bytes received in the current progress window, and when it began.
    window: (Instant, u64),
    /// Plaintext received and not yet used.
    input: Vec<u8>,
    /// Answer bytes not yet taken by rustls.
    output: Vec<u8>,
    /// What to do once this connection's last answer is out.
    after: Option<After>,
}

impl Connection {
    fn new(
        tcp: TcpStream,
        ip: std::net::IpAddr,
        config: &Arc<ServerConfig>,
    ) -> io::Result<Connection> {
        tcp.set_nonblocking(true)?;
        let _ = tcp.set_nodelay(true);
        let mut tls = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        tls.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
        let now = Instant::now();
        Ok(Connection {
            tcp,
            tls,
            peer: ip.to_string(),
            source: Source::of(ip),
            heard: now,
            spoke: false,
            authenticated: false,
            state: State::Handshake,
            deadline: now + HANDSHAKE_TIMEOUT,
            window: (now, 0),
            input: Vec::new(),
            output: Vec::new(),
            after: None,
        })
    }

    /// Readiness this connection waits for.
    fn interest(&self) -> PollFlags {
        let mut flags = PollFlags::empty();
        let reads = match self.state {
            State::Handshake | State::Head | State::Body { .. } | State::Lingering { .. } => true,
            State::Finishing { .. } | State::Sending { .. } | State::Closed => false,
        };
        if reads {
            flags |= PollFlags::IN;
        }
        if self.tls.wants_write() || !self.output.is_empty() {
            flags |= PollFlags::OUT;
        }
        flags
    }

    /// Work that does not wait for the socket: an upload's finishing steps.
    fn has_work(&self) -> bool {
        matches!(self.state, State::Finishing { .. })
    }

    fn close(&mut self) {
        self.state = State::Closed;
    }

    /// Deadlines: handshake, head, body progress, a stuck answer, the end of lingering.
    fn on_time(&mut self, now: Instant) {
        if now < self.deadline {
            return;
        }
        match &self.state {
            State::Handshake => {
                println!("admind: {}: TLS handshake not done in time", self.peer);
                self.close();
            }
            State::Head if self.input.is_empty() => self.close(), // idle keep-alive
            State::Head => self.refuse(&refuse(408, "request head not received in time")),
            State::Body { .. } => {
                if self.window.1 < PROGRESS_BYTES_MIN {
                    self.refuse(&refuse(408, "the client sends too slowly"));
                } else {
                    self.window = (now, 0);
                    self.deadline = now + PROGRESS_WINDOW;
                }
            }
            State::Sending { .. } => {
                println!("admind: {}: the answer did not move in time", self.peer);
                self.close();
            }
            // Bounded work on the disk: it runs to its end.
            State::Finishing { .. } => self.deadline = now + SEND_TIMEOUT,
            State::Lingering { .. } | State::Closed => self.close(),
        }
    }

    /// Reads what the socket has, decrypts it and acts on the plaintext.
    fn on_readable(&mut self, api: &mut Api) {
        match self.state {
            State::Lingering { .. } => return self.drain_raw(),
            // Busy with an answer or an upload's last steps: the client's next bytes wait
            // in the socket (rustls' plaintext buffer must not fill up meanwhile).
            State::Sending { .. } | State::Finishing { .. } | State::Closed => return,
            State::Handshake | State::Head | State::Body { .. } => {}
        }
        for _ in 0..READS_PER_TURN_MAX {
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => return self.peer_closed(),
                Ok(_) => (self.heard, self.spoke) = (Instant::now(), true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Reset: gone as surely as a close.
                Err(_) => return self.peer_closed(),
            }
            if let Err(e) = self.tls.process_new_packets() {
                if matches!(self.state, State::Handshake) {
                    println!("admind: {}: TLS handshake failed: {e}", self.peer);
                }
                // Send the alert rustls queued, then go.
                let _ = self.tls.write_tls(&mut self.tcp);
                return self.close();
            }
            let open = self.take_plaintext();
            self.advance(api);
            if !open {
                return self.peer_closed();
            }
            if !matches!(
                self.state,
                State::Handshake | State::Head | State::Body { .. }
            ) {
                return;
            }
        }
    }

    /// Moves decrypted bytes into `input` (straight from rustls' buffer); false once the
    /// client sent close_notify.
    fn take_plaintext(&mut self) -> bool {
        while self.input.len() < INPUT_BYTES_MAX {
            let mut reader = self.tls.reader();
            let taken = match reader.fill_buf() {
                Ok([]) => return false,
                Ok(chunk) => {
                    let n = chunk.len().min(INPUT_BYTES_MAX - self.input.len());
                    self.input.extend_from_slice(&chunk[..n]);
                    n
                }
                Err(_) => break, // WouldBlock: nothing more decrypted yet
            };
            reader.consume(taken);
        }
        true
    }

    /// The client went away (or half-closed) in the middle of something.
    fn peer_closed(&mut self) {
        match &self.state {
            State::Head if !self.input.is_empty() => {
                println!("admind: {}: connection closed mid-head", self.peer);
                self.close();
            }
            State::Body { req, decoder, .. } => {
                println!(
                    "admind: {}: {} {} 400 (the client stopped after {} bytes of the body; nothing was kept)",
                    self.peer,
                    req.method,
                    Shown(&req.path),
                    decoder.total()
                );
                self.close();
            }
            // An answer or an upload's last steps still go out; a half-closed client can
            // read them.
            State::Sending { .. } | State::Finishing { .. } => {}
            _ => self.close(),
        }
    }

    /// Reads and drops whatever a refused client still sends.
    fn drain_raw(&mut self) {
        let mut scratch = [0u8; READ_BYTES];
        for _ in 0..READS_PER_TURN_MAX {
            match self.tcp.read(&mut scratch) {
                Ok(0) => return self.close(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(),
            }
        }
    }

    /// Acts on the plaintext received, as far as it goes.
    fn advance(&mut self, api: &mut Api) {
        loop {
            match &mut self.state {
                State::Handshake if !self.tls.is_handshaking() => {
                    self.state = State::Head;
                    self.deadline = Instant::now() + HEAD_TIMEOUT;
                }
                State::Head => {
                    if let Some(end) = http::head_end(&self.input) {
                        let parsed = http::parse_head(&self.input[..end]);
                        self.input.drain(..end);
                        match parsed {
                            Ok(req) => self.start_request(req, api),
                            Err(e) => return self.refuse(&e),
                        }
                    } else if self.input.len() >= http::HEAD_BYTES_MAX {
                        return self.refuse(&refuse(431, "request head larger than 8 KiB"));
                    } else {
                        return;
                    }
                }
                State::Body { .. } => {
                    if !self.feed_body(api) {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// A request head arrived: authenticate, check limits, then read its body.
    fn start_request(&mut self, req: Request, api: &mut Api) {
        // Before authentication, as a body too large for any login is refused the same.
        let limit = routes::body_limit(&req);
        if let BodyKind::Length(n) = req.body {
            if n > limit {
                let e = refuse(413, format!("{} takes at most {limit} bytes", req.path));
                return self.refuse(&e);
            }
        }
        if let Some(reply) = api.authenticate(&req, self.source) {
            let extra = [("WWW-Authenticate", "Basic realm=\"rustkrazy\"")];
            return self.answer_before_body(&req, reply, &extra);
        }
        self.authenticated = true;
        let reading = req.method == "GET" || req.method == "HEAD";
        if reading && !matches!(req.body, BodyKind::None | BodyKind::Length(0)) {
            return self.refuse(&refuse(400, "GET requests carry no body"));
        }
        let sink = match routes::begin_upload(api, &req) {
            Some(Ok(upload)) => Sink::Upload(upload),
            Some(Err(reply)) => return self.answer_before_body(&req, reply, &[]),
            None => Sink::Collect(Vec::new()),
        };
        // Everything that could refuse the body has been checked: ask for it. (curl sends
        // `Expect` for bodies over 1 MiB and, unanswered, waits a second before sending.)
        if req.expects_continue && !matches!(req.body, BodyKind::None | BodyKind::Length(0)) {
            self.output
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush_output();
        }
        let now = Instant::now();
        self.window = (now, 0);
        self.deadline = now + PROGRESS_WINDOW;
        self.state = State::Body {
            decoder: BodyDecoder::new(req.body, limit),
            req,
            sink,
            started: now,
        };
    }

    /// Feeds received bytes to the body's sink; true when the state moved on (the body
    /// is complete), false when more input is needed.
    fn feed_body(&mut self, api: &mut Api) -> bool {
        let State::Body { decoder, sink, .. } = &mut self.state else {
            return false;
        };
        let mut used = 0;
        let mut failure = None;
        while !decoder.is_done() {
            let got = match decoder.decode(&self.input[used..]) {
                Ok(got) => got,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let data = &self.input[used + got.data.start..used + got.data.end];
            self.window.1 += data.len() as u64;
            let fed = match sink {
                Sink::Collect(buf) => {
                    buf.extend_from_slice(data);
                    Ok(())
                }
                Sink::Upload(upload) => upload.write(data),
            };
            used += got.consumed;
            if let Err(r) = fed {
                failure = Some(r);
                break;
            }
            if got.consumed == 0 {
                break;
            }
        }
        self.input.drain(..used);
        if let Some(e) = failure {
            self.refuse(&e);
            return false;
        }
        if !decoder.is_done() {
            return false;
        }
        let State::Body {
            req, sink, started, ..
        } = std::mem::replace(&mut self.state, State::Head)
        else {
            return false;
        };
        match sink {
            Sink::Collect(body) => {
                let reply = routes::handle(api, &req, &body);
                self.log(&req, &reply, body.len() as u64, started);
                let keep = req.keep_alive;
                self.answer(&req, reply, keep, &[]);
            }
            Sink::Upload(upload) => {
                self.state = State::Finishing {
                    req,
                    upload,
                    started,
                };
                self.deadline = Instant::now() + SEND_TIMEOUT;
            }
        }
        true
    }

    /// One step of an upload's remaining work (sync, read-back, trailer).
    fn finish_step(&mut self) {
        let State::Finishing { upload, .. } = &mut self.state else {
            return;
        };
        let outcome = match upload.finish_step() {
            Ok(None) => return,
            Ok(Some(reply)) => reply,
            Err(r) => Reply::from(r),
        };
        let State::Finishing { req, started, .. } = std::mem::replace(&mut self.state, State::Head)
        else {
            return;
        };
        let received = match req.body {
            BodyKind::Length(n) => n,
            _ => 0,
        };
        self.log(&req, &outcome, received, started);
        let keep = req.keep_alive && outcome.status < 400;
        self.answer(&req, outcome, keep, &[]);
    }

    /// Answers before the body is read, then closes: unread body bytes would be taken for
    /// the next request.
    fn answer_before_body(&mut self, req: &Request, reply: Reply, extra: &[(&str, &str)]) {
        let (peer, path) = (&self.peer, Shown(&req.path));
        println!("admind: {peer}: {} {path} {}", req.method, reply.status);
        self.answer(req, reply, false, extra);
        self.linger();
    }

    fn log(&self, req: &Request, reply: &Reply, received: u64, started: Instant) {
        println!(
            "admind: {}: {} {} {} ({received} bytes in, {} ms)",
            self.peer,
            req.method,
            Shown(&req.path),
            reply.status,
            started.elapsed().as_millis()
        );
    }

    /// Queues an answer; `keep`: the connection stays for the next request.
    fn answer(&mut self, req: &Request, reply: Reply, keep: bool, extra: &[(&str, &str)]) {
        let keep = keep && reply.after.is_none();
        let mut head = Vec::new();
        let _ = http::write_head(
            &mut head,
            reply.status,
            reply.content_type,
            reply.length(),
            keep,
            extra,
        );
        let mut out = head;
        let mut files = Vec::new();
        if req.method != "HEAD" {
            // The body moves in behind the head, both behind what is still pending: a large
            // answer is never copied whole.
            let head = std::mem::replace(&mut out, reply.body);
            out.splice(0..0, head);
            files = reply.files;
        }
        out.splice(0..0, self.output.drain(..));
        self.output = out;
        self.after = reply.after;
        self.state = State::Sending { files, keep };
        self.deadline = Instant::now() + SEND_TIMEOUT;
    }

    /// Answers with an error, then lingers.
    fn refuse(&mut self, e: &Refusal) {
        println!(
            "admind: {}: refused: {} {}",
            self.peer,
            e.status,
            Shown(&e.reason)
        );
        let body = format!("{{\"error\":{}}}\n", admin_api::json::string(&e.reason));
        let reply = crate::http::json(e.status, body);
        let none = Request {
            method: "GET".into(),
            path: String::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: BodyKind::None,
            keep_alive: false,
            expects_continue: false,
        };
        self.answer(&none, reply, false, &[]);
        self.linger();
    }

    /// After a refusal's answer: close_notify once the answer is with rustls, our side
    /// shut once all is sent, and what the client still sends read and dropped until the
    /// deadline.
    fn linger(&mut self) {
        self.flush_output();
        self.state = State::Lingering {
            notified: false,
            shut: false,
        };
        self.deadline = Instant::now() + LINGER_TIMEOUT;
    }

    /// Hands queued answer bytes (and the next piece of a file) to rustls.
    fn flush_output(&mut self) -> bool {
        let mut moved = false;
        loop {
            while !self.output.is_empty() {
                match self.tls.writer().write(&self.output) {
                    Ok(0) | Err(_) => return moved,
                    Ok(n) => {
                        self.output.drain(..n);
                        moved = true;
                    }
                }
            }
            let State::Sending { files, keep } = &mut self.state else {
                return moved;
            };
            let Some((file, left)) = files.first_mut() else {
                return moved;
            };
            let mut chunk = vec![0u8; (*left).min(OUTPUT_CHUNK_BYTES as u64) as usize];
            match file.read(&mut chunk) {
                Ok(n) if n > 0 => {
                    chunk.truncate(n);
                    *left -= n as u64;
                    self.output = chunk;
                    if *left == 0 {
                        files.remove(0);
                    }
                }
                _ => {
                    // The file shrank below the length announced: the body cannot be
                    // completed, so the connection cannot be reused.
                    files.clear();
                    *keep = false;
                    self.after = None;
                    self.tls.send_close_notify();
                    return moved;
                }
            }
        }
    }

    /// Writes what rustls holds to the socket; moves on once an answer is fully out.
    fn pump_out(&mut self, api: &mut Api) {
        if self.state.is_closed() {
            return;
        }
        loop {
            let moved = self.flush_output();
            let mut wrote = false;
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.tcp) {
                    Ok(_) => wrote = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return self.close(),
                }
            }
            if wrote {
                // Progress resets the stuck-answer clock.
                if let State::Sending { .. } = self.state {
                    self.deadline = Instant::now() + SEND_TIMEOUT;
                }
            }
            if !(moved || wrote) || self.tls.wants_write() {
                break;
            }
        }
        if let State::Lingering { notified, .. } = &mut self.state {
            if self.output.is_empty() && !*notified {
                *notified = true;
                self.tls.send_close_notify();
                let _ = self.tls.write_tls(&mut self.tcp);
            }
        }
        let all_out = self.output.is_empty() && !self.tls.wants_write();
        match &mut self.state {
            State::Lingering {
                notified: true,
                shut,
            } if all_out && !*shut => {
                let _ = self.tcp.shutdown(Shutdown::Write);
                *shut = true;
            }
            State::Sending { files, keep } if all_out && files.is_empty() => {
                if *keep {
                    self.state = State::Head;
                    self.deadline = Instant::now() + HEAD_TIMEOUT;
                    // A pipelined request may already be here.
                    if !self.take_plaintext() {
                        return self.close();
                    }
                    self.advance(api);
                } else {
                    self.tls.send_close_notify();
                    let _ = self.tls.write_tls(&mut self.tcp);
                    self.close();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_logins_up_to_the_cap() {
        let source = |i: u32| Source::of(std::net::Ipv4Addr::from(0x0a00_0000 + i).into());
        let mut known = Vec::new();
        for i in 0..=KNOWN_SOURCES_MAX as u32 {
            remember(&mut known, source(i));
            remember(&mut known, source(i)); // once each
        }
        assert_eq!(known.len(), KNOWN_SOURCES_MAX);
        assert!(!known.contains(&source(0)), "the oldest is forgotten");
        assert!(known.contains(&source(1)) && known.contains(&source(KNOWN_SOURCES_MAX as u32)));
    }
}
