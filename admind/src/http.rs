//! A minimal HTTP/1.1 server side of our own: request heads parsed with named limits,
//! Content-Length and chunked bodies streamed through a bounded reader, keep-alive, and
//! responses with a known length. Everything read from the client is bounded in size and
//! time; anything malformed is an [`HttpError`] with the status to answer before closing.

use std::io::{self, Read, Write};

/// Largest request head (request line + headers).
pub const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Most header lines.
pub const HEADERS_MAX: usize = 32;
/// Longest chunk-size line of a chunked body (hex size and extensions).
const CHUNK_LINE_BYTES_MAX: usize = 256;
/// Most trailer bytes after the last chunk.
const TRAILER_BYTES_MAX: usize = 4 * 1024;

/// Why a request was refused: the status to answer, and a reason for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub reason: String,
}

impl HttpError {
    pub fn new(status: u16, reason: impl Into<String>) -> HttpError {
        HttpError {
            status,
            reason: reason.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path without the query.
    pub path: String,
    /// Percent-decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: BodyKind,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Index just past the blank line ending a head in `buf`, if it holds one.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete request head (through its blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
    let bad = |why: &str| HttpError::new(400, why);
    if head.len() > HEAD_BYTES_MAX {
        return Err(HttpError::new(431, "request head larger than 8 KiB"));
    }
    let text = std::str::from_utf8(head).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("malformed method"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Err(HttpError::new(
                505,
                "only HTTP/1.1 and HTTP/1.0 are spoken here",
            ))
        }
    };
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("the request target must be an absolute path"));
    }
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path).ok_or(bad("bad percent-encoding in the path"))?;
    let mut query = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k =
            percent_decode(&k.replace('+', " ")).ok_or(bad("bad percent-encoding in the query"))?;
        let v =
            percent_decode(&v.replace('+', " ")).ok_or(bad("bad percent-encoding in the query"))?;
        query.push((k, v));
    }

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == HEADERS_MAX {
            return Err(HttpError::new(431, "more than 32 header lines"));
        }
        let (name, value) = line.split_once(':').ok_or(bad("header line without ':'"))?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
        {
            return Err(bad("malformed header name"));
        }
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        if value.bytes().any(|b| b < b' ' && b != b'\t') {
            return Err(bad("control character in a header value"));
        }
        headers.push((name.to_ascii_lowercase(), value.to_string()));
    }

    let values = |n: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(h, _)| h == n)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let lengths = values("content-length");
    let codings = values("transfer-encoding");
    let body = match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => BodyKind::None,
        ([v], []) => {
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("malformed Content-Length"));
            }
            BodyKind::Length(v.parse().map_err(|_| bad("malformed Content-Length"))?)
        }
        ([], [v]) => {
            if !v.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::new(
                    501,
                    "only the chunked transfer coding is supported",
                ));
            }
            BodyKind::Chunked
        }
        // Several lengths, or length and chunked together, are how requests get smuggled.
        _ => {
            return Err(bad(
                "conflicting Content-Length / Transfer-Encoding headers",
            ))
        }
    };
    let connection: Vec<String> = values("connection")
        .iter()
        .map(|v| v.to_ascii_lowercase())
        .collect();
    let keep_alive = if http11 {
        !connection.iter().any(|v| v.contains("close"))
    } else {
        connection.iter().any(|v| v.contains("keep-alive"))
    };
    Ok(Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body,
        keep_alive,
    })
}

