//! The program itself (see main.rs).

use crate::verify;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use boot::{layout, mbr, record, rootid, seal, slot};
use core::time::Duration;
use uefi::boot::{OpenProtocolAttributes, OpenProtocolParams, ScopedProtocol};
use uefi::proto::device_path::build::DevicePathBuilder;
use uefi::proto::device_path::{DevicePath, DeviceSubType, DeviceType};
use uefi::proto::loaded_image::LoadedImage;
use uefi::proto::media::block::BlockIO;
use uefi::proto::ProtocolPointer;
use uefi::{boot as firmware, entry, system, Handle, Status};

const SECTOR: usize = 512;

#[entry]
fn main() -> Status {
    say("rustkrazy: UEFI boot program\r\n");
    match boot_slot() {
        Ok(()) => say("rustkrazy: the kernel returned to the firmware\r\n"),
        Err(why) => say(&format!("rustkrazy: cannot boot: {why}\r\n")),
    }
    // As the MBR code does: the message stays on screen for five seconds, then a reset. The
    // record already counts this boot (or says TRIED), so a slot that fails this way is
    // left after `record::MAX_ATTEMPTS` boots.
    say("rustkrazy: restarting in 5 s\r\n");
    firmware::stall(Duration::from_secs(5));
    uefi::runtime::reset(uefi::runtime::ResetType::COLD, Status::ABORTED, None)
}

/// Prints on the firmware's console (screen and serial); a console that cannot show a
/// character is no reason to stop booting.
fn say(text: &str) {
    system::with_stdout(|out| {
        let _ = core::fmt::Write::write_str(out, text);
    });
}

fn boot_slot() -> Result<(), String> {
    let mut disk = Disk::own()?;
    let mut sector = [0u8; SECTOR];
    disk.read(0, &mut sector)?;
    let table = mbr::Table::read(&sector)
        .ok_or("sector 0 holds no slot table: this disk was not written by imgtool mkimg")?;
    let held = verify::held_keys().ok_or(
        "both copies of this program's key table are damaged: write the disk again (imgtool mkimg)",
    )?;
    let keys = held.as_slice();
    if keys.is_empty() {
        say("rustkrazy: this boot program holds no keys: no slot's seal is checked\r\n");
    }
    // A copy that cannot be read stays zeros: damaged, as the MBR code takes it.
    let mut copies = [[0u8; SECTOR]; 2];
    for (copy, lba) in copies.iter_mut().zip(record::COPY_LBAS) {
        if let Err(why) = disk.read(lba, copy) {
            say(&format!("rustkrazy: {why}\r\n"));
            copy.fill(0);
        }
    }
    // A slot refused for its seal counts as a boot that did not reach init, and the record
    // chooses again at once (from the copies as this program wrote them, whether or not
    // the disk took the write): a refused trial gives way to the committed slot, a refused
    // committed slot to the other one once its attempts are spent. Without a valid record,
    // slot B is tried when A is refused. The slot that boots carries the first refusal on
    // its command line, for init's boot status.
    let mut refused = None;
    let mut was_refused = [false; 2];
    for _ in 0..usize::from(record::MAX_ATTEMPTS) + 2 {
        let (mut chosen, wrote) = choose_slot(&mut disk, &table, keys, &mut copies);
        if was_refused[chosen.index()] && !wrote {
            // The record has nothing else to give; without one, B is the other choice.
            let other = chosen.other();
            let no_record = record::Copies::read([&copies[0], &copies[1]])
                .newest
                .is_none();
            if !no_record || was_refused[other.index()] {
                break;
            }
            chosen = other;
            say(&format!("rustkrazy: trying slot {chosen:?}\r\n"));
        }
        let files = read_slot(&mut disk, &table, chosen)?;
        if let Err(why) = files.check(keys) {
            say(&format!("rustkrazy: refusing slot {chosen:?}: {why}\r\n"));
            was_refused[chosen.index()] = true;
            refused = refused.or(Some((chosen, why)));
            continue;
        }
        drop(disk);
        return start(files, refused);
    }
    Err("no slot passes its seal check".into())
}

