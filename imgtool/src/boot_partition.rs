//! The boot partition: each slot's kernel and command line at fixed places (whose sectors
//! the MBR code's table records), the UEFI boot program, firmware and, on the Raspberry Pi,
//! its settings files and device trees. What mkimg writes and `push --boot` uploads.

use crate::cargo_build::{self, Builder};
use crate::config::{Arch, Plan};
use crate::instance::Instance;
use crate::mbr_table::part_size;
use crate::output::Output;
use crate::{fat, kernel};
use anyhow::{ensure, Context, Result};
use boot::layout;
use boot::slot;
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// How long the kernel waits for the root device before it gives up and panics (a trial
/// kernel without the disk's driver then reboots into the committed slot instead of waiting
/// forever).
const ROOT_WAIT_S: u32 = 30;
/// How long a panicked kernel waits before it reboots.
const PANIC_REBOOT_S: u32 = 10;

/// The kernel command line that boots root partition `partition`, holding a root image
/// whose hash tree is `verity` (the kernel checks every block of it it reads), with the
/// plan's `extra` words; refused when a word is not one word of printable ASCII, or the
/// line does not fit a slot's sector.
pub fn cmdline(
    arch: Arch,
    signature: u32,
    partition: u8,
    verity: &crate::verity::Tree,
    extra: &[String],
) -> Result<String> {
    for arg in extra {
        ensure!(
            !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_graphic()),
            "kernel argument {arg:?} must be one word of printable ASCII"
        );
    }
    let mut partuuid = [0u8; 11];
    layout::partuuid(signature, partition, &mut partuuid);
    let device = format!("PARTUUID={}", String::from_utf8_lossy(&partuuid));
    let mut line = format!(
        "{} {} rootfstype=squashfs ro rootwait={ROOT_WAIT_S} init=/bin/init panic={PANIC_REBOOT_S}",
        arch.console_args(),
        verity.cmdline(&device)
    )
    .trim_start()
    .to_string();
    for arg in extra {
        line.push(' ');
        line.push_str(arg);
    }
    line.push('\n');
    ensure!(
        line.len() <= slot::CMDLINE_BYTES_MAX,
        "the kernel command line is {} bytes, longer than the {} a slot holds; shorten kernel_args",
        line.len(),
        slot::CMDLINE_BYTES_MAX
    );
    Ok(line)
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

/// Files for /boot besides the slot files and the UEFI program: the firmware folder's, and
/// for the Raspberry Pi its firmware (Debian's unless `--firmware`), each slot's device trees
/// (`slot-a-bcm2837-rpi-3-b.dtb`, from beside the kernel) and the firmware's two settings
/// files, `config.txt` (the committed slot) and `tryboot.txt` (the other one).
pub fn extra_boot_files(plan: &Plan, arch: Arch) -> Result<Vec<(String, Vec<u8>)>> {
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
    /// Each slot's command line (`cmdline`), slot A first.
    pub cmdlines: [String; 2],
    pub firmware: &'a [(String, Vec<u8>)],
    /// The UEFI boot program and its path, for architectures that have one.
    pub uefi: Option<(&'a str, &'a [u8])>,
    pub fragment_kernel_for_tests: bool,
}

pub fn plan_boot<'a>(
    plan: &'a Plan,
    instance: &Instance,
    kernel_data: &'a [u8],
    firmware: &'a [(String, Vec<u8>)],
    uefi: &'a Option<(&'static str, Vec<u8>)>,
    cmdlines: [String; 2],
) -> BootInputs<'a> {
    BootInputs {
        arch: instance.arch,
        signature: instance.disk_signature,
        time_unix: instance.created_unix,
        kernel_data,
        kernel_args: &plan.kernel_args,
        cmdlines,
        firmware,
        uefi: uefi.as_ref().map(|(path, data)| (*path, data.as_slice())),
        fragment_kernel_for_tests: plan.fragment_kernel_for_tests,
    }
}

/// The UEFI boot program for the instance's architecture, built from this workspace.
/// The program holds the keys the plan's roots trust (the instance's `slot-keys`, less
/// those it revokes; none with `sealed_slots = false`), and boots only slots sealed by one
/// of them (`boot::uefi_keys`); admind keeps it following the committed root's trust file.
pub fn uefi_program(plan: &Plan, instance: &Instance) -> Result<Option<(&'static str, Vec<u8>)>> {
    let built = Builder {
        arch: instance.arch,
        cache: cargo_build::cache_dir(),
    }
    .build_uefi()?;
    let Some((path, mut program)) = built else {
        return Ok(None);
    };
    let keys = match plan.sealed_slots {
        Some(false) => Vec::new(),
        _ => admin_api::seal::trusted_keys(&instance.slot_keys)
            .context("the instance's slot-keys has a line that is not an entry")?,
    };
    let keys = boot::uefi_keys::Keys::new(&keys).with_context(|| {
        format!(
            "slot-keys trusts {} keys; the UEFI boot program holds at most {}: revoke the old ones (imgtool key rotate)",
            keys.len(),
            boot::uefi_keys::KEYS_MAX
        )
    })?;
    let at = boot::uefi_keys::find(&program)
        .context("the UEFI boot program has no key table (boot::uefi_keys): rebuild it")?;
    program[at..at + boot::uefi_keys::TABLE_BYTES].copy_from_slice(&boot::uefi_keys::table(&keys));
    Ok(Some((path, program)))
}

/// Writes the boot partition (each slot's kernel and cmdline, the UEFI boot program,
/// firmware and its settings) into `output`; returns the MBR code's table and slot A's kernel place.
pub fn write_boot(
    output: &Output,
    disk_bytes: u64,
    b: BootInputs<'_>,
) -> Result<(boot::mbr::Table, fat::Extent)> {
    // Each slot's files at their full size, so an update rewrites bytes, never the FAT:
    // the command line NUL-padded to its sector, the kernel zero-padded to its region.
    let mut cmdlines = Vec::new();
    for line in &b.cmdlines {
        let mut sector = line.clone().into_bytes();
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
/// its zero tail, and the boot code: the MBR's first stage patched with where it keeps the
/// kernel, then the second stage. What `push --boot` sends.
pub fn build_boot(plan: &Plan, instance: &Instance) -> Result<(Vec<u8>, Vec<u8>)> {
    let arch = instance.arch;
    let kernel_data = read_kernel(plan.kernel.as_deref(), arch)?;
    let firmware = extra_boot_files(plan, arch)?;
    let uefi = uefi_program(plan, instance)?;
    // Laid out in a scratch disk image of the smallest size, then cut out.
    let scratch = std::env::temp_dir().join(format!("imgtool-boot-{}.img", std::process::id()));
    let output = Output::open(&scratch, Some(layout::DISK_MIN_BYTES))?;
    let (table, _) = write_boot(
        &output,
        layout::DISK_MIN_BYTES,
        // The slot files are cut out below: no command line goes in.
        plan_boot(
            plan,
            instance,
            &kernel_data,
            &firmware,
            &uefi,
            Default::default(),
        ),
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
    Ok((image, [&table.patch()[..], boot::mbr::STAGE2].concat()))
}
