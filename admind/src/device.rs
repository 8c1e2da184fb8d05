//! What admind manages on the device: the disk (boot record, root slots and their
//! trailers, the boot partition, the MBR code), the boot status init wrote, /data, the logs
//! and the processes. Every path is configurable so the host tests can use plain files.

use crate::upload::{Completion, RegionUpload, UpdateGuard};
use boot::layout::{self, Partition};
use boot::record::{Record, State};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io;
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
    /// link's clock synchronisation status (`boot::clock`).
    pub clock: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
    pub proc: PathBuf,
    /// Who gets SIGUSR1 (reboot) and SIGUSR2 (power off): init, PID 1.
    pub init_pid: i32,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            disk: None,
            boot_status: "/run/rustkrazy/boot-status".into(),
            services: "/run/rustkrazy/services".into(),
            clock: boot::clock::STATUS_PATH.into(),
            data: "/data".into(),
            logs: "/tmp".into(),
            proc: "/proc".into(),
            init_pid: 1,
        }
    }
}

/// init's boot status line, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootStatus {
    /// committed, trial or rolled-back.
    pub state: String,
    /// The slot this system booted from.
    pub slot: u8,
    /// rolled-back: the slot that was given up.
    pub from: Option<u8>,
    pub disk: Option<PathBuf>,
}

pub fn parse_boot_status(text: &str) -> Option<BootStatus> {
    let mut words = text.split_whitespace();
    let mut status = BootStatus {
        state: words.next()?.to_string(),
        ..BootStatus::default()
    };
    for word in words {
        match word.split_once('=')? {
            ("slot", v) => status.slot = v.parse().ok()?,
            ("from", v) => status.from = Some(v.parse().ok()?),
            ("disk", v) => status.disk = Some(v.into()),
            _ => {}
        }
    }
    layout::root_slot(status.slot).map(|_| status)
}

/// A root slot's trailer: what image it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootId {
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// Refusals with their HTTP status.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

pub fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        refuse(500, format!("I/O error: {e}"))
    }
}

pub struct Device {
    pub paths: Paths,
}

/// Bytes moved per read/write while streaming (the only buffer an update needs).
pub const STREAM_BUFFER_BYTES: usize = 256 * 1024;

impl Device {
    pub fn boot_status(&self) -> Result<BootStatus, Refusal> {
        let text = std::fs::read_to_string(&self.paths.boot_status).map_err(|e| {
            refuse(
                503,
                format!(
                    "cannot read {} ({e}): init has not reported how it booted",
                    self.paths.boot_status.display()
                ),
            )
        })?;
        parse_boot_status(&text).ok_or_else(|| {
            refuse(
                503,
                format!("{} is malformed", self.paths.boot_status.display()),
            )
        })
    }

    fn disk_path(&self) -> Result<PathBuf, Refusal> {
        if let Some(d) = &self.paths.disk {
            return Ok(d.clone());
        }
        self.boot_status()?
            .disk
            .ok_or_else(|| refuse(503, "init did not report the boot disk"))
    }

    fn open_disk(&self, write: bool) -> Result<File, Refusal> {
        let path = self.disk_path()?;
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(&path)
            .map_err(|e| refuse(500, format!("cannot open {} ({e})", path.display())))
    }

    pub fn read_record(&self) -> Result<Record, Refusal> {
        let disk = self.open_disk(false)?;
        let mut sector = [0u8; 512];
        disk.read_exact_at(&mut sector, boot::record::RECORD_OFFSET)?;
        Record::decode(&sector)
            .map_err(|e| refuse(500, format!("the boot record is invalid ({e:?})")))
    }

    fn write_record(&self, record: &Record) -> Result<(), Refusal> {
        let disk = self.open_disk(true)?;
        disk.write_all_at(&record.encode(), boot::record::RECORD_OFFSET)?;
        disk.sync_data()?;
        Ok(())
    }

    /// The slot not running now, the one updates go to.
    pub fn inactive_slot(&self) -> Result<Partition, Refusal> {
        let active = self.boot_status()?.slot;
        layout::root_slot(boot::record::other_slot(active))
            .ok_or_else(|| refuse(500, "no inactive root slot"))
    }

    pub fn root_id(&self, slot: &Partition) -> Result<Option<RootId>, Refusal> {
        let disk = self.open_disk(false)?;
        let at = slot.start_bytes + boot::rootid::offset_in(slot).unwrap_or(0);
        let mut sector = [0u8; 512];
        disk.read_exact_at(&mut sector, at)?;
        Ok(boot::rootid::decode(&sector).map(|(bytes, sha256)| RootId { bytes, sha256 }))
    }

