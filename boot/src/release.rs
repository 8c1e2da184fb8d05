//! A release channel: static files any web server or object store serves, written by
//! `imgtool publish`. Every file but the manifests is named by its SHA-256, so it never
//! changes once written and caches forever.
//!
//! ```text
//! manifest                      the newest release's manifest (what devices poll)
//! releases/VERSION/manifest     each release's manifest, until pruned
//! indexes/HEX                   chunk indexes (`crate::chunks`) of roots and kernels
//! chunks/HE/HEX                 chunks, by SHA-256 (the first two hex digits a folder)
//! ```
//!
//! A manifest is text, one field per line, in this order:
//!
//! ```text
//! rustkrazy-release 1
//! version 1765000000                 the slots' seal version (`crate::seal`)
//! arch x86_64
//! rollout 100                        percent of devices that should take it
//! signer HEX                         the signing key's id (`crate::seal`)
//! kernel BYTES SHA256 INDEX          the kernel: length, SHA-256, its index's SHA-256
//! root BYTES SHA256 INDEX            the root image, alike
//! slot 2 BUILD SEAL CMDLINE          per root partition: the slot's build id, its seal
//! slot 3 BUILD SEAL CMDLINE          (base64) and command line (the rest of the line;
//!                                    the slot holds it with a newline after it)
//! signature BASE64                   ECDSA P-256, SHA-256, DER: over every byte above
//! ```
//!
//! A slot's command line names its own root partition, so each has its own build id and
//! seal. Files are written before anything names them and the manifest last, so a reader
//! never finds a manifest naming a file that is not there yet.

use crate::encoding::{hex_decode, Hex};
use core::fmt;

pub const MANIFEST: &str = "manifest";
pub const RELEASES: &str = "releases";
pub const INDEXES: &str = "indexes";
pub const CHUNKS: &str = "chunks";
const FIRST_LINE: &str = "rustkrazy-release 1";
const SIGNATURE: &str = "signature ";

/// A kernel or root image of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    pub bytes: u64,
    pub sha256: [u8; 32],
    /// The SHA-256 of its chunk index, which names the index's file.
    pub index: [u8; 32],
}

/// One root partition's slot of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot<'a> {
    pub build: [u8; 32],
    /// The seal, base64.
    pub seal: &'a str,
    /// One line, without the newline that ends it in the slot.
    pub cmdline: &'a str,
}

/// A manifest's fields (what [`parse`] reads and `Display` writes, without the signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest<'a> {
    pub version: u64,
    pub arch: &'a str,
    pub rollout: u8,
    pub signer: [u8; 32],
    pub kernel: Image,
    pub root: Image,
    /// Root partitions 2 and 3.
    pub slots: [Slot<'a>; 2],
}

impl fmt::Display for Manifest<'_> {
    /// The signed part: every line but the signature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{FIRST_LINE}")?;
        writeln!(f, "version {}", self.version)?;
        writeln!(f, "arch {}", self.arch)?;
        writeln!(f, "rollout {}", self.rollout)?;
        writeln!(f, "signer {}", Hex(&self.signer))?;
        for (name, i) in [("kernel", &self.kernel), ("root", &self.root)] {
            writeln!(f, "{name} {} {} {}", i.bytes, Hex(&i.sha256), Hex(&i.index))?;
        }
        for (slot, partition) in self.slots.iter().zip(2..) {
            writeln!(
                f,
                "slot {partition} {} {} {}",
                Hex(&slot.build),
                slot.seal,
                slot.cmdline
            )?;
        }
        Ok(())
    }
}

/// What is wrong with a manifest: the line (from 1) and what that line should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub expected: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} of the manifest is not `{}`",
            self.line, self.expected
        )
    }
}

/// A signed manifest: its fields, the bytes the signature covers, and the signature
/// (base64, not checked here).
pub struct Signed<'a> {
    pub manifest: Manifest<'a>,
    pub signed: &'a [u8],
    pub signature: &'a str,
}

