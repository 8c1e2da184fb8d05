//! `DIR/known-devices`: the key each device of an instance showed on first contact, by the
//! address imgtool reaches it at, as OpenSSH's known_hosts keeps host keys. Every device
//! makes its own key on first boot (admind's identity.rs), so the image cannot say which key
//! to expect; the first contact can (trust on first use), and every later one must match.
//!
//! ```text
//! # ADDRESS (as given to --to, with its port)   KEY (curl --pinnedpubkey takes it as is)
//! 192.168.1.20:8443 sha256//q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=
//! ```

use crate::instance::write_atomic;
use admin_api::cert::Pin;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const FILE: &str = "known-devices";
const HEADER: &str = "# The key each device showed on first contact: ADDRESS KEY \
    (imgtool forget --to ADDRESS drops one; KEY is what curl --pinnedpubkey takes).\n";

pub struct KnownDevices {
    path: PathBuf,
    /// (address, pin) in file order.
    entries: Vec<(String, [u8; 32])>,
}

impl KnownDevices {
    /// The instance's file; none yet is an empty list.
    pub fn open(instance_dir: &Path) -> Result<KnownDevices> {
        let path = instance_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line
                .split_once(' ')
                .and_then(|(addr, key)| Some((addr.to_string(), Pin::parse(key.trim())?)));
            match parsed {
                Some(entry) => entries.push(entry),
                None => bail!(
                    "{} line {} is not `ADDRESS sha256//KEY`: fix or delete the line",
                    path.display(),
                    n + 1
                ),
            }
        }
        Ok(KnownDevices { path, entries })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key pinned for `address`.
    pub fn get(&self, address: &str) -> Option<[u8; 32]> {
        self.entries
            .iter()
            .find(|(a, _)| a == address)
            .map(|&(_, pin)| pin)
    }

    /// Pins `pin` for `address` (replacing what was pinned) and saves the file.
    pub fn pin(&mut self, address: &str, pin: [u8; 32]) -> Result<()> {
        self.entries.retain(|(a, _)| a != address);
        self.entries.push((address.to_string(), pin));
        self.save()
    }

    /// Drops `address`'s pin; false if there was none.
    pub fn forget(&mut self, address: &str) -> Result<bool> {
        let before = self.entries.len();
        self.entries.retain(|(a, _)| a != address);
        if self.entries.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    fn save(&self) -> Result<()> {
        let mut text = HEADER.to_string();
        for (address, pin) in &self.entries {
            text.push_str(&format!("{address} {}\n", Pin(pin)));
        }
        write_atomic(&self.path, text.as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_replaced_and_forgotten() {
        let dir = std::env::temp_dir().join(format!("known-devices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut known = KnownDevices::open(&dir).unwrap();
        assert_eq!(known.get("a:1"), None);
        known.pin("a:1", [1; 32]).unwrap();
        known.pin("[::1]:8443", [2; 32]).unwrap();
        known.pin("a:1", [3; 32]).unwrap();
        let known = KnownDevices::open(&dir).unwrap();
        assert_eq!(known.get("a:1"), Some([3; 32]));
        assert_eq!(known.get("[::1]:8443"), Some([2; 32]));
        let mut known = known;
        assert!(known.forget("a:1").unwrap());
        assert!(!known.forget("a:1").unwrap());
        assert_eq!(KnownDevices::open(&dir).unwrap().get("a:1"), None);
        std::fs::write(dir.join(FILE), "a:1 sha256//short\n").unwrap();
        let err = KnownDevices::open(&dir).err().unwrap().to_string();
        assert!(err.contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
