//! `imgtool mkimg`: validates and builds everything first, then writes the image: boot
//! partition, both roots, /data, and the MBR last, so an interrupted write never leaves a
//! partition table pointing at half-written partitions. A file target is written under a
//! temporary name and renamed only when complete.

use crate::config::{Arch, Plan};
use crate::instance::Instance;
use crate::mbr_table::part_size;
use crate::output::Output;
use crate::{boot_partition, ext4, fat, mbr_table, root_image, size};
use anyhow::{ensure, Context, Result};
use boot::layout;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Image size when neither flag, appliance file nor instance says.
pub const DEFAULT_SIZE: &str = "2G";

/// What was written, for the summary and for tests.
#[derive(Debug)]
pub struct Report {
    pub size_bytes: u64,
    pub disk_signature: u32,
    pub programs: Vec<String>,
    pub root_bytes: u64,
    pub kernel: fat::Extent,
    pub boot_table: boot::mbr::Table,
    pub data: ext4::Geometry,
    /// The root image's SHA-256.
    pub root_sha256: [u8; 32],
    /// Each slot's build id (root, kernel and command line; see `boot::rootid`), slot A
    /// first.
    pub builds: [[u8; 32]; 2],
}

/// What a slot holding `root` (its length and SHA-256: see `root_image::Root::part`),
/// `kernel` and `cmdline` is: the trailer's contents, with the build id the device will
/// report for it.
pub fn slot_id(root: boot::rootid::Part, kernel: &[u8], cmdline: &str) -> boot::rootid::SlotId {
    let part = |bytes: &[u8]| boot::rootid::Part {
        bytes: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
    };
    let (kernel, cmdline) = (part(kernel), part(cmdline.as_bytes()));
    let sha256 = |parts: &[&[u8]]| -> [u8; 32] {
        let mut h = Sha256::new();
        parts.iter().for_each(|p| h.update(p));
        h.finalize().into()
    };
    boot::rootid::SlotId {
        root,
        kernel,
        cmdline,
        build: boot::rootid::build_id(&root, &kernel, &cmdline, sha256),
    }
}

