//! A minimal HTTP/1.1 server side of our own: request heads parsed with named limits,
//! Content-Length and chunked bodies streamed through a bounded reader, keep-alive, and
//! responses with a known length. Everything read from the client is bounded in size and
//! time; anything malformed is an [`Refusal`] with the status to answer before closing.

use crate::fault::{Fault, Kind};
use std::fs::File;
use std::io::{self, Write};

/// Largest request head (request line + headers).
pub const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Most header lines.
pub const HEADERS_MAX: usize = 32;
// The refusals name these numbers.
const _: () = assert!(HEAD_BYTES_MAX == 8 * 1024 && HEADERS_MAX == 32);
/// Longest chunk-size line of a chunked body (hex size and extensions).
const CHUNK_LINE_BYTES_MAX: usize = 256;
/// Most trailer bytes after the last chunk.
const TRAILER_BYTES_MAX: usize = 4 * 1024;

/// Why a request was refused: the status to answer, and a reason for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

pub fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

impl From<std::io::Error> for Refusal {
    fn from(e: std::io::Error) -> Refusal {
        Fault::from(e).into()
    }
}

/// Where only the reason is kept (the channel follower's messages).
impl From<Refusal> for String {
    fn from(r: Refusal) -> String {
        r.reason
    }
}

impl From<Fault> for Refusal {
    fn from(f: Fault) -> Refusal {
        let status = match f.kind {
            Kind::Invalid => 400,
            Kind::Forbidden => 403,
            Kind::Conflict => 409,
            Kind::Failed => 500,
            Kind::Unavailable => 503,
        };
        refuse(status, f.reason)
    }
}

/// Text from a request as it goes into a log line: control characters (a decoded `%1b` or
/// `%0a` in a path, C1 controls) are written as `\xNN` or `\u{NNNN}`, so a client cannot
/// forge log lines or send escape sequences to the console.
pub struct Shown<'a>(pub &'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                c if c.is_ascii_control() => write!(f, "\\x{:02x}", c as u32)?,
                c if c.is_control() => write!(f, "\\u{{{:04x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
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
    /// `Expect: 100-continue`: the client waits for an interim answer before its body.
    pub expects_continue: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Index just past the blank line ending a head in `buf`, if it holds one.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete request head (through its blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, Refusal> {
    let bad = |why: &str| refuse(400, why);
    if head.len() > HEAD_BYTES_MAX {
        return Err(refuse(431, "request head larger than 8 KiB"));
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
        _ => return Err(refuse(505, "only HTTP/1.1 and HTTP/1.0 are spoken here")),
    };
    let (path, query) = parse_target(target)?;
    let headers = parse_headers(lines)?;
    let values = |n: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(h, _)| h == n)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let body = body_kind(&values("content-length"), &values("transfer-encoding"))?;
    let connection: Vec<String> = values("connection")
        .iter()
        .map(|v| v.to_ascii_lowercase())
        .collect();
    let keep_alive = if http11 {
        !connection.iter().any(|v| v.contains("close"))
    } else {
        connection.iter().any(|v| v.contains("keep-alive"))
    };
    // RFC 9110 10.1.1: 100-continue is the one expectation there is; HTTP/1.0 has none.
    let expects_continue = match values("expect").as_slice() {
        [] => false,
        _ if !http11 => false,
        [v] if v.eq_ignore_ascii_case("100-continue") => true,
        _ => {
            return Err(refuse(
                417,
                "the only expectation understood is \"Expect: 100-continue\"",
            ))
        }
    };
    Ok(Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body,
        keep_alive,
        expects_continue,
    })
}

/// The request target's path and query pairs, percent-decoded.
fn parse_target(target: &str) -> Result<(String, Vec<(String, String)>), Refusal> {
    let bad = |why: &str| refuse(400, why);
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
    Ok((path, query))
}

