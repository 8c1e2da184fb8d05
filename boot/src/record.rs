//! The trial-boot record: one sector at [`RECORD_LBA`], in the gap before partition 1, that
//! tells the boot code (the x86 MBR code, the UEFI program) which root to boot. Every change
//! is one sector write.
//!
//! ```text
//! offset size  field
//! 0      3     magic "RKB"
//! 3      1     version (1)
//! 4      1     reserved (0)
//! 5      1     state: 0 committed, 1 try, 2 tried
//! 6      1     committed slot (its partition number, 2 or 3)
//! 7      1     trial slot (partition number 2 or 3)
//! 8      1     checksum: bytes 0..16 sum to 0 mod 256
//! 9      503   zero
//! ```
//!
//! Life of an update: the device writes the new root into the other slot, then [`arm`]s it
//! (state TRY). On the next boot the MBR code flips TRY to TRIED and boots the trial slot
//! once. If userspace is happy it [`commit`]s (the trial slot becomes the committed one);
//! if it reboots without committing, the MBR code sees TRIED and boots the committed slot.
//!
//! [`arm`]: Record::arm
//! [`commit`]: Record::commit

use crate::layout::Slot;

/// Sector holding the record.
pub const RECORD_LBA: u64 = 1;
/// Byte offset of the record on the disk.
pub const RECORD_OFFSET: u64 = RECORD_LBA * 512;

const MAGIC: [u8; 3] = *b"RKB";
const VERSION: u8 = 1;
const CHECKSUMMED_BYTES: usize = 16;

/// What the next boot will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Boot the committed slot.
    Committed = 0,
    /// Boot the trial slot once (the MBR code then records `Tried`).
    Try = 1,
    /// The trial slot was started; boot the committed one unless userspace commits.
    Tried = 2,
}

/// A decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub state: State,
    pub committed: Slot,
    pub trial: Slot,
}

/// Why a sector is not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    BadMagic,
    UnknownVersion(u8),
    BadChecksum,
    BadState(u8),
    BadSlot(u8),
}

fn valid_slot(number: u8) -> Result<Slot, RecordError> {
    Slot::of_partition(number).ok_or(RecordError::BadSlot(number))
}

impl Record {
    /// A fresh disk: root A committed, nothing on trial.
    pub const INITIAL: Record = Record {
        state: State::Committed,
        committed: Slot::A,
        trial: Slot::B,
    };

    /// Decodes a record sector.
    pub fn decode(sector: &[u8; 512]) -> Result<Record, RecordError> {
        if sector[..3] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if sector[3] != VERSION {
            return Err(RecordError::UnknownVersion(sector[3]));
        }
        let sum = sector[..CHECKSUMMED_BYTES]
            .iter()
            .fold(0u8, |a, &b| a.wrapping_add(b));
        if sum != 0 {
            return Err(RecordError::BadChecksum);
        }
        let state = match sector[5] {
            0 => State::Committed,
            1 => State::Try,
            2 => State::Tried,
            other => return Err(RecordError::BadState(other)),
        };
        Ok(Record {
            state,
            committed: valid_slot(sector[6])?,
            trial: valid_slot(sector[7])?,
        })
    }

    /// Encodes the record as a full sector.
    pub fn encode(&self) -> [u8; 512] {
        let mut sector = [0u8; 512];
        sector[..3].copy_from_slice(&MAGIC);
        sector[3] = VERSION;
        sector[5] = self.state as u8;
        sector[6] = self.committed.number();
        sector[7] = self.trial.number();
        let sum = sector[..CHECKSUMMED_BYTES]
            .iter()
            .fold(0u8, |a, &b| a.wrapping_add(b));
        sector[8] = 0u8.wrapping_sub(sum);
        sector
    }

    /// The slot the MBR code boots next (without the TRY -> TRIED step it performs).
    pub fn next_boot(&self) -> Slot {
        match self.state {
            State::Try => self.trial,
            State::Committed | State::Tried => self.committed,
        }
    }

    /// Arms a one-shot trial of the slot that is not committed.
    pub fn arm(&self) -> Record {
        Record {
            state: State::Try,
            committed: self.committed,
            trial: self.committed.other(),
        }
    }

    /// Makes the slot that was booted for trial the committed one.
    pub fn commit(&self) -> Record {
        match self.state {
            State::Tried | State::Try => Record {
                state: State::Committed,
                committed: self.trial,
                trial: self.committed,
            },
            State::Committed => *self,
        }
    }

