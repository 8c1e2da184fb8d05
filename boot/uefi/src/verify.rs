//! Whether a slot may boot: its seal (`boot::seal`, in the trailer `boot::rootid`) is made
//! by a key this program holds (`boot::uefi_keys`) over the kernel and command line read
//! from the disk. The root is covered through the command line, which carries its
//! dm-verity root hash: the kernel checks every root block it reads against it.

use boot::seal::{Arch, PUBLIC_KEY_BYTES};
use boot::{rootid, uefi_keys};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The keys imgtool wrote into this program, and admind since (`boot::uefi_keys`): each
/// copy in its own sector of the file, 4 KiB apart, so that admind rewrites one with one
/// write and a torn write cannot reach the other.
#[repr(C, align(512))]
struct KeyTable([u8; uefi_keys::TABLE_BYTES]);

#[used]
static KEY_TABLE: KeyTable = KeyTable(uefi_keys::EMPTY);
/// Read through a volatile load of this pointer, the table's bytes are unknown to the
/// compiler: a plain read would let it use the empty table the program was built with,
/// and drop the checks. (A volatile read of the table itself goes byte by byte: 19 KB.)
static KEY_TABLE_AT: &KeyTable = &KEY_TABLE;

/// The keys the newest valid copy holds; `None`: both copies are damaged.
pub fn held_keys() -> Option<uefi_keys::Keys> {
    // SAFETY: KEY_TABLE_AT is a static, so the pointer to it is valid, aligned and
    // initialised; nothing writes it.
    let table = unsafe { core::ptr::read_volatile(&KEY_TABLE_AT) };
    uefi_keys::newest(uefi_keys::copies(&table.0)).map(|(_, keys)| keys)
}

/// Why a slot may not boot; `word` goes on the kernel command line of the slot that boots
/// instead (`rustkrazy.refused=`), for init's boot status and `imgtool push`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoTrailer,
    Unsealed,
    OtherMachine(Arch),
    UnknownKey([u8; 32]),
    KernelAltered,
    CmdlineAltered,
    BadSignature,
}

impl Refusal {
    pub fn word(self) -> &'static str {
        match self {
            Refusal::NoTrailer => "incomplete",
            Refusal::Unsealed => "unsealed",
            Refusal::OtherMachine(_) => "other-machine",
            Refusal::UnknownKey(_) => "unknown-key",
            Refusal::KernelAltered => "kernel-altered",
            Refusal::CmdlineAltered => "cmdline-altered",
            Refusal::BadSignature => "bad-signature",
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::NoTrailer => f.write_str("it has no trailer: the slot is incomplete"),
            Refusal::Unsealed => f.write_str(
                "it carries no seal, and this boot program boots only sealed slots (imgtool mkimg and push seal every slot; imgtool seal makes one for curl)",
            ),
            Refusal::OtherMachine(arch) => write!(f, "it is sealed for {}", arch.name()),
            Refusal::UnknownKey(signer) => write!(
                f,
                "it is sealed by key {}, which this boot program does not hold: it holds the keys the committed root trusts (imgtool key list; after imgtool key new, a push must commit before imgtool key rotate)",
                boot::encoding::Hex(signer)
            ),
            Refusal::KernelAltered => f.write_str("its kernel is not the one its seal covers"),
            Refusal::CmdlineAltered => {
                f.write_str("its command line is not the one its seal covers")
            }
            Refusal::BadSignature => f.write_str("its seal's signature does not verify"),
        }
    }
}