/// The header lines up to the blank one: (lowercase name, trimmed value), at most
/// [`HEADERS_MAX`].
fn parse_headers<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, Refusal> {
    let bad = |why: &str| refuse(400, why);
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == HEADERS_MAX {
            return Err(refuse(431, "more than 32 header lines"));
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
    Ok(headers)
}

/// How the body is framed, from the Content-Length and Transfer-Encoding values.
fn body_kind(lengths: &[String], codings: &[String]) -> Result<BodyKind, Refusal> {
    let bad = |why: &str| refuse(400, why);
    Ok(match (lengths, codings) {
        ([], []) => BodyKind::None,
        ([v], []) => {
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("malformed Content-Length"));
            }
            BodyKind::Length(v.parse().map_err(|_| bad("malformed Content-Length"))?)
        }
        ([], [v]) => {
            if !v.eq_ignore_ascii_case("chunked") {
                return Err(refuse(501, "only the chunked transfer coding is supported"));
            }
            BodyKind::Chunked
        }
        // Several lengths, or length and chunked together, are how requests get smuggled.
        _ => {
            return Err(bad(
                "conflicting Content-Length / Transfer-Encoding headers",
            ))
        }
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

/// Decodes a request body of either kind as its bytes arrive: never more than the client
/// declared, never more than `limit` in all. Push-based, so the event loop can feed it
/// whatever a socket gave and hand the body on in pieces.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    chunked: bool,
    /// Left in the current chunk (or in the whole body for Length).
    left: u64,
    step: Step,
    total: u64,
    limit: u64,
    trailer_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Data bytes (`left` of them) come next.
    Data,
    /// A chunk-size line comes next.
    ChunkSize,
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines up to a blank one.
    Trailers,
    Done,
}

/// What one [`BodyDecoder::decode`] call found: input bytes used and body bytes in them.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub consumed: usize,
    /// Range of the input holding body data (empty when the call only read framing).
    pub data: std::ops::Range<usize>,
}

impl BodyDecoder {
    pub fn new(kind: BodyKind, limit: u64) -> BodyDecoder {
        let (chunked, left, step) = match kind {
            BodyKind::None | BodyKind::Length(0) => (false, 0, Step::Done),
            BodyKind::Length(n) => (false, n, Step::Data),
            BodyKind::Chunked => (true, 0, Step::ChunkSize),
        };
        BodyDecoder {
            chunked,
            left,
            step,
            total: 0,
            limit,
            trailer_bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// Body bytes decoded so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Decodes from the front of `input`. Call again with the rest while `consumed > 0`;
    /// `consumed == 0` means more input is needed (or the body is done).
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, Refusal> {
        let none = |consumed| Decoded {
            consumed,
            data: 0..0,
        };
        let bad = |why: &str| refuse(400, why);
        match self.step {
            Step::Done => Ok(none(0)),
            Step::Data => {
                if self.total >= self.limit {
                    return Err(refuse(413, "body over the limit"));
                }
                let n = (input.len() as u64)
                    .min(self.left)
                    .min(self.limit - self.total) as usize;
                self.left -= n as u64;
                self.total += n as u64;
                if self.left == 0 {
                    self.step = if self.chunked {
                        Step::ChunkEnd
                    } else {
                        Step::Done
                    };
                }
                Ok(Decoded {
                    consumed: n,
                    data: 0..n,
                })
            }
            Step::ChunkEnd => match input.get(..2) {
                None if input.first().is_none_or(|&b| b == b'\r') => Ok(none(0)),
                Some(b"\r\n") => {
                    self.step = Step::ChunkSize;
                    Ok(none(2))
                }
                _ => Err(bad("chunk data not followed by CRLF")),
            },
            Step::ChunkSize => {
                let Some((text, used)) = line(input, CHUNK_LINE_BYTES_MAX)? else {
                    return Ok(none(0));
                };
                let size = text.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size)
                    .map_err(|_| bad("bad chunk size"))?
                    .trim();
                if size.is_empty() || size.len() > 15 {
                    return Err(bad("bad chunk size"));
                }
                self.left = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                self.step = if self.left == 0 {
                    Step::Trailers
                } else {
                    Step::Data
                };
                Ok(none(used))
            }
            Step::Trailers => {
                let Some((text, used)) = line(input, TRAILER_BYTES_MAX)? else {
                    return Ok(none(0));
                };
                self.trailer_bytes += used;
                if self.trailer_bytes > TRAILER_BYTES_MAX {
                    return Err(bad("trailers too large"));
                }
                if text.is_empty() {
                    self.step = Step::Done;
                }
                Ok(none(used))
            }
        }
    }
}

/// A CRLF-terminated line at the front of `input` (without the CRLF) and the bytes it
/// takes; `None` until it is complete; an error once `max` bytes pass without one.
fn line(input: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, Refusal> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(at) => Ok(Some((&input[..at], at + 2))),
        None if input.len() > max => Err(refuse(400, "line too long in a chunked body")),
        None => Ok(None),
    }
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
        417 => "Expectation Failed",
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

/// The outcome of a handler that did not stream its own answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Action to take once the answer is out (reboot, power off).
    pub after: Option<After>,
    /// Files sent one after another as the body, each exactly this long (`body` is empty).
    pub files: Vec<(File, u64)>,
}

