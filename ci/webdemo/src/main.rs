//! A web page about the appliance it runs on, served on port 80: hostname, uptime, the
//! booted slot and its build id (what `imgtool push` and `imgtool status` call a build).
//! The demo appliance's user program: an example of the kind of program rustkrazy is for.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const PORT: u16 = 80;
/// Where init says which slot booted from which disk (`committed slot=2 disk=/dev/vda`).
/// A request head larger than this is not one a browser sends to this page.
const REQUEST_BYTES_MAX: usize = 8192;

fn main() {
    let listener =
        match TcpListener::bind(("::", PORT)).or_else(|_| TcpListener::bind(("0.0.0.0", PORT))) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("webdemo: cannot listen on port {PORT}: {e}");
                std::process::exit(1);
            }
        };
    println!("webdemo: serving the appliance's page on port {PORT}");
    for stream in listener.incoming().flatten() {
        // One slow client must not hold the page for everyone: short timeouts.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        if let Err(e) = answer(stream) {
            eprintln!("webdemo: {e}");
        }
    }
}

fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || request.len() + n > REQUEST_BYTES_MAX {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = if request.starts_with(b"GET / ") || request.starts_with(b"GET /index.html ") {
        "200 OK"
    } else {
        "404 Not Found"
    };
    let body = if head.starts_with("200") {
        page()
    } else {
        "not here: try /\n".to_string()
    };
    write!(
        stream,
        "HTTP/1.1 {head}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn page() -> String {
    let hostname = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "?".into());
    let uptime = read_trimmed("/proc/uptime")
        .and_then(|u| u.split('.').next()?.parse::<u64>().ok())
        .map(|s| format!("{}h {}m {}s", s / 3600, s / 60 % 60, s % 60))
        .unwrap_or_else(|| "?".into());
    let (slot, build) = booted_build().unwrap_or_else(|| ("?".into(), "?".into()));
    format!(
        "<!doctype html>\n<title>{hostname}</title>\n<h1>{hostname}</h1>\n<dl>\n\
         <dt>up</dt><dd>{uptime}</dd>\n<dt>slot</dt><dd>{slot}</dd>\n\
         <dt>build</dt><dd><code>{build}</code></dd>\n</dl>\n\
         <p>Served by webdemo, a Rust program in a rustkrazy appliance.</p>\n"
    )
}

fn read_trimmed(path: &str) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

/// The booted slot (root partition) and the build id in its trailer, as init reports them
/// (this program is not root and may not read the disk itself).
fn booted_build() -> Option<(String, String)> {
    let text = std::fs::read_to_string(boot::boot_status::PATH.to_str().ok()?).ok()?;
    let status = boot::boot_status::parse(&text)?;
    let slot = status.slot;
    Some((format!("{slot:?} (partition {})", slot.number()), status.build?.to_string()))
}
