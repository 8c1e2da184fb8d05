//! Following a release channel (`boot::channel` says where, `boot::release` what it holds).
//!
//! Every poll interval (plus this device's share of the jitter) admind fetches the
//! channel's manifest. A release is taken only if its signature is by a key this root
//! trusts, its seal for the inactive slot would arm (trusted signer, this architecture, not
//! older than the committed slot), it is newer than the committed slot and than any release
//! that rolled back here, and its rollout covers this device. The inactive slot is then
//! written as a chunked push writes it (`crate::chunked_update`): the kernel (unless the
//! slot holds it already), the command line, then the root, each from the chunks the running
//! slot holds plus those fetched, each fetched chunk checked against the release's index,
//! the whole image read back and checked before the slot is complete. The manifest's seal
//! arms a trial, admind reboots in the maintenance window, and the trial commits itself once
//! its programs are ready (as `POST /commit` does) or rolls back by itself; a release that
//! rolled back is not taken again.
//!
//! It lives in admind because admind owns the slots, and runs in its event loop: one GET at
//! a time on a non-blocking socket (`crate::fetch`), disk work in bounded steps. A slot
//! being written holds the update lock, so pushes and the channel take turns. A failure
//! backs off (from [`BACKOFF_FIRST`], doubling, up to the poll interval); a broken download
//! resumes at the chunk or index it broke off at, and a refused one leaves the slot
//! incomplete. `/status` shows what it did and why (`admin_api::status::Channel`); what must
//! outlive a reboot (the release on trial, committed or rolled back) is one line in
//! [`STATE_FILE`] under /data.

use crate::api::{seal_from_base64, Api, DEVICE_ARCHES};
use crate::chunked_update::{ChunkedRoot, Indexer, Running};
use crate::device::Seal;
use crate::fetch::Fetch;
use crate::upload::Upload;
use admin_api::status::Channel as Report;
use boot::chunks::{self, Chunk, Source};
use boot::release::Image;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The first wait after a download broke off; each failure in a row doubles it, up to the
/// poll interval (plus this device's share of as much again, so a fleet spreads out).
pub const BACKOFF_FIRST: Duration = Duration::from_secs(5);
/// Downloads of one release that may break off in a row before it is given up (and the
/// update lock with it) until the next check.
pub const ATTEMPTS_MAX: u32 = 6;
/// Under /data: `VERSION trying|committed|rolled-back`.
pub const STATE_FILE: &str = "admind/channel-state";
const MANIFEST_BYTES_MAX: usize = 16 * 1024;
const INDEX_BYTES_MAX: usize =
    chunks::INDEX_MAGIC.len() + chunks::CHUNK_RECORD_BYTES * chunks::PLAN_PIECES_MAX as usize;
/// How often a trial asks whether its programs are ready, and an armed slot whether the
/// window is open.
const TRIAL_ASK_EVERY: Duration = Duration::from_secs(5);
const WINDOW_ASK_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Kernel,
    Root,
}

#[derive(Clone, Copy)]
enum Want {
    Manifest,
    Index,
    Chunk,
}

enum Stage {
    /// Until then; with a `Want`, a download to resume.
    Waiting(Instant, Option<Want>),
    Getting(Box<Fetch>, Want),
    /// The running slot's image of the part being written, indexed.
    Indexing(Indexer),
    /// The part's upload syncing, reading back, completing.
    Finishing,
    /// Reboots into the trial when the window is open.
    Armed(Instant),
    /// This boot is the channel's trial: commits when its programs are ready.
    Trial(Instant),
}

/// What became of the last release armed from the channel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Trying,
    Committed,
    RolledBack,
}

const OUTCOMES: [(Outcome, &str); 3] = [
    (Outcome::Trying, "trying"),
    (Outcome::Committed, "committed"),
    (Outcome::RolledBack, "rolled-back"),
];