pub fn run(plan: Plan, target: &Path, instance_dir: Option<PathBuf>) -> Result<Report> {
    let instance_dir = instance_dir.unwrap_or_else(|| {
        crate::instance::default_dir(plan.hostname.as_deref().unwrap_or("rustkrazy"))
    });
    let mut instance =
        Instance::open_or_create(&instance_dir, plan.arch, plan.hostname.as_deref())?;
    let arch = instance.arch;
    eprintln!(
        "instance {} ({}, {})",
        instance.dir.display(),
        arch.name(),
        instance.hostname
    );

    // 1. Inputs that can be checked without building anything.
    let kernel_data = boot_partition::read_kernel(plan.kernel.as_deref(), arch)?;
    let size_text = plan.size.clone();
    let size_bytes = match &size_text {
        Some(s) => Some(size::parse(s)?),
        None => instance.size_bytes,
    };
    let firmware = boot_partition::extra_boot_files(&plan, arch)?;
    plan.network.as_ref().map(|n| n.render()).transpose()?; // checked before building
    let uefi = boot_partition::uefi_program(&plan, &instance)?;

    // 2. and 3. Programs, then the root image.
    let root = root_image::build(&plan, &instance)?;
    // Each slot's command line, checked before anything is written.
    let (signature, args) = (instance.disk_signature, &plan.kernel_args);
    let cmdlines = [
        boot_partition::cmdline(arch, signature, layout::ROOT_A.number, &root.verity, args)?,
        boot_partition::cmdline(arch, signature, layout::ROOT_B.number, &root.verity, args)?,
    ];

    // 4. The target, sized; nothing has been written before this point.
    let size_for_file = size_bytes.or_else(|| size::parse(DEFAULT_SIZE).ok());
    let is_device = std::fs::metadata(target)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()));
    let output = Output::open(target, if is_device { size_bytes } else { size_for_file })?;
    let disk_bytes = output.size_bytes();
    ensure!(
        disk_bytes >= layout::DISK_MIN_BYTES,
        "{} is too small for the layout: it needs at least {} (256 MiB boot, 2 x 256 MiB roots, 16 MiB data)",
        size::human(disk_bytes),
        size::human(layout::DISK_MIN_BYTES)
    );
    ensure!(
        disk_bytes <= layout::DISK_MAX_BYTES,
        "{} is larger than an MBR can address ({}); use a size of at most 2 TiB",
        size::human(disk_bytes),
        size::human(layout::DISK_MAX_BYTES)
    );

    if arch == Arch::Rpi && !disk_bytes.is_power_of_two() {
        eprintln!(
            "note: {} is not a power of two: QEMU's raspi3b refuses such SD card images (a Pi \
             does not mind); to try it with imgtool qemu, use 1G, 2G, 4G...",
            size::human(disk_bytes)
        );
    }

    // 5. Partitions, then the boot record, then the table.
    eprintln!("writing {} ({})", target.display(), size::human(disk_bytes));
    let (boot_table, kernel_extent) = boot_partition::write_boot(
        &output,
        disk_bytes,
        boot_partition::plan_boot(
            &plan,
            &instance,
            &kernel_data,
            &firmware,
            &uefi,
            cmdlines.clone(),
        ),
    )?;
    // Root B gets the same image as root A: whichever slot the bootloader or a mistaken
    // switch starts, the device comes up on a working system.
    let mut builds = [[0u8; 32]; 2];
    let seal_version = crate::instance::seal_version()?;
    for slot in [layout::Slot::A, layout::Slot::B] {
        let part = slot.partition();
        let mut region = output.region(part.start_bytes, part_size(&part, disk_bytes));
        region
            .write_all(&root.image)
            .with_context(|| format!("cannot write {}", part.name))?;
        let id = slot_id(root.part(), &kernel_data, &cmdlines[slot.index()]);
        builds[slot.index()] = id.build;
        let trailer_at = boot::rootid::offset_in(&part).unwrap_or(0);
        let seal = instance.seal(&id.build, seal_version, None)?;
        output
            .region(part.start_bytes + trailer_at, layout::SECTOR_BYTES)
            .write_all(&boot::rootid::encode(&id, Some(&seal)))
            .with_context(|| format!("cannot write {}'s trailer", part.name))?;
    }
    let data_bytes = part_size(&layout::DATA, disk_bytes);
    let geometry = ext4::format(
        &mut output.region(layout::DATA.start_bytes, data_bytes),
        data_bytes,
        &ext4::Options {
            uuid: derived_uuid(signature, b"data"),
            hash_seed: derived_uuid(signature, b"data hash seed"),
            label: "data".into(),
            time: instance.created_unix,
        },
    )?;
    // Both copies of the record, the same, and the MBR code's second stage in its first place.
    for at in boot::record::COPY_OFFSETS {
        let mut record = output.region(at, layout::SECTOR_BYTES);
        record.write_all(&boot::record::Record::INITIAL.encode(1))?;
    }
    let stage2_at = u64::from(boot::mbr::STAGE2_LBAS[0]) * layout::SECTOR_BYTES;
    let mut stage2 = output.region(stage2_at, boot::mbr::STAGE2.len() as u64);
    stage2.write_all(boot::mbr::STAGE2)?;
    let mbr = mbr_table::sector(signature, disk_bytes, &boot_table)?;
    let mut head = output.region(0, layout::SECTOR_BYTES);
    head.write_all(&mbr)?;
    output.finish()?;
    instance.set_size(disk_bytes)?;
    instance.set_kernel_args(&plan.kernel_args)?;

    let mut names: Vec<String> = vec![format!("init ({})", root.init.name)];
    names.extend(root.programs.iter().map(|p| p.name.clone()));
    Ok(Report {
        size_bytes: disk_bytes,
        disk_signature: signature,
        programs: names,
        root_bytes: root.image.len() as u64,
        root_sha256: root.sha256,
        builds,
        kernel: kernel_extent,
        boot_table,
        data: geometry,
    })
}

/// A UUID (version 4 layout) derived from the disk signature, so the instance alone
/// determines it and builds are reproducible.
fn derived_uuid(signature: u32, purpose: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"rustkrazy ")
        .chain_update(purpose)
        .chain_update(signature.to_le_bytes())
        .finalize();
    let mut uuid: [u8; 16] = digest[..16].try_into().unwrap();
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}