/// %XX decoding; `None` for a broken escape or a result that is not UTF-8 or holds NUL.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Decodes standard base64 (with padding), as in `Authorization: Basic`.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (n, quad) in s.chunks(4).enumerate() {
        let last = n == s.len() / 4 - 1;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &quad[..4 - pad] {
            acc = acc << 6 | value(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Reads a request body of either kind, never more than the client declared and never more
/// than `limit` in all; errors are `InvalidData` with a reason.
pub struct Body<'a, R: Read> {
    inner: &'a mut Buffered<R>,
    kind: BodyKind,
    /// Left in the current chunk (or in the whole body for Length).
    left: u64,
    done: bool,
    total: u64,
    limit: u64,
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

impl<'a, R: Read> Body<'a, R> {
    pub fn new(inner: &'a mut Buffered<R>, kind: BodyKind, limit: u64) -> Body<'a, R> {
        let (left, done) = match kind {
            BodyKind::None => (0, true),
            BodyKind::Length(n) => (n, n == 0),
            BodyKind::Chunked => (0, false),
        };
        Body {
            inner,
            kind,
            left,
            done,
            total: 0,
            limit,
        }
    }

    /// Bytes of body delivered so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Reads and discards the rest (up to the limit), so the connection can be reused.
    pub fn drain(&mut self) -> io::Result<()> {
        let mut scratch = [0u8; 4096];
        while self.read(&mut scratch)? > 0 {}
        Ok(())
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        if self.total > 0 || self.left > 0 {
            // CRLF after the previous chunk's data.
            let crlf = self.inner.read_line(4)?;
            if !crlf.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
        let line = self.inner.read_line(CHUNK_LINE_BYTES_MAX)?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .map_err(|_| invalid("bad chunk size"))?
            .trim();
        if size.is_empty() || size.len() > 15 {
            return Err(invalid("bad chunk size"));
        }
        self.left = u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if self.left == 0 {
            // Trailers, then the blank line.
            let mut trailer_bytes = 0;
            loop {
                let line = self.inner.read_line(TRAILER_BYTES_MAX)?;
                trailer_bytes += line.len() + 2;
                if line.is_empty() {
                    break;
                }
                if trailer_bytes > TRAILER_BYTES_MAX {
                    return Err(invalid("trailers too large"));
                }
            }
            self.done = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.kind == BodyKind::Chunked && self.left == 0 {
            self.next_chunk()?;
            if self.done {
                return Ok(0);
            }
        }
        if self.total >= self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "body over the limit",
            ));
        }
        let want = self.left.min(buf.len() as u64).min(self.limit - self.total) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client stopped mid-body",
            ));
        }
        self.left -= n as u64;
        self.total += n as u64;
        if self.kind != BodyKind::Chunked && self.left == 0 {
            self.done = true;
        }
        Ok(n)
    }
}

