//! What admind manages on the device: the disk (boot record, root slots and their
//! trailers, the boot partition, the MBR code), the boot status init wrote, /data, the logs
//! and the processes. Every path is configurable so the host tests can use plain files.

use crate::fault::{fault, Fault, Kind};
use crate::upload::{Completion, RegionUpload, UpdateGuard, STREAM_BUFFER_BYTES};
use boot::layout::{self, Slot};
use boot::mbr::{Table, CODE_BYTES, STAGE2, STAGE2_FIELD_OFFSET, STAGE2_LBAS};
use boot::record::{Copies, Record, State, COPY_OFFSETS};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Where things are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The whole disk; `None`: the `disk=` init wrote into the boot status.
    pub disk: Option<PathBuf>,
    pub boot_status: PathBuf,
    /// init's list of services and their restart counts.
    pub services: PathBuf,
    /// The services file in the running root (settings, readiness checks).
    pub services_config: PathBuf,
    /// link's clock synchronisation status (`boot::clock`).
    pub clock: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
    pub proc: PathBuf,
    /// Where each service's control group is (`boot::sandbox`).
    pub cgroups: PathBuf,
    /// The keys this root trusts to seal slots (`boot::seal`); without the file, slots
    /// need no seal.
    pub trust: PathBuf,
    /// The release channel to follow (`boot::channel`); without the file, none.
    pub channel: PathBuf,
    /// Present when UEFI firmware booted this system (the kernel's EFI sysfs directory).
    pub efi: PathBuf,
    /// Who gets SIGUSR1 (reboot) and SIGUSR2 (power off): init, PID 1.
    pub init_pid: i32,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            disk: None,
            boot_status: path(boot::boot_status::PATH),
            services: path(boot::service_list::PATH),
            services_config: boot::services::PATH.into(),
            clock: boot::clock::STATUS_PATH.into(),
            data: "/data".into(),
            logs: boot::logs::DIR.into(),
            proc: "/proc".into(),
            cgroups: boot::sandbox::CGROUP_ROOT.into(),
            trust: boot::seal::TRUST_PATH.into(),
            channel: boot::channel::PATH.into(),
            efi: "/sys/firmware/efi".into(),
            init_pid: 1,
        }
    }
}

/// Where `slot`'s trailer (`boot::rootid`) lies on the disk.
fn trailer_at(slot: Slot) -> u64 {
    let part = slot.partition();
    part.start_bytes + boot::rootid::offset_in(&part).unwrap_or(0)
}

/// A device path the contract names.
fn path(c: &std::ffi::CStr) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(c.to_bytes()))
}

/// How this system booted, from init's boot status ([`boot::boot_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booted {
    pub how: boot::boot_status::How,
    /// The root slot running now.
    pub slot: Slot,
    /// The whole disk: `--disk`, else the one init reported.
    pub disk: Option<PathBuf>,
    /// Copies of the boot record init found damaged (and rewrote).
    pub damage: boot::record::Damage,
    /// A slot the UEFI boot program refused, and why (`boot::boot_status`).
    pub refused: Option<String>,
}

impl Booted {
    /// Reads init's boot status; it is written before any service starts and never
    /// changes during a boot, so this is done once.
    fn read(paths: &Paths) -> Result<Booted, Fault> {
        let shown = paths.boot_status.display();
        let text = std::fs::read_to_string(&paths.boot_status).map_err(|e| {
            fault(
                Kind::Unavailable,
                format!("cannot read {shown} ({e}): init has not reported how it booted"),
            )
        })?;
        let status = boot::boot_status::parse(&text)
            .ok_or_else(|| fault(Kind::Unavailable, format!("{shown} is malformed")))?;
        Ok(Booted {
            how: status.how,
            slot: status.slot,
            disk: paths.disk.clone().or(status.disk.map(PathBuf::from)),
            damage: status.damage,
            refused: status.refused.map(String::from),
        })
    }
}

pub use boot::rootid::{Part, SlotId};
pub use boot::seal::Seal;

pub struct Device {
    pub paths: Paths,
    /// How this system booted, or why that is unknown (every disk operation then says so).
    booted: Result<Booted, Fault>,
}

