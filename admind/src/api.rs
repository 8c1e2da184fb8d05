//! The endpoints: authentication, routing, and each handler. Handlers read the request
//! body through a bounded [`Body`] and answer with a status and a small JSON or text body,
//! or stream a file.

use crate::device::{refuse, Device, Refusal};
use crate::http::{self, json_string, BodyKind, Request};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// The user name (as in the seed's admind).
pub const USER: &str = "rustkrazy";
/// Failed logins allowed per [`THROTTLE_WINDOW`] before further attempts get 429.
const FAILURES_MAX: usize = 5;
const THROTTLE_WINDOW: Duration = Duration::from_secs(30);
/// Largest file /data/write accepts.
const DATA_FILE_BYTES_MAX: u64 = 1 << 30;
/// Bytes moved per read/write of a /data upload.
const DATA_BUFFER_BYTES: usize = 64 * 1024;
/// Largest body of endpoints that take none or a small one.
const SMALL_BODY_BYTES_MAX: u64 = 4096;

/// What admind keeps between requests.
pub struct Api {
    pub device: Device,
    salt: [u8; 16],
    hash: [u8; 32],
    failures: Vec<Instant>,
    started: Instant,
    temp_counter: u64,
}

/// The outcome of a handler that did not stream its own answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Action to take once the answer is out (reboot, power off).
    pub after: Option<After>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Reboot,
    PowerOff,
}

fn json(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: body.into_bytes(),
        after: None,
    }
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Reply {
        json(
            r.status,
            format!("{{\"error\":{}}}\n", json_string(&r.reason)),
        )
    }
}

fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize().into()
}

impl Api {
    /// `password_file`: the text of boot::password's file.
    pub fn new(device: Device, password_file: &str) -> Result<Api, String> {
        let (salt, hash) = boot::password::parse(password_file)
            .ok_or("the password file is not `sha256 <salt> <hash>` (see boot::password)")?;
        Ok(Api {
            device,
            salt,
            hash,
            failures: Vec::new(),
            started: Instant::now(),
            temp_counter: 0,
        })
    }

