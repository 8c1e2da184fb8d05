//! The instance: a folder holding what belongs to one appliance across builds and updates.
//!
//! ```text
//! DIR/instance.toml        arch, hostname, size, kernel arguments, disk signature, creation time (not secret)
//! DIR/password             admind's password (mode 0600, no newline): `cat DIR/password`
//! DIR/slot-signing-key.pem the key that seals slots, P-256 PKCS#8 (mode 0600); never in an image
//! DIR/slot-keys            the keys every root of the instance trusts to seal slots (boot::seal)
//! DIR/known-devices        each device's TLS key, pinned on first contact (known_devices.rs)
//! ```
//!
//! Devices make their own TLS keys (admind's identity.rs); instances made before that also
//! hold `admind-key.pem`, `admind-cert.pem` and their fingerprints, which imgtool no longer
//! reads.
//!
//! Secrets are generated once (from the OS random source) and never replaced: an existing file
//! is read, and a file that cannot be read is an error, not a reason to make a new one.

use crate::config::Arch;
use anyhow::{bail, ensure, Context, Result};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const PASSWORD_CHARS: usize = 24; // from 62 symbols: about 143 bits
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The non-secret record, `instance.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    arch: String,
    hostname: String,
    /// Image size in bytes of the last build, if any.
    size_bytes: Option<u64>,
    /// MBR disk signature, hex, e.g. "1a2b3c4d": names partitions as PARTUUID=<sig>-NN.
    disk_signature: String,
    /// Unix time the instance was made; every timestamp in its images.
    created_unix: u32,
    /// Kernel arguments of the last image or committed push: what a push without
    /// `--kernel-arg` gives the new slot's command line.
    #[serde(default)]
    kernel_args: Vec<String>,
}

/// An opened instance with its secrets loaded.
pub struct Instance {
    pub dir: PathBuf,
    pub arch: Arch,
    pub hostname: String,
    pub size_bytes: Option<u64>,
    pub kernel_args: Vec<String>,
    pub disk_signature: u32,
    pub created_unix: u32,
    pub password: String,
    pub signing_key_pem: String,
    /// The trust file every root carries (`boot::seal`).
    pub slot_keys: String,
}

/// The default instance folder for an appliance named `hostname`.
pub fn default_dir(hostname: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("rustkrazy").join(hostname)
}

impl Instance {
    /// Opens an instance that must already exist (push, status, logs, reboot): nothing is
    /// created, since new secrets would not match the device.
    pub fn open_existing(dir: &Path) -> Result<Instance> {
        for name in ["instance.toml", "password"] {
            ensure!(
                dir.join(name).is_file(),
                "{} has no {name}: give the instance folder the appliance was built with (--instance DIR)",
                dir.display()
            );
        }
        Instance::open_or_create(dir, None, None)
    }

    /// Opens `dir`, creating it and any missing secret. `arch`/`hostname` are what this build
    /// asks for; `None` takes the instance's (or the default for a new one).
    pub fn open_or_create(
        dir: &Path,
        arch: Option<Arch>,
        hostname: Option<&str>,
    ) -> Result<Instance> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create instance folder {}", dir.display()))?;
        let record_path = dir.join("instance.toml");
        let mut record = match std::fs::read_to_string(&record_path) {
            Ok(text) => {
                let record: Record = toml::from_str(&text).with_context(|| {
                    format!("{} is damaged; fix or remove it", record_path.display())
                })?;
                let made_for = Arch::parse(&record.arch)?;
                if let Some(asked) = arch.filter(|&a| a != made_for) {
                    bail!(
                        "instance {} belongs to a {} appliance, not {}; use another --instance",
                        dir.display(),
                        made_for.name(),
                        asked.name()
                    );
                }
                record
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Record {
                arch: arch.unwrap_or(Arch::X86_64).name().to_string(),
                hostname: hostname.unwrap_or("rustkrazy").to_string(),
                size_bytes: None,
                disk_signature: format!("{:08x}", random_disk_signature()?),
                created_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_secs()
                    .try_into()
                    .unwrap_or(u32::MAX),
                kernel_args: Vec::new(),
            },
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", record_path.display()))
            }
        };
        if let Some(h) = hostname {
            record.hostname = h.to_string();
        }
        validate_hostname(&record.hostname)?;
        let disk_signature = u32::from_str_radix(&record.disk_signature, 16)
            .with_context(|| format!("{}: disk_signature is not hex", record_path.display()))?;

        let password = read_or_create(&dir.join("password"), 0o600, || {
            Ok(random_password()?.into_bytes())
        })?;
        let password = String::from_utf8(password).context("instance password is not UTF-8")?;
        ensure!(
            !password.trim().is_empty(),
            "{} is empty; remove it to generate a new one",
            dir.join("password").display()
        );
        let signing_key_path = dir.join("slot-signing-key.pem");
        let signing_key_pem = String::from_utf8(read_or_create(&signing_key_path, 0o600, || {
            Ok(random_key()?
                .to_pkcs8_pem(LineEnding::LF)?
                .as_bytes()
                .to_vec())
        })?)?;
        let signing_key = p256::ecdsa::SigningKey::from_pkcs8_pem(&signing_key_pem)
            .with_context(|| format!("{} is not a P-256 PKCS#8 key", signing_key_path.display()))?;
        let slot_keys_path = dir.join("slot-keys");
        let slot_keys = String::from_utf8(read_or_create(&slot_keys_path, 0o644, || {
            Ok(format!(
                "# The keys this instance's roots trust to seal slots (format: boot::seal).\ntrust {}\n",
                boot::encoding::Base64(&admin_api::seal::public_key(&signing_key))
            )
            .into_bytes())
        })?)?;
        if let Some(Err(line)) = boot::seal::entries(&slot_keys).find(Result::is_err) {
            bail!(
                "{} line {line} is not `trust KEY` or `revoke ID` (see boot::seal)",
                slot_keys_path.display()
            );
        }
        // Roots that do not trust the key that seals would refuse every later push.
        let current = admin_api::seal::signer_id(&admin_api::seal::public_key(&signing_key));
        let (mut trusted, mut revoked) = (false, false);
        for entry in boot::seal::entries(&slot_keys).flatten() {
            match entry {
                boot::seal::Entry::Trust(k) => trusted |= admin_api::seal::signer_id(&k) == current,
                boot::seal::Entry::Revoke(id) => revoked |= id == current,
            }
        }
        ensure!(
            trusted && !revoked,
            "{} does not trust the key in {} (or revokes it): roots built now would refuse every later push; restore the file",
            slot_keys_path.display(),
            signing_key_path.display()
        );

        // The UEFI boot program holds every key the roots trust (boot::uefi_keys).
        let trusted = admin_api::seal::trusted_keys(&slot_keys).map_or(0, |k| k.len());
        ensure!(
            trusted <= boot::uefi_keys::KEYS_MAX,
            "{} trusts {trusted} keys, more than the {} the UEFI boot program holds: revoke the old ones",
            slot_keys_path.display(),
            boot::uefi_keys::KEYS_MAX
        );

        let instance = Instance {
            dir: dir.to_path_buf(),
            arch: Arch::parse(&record.arch)?,
            hostname: record.hostname.clone(),
            size_bytes: record.size_bytes,
            kernel_args: record.kernel_args.clone(),
            disk_signature,
            created_unix: record.created_unix,
            password,
            signing_key_pem,
            slot_keys,
        };
        instance.save_record(&record)?;
        Ok(instance)
    }

    /// Records the size of the image just built.
    pub fn set_size(&mut self, size_bytes: u64) -> Result<()> {
        self.size_bytes = Some(size_bytes);
        self.save_record(&self.record())
    }

    /// Records the kernel arguments the device's committed slot now boots with.
    pub fn set_kernel_args(&mut self, args: &[String]) -> Result<()> {
        self.kernel_args = args.to_vec();
        self.save_record(&self.record())
    }

    fn record(&self) -> Record {
        Record {
            arch: self.arch.name().to_string(),
            hostname: self.hostname.clone(),
            size_bytes: self.size_bytes,
            disk_signature: format!("{:08x}", self.disk_signature),
            created_unix: self.created_unix,
            kernel_args: self.kernel_args.clone(),
        }
    }

    fn save_record(&self, record: &Record) -> Result<()> {
        let text = format!(
            "# rustkrazy instance: what later builds and updates of this appliance need.\n{}",
            toml::to_string(record)?
        );
        write_atomic(&self.dir.join("instance.toml"), text.as_bytes(), 0o644)
    }

    /// How seals name the key that seals now (`boot::seal`).
    pub fn signer_id(&self) -> Result<[u8; 32]> {
        Ok(admin_api::seal::signer_id(&admin_api::seal::public_key(
            &self.signing_key()?,
        )))
    }

    fn signing_key(&self) -> Result<p256::ecdsa::SigningKey> {
        p256::ecdsa::SigningKey::from_pkcs8_pem(&self.signing_key_pem).with_context(|| {
            format!(
                "{}: slot-signing-key.pem is not a P-256 key",
                self.dir.display()
            )
        })
    }

    /// The signature of a release manifest's signed part (`boot::release`) by the
    /// slot-signing key: ECDSA P-256 over SHA-256, DER, as `openssl dgst -sha256 -verify`
    /// reads it.
    pub fn sign_release(&self, signed: &[u8]) -> Result<Vec<u8>> {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = self.signing_key()?.sign(signed);
        Ok(signature.to_der().as_bytes().to_vec())
    }

    /// Checks a release manifest's signature ([`Instance::sign_release`]) against the
    /// slot-signing key.
    pub fn check_release(&self, signed: &[u8], der: &[u8]) -> Result<()> {
        use p256::ecdsa::signature::Verifier;
        let key = p256::ecdsa::VerifyingKey::from(&self.signing_key()?);
        let signature = p256::ecdsa::Signature::from_der(der)
            .map_err(|_| anyhow::anyhow!("the signature is not an ECDSA signature (DER)"))?;
        key.verify(signed, &signature).map_err(|_| {
            anyhow::anyhow!(
                "the manifest is not signed by this instance's slot-signing key ({})",
                self.dir.display()
            )
        })
    }

    /// The seal of a slot whose build id is `build`; `going_back`: it may replace a committed
    /// slot up to that version (`boot::seal`).
    pub fn seal(
        &self,
        build: &[u8; 32],
        version: u64,
        going_back: Option<u64>,
    ) -> Result<boot::seal::Seal> {
        let key = self.signing_key()?;
        Ok(admin_api::seal::sign(
            &key,
            build,
            version,
            self.arch.seal_arch(),
            going_back,
        ))
    }

    /// What the device stores instead of the password (format: `boot::password`; derived by
    /// `admin_api::password`). The salt is derived from the slot-signing key's public half,
    /// random per instance, so it differs per instance and images stay reproducible.
    pub fn password_hash_line(&self) -> Result<String> {
        let key = self.signing_key()?;
        let salt: [u8; 16] = Sha256::digest(
            [
                b"rustkrazy admind password salt\n".as_slice(),
                &admin_api::seal::public_key(&key),
            ]
            .concat(),
        )[..16]
            .try_into()
            .unwrap_or([0; 16]);
        Ok(admin_api::password::stored(self.password.as_bytes(), salt).to_string())
    }
}

/// Hostnames: RFC 1123 labels.
fn validate_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ensure!(
        ok,
        "hostname {name:?} is not valid: use letters, digits and '-', at most 63"
    );
    Ok(())
}

/// Reads `path`, or creates it with `make()` if it does not exist (never replacing a file).
pub(crate) fn read_or_create(
    path: &Path,
    mode: u32,
    make: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(data) => return Ok(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let data = make()?;
    let temp = write_temp(path, &data, mode)?;
    // A hard link fails if the name exists: a file that appeared meanwhile is never replaced.
    std::fs::hard_link(&temp, path).with_context(|| format!("cannot create {}", path.display()))?;
    std::fs::remove_file(&temp)?;
    Ok(data)
}

/// Writes `data` to `path` with ".partial" as its extension, durably; returns that path.
fn write_temp(path: &Path, data: &[u8], mode: u32) -> Result<PathBuf> {
    let temp = path.with_extension("partial");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    file.write_all(data)?;
    file.sync_all()?;
    Ok(temp)
}

pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    let temp = write_temp(path, data, mode)?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).context("the OS random source failed")?;
    Ok(bytes)
}

fn random_disk_signature() -> Result<u32> {
    // Zero means "no signature" to some tools.
    loop {
        let sig = u32::from_le_bytes(random_bytes()?);
        if sig != 0 {
            return Ok(sig);
        }
    }
}

/// The version a seal made now carries: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else the current Unix time. A device refuses a slot older than its committed
/// one unless the seal allows it (`push --allow-older`).
pub fn seal_version() -> Result<u64> {
    if let Ok(text) = std::env::var("SOURCE_DATE_EPOCH") {
        return text
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={text:?} is not a number of seconds"));
    }
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs())
}

fn random_password() -> Result<String> {
    let mut out = String::with_capacity(PASSWORD_CHARS);
    while out.len() < PASSWORD_CHARS {
        for b in random_bytes::<32>()? {
            // Rejection sampling keeps every symbol equally likely (248 = 4 * 62).
            if b < 248 && out.len() < PASSWORD_CHARS {
                out.push(ALPHANUMERIC[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

pub(crate) fn random_key() -> Result<p256::ecdsa::SigningKey> {
    for _ in 0..16 {
        // Fails only for zero or values >= the group order: vanishingly rare.
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random_bytes::<32>()?) {
            return Ok(key);
        }
    }
    bail!("could not generate a P-256 key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_and_alphanumeric() {
        let p = random_password().unwrap();
        assert_eq!(p.len(), PASSWORD_CHARS);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(p, random_password().unwrap());
    }

    #[test]
    fn hostnames() {
        assert!(validate_hostname("thermo-1").is_ok());
        for bad in ["", "-a", "a_b", "a.b", &"x".repeat(64)] {
            assert!(validate_hostname(bad).is_err(), "{bad}");
        }
    }
}
