//! Talking to a device's admind: TLS 1.3 pinned to the key the device showed on first
//! contact (`known_devices`), HTTP Basic with the instance's password, one request per
//! connection. `push` builds on it.

use crate::instance::Instance;
use crate::known_devices::KnownDevices;
use admin_api::cert::Pin;
use admin_api::pinning::{self, KeyPin};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes written between progress updates.
const UPLOAD_CHUNK_BYTES: usize = 256 * 1024;
/// Largest response head accepted.
const RESPONSE_HEAD_BYTES_MAX: usize = 64 * 1024;
/// Largest response read into memory (logs, status).
const RESPONSE_BYTES_MAX: u64 = 64 << 20;

pub struct Client {
    /// What the user gave (for messages) and where it resolved to.
    pub target: String,
    addr: SocketAddr,
    /// `target` with its port: what `known_devices` pins a key for.
    address: String,
    instance_dir: PathBuf,
    pin: Arc<KeyPin>,
    /// No key was pinned for `address`: the first handshake pins one.
    first_contact: Mutex<bool>,
    config: Arc<rustls::ClientConfig>,
    authorization: String,
}

/// The device showed another key than the one pinned for its address: nothing was sent,
/// and waiting will not help (push stops at once).
#[derive(Debug)]
pub struct KeyChanged(String);

impl std::fmt::Display for KeyChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyChanged {}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or an error naming the status and what admind said.
    pub fn json(&self) -> Result<serde_json::Value> {
        self.document()
    }

    /// The body as a document `admin_api` defines (e.g. `/status`).
    pub fn document<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        if self.status != 200 {
            bail!("admind answered {}: {}", self.status, self.error_text());
        }
        serde_json::from_slice(&self.body)
            .context("admind's answer is not the JSON this imgtool expects")
    }

    /// admind's `{"error": ...}` text, or the raw body.
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| self.text().trim().to_string())
    }
}

/// The device's address with its port, as `known_devices` files it: `to` (HOST or
/// HOST:PORT) or, without it, the instance's hostname, port [`admin_api::PORT`].
pub fn address(instance: &Instance, to: Option<&str>) -> String {
    let target = to.unwrap_or(&instance.hostname);
    if target.parse::<SocketAddr>().is_ok()
        || target
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
    {
        target.to_string()
    } else if target.starts_with('[') && target.ends_with(']') {
        format!("{target}:{}", admin_api::PORT)
    } else if target.contains(':') {
        format!("[{target}]:{}", admin_api::PORT)
    } else {
        format!("{target}:{}", admin_api::PORT)
    }
}