/// Reads a signed manifest.
pub fn parse(text: &str) -> Result<Signed<'_>, Error> {
    let at = text
        .rfind(SIGNATURE)
        .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n');
    let (signed, signature) = match at {
        Some(i) => (&text[..i], text[i + SIGNATURE.len()..].trim_end()),
        None => (text, ""),
    };
    let mut lines = signed.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut field = |name: &'static str, expected: &'static str| {
        let (line, text) = lines.next().unwrap_or((0, ""));
        let error = Error { line, expected };
        let rest = text
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(error)?;
        Ok::<_, Error>((rest, error))
    };
    let (rest, error) = field("rustkrazy-release", FIRST_LINE)?;
    if rest != "1" {
        return Err(error);
    }
    let number = |(rest, error): (&str, Error)| rest.parse::<u64>().map_err(|_| error);
    let version = number(field("version", "version NUMBER")?)?;
    let (arch, _) = field("arch", "arch NAME")?;
    let rollout = number(field("rollout", "rollout PERCENT (0 to 100)")?)
        .ok()
        .and_then(|n| u8::try_from(n).ok())
        .filter(|&n| n <= 100);
    let rollout = rollout.ok_or(Error {
        line: 4,
        expected: "rollout PERCENT (0 to 100)",
    })?;
    let (signer, error) = field("signer", "signer HEX")?;
    let signer = hex_decode::<32>(signer).ok_or(error)?;
    let mut image = |name: &'static str, expected: &'static str| {
        let (rest, error) = field(name, expected)?;
        let mut words = rest.split(' ');
        let image = Image {
            bytes: words.next().and_then(|w| w.parse().ok()).ok_or(error)?,
            sha256: words.next().and_then(hex_decode::<32>).ok_or(error)?,
            index: words.next().and_then(hex_decode::<32>).ok_or(error)?,
        };
        if words.next().is_some() {
            return Err(error);
        }
        Ok(image)
    };
    let kernel = image("kernel", "kernel BYTES SHA256 INDEX")?;
    let root = image("root", "root BYTES SHA256 INDEX")?;
    let mut slot = |partition: &'static str, expected: &'static str| {
        let (rest, error) = field("slot", expected)?;
        let mut words = rest.splitn(4, ' ');
        if words.next() != Some(partition) {
            return Err(error);
        }
        Ok(Slot {
            build: words.next().and_then(hex_decode::<32>).ok_or(error)?,
            seal: words.next().filter(|s| !s.is_empty()).ok_or(error)?,
            cmdline: words.next().ok_or(error)?,
        })
    };
    let slots = [
        slot("2", "slot 2 BUILD SEAL CMDLINE")?,
        slot("3", "slot 3 BUILD SEAL CMDLINE")?,
    ];
    if let Some((line, _)) = lines.next() {
        return Err(Error {
            line,
            expected: "signature BASE64 (the last line)",
        });
    }
    if signature.is_empty() || signature.contains(char::is_whitespace) {
        return Err(Error {
            line: 10,
            expected: "signature BASE64 (the last line)",
        });
    }
    Ok(Signed {
        manifest: Manifest {
            version,
            arch,
            rollout,
            signer,
            kernel,
            root,
            slots,
        },
        signed: signed.as_bytes(),
        signature,
    })
}

/// A chunk's path in a channel: `chunks/HE/HEX`.
pub struct ChunkPath<'a>(pub &'a [u8; 32]);

impl fmt::Display for ChunkPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CHUNKS}/{}/{}", Hex(&self.0[..1]), Hex(self.0))
    }
}

/// An index's path in a channel: `indexes/HEX`.
pub struct IndexPath<'a>(pub &'a [u8; 32]);

impl fmt::Display for IndexPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{INDEXES}/{}", Hex(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn sample() -> Manifest<'static> {
        let image = |b| Image {
            bytes: 1000 + u64::from(b),
            sha256: [b; 32],
            index: [b + 1; 32],
        };
        Manifest {
            version: 1_765_000_000,
            arch: "x86_64",
            rollout: 25,
            signer: [7; 32],
            kernel: image(1),
            root: image(3),
            slots: [
                Slot {
                    build: [5; 32],
                    seal: "c2VhbA==",
                    cmdline: "console=ttyS0 root=/dev/dm-0 ro",
                },
                Slot {
                    build: [6; 32],
                    seal: "c2VhbDI=",
                    cmdline: "console=ttyS0 dm-mod.create=\"x\" ro",
                },
            ],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written_and_says_what_it_signs() {
        let text = sample().to_string();
        let signed = std::format!("{text}signature QUJD\n");
        let read = parse(&signed).unwrap();
        assert_eq!(read.manifest, sample());
        assert_eq!(read.signed, text.as_bytes());
        assert_eq!(read.signature, "QUJD");
    }

    #[test]
    fn each_broken_line_is_named() {
        let text = std::format!("{}signature QUJD\n", sample());
        assert_eq!(
            parse(&text.replace("rollout 25", "rollout 101"))
                .err()
                .map(|e| e.line),
            Some(4)
        );
        assert_eq!(
            parse(&text.replace("version 1", "version x"))
                .err()
                .map(|e| e.line),
            Some(2)
        );
        assert_eq!(
            parse(&text.replace("slot 3", "slot 2"))
                .err()
                .map(|e| e.line),
            Some(9)
        );
        assert_eq!(
            parse(&text.replace("signature QUJD\n", ""))
                .err()
                .map(|e| e.line),
            Some(10)
        );
        assert_eq!(
            parse(&text.replace("signature", "extra line\nsignature"))
                .err()
                .map(|e| e.line),
            Some(10)
        );
        let trailing = std::format!("{text}more\n");
        assert_eq!(parse(&trailing).err().map(|e| e.line), Some(10));
        assert_eq!(parse("garbage").err().map(|e| e.line), Some(1));
        assert_eq!(parse("").err().map(|e| e.line), Some(0));
    }

    #[test]
    fn paths_are_named_by_content() {
        let mut sha = [0u8; 32];
        sha[0] = 0xab;
        assert!(ChunkPath(&sha).to_string().starts_with("chunks/ab/ab00"));
        assert_eq!(IndexPath(&sha).to_string().len(), "indexes/".len() + 64);
    }
}