/// A reader with a small buffer, for heads and chunk lines.
pub struct Buffered<R: Read> {
    pub inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> Buffered<R> {
    pub fn new(inner: R) -> Buffered<R> {
        Buffered {
            inner,
            buf: vec![0u8; HEAD_BYTES_MAX].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Whether bytes are waiting (a pipelined request).
    pub fn has_buffered(&self) -> bool {
        self.start < self.end
    }

    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.inner.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Reads a request head. `Ok(None)`: the client closed before sending anything.
    pub fn read_head(&mut self) -> Result<Option<Request>, HttpError> {
        loop {
            if let Some(end) = head_end(&self.buf[self.start..self.end]) {
                let head = &self.buf[self.start..self.start + end];
                let request = parse_head(head);
                self.start += end;
                return request.map(Some);
            }
            if self.end - self.start >= HEAD_BYTES_MAX {
                return Err(HttpError::new(431, "request head larger than 8 KiB"));
            }
            match self.fill() {
                Ok(0) if self.start == self.end => return Ok(None),
                Ok(0) => return Err(HttpError::new(400, "connection closed mid-head")),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    return Err(HttpError::new(408, "request head not received in time"))
                }
                Err(_) => return Ok(None),
            }
        }
    }

    /// One CRLF-terminated line of at most `max` bytes, without the CRLF.
    fn read_line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some(at) = window.windows(2).position(|w| w == b"\r\n") {
                let line = window[..at].to_vec();
                self.start += at + 2;
                return Ok(line);
            }
            if window.len() > max {
                return Err(invalid("line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
        }
    }
}

impl<R: Read> Read for Buffered<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            // Large reads bypass the buffer.
            return self.inner.read(out);
        }
        let n = (self.end - self.start).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a response head; the body (exactly `length` bytes) follows from the caller.
pub fn write_head(
    out: &mut (impl Write + ?Sized),
    status: u16,
    content_type: &str,
    length: u64,
    keep_alive: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nCache-Control: no-store\r\n",
        status_text(status)
    );
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

/// A whole response with a small body.
pub fn respond(
    out: &mut (impl Write + ?Sized),
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    write_head(
        out,
        status,
        content_type,
        body.len() as u64,
        keep_alive,
        extra,
    )?;
    out.write_all(body)?;
    out.flush()
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Request, HttpError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_what_curl_sends() {
        let r = head("POST /update/root?x=a%20b&mode=try HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nAuthorization: Basic cnVzdGtyYXp5OnB3\r\n\r\n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/update/root")
        );
        assert_eq!(r.param("x"), Some("a b"));
        assert_eq!(r.param("mode"), Some("try"));
        assert_eq!(r.body, BodyKind::Length(12));
        assert!(r.keep_alive);
        assert_eq!(r.header("host"), Some("h"));
        let r = head("GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        let r = head("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!((r.body, r.keep_alive), (BodyKind::Chunked, false));
    }

    #[test]
    fn refuses_malformed_heads_with_the_right_status() {
        let cases = [
            ("GET /\r\n\r\n", 400),
            ("get / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/2\r\n\r\n", 505),
            ("GET http://x/ HTTP/1.1\r\n\r\n", 400),
            ("GET /%zz HTTP/1.1\r\n\r\n", 400),
            ("GET /%00 HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
            ),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ];
        for (text, status) in cases {
            assert_eq!(head(text).unwrap_err().status, status, "{text:?}");
        }
        let many: String = (0..40).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            head(&format!("GET / HTTP/1.1\r\n{many}\r\n"))
                .unwrap_err()
                .status,
            431
        );
    }

    fn read_body(raw: &[u8], kind: BodyKind, limit: u64) -> io::Result<Vec<u8>> {
        let mut b = Buffered::new(raw);
        let mut body = Body::new(&mut b, kind, limit);
        let mut out = Vec::new();
        body.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn bodies_by_length_and_chunked() {
        assert_eq!(
            read_body(b"hello world!", BodyKind::Length(5), 100).unwrap(),
            b"hello"
        );
        let chunked = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        assert_eq!(
            read_body(chunked, BodyKind::Chunked, 100).unwrap(),
            b"hello, world"
        );
        assert!(
            read_body(b"hel", BodyKind::Length(5), 100).is_err(),
            "short body"
        );
        assert!(read_body(b"5\r\nhelloXX0\r\n\r\n", BodyKind::Chunked, 100).is_err());
        assert!(read_body(b"zz\r\n", BodyKind::Chunked, 100).is_err());
        assert!(read_body(b"fffffffffffffffff\r\n", BodyKind::Chunked, 100).is_err());
        let err = read_body(&[b'a'; 200], BodyKind::Length(200), 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let err = read_body(b"80\r\n", BodyKind::Chunked, 100);
        assert!(err.is_err());
    }

    #[test]
    fn base64_and_json() {
        assert_eq!(base64_decode("cnVzdGtyYXp5OnB3").unwrap(), b"rustkrazy:pw");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        for bad in ["YQ=", "Y===", "YQ==YQ==", "Y*==", "YQ"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
        assert_eq!(json_string("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\u0001\"");
    }

    /// A bounded fuzz: pseudo-random mutations of valid requests never panic, and whatever
    /// parses respects the limits.
    #[test]
    fn fuzzed_heads_and_bodies_never_panic() {
        let seeds: [&[u8]; 3] = [
            b"POST /update/root?mode=try HTTP/1.1\r\nContent-Length: 5\r\nAuthorization: Basic cnVzdGtyYXp5OnB3\r\n\r\nhello",
            b"POST /data/write?path=a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"GET /logs?service=link&stream=stdout HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut input = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 8) {
                if input.is_empty() {
                    break;
                }
                let at = (next() as usize) % input.len().max(1);
                match next() % 4 {
                    0 => input[at] = next() as u8,
                    1 => {
                        input.insert(at, next() as u8);
                    }
                    2 if input.len() > 1 => {
                        input.remove(at);
                    }
                    _ => input.truncate(at),
                }
            }
            let mut reader = Buffered::new(&input[..]);
            if let Ok(Some(req)) = reader.read_head() {
                assert!(req.headers.len() <= HEADERS_MAX);
                let mut body = Body::new(&mut reader, req.body, 64);
                let mut sink = Vec::new();
                let _ = body.read_to_end(&mut sink);
                assert!(sink.len() <= 64);
            }
        }
    }
}
