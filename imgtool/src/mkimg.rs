//! `imgtool mkimg`: validates and builds everything first, then writes the image: boot
//! partition, both roots, /data, and the MBR last, so an interrupted write never leaves a
//! partition table pointing at half-written partitions. A file target is written under a
//! temporary name and renamed only when complete.

use crate::cargo_build::{self, Builder};
use crate::config::{Arch, Plan, Settings};
use crate::instance::Instance;
use crate::output::Output;
use crate::rootfs::{self, EtcFile, Program};
use crate::{elf, ext4, fat, kernel, size};
use anyhow::{bail, ensure, Context, Result};
use boot::layout::{self, Partition};
use boot::slot;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
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

/// What a slot holding `root_image`, `kernel` and `cmdline` is: the trailer's contents,
/// with the build id the device will report for it.
pub fn slot_id(root_image: &[u8], kernel: &[u8], cmdline: &str) -> boot::rootid::SlotId {
    let part = |bytes: &[u8]| boot::rootid::Part {
        bytes: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
    };
    let (root, kernel, cmdline) = (part(root_image), part(kernel), part(cmdline.as_bytes()));
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
    let kernel_data = read_kernel(plan.kernel.as_deref(), arch)?;
    let size_text = plan.size.clone();
    let size_bytes = match &size_text {
        Some(s) => Some(size::parse(s)?),
        None => instance.size_bytes,
    };
    let firmware = extra_boot_files(&plan, arch)?;
    plan.network.as_ref().map(|n| n.render()).transpose()?; // checked before building
    let uefi = uefi_program(&instance)?;

    // 2. and 3. Programs, then the root image.
    let root = build_root(&plan, &instance)?;
    let (root_image, root_sha256, init, programs) =
        (root.image, root.sha256, root.init, root.programs);

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
    let signature = instance.disk_signature;
    eprintln!("writing {} ({})", target.display(), size::human(disk_bytes));
    let (boot_table, kernel_extent) = write_boot(
        &output,
        disk_bytes,
        plan_boot(&plan, &instance, &kernel_data, &firmware, &uefi),
    )?;
    // Root B gets the same image as root A: whichever slot the bootloader or a mistaken
    // switch starts, the device comes up on a working system.
    let mut builds = [[0u8; 32]; 2];
    for root in [layout::ROOT_A, layout::ROOT_B] {
        let mut region = output.region(root.start_bytes, part_size(&root, disk_bytes));
        region
            .write_all(&root_image)
            .with_context(|| format!("cannot write {}", root.name))?;
        let line = cmdline(instance.arch, signature, root.number, &plan.kernel_args);
        let id = slot_id(&root_image, &kernel_data, &line);
        builds[slot::index(root.number)] = id.build;
        let trailer_at = boot::rootid::offset_in(&root).unwrap_or(0);
        output
            .region(root.start_bytes + trailer_at, layout::SECTOR_BYTES)
            .write_all(&boot::rootid::encode(&id))
            .with_context(|| format!("cannot write {}'s trailer", root.name))?;
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
    let mut record = output.region(boot::record::RECORD_OFFSET, layout::SECTOR_BYTES);
    record.write_all(&boot::record::Record::INITIAL.encode())?;
    let mbr = mbr(signature, disk_bytes, &boot_table)?;
    let mut head = output.region(0, layout::SECTOR_BYTES);
    head.write_all(&mbr)?;
    output.finish()?;
    instance.set_size(disk_bytes)?;
    instance.set_kernel_args(&plan.kernel_args)?;

    let mut names: Vec<String> = vec![format!("init ({})", init.name)];
    names.extend(programs.iter().map(|p| p.name.clone()));
    Ok(Report {
        size_bytes: disk_bytes,
        disk_signature: signature,
        programs: names,
        root_bytes: root_image.len() as u64,
        root_sha256,
        builds,
        kernel: kernel_extent,
        boot_table,
        data: geometry,
    })
}

fn part_size(part: &Partition, disk_bytes: u64) -> u64 {
    part.size_on(disk_bytes)
        .expect("disk size checked against the layout")
}

/// Builds every program and picks init. Returns (init, other programs, settings by name).
fn gather_programs(
    plan: &Plan,
    builder: &Builder,
) -> Result<(Program, Vec<Program>, BTreeMap<String, Settings>)> {
    let with_system = plan.system_programs.unwrap_or(true);
    let default_init = plan.init.is_none();
    let mut system: Vec<&str> = Vec::new();
    if default_init {
        system.push(cargo_build::INIT);
    }
    if with_system {
        system.extend(cargo_build::SYSTEM_PROGRAMS);
    }
    // (program, where it came from) for error messages.
    let mut all: Vec<(Program, String)> = Vec::new();
    let mut settings = BTreeMap::new();
    if !system.is_empty() {
        for p in builder.build_system(&system)? {
            if system.contains(&p.name.as_str()) {
                all.push((p, "rustkrazy".into()));
            }
        }
    }
    for spec in &plan.programs {
        for p in builder.build(&spec.source)? {
            settings.insert(p.name.clone(), spec.settings.clone());
            all.push((p, format!("{:?}", spec.source)));
        }
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (p, origin) in &all {
        ensure!(
            boot::services::valid_service_name(p.name.as_bytes()),
            "program name {:?} is not usable in /bin (letters, digits, '.', '_', '-'; at most 64)",
            p.name
        );
        if let Some(first) = seen.insert(&p.name, origin) {
            bail!(
                "two programs are named {:?} ({first} and {origin}); give one another name with --bin FILE=NAME",
                p.name
            );
        }
    }
    let init_name = plan.init.as_deref().unwrap_or(cargo_build::INIT);
    let Some(index) = all.iter().position(|(p, _)| p.name == init_name) else {
        let names: Vec<&str> = all.iter().map(|(p, _)| p.name.as_str()).collect();
        bail!(
            "--init {init_name:?} names no program in the image (programs: {})",
            names.join(", ")
        );
    };
    let (init, _) = all.remove(index);
    let programs = all.into_iter().map(|(p, _)| p).collect();
    Ok((init, programs, settings))
}

/// /etc in the root image.
fn etc_files(
    instance: &Instance,
    programs: &[Program],
    init: &Program,
    settings: &BTreeMap<String, Settings>,
) -> Result<Vec<EtcFile>> {
    let mut services =
        String::from("# Written by imgtool mkimg; read by init. Format: see boot::services.\n");
    for program in programs {
        let Some(s) = settings.get(&program.name) else {
            continue;
        };
        for arg in &s.args {
            ensure!(
                boot::services::valid_value(arg.as_bytes()),
                "{}: argument {arg:?} holds a newline or NUL",
                program.name
            );
            services.push_str(&format!("{} arg {arg}\n", program.name));
        }
        for (key, value) in &s.env {
            ensure!(
                !key.is_empty()
                    && !key.contains('=')
                    && boot::services::valid_value(key.as_bytes())
                    && boot::services::valid_value(value.as_bytes()),
                "{}: environment variable {key:?} is not valid",
                program.name
            );
            services.push_str(&format!("{} env {key}={value}\n", program.name));
        }
        if !s.autostart {
            services.push_str(&format!("{} autostart no\n", program.name));
        }
    }
    if settings.contains_key(&init.name) && settings[&init.name] != Settings::default() {
        eprintln!(
            "note: settings for {} are ignored: it runs as /bin/init",
            init.name
        );
    }
    let file = |path: &str, data: Vec<u8>, mode: u16| EtcFile {
        path: path.to_string(),
        data,
        mode,
    };
    Ok(vec![
        file(
            "etc/hostname",
            format!("{}\n", instance.hostname).into_bytes(),
            0o644,
        ),
        file(
            boot::services::PATH.trim_start_matches('/'),
            services.into_bytes(),
            0o644,
        ),
        file(
            "etc/admind/cert.pem",
            instance.cert_pem.clone().into_bytes(),
            0o644,
        ),
        file(
            "etc/admind/key.pem",
            instance.key_pem.clone().into_bytes(),
            0o600,
        ),
        file(
            boot::password::PATH.trim_start_matches('/'),
            instance.password_hash_line().into_bytes(),
            0o600,
        ),
    ])
}

/// Regular files at the top of a firmware folder, sorted by name.
fn read_firmware(dir: Option<&Path>) -> Result<Vec<(String, Vec<u8>)>> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read firmware folder {}", dir.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path())?,
            ));
        } else {
            eprintln!(
                "note: skipping {} (the boot partition is kept flat)",
                entry.path().display()
            );
        }
    }
    files.sort();
    Ok(files)
}