/// Makes the record's choice over `copies` and writes it, to `copies` and to the disk;
/// returns the slot to boot, and whether the record changed. A slot counts as complete,
/// for a fall-back, when it has a kernel and passes the seal check.
fn choose_slot(
    disk: &mut Disk,
    table: &mbr::Table,
    keys: &[[u8; seal::PUBLIC_KEY_BYTES]],
    copies: &mut [[u8; SECTOR]; 2],
) -> (layout::Slot, bool) {
    let read = record::Copies::read([&copies[0], &copies[1]]);
    let choice = record::choose(&read, |slot| {
        read_slot(disk, table, slot).is_ok_and(|files| files.check(keys).is_ok())
    });
    for (n, why) in choice.damaged.iter().enumerate() {
        if let Some(why) = why {
            say(&format!(
                "rustkrazy: copy {} of the boot record is damaged ({why:?})\r\n",
                n + 1
            ));
        }
    }
    if read.newest.is_none() {
        say("rustkrazy: no valid boot record; booting root A, the default\r\n");
    }
    if let Some(from) = choice.fell_back_from {
        say(&format!(
            "rustkrazy: slot {from:?} did not reach init in {} boots; falling back to slot {:?}\r\n",
            record::MAX_ATTEMPTS,
            choice.slot
        ));
    }
    // A write that fails only leaves this boot uncounted: boot all the same.
    let wrote = choice.write.is_some();
    if let Some((copy, sector)) = choice.write {
        copies[copy] = sector;
        if let Err(why) = disk
            .write(record::COPY_LBAS[copy], &sector)
            .and_then(|()| disk.flush())
        {
            say(&format!(
                "rustkrazy: {why}; the boot record is unchanged\r\n"
            ));
        }
    }
    say(&format!(
        "rustkrazy: booting slot {:?}{}\r\n",
        choice.slot,
        if choice.trial { " (trial, once)" } else { "" }
    ));
    (choice.slot, wrote)
}

/// One slot's kernel, command line and trailer, as the disk holds them now.
struct SlotFiles {
    index: usize,
    kernel: Vec<u8>,
    /// Up to its NUL, as the trailer hashes it.
    cmdline: Vec<u8>,
    trailer: [u8; SECTOR],
}

impl SlotFiles {
    /// With no keys, only the trailer (the slot is complete); else its seal as well.
    fn check(&self, keys: &[[u8; seal::PUBLIC_KEY_BYTES]]) -> Result<(), verify::Refusal> {
        if keys.is_empty() {
            return rootid::decode(&self.trailer)
                .map(drop)
                .ok_or(verify::Refusal::NoTrailer);
        }
        verify::check(keys, &self.trailer, &self.kernel, &self.cmdline)
    }
}

fn read_slot(disk: &mut Disk, table: &mbr::Table, slot: layout::Slot) -> Result<SlotFiles, String> {
    let index = slot.index();
    let kernel_lba = u64::from(table.kernel_lba[index]);
    let mut kernel = vec![0u8; slot::KERNEL_HEADER_BYTES];
    disk.read(kernel_lba, &mut kernel)?;
    let length = slot::kernel_bytes(&kernel)
        .filter(|&n| n >= slot::KERNEL_HEADER_BYTES as u64 && n <= slot::KERNEL_REGION_BYTES)
        .ok_or_else(|| {
            format!(
                "no kernel in /boot/{}: neither a bzImage nor a PE header at its start",
                slot::KERNEL_FILES[index]
            )
        })?;
    let length = usize::try_from(length).map_err(|_| "kernel too large")?;
    kernel.resize(length.div_ceil(SECTOR) * SECTOR, 0);
    let rest = slot::KERNEL_HEADER_BYTES as u64 / SECTOR as u64;
    disk.read(kernel_lba + rest, &mut kernel[slot::KERNEL_HEADER_BYTES..])?;
    kernel.truncate(length);

    let mut sector = [0u8; SECTOR];
    disk.read(u64::from(table.cmdline_lba[index]), &mut sector)?;
    let cmdline = slot::cmdline_text(&sector).to_vec();

    let mut trailer = [0u8; SECTOR];
    let partition = slot.partition();
    if let Some(offset) = rootid::offset_in(&partition) {
        disk.read(
            (partition.start_bytes + offset) / SECTOR as u64,
            &mut trailer,
        )?;
    }
    Ok(SlotFiles {
        index,
        kernel,
        cmdline,
        trailer,
    })
}

