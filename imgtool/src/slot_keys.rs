//! `imgtool key` and `imgtool seal`: the instance's slot-signing keys, a seal for uploads
//! made without push, and moving to a new key without a
//! device ever refusing a push:
//!
//! 1. `key new` makes the next key (`slot-signing-key.next.pem`) and adds it to
//!    `slot-keys`; pushes are still sealed by the current key, and their roots trust both.
//! 2. One push, so that the devices' committed roots trust the next key.
//! 3. `key rotate`: the next key becomes the current one, and `slot-keys` revokes the old
//!    one (kept as `slot-signing-key.old.pem`, for a device the push of step 2 did not reach:
//!    it trusts only that key). The next push is sealed by the new key, and once it commits
//!    the device refuses the old key's seals.
//!
//! The UEFI boot program follows: admind gives it the keys of each root that commits
//! (`boot::uefi_keys`), both after step 2, the new one only after step 3's push.

use crate::instance::{random_key, read_or_create, write_atomic, Instance};
use anyhow::{bail, Context, Result};
use boot::encoding::{Base64, Hex};
use boot::seal::Entry;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};
use std::path::Path;

const CURRENT: &str = "slot-signing-key.pem";
const NEXT: &str = "slot-signing-key.next.pem";
const OLD: &str = "slot-signing-key.old.pem";
const TRUST: &str = "slot-keys";

fn read_key(path: &Path) -> Result<SigningKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("{} is not a P-256 PKCS#8 key", path.display()))
}

fn id_of(key: &SigningKey) -> [u8; 32] {
    admin_api::seal::signer_id(&admin_api::seal::public_key(key))
}

fn trust_line(key: &SigningKey) -> String {
    format!("trust {}", Base64(&admin_api::seal::public_key(key)))
}

/// The instance's keys: each trusted or revoked one, and which seals now.
pub fn list(dir: &Path) -> Result<String> {
    let instance = Instance::open_existing(dir)?;
    let current = id_of(&read_key(&dir.join(CURRENT))?);
    let next = dir
        .join(NEXT)
        .is_file()
        .then(|| read_key(&dir.join(NEXT)).map(|k| id_of(&k)))
        .transpose()?;
    let mut out = String::new();
    for entry in boot::seal::entries(&instance.slot_keys).flatten() {
        let (id, what) = match entry {
            Entry::Trust(key) => (admin_api::seal::signer_id(&key), "trusted"),
            Entry::Revoke(id) => (id, "revoked"),
        };
        let role = if id == current {
            ", seals now"
        } else if Some(id) == next {
            ", next (imgtool key rotate)"
        } else {
            ""
        };
        out.push_str(&format!("{}  {what}{role}\n", Hex(&id)));
    }
    Ok(out)
}

/// The seal, in base64 for `X-Slot-Seal`, of a slot that holds the root image, kernel and
/// command line in these files (for uploads made without `imgtool push`, e.g. with curl).
pub fn seal_files(
    dir: &Path,
    root: &Path,
    kernel: &Path,
    cmdline: &Path,
    going_back: Option<u64>,
) -> Result<String> {
    let instance = Instance::open_existing(dir)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let image = read(root)?;
    let line = String::from_utf8(read(cmdline)?)
        .with_context(|| format!("{} is not text", cmdline.display()))?;
    let root = boot::rootid::Part {
        bytes: image.len() as u64,
        sha256: Sha256::digest(&image).into(),
    };
    let id = crate::mkimg::slot_id(root, &read(kernel)?, &line);
    let seal = instance.seal(&id.build, crate::instance::seal_version()?, going_back)?;
    Ok(Base64(&seal.encode()).to_string())
}

/// Makes the next key and has every root from now on trust it.
pub fn new_key(dir: &Path) -> Result<String> {
    let instance = Instance::open_existing(dir)?;
    if dir.join(NEXT).exists() {
        bail!(
            "{} already holds a next key: push once, then `imgtool key rotate`",
            dir.display()
        );
    }
    let pem = read_or_create(&dir.join(NEXT), 0o600, || {
        Ok(random_key()?
            .to_pkcs8_pem(LineEnding::LF)?
            .as_bytes()
            .to_vec())
    })?;
    let key = SigningKey::from_pkcs8_pem(std::str::from_utf8(&pem)?)?;
    let mut trust = instance.slot_keys.clone();
    if !trust.ends_with('\n') {
        trust.push('\n');
    }
    trust.push_str(&trust_line(&key));
    trust.push('\n');
    write_atomic(&dir.join(TRUST), trust.as_bytes(), 0o644)?;
    Ok(format!(
        "made key {}; roots from now on trust it. Push once (sealed by the current key), then `imgtool key rotate`",
        Hex(&id_of(&key))
    ))
}

/// The next key seals from now on; roots revoke the old one.
pub fn rotate(dir: &Path) -> Result<String> {
    // Read directly, not through `Instance`: a rotation cut short (the old key revoked, not
    // yet replaced) is finished by running it again.
    let trust_path = dir.join(TRUST);
    let slot_keys = std::fs::read_to_string(&trust_path)
        .with_context(|| format!("cannot read {}", trust_path.display()))?;
    let next_path = dir.join(NEXT);
    if !next_path.is_file() {
        bail!(
            "{} holds no next key: `imgtool key new` makes one",
            dir.display()
        );
    }
    let next = read_key(&next_path)?;
    let old = read_key(&dir.join(CURRENT))?;
    let (old_id, old_line) = (id_of(&old), trust_line(&old));
    let revoke = format!("revoke {}", Hex(&old_id));
    // First the trust file (so a rotation cut short is finished by running it again), then
    // the key.
    let mut trust: String = slot_keys
        .lines()
        .filter(|l| l.trim() != old_line && l.trim() != revoke)
        .map(|l| format!("{l}\n"))
        .collect();
    trust.push_str(&revoke);
    trust.push('\n');
    write_atomic(&dir.join(TRUST), trust.as_bytes(), 0o644)?;
    let _ = std::fs::remove_file(dir.join(OLD));
    std::fs::hard_link(dir.join(CURRENT), dir.join(OLD))
        .with_context(|| format!("cannot keep the old key as {OLD}"))?;
    std::fs::rename(&next_path, dir.join(CURRENT))
        .with_context(|| format!("cannot make {} the current key", next_path.display()))?;
    Ok(format!(
        "key {} seals from now on; roots revoke key {} (kept as {OLD}). A device refuses the old key's seals once a push of this instance commits there",
        Hex(&id_of(&next)),
        Hex(&old_id)
    ))
}