    /// `None` if the request may go on; else the refusal to send.
    pub fn authenticate(&mut self, req: &Request) -> Option<Reply> {
        let now = Instant::now();
        self.failures
            .retain(|t| now.duration_since(*t) < THROTTLE_WINDOW);
        if self.failures.len() >= FAILURES_MAX {
            let mut r = json(
                429,
                "{\"error\":\"too many failed logins; wait 30 seconds\"}\n".into(),
            );
            r.after = None;
            return Some(r);
        }
        let ok = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| http::base64_decode(b.trim()))
            .and_then(|creds| {
                let at = creds.iter().position(|&b| b == b':')?;
                let (user, password) = (&creds[..at], &creds[at + 1..]);
                // Check the password whatever the user, so timing says nothing about either.
                let password_ok =
                    boot::password::matches(&self.salt, &self.hash, password, &sha256_parts);
                Some(password_ok && user == USER.as_bytes())
            })
            .unwrap_or(false);
        if ok {
            return None;
        }
        let had_credentials = req.header("authorization").is_some();
        if had_credentials {
            self.failures.push(now);
        }
        Some(json(
            401,
            "{\"error\":\"user rustkrazy and the instance's password are needed (HTTP Basic)\"}\n"
                .into(),
        ))
    }

    /// The most body bytes `req` may send; checked before reading anything.
    pub fn body_limit(&self, req: &Request) -> u64 {
        match req.path.as_str() {
            "/update/root" => boot::rootid::image_bytes_max(&boot::layout::ROOT_A).unwrap_or(0),
            "/update/boot" => boot::layout::BOOT.size_bytes.unwrap_or(0),
            "/data/write" => DATA_FILE_BYTES_MAX,
            _ => SMALL_BODY_BYTES_MAX,
        }
    }

    /// Routes an authenticated request. Handlers that stream their answer write it to
    /// `out` and return `None`.
    pub fn handle(
        &mut self,
        req: &Request,
        body: &mut dyn Read,
        out: &mut dyn Write,
    ) -> Option<Reply> {
        let method = req.method.as_str();
        let post = method == "POST";
        let get = method == "GET" || method == "HEAD";
        let wrong_method = || {
            Some(json(
                405,
                "{\"error\":\"wrong method for this path\"}\n".into(),
            ))
        };
        let declared = match req.body {
            BodyKind::Length(n) => Some(n),
            _ => None,
        };
        let result: Result<Reply, Refusal> = match req.path.as_str() {
            "/update/root" if post => self.update_root(req, body, declared),
            "/update/boot" if post => self.device.update_boot(body, declared).map(|id| {
                json(
                    200,
                    format!(
                        "{{\"bytes\":{},\"sha256\":\"{}\"}}\n",
                        id.bytes,
                        crate::tls::hex(&id.sha256)
                    ),
                )
            }),
            "/update/mbr" if post => self.update_mbr(body),
            "/switch" if post => {
                let now = match req.param("mode").unwrap_or("try") {
                    "try" => Ok(false),
                    "now" => Ok(true),
                    other => Err(refuse(
                        400,
                        format!("mode={other}: use try (default) or now"),
                    )),
                };
                now.and_then(|now| self.device.switch(now))
                    .map(|r| json(200, record_json(&r) + "\n"))
            }
            "/commit" if post => self
                .device
                .commit()
                .map(|r| json(200, record_json(&r) + "\n")),
            "/reboot" if post => Ok(Reply {
                after: Some(After::Reboot),
                ..json(200, "{\"rebooting\":true}\n".into())
            }),
            "/shutdown" if post => Ok(Reply {
                after: Some(After::PowerOff),
                ..json(200, "{\"powering_off\":true}\n".into())
            }),
            "/status" if get => Ok(json(200, self.status())),
            "/logs" if get => return self.logs(req, out),
            "/data/read" if get => return self.data_read(req, out),
            "/data/list" if get => self.data_list(req),
            "/data/write" if post => self.data_write(req, body),
            "/data/mkdir" if post => self.data_path(req).and_then(|p| {
                std::fs::create_dir(&p).map_err(|e| refuse(409, format!("mkdir: {e}")))?;
                Ok(json(200, "{\"ok\":true}\n".into()))
            }),
            "/data/remove" if post => self.data_path(req).and_then(|p| {
                std::fs::remove_file(&p).map_err(|e| refuse(409, format!("remove: {e}")))?;
                Ok(json(200, "{\"ok\":true}\n".into()))
            }),
            "/data/removedir" if post => self.data_path(req).and_then(|p| {
                std::fs::remove_dir(&p)
                    .map_err(|e| refuse(409, format!("removedir (only empty folders): {e}")))?;
                Ok(json(200, "{\"ok\":true}\n".into()))
            }),
            "/proc/top" if get => Ok(json(200, crate::procs::top(&self.device.paths.proc))),
            "/proc/kill" if post => self.kill(req),
            "/update/root" | "/update/boot" | "/update/mbr" | "/switch" | "/commit" | "/reboot"
            | "/shutdown" | "/status" | "/logs" | "/data/read" | "/data/list" | "/data/write"
            | "/data/mkdir" | "/data/remove" | "/data/removedir" | "/proc/top" | "/proc/kill" => {
                return wrong_method()
            }
            _ => Err(refuse(404, format!("no endpoint {}", req.path))),
        };
        Some(result.unwrap_or_else(Reply::from))
    }

    fn update_root(
        &mut self,
        req: &Request,
        body: &mut dyn Read,
        declared: Option<u64>,
    ) -> Result<Reply, Refusal> {
        let expected = match req.header("x-expected-sha256") {
            None => None,
            Some(hex) => Some(
                boot::hex::decode::<32>(hex)
                    .ok_or_else(|| refuse(400, "X-Expected-SHA256 must be 64 hex digits"))?,
            ),
        };
        let (slot, id) = self.device.update_root(body, declared, expected)?;
        Ok(json(
            200,
            format!(
                "{{\"slot\":{},\"bytes\":{},\"sha256\":\"{}\"}}\n",
                slot.number,
                id.bytes,
                crate::tls::hex(&id.sha256)
            ),
        ))
    }

    fn update_mbr(&mut self, body: &mut dyn Read) -> Result<Reply, Refusal> {
        let mut code = Vec::new();
        body.take(513)
            .read_to_end(&mut code)
            .map_err(|e| refuse(400, format!("reading the body: {e}")))?;
        let hash = self.device.update_mbr(&code)?;
        Ok(json(
            200,
            format!(
                "{{\"bytes\":440,\"sha256\":\"{}\"}}\n",
                crate::tls::hex(&hash)
            ),
        ))
    }

    fn status(&self) -> String {
        let d = &self.device;
        let boot = d.boot_status().ok();
        let record = d.read_record().ok();
        let mut roots = Vec::new();
        for slot in [boot::layout::ROOT_A, boot::layout::ROOT_B] {
            let id = d.root_id(&slot).ok().flatten();
            roots.push(format!(
                "\"{}\":{}",
                slot.number,
                match id {
                    Some(id) => format!(
                        "{{\"build\":\"{}\",\"bytes\":{}}}",
                        crate::tls::hex(&id.sha256),
                        id.bytes
                    ),
                    None => "null".into(),
                }
            ));
        }
        let uptime = std::fs::read_to_string(d.paths.proc.join("uptime"))
            .ok()
            .and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|s| s.split('.').next()?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        let (total_kb, available_kb) = crate::procs::memory(&d.paths.proc);
        let hostname =
            std::fs::read_to_string(d.paths.proc.join("sys/kernel/hostname")).unwrap_or_default();
        // Changes with every boot: how a client tells a fresh boot from the old system.
        let boot_id = std::fs::read_to_string(d.paths.proc.join("sys/kernel/random/boot_id"))
            .unwrap_or_default();
        let clock = clock_json(&d.paths.clock);
        format!(
            "{{\"hostname\":{},\"boot_id\":{},\"uptime_s\":{uptime},\"clock\":{clock},\"admind_uptime_s\":{},\"active_slot\":{},\"uncommitted_trial\":{},\"boot\":{},\"record\":{},\"roots\":{{{}}},\"memory\":{{\"total_kb\":{total_kb},\"available_kb\":{available_kb}}},\"services\":{}}}\n",
            json_string(hostname.trim()),
            json_string(boot_id.trim()),
            self.started.elapsed().as_secs(),
            boot.as_ref().map(|b| b.slot.to_string()).unwrap_or("null".into()),
            match (&boot, &record) {
                (Some(b), Some(r)) => r.is_trial_boot(b.slot),
                _ => false,
            },
            boot.as_ref().map(|b| format!(
                "{{\"state\":{},\"from\":{}}}",
                json_string(&b.state),
                b.from.map(|f| f.to_string()).unwrap_or("null".into())
            )).unwrap_or("null".into()),
            record.as_ref().map(record_json).unwrap_or("null".into()),
            roots.join(","),
            crate::procs::services(&d.paths.proc, &d.paths.services),
        )
    }

    fn logs(&self, req: &Request, out: &mut dyn Write) -> Option<Reply> {
        let Some(service) = req
            .param("service")
            .filter(|s| boot::services::valid_service_name(s.as_bytes()))
        else {
            return Some(
                refuse(
                    400,
                    "logs?service=NAME (a program in /bin)&stream=stdout|stderr",
                )
                .into(),
            );
        };
        let ext = match req.param("stream").unwrap_or("stdout") {
            "stdout" => "log",
            "stderr" => "err",
            _ => return Some(refuse(400, "stream=stdout or stream=stderr").into()),
        };
        let current = self.device.paths.logs.join(format!("{service}.{ext}"));
        let rotated = self.device.paths.logs.join(format!("{service}.{ext}.1"));
        let files: Vec<PathBuf> = [rotated, current]
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
        if files.is_empty() {
            return Some(refuse(404, format!("no {ext} log for {service}")).into());
        }
        stream_files(req, &files, "text/plain; charset=utf-8", out)
    }

    /// Resolves `?path=` inside the data folder: relative, no `..`, no symlinks on the way.
    fn data_path(&self, req: &Request) -> Result<PathBuf, Refusal> {
        let rel = req
            .param("path")
            .ok_or_else(|| refuse(400, "?path= is required (relative to /data)"))?;
        data_path(&self.device.paths.data, rel)
    }

    fn data_read(&self, req: &Request, out: &mut dyn Write) -> Option<Reply> {
        let path = match self.data_path(req) {
            Ok(p) => p,
            Err(r) => return Some(r.into()),
        };
        if !path.is_file() {
            return Some(refuse(404, "no such file").into());
        }
        stream_files(req, &[path], "application/octet-stream", out)
    }

    fn data_list(&self, req: &Request) -> Result<Reply, Refusal> {
        let dir = match req.param("path") {
            None | Some("") | Some(".") => self.device.paths.data.clone(),
            Some(rel) => data_path(&self.device.paths.data, rel)?,
        };
        let mut entries: Vec<String> = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| refuse(404, format!("list: {e}")))?
            .flatten()
        {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            let kind = if meta.is_dir() {
                "dir"
            } else if meta.is_file() {
                "file"
            } else if meta.file_type().is_symlink() {
                "symlink"
            } else {
                "other"
            };
            entries.push(format!(
                "{{\"name\":{},\"type\":\"{kind}\",\"bytes\":{}}}",
                json_string(&e.file_name().to_string_lossy()),
                meta.len()
            ));
        }
        entries.sort();
        Ok(json(200, format!("[{}]\n", entries.join(","))))
    }

    fn data_write(&mut self, req: &Request, body: &mut dyn Read) -> Result<Reply, Refusal> {
        let path = self.data_path(req)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(refuse(400, "path names no file"));
        };
        self.temp_counter += 1;
        let temp = dir.join(format!(
            ".{}.admind-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            self.temp_counter
        ));
        let result = (|| -> Result<(u64, [u8; 32]), Refusal> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| {
                    refuse(
                        409,
                        format!("cannot create a file in {} ({e})", dir.display()),
                    )
                })?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; DATA_BUFFER_BYTES];
            let mut total = 0u64;
            loop {
                let n = match body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                        return Err(refuse(413, "file larger than 1 GiB"))
                    }
                    Err(e) => {
                        return Err(refuse(
                            400,
                            format!("the upload broke off ({e}); nothing was replaced"),
                        ))
                    }
                };
                file.write_all(&buf[..n])?;
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            file.sync_all()?;
            Ok((total, hasher.finalize().into()))
        })();
        match result {
            Ok((bytes, sha256)) => {
                std::fs::rename(&temp, &path).map_err(|e| {
                    let _ = std::fs::remove_file(&temp);
                    refuse(409, format!("cannot replace {} ({e})", path.display()))
                })?;
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(json(
                    200,
                    format!(
                        "{{\"bytes\":{bytes},\"sha256\":\"{}\"}}\n",
                        crate::tls::hex(&sha256)
                    ),
                ))
            }
            Err(r) => {
                let _ = std::fs::remove_file(&temp);
                Err(r)
            }
        }
    }

    fn kill(&self, req: &Request) -> Result<Reply, Refusal> {
        let target = req
            .param("process")
            .ok_or_else(|| refuse(400, "?process=PID or NAME is required"))?;
        let signal =
            crate::procs::parse_signal(req.param("signal").unwrap_or("TERM")).ok_or_else(|| {
                refuse(
                    400,
                    "signal: TERM, KILL, HUP, INT, USR1, USR2, STOP, CONT or a number",
                )
            })?;
        let pids = crate::procs::find(&self.device.paths.proc, target);
        let me = std::process::id() as i32;
        let pids: Vec<i32> = pids.into_iter().filter(|&p| p != 1 && p != me).collect();
        if pids.is_empty() {
            return Err(refuse(
                404,
                format!(
                    "no process {target} (init and admind cannot be signalled here; use /reboot)"
                ),
            ));
        }
        for &pid in &pids {
            crate::procs::send_signal(pid, signal)
                .map_err(|e| refuse(500, format!("kill {pid}: {e}")))?;
        }
        Ok(json(200, format!("{{\"signalled\":{:?}}}\n", pids)))
    }
}