/// How long the kernel waits for the root device before it gives up and panics (a trial
/// kernel without the disk's driver then reboots into the committed slot instead of waiting
/// forever).
const ROOT_WAIT_S: u32 = 30;
/// How long a panicked kernel waits before it reboots.
const PANIC_REBOOT_S: u32 = 10;

/// The kernel command line that boots root slot `partition`.
pub fn cmdline(arch: Arch, signature: u32, partition: u8, extra: &[String]) -> String {
    let mut partuuid = [0u8; 11];
    layout::partuuid(signature, partition, &mut partuuid);
    let mut line = format!(
        "{} root=PARTUUID={} rootfstype=squashfs ro rootwait={ROOT_WAIT_S} init=/bin/init panic={PANIC_REBOOT_S}",
        arch.console_args(),
        String::from_utf8_lossy(&partuuid)
    )
    .trim_start()
    .to_string();
    for arg in extra {
        line.push(' ');
        line.push_str(arg);
    }
    line.push('\n');
    line
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

/// The MBR sector: boot code with its table, signature, the four partitions.
fn mbr(signature: u32, disk_bytes: u64, table: &boot::mbr::Table) -> Result<Vec<u8>> {
    let mut header = mbrman::MBRHeader::new(signature.to_le_bytes());
    header.bootstrap_code = table.patch();
    let entries = [
        &mut header.partition_1,
        &mut header.partition_2,
        &mut header.partition_3,
        &mut header.partition_4,
    ];
    for (entry, part) in entries.into_iter().zip(layout::PARTITIONS) {
        let first = part.start_lba();
        let sectors = part_size(&part, disk_bytes) / layout::SECTOR_BYTES;
        *entry = mbrman::MBRPartitionEntry {
            boot: if part.active {
                mbrman::BOOT_ACTIVE
            } else {
                mbrman::BOOT_INACTIVE
            },
            first_chs: chs(first),
            sys: part.mbr_type,
            last_chs: chs(first + sectors - 1),
            starting_lba: first as u32,
            sectors: sectors as u32,
        };
    }
    let mut sector = std::io::Cursor::new(Vec::with_capacity(512));
    header
        .write_into(&mut sector)
        .context("cannot encode the MBR")?;
    let sector = sector.into_inner();
    ensure!(sector.len() == 512, "MBR encodes to {} bytes", sector.len());
    Ok(sector)
}

/// CHS address for the conventional 255 heads x 63 sectors geometry; past its reach, the
/// customary 1023/254/63 that tells firmware to use the LBA fields.
fn chs(lba: u64) -> mbrman::CHS {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return mbrman::CHS::new(1023, 254, 63);
    }
    mbrman::CHS::new(
        cylinder as u16,
        (lba / SECTORS % HEADS) as u8,
        (lba % SECTORS + 1) as u8,
    )
}

