//! A slot's seal: the instance's signature over what the slot is, kept in the slot's
//! trailer sector after the trailer (`crate::rootid`), and the list of keys a root trusts.
//! imgtool seals each slot with a key that never leaves the host; admind arms a slot only
//! with a seal that verifies against a key the running root trusts (`admin_api::seal` does
//! the P-256 ECDSA; this crate has no crypto).
//!
//! ```text
//! offset size  field
//! 0      8     magic "RKSEAL01"
//! 8      8     version, little-endian: only grows from one committed slot to the next
//! 16     1     architecture (Arch)
//! 17     1     flags: bit 0, "older allowed" (signed for `push --allow-older`)
//! 18     6     zero
//! 24     8     with "older allowed": the newest committed version this slot may replace
//!              (so the seal is no lasting licence to go back), little-endian; else zero
//! 32     32    signer: SHA-256 of its public key (SEC1, uncompressed, 65 bytes)
//! 64     64    P-256 ECDSA signature r || s over SHA-256 of `message`
//! ```
//!
//! What is signed ([`message`]): a context string, the slot's build id (SHA-256 over its
//! root, kernel and command line, and so over the root's partition through the command
//! line), then bytes 0..64 above.
//!
//! The trust file, [`TRUST_PATH`] in every root, one entry per line (`#` comments):
//!
//! ```text
//! trust <public key: SEC1 uncompressed, standard base64>
//! revoke <signer: 64 hex digits>
//! ```
//!
//! A root without it accepts unsigned slots.

use crate::encoding::hex_decode;

pub const SEAL_BYTES: usize = 128;
const MAGIC: [u8; 8] = *b"RKSEAL01";
/// Signs nothing but slot seals.
const CONTEXT: &[u8; 20] = b"rustkrazy slot seal\n";
pub const MESSAGE_BYTES: usize = CONTEXT.len() + 32 + 64;
pub const PUBLIC_KEY_BYTES: usize = 65;
pub const FLAG_OLDER_ALLOWED: u8 = 1;

/// Where a root keeps the keys it trusts.
pub const TRUST_PATH: &str = "/etc/rustkrazy/slot-keys";

/// The machine a slot is built for: a seal for one never arms on another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Arch {
    X86_64 = 1,
    Aarch64 = 2,
    Rpi = 3,
}