/// The start of a kernel read to learn its length and (for a bzImage, whose setup holds it)
/// version: at least `boot::slot::KERNEL_HEADER_BYTES`.
const KERNEL_SETUP_BYTES: usize = 64 * SECTOR;
/// A sector, as buffers size it.
const SECTOR: usize = layout::SECTOR_BYTES as usize;

/// A slot's kernel and command line as the disk holds them.
pub struct SlotFiles {
    pub kernel: Option<Part>,
    pub kernel_version: String,
    pub cmdline: Part,
    pub cmdline_text: String,
}

/// The version string a bzImage carries in its setup (`kernel_version`, protocol 2.00+).
fn kernel_version(setup: &[u8]) -> String {
    let Some(pointer) = setup.get(0x20e..0x210) else {
        return String::new();
    };
    let at = usize::from(u16::from_le_bytes([pointer[0], pointer[1]])) + 0x200;
    let text = setup.get(at..).unwrap_or_default();
    let end = text.iter().position(|&b| b == 0).unwrap_or(0).min(128);
    String::from_utf8_lossy(&text[..end]).into_owned()
}

impl Device {
    pub fn new(paths: Paths) -> Device {
        let booted = Booted::read(&paths);
        Device { paths, booted }
    }

    pub fn booted(&self) -> Result<&Booted, Fault> {
        self.booted.as_ref().map_err(Clone::clone)
    }

    fn disk_path(&self) -> Result<&PathBuf, Fault> {
        self.booted()?
            .disk
            .as_ref()
            .ok_or_else(|| fault(Kind::Unavailable, "init did not report the boot disk"))
    }