fn record_json(r: &boot::record::Record) -> String {
    let state = match r.state {
        boot::record::State::Committed => "committed",
        boot::record::State::Try => "try",
        boot::record::State::Tried => "tried",
    };
    format!(
        "{{\"state\":\"{state}\",\"committed\":{},\"trial\":{},\"next_boot\":{}}}",
        r.committed,
        r.trial,
        r.next_boot()
    )
}

/// `rel` under `root`: no absolute paths, `..`, or symlinks along the way.
pub fn data_path(root: &Path, rel: &str) -> Result<PathBuf, Refusal> {
    let rel_path = Path::new(rel);
    if rel.is_empty()
        || rel_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(refuse(
            400,
            "path must be relative to /data, without . or .. parts",
        ));
    }
    let mut at = root.to_path_buf();
    for c in rel_path.components() {
        at.push(c);
        if at
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(refuse(403, "symbolic links are not followed"));
        }
    }
    Ok(at)
}

/// Streams files one after another as one body (HEAD: the head alone).
fn stream_files(
    req: &Request,
    files: &[PathBuf],
    content_type: &str,
    out: &mut dyn Write,
) -> Option<Reply> {
    let mut opened = Vec::new();
    let mut total = 0;
    for p in files {
        match std::fs::File::open(p).and_then(|f| Ok((f.metadata()?.len(), f))) {
            Ok((len, f)) => {
                total += len;
                opened.push((len, f));
            }
            Err(e) => return Some(refuse(500, format!("cannot open {}: {e}", p.display())).into()),
        }
    }
    if http::write_head(out, 200, content_type, total, req.keep_alive, &[]).is_err()
        || req.method == "HEAD"
    {
        return None;
    }
    // Send exactly the announced length even if a log grows meanwhile.
    for (len, f) in opened {
        if std::io::copy(&mut f.take(len), out).is_err() {
            return None;
        }
    }
    let _ = out.flush();
    None
}