impl Arch {
    pub fn from_code(code: u8) -> Option<Arch> {
        [Arch::X86_64, Arch::Aarch64, Arch::Rpi]
            .into_iter()
            .find(|a| *a as u8 == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Rpi => "rpi",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    pub version: u64,
    pub arch: Arch,
    pub flags: u8,
    /// With [`FLAG_OLDER_ALLOWED`]: the newest committed version this slot may replace.
    pub replaces_up_to: u64,
    pub signer: [u8; 32],
    pub signature: [u8; 64],
}

impl Seal {
    /// Bytes 0..64: what the seal says, before the signature.
    fn statement(&self) -> [u8; 64] {
        let mut s = [0u8; 64];
        s[..8].copy_from_slice(&MAGIC);
        s[8..16].copy_from_slice(&self.version.to_le_bytes());
        s[16] = self.arch as u8;
        s[17] = self.flags;
        s[24..32].copy_from_slice(&self.replaces_up_to.to_le_bytes());
        s[32..64].copy_from_slice(&self.signer);
        s
    }

    pub fn encode(&self) -> [u8; SEAL_BYTES] {
        let mut out = [0u8; SEAL_BYTES];
        out[..64].copy_from_slice(&self.statement());
        out[64..].copy_from_slice(&self.signature);
        out
    }

    /// `None`: no seal (all zero, as in a slot written before seals) or not one.
    pub fn decode(bytes: &[u8; SEAL_BYTES]) -> Option<Seal> {
        if bytes[..8] != MAGIC || bytes[18..24].iter().any(|&b| b != 0) {
            return None;
        }
        let mut version = [0u8; 8];
        version.copy_from_slice(&bytes[8..16]);
        let mut replaces_up_to = [0u8; 8];
        replaces_up_to.copy_from_slice(&bytes[24..32]);
        let mut signer = [0u8; 32];
        signer.copy_from_slice(&bytes[32..64]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[64..]);
        Some(Seal {
            version: u64::from_le_bytes(version),
            arch: Arch::from_code(bytes[16])?,
            flags: bytes[17],
            replaces_up_to: u64::from_le_bytes(replaces_up_to),
            signer,
            signature,
        })
    }

    pub fn older_allowed(&self) -> bool {
        self.flags & FLAG_OLDER_ALLOWED != 0
    }

    /// May this slot replace a committed one sealed at version `committed`?
    pub fn may_replace(&self, committed: u64) -> bool {
        self.version >= committed || (self.older_allowed() && committed <= self.replaces_up_to)
    }

    /// The bytes signed for a slot whose build id is `build`.
    pub fn message(&self, build: &[u8; 32]) -> [u8; MESSAGE_BYTES] {
        let mut m = [0u8; MESSAGE_BYTES];
        m[..CONTEXT.len()].copy_from_slice(CONTEXT);
        m[CONTEXT.len()..CONTEXT.len() + 32].copy_from_slice(build);
        m[CONTEXT.len() + 32..].copy_from_slice(&self.statement());
        m
    }
}

/// One line of the trust file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Trust([u8; PUBLIC_KEY_BYTES]),
    Revoke([u8; 32]),
}

/// The trust file's entries in order; `Err(line number)` at the first line that is not one.
pub fn entries(text: &str) -> impl Iterator<Item = Result<Entry, usize>> + '_ {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(n, line)| {
            let (word, value) = line.split_once(' ').ok_or(n)?;
            match (word, value.trim()) {
                ("trust", key) => {
                    let mut out = [0u8; PUBLIC_KEY_BYTES + 3];
                    let len = crate::encoding::base64_decode(key.as_bytes(), &mut out).ok_or(n)?;
                    let key: [u8; PUBLIC_KEY_BYTES] = out[..len].try_into().map_err(|_| n)?;
                    // SEC1 uncompressed: 0x04, then x and y.
                    (key[0] == 4).then_some(Entry::Trust(key)).ok_or(n)
                }
                ("revoke", id) => hex_decode::<32>(id).map(Entry::Revoke).ok_or(n),
                _ => Err(n),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> Seal {
        Seal {
            version: 1_800_000_000,
            arch: Arch::Aarch64,
            flags: FLAG_OLDER_ALLOWED,
            replaces_up_to: 1_900_000_000,
            signer: [0x5a; 32],
            signature: [0xc3; 64],
        }
    }

    #[test]
    fn round_trip_and_rejects() {
        let bytes = seal().encode();
        assert_eq!(&bytes[..8], b"RKSEAL01");
        assert_eq!(bytes[16], 2);
        assert_eq!(Seal::decode(&bytes), Some(seal()));
        assert!(seal().older_allowed());
        assert_eq!(Seal::decode(&[0; SEAL_BYTES]), None);
        let mut bad = bytes;
        bad[16] = 9;
        assert_eq!(Seal::decode(&bad), None, "unknown architecture");
        let mut bad = bytes;
        bad[20] = 1;
        assert_eq!(Seal::decode(&bad), None, "reserved bytes");
        assert!(
            seal().may_replace(1_900_000_000),
            "going back, within its bound"
        );
        assert!(!seal().may_replace(1_900_000_001), "going back further");
        let plain = Seal { flags: 0, ..seal() };
        assert!(plain.may_replace(1_800_000_000) && !plain.may_replace(1_800_000_001));
    }

    #[test]
    fn the_message_binds_the_build_and_every_field() {
        let build = [7u8; 32];
        let m = seal().message(&build);
        assert_eq!(&m[..20], b"rustkrazy slot seal\n");
        assert_eq!(&m[20..52], &build);
        assert_eq!(&m[52..], &seal().encode()[..64]);
        assert_ne!(m, seal().message(&[8; 32]));
        let older = Seal {
            version: 1,
            ..seal()
        };
        assert_ne!(m, older.message(&build));
    }

    #[test]
    fn trust_file() {
        let key = [4u8; 65];
        let text = std::format!(
            "# keys\ntrust {}\n\nrevoke {}  # old\n",
            crate::encoding::Base64(&key),
            "ab".repeat(32)
        );
        let got: std::vec::Vec<_> = entries(&text).collect();
        assert_eq!(got, [Ok(Entry::Trust(key)), Ok(Entry::Revoke([0xab; 32]))]);
        for (bad, line) in [
            ("trust AAAA\n", 1),
            ("\nrevoke 12\n", 2),
            ("allow x\n", 1),
            ("trust\n", 1),
        ] {
            assert_eq!(entries(bad).next(), Some(Err(line)), "{bad}");
        }
    }
}
