//! Slot seals signed and checked, P-256 ECDSA over SHA-256 (`boot::seal` owns the format
//! and the trust file): imgtool signs with the instance's key, admind checks a seal against
//! the keys its root trusts before it arms a slot.

use boot::encoding::Hex;
use boot::seal::{Arch, Entry, Seal, PUBLIC_KEY_BYTES, TRUST_PATH};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// How a seal names its signer: SHA-256 of the public key (SEC1 uncompressed).
pub fn signer_id(public_key: &[u8; PUBLIC_KEY_BYTES]) -> [u8; 32] {
    Sha256::digest(public_key).into()
}

/// `key`'s public half, SEC1 uncompressed.
pub fn public_key(key: &SigningKey) -> [u8; PUBLIC_KEY_BYTES] {
    let point = key.verifying_key().to_encoded_point(false);
    let mut out = [0u8; PUBLIC_KEY_BYTES];
    out.copy_from_slice(point.as_bytes());
    out
}

/// The keys a trust file trusts and does not revoke, in its order; `None` if a line is
/// not an entry (arming then refuses every seal, [`check`]).
pub fn trusted_keys(trust: &str) -> Option<Vec<[u8; PUBLIC_KEY_BYTES]>> {
    let entries: Vec<Entry> = boot::seal::entries(trust).collect::<Result<_, _>>().ok()?;
    let revoked = |key: &[u8; PUBLIC_KEY_BYTES]| entries.contains(&Entry::Revoke(signer_id(key)));
    Some(
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Trust(key) if !revoked(key) => Some(*key),
                _ => None,
            })
            .collect(),
    )
}

/// The seal `key` makes for a slot whose build id is `build`; `going_back`: it may replace
/// a committed slot up to that version (`boot::seal`).
pub fn sign(
    key: &SigningKey,
    build: &[u8; 32],
    version: u64,
    arch: Arch,
    going_back: Option<u64>,
) -> Seal {
    let mut seal = Seal {
        version,
        arch,
        flags: going_back.map_or(0, |_| boot::seal::FLAG_OLDER_ALLOWED),
        replaces_up_to: going_back.unwrap_or(0),
        signer: signer_id(&public_key(key)),
        signature: [0; 64],
    };
    let signature: Signature = key.sign(&seal.message(build));
    seal.signature.copy_from_slice(&signature.to_bytes());
    seal
}

/// Whether `signature` (DER, base64) over `signed` is by a key `trust` trusts and does not
/// revoke: how a device checks a release channel's manifest (`boot::release`), which the
/// instance's slot-signing key signs.
pub fn check_release(trust: &str, signed: &[u8], signature: &str) -> bool {
    let mut der = [0u8; 80]; // a P-256 signature in DER is at most 72 bytes
    let Some(n) = boot::encoding::base64_decode(signature.as_bytes(), &mut der) else {
        return false;
    };
    let Ok(signature) = Signature::from_der(&der[..n]) else {
        return false;
    };
    trusted_keys(trust).unwrap_or_default().iter().any(|k| {
        VerifyingKey::from_sec1_bytes(k).is_ok_and(|k| k.verify(signed, &signature).is_ok())
    })
}

/// What the device knows when a slot is to be armed.
pub struct Arming<'a> {
    /// The trust file of the running root.
    pub trust: &'a str,
    /// The build id of the slot to arm, from its verified trailer.
    pub build: &'a [u8; 32],
    /// Architectures this device runs.
    pub arches: &'a [Arch],
    /// The committed slot's seal, if it has one.
    pub committed: Option<&'a Seal>,
}