impl Reply {
    /// Length of the body as announced in the head.
    pub fn length(&self) -> u64 {
        if self.files.is_empty() {
            self.body.len() as u64
        } else {
            self.files.iter().map(|(_, len)| len).sum()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Reboot,
    PowerOff,
}

/// The body of an upload's answer (`admin_api::endpoints::Stored`).
pub fn stored(slot: Option<u8>, bytes: u64, sha256: &[u8; 32], build: Option<&[u8; 32]>) -> String {
    let answer = admin_api::endpoints::Stored {
        slot,
        bytes,
        sha256: boot::encoding::Hex(sha256).to_string(),
        build: build.map(|b| boot::encoding::Hex(b).to_string()),
    };
    admin_api::json::Json::to_json(&answer) + "\n"
}

pub fn json(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: body.into_bytes(),
        after: None,
        files: Vec::new(),
    }
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Reply {
        json(
            r.status,
            format!("{{\"error\":{}}}\n", admin_api::json::string(&r.reason)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_text_shows_control_characters_escaped() {
        let req =
            parse_head(b"GET /data/a%1b[2J%0aadmind:%20forged%c2%85\\ HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            Shown(&req.path).to_string(),
            "/data/a\\x1b[2J\\x0aadmind: forged\\u{0085}\\\\"
        );
    }

    fn head(text: &str) -> Result<Request, Refusal> {
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
        assert!(!r.expects_continue);
        let r = head("POST /x HTTP/1.1\r\nContent-Length: 9\r\nExpect: 100-Continue\r\n\r\n");
        assert!(r.unwrap().expects_continue);
        let r = head("POST /x HTTP/1.0\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n");
        assert!(!r.unwrap().expects_continue);
    }

    #[test]
    fn refuses_malformed_heads_with_the_right_status() {
        let cases = [
            ("GET /\r\n\r\n", 400),
            ("get / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/2\r\n\r\n", 505),
            ("GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417),
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

    /// Decodes `raw` fed in pieces of `step` bytes (as a socket might deliver it).
    fn read_body_in(
        raw: &[u8],
        kind: BodyKind,
        limit: u64,
        step: usize,
    ) -> Result<Vec<u8>, Refusal> {
        let mut d = BodyDecoder::new(kind, limit);
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for piece in raw.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            loop {
                let got = d.decode(&pending)?;
                out.extend_from_slice(&pending[got.data.clone()]);
                pending.drain(..got.consumed);
                if got.consumed == 0 {
                    break;
                }
            }
        }
        if !d.is_done() {
            return Err(refuse(400, "the client stopped mid-body"));
        }
        Ok(out)
    }

    fn read_body(raw: &[u8], kind: BodyKind, limit: u64) -> Result<Vec<u8>, Refusal> {
        let whole = read_body_in(raw, kind, limit, raw.len());
        for step in [1, 2, 3, 7] {
            assert_eq!(
                read_body_in(raw, kind, limit, step),
                whole,
                "pieces of {step}"
            );
        }
        whole
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
        assert_eq!(err.status, 413);
        let err = read_body(b"80\r\n", BodyKind::Chunked, 100);
        assert!(err.is_err());
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
            if let Some(end) = head_end(&input) {
                if let Ok(req) = parse_head(&input[..end]) {
                    assert!(req.headers.len() <= HEADERS_MAX);
                    let mut d = BodyDecoder::new(req.body, 64);
                    let mut rest = &input[end..];
                    let mut total = 0;
                    while let Ok(got) = d.decode(rest) {
                        total += got.data.len();
                        rest = &rest[got.consumed..];
                        if got.consumed == 0 {
                            break;
                        }
                    }
                    assert!(total <= 64);
                }
            }
        }
    }
}