impl Client {
    /// A client for the appliance of `instance`, at `to` (HOST or HOST:PORT) or, without
    /// it, at the instance's hostname, port [`admin_api::PORT`].
    pub fn new(instance: &Instance, to: Option<&str>) -> Result<Client> {
        let with_port = address(instance, to);
        let target = to.map_or_else(|| instance.hostname.clone(), str::to_string);
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| {
                format!(
                    "cannot resolve {with_port} (give the device's address with --to HOST[:PORT])"
                )
            })?
            .next()
            .ok_or_else(|| anyhow!("{with_port} resolves to no address"))?;
        let pinned = KnownDevices::open(&instance.dir)?.get(&with_port);
        let pin = KeyPin::new(pinned);
        let config = pinning::pinned_client_config(Arc::clone(&pin)).map_err(|e| anyhow!(e))?;
        Ok(Client {
            target,
            addr,
            address: with_port,
            instance_dir: instance.dir.clone(),
            pin,
            first_contact: Mutex::new(pinned.is_none()),
            config: Arc::new(config),
            authorization: format!(
                "Basic {}",
                boot::encoding::Base64(
                    format!("{}:{}", admin_api::endpoints::USER, instance.password).as_bytes()
                )
            ),
        })
    }

    fn connect(&self) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        let tcp = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)
            .with_context(|| format!("cannot connect to admind at {}", self.addr))?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let _ = tcp.set_nodelay(true);
        // The name only goes into SNI; trust comes from the pinned certificate.
        let name = rustls::pki_types::ServerName::try_from("rustkrazy")
            .map_err(|e| anyhow!("server name: {e}"))?;
        let conn = rustls::ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| anyhow!("TLS: {e}"))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
                return Err(self.handshake_failed(e));
            }
        }
        // The key this connection's handshake proved (rustls fills this in only after the
        // certificate and the signature checked out), pinned on first contact, else
        // compared under the same lock, so that no two connections can pin two keys.
        let proved = stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| admin_api::cert::certificate_pin(c.as_ref()))
            .ok_or_else(|| anyhow!("the device's handshake named no P-256 key"))?;
        let mut first_contact = self.first_contact.lock().unwrap_or_else(|e| e.into_inner());
        if *first_contact {
            self.pin.expect(proved);
            let mut known = KnownDevices::open(&self.instance_dir)?;
            known.pin(&self.address, proved)?;
            *first_contact = false;
            eprintln!(
                "imgtool: first contact with {}: pinned its key {} in {} (its console printed \
                 the key it made on first boot: they should match)",
                self.address,
                Pin(&proved),
                known.path().display()
            );
        } else if let Some(want) = self.pin.expected().filter(|&want| want != proved) {
            return Err(self.key_changed(proved, want));
        }
        Ok(stream)
    }

    /// What a failed handshake means; for a key other than the pinned one, what to check.
    fn handshake_failed(&self, e: std::io::Error) -> anyhow::Error {
        match (self.pin.presented(), self.pin.expected()) {
            (Some(got), Some(want)) if got != want => self.key_changed(got, want),
            _ => anyhow!("TLS handshake with {} failed: {e}", self.addr),
        }
    }

    fn key_changed(&self, got: [u8; 32], want: [u8; 32]) -> anyhow::Error {
        anyhow::Error::new(KeyChanged(format!(
            "the device at {address} presented key {got}, but this instance pinned {want} for \
             that address on first contact ({dir}/known-devices); nothing was sent. If the \
             device was reflashed or lost its /data partition, it made a new key: check that \
             its console printed {got}, then run `imgtool forget --instance {dir} --to \
             {address}` and try again. Otherwise another machine answers at that address, or \
             someone is intercepting the connection.",
            address = self.address,
            got = Pin(&got),
            want = Pin(&want),
            dir = self.instance_dir.display(),
        )))
    }

    pub fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, &[], &[], false)
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Result<Response> {
        self.request("POST", path, &[], body, false)
    }

    /// One request; `progress` draws an upload bar on stderr.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        progress: bool,
    ) -> Result<Response> {
        let mut stream = self.connect()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n",
            self.target, self.authorization,
        );
        if method != "GET" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        let started = Instant::now();
        let mut sent = 0usize;
        for chunk in body.chunks(UPLOAD_CHUNK_BYTES) {
            stream.write_all(chunk).context("upload interrupted")?;
            sent += chunk.len();
            if progress {
                draw_progress(sent, body.len(), started.elapsed());
            }
        }
        stream.flush()?;
        if progress {
            eprintln!();
        }
        read_response(&mut stream)
    }
}

fn draw_progress(done: usize, total: usize, elapsed: Duration) {
    let width = 30;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    let mib = |n: usize| n as f64 / (1 << 20) as f64;
    let rate = mib(done) / elapsed.as_secs_f64().max(0.001);
    eprint!(
        "\rupload [{}{}] {:.1}/{:.1} MiB {:.1} MiB/s ",
        "#".repeat(filled),
        " ".repeat(width - filled),
        mib(done),
        mib(total),
        rate
    );
}

fn read_response(stream: &mut impl Read) -> Result<Response> {
    let mut data = Vec::new();
    // rustls reports a peer that closes without close_notify as an error; admind sends it,
    // so treat an error after a complete response as the end.
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).context("reading admind's answer")?;
        if n == 0 {
            bail!("admind closed the connection without answering");
        }
        data.extend_from_slice(&buf[..n]);
        if data.len() > RESPONSE_HEAD_BYTES_MAX {
            bail!("admind's answer has an oversized head");
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed answer from admind: {head:?}"))?;
    let length: u64 = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| anyhow!("admind's answer has no Content-Length"))?;
    if length > RESPONSE_BYTES_MAX {
        bail!("admind's answer is larger than {RESPONSE_BYTES_MAX} bytes");
    }
    let mut body = data[head_end..].to_vec();
    while (body.len() as u64) < length {
        let n = stream.read(&mut buf).context("reading admind's answer")?;
        if n == 0 {
            bail!("admind's answer broke off");
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(length as usize);
    Ok(Response { status, body })
}
