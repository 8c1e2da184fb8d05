//! `imgtool push`: an over-the-air update that ends committed on the new root or back on
//! the old one.
//!
//! A slot is kernel + command line + root, and an update carries all three.
//!
//! 1. Build the root image (same programs and settings as mkimg); read the kernel; write
//!    the inactive slot's command line (with `--kernel-arg`s).
//! 2. Ask the device how it runs; refuse while it is in an uncommitted trial.
//! 3. Upload the kernel and the command line to the inactive slot unless its trailer says
//!    it holds these very bytes, then the root: only the chunks the running root lacks
//!    (`crate::chunking`), or whole to a device that cannot list them. Each goes with its
//!    expected SHA-256; check the slot's build id the device reports (root, kernel and
//!    command line together).
//! 4. Arm a one-shot trial of that slot, reboot.
//! 5. Wait (deadline, countdown) for a new boot to answer. On the new slot with our build:
//!    commit, asking again while admind says a program is not ready (`commit_when_ready`).
//!    Back on the old one: the trial failed (a kernel that panicked, a root that never
//!    committed) and the device rolled back by itself; say so and fail.

use crate::client::Client;
use crate::config::Plan;
use crate::instance::Instance;
use admin_api::endpoints::{self, Stored};
use anyhow::{anyhow, bail, Context, Result};
use boot::encoding::Hex;
use sha2::Digest;
use std::time::{Duration, Instant};

pub struct Options {
    pub to: Option<String>,
    /// How long to wait for the device to come back after the reboot, and then for its
    /// programs to be ready.
    pub timeout: Duration,
    /// Also replace the boot partition's shared files (config.txt, firmware) and the MBR
    /// code, after the commit. Not A/B.
    pub boot: bool,
    /// Seal the slot as one that may replace a newer committed slot.
    pub allow_older: bool,
    /// Push the newest release of this channel folder (`imgtool publish`) instead of
    /// building one: checked, and sealed as published.
    pub release: Option<std::path::PathBuf>,
}

/// Where the time went.
#[derive(Debug, Default)]
pub struct Timings {
    pub build: Duration,
    pub upload: Duration,
    /// From asking for the reboot until the old system stopped answering.
    pub reboot: Duration,
    /// From then until the new boot answered.
    pub wait: Duration,
    pub commit: Duration,
    pub bytes: u64,
    /// The boot update, when asked for: upload, then reboot and wait.
    pub boot_upload: Duration,
    pub boot_reboot_and_wait: Duration,
}

/// The fields of GET /status that push relies on.
struct Status {
    active_slot: u8,
    /// The root slot updates go to.
    inactive_slot: u8,
    boot_id: String,
    boot_state: String,
    /// A slot the UEFI boot program refused at this boot, and why.
    refused: Option<String>,
    /// The signer ids of the keys the device's UEFI boot program holds (`None`: none there).
    boot_program_keys: Option<Vec<String>>,
    uncommitted_trial: bool,
    build_of_active: Option<String>,
    /// The version of the active slot's seal (0: not sealed).
    committed_version: u64,
    /// What the inactive slot's trailer says it holds (`None`: incomplete).
    inactive_kernel: Option<String>,
    inactive_cmdline: Option<String>,
    /// In a trial: how long until init gives it up.
    trial_left: Option<Duration>,
}

fn status(client: &Client) -> Result<Status> {
    let v: admin_api::status::Status = client.get(endpoints::STATUS)?.document()?;
    if v.record.as_ref().is_some_and(|r| r.attempts.is_none()) {
        bail!("the device keeps its boot record in one copy, as images made before two-copy records did: its boot code cannot read the record a new init writes, so a push would leave it booting root A whatever it holds. Flash it with a new image (imgtool mkimg), copying what /data holds off first (GET /data/read)");
    }
    let active = v
        .active_slot
        .and_then(boot::layout::Slot::of_partition)
        .ok_or_else(|| anyhow!("the device does not know which root it runs"))?;
    let (active_slot, inactive_slot) = (active.number(), active.other().number());
    let inactive = v.roots.get(&inactive_slot);
    Ok(Status {
        inactive_kernel: inactive
            .and_then(|r| r.kernel.as_ref())
            .map(|p| p.sha256.clone()),
        inactive_cmdline: inactive
            .and_then(|r| r.cmdline.as_ref())
            .map(|p| p.sha256.clone()),
        active_slot,
        inactive_slot,
        trial_left: v
            .boot
            .as_ref()
            .and_then(|b| b.timeout_s)
            .map(|t| Duration::from_secs(u64::from(t).saturating_sub(v.uptime_s))),
        boot_id: v.boot_id,
        boot_state: v.boot.as_ref().map_or("?".into(), |b| b.state.clone()),
        refused: v.boot.as_ref().and_then(|b| b.refused.clone()),
        boot_program_keys: v.boot_program_keys,
        uncommitted_trial: v.uncommitted_trial,
        build_of_active: v.roots.get(&active_slot).and_then(|r| r.build.clone()),
        committed_version: v
            .roots
            .get(&active_slot)
            .and_then(|r| r.seal.as_ref())
            .map_or(0, |s| s.version),
    })
}