/// How a seal names its signer: SHA-256 of the public key (as `admin_api::seal`).
pub fn signer_id(key: &[u8; PUBLIC_KEY_BYTES]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// The architecture this program boots.
const ARCH: Arch = if cfg!(target_arch = "aarch64") {
    Arch::Aarch64
} else {
    Arch::X86_64
};

/// Checks a slot against `keys`: `trailer` is its trailer sector, `kernel` and `cmdline`
/// what will boot (the command line as the slot's file holds it, before its NUL).
pub fn check<'k>(
    keys: impl IntoIterator<Item = &'k [u8; PUBLIC_KEY_BYTES]>,
    trailer: &[u8; 512],
    kernel: &[u8],
    cmdline: &[u8],
) -> Result<(), Refusal> {
    let id = rootid::decode(trailer).ok_or(Refusal::NoTrailer)?;
    let seal = rootid::seal(trailer).ok_or(Refusal::Unsealed)?;
    if seal.arch != ARCH {
        return Err(Refusal::OtherMachine(seal.arch));
    }
    let key = keys
        .into_iter()
        .find(|k| signer_id(k) == seal.signer)
        .ok_or(Refusal::UnknownKey(seal.signer))?;
    let matches = |part: &rootid::Part, bytes: &[u8]| {
        part.bytes == bytes.len() as u64 && part.sha256 == <[u8; 32]>::from(Sha256::digest(bytes))
    };
    if !matches(&id.kernel, kernel) {
        return Err(Refusal::KernelAltered);
    }
    if !matches(&id.cmdline, cmdline) {
        return Err(Refusal::CmdlineAltered);
    }
    // The build id from the hashes just checked, not the one the trailer states.
    let build = rootid::build_id(&id.root, &id.kernel, &id.cmdline, |parts| {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    });
    let verified = VerifyingKey::from_sec1_bytes(key).ok().is_some_and(|key| {
        Signature::from_slice(&seal.signature)
            .is_ok_and(|sig| key.verify(&seal.message(&build), &sig).is_ok())
    });
    verified.then_some(()).ok_or(Refusal::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot::seal::Seal;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use rootid::{Part, SlotId};

    fn part(bytes: &[u8]) -> Part {
        Part {
            bytes: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }

    fn public(key: &SigningKey) -> [u8; 65] {
        key.verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .unwrap()
    }

    /// A trailer for this kernel and command line, sealed by `key`.
    fn sealed(key: &SigningKey, arch: Arch, kernel: &[u8], cmdline: &[u8]) -> [u8; 512] {
        let (root, kernel, cmdline) = (part(b"root"), part(kernel), part(cmdline));
        let sha = |parts: &[&[u8]]| {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().into()
        };
        let build = rootid::build_id(&root, &kernel, &cmdline, sha);
        let mut seal = Seal {
            version: 7,
            arch,
            flags: 0,
            replaces_up_to: 0,
            signer: Sha256::digest(public(key)).into(),
            signature: [0; 64],
        };
        let sig: Signature = key.sign(&seal.message(&build));
        seal.signature.copy_from_slice(&sig.to_bytes());
        let id = SlotId {
            root,
            kernel,
            cmdline,
            build,
        };
        rootid::encode(&id, Some(&seal))
    }

    #[test]
    fn a_sealed_slot_passes_and_each_change_is_named() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let (kernel, cmdline) = (&b"MZ kernel"[..], &b"console=ttyS0\n"[..]);
        let keys = [public(&key), public(&other)];
        let trailer = sealed(&key, ARCH, kernel, cmdline);
        assert_eq!(check(&keys, &trailer, kernel, cmdline), Ok(()));
        assert_eq!(
            check(&keys, &trailer, b"MZ kernel!", cmdline),
            Err(Refusal::KernelAltered)
        );
        assert_eq!(
            check(&keys, &trailer, kernel, b"console=ttyS0 init=/x\n"),
            Err(Refusal::CmdlineAltered)
        );
        let signer = Sha256::digest(public(&key)).into();
        assert_eq!(
            check(&keys[1..], &trailer, kernel, cmdline),
            Err(Refusal::UnknownKey(signer))
        );
        assert_eq!(
            check(
                &keys,
                &sealed(&key, Arch::Rpi, kernel, cmdline),
                kernel,
                cmdline
            ),
            Err(Refusal::OtherMachine(Arch::Rpi))
        );
        let mut forged = trailer;
        forged[rootid::SEAL_OFFSET + 100] ^= 1;
        assert_eq!(
            check(&keys, &forged, kernel, cmdline),
            Err(Refusal::BadSignature)
        );
        let mut unsealed = trailer;
        unsealed[rootid::SEAL_OFFSET..rootid::SEAL_OFFSET + 128].fill(0);
        assert_eq!(
            check(&keys, &unsealed, kernel, cmdline),
            Err(Refusal::Unsealed)
        );
        assert_eq!(
            check(&keys, &[0; 512], kernel, cmdline),
            Err(Refusal::NoTrailer)
        );
    }

    #[test]
    fn every_word_is_one_the_boot_status_takes() {
        for why in [
            Refusal::NoTrailer,
            Refusal::Unsealed,
            Refusal::OtherMachine(Arch::Rpi),
            Refusal::UnknownKey([0; 32]),
            Refusal::KernelAltered,
            Refusal::CmdlineAltered,
            Refusal::BadSignature,
        ] {
            let value = std::format!("3:{}", why.word());
            assert!(boot::boot_status::refusal(&value).is_some(), "{value}");
        }
    }

    #[test]
    fn the_built_table_holds_no_keys() {
        assert_eq!(held_keys().map(|k| k.as_slice().len()), Some(0));
    }
}