/// A root image and what went into it.
pub struct Root {
    pub image: Vec<u8>,
    /// The image's SHA-256 (one part of the slot's build id, see `boot::rootid`).
    pub sha256: [u8; 32],
    pub init: Program,
    pub programs: Vec<Program>,
}

/// Builds the programs of `plan` and the SquashFS root image holding them with the
/// instance's /etc files: what mkimg writes into both slots and push uploads.
pub fn build_root(plan: &Plan, instance: &Instance) -> Result<Root> {
    let arch = instance.arch;
    let network = plan.network.as_ref().map(|n| n.render()).transpose()?;
    // 2. Programs.
    let builder = Builder {
        arch,
        cache: cargo_build::cache_dir(),
    };
    let (init, programs, settings) = gather_programs(plan, &builder)?;
    for p in std::iter::once(&init).chain(&programs) {
        elf::check_static_executable(&p.path, arch)?;
    }

    // 3. Root image contents and the root image itself.
    let mut etc = etc_files(&instance, &programs, &init, &settings)?;
    if let Some(text) = network {
        etc.push(EtcFile {
            path: boot::network::PATH.trim_start_matches('/').to_string(),
            data: text.into_bytes(),
            mode: 0o644,
        });
    }
    let root_image = rootfs::build(
        &rootfs::Contents {
            init: &init,
            programs: &programs,
            etc: &etc,
            symlinks: &[("etc/resolv.conf", "/run/resolv.conf")],
            time_unix: instance.created_unix,
        },
        boot::rootid::image_bytes_max(&layout::ROOT_A).unwrap_or(0),
    )?;
    let sha256: [u8; 32] = Sha256::digest(&root_image).into();
    Ok(Root {
        image: root_image,
        sha256,
        init,
        programs,
    })
}