pub fn push(plan: &Plan, instance: &Instance, options: &Options) -> Result<Timings> {
    if options.release.is_some() && (options.boot || options.allow_older) {
        bail!("--release pushes a published slot as it is: --boot and --allow-older do not apply (publish with the settings you want)");
    }
    if options.boot && plan.sealed_slots != Some(false) {
        bail!("--boot: the new root requires sealed slots, and a device that requires them takes no boot partition or MBR code (they carry no seal); push with `sealed_slots = false` in the appliance file to change them, then push again without it");
    }
    let mut t = Timings::default();
    let started = Instant::now();
    let parts = match &options.release {
        Some(channel) => crate::slot_parts::read_release(channel, instance)?,
        None => crate::slot_parts::build(plan, instance)?,
    };
    let kernel = &parts.kernel;
    t.build = started.elapsed();
    t.bytes = parts.root.len() as u64;
    eprintln!(
        "push: root image {} bytes, kernel {} bytes",
        parts.root.len(),
        kernel.len()
    );

    let client = Client::new(instance, options.to.as_deref())?;
    let before =
        status(&client).with_context(|| format!("asking {} for its status", client.target))?;
    if before.uncommitted_trial {
        bail!("the device is in an uncommitted trial of root {}: wait for it to settle (it rolls back by itself) or commit it first", before.active_slot);
    }
    // The UEFI boot program refuses a slot sealed by a key it does not hold: say so now,
    // not after a trial that rolls back. (admind gives it the keys each committed root
    // trusts, so this means a rotation ran ahead of the pushes: README, Sealed slots.)
    let signer = Hex(&instance.signer_id()?).to_string();
    if let Some(keys) = before.boot_program_keys.as_ref().filter(|k| !k.is_empty()) {
        if !keys.contains(&signer) {
            bail!(
                "the device's UEFI boot program holds keys {}, not {}, which seals this push: it would refuse the slot. Its keys follow the committed root's slot-keys: after `imgtool key new`, push once (sealed by the current key) before `imgtool key rotate`",
                keys.join(", "),
                signer
            );
        }
    }
    let target_slot = before.inactive_slot;
    if let Some(seals) = &parts.seals {
        let seal = seals[usize::from(target_slot - 2)];
        if !seal.may_replace(before.committed_version) {
            bail!("the release is version {}, older than the device's committed slot (version {}): it would refuse it. Publish a newer release", seal.version, before.committed_version);
        }
    }
    let cmdline = parts.cmdline(target_slot).to_string();
    let root = &parts.root;
    let root_part = boot::rootid::Part {
        bytes: root.len() as u64,
        sha256: sha2::Sha256::digest(root).into(),
    };
    let want = crate::mkimg::slot_id(root_part, kernel, &cmdline);
    let build = Hex(&want.build).to_string();
    eprintln!(
        "push: {} runs slot {}; updating slot {target_slot} to build {}",
        client.target,
        before.active_slot,
        &build[..16]
    );

    let started = Instant::now();
    let small: [(&str, &str, &[u8], Option<&String>); 2] = [
        (
            "kernel",
            endpoints::UPDATE_KERNEL,
            kernel,
            before.inactive_kernel.as_ref(),
        ),
        (
            "command line",
            endpoints::UPDATE_CMDLINE,
            cmdline.as_bytes(),
            before.inactive_cmdline.as_ref(),
        ),
    ];
    // Each part is read back by the device and must be what was sent, in the slot meant.
    let send = |what: &str, path: &str, body: &[u8], sha: &str| -> Result<Stored> {
        let answer: Stored = client
            .request(
                "POST",
                path,
                &[(endpoints::EXPECTED_SHA256, sha.to_string())],
                body,
                true,
            )
            .with_context(|| format!("uploading the {what}"))?
            .document()
            .with_context(|| format!("the {what} was refused"))?;
        if answer.sha256 != sha || answer.slot != Some(target_slot as u8) {
            bail!(
                "the device reports {} for slot {:?} after the {what} upload, expected {sha} for slot {target_slot}; not arming it",
                answer.sha256, answer.slot
            );
        }
        Ok(answer)
    };
    for (what, path, bytes, held) in small {
        let sha = Hex(&sha2::Sha256::digest(bytes)).to_string();
        if held == Some(&sha) {
            eprintln!("push: slot {target_slot} already holds this {what}; not sending it");
            continue;
        }
        eprintln!("push: sending the {what} to slot {target_slot}");
        send(what, path, bytes, &sha)?;
    }
    let root_sha = Hex(&root_part.sha256).to_string();
    let answer = match chunked_root(&client, root)? {
        Some(up) => {
            eprintln!(
                "push: sending the root image to slot {target_slot}: {} of its {} chunks, {} of {} bytes (the running root holds the rest)",
                up.chunks_sent, up.chunks, up.bytes_sent, root.len()
            );
            t.bytes = up.body.len() as u64;
            send(
                "root image",
                endpoints::UPDATE_ROOT_CHUNKS,
                &up.body,
                &root_sha,
            )?
        }
        None => {
            eprintln!("push: sending the root image to slot {target_slot}");
            send("root image", endpoints::UPDATE_ROOT, root, &root_sha)?
        }
    };
    t.upload = started.elapsed();
    if answer.build.as_deref() != Some(build.as_str()) {
        bail!(
            "the device reports build {:?} for slot {target_slot}, expected {build} (root, kernel and command line); not arming it",
            answer.build
        );
    }
    eprintln!(
        "push: slot {target_slot} written and verified by the device (build {})",
        &build[..16]
    );

    // Going back is allowed over what this device has committed now, and no further.
    let going_back = options.allow_older.then_some(before.committed_version);
    let seal = match &parts.seals {
        Some(seals) => seals[usize::from(target_slot - 2)],
        None => instance.seal(&want.build, crate::instance::seal_version()?, going_back)?,
    };
    client
        .request(
            "POST",
            &format!("{}?mode=try", endpoints::SWITCH),
            &[(
                endpoints::SLOT_SEAL,
                boot::encoding::Base64(&seal.encode()).to_string(),
            )],
            b"",
            false,
        )?
        .json()
        .context("arming the trial boot")?;
    client
        .post(endpoints::REBOOT, b"")?
        .json()
        .context("asking the device to reboot")?;
    eprintln!("push: trial of root {target_slot} armed; the device reboots");

    let started = Instant::now();
    let after = match wait_for_new_boot(&client, &before.boot_id, options.timeout) {
        Ok((s, down)) => {
            t.reboot = down;
            t.wait = started.elapsed().saturating_sub(down);
            s
        }
        Err(e) => bail!(
            "{e}; if the new root never commits, the device rolls back to root {} by itself",
            before.active_slot
        ),
    };

    if after.active_slot != target_slot {
        if let Some((slot, why)) = after.refused.as_deref().and_then(|r| r.split_once(':')) {
            bail!(
                "the update was rolled back: the device's UEFI boot program refused slot {slot} ({why}; its console says more) and booted root {} (boot state {})",
                after.active_slot, after.boot_state
            );
        }
        bail!(
            "the update was rolled back: the device is back on root {} (boot state {}); the new slot {target_slot} (kernel, command line, root) did not come up and commit in time",
            after.active_slot, after.boot_state
        );
    }
    if after.build_of_active.as_deref() != Some(build.as_str()) {
        bail!(
            "the device runs root {target_slot} but with build {:?}, not {build}",
            after.build_of_active
        );
    }
    let started = Instant::now();
    // Asked until the programs are ready, but given up early enough to read their logs
    // and roll back before init's own deadline does.
    let ready_wait = after.trial_left.map_or(options.timeout, |left| {
        left.saturating_sub(READY_MARGIN).min(options.timeout)
    });
    let record = commit_when_ready(
        &client,
        target_slot,
        &after.boot_id,
        ready_wait,
        options.timeout,
    )?;
    t.commit = started.elapsed();
    if u64::from(record.committed) != u64::from(target_slot) {
        bail!("commit did not take: the boot record says {record:?}");
    }
    eprintln!("push: root {target_slot} committed; build {}", &build[..16]);

    if options.boot {
        update_boot(
            &client,
            plan,
            instance,
            target_slot,
            options.timeout,
            &mut t,
        )?;
    }
    Ok(t)
}