    /// The disk; for writing only if its partition table is the layout every offset here
    /// comes from (a disk laid out otherwise is never written).
    fn open_disk(&self, write: bool) -> Result<File, Fault> {
        let path = self.disk_path()?;
        let disk = OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| {
                fault(
                    Kind::Failed,
                    format!("cannot open {} ({e})", path.display()),
                )
            })?;
        if write {
            let mut mbr = [0u8; layout::SECTOR_BYTES as usize];
            disk.read_exact_at(&mut mbr, 0)?;
            if let Err(m) = layout::check_table(&mbr) {
                return Err(fault(
                    Kind::Failed,
                    format!(
                        "{}'s partition table puts partition {} at sector {} ({} sectors), not \
                         where rustkrazy's layout has it: nothing is written to this disk",
                        path.display(),
                        m.number,
                        m.start_lba,
                        m.sectors
                    ),
                ));
            }
        }
        Ok(disk)
    }

    /// Both copies of the boot record as they are on the disk now.
    pub fn record_copies(&self) -> Result<Copies, Fault> {
        let disk = self.open_disk(false)?;
        let mut sectors = [[0u8; SECTOR]; 2];
        for (sector, at) in sectors.iter_mut().zip(COPY_OFFSETS) {
            disk.read_exact_at(sector, at)?;
        }
        Ok(Copies::read([&sectors[0], &sectors[1]]))
    }

    /// The newest valid copy of the record; with none (damaged since init repaired it at
    /// boot), the record init would write: the running slot committed. The next write
    /// repairs a copy; `/status` reports the damage.
    pub fn read_record(&self) -> Result<Record, Fault> {
        self.record_of(&self.record_copies()?)
    }

    /// The record `copies` hold, as [`Device::read_record`] takes it.
    pub fn record_of(&self, copies: &Copies) -> Result<Record, Fault> {
        match copies.record() {
            Some(record) => Ok(record),
            None => Ok(Record {
                committed: self.booted()?.slot,
                trial: self.booted()?.slot.other(),
                ..Record::INITIAL.rewriting_trial_slot()
            }),
        }
    }

    /// Writes `record` over the copy that is not the newest valid one: a write torn by a
    /// power cut leaves the newest as it was.
    fn write_record(&self, record: &Record) -> Result<(), Fault> {
        let (copy, sector) = self.record_copies()?.next_write(record);
        let disk = self.open_disk(true)?;
        disk.write_all_at(&sector, COPY_OFFSETS[copy])?;
        disk.sync_data()?;
        Ok(())
    }

    /// The trust file's text; `None`: this root has none and accepts unsealed slots.
    pub fn trust(&self) -> Result<Option<String>, Fault> {
        match std::fs::read_to_string(&self.paths.trust) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fault(
                Kind::Failed,
                format!(
                    "cannot read {} ({e}): no slot is armed",
                    self.paths.trust.display()
                ),
            )),
        }
    }

    /// The slot the record commits, with its seal if it is sealed.
    pub fn committed_seal(&self) -> Result<Option<(SlotId, Seal)>, Fault> {
        let committed = self.read_record()?.committed;
        Ok(self
            .slot_id(committed)?
            .and_then(|(id, seal)| Some((id, seal?))))
    }

    /// The slot not running now, the one updates go to.
    pub fn inactive_slot(&self) -> Result<Slot, Fault> {
        Ok(self.booted()?.slot.other())
    }

    /// What a complete slot holds, from its trailer, and the slot's seal if it is sealed;
    /// `None`: incomplete.
    pub fn slot_id(&self, slot: Slot) -> Result<Option<(SlotId, Option<Seal>)>, Fault> {
        let disk = self.open_disk(false)?;
        let at = trailer_at(slot);
        let mut sector = [0u8; SECTOR];
        disk.read_exact_at(&mut sector, at)?;
        Ok(boot::rootid::decode(&sector).map(|id| (id, boot::rootid::seal(&sector))))
    }

    /// The root this system runs, read-only: the disk, where the root starts, and its
    /// length by its trailer. A chunked update copies from it; it never changes while
    /// it runs.
    pub fn running_root(&self) -> Result<(File, u64, u64), Fault> {
        let slot = self.booted()?.slot;
        let (id, _) = self.slot_id(slot)?.ok_or_else(|| {
            fault(
                Kind::Conflict,
                format!("the running root slot {} has no trailer, so its length is unknown: send the whole root (POST /update/root)", slot.number()),
            )
        })?;
        let room = boot::rootid::image_bytes_max(&slot.partition()).unwrap_or(0);
        if id.root.bytes > room {
            return Err(fault(
                Kind::Conflict,
                format!("the running root slot {}'s trailer says its root has {} bytes, more than the {room} it can hold: send the whole root (POST /update/root)", slot.number(), id.root.bytes),
            ));
        }
        Ok((
            self.open_disk(false)?,
            slot.partition().start_bytes,
            id.root.bytes,
        ))
    }

    /// The kernel this system runs, read-only, as [`Device::running_root`] gives the root.
    pub fn running_kernel(&self) -> Result<(File, u64, u64), Fault> {
        let slot = self.booted()?.slot;
        let bytes = self.slot_files(slot, false)?.kernel.map_or(0, |k| k.bytes);
        let lba = self.boot_table()?.kernel_lba[slot.index()];
        Ok((
            self.open_disk(false)?,
            u64::from(lba) * layout::SECTOR_BYTES,
            bytes,
        ))
    }

    /// Where each slot's kernel and command line lie: the MBR code's table, which mkimg
    /// wrote once.
    pub fn boot_table(&self) -> Result<Table, Fault> {
        let mut mbr = [0u8; SECTOR];
        self.open_disk(false)?.read_exact_at(&mut mbr, 0)?;
        let boot_end = layout::BOOT.start_bytes + layout::BOOT.size_bytes.unwrap_or(0);
        let inside = |lba: u32, len: u64| {
            let at = u64::from(lba) * layout::SECTOR_BYTES;
            at >= layout::BOOT.start_bytes && at + len <= boot_end
        };
        Table::read(&mbr)
            .filter(|t| {
                (0..2).all(|i| {
                    inside(t.kernel_lba[i], boot::slot::KERNEL_REGION_BYTES)
                        && inside(t.cmdline_lba[i], boot::slot::CMDLINE_REGION_BYTES)
                })
            })
            .ok_or_else(|| {
                fault(Kind::Unavailable,
                    "the MBR holds no table of slot files inside /boot: this disk was not made by a current imgtool mkimg (reflash it)",
                )
            })
    }

    /// Slot `slot`'s kernel and command line as they are on the disk now: the kernel as long
    /// as its header says (`None` if the region holds no kernel), the command line up to
    /// its NUL. With `hash`, the kernel is read whole and hashed (else its hash is zero).
    pub fn slot_files(&self, slot: Slot, hash: bool) -> Result<SlotFiles, Fault> {
        let table = self.boot_table()?;
        let i = slot.index();
        let disk = self.open_disk(false)?;
        let kernel_at = u64::from(table.kernel_lba[i]) * layout::SECTOR_BYTES;
        let mut setup = vec![0u8; KERNEL_SETUP_BYTES];
        disk.read_exact_at(&mut setup, kernel_at)?;
        let kernel = match boot::slot::kernel_bytes(&setup) {
            Some(len) if len <= boot::slot::KERNEL_REGION_BYTES && !hash => Some(Part {
                bytes: len,
                sha256: [0; 32],
            }),
            Some(len) if len <= boot::slot::KERNEL_REGION_BYTES => {
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; STREAM_BUFFER_BYTES];
                let mut at = 0;
                while at < len {
                    let n = (len - at).min(buf.len() as u64) as usize;
                    disk.read_exact_at(&mut buf[..n], kernel_at + at)?;
                    hasher.update(&buf[..n]);
                    at += n as u64;
                }
                Some(Part {
                    bytes: len,
                    sha256: hasher.finalize().into(),
                })
            }
            _ => None,
        };
        let mut sector = [0u8; SECTOR];
        disk.read_exact_at(
            &mut sector,
            u64::from(table.cmdline_lba[i]) * layout::SECTOR_BYTES,
        )?;
        let text = boot::slot::cmdline_text(&sector);
        Ok(SlotFiles {
            kernel,
            kernel_version: kernel_version(&setup),
            cmdline: Part {
                bytes: text.len() as u64,
                sha256: Sha256::digest(text).into(),
            },
            cmdline_text: String::from_utf8_lossy(text).into_owned(),
        })
    }

    /// Zeroes the inactive slot's trailer (and disarms a trial of it) before any part of it
    /// is written: from here on it is incomplete and nothing boots it. Refused during an
    /// uncommitted trial, and when the inactive slot is the next boot's committed one.
    fn open_inactive_slot(&self) -> Result<(File, Slot), Fault> {
        let status = self.booted()?;
        let record = self.read_record()?;
        if record.is_trial_boot(status.slot) {
            return Err(fault(Kind::Conflict, "this boot is an uncommitted trial: commit it (POST /commit) or reboot before updating again"));
        }
        let slot = self.inactive_slot()?;
        if record.state != State::Try && record.committed == slot {
            return Err(fault(Kind::Conflict, format!(
                "root slot {} is the one the next boot starts (switched with mode=now); reboot into it first",
                slot.number())));
        }
        // Disarmed, and no fall-back to it, before its trailer goes: the boot code never
        // takes a slot being written, nor one uploaded but not armed.
        if record.trial == slot && (record.state == State::Try || record.fallback_ok) {
            let state = match record.state {
                State::Try => State::Committed,
                other => other,
            };
            self.write_record(&Record {
                state,
                ..record.rewriting_trial_slot()
            })?;
        }
        let disk = self.open_disk(true)?;
        disk.write_all_at(&[0u8; SECTOR], trailer_at(slot))?;
        disk.sync_data()?;
        Ok((disk, slot))
    }

    /// Prepares an upload of the inactive slot's kernel into its region.
    pub fn begin_kernel_update(
        &self,
        expected: Option<[u8; 32]>,
        guard: UpdateGuard,
    ) -> Result<RegionUpload, Fault> {
        let limit = boot::slot::KERNEL_REGION_BYTES;
        let table = self.boot_table()?;
        let (disk, slot) = self.open_inactive_slot()?;
        let at = u64::from(table.kernel_lba[slot.index()]) * layout::SECTOR_BYTES;
        let completion = Completion::Kernel { slot, expected };
        Ok(RegionUpload::new(disk, at, limit, completion, guard))
    }

    /// Writes the inactive slot's command line (NUL-padded to its sector), read back.
    pub fn update_cmdline(&self, text: &[u8]) -> Result<(Slot, Part), Fault> {
        if text.len() > boot::slot::CMDLINE_BYTES_MAX
            || text
                .iter()
                .any(|&b| !(b.is_ascii_graphic() || b == b' ' || b == b'\n'))
        {
            return Err(fault(
                Kind::Invalid,
                format!(
                    "a command line is at most {} bytes of printable ASCII, spaces and newlines",
                    boot::slot::CMDLINE_BYTES_MAX
                ),
            ));
        }
        let table = self.boot_table()?;
        let (disk, slot) = self.open_inactive_slot()?;
        let at = u64::from(table.cmdline_lba[slot.index()]) * layout::SECTOR_BYTES;
        let mut sector = [0u8; SECTOR];
        sector[..text.len()].copy_from_slice(text);
        disk.write_all_at(&sector, at)?;
        disk.sync_data()?;
        let mut back = [0u8; SECTOR];
        disk.read_exact_at(&mut back, at)?;
        if back != sector {
            return Err(fault(
                Kind::Failed,
                "the command line read back differs from what was written",
            ));
        }
        Ok((
            slot,
            Part {
                bytes: text.len() as u64,
                sha256: Sha256::digest(text).into(),
            },
        ))
    }

    /// Prepares an upload into the inactive root slot (see `upload::RegionUpload`): its
    /// trailer is zeroed first and written back, covering root, kernel and command line as
    /// they are on the disk, only after the read-back matches (and `expected`, when given).
    pub fn begin_root_update(
        &self,
        expected: Option<[u8; 32]>,
        guard: UpdateGuard,
    ) -> Result<RegionUpload, Fault> {
        let limit = boot::rootid::image_bytes_max(&layout::ROOT_A).unwrap_or(0);
        let slot = self.inactive_slot()?;
        let files = self.slot_files(slot, true)?;
        let kernel = files.kernel.ok_or_else(|| {
            fault(
                Kind::Conflict,
                format!(
                    "slot {} holds no kernel: upload one first (POST /update/kernel)",
                    slot.number()
                ),
            )
        })?;
        let (disk, slot) = self.open_inactive_slot()?;
        let completion = Completion::Root {
            slot,
            trailer_at: trailer_at(slot),
            expected,
            kernel,
            cmdline: files.cmdline,
        };
        Ok(RegionUpload::new(
            disk,
            slot.partition().start_bytes,
            limit,
            completion,
            guard,
        ))
    }

    /// Prepares an upload over the boot partition's shared files (read back and hashed like
    /// a root); the slot files inside it are kept (the image must hold zeros there).
    pub fn begin_boot_update(&self, guard: UpdateGuard) -> Result<RegionUpload, Fault> {
        let limit = layout::BOOT.size_bytes.unwrap_or(0);
        // Both slots' kernels and command lines stay as they are: they change per slot,
        // tried and committed like roots, never with the shared files.
        let table = self.boot_table()?;
        let base = layout::BOOT.start_bytes;
        let mut keep = Vec::new();
        let inside = |lba: u32| {
            (u64::from(lba) * layout::SECTOR_BYTES)
                .checked_sub(base)
                .ok_or_else(|| fault(Kind::Failed, "the MBR's boot table points outside /boot"))
        };
        for i in 0..2 {
            let (kernel, cmdline) = (inside(table.kernel_lba[i])?, inside(table.cmdline_lba[i])?);
            keep.push(kernel..kernel + boot::slot::KERNEL_REGION_BYTES);
            keep.push(cmdline..cmdline + boot::slot::CMDLINE_REGION_BYTES);
        }
        let committed = self.read_record()?.committed;
        let disk = self.open_disk(true)?;
        Ok(
            RegionUpload::new(disk, base, limit, Completion::Boot { committed }, guard)
                .keeping(keep),
        )
    }

    /// Replaces the boot code: the second stage goes to the place in the gap the running
    /// one does not use (`boot::mbr::STAGE2_LBAS`), then one write of the MBR's first stage
    /// (bytes 0..420) names it, keeping the table of slot files (their places never
    /// change), the disk signature, the partition table and the boot record. A power cut
    /// leaves the old pair or the new one. Answers the SHA-256 of what the sender chose of
    /// both stages (`boot::mbr::chosen_parts`) as they are now on the disk.
    pub fn update_mbr(&self, code: &[u8]) -> Result<[u8; 32], Fault> {
        let (first, second) = code.split_at(CODE_BYTES.min(code.len()));
        if first.len() != CODE_BYTES || second.len() != STAGE2.len() {
            return Err(fault(Kind::Invalid, format!(
                "send the boot code's two stages together: its {CODE_BYTES}-byte first stage, then its {}-byte second stage (boot/mbr/mbr.bin, then stage2.bin); got {} bytes",
                STAGE2.len(), code.len())));
        }
        let disk = self.open_disk(true)?;
        let mut now = [0u8; CODE_BYTES];
        disk.read_exact_at(&mut now, 0)?;
        let given = Table::read(first);
        if given.is_some() && given != Table::read(&now) {
            return Err(fault(Kind::Conflict, "the boot code's table names other places for the slot files than this disk's; send code with an empty table or this disk's"));
        }
        let [a, b] = STAGE2_LBAS;
        let place = if boot::mbr::stage2_lba(&now) == Some(a) {
            b
        } else {
            a
        };
        let mut want = boot::mbr::with_stage2_at(&now, place);
        want[..STAGE2_FIELD_OFFSET].copy_from_slice(&first[..STAGE2_FIELD_OFFSET]);
        let stage2_at = u64::from(place) * layout::SECTOR_BYTES;
        disk.write_all_at(second, stage2_at)?;
        disk.sync_data()?;
        disk.write_all_at(&want, 0)?;
        disk.sync_data()?;
        let mut back = vec![0u8; code.len()];
        disk.read_exact_at(&mut back[..CODE_BYTES], 0)?;
        disk.read_exact_at(&mut back[CODE_BYTES..], stage2_at)?;
        if back[..CODE_BYTES] != want || back[CODE_BYTES..] != *second {
            return Err(fault(
                Kind::Failed,
                "the boot code read back differs from what was written",
            ));
        }
        let mut hash = Sha256::new();
        for part in boot::mbr::chosen_parts(&back) {
            hash.update(part);
        }
        Ok(hash.finalize().into())
    }

    /// Arms a one-shot trial of the inactive slot (`now`: makes it the committed one at
    /// once) if `seal` accepts what its trailer holds; a seal it returns is written into the
    /// trailer first.
    pub fn switch(
        &self,
        now: bool,
        seal: impl FnOnce(&SlotId) -> Result<Option<Seal>, Fault>,
    ) -> Result<Record, Fault> {
        let status = self.booted()?;
        let record = self.read_record()?;
        if record.is_trial_boot(status.slot) {
            return Err(fault(
                Kind::Conflict,
                "this boot is an uncommitted trial: commit it or reboot first",
            ));
        }
        let slot = self.inactive_slot()?;
        let Some((id, _)) = self.slot_id(slot)? else {
            return Err(fault(Kind::Conflict, format!(
                "root slot {} holds no verified root image (upload one with POST /update/root first)",
                slot.number())));
        };
        if let Some(seal) = seal(&id)? {
            // The seal goes into the trailer before the slot is armed: what boots is sealed.
            let disk = self.open_disk(true)?;
            let at = trailer_at(slot);
            disk.write_all_at(&boot::rootid::encode(&id, Some(&seal)), at)?;
            disk.sync_data()?;
        }
        let next = if now {
            Record {
                committed: slot,
                trial: status.slot,
                ..Record::INITIAL
            }
        } else {
            Record {
                committed: status.slot,
                trial: slot,
                ..Record::INITIAL
            }
            .arm()
        };
        self.write_record(&next)?;
        Ok(next)
    }

    /// Whether this boot is a trial nobody has committed yet.
    pub fn in_trial(&self) -> Result<bool, Fault> {
        Ok(self.read_record()?.is_trial_boot(self.booted()?.slot))
    }

    /// Makes the trial root this system booted from the committed one.
    pub fn commit(&self) -> Result<Record, Fault> {
        let status = self.booted()?;
        let record = self.read_record()?;
        if record.is_trial_boot(status.slot) {
            let next = record.commit();
            self.write_record(&next)?;
            crate::pi_settings::point(&self.open_disk(true)?, next.committed)?;
            return Ok(next);
        }
        if record.state != State::Try && record.committed == status.slot {
            return Ok(record); // already committed: nothing to do
        }
        Err(fault(
            Kind::Conflict,
            format!(
                "this system (root slot {}) is not an uncommitted trial; nothing to commit",
                status.slot.number()
            ),
        ))
    }

    /// The keys the UEFI boot program holds now (`crate::boot_program`); `None` when this
    /// system was not booted through it (BIOS, a Pi), where it guards nothing.
    pub fn boot_program_keys(&self) -> Result<Option<boot::uefi_keys::Keys>, Fault> {
        if !self.paths.efi.exists() {
            return Ok(None);
        }
        crate::boot_program::held(&self.open_disk(false)?)
    }

    /// On a committed boot, makes the UEFI boot program hold the keys this root trusts
    /// (none without a trust file); returns them when it had to write.
    pub fn sync_boot_program_keys(&self) -> Result<Option<boot::uefi_keys::Keys>, Fault> {
        let slot = self.booted()?.slot;
        let record = self.read_record()?;
        if record.committed != slot || record.is_trial_boot(slot) {
            return Ok(None);
        }
        // No trust file: this root arms unsealed slots, and the program checks none. A
        // trust file that trusts nothing usable leaves the program's keys as they are.
        let trusted = match self.trust()? {
            None => Vec::new(),
            Some(text) => admin_api::seal::trusted_keys(&text)
                .filter(|keys| !keys.is_empty())
                .ok_or_else(|| {
                    fault(
                        Kind::Failed,
                        format!(
                            "{} has a line that is not an entry, or trusts no key; the UEFI boot program keeps its keys",
                            boot::seal::TRUST_PATH
                        ),
                    )
                })?,
        };
        let keys = boot::uefi_keys::Keys::new(&trusted).ok_or_else(|| {
            fault(
                Kind::Failed,
                format!(
                    "{} trusts {} keys; the UEFI boot program holds at most {} and keeps its own",
                    boot::seal::TRUST_PATH,
                    trusted.len(),
                    boot::uefi_keys::KEYS_MAX
                ),
            )
        })?;
        Ok(crate::boot_program::hold(&self.open_disk(true)?, &keys)?.then_some(keys))
    }

    /// On a Raspberry Pi, config.txt must name the record's committed slot; a commit cut
    /// short between its two writes leaves it naming the old one. Points it (and tryboot.txt)
    /// right; returns the slot when it had to.
    pub fn repair_pi_settings(&self) -> Result<Option<Slot>, Fault> {
        let committed = self.read_record()?.committed;
        let disk = self.open_disk(false)?;
        let Some(config) = crate::pi_settings::find_boot_file(&disk, boot::rpi::CONFIG_TXT)? else {
            return Ok(None);
        };
        let mut sector = [0u8; SECTOR];
        disk.read_exact_at(
            &mut sector,
            layout::BOOT.start_bytes + config.first_sector * layout::SECTOR_BYTES,
        )?;
        if boot::rpi::slot_of(&sector) == Some(committed) {
            return Ok(None);
        }
        crate::pi_settings::point(&self.open_disk(true)?, committed)?;
        Ok(Some(committed))
    }

    /// Asks init to reboot (SIGUSR1) or power off (SIGUSR2).
    pub fn signal_init(&self, power_off: bool) -> Result<(), Fault> {
        let pid = rustix::process::Pid::from_raw(self.paths.init_pid)
            .ok_or_else(|| fault(Kind::Failed, "no init PID configured"))?;
        let signal = if power_off {
            rustix::process::Signal::USR2
        } else {
            rustix::process::Signal::USR1
        };
        rustix::process::kill_process(pid, signal)
            .map_err(|e| fault(Kind::Failed, format!("cannot signal init ({e})")))
    }
}