/// The kernel named by the plan, or `imgtool kernel`'s.
pub fn kernel_path(path: Option<&Path>, arch: Arch) -> Result<PathBuf> {
    match path {
        Some(path) => Ok(path.to_path_buf()),
        None => crate::kernel_build::build(arch, None, &cargo_build::cache_dir())
            .context("no --kernel given and the default kernel cannot be built"),
    }
}

/// The kernel named by the plan, or `imgtool kernel`'s, checked for `arch`.
pub fn read_kernel(path: Option<&Path>, arch: Arch) -> Result<Vec<u8>> {
    let path = kernel_path(path, arch)?;
    let data =
        std::fs::read(&path).with_context(|| format!("cannot read kernel {}", path.display()))?;
    kernel::check(&path, &data, arch)?;
    Ok(data)
}

/// Files for /boot besides the slot files and the UEFI program: the firmware folder's, and
/// for the Raspberry Pi its firmware (Debian's unless `--firmware`), each slot's device trees
/// (`slot-a-bcm2837-rpi-3-b.dtb`, from beside the kernel) and the firmware's two settings
/// files, `config.txt` (the committed slot) and `tryboot.txt` (the other one).
fn extra_boot_files(plan: &Plan, arch: Arch) -> Result<Vec<(String, Vec<u8>)>> {
    if arch != Arch::Rpi {
        return read_firmware(plan.firmware.as_deref());
    }
    let firmware_dir = match &plan.firmware {
        Some(dir) => dir.clone(),
        None => crate::rpi_firmware::fetch(&cargo_build::cache_dir())?,
    };
    let mut files = read_firmware(Some(&firmware_dir))?;
    for settings in [boot::rpi::CONFIG_TXT, boot::rpi::TRYBOOT_TXT] {
        ensure!(
            !files.iter().any(|(name, _)| name.eq_ignore_ascii_case(settings)),
            "{} holds {settings}, which rustkrazy writes itself (it chooses the slot): remove it from the firmware folder",
            firmware_dir.display()
        );
    }
    let kernel = kernel_path(plan.kernel.as_deref(), arch)?;
    let dtbs = crate::kernel_build::device_trees(&kernel);
    if dtbs.is_dir() {
        for name in boot::kernel::RPI_DEVICE_TREES {
            let data = std::fs::read(dtbs.join(name))
                .with_context(|| format!("no {name} in {}", dtbs.display()))?;
            for prefix in boot::rpi::SLOT_PREFIXES {
                files.push((format!("{prefix}{name}"), data.clone()));
            }
        }
    } else {
        eprintln!(
            "note: no device trees in {} (beside --kernel): the Pi firmware will not start this kernel \
             unless /boot gets slot-a-bcm2837-rpi-3-b.dtb and the like from elsewhere",
            dtbs.display()
        );
    }
    for (name, content) in boot::rpi::files_for(boot::record::Record::INITIAL.committed) {
        files.push((name.to_string(), content.to_vec()));
    }
    Ok(files)
}