/// How often, and how many times, push asks again for an index another client's request
/// is computing (503): the device reads its root once, in 1 MiB steps.
const INDEX_BUSY_ASK_EVERY: Duration = Duration::from_secs(1);
const INDEX_BUSY_ASKS: u32 = 30;

/// The chunked upload of `image` to a device, from the index of the root it runs (see
/// `crate::chunking`); `None` from a device that cannot say (an admind without
/// `/root/index`, or a running root without a trailer): it gets the whole image.
fn chunked_root(client: &Client, image: &[u8]) -> Result<Option<crate::chunking::Upload>> {
    // 503: another client's request is computing it; it is kept once done.
    let mut answer = client
        .get(endpoints::ROOT_INDEX)
        .context("asking for the running root's chunk index")?;
    for _ in 0..INDEX_BUSY_ASKS {
        if answer.status != 503 {
            break;
        }
        std::thread::sleep(INDEX_BUSY_ASK_EVERY);
        answer = client.get(endpoints::ROOT_INDEX)?;
    }
    if answer.status == 404 || answer.status == 409 {
        eprintln!(
            "push: the device cannot list its running root's chunks ({}); sending the whole root",
            answer.error_text()
        );
        return Ok(None);
    }
    if answer.status != 200 {
        bail!(
            "asking for the running root's chunk index: admind answered {}: {}",
            answer.status,
            answer.error_text()
        );
    }
    let held =
        crate::chunking::offsets(&answer.body).context("the device's answer to GET /root/index")?;
    Ok(Some(crate::chunking::upload(image, &held)))
}