/// The wall clock and link's synchronisation status: `{"now_s":N,"synchronised":false}`, or
/// with the last answer's `server`, `offset_ms`, `stratum` and `last_sync_s`. Without a
/// status file (no link, or `ntp off`) `synchronised` is null: nobody is keeping time.
fn clock_json(path: &std::path::Path) -> String {
    use boot::clock::Status;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let status = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| boot::clock::parse_status(&t));
    match status {
        None => format!("{{\"now_s\":{now_s},\"synchronised\":null}}"),
        Some(Status::Unsynchronised) => format!("{{\"now_s\":{now_s},\"synchronised\":false}}"),
        Some(Status::Synchronised(s)) => {
            let [a, b, c, d] = s.server;
            format!(
                "{{\"now_s\":{now_s},\"synchronised\":true,\"server\":\"{a}.{b}.{c}.{d}\",\"offset_ms\":{},\"stratum\":{},\"last_sync_s\":{}}}",
                s.offset_ms, s.stratum, s.at_s
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_stay_inside() {
        let root = std::env::temp_dir().join(format!("admind-data-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        assert_eq!(data_path(&root, "sub/file").unwrap(), root.join("sub/file"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "sub/../../x",
            "./x",
            "link/passwd",
        ] {
            assert!(data_path(&root, bad).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
