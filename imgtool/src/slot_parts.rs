//! What a push writes into a slot, from either source: built from the appliance plan (as
//! mkimg builds it, sealed at push time), or a release read back from a channel folder
//! (`imgtool publish`), whose manifest is checked against the instance's key and whose
//! images are rebuilt from their chunks and checked against their SHA-256, sealed as
//! published.

use crate::config::Plan;
use crate::instance::Instance;
use anyhow::{anyhow, bail, ensure, Context, Result};
use boot::release::{ChunkPath, Image, IndexPath};
use boot::seal::{Seal, SEAL_BYTES};
use sha2::{Digest, Sha256};
use std::path::Path;

pub struct SlotParts {
    pub root: Vec<u8>,
    pub kernel: Vec<u8>,
    /// Root partitions 2 and 3: each slot's command line names its own partition.
    pub cmdlines: [String; 2],
    /// A release's seals, per partition; `None`: push seals the slot it writes.
    pub seals: Option<[Seal; 2]>,
}

impl SlotParts {
    pub fn cmdline(&self, partition: u8) -> &str {
        &self.cmdlines[usize::from(partition.saturating_sub(2)).min(1)]
    }
}

/// The slot the plan describes, as mkimg would build it.
pub fn build(plan: &Plan, instance: &Instance) -> Result<SlotParts> {
    let root = crate::root_image::build(plan, instance)?;
    let kernel = crate::boot_partition::read_kernel(plan.kernel.as_deref(), instance.arch)?;
    let cmdline = |partition| {
        crate::boot_partition::cmdline(
            instance.arch,
            instance.disk_signature,
            partition,
            &root.verity,
            &plan.kernel_args,
        )
    };
    Ok(SlotParts {
        cmdlines: [cmdline(2)?, cmdline(3)?],
        root: root.image,
        kernel,
        seals: None,
    })
}

/// The newest release in `channel`, checked: signed by this instance's key, for its
/// machine, each image whole.
pub fn read_release(channel: &Path, instance: &Instance) -> Result<SlotParts> {
    let path = channel.join(boot::release::MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let signed = boot::release::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut der = [0u8; 128];
    let n = boot::encoding::base64_decode(signed.signature.as_bytes(), &mut der)
        .ok_or_else(|| anyhow!("{}: the signature is not base64", path.display()))?;
    instance
        .check_release(signed.signed, &der[..n])
        .with_context(|| format!("{}", path.display()))?;
    let m = signed.manifest;
    ensure!(
        m.arch == instance.arch.name(),
        "{}: the release is for {}, the instance for {}",
        path.display(),
        m.arch,
        instance.arch.name()
    );
    let mut seals = Vec::new();
    for (slot, partition) in m.slots.iter().zip(2..) {
        let mut bytes = [0u8; SEAL_BYTES];
        let seal = boot::encoding::base64_decode(slot.seal.as_bytes(), &mut bytes)
            .filter(|&n| n == SEAL_BYTES)
            .and_then(|_| Seal::decode(&bytes))
            .ok_or_else(|| anyhow!("{}: slot {partition}'s seal is not one", path.display()))?;
        seals.push(seal);
    }
    let parts = SlotParts {
        root: rebuild(channel, &m.root).context("the release's root")?,
        kernel: rebuild(channel, &m.kernel).context("the release's kernel")?,
        cmdlines: [0, 1].map(|i| format!("{}\n", m.slots[i].cmdline)),
        seals: Some([seals[0], seals[1]]),
    };
    // Each seal is for the build the device will compute from these bytes.
    let root = boot::rootid::Part {
        bytes: parts.root.len() as u64,
        sha256: Sha256::digest(&parts.root).into(),
    };
    for (i, slot) in m.slots.iter().enumerate() {
        let build = crate::mkimg::slot_id(root, &parts.kernel, &parts.cmdlines[i]).build;
        ensure!(
            build == slot.build,
            "{}: slot {}'s build id is not the one its root, kernel and command line make",
            path.display(),
            i + 2
        );
    }
    Ok(parts)
}

/// An image from its index and chunks in `channel`, checked chunk by chunk and whole.
fn rebuild(channel: &Path, image: &Image) -> Result<Vec<u8>> {
    let read = |name: &str| {
        let path = channel.join(name);
        std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {} (copy the channel again, or publish again)",
                path.display()
            )
        })
    };
    let index_name = IndexPath(&image.index).to_string();
    let index = read(&index_name)?;
    ensure!(
        <[u8; 32]>::from(Sha256::digest(&index)) == image.index,
        "{} does not have the SHA-256 its name says (copy the channel again, or publish again)",
        channel.join(&index_name).display()
    );
    let chunks =
        boot::chunks::index_chunks(&index).ok_or_else(|| anyhow!("its index is not one"))?;
    let mut out = Vec::new();
    for chunk in chunks {
        let name = ChunkPath(&chunk.sha256).to_string();
        let bytes = read(&name)?;
        if <[u8; 32]>::from(Sha256::digest(&bytes)) != chunk.sha256 {
            bail!(
                "{} does not hold the chunk its name says (publish again: damaged chunks are rewritten)",
                channel.join(&name).display()
            );
        }
        out.extend_from_slice(&bytes);
    }
    ensure!(
        out.len() as u64 == image.bytes && <[u8; 32]>::from(Sha256::digest(&out)) == image.sha256,
        "its chunks make {} bytes that are not the image the manifest names",
        out.len()
    );
    Ok(out)
}