/// Replaces the boot partition and the MBR code, then reboots and checks the device comes
/// back on its committed root. Not A/B: see README (a power cut between the two writes can
/// leave a disk that does not boot).
fn update_boot(
    client: &Client,
    plan: &Plan,
    instance: &Instance,
    slot: u8,
    timeout: Duration,
    t: &mut Timings,
) -> Result<()> {
    let (image, code) = crate::boot_partition::build_boot(plan, instance)?;
    let before = status(client)?;
    let started = Instant::now();
    let want = Hex(&sha2::Sha256::digest(&image)).to_string();
    let answer: Stored = client
        .request("POST", endpoints::UPDATE_BOOT, &[], &image, true)
        .context("uploading the boot partition")?
        .document()
        .context("the boot partition upload was refused")?;
    if answer.sha256 != want {
        bail!("the device read back {} for the boot partition, expected {want}; its boot partition may be damaged, do not reboot it before pushing --boot again", answer.sha256);
    }
    if instance.arch == crate::config::Arch::X86_64 {
        // The device puts its own fields (where the second stage is, the slot table) in.
        let mut hash = sha2::Sha256::new();
        for part in boot::mbr::chosen_parts(&code) {
            hash.update(part);
        }
        let want = Hex(&hash.finalize()).to_string();
        let answer: Stored = client
            .post(endpoints::UPDATE_MBR, &code)?
            .document()
            .context("updating the MBR code")?;
        if answer.sha256 != want {
            bail!(
                "the MBR code read back as {}, expected {want}; push --boot again before rebooting",
                answer.sha256
            );
        }
    }
    t.boot_upload = started.elapsed();
    eprintln!(
        "push: boot partition ({} bytes) and MBR code written; rebooting to check them",
        image.len()
    );
    client
        .post(endpoints::REBOOT, b"")?
        .json()
        .context("asking the device to reboot")?;
    let started = Instant::now();
    let after = match wait_for_new_boot(client, &before.boot_id, timeout) {
        Ok((s, _)) => s,
        Err(e) => {
            bail!("{e} after the boot update; it needs someone at its console, or a fresh image")
        }
    };
    t.boot_reboot_and_wait = started.elapsed();
    if after.active_slot != slot {
        bail!(
            "after the boot update the device runs root {}, not {slot}",
            after.active_slot
        );
    }
    eprintln!("push: the device booted the new boot partition and runs root {slot}");
    Ok(())
}

/// How often push asks admind to commit while a program is not ready.
const READY_ASK_EVERY: Duration = Duration::from_secs(2);

