//! The endpoints: authentication and each handler (`crate::routes` says which answers
//! what, and hands each request to its handler). Answers are a status and a small JSON or
//! text body, or files sent after the head (`crate::http::Reply`).

use crate::chunked_update::{
    index_reply, Answered, ChunkedRoot, IndexCache, Running, RunningIndex,
};
use crate::device::Device;
use crate::fault::{fault, Fault, Kind};
use crate::http::{json, refuse, stored, After, Refusal, Reply, Request};
use crate::throttle::{Source, Throttle};
use crate::upload::{FileUpload, UpdateLock, Upload};
use admin_api::json::Json;
use admin_api::status::{self, Status};
use boot::boot_status::{Damage, How};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The user name (as in the seed's admind).
pub use admin_api::endpoints::USER;
/// Longest decoded `user:password` taken; longer is refused like a wrong password (the
/// user is short, and so are the passwords instances get).
const CREDENTIALS_BYTES_MAX: usize = 512;
/// Most entries one `/data/list` answer holds (about 100 bytes each).
const LIST_ENTRIES_MAX: usize = 4096;
/// Largest file /data/write accepts.
pub(crate) const DATA_FILE_BYTES_MAX: u64 = 1 << 30;

/// What admind keeps between requests.
pub struct Api {
    pub device: Device,
    password: admin_api::password::Checker,
    throttle: Throttle,
    started: Instant,
    temp_counter: u64,
    pub(crate) updates: UpdateLock,
    root_index: IndexCache,
    /// What following a channel last did (`crate::follow`), for `/status`.
    pub(crate) channel: Option<status::Channel>,
}

impl Api {
    /// `password_file`: the text of boot::password's file.
    pub fn new(device: Device, password_file: &str) -> Result<Api, String> {
        let stored = boot::password::parse(password_file).ok_or(
            "the password file is not `pbkdf2-sha256 <iterations> <salt> <hash>` (see boot::password)",
        )?;
        Ok(Api {
            device,
            password: admin_api::password::Checker::new(stored),
            throttle: Throttle::default(),
            started: Instant::now(),
            temp_counter: 0,
            updates: UpdateLock::default(),
            root_index: IndexCache::default(),
            channel: None,
        })
    }

    /// The channel followed, if any.
    pub fn channel_url(&self) -> Option<String> {
        self.channel.as_ref().map(|c| c.url.clone())
    }

    /// `None` if the request from `source` may go on; else the refusal to send.
    pub fn authenticate(&mut self, req: &Request, source: Source) -> Option<Reply> {
        let now = Instant::now();
        let mut decoded = [0u8; CREDENTIALS_BYTES_MAX];
        let credentials = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| boot::encoding::base64_decode(b.trim().as_bytes(), &mut decoded))
            .map(|n| &decoded[..n])
            .and_then(|creds| {
                let at = creds.iter().position(|&b| b == b':')?;
                Some((&creds[..at], &creds[at + 1..]))
            });
        // A password that already got in passes before the throttle: a guesser behind the
        // administrator's address (a NAT, an IPv6 /64) cannot hold the administrator out.
        let known = credentials.is_some_and(|(user, password)| {
            user == USER.as_bytes() && self.password.remembers(password)
        });
        if known {
            return None;
        }
        if let Some(seconds) = self.throttle.wait(source, now) {
            return Some(json(
                429,
                format!("{{\"error\":\"too many failed logins from this address; wait {seconds} seconds\"}}\n"),
            ));
        }
        // Check the password whatever the user, so timing says nothing about either.
        let ok = credentials.is_some_and(|(user, password)| {
            let password_ok = self.password.matches(password);
            password_ok && user == USER.as_bytes()
        });
        if ok {
            self.throttle.succeeded(source);
            return None;
        }
        if req.header("authorization").is_some() {
            self.throttle.failed(source, now);
        }
        Some(json(
            401,
            "{\"error\":\"user rustkrazy and the instance's password are needed (HTTP Basic)\"}\n"
                .into(),
        ))
    }

    pub(crate) fn begin_root_update(&mut self, req: &Request) -> Result<Box<dyn Upload>, Refusal> {
        let expected = expected_sha256(req)?;
        let guard = self.updates.take()?;
        let upload = self.device.begin_root_update(expected, guard)?;
        Ok(Box::new(upload))
    }

    /// `POST /update/root-chunks` (`crate::chunked_update`): the whole image's hash is
    /// required, since it is what checks the copied pieces.
    pub(crate) fn begin_chunked_root_update(
        &mut self,
        req: &Request,
    ) -> Result<Box<dyn Upload>, Refusal> {
        let expected = expected_sha256(req)?.ok_or_else(|| {
            refuse(400, "a chunked root upload needs X-Expected-SHA256: the whole image's SHA-256, which checks the pieces copied from the running root")
        })?;
        let guard = self.updates.take()?;
        let running = self.running_root()?;
        let region = self.device.begin_root_update(Some(expected), guard)?;
        Ok(Box::new(ChunkedRoot::new(region, running)))
    }

    /// `GET /root/index`: the running root's chunks, for a client to send only the others.
    pub(crate) fn running_root_index(&mut self, _: &Request) -> Result<Box<dyn Upload>, Refusal> {
        let running = self.running_root()?;
        Ok(match self.root_index.begin()? {
            Some(index) => Box::new(Answered(Some(index_reply(&index)))),
            None => Box::new(RunningIndex::new(running, self.root_index.clone())),
        })
    }

    fn running_root(&self) -> Result<Running, Refusal> {
        let (disk, at, bytes) = self.device.running_root()?;
        Ok(Running { disk, at, bytes })
    }

    pub(crate) fn begin_kernel_update(
        &mut self,
        req: &Request,
    ) -> Result<Box<dyn Upload>, Refusal> {
        let expected = expected_sha256(req)?;
        let guard = self.updates.take()?;
        let upload = self.device.begin_kernel_update(expected, guard)?;
        Ok(Box::new(upload))
    }

    pub(crate) fn begin_boot_update(&mut self, _: &Request) -> Result<Box<dyn Upload>, Refusal> {
        self.refuse_unsealed_boot_change("/update/boot")?;
        let guard = self.updates.take()?;
        Ok(Box::new(self.device.begin_boot_update(guard)?))
    }

    /// The boot partition and the MBR code choose what boots and carry no seal (they are
    /// written as they arrive, too large to hold and check first): while this root requires
    /// sealed slots, they change only by reflashing, or after a sealed push of a root with
    /// `sealed_slots = false`.
    fn refuse_unsealed_boot_change(&self, what: &str) -> Result<(), Refusal> {
        match self.device.trust()? {
            None => Ok(()),
            Some(_) => Err(refuse(
                403,
                format!("{what}: this device requires sealed slots, and boot code is not sealed; it changes by reflashing, or after a push of a root built with sealed_slots = false"),
            )),
        }
    }

    pub(crate) fn switch(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let now = match req.param("mode").unwrap_or("try") {
            "try" => false,
            "now" => true,
            other => {
                let why = format!("mode={other}: use try (default) or now");
                return Err(refuse(400, why));
            }
        };
        let record = self.arm(now, presented_seal(req)?)?;
        Ok(json(200, record_status(&record).to_json() + "\n"))
    }

    /// Arms the inactive slot (see `switch`), checking `presented` against this root's
    /// trust file.
    pub(crate) fn arm(
        &mut self,
        now: bool,
        presented: Option<crate::device::Seal>,
    ) -> Result<boot::record::Record, Refusal> {
        let trust = self.device.trust()?;
        // The version floor: the committed slot's seal, if it holds up under this root's
        // trust file (a slot armed before this root required seals may carry none, or one
        // nobody checked: then there is no floor until the next sealed slot commits).
        let committed = match &trust {
            Some(trust) => self.device.committed_seal()?.and_then(|(id, seal)| {
                let arming = admin_api::seal::Arming {
                    trust,
                    build: &id.build,
                    arches: DEVICE_ARCHES,
                    committed: None,
                };
                admin_api::seal::check(&seal, &arming)
                    .is_ok()
                    .then_some(seal)
            }),
            None => None,
        };
        let record = self.device.switch(now, |id| {
            let Some(trust) = &trust else {
                // This root arms unsealed slots. A seal that comes along is kept unchecked,
                // so that once a root that checks seals commits, its version is the floor.
                return Ok(presented);
            };
            let seal = presented.ok_or_else(|| {
                fault(
                    Kind::Forbidden,
                    format!("this device arms only sealed slots (its root trusts the keys in {}): imgtool push seals each slot; with curl, send its seal as X-Slot-Seal", boot::seal::TRUST_PATH),
                )
            })?;
            let arming = admin_api::seal::Arming {
                trust,
                build: &id.build,
                arches: DEVICE_ARCHES,
                committed: committed.as_ref(),
            };
            admin_api::seal::check(&seal, &arming)
                .map_err(|why| fault(Kind::Forbidden, why + "; the slot is not armed"))?;
            Ok(Some(seal))
        })?;
        Ok(record)
    }

    pub(crate) fn commit(&mut self, _: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let record = self.commit_when_ready()?;
        Ok(json(200, record_status(&record).to_json() + "\n"))
    }

    /// Commits this boot if it is a trial whose programs are ready (503 naming the first
    /// that is not); an already committed boot stays so.
    pub(crate) fn commit_when_ready(&mut self) -> Result<boot::record::Record, Refusal> {
        // A trial is kept only when its programs say they are healthy; the client asks
        // again until they do or the trial's deadline rolls it back.
        if self.device.in_trial()? {
            let paths = &self.device.paths;
            let ready = crate::readiness::first_not_ready(&crate::readiness::Sources {
                config: &paths.services_config,
                proc: &paths.proc,
                published: &paths.services,
            });
            if let Some((name, why)) = ready {
                return Err(refuse(
                    503,
                    format!(
                        "{}{name}{}{why}",
                        admin_api::endpoints::NOT_READY,
                        admin_api::endpoints::NOT_READY_AFTER_NAME
                    ),
                ));
            }
        }
        let record = self.device.commit()?;
        // The commit stands either way; what is not done here is done when admind next
        // starts. Not while an upload (of /boot, say) holds the disk.
        match self.updates.take() {
            Ok(_writing) => report_boot_program_keys(self.device.sync_boot_program_keys()),
            Err(_) => println!("admind: an upload is running; the UEFI boot program gets this root's keys at the next start"),
        }
        Ok(record)
    }

    pub(crate) fn reboot(&mut self, _: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        Ok(Reply {
            after: Some(After::Reboot),
            ..json(200, "{\"rebooting\":true}\n".into())
        })
    }

    pub(crate) fn shutdown(&mut self, _: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        Ok(Reply {
            after: Some(After::PowerOff),
            ..json(200, "{\"powering_off\":true}\n".into())
        })
    }

    pub(crate) fn data_mkdir(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let path = self.data_path(req)?;
        refuse_protected(&path)?;
        std::fs::create_dir_all(&path).map_err(|e| refuse(409, format!("mkdir: {e}")))?;
        Ok(json(200, "{\"ok\":true}\n".into()))
    }

    pub(crate) fn data_remove(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let path = self.data_path(req)?;
        refuse_protected(&path)?;
        std::fs::remove_file(&path).map_err(|e| refuse(409, format!("remove: {e}")))?;
        Ok(json(200, "{\"ok\":true}\n".into()))
    }

    pub(crate) fn data_removedir(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let path = self.data_path(req)?;
        refuse_protected(&path)?;
        refuse_mount_point(&path)?;
        std::fs::remove_dir_all(&path).map_err(|e| refuse(409, format!("removedir: {e}")))?;
        Ok(json(200, "{\"ok\":true}\n".into()))
    }

    pub(crate) fn proc_top(&mut self, _: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        Ok(json(200, crate::procs::top(&self.device.paths.proc)))
    }

    pub(crate) fn update_cmdline(&mut self, req: &Request, text: &[u8]) -> Result<Reply, Refusal> {
        let expected = expected_sha256(req)?;
        let _guard = self.updates.take()?;
        let (slot, part) = self.device.update_cmdline(text)?;
        if let Some(want) = expected.filter(|w| *w != part.sha256) {
            return Err(refuse(
                422,
                format!(
                    "the command line's SHA-256 is {} but the client expected {}",
                    boot::encoding::Hex(&part.sha256),
                    boot::encoding::Hex(&want)
                ),
            ));
        }
        Ok(json(
            200,
            format!(
                "{{\"slot\":{},\"bytes\":{},\"sha256\":\"{}\"}}\n",
                slot.number(),
                part.bytes,
                boot::encoding::Hex(&part.sha256)
            ),
        ))
    }

    pub(crate) fn update_mbr(&mut self, _: &Request, code: &[u8]) -> Result<Reply, Refusal> {
        self.refuse_unsealed_boot_change("/update/mbr")?;
        let _guard = self.updates.take()?;
        let hash = self.device.update_mbr(code)?;
        Ok(json(200, stored(None, code.len() as u64, &hash, None)))
    }

    pub(crate) fn status(&mut self, _: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let d = &self.device;
        let boot = d.booted().ok();
        let copies = d.record_copies().ok();
        let record = copies.as_ref().and_then(|c| d.record_of(c).ok());
        // Inserted, not collected: collecting sorts, which costs admind 3 KB of code.
        let mut roots = std::collections::BTreeMap::new();
        for slot in [boot::layout::Slot::A, boot::layout::Slot::B] {
            let id = d.slot_id(slot).ok().flatten();
            let files = d.slot_files(slot, false).ok();
            roots.insert(slot.number(), root_status(id.as_ref(), files.as_ref()));
        }
        let proc_text = |path: &str| {
            std::fs::read_to_string(d.paths.proc.join(path))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let uptime_s = proc_text("uptime")
            .split(['.', ' '])
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (total_kb, available_kb) = crate::procs::memory(&d.paths.proc);
        let status = Status {
            hostname: proc_text("sys/kernel/hostname"),
            boot_id: proc_text("sys/kernel/random/boot_id"),
            uptime_s,
            clock: clock_status(&d.paths.clock),
            admind_uptime_s: self.started.elapsed().as_secs(),
            active_slot: boot.map(|b| b.slot.number()),
            uncommitted_trial: match (boot, &record) {
                (Some(b), Some(r)) => r.is_trial_boot(b.slot),
                _ => false,
            },
            boot: boot.map(|b| status::Boot {
                state: b.how.name().into(),
                from: match b.how {
                    How::RolledBack { from } | How::FellBack { from } => Some(from.number()),
                    _ => None,
                },
                record_damaged: damage_text(b.damage),
                refused: b.refused.clone(),
                timeout_s: match b.how {
                    How::Trial { timeout_s } => Some(timeout_s),
                    _ => None,
                },
            }),
            record: record.as_ref().map(|r| status::Record {
                damaged: copies.and_then(|c| damage_text(c.damage())),
                ..record_status(r)
            }),
            seals_required: !matches!(d.trust(), Ok(None)),
            boot_program_keys: d.boot_program_keys().ok().flatten().map(|keys| {
                keys.as_slice()
                    .iter()
                    .map(|k| boot::encoding::Hex(&admin_api::seal::signer_id(k)).to_string())
                    .collect()
            }),
            roots,
            memory: status::Memory {
                total_kb,
                available_kb,
            },
            services: crate::procs::services(&d.paths.proc, &d.paths.services, &d.paths.cgroups),
            channel: self.channel.clone(),
        };
        Ok(json(200, status.to_json() + "\n"))
    }

    pub(crate) fn logs(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let service = req
            .param("service")
            .filter(|s| boot::services::valid_service_name(s.as_bytes()))
            .ok_or_else(|| {
                refuse(
                    400,
                    "logs?service=NAME (a program in /bin)&stream=stdout|stderr",
                )
            })?;
        let ext = match req.param("stream").unwrap_or("stdout") {
            "stdout" => boot::logs::STDOUT_SUFFIX,
            "stderr" => boot::logs::STDERR_SUFFIX,
            _ => return Err(refuse(400, "stream=stdout or stream=stderr")),
        };
        let current = self.device.paths.logs.join(format!("{service}{ext}"));
        let rotated =
            (self.device.paths.logs).join(format!("{service}{ext}{}", boot::logs::ROTATED_SUFFIX));
        let files: Vec<PathBuf> = [rotated, current]
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
        if files.is_empty() {
            return Err(refuse(404, format!("no {ext} log for {service}")));
        }
        file_reply(&files, "text/plain; charset=utf-8")
    }

    /// Resolves `?path=`: see [`data_path`].
    fn data_path(&self, req: &Request) -> Result<PathBuf, Refusal> {
        let given = req
            .param("path")
            .ok_or_else(|| refuse(400, "?path= is required (relative to /data, or absolute)"))?;
        data_path(&self.device.paths.data, given)
    }

    pub(crate) fn data_read(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let path = self.data_path(req)?;
        if !path.is_file() {
            return Err(refuse(404, "no such file"));
        }
        file_reply(&[path], "application/octet-stream")
    }

    pub(crate) fn data_list(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let dir = match req.param("path") {
            None | Some("") | Some(".") => self.device.paths.data.clone(),
            Some(given) => data_path(&self.device.paths.data, given)?,
        };
        let mut entries: Vec<String> = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| refuse(404, format!("list: {e}")))?
            .flatten()
        {
            if entries.len() == LIST_ENTRIES_MAX {
                return Err(refuse(
                    507,
                    format!(
                        "{} holds more than {LIST_ENTRIES_MAX} entries, more than one answer lists (its memory is bounded); read the files by name",
                        dir.display()
                    ),
                ));
            }
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
                admin_api::json::string(&e.file_name().to_string_lossy()),
                meta.len()
            ));
        }
        entries.sort();
        Ok(json(200, format!("[{}]\n", entries.join(","))))
    }

    pub(crate) fn begin_data_write(&mut self, req: &Request) -> Result<Box<dyn Upload>, Refusal> {
        let path = self.data_path(req)?;
        refuse_protected(&path)?;
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
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| {
                refuse(
                    409,
                    format!("cannot create a file in {} ({e})", dir.display()),
                )
            })?;
        Ok(Box::new(FileUpload::new(
            file,
            temp,
            path,
            DATA_FILE_BYTES_MAX,
        )))
    }

    pub(crate) fn kill(&mut self, req: &Request, _: &[u8]) -> Result<Reply, Refusal> {
        let target = req
            .param("process")
            .ok_or_else(|| refuse(400, "?process=PID or NAME is required"))?;
        let signal =
            crate::procs::parse_signal(req.param("signal").unwrap_or("TERM")).ok_or_else(|| {
                refuse(
                    400,
                    "signal: TERM, KILL, HUP, INT, USR1, USR2, ALRM, STOP, CONT (any case) or a number",
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

fn damage_text(damage: Damage) -> Option<String> {
    match damage {
        Damage::None => None,
        Damage::Copy(n) => Some(n.to_string()),
        Damage::Both => Some("both".into()),
    }
}

fn record_status(r: &boot::record::Record) -> status::Record {
    let state = match r.state {
        boot::record::State::Committed => "committed",
        boot::record::State::Try => "try",
        boot::record::State::Tried => "tried",
    };
    status::Record {
        state: state.into(),
        committed: r.committed.number(),
        trial: r.trial.number(),
        next_boot: r.next_boot().number(),
        attempts: Some(r.attempts),
        damaged: None,
    }
}

/// The file `given` names: relative to `root` without following a symlink on the way, or,
/// when absolute, as given (the administrator's choice); never with `.` or `..` parts.
pub fn data_path(root: &Path, given: &str) -> Result<PathBuf, Refusal> {
    let path = Path::new(given);
    // Checked on the text: Path::components() silently drops inner `.` parts.
    let plain = given
        .split('/')
        .enumerate()
        .all(|(i, part)| part != "." && part != ".." && (i == 0 || !part.is_empty()));
    if given.is_empty() || !plain {
        return Err(refuse(
            400,
            "path must be relative to /data or absolute, without . or .. parts",
        ));
    }
    // An absolute path is the administrator's own choice, as in the original rustkrazy
    // (`/run/log/SERVICE.log`, `/data/update`): used as given, links and all.
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let mut at = root.to_path_buf();
    for c in path.components() {
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

/// Says what making the UEFI boot program follow this root's trust file did.
pub fn report_boot_program_keys(done: Result<Option<boot::uefi_keys::Keys>, Fault>) {
    match done {
        Ok(Some(keys)) => println!(
            "admind: the UEFI boot program now holds the {} key(s) this root trusts",
            keys.as_slice().len()
        ),
        Ok(None) => {}
        Err(e) => eprintln!(
            "admind: cannot give the UEFI boot program this root's keys: {}",
            e.reason
        ),
    }
}

/// The architectures a seal may name for this device: one admind binary serves both
/// aarch64 platforms.
pub(crate) const DEVICE_ARCHES: &[boot::seal::Arch] = if cfg!(target_arch = "x86_64") {
    &[boot::seal::Arch::X86_64]
} else if cfg!(target_arch = "aarch64") {
    &[boot::seal::Arch::Aarch64, boot::seal::Arch::Rpi]
} else {
    &[]
};

/// The seal a request carries (`X-Slot-Seal`, base64), if any.
fn presented_seal(req: &Request) -> Result<Option<crate::device::Seal>, Refusal> {
    let Some(text) = req.header(admin_api::endpoints::SLOT_SEAL) else {
        return Ok(None);
    };
    seal_from_base64(text).map(Some).ok_or_else(|| {
        refuse(
            400,
            "X-Slot-Seal is not a slot seal (128 bytes in base64; boot::seal)",
        )
    })
}

/// A seal written in base64, as `X-Slot-Seal` and a channel's manifest carry it.
pub(crate) fn seal_from_base64(text: &str) -> Option<crate::device::Seal> {
    let mut bytes = [0u8; boot::seal::SEAL_BYTES];
    boot::encoding::base64_decode(text.trim().as_bytes(), &mut bytes)
        .filter(|&n| n == bytes.len())
        .and_then(|_| crate::device::Seal::decode(&bytes))
}

/// Where the file API never writes, removes or makes directories, whatever the path's
/// spelling or links: what boots (/boot, the disk's device nodes), the kernel's interfaces,
/// and the files init writes for admind. The password alone must not change what boots;
/// updates go through `/update/...`, which checks what it writes.
const WRITES_REFUSED: [&str; 5] = ["/boot", "/dev", "/proc", "/sys", "/run/rustkrazy"];

/// Refuses `path` if, its links followed, it lies in [`WRITES_REFUSED`], or if it is
/// anything but a regular file or a directory (a device node, a FIFO, a socket).
fn refuse_protected(path: &Path) -> Result<(), Refusal> {
    // The nearest existing part of the path with its links resolved, then the rest as given.
    let mut existing = path;
    let mut rest = Vec::new();
    let real = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => break PathBuf::from("/"),
        }
    };
    let full = rest.iter().rev().fold(real, |p, name| p.join(name));
    if let Some(area) = WRITES_REFUSED.iter().find(|area| full.starts_with(area)) {
        return Err(refuse(
            403,
            format!(
                "{} lies in {area}, where the file API does not write (updates go through /update/...)",
                full.display()
            ),
        ));
    }
    match std::fs::metadata(&full) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Err(refuse(
            403,
            format!(
                "{} is not a regular file or a directory; the file API does not write to it",
                full.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses to remove `/` or a mount point (/data itself, /boot, /tmp ...): a recursive
/// removal of a whole filesystem is never what a script meant.
fn refuse_mount_point(path: &Path) -> Result<(), Refusal> {
    use std::os::unix::fs::MetadataExt;
    let meta = path
        .symlink_metadata()
        .map_err(|e| refuse(404, format!("removedir: {e}")))?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let parent_dev = parent.metadata().map(|m| m.dev()).unwrap_or(0);
    if path.parent().is_none() || meta.dev() != parent_dev {
        return Err(refuse(
            409,
            format!("{} is a mount point; it is not removed", path.display()),
        ));
    }
    Ok(())
}

/// An answer whose body is `files`, one after another, each as long as it is now (a log
/// that grows meanwhile is sent as far as it was).
fn file_reply(files: &[PathBuf], content_type: &'static str) -> Result<Reply, Refusal> {
    let mut opened = Vec::new();
    for p in files {
        let file =
            File::open(p).map_err(|e| refuse(500, format!("cannot open {}: {e}", p.display())))?;
        let len = file.metadata()?.len();
        opened.push((file, len));
    }
    Ok(Reply {
        status: 200,
        content_type,
        body: Vec::new(),
        after: None,
        files: opened,
    })
}

/// `X-Expected-SHA256`, when sent.
fn expected_sha256(req: &Request) -> Result<Option<[u8; 32]>, Refusal> {
    match req.header(admin_api::endpoints::EXPECTED_SHA256) {
        None => Ok(None),
        Some(hex) => boot::encoding::hex_decode::<32>(hex)
            .map(Some)
            .ok_or_else(|| refuse(400, "X-Expected-SHA256 must be 64 hex digits")),
    }
}

/// One slot in `/status`: `build` and the parts' lengths and hashes from its trailer (null
/// when incomplete), its seal, the kernel's version and the command line as the disk holds
/// them.
fn root_status(
    trailer: Option<&(crate::device::SlotId, Option<crate::device::Seal>)>,
    files: Option<&crate::device::SlotFiles>,
) -> status::Root {
    let id = trailer.map(|(id, _)| id);
    let part = |p: &crate::device::Part| status::Part {
        bytes: p.bytes,
        sha256: boot::encoding::Hex(&p.sha256).to_string(),
    };
    status::Root {
        build: id.map(|id| boot::encoding::Hex(&id.build).to_string()),
        root: id.map(|id| part(&id.root)),
        kernel: id.map(|id| part(&id.kernel)),
        cmdline: id.map(|id| part(&id.cmdline)),
        kernel_version: files.map(|f| f.kernel_version.clone()),
        cmdline_text: files.map(|f| f.cmdline_text.clone()),
        seal: trailer
            .and_then(|(_, seal)| seal.as_ref())
            .map(|seal| status::Seal {
                signer: boot::encoding::Hex(&seal.signer).to_string(),
                version: seal.version,
                arch: seal.arch.name().into(),
                older_allowed: seal.older_allowed(),
            }),
    }
}

/// The wall clock and link's synchronisation status ([`boot::clock`]). Without a status
/// file (no link, or `ntp off`) `synchronised` is `None`: nobody is keeping time.
fn clock_status(path: &std::path::Path) -> status::Clock {
    use boot::clock::Status as Sync;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sync = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| boot::clock::parse_status(&t));
    let last = match sync {
        Some(Sync::Synchronised(s)) => Some(s),
        _ => None,
    };
    status::Clock {
        now_s,
        synchronised: sync.as_ref().map(|s| matches!(s, Sync::Synchronised(_))),
        server: last.map(|s| std::net::Ipv4Addr::from(s.server).to_string()),
        offset_ms: last.map(|s| s.offset_ms),
        stratum: last.map(|s| s.stratum),
        last_sync_s: last.map(|s| s.at_s),
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
        assert_eq!(
            data_path(&root, "/etc/passwd").unwrap(),
            Path::new("/etc/passwd")
        );
        for bad in [
            "",
            "../x",
            "sub/../../x",
            "./x",
            "link/passwd",
            "/data/../etc",
            "/a/./b",
        ] {
            assert!(data_path(&root, bad).is_err(), "{bad}");
        }
        assert!(refuse_mount_point(Path::new("/")).is_err());
        assert!(refuse_mount_point(Path::new("/proc")).is_err());
        assert!(refuse_mount_point(&root.join("sub")).is_ok());
        std::os::unix::fs::symlink("/dev", root.join("devices")).unwrap();
        std::os::unix::fs::symlink("/proc/sys", root.join("sys")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        for protected in [
            Path::new("/dev/vda"),
            Path::new("/dev/vda2"),
            Path::new("/dev/null"),
            Path::new("/boot/config.txt"),
            Path::new("/boot/new/dir"),
            Path::new("/proc/sysrq-trigger"),
            Path::new("/sys/power/state"),
            Path::new("/run/rustkrazy/boot-status"),
            Path::new("/dev/../dev/null"),
            &root.join("devices/vda"),
            &root.join("sys/kernel/x"),
            &root.join("socket"),
        ] {
            assert!(
                refuse_protected(protected).is_err(),
                "{}",
                protected.display()
            );
        }
        for allowed in [
            root.join("sub/file"),
            root.join("new/dir/file"),
            "/tmp/x".into(),
        ] {
            assert!(refuse_protected(&allowed).is_ok(), "{}", allowed.display());
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