/// What goes onto the boot partition.
pub struct BootInputs<'a> {
    pub arch: Arch,
    pub signature: u32,
    pub time_unix: u32,
    pub kernel_data: &'a [u8],
    pub kernel_args: &'a [String],
    pub firmware: &'a [(String, Vec<u8>)],
    /// The UEFI boot program and its path, for architectures that have one.
    pub uefi: Option<(&'a str, &'a [u8])>,
    pub fragment_kernel_for_tests: bool,
}

fn plan_boot<'a>(
    plan: &'a Plan,
    instance: &Instance,
    kernel_data: &'a [u8],
    firmware: &'a [(String, Vec<u8>)],
    uefi: &'a Option<(&'static str, Vec<u8>)>,
) -> BootInputs<'a> {
    BootInputs {
        arch: instance.arch,
        signature: instance.disk_signature,
        time_unix: instance.created_unix,
        kernel_data,
        kernel_args: &plan.kernel_args,
        firmware,
        uefi: uefi.as_ref().map(|(path, data)| (*path, data.as_slice())),
        fragment_kernel_for_tests: plan.fragment_kernel_for_tests,
    }
}

/// The UEFI boot program for the instance's architecture, built from this workspace.
fn uefi_program(instance: &Instance) -> Result<Option<(&'static str, Vec<u8>)>> {
    Builder {
        arch: instance.arch,
        cache: cargo_build::cache_dir(),
    }
    .build_uefi()
}