/// How long before init's trial deadline push stops waiting for readiness, to read the
/// failing program's logs and roll back itself.
const READY_MARGIN: Duration = Duration::from_secs(20);

/// Commits the trial running now once admind agrees: it refuses (503) while a program that
/// declared a readiness check fails it. Not ready within `ready_wait`: the program's last log
/// lines are fetched, the device is rebooted back to its committed root, and the error
/// names the program.
fn commit_when_ready(
    client: &Client,
    target_slot: u8,
    trial_boot_id: &str,
    ready_wait: Duration,
    timeout: Duration,
) -> Result<admin_api::status::Record> {
    let deadline = Instant::now() + ready_wait;
    let mut why = String::new();
    loop {
        match client.post(endpoints::COMMIT, b"") {
            Ok(answer)
                if answer.status == 503
                    && answer.error_text().starts_with(endpoints::NOT_READY) =>
            {
                let now = answer.error_text();
                if now != why {
                    eprintln!("push: {now}; asking again until it is");
                    why = now;
                }
            }
            Ok(answer) => return answer.document().context("committing the new root"),
            // Asked again: a connection can fail once; a device that rebooted at its own
            // deadline is found below.
            Err(e) => {
                eprintln!("push: committing: {e:#}; asking again");
                if why.is_empty() {
                    why = format!("admind did not answer ({e:#})");
                }
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(READY_ASK_EVERY);
    }
    let logs = why
        .strip_prefix(endpoints::NOT_READY)
        .and_then(|rest| rest.split_once(endpoints::NOT_READY_AFTER_NAME))
        .map(|(name, _)| last_log_lines(client, name))
        .unwrap_or_default();
    // Rebooting an uncommitted trial boots the committed root; a device that is already
    // rebooting may not answer this.
    if let Err(e) = client.post(endpoints::REBOOT, b"") {
        eprintln!("push: asking the device to roll back: {e:#}");
    }
    let back = wait_for_new_boot(client, trial_boot_id, timeout)?.0;
    if back.active_slot == target_slot {
        bail!(
            "the trial of root {target_slot} was not committed ({why}), and the device booted root {target_slot} again (boot state {}); see `imgtool status`",
            back.boot_state
        );
    }
    bail!(
        "the update was rolled back: {why} after {} s; the device is back on root {} (boot state {}){logs}",
        ready_wait.as_secs(),
        back.active_slot,
        back.boot_state
    )
}

/// The last lines of service `name`'s output, as an indented block to end a message.
fn last_log_lines(client: &Client, name: &str) -> String {
    const LINES: usize = 10;
    let mut out = String::new();
    for stream in ["stdout", "stderr"] {
        let path = format!("{}?service={name}&stream={stream}", endpoints::LOGS);
        let Ok(answer) = client.get(&path) else {
            continue;
        };
        let text = answer.text();
        let lines: Vec<&str> = text.lines().collect();
        if answer.status != 200 || lines.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{name}'s last {stream} lines:"));
        for line in &lines[lines.len().saturating_sub(LINES)..] {
            out.push_str(&format!("\n    {line}"));
        }
    }
    out
}

/// Polls /status until a boot other than `old_boot_id` answers, with a countdown. Also
/// returns how long the old system kept answering.
fn wait_for_new_boot(
    client: &Client,
    old_boot_id: &str,
    timeout: Duration,
) -> Result<(Status, Duration)> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut went_down: Option<Duration> = None;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_said = u64::MAX;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if tty {
                eprintln!();
            }
            bail!(
                "the device did not answer within {} s of the reboot",
                timeout.as_secs()
            );
        }
        if tty {
            eprint!(
                "\rpush: waiting for the device, {:>3} s left ",
                left.as_secs()
            );
        } else if left.as_secs().is_multiple_of(10) && left.as_secs() != last_said {
            last_said = left.as_secs();
            eprintln!("push: waiting for the device, {} s left", left.as_secs());
        }
        match status(client) {
            // The old system can answer until init stops admind: only a new boot counts.
            Ok(s) if s.boot_id != old_boot_id => {
                if tty {
                    eprintln!();
                }
                let down = went_down.unwrap_or_else(|| started.elapsed());
                return Ok((s, down));
            }
            Ok(_) => {}
            Err(e) if e.downcast_ref::<crate::client::KeyChanged>().is_some() => {
                if tty {
                    eprintln!();
                }
                return Err(e);
            }
            Err(_) => {
                went_down.get_or_insert_with(|| started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