/// A release being written to the inactive slot.
struct Job {
    version: u64,
    kernel: Image,
    root: Image,
    cmdline: String,
    seal: Seal,
    part: Part,
    upload: Option<ChunkedRoot>,
    /// The part's index from the channel, then the chunks to fetch, in order.
    index: Vec<u8>,
    chunks: Vec<Chunk>,
    next: usize,
}

pub struct Follower {
    server: SocketAddr,
    path: String,
    tls: Arc<rustls::ClientConfig>,
    poll: Duration,
    /// This device's share of the jitter, and of each backoff (of 65536).
    spread: Duration,
    share: u16,
    window: Option<(u16, u16)>,
    /// Places this device in rollouts.
    identity: [u8; 32],
    state_file: PathBuf,
    stage: Stage,
    job: Option<Job>,
    failures: u32,
    last: Option<(u64, Outcome)>,
}

/// `/status` says the running system is release `v` of the channel.
fn came_from(api: &mut Api, v: u64) {
    if let Some(r) = api.channel.as_mut() {
        r.updated_from = Some(format!("{} release {v}", r.url));
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Follower {
    /// The follower the settings file describes, `None` without one; `device_pin`: the
    /// device's own key, which places it in rollouts and spreads its checks.
    pub fn start(api: &mut Api, device_pin: &[u8; 32]) -> Result<Option<Follower>, String> {
        let path = &api.device.paths.channel;
        let settings_text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let s = boot::channel::parse(&settings_text).map_err(|e| {
            format!(
                "{} line {}: {}; following no channel",
                path.display(),
                e.line,
                e.reason
            )
        })?;
        if matches!(api.device.trust(), Ok(None)) {
            return Err(format!("{} names a channel, but this root has no trust file (built with sealed_slots = false) to check its manifests: following no channel", path.display()));
        }
        let tls =
            admin_api::pinning::pinned_client_config(admin_api::pinning::KeyPin::new(Some(s.pin)))?;
        let identity: [u8; 32] = Sha256::digest(device_pin).into();
        let share = u64::from(u16::from_le_bytes([identity[2], identity[3]]));
        let server = SocketAddr::new(s.address, s.port);
        let spread = Duration::from_secs(u64::from(s.jitter_seconds) * share / 65536);
        let mut f = Follower {
            server,
            path: s.path.to_string(),
            tls: Arc::new(tls),
            poll: Duration::from_secs(s.poll_seconds.into()),
            spread,
            share: share as u16,
            window: s.window,
            identity,
            state_file: api.device.paths.data.join(STATE_FILE),
            stage: Stage::Waiting(Instant::now() + BACKOFF_FIRST + spread, None),
            job: None,
            failures: 0,
            last: None,
        };
        api.channel = Some(Report {
            url: format!("https://{server}{}", s.path),
            state: "waiting".into(),
            last_check_s: None,
            result: "not checked yet".into(),
            offered: None,
            fetched_bytes: 0,
            updated_from: None,
        });
        f.resume_after_boot(api);
        Ok(Some(f))
    }

    /// The socket of a GET in flight, and whether it waits to send.
    pub fn socket(&self) -> Option<(rustix::fd::BorrowedFd<'_>, bool)> {
        match &self.stage {
            Stage::Getting(fetch, _) => Some((fetch.socket(), fetch.wants_write())),
            _ => None,
        }
    }

    /// When `step` must run next; `None`: on the next turn of the loop (disk work).
    pub fn wake(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Waiting(at, _) | Stage::Armed(at) | Stage::Trial(at) => Some(*at),
            Stage::Getting(fetch, _) => Some(fetch.deadline),
            Stage::Indexing(_) | Stage::Finishing => None,
        }
    }

    /// One bounded piece of work.
    pub fn step(&mut self, api: &mut Api, now: Instant) {
        if let Err(why) = self.advance(api, now) {
            self.refused(api, why);
        }
    }

    fn advance(&mut self, api: &mut Api, now: Instant) -> Result<(), String> {
        match &mut self.stage {
            Stage::Waiting(at, want) if now >= *at => {
                let want = want.unwrap_or(Want::Manifest);
                if matches!(want, Want::Manifest) {
                    self.say(api, "checking", None);
                }
                if let Err(why) = self.get(want) {
                    self.broke_off(api, now, why, want);
                }
                Ok(())
            }
            Stage::Getting(fetch, want) => {
                let want = *want;
                match fetch.step(now) {
                    Ok(Some(body)) => self.got(api, want, body),
                    Ok(None) => Ok(()),
                    // The download broke off: the same GET again after the backoff.
                    Err(why) => {
                        self.broke_off(api, now, why, want);
                        Ok(())
                    }
                }
            }
            Stage::Indexing(indexer) => match indexer.step().map_err(|e| e.to_string())? {
                Some(running) => self.plan(api, &running),
                None => Ok(()),
            },
            Stage::Finishing => self.finish_step(api),
            Stage::Armed(at) if now >= *at => {
                self.stage = Stage::Armed(now + WINDOW_ASK_EVERY);
                // A push may have armed its own slot since.
                let record = api.device.read_record()?;
                let slot = api.device.inactive_slot()?;
                if record.state != boot::record::State::Try || record.trial != slot {
                    self.wait_for_next_check(
                        api,
                        "the armed release was disarmed or replaced (by a push?); not rebooting"
                            .into(),
                    );
                    return Ok(());
                }
                let minute = (unix_now() % 86_400 / 60) as u16;
                if boot::channel::in_window(self.window, minute) {
                    self.say(api, "rebooting", None);
                    if let Err(f) = api.device.signal_init(false) {
                        // Still armed: asked again at the next turn of the window check.
                        let why = f.reason;
                        self.say(api, "armed", Some(format!("cannot reboot: {why}")));
                    }
                }
                Ok(())
            }
            Stage::Trial(at) if now >= *at => self.commit_trial(api, now),
            _ => Ok(()),
        }
    }

    /// Starts the GET `want` names.
    fn get(&mut self, want: Want) -> Result<(), String> {
        let (path, limit) = match (want, &self.job) {
            (Want::Index, Some(job)) => (
                boot::release::IndexPath(&job.image().index).to_string(),
                INDEX_BYTES_MAX,
            ),
            (Want::Chunk, Some(job)) => (
                boot::release::ChunkPath(&job.chunk()?.sha256).to_string(),
                chunks::CHUNK_MAX,
            ),
            _ => (boot::release::MANIFEST.to_string(), MANIFEST_BYTES_MAX),
        };
        let path = format!("{}/{path}", self.path);
        self.stage = Stage::Getting(
            Box::new(Fetch::start(self.server, &self.tls, &path, limit)?),
            want,
        );
        Ok(())
    }

    fn got(&mut self, api: &mut Api, want: Want, body: Vec<u8>) -> Result<(), String> {
        self.failures = 0;
        if !matches!(want, Want::Manifest) {
            if let Some(r) = api.channel.as_mut() {
                r.fetched_bytes = r.fetched_bytes.saturating_add(body.len() as u64);
            }
        }
        let Some(job) = self
            .job
            .as_mut()
            .filter(|_| !matches!(want, Want::Manifest))
        else {
            return self.check_manifest(api, &body);
        };
        if matches!(want, Want::Index) {
            let image = job.image();
            let sum: Option<u64> =
                chunks::index_chunks(&body).map(|c| c.map(|c| u64::from(c.bytes)).sum());
            let hash: [u8; 32] = Sha256::digest(&body).into();
            if hash != image.index || sum != Some(image.bytes) {
                return Err(format!(
                    "the channel's index {} does not match the release's {}: refused",
                    boot::encoding::Hex(&hash),
                    boot::encoding::Hex(&image.index)
                ));
            }
            job.index = body;
            let running = job.running(api)?;
            self.stage = Stage::Indexing(Indexer::new(running));
            return Ok(());
        }
        let want = job.chunk()?;
        let hash: [u8; 32] = Sha256::digest(&body).into();
        if body.len() != want.bytes as usize || hash != want.sha256 {
            return Err(format!(
                "chunk {} from the channel is {} bytes with SHA-256 {}, not the {} bytes its index names: refused, the slot stays incomplete",
                boot::encoding::Hex(&want.sha256), body.len(), boot::encoding::Hex(&hash), want.bytes
            ));
        }
        if let Some(upload) = job.upload.as_mut() {
            upload.write(&body)?;
        }
        job.next += 1;
        if job.next < job.chunks.len() {
            self.get(Want::Chunk)
        } else {
            self.stage = Stage::Finishing;
            Ok(())
        }
    }

    /// Checks an offered release; starts writing it if it is to be taken.
    fn check_manifest(&mut self, api: &mut Api, body: &[u8]) -> Result<(), String> {
        let text_of = std::str::from_utf8(body).map_err(|_| "the manifest is not text")?;
        let signed = boot::release::parse(text_of).map_err(|e| e.to_string())?;
        let m = signed.manifest;
        if let Some(r) = api.channel.as_mut() {
            r.last_check_s = Some(unix_now());
            r.offered = Some(m.version);
        }
        let v = m.version;
        let trust = api.device.trust()?.ok_or(
            "this root has no trust file (built with sealed_slots = false), so no manifest can be checked",
        )?;
        if !admin_api::seal::check_release(&trust, signed.signed, signed.signature) {
            return Err(format!(
                "the manifest of release {v} is not signed by a key this root trusts: refused"
            ));
        }
        let d = &api.device;
        let committed = d.committed_seal()?;
        let committed_version = committed.as_ref().map(|(_, s)| s.version);
        let refused_version = match self.last {
            Some((v, Outcome::RolledBack)) => Some(v),
            _ => None,
        };
        let skip = if committed_version == Some(v) {
            Some(format!("up to date: release {v} is committed"))
        } else if committed_version.is_some_and(|c| v < c) {
            Some(format!(
                "release {v} is older than the committed one: refused"
            ))
        } else if refused_version.is_some_and(|r| v <= r) {
            Some(format!(
                "release {v} rolled back at its trial here; waiting for a newer one"
            ))
        } else if !boot::channel::in_rollout(&self.identity, m.rollout) {
            Some(format!(
                "release {v} is offered to {}% of devices, not yet this one",
                m.rollout
            ))
        } else if d.in_trial()? {
            Some(format!(
                "release {v} waits: this boot is a trial nobody has committed yet"
            ))
        } else if d.read_record()?.state == boot::record::State::Try {
            Some(format!(
                "release {v} waits: a trial armed by a push is pending (reboot or disarm it)"
            ))
        } else {
            None
        };
        if let Some(why) = skip {
            self.wait_for_next_check(api, why);
            return Ok(());
        }
        let slot = d.inactive_slot()?;
        let entry = m.slots[usize::from(slot.number() - 2) % 2];
        let seal = seal_from_base64(entry.seal).ok_or("the manifest's seal is not one")?;
        let arming = admin_api::seal::Arming {
            trust: &trust,
            build: &entry.build,
            arches: DEVICE_ARCHES,
            committed: committed.as_ref().map(|(_, s)| s),
        };
        admin_api::seal::check(&seal, &arming)
            .map_err(|why| format!("release {v}: {why}: refused"))?;
        if seal.version != v {
            return Err(format!(
                "release {v}'s seal is for version {}: refused",
                seal.version
            ));
        }
        // The root is planned against the running one, which needs its length (trailer).
        d.running_root()?;
        // Hashed (one read of the kernel) only when the lengths say it may be the same.
        let held_kernel = match d.slot_files(slot, false).ok().and_then(|f| f.kernel) {
            Some(k) if k.bytes == m.kernel.bytes => {
                d.slot_files(slot, true).ok().and_then(|f| f.kernel)
            }
            _ => None,
        };
        let part = match held_kernel {
            Some(k) if k.sha256 == m.kernel.sha256 => Part::Root,
            _ => Part::Kernel,
        };
        self.job = Some(Job {
            version: v,
            kernel: m.kernel,
            root: m.root,
            cmdline: format!("{}\n", entry.cmdline),
            seal,
            part,
            upload: None,
            index: Vec::new(),
            chunks: Vec::new(),
            next: 0,
        });
        if let Some(r) = api.channel.as_mut() {
            r.fetched_bytes = 0;
        }
        self.say(
            api,
            "fetching",
            Some(format!("taking release {v} into slot {}", slot.number())),
        );
        self.get(Want::Index)
    }

    /// The running image's index is in: plans the part against it and starts its upload.
    fn plan(&mut self, api: &mut Api, running_index: &[u8]) -> Result<(), String> {
        let job = self.job.as_mut().ok_or("no release is being written")?;
        let mut held: Vec<([u8; 32], u64)> = Vec::new();
        let mut at = 0u64;
        for c in chunks::index_chunks(running_index).into_iter().flatten() {
            held.push((c.sha256, at));
            at += u64::from(c.bytes);
        }
        held.sort_by_key(|h| h.0); // stable: the first of equal chunks stays first
        held.dedup_by_key(|h| h.0);
        let mut pieces = Vec::new();
        job.chunks.clear();
        for c in chunks::index_chunks(&job.index).into_iter().flatten() {
            let from = held
                .binary_search_by_key(&c.sha256, |h| h.0)
                .ok()
                .map(|i| held[i].1);
            if let Some(piece) = chunks::plan_chunk(pieces.last_mut(), &c, from) {
                if matches!(piece.source, Source::Body { .. }) {
                    job.chunks.push(c);
                }
                pieces.push(piece);
            }
        }
        if pieces.len() > chunks::PLAN_PIECES_MAX as usize {
            return Err(format!(
                "the release's {} pieces are more than a plan holds",
                pieces.len()
            ));
        }
        let mut plan = Vec::from(chunks::plan_head(pieces.len() as u32));
        for piece in &pieces {
            plan.extend_from_slice(&piece.encode());
        }
        let guard = api.updates.take()?;
        let d = &api.device;
        let region = match job.part {
            Part::Kernel => d.begin_kernel_update(Some(job.kernel.sha256), guard),
            Part::Root => d
                .update_cmdline(job.cmdline.as_bytes())
                .and_then(|_| d.begin_root_update(Some(job.root.sha256), guard)),
        }?;
        let mut upload = ChunkedRoot::new(region, job.running(api)?);
        upload.write(&plan)?;
        job.upload = Some(upload);
        job.next = 0;
        if job.chunks.is_empty() {
            self.stage = Stage::Finishing;
            Ok(())
        } else {
            self.get(Want::Chunk)
        }
    }

    fn finish_step(&mut self, api: &mut Api) -> Result<(), String> {
        let job = self.job.as_mut().ok_or("no release is being written")?;
        let upload = job.upload.as_mut().ok_or("no part is being written")?;
        if upload.finish_step()?.is_none() {
            return Ok(());
        }
        job.upload = None; // frees the update lock
        if job.part == Part::Kernel {
            job.part = Part::Root;
            return self.get(Want::Index);
        }
        let (version, seal) = (job.version, job.seal);
        self.job = None;
        // Kept before arming: the trial this boots must find it to commit itself.
        let before = self.last;
        self.remember(api, version, Outcome::Trying).map_err(|e| {
            format!(
                "cannot keep {}: {e}; the slot is not armed",
                self.state_file.display()
            )
        })?;
        if let Err(refusal) = api.arm(false, Some(seal)) {
            let _ = match before {
                Some((v, o)) => self.remember(api, v, o),
                None => std::fs::remove_file(&self.state_file),
            };
            return Err(refusal.into());
        }
        let why = match self.window {
            Some((s, e)) => format!("release {version} is armed; rebooting into it between {:02}:{:02} and {:02}:{:02} UTC", s / 60, s % 60, e / 60, e % 60),
            None => format!("release {version} is armed; rebooting into it"),
        };
        self.say(api, "armed", Some(why));
        self.stage = Stage::Armed(Instant::now());
        Ok(())
    }

    /// After a reboot: the trial to commit, or what became of the last release.
    fn resume_after_boot(&mut self, api: &mut Api) {
        let text = std::fs::read_to_string(&self.state_file).unwrap_or_default();
        let mut words = text.split_whitespace();
        let version = words.next().and_then(|v| v.parse::<u64>().ok());
        let outcome = words
            .next()
            .and_then(|w| OUTCOMES.iter().find(|(_, name)| *name == w))
            .map(|(o, _)| *o);
        let (Some(v), Some(outcome)) = (version, outcome) else {
            return;
        };
        self.last = Some((v, outcome));
        let fetched = words.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        if let Some(r) = api.channel.as_mut() {
            r.fetched_bytes = fetched;
        }
        let d = &api.device;
        // Nothing is decided on what could not be read.
        let (Ok(booted), Ok(in_trial), Ok(record)) = (d.booted(), d.in_trial(), d.read_record())
        else {
            return;
        };
        let version_of = |slot| {
            d.slot_id(slot)
                .ok()
                .flatten()
                .and_then(|(_, s)| s)
                .map(|s| s.version)
        };
        let running_version = version_of(booted.slot);
        let armed = record.state == boot::record::State::Try
            && record.trial == booted.slot.other()
            && version_of(booted.slot.other()) == Some(v);
        match outcome {
            Outcome::Trying if in_trial && running_version == Some(v) => {
                self.say(
                    api,
                    "trial",
                    Some(format!(
                        "booted release {v} on trial; committing when its programs are ready"
                    )),
                );
                self.stage = Stage::Trial(Instant::now());
            }
            Outcome::Trying if running_version == Some(v) => self.keep(api, v, Outcome::Committed),
            // admind restarted before the reboot: still armed, it reboots in the window.
            Outcome::Trying if armed => {
                self.say(
                    api,
                    "armed",
                    Some(format!("release {v} is armed; rebooting into it")),
                );
                self.stage = Stage::Armed(Instant::now());
            }
            Outcome::Trying => {
                self.keep(api, v, Outcome::RolledBack);
                self.say(api, "waiting", Some(format!("release {v} rolled back at its trial (see /status boot); it is not taken again")));
            }
            _ => {}
        }
        if matches!(self.last, Some((lv, Outcome::Committed)) if running_version == Some(lv)) {
            came_from(api, v);
        }
    }

    fn commit_trial(&mut self, api: &mut Api, now: Instant) -> Result<(), String> {
        let Some((v, _)) = self.last else {
            self.wait_for_next_check(api, "no release on trial".into());
            return Ok(());
        };
        match api.commit_when_ready() {
            Ok(_) => {
                self.keep(api, v, Outcome::Committed);
                came_from(api, v);
                self.wait_for_next_check(
                    api,
                    format!("release {v} committed: its programs are ready"),
                );
            }
            Err(refusal) => {
                self.say(
                    api,
                    "trial",
                    Some(format!("release {v} on trial: {}", refusal.reason)),
                );
                self.stage = Stage::Trial(now + TRIAL_ASK_EVERY);
            }
        }
        Ok(())
    }

    fn wait_for_next_check(&mut self, api: &mut Api, why: String) {
        self.say(api, "waiting", Some(why));
        self.stage = Stage::Waiting(Instant::now() + self.poll + self.spread, None);
    }

    /// A download broke off (the network, the server): the same GET again after a backoff,
    /// the release kept; after [`ATTEMPTS_MAX`] in a row it is given up until the next check.
    fn broke_off(&mut self, api: &mut Api, now: Instant, why: String, want: Want) {
        self.failures = self.failures.saturating_add(1);
        if self.job.is_some() && self.failures >= ATTEMPTS_MAX {
            let n = self.failures;
            return self.refused(api, format!("{why}; given up after {n} attempts"));
        }
        let backoff = BACKOFF_FIRST
            .saturating_mul(1 << self.failures.min(16).saturating_sub(1))
            .min(self.poll);
        let share = backoff.as_millis() as u64 * u64::from(self.share) / 65536;
        let backoff = backoff + Duration::from_millis(share);
        let secs = backoff.as_secs();
        let say = format!("{why}; trying again in {secs} s");
        self.say(api, "waiting", Some(say));
        self.stage = Stage::Waiting(now + backoff, self.job.is_some().then_some(want));
    }

    /// Anything else went wrong (a check refused the release, the disk failed): the release
    /// is dropped, its slot left incomplete, until the next check.
    fn refused(&mut self, api: &mut Api, why: String) {
        self.job = None;
        self.failures = 0;
        let secs = (self.poll + self.spread).as_secs();
        self.wait_for_next_check(api, format!("{why}; checking again in {secs} s"));
    }

    /// [`Follower::remember`], saying on the console if it cannot.
    fn keep(&mut self, api: &Api, version: u64, outcome: Outcome) {
        if let Err(e) = self.remember(api, version, outcome) {
            println!(
                "admind: channel: cannot keep {}: {e}",
                self.state_file.display()
            );
        }
    }

    /// Keeps the last release's outcome, and the bytes fetched for it, in [`STATE_FILE`],
    /// durably (the file, then its folder).
    fn remember(&mut self, api: &Api, version: u64, outcome: Outcome) -> std::io::Result<()> {
        self.last = Some((version, outcome));
        let fetched = api.channel.as_ref().map_or(0, |r| r.fetched_bytes);
        let name = OUTCOMES
            .iter()
            .find(|(o, _)| *o == outcome)
            .map_or("", |(_, n)| n);
        let temp = self.state_file.with_extension("partial");
        let folder = self
            .state_file
            .parent()
            .unwrap_or(std::path::Path::new("/"));
        std::fs::create_dir_all(folder)?;
        std::fs::write(&temp, format!("{version} {name} {fetched}\n"))?;
        std::fs::File::open(&temp)?.sync_all()?;
        std::fs::rename(&temp, &self.state_file)?;
        std::fs::File::open(folder)?.sync_all()
    }

    /// Sets `/status`'s state and, with a new result, says it on the console too.
    fn say(&self, api: &mut Api, state: &str, result: Option<String>) {
        if let Some(r) = api.channel.as_mut() {
            r.state = state.into();
            if let Some(result) = result.filter(|new| *new != r.result) {
                println!("admind: channel: {result}");
                r.result = result;
            }
        }
    }
}

impl Job {
    /// The chunk being fetched.
    fn chunk(&self) -> Result<Chunk, String> {
        let chunk = self.chunks.get(self.next).copied();
        chunk.ok_or_else(|| "no chunk is being fetched".into())
    }

    fn image(&self) -> Image {
        match self.part {
            Part::Kernel => self.kernel,
            Part::Root => self.root,
        }
    }

    /// The running slot's image of the part being written: where held chunks come from.
    fn running(&self, api: &Api) -> Result<Running, String> {
        let (disk, at, bytes) = match self.part {
            Part::Kernel => api.device.running_kernel(),
            Part::Root => api.device.running_root(),
        }?;
        Ok(Running { disk, at, bytes })
    }
}