/// Writes the boot partition (each slot's kernel and cmdline, the UEFI boot program,
/// firmware and its settings) into `output`; returns the MBR code's table and slot A's kernel place.
fn write_boot(
    output: &Output,
    disk_bytes: u64,
    b: BootInputs<'_>,
) -> Result<(boot::mbr::Table, fat::Extent)> {
    for arg in b.kernel_args {
        ensure!(
            !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_graphic()),
            "kernel argument {arg:?} must be one word of printable ASCII"
        );
    }
    // Each slot's files at their full size, so an update rewrites bytes, never the FAT:
    // the command line NUL-padded to its sector, the kernel zero-padded to its region.
    let mut cmdlines = Vec::new();
    for root in [layout::ROOT_A, layout::ROOT_B] {
        let line = cmdline(b.arch, b.signature, root.number, b.kernel_args);
        ensure!(
            line.len() <= slot::CMDLINE_BYTES_MAX,
            "kernel command line longer than {} bytes",
            slot::CMDLINE_BYTES_MAX
        );
        let mut sector = line.into_bytes();
        sector.resize(slot::CMDLINE_REGION_BYTES as usize, 0);
        cmdlines.push(sector);
    }
    ensure!(
        b.kernel_data.len() as u64 <= slot::KERNEL_REGION_BYTES,
        "the kernel is {} bytes; a slot holds at most {} (boot::slot::KERNEL_REGION_BYTES)",
        b.kernel_data.len(),
        slot::KERNEL_REGION_BYTES
    );
    let mut kernel_region = b.kernel_data.to_vec();
    kernel_region.resize(slot::KERNEL_REGION_BYTES as usize, 0);
    // Slot files first, always in this order: their places are the same in every image.
    let mut boot_files = vec![
        fat::BootFile {
            name: slot::CMDLINE_FILES[0],
            data: &cmdlines[0],
        },
        fat::BootFile {
            name: slot::CMDLINE_FILES[1],
            data: &cmdlines[1],
        },
        fat::BootFile {
            name: slot::KERNEL_FILES[0],
            data: &kernel_region,
        },
        fat::BootFile {
            name: slot::KERNEL_FILES[1],
            data: &kernel_region,
        },
    ];
    if let Some((name, data)) = b.uefi {
        boot_files.push(fat::BootFile { name, data });
    }
    for (name, data) in b.firmware {
        ensure!(
            !boot_files.iter().any(|f| f.name.eq_ignore_ascii_case(name)),
            "firmware file {name} would replace rustkrazy's own /boot/{name}"
        );
        boot_files.push(fat::BootFile { name, data });
    }
    let boot_bytes = part_size(&layout::BOOT, disk_bytes);
    fat::write(
        output.region(layout::BOOT.start_bytes, boot_bytes),
        b.signature,
        b.time_unix,
        layout::BOOT.start_lba() as u32,
        &boot_files,
        b.fragment_kernel_for_tests.then_some(2),
    )?;
    let mut boot_region = output.region(layout::BOOT.start_bytes, boot_bytes);
    let to_disk_lba = |e: &fat::Extent| (layout::BOOT.start_lba() + e.first_sector) as u32;
    let mut table = boot::mbr::Table {
        kernel_lba: [0; 2],
        cmdline_lba: [0; 2],
    };
    let mut kernel_extent = None;
    for i in 0..2 {
        for (name, lba) in [
            (slot::KERNEL_FILES[i], &mut table.kernel_lba[i]),
            (slot::CMDLINE_FILES[i], &mut table.cmdline_lba[i]),
        ] {
            let extent = fat::find(&mut boot_region, name)?;
            ensure!(
                extent.contiguous,
                "/boot/{name} was written in fragments; the MBR boot code can only load contiguous files"
            );
            *lba = to_disk_lba(&extent);
            if name == slot::KERNEL_FILES[0] {
                kernel_extent = Some(extent);
            }
        }
    }
    let kernel_extent = kernel_extent.context("no kernel file on the boot partition")?;
    Ok((table, kernel_extent))
}

/// A boot partition image for `plan` (kernel from the plan or `imgtool kernel`), without
/// its zero tail, and the MBR code patched with where it keeps the kernel: what
/// `push --boot` sends.
pub fn build_boot(plan: &Plan, instance: &Instance) -> Result<(Vec<u8>, [u8; 440])> {
    let arch = instance.arch;
    let kernel_data = read_kernel(plan.kernel.as_deref(), arch)?;
    let firmware = extra_boot_files(plan, arch)?;
    let uefi = uefi_program(instance)?;
    // Laid out in a scratch disk image of the smallest size, then cut out.
    let scratch = std::env::temp_dir().join(format!("imgtool-boot-{}.img", std::process::id()));
    let output = Output::open(&scratch, Some(layout::DISK_MIN_BYTES))?;
    let (table, _) = write_boot(
        &output,
        layout::DISK_MIN_BYTES,
        plan_boot(plan, instance, &kernel_data, &firmware, &uefi),
    )?;
    let mut image = vec![0u8; part_size(&layout::BOOT, layout::DISK_MIN_BYTES) as usize];
    output
        .region(layout::BOOT.start_bytes, image.len() as u64)
        .read_exact(&mut image)?;
    drop(output); // removes the scratch file
                  // The slot files are updated per slot (tried, committed); the device keeps its own and
                  // refuses an image that carries any.
    for i in 0..2 {
        for (lba, len) in [
            (table.kernel_lba[i], slot::KERNEL_REGION_BYTES),
            (table.cmdline_lba[i], slot::CMDLINE_REGION_BYTES),
        ] {
            let at = (u64::from(lba) - layout::BOOT.start_lba()) * layout::SECTOR_BYTES;
            image[at as usize..(at + len) as usize].fill(0);
        }
    }
    let used = image.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    image.truncate(used.next_multiple_of(4096).min(image.len()));
    Ok((image, table.patch()))
}