/// Starts the slot's kernel (its EFI stub) with the slot's command line and, after a
/// refusal, `rustkrazy.refused=<partition>:<why>`.
fn start(files: SlotFiles, refused: Option<(layout::Slot, verify::Refusal)>) -> Result<(), String> {
    let file = |names: [&'static str; 2]| names[files.index];
    let mut text = files
        .cmdline
        .strip_suffix(b"\n")
        .unwrap_or(&files.cmdline)
        .to_vec();
    if let Some((slot, why)) = refused {
        let word = format!(" rustkrazy.refused={}:{}", slot.number(), why.word());
        text.extend_from_slice(word.as_bytes());
    }
    let options = load_options(&text)
        .ok_or_else(|| format!("/boot/{} is not ASCII", file(slot::CMDLINE_FILES)))?;
    let image = firmware::load_image(
        firmware::image_handle(),
        firmware::LoadImageSource::FromBuffer {
            buffer: &files.kernel,
            file_path: None,
        },
    )
    .map_err(|e| {
        format!(
            "the firmware refused the kernel in /boot/{} ({:?}): is it built with CONFIG_EFI_STUB?",
            file(slot::KERNEL_FILES),
            e.status()
        )
    })?;
    {
        let mut loaded = firmware::open_protocol_exclusive::<LoadedImage>(image)
            .map_err(|e| format!("the loaded kernel has no LoadedImage ({:?})", e.status()))?;
        let bytes = u32::try_from(options.len() * 2).map_err(|_| "command line too long")?;
        // SAFETY: `options` outlives the kernel's use of it: it is not dropped before
        // start_image returns, and the kernel copies its command line before that.
        unsafe { loaded.set_load_options(options.as_ptr().cast(), bytes) };
    }
    firmware::start_image(image)
        .map_err(|e| format!("the kernel stopped with {:?}", e.status()))?;
    drop(options);
    Ok(())
}

/// The command line as the EFI stub reads it: UCS-2, NUL-terminated.
fn load_options(text: &[u8]) -> Option<Vec<u16>> {
    let mut out: Vec<u16> = Vec::with_capacity(text.len() + 1);
    for &b in text {
        if !b.is_ascii() {
            return None;
        }
        out.push(u16::from(b));
    }
    out.push(0);
    Some(out)
}

/// The whole disk this program was loaded from (the firmware started us from its FAT
/// partition; the record and the slot table are in sectors 0 and 1 of the disk).
struct Disk {
    io: ScopedProtocol<BlockIO>,
    media_id: u32,
}

impl Disk {
    fn own() -> Result<Disk, String> {
        let partition = {
            let me = shared::<LoadedImage>(firmware::image_handle())?;
            me.device()
                .ok_or("the firmware did not say which device it loaded us from")?
        };
        let partition_path = shared::<DevicePath>(partition)?;
        // The disk's device path is the partition's without its last (hard drive) node.
        let mut storage = Vec::new();
        let mut builder = DevicePathBuilder::with_vec(&mut storage);
        for node in partition_path.node_iter() {
            if node.device_type() == DeviceType::MEDIA
                && node.sub_type() == DeviceSubType::MEDIA_HARD_DRIVE
            {
                break;
            }
            builder = builder
                .push(&node)
                .map_err(|e| format!("device path: {e:?}"))?;
        }
        let disk_path = builder
            .finalize()
            .map_err(|e| format!("device path: {e:?}"))?;
        let mut rest = disk_path;
        let handle = firmware::locate_device_path::<BlockIO>(&mut rest)
            .map_err(|e| format!("no block device holds our partition ({:?})", e.status()))?;
        if rest.node_iter().next().is_some() {
            return Err("the disk under our partition has no block device of its own".into());
        }
        let io = shared::<BlockIO>(handle)?;
        let media = io.media();
        if media.is_logical_partition() || media.block_size() as usize != SECTOR {
            return Err(format!(
                "our disk has {}-byte blocks{}; rustkrazy needs a whole disk of 512-byte sectors",
                media.block_size(),
                if media.is_logical_partition() {
                    " and is a partition"
                } else {
                    ""
                }
            ));
        }
        let media_id = media.media_id();
        Ok(Disk { io, media_id })
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), String> {
        self.io
            .read_blocks(self.media_id, lba, buf)
            .map_err(|e| format!("reading sector {lba} failed ({:?})", e.status()))
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), String> {
        self.io
            .write_blocks(self.media_id, lba, buf)
            .map_err(|e| format!("writing sector {lba} failed ({:?})", e.status()))
    }

    fn flush(&mut self) -> Result<(), String> {
        self.io
            .flush_blocks()
            .map_err(|e| format!("flushing the disk failed ({:?})", e.status()))
    }
}

/// Opens a protocol without taking it from the drivers that use it (an exclusive open
/// would disconnect the partition and file system drivers above the disk).
fn shared<P: ProtocolPointer + ?Sized>(handle: Handle) -> Result<ScopedProtocol<P>, String> {
    // SAFETY: GetProtocol leaves the protocol to its drivers; while we run, nothing else
    // runs (UEFI boot services are single-threaded), and we drop every protocol before
    // starting the kernel.
    unsafe {
        firmware::open_protocol::<P>(
            OpenProtocolParams {
                handle,
                agent: firmware::image_handle(),
                controller: None,
            },
            OpenProtocolAttributes::GetProtocol,
        )
    }
    .map_err(|e| format!("opening a firmware protocol failed ({:?})", e.status()))
}
