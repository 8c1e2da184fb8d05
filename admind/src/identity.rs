//! The device's own TLS identity: a P-256 key admind makes on first boot from the kernel's
//! randomness, with a self-signed certificate (`admin_api::cert`), kept in `/data/admind`
//! so that it outlives updates and no image carries a private key. imgtool pins it on first
//! contact. A pair an administrator puts there instead (e.g. one a CA signed) is served as
//! it is.
//!
//! admind never exits over its identity: a missing, damaged or mismatched pair is set aside
//! as `*.damaged` and replaced, and a /data that cannot be written gets a key that lasts until
//! admind restarts. Each start says which of these happened, and the key's pin, on the
//! console: what the administrator compares with what imgtool pinned.

use admin_api::cert::{self, Pin};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Under the data partition.
pub const DIR: &str = "admind";
const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";

/// The TLS settings to serve with, and what to say about the identity behind them.
pub struct Served {
    pub config: rustls::ServerConfig,
    pub note: String,
    /// The key's pin (`cert::pin`).
    pub pin: [u8; 32],
}

/// The pin of the first certificate in `cert_pem`.
pub fn pin_of(cert_pem: &[u8]) -> Option<[u8; 32]> {
    let der = CertificateDer::from_pem_slice(cert_pem).ok()?;
    cert::certificate_pin(der.as_ref())
}

/// The pair in `dir` if it serves; else a new one, stored there if it can be.
/// `name`: the device's hostname, for a new certificate.
pub fn load_or_make(dir: &Path, name: &str) -> Result<Served, String> {
    let (cert_path, key_path) = (dir.join(CERT), dir.join(KEY));
    let missing =
        |r: &std::io::Result<Vec<u8>>| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::NotFound);
    let (cert, key) = (std::fs::read(&cert_path), std::fs::read(&key_path));
    let why_new = match (&cert, &key) {
        (Ok(cert_pem), Ok(key_pem)) => match admin_api::tls::server_config(cert_pem, key_pem) {
            Ok(config) => {
                let pin = pin_of(cert_pem).unwrap_or_default();
                return Ok(Served {
                    config,
                    note: format!("device key {} from {}", Pin(&pin), dir.display()),
                    pin,
                });
            }
            Err(e) => Why::Damaged(format!("the pair in {} does not serve: {e}", dir.display())),
        },
        _ if missing(&cert) && missing(&key) => Why::None,
        (Ok(_), _) if missing(&key) => Why::Damaged(format!("{} is missing", key_path.display())),
        (_, Ok(_)) if missing(&cert) => Why::Damaged(format!("{} is missing", cert_path.display())),
        // Another error (I/O, permissions) may pass: the files are left for the next start.
        _ => Why::Unreadable(
            [
                (&cert_path, cert.as_ref().err()),
                (&key_path, key.as_ref().err()),
            ]
            .into_iter()
            .filter_map(|(path, e)| Some(format!("cannot read {}: {}", path.display(), e?)))
            .collect::<Vec<_>>()
            .join("; "),
        ),
    };
    let made = cert::new_identity(name)
        .ok_or("the kernel gives no randomness, so no key can be made; nothing is served")?;
    let config = admin_api::tls::server_config(made.cert_pem.as_bytes(), made.key_pem.as_bytes())?;
    let key = Pin(&made.pin);
    let mut note = match why_new {
        Why::None => format!(
            "no device key in {} (first boot, or /data was lost): made {key}",
            dir.display()
        ),
        Why::Damaged(why) => {
            let kept = [&cert_path, &key_path].iter().all(|p| {
                !p.exists() || std::fs::rename(p, p.with_extension("pem.damaged")).is_ok()
            });
            let old = if kept {
                "kept as *.pem.damaged"
            } else {
                "replaced"
            };
            format!("{why}; the old files are {old}; made a new device key {key}")
        }
        Why::Unreadable(why) => {
            return Ok(Served {
                config,
                pin: made.pin,
                note: format!(
                    "{why}; serving {key}, made for this run only (the files are left as they \
                     are, for the next start)"
                ),
            })
        }
    };
    match store(dir, &made) {
        Ok(()) => note.push_str(&format!(", kept in {}", dir.display())),
        Err(e) => note.push_str(&format!(
            ", which lasts until admind restarts: cannot keep it in {}: {e}",
            dir.display()
        )),
    }
    Ok(Served {
        config,
        note,
        pin: made.pin,
    })
}

/// Why a new key is made.
enum Why {
    /// There was none.
    None,
    /// The pair cannot serve, or half of it is missing: set it aside.
    Damaged(String),
    /// It could not be read: leave it for the next start.
    Unreadable(String),
}

/// Writes the pair durably: each file whole under a temporary name, then renamed. A cut
/// between the renames leaves one file, which the next start sets aside (the key was never
/// served).
fn store(dir: &Path, id: &cert::Identity) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for (name, text, mode) in [(KEY, &id.key_pem, 0o600), (CERT, &id.cert_pem, 0o644)] {
        // Made afresh, so that the mode is the one asked for.
        let temp = dir.join(format!("{name}.partial"));
        match std::fs::remove_file(&temp) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    for name in [KEY, CERT] {
        std::fs::rename(dir.join(format!("{name}.partial")), dir.join(name))?;
    }
    std::fs::File::open(dir)?.sync_all()
}