/// `Ok` when `seal` may arm the slot; else why not, said for the one who pushed.
pub fn check(seal: &Seal, arming: &Arming<'_>) -> Result<(), String> {
    let signer = Hex(&seal.signer);
    let mut key = None;
    for entry in boot::seal::entries(arming.trust) {
        match entry {
            Err(line) => {
                return Err(format!(
                    "{TRUST_PATH} line {line} is not `trust KEY` or `revoke ID`: this root trusts no seal"
                ))
            }
            Ok(Entry::Revoke(id)) if id == seal.signer => {
                return Err(format!(
                    "the slot is sealed by key {signer}, which this device's root revokes"
                ))
            }
            Ok(Entry::Trust(k)) if signer_id(&k) == seal.signer => key = Some(k),
            Ok(_) => {}
        }
    }
    let key = key.ok_or_else(|| {
        format!("the slot is sealed by key {signer}, which this device's root does not trust (an instance's keys: imgtool key list)")
    })?;
    if !arming.arches.contains(&seal.arch) {
        return Err(format!(
            "the seal is for {}, and this device is not",
            seal.arch.name()
        ));
    }
    let verifies = VerifyingKey::from_sec1_bytes(&key)
        .ok()
        .zip(Signature::from_slice(&seal.signature).ok())
        .is_some_and(|(k, s)| k.verify(&seal.message(arming.build), &s).is_ok());
    if !verifies {
        return Err(
            "the seal does not verify over this slot: its root, kernel or command line differ from what was signed"
                .into(),
        );
    }
    if let Some(committed) = arming.committed {
        if committed.arch != seal.arch {
            return Err(format!(
                "the seal is for {}, the committed slot's for {}",
                seal.arch.name(),
                committed.arch.name()
            ));
        }
        if !seal.may_replace(committed.version) {
            return Err(format!(
                "version {} is older than the committed slot's {}: push --allow-older seals a slot that may go back (to this device's committed version at most)",
                seal.version, committed.version
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot::encoding::Base64;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_slice(&[n; 32]).unwrap()
    }

    fn trust_line(k: &SigningKey) -> String {
        format!("trust {}\n", Base64(&public_key(k)))
    }

    #[test]
    fn a_seal_arms_only_what_was_signed_by_a_trusted_key() {
        let build = [9u8; 32];
        let trust = trust_line(&key(1)) + &trust_line(&key(2));
        let arming = Arming {
            trust: &trust,
            build: &build,
            arches: &[Arch::Aarch64, Arch::Rpi],
            committed: None,
        };
        let good = sign(&key(1), &build, 10, Arch::Rpi, None);
        assert_eq!(check(&good, &arming), Ok(()));
        assert_eq!(
            check(&sign(&key(2), &build, 10, Arch::Rpi, None), &arming),
            Ok(())
        );
        let refused = |seal: &Seal, arming: &Arming<'_>| check(seal, arming).unwrap_err();
        assert!(
            refused(&sign(&key(3), &build, 10, Arch::Rpi, None), &arming)
                .contains("does not trust")
        );
        assert!(
            refused(&sign(&key(1), &[8; 32], 10, Arch::Rpi, None), &arming)
                .contains("does not verify")
        );
        assert!(
            refused(&sign(&key(1), &build, 10, Arch::X86_64, None), &arming)
                .contains("is for x86_64")
        );
        let mut forged = good;
        forged.version = 11;
        assert!(refused(&forged, &arming).contains("does not verify"));
        let revoked = trust.clone() + &format!("revoke {}\n", Hex(&good.signer));
        let arming_revoked = Arming {
            trust: &revoked,
            ..arming
        };
        assert!(refused(&good, &arming_revoked).contains("revokes"));
        let broken = Arming {
            trust: "trust me\n",
            ..arming
        };
        assert!(refused(&good, &broken).contains("line 1"));
        let committed = sign(&key(1), &[1; 32], 20, Arch::Rpi, None);
        let later = Arming {
            committed: Some(&committed),
            ..arming
        };
        assert!(refused(&good, &later).contains("older than the committed slot's 20"));
        let back = sign(&key(1), &build, 10, Arch::Rpi, Some(20));
        assert_eq!(check(&back, &later), Ok(()));
        let not_that_far = sign(&key(1), &build, 10, Arch::Rpi, Some(19));
        assert!(refused(&not_that_far, &later).contains("older"));
        assert_eq!(
            check(&sign(&key(1), &build, 20, Arch::Rpi, None), &later),
            Ok(())
        );
        let started = std::time::Instant::now();
        for _ in 0..10 {
            assert_eq!(check(&good, &arming), Ok(()));
        }
        println!("figure: one seal checked in {:?}", started.elapsed() / 10);
    }
}