    /// What the MBR code does on boot: TRY becomes TRIED.
    pub fn after_boot(&self) -> Record {
        match self.state {
            State::Try => Record {
                state: State::Tried,
                ..*self
            },
            _ => *self,
        }
    }

    /// Whether the running system, booted from `slot`, is an uncommitted trial.
    pub fn is_trial_boot(&self, slot: Slot) -> bool {
        self.state == State::Tried && slot == self.trial
    }
}

/// What a boot loader does with the record sector it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootChoice {
    /// The slot whose kernel, command line and root to boot.
    pub slot: Slot,
    /// The sector to write, and flush, before loading anything (TRY -> TRIED).
    pub write: Option<[u8; 512]>,
    /// Why the sector was not a valid record, when it was not: the loader says so and
    /// boots root A, as the MBR code does.
    pub damaged: Option<RecordError>,
}

/// The decision the MBR code makes, for loaders written in Rust (the UEFI program).
pub fn choose(sector: &[u8; 512]) -> BootChoice {
    match Record::decode(sector) {
        Ok(record) => BootChoice {
            slot: record.next_boot(),
            write: (record.state == State::Try).then(|| record.after_boot().encode()),
            damaged: None,
        },
        Err(e) => BootChoice {
            slot: Record::INITIAL.committed,
            write: None,
            damaged: Some(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sums_to_zero() {
        for record in [
            Record::INITIAL,
            Record::INITIAL.arm(),
            Record::INITIAL.arm().after_boot(),
        ] {
            let sector = record.encode();
            assert_eq!(sector[..16].iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
            assert_eq!(Record::decode(&sector), Ok(record));
        }
    }

    #[test]
    fn the_mbr_codes_flip_is_one_increment_and_one_decrement() {
        let armed = Record::INITIAL.arm().encode();
        let mut flipped = armed;
        flipped[5] += 1;
        flipped[8] = flipped[8].wrapping_sub(1);
        assert_eq!(flipped, Record::INITIAL.arm().after_boot().encode());
    }

    #[test]
    fn update_life_cycle() {
        let armed = Record::INITIAL.arm();
        assert_eq!(armed.next_boot(), Slot::B);
        let tried = armed.after_boot();
        assert!(tried.is_trial_boot(Slot::B));
        assert_eq!(
            tried.next_boot(),
            Slot::A,
            "an uncommitted trial falls back"
        );
        let committed = tried.commit();
        assert_eq!(
            (committed.state, committed.next_boot()),
            (State::Committed, Slot::B)
        );
        assert!(!committed.is_trial_boot(Slot::B));
        assert_eq!(committed.arm().trial, Slot::A);
    }

    #[test]
    fn a_loader_flips_try_once_and_boots_root_a_from_garbage() {
        let armed = choose(&Record::INITIAL.arm().encode());
        assert_eq!(armed.slot, Slot::B);
        let written = armed.write.expect("TRY is flipped");
        assert_eq!(
            Record::decode(&written),
            Ok(Record::INITIAL.arm().after_boot())
        );
        let tried = choose(&written);
        assert_eq!((tried.slot, tried.write), (Slot::A, None));
        let committed = choose(&Record::INITIAL.arm().after_boot().commit().encode());
        assert_eq!((committed.slot, committed.write), (Slot::B, None));
        let garbage = choose(&[0xa5; 512]);
        assert_eq!(
            (garbage.slot, garbage.write, garbage.damaged),
            (Slot::A, None, Some(RecordError::BadMagic))
        );
    }

    #[test]
    fn rejects_damaged_sectors() {
        let good = Record::INITIAL.encode();
        let mut s = good;
        s[0] = b'X';
        assert_eq!(Record::decode(&s), Err(RecordError::BadMagic));
        let mut s = good;
        s[3] = 2;
        assert_eq!(Record::decode(&s), Err(RecordError::UnknownVersion(2)));
        let mut s = good;
        s[6] = 3;
        assert_eq!(Record::decode(&s), Err(RecordError::BadChecksum));
        let mut s = Record::INITIAL.encode();
        s[6] = 4;
        s[8] = s[8].wrapping_sub(2);
        assert_eq!(Record::decode(&s), Err(RecordError::BadSlot(4)));
        assert_eq!(Record::decode(&[0; 512]), Err(RecordError::BadMagic));
    }
}