    /// Prepares an upload into the inactive root slot (see `upload::RegionUpload`). Before
    /// the first byte: the slot's trailer is zeroed and a trial of it disarmed, so nothing
    /// boots a half-written root. The trailer is written back only after the read-back
    /// matches (and `expected`, when given).
    pub fn begin_root_update(
        &self,
        declared: Option<u64>,
        expected: Option<[u8; 32]>,
        guard: UpdateGuard,
    ) -> Result<RegionUpload, Refusal> {
        let status = self.boot_status()?;
        let record = self.read_record()?;
        if record.is_trial_boot(status.slot) {
            return Err(refuse(409, "this boot is an uncommitted trial: commit it (POST /commit) or reboot before updating again"));
        }
        let slot = self.inactive_slot()?;
        if record.state != State::Try && record.committed == slot.number {
            return Err(refuse(409, format!(
                "root slot {} is the one the next boot starts (switched with mode=now); reboot into it first",
                slot.number)));
        }
        let limit = boot::rootid::image_bytes_max(&slot).unwrap_or(0);
        if declared.is_some_and(|n| n > limit) {
            return Err(refuse(
                413,
                format!("a root image holds at most {limit} bytes"),
            ));
        }
        // Unarm first: from here on the slot holds no valid root.
        let disk = self.open_disk(true)?;
        let trailer_at = slot.start_bytes + boot::rootid::offset_in(&slot).unwrap_or(0);
        disk.write_all_at(&[0u8; 512], trailer_at)?;
        if record.state == State::Try && record.trial == slot.number {
            self.write_record(&Record {
                state: State::Committed,
                ..record
            })?;
        }
        disk.sync_data()?;
        let completion = Completion::Root {
            slot: slot.number,
            trailer_at,
            expected,
        };
        Ok(RegionUpload::new(
            disk,
            slot.start_bytes,
            limit,
            completion,
            guard,
        ))
    }

    /// Prepares an upload over the boot partition (read back and hashed like a root).
    pub fn begin_boot_update(
        &self,
        declared: Option<u64>,
        guard: UpdateGuard,
    ) -> Result<RegionUpload, Refusal> {
        let limit = layout::BOOT.size_bytes.unwrap_or(0);
        if declared.is_some_and(|n| n > limit) {
            return Err(refuse(
                413,
                format!("a boot partition image holds at most {limit} bytes"),
            ));
        }
        let disk = self.open_disk(true)?;
        Ok(RegionUpload::new(
            disk,
            layout::BOOT.start_bytes,
            limit,
            Completion::Boot,
            guard,
        ))
    }

    /// Replaces the MBR's boot code (bytes 0..440, which include our kernel table), keeping
    /// the disk signature, the partition table and the boot record.
    pub fn update_mbr(&self, code: &[u8]) -> Result<[u8; 32], Refusal> {
        if code.len() != 440 && code.len() != 512 {
            return Err(refuse(400, "send the 440 bytes of boot code (or a whole 512-byte MBR, of which the first 440 are used)"));
        }
        let disk = self.open_disk(true)?;
        disk.write_all_at(&code[..440], 0)?;
        disk.sync_data()?;
        let mut back = [0u8; 440];
        disk.read_exact_at(&mut back, 0)?;
        if back[..] != code[..440] {
            return Err(refuse(
                500,
                "the boot code read back differs from what was written",
            ));
        }
        Ok(Sha256::digest(back).into())
    }

    /// Arms a one-shot trial of the inactive root (`now`: make it the committed root at once).
    pub fn switch(&self, now: bool) -> Result<Record, Refusal> {
        let status = self.boot_status()?;
        let record = self.read_record()?;
        if record.is_trial_boot(status.slot) {
            return Err(refuse(
                409,
                "this boot is an uncommitted trial: commit it or reboot first",
            ));
        }
        let slot = self.inactive_slot()?;
        if self.root_id(&slot)?.is_none() {
            return Err(refuse(409, format!(
                "root slot {} holds no verified root image (upload one with POST /update/root first)",
                slot.number)));
        }
        let next = if now {
            Record {
                state: State::Committed,
                committed: slot.number,
                trial: status.slot,
            }
        } else {
            Record {
                state: State::Committed,
                committed: status.slot,
                trial: slot.number,
            }
            .arm()
        };
        self.write_record(&next)?;
        Ok(next)
    }

    /// Makes the trial root this system booted from the committed one.
    pub fn commit(&self) -> Result<Record, Refusal> {
        let status = self.boot_status()?;
        let record = self.read_record()?;
        if record.is_trial_boot(status.slot) {
            let next = record.commit();
            self.write_record(&next)?;
            return Ok(next);
        }
        if record.state != State::Try && record.committed == status.slot {
            return Ok(record); // already committed: nothing to do
        }
        Err(refuse(
            409,
            format!(
                "this system (root slot {}) is not an uncommitted trial; nothing to commit",
                status.slot
            ),
        ))
    }

    /// Asks init to reboot (SIGUSR1) or power off (SIGUSR2).
    pub fn signal_init(&self, power_off: bool) -> Result<(), Refusal> {
        let pid = rustix::process::Pid::from_raw(self.paths.init_pid)
            .ok_or_else(|| refuse(500, "no init PID configured"))?;
        let signal = if power_off {
            rustix::process::Signal::USR2
        } else {
            rustix::process::Signal::USR1
        };
        rustix::process::kill_process(pid, signal)
            .map_err(|e| refuse(500, format!("cannot signal init ({e})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_status_lines() {
        let s = parse_boot_status("committed slot=2 disk=/dev/vda\n").unwrap();
        assert_eq!(
            (s.state.as_str(), s.slot, s.disk),
            ("committed", 2, Some("/dev/vda".into()))
        );
        let s = parse_boot_status("rolled-back slot=2 from=3").unwrap();
        assert_eq!(s.from, Some(3));
        assert!(parse_boot_status("trial slot=3 timeout_s=300").is_some());
        assert!(parse_boot_status("committed slot=4").is_none());
        assert!(parse_boot_status("").is_none());
        assert!(parse_boot_status("committed slot").is_none());
    }
}
