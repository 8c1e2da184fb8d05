//! The trial-boot record: which slot the boot code (the x86 MBR code, the UEFI program)
//! boots, kept twice, in sectors [`COPY_LBAS`] of the gap before partition 1: each alone in
//! its 4 KiB (no read-modify-write of a 4 KiB sector or flash page touches the MBR or the
//! other copy), half a MiB apart so that no erase block up to 512 KiB holds both. Every writer reads both copies,
//! takes the newest valid one and writes its change over the *other* copy, one sector: a
//! write torn by a power cut leaves the copy it did not touch, one step older and valid.
//!
//! ```text
//! offset size  field
//! 0      3     magic "RKB"
//! 3      1     version (2)
//! 4      4     sequence, little-endian: of two valid copies the one further ahead
//!              (wrapping) is newest
//! 8      1     state: 0 committed, 1 try, 2 tried
//! 9      1     committed slot (its partition number, 2 or 3)
//! 10     1     trial slot (partition number 2 or 3)
//! 11     1     attempts: boots of the committed slot the loader started since init last
//!              ran (init sets it to 0)
//! 12     1     flags. Set by the loader, reported and cleared by init: bit 0, it fell
//!              back to the committed slot from the trial slot after MAX_ATTEMPTS failed
//!              boots; bits 1 and 2, it found copy 1 or 2 damaged (and wrote it). Bit 3,
//!              the trial slot holds a system that was committed and may be fallen back
//!              to: set by a commit, cleared by arming and before the slot is rewritten
//! 13     495   zero
//! 508    4     CRC-32 (IEEE, as zlib) of bytes 0..508, little-endian
//! ```
//!
//! Life of an update: the device writes the new root into the other slot, then [`arm`]s it
//! (state TRY). On the next boot the loader records TRIED and boots the trial slot once.
//! If userspace is happy it [`commit`]s (the trial slot becomes the committed one); if it
//! reboots without committing, the loader sees TRIED and boots the committed slot.
//!
//! A committed slot that stops booting (a damaged kernel, a root the kernel's verity check
//! refuses) is counted: the loader adds one to `attempts` before each boot of it, and init
//! sets it back to 0 once it runs. A loader that finds [`MAX_ATTEMPTS`] boots without init
//! boots the other slot instead, if the record says it held a committed system since (not
//! a failed trial, not an upload nobody armed) and its trailer says it is complete, and
//! commits it with the fell-back flag set; init reports that and clears the flag. The slot
//! given up on is never fallen back to, so two broken slots do not take turns.
//!
//! [`arm`]: Record::arm
//! [`commit`]: Record::commit

use crate::layout::Slot;

/// Sectors holding the two copies: a quarter and three quarters into the gap.
pub const COPY_LBAS: [u64; 2] = [512, 1536];
/// Byte offsets of the two copies on the disk.
pub const COPY_OFFSETS: [u64; 2] = [COPY_LBAS[0] * 512, COPY_LBAS[1] * 512];
/// Boots of the committed slot that never reached init before the loader falls back.
pub const MAX_ATTEMPTS: u8 = 3;

const MAGIC: [u8; 3] = *b"RKB";
const VERSION: u8 = 2;
const CRC_OFFSET: usize = 508;
const FLAG_FELL_BACK: u8 = 1;
const FLAG_FALLBACK_OK: u8 = 8;
/// Bits 1 and 2: copy 1 or 2 was damaged.
const FLAG_DAMAGED_SHIFT: u8 = 1;

/// What the next boot will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Boot the committed slot.
    Committed = 0,
    /// Boot the trial slot once (the loader then records `Tried`).
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
    /// Boots of the committed slot started since init last ran.
    pub attempts: u8,
    /// The loader gave up on the other slot and committed this one; init clears it.
    pub fell_back: bool,
    /// Copies the loader found damaged (and so wrote over); init clears it.
    pub repaired: [bool; 2],
    /// The trial slot held a committed system since it was last written: a loader may
    /// fall back to it.
    pub fallback_ok: bool,
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

/// CRC-32 as zlib computes it (reflected polynomial 0xedb88320, inverted in and out); bit
/// by bit, as the MBR code does it. `const` for the UEFI program's built-in key table
/// (`crate::uefi_keys`).
pub(crate) const fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < data.len() {
        crc ^= data[i] as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & 0u32.wrapping_sub(crc & 1));
            bit += 1;
        }
        i += 1;
    }
    !crc
}

impl Record {
    /// A fresh disk: root A committed, nothing on trial; slot B holds the same build, so
    /// the loader may fall back to it.
    pub const INITIAL: Record = Record {
        state: State::Committed,
        committed: Slot::A,
        trial: Slot::B,
        attempts: 0,
        fell_back: false,
        repaired: [false; 2],
        fallback_ok: true,
    };

    /// Decodes one copy: the record and its sequence number.
    pub fn decode(sector: &[u8; 512]) -> Result<(Record, u32), RecordError> {
        if sector[..3] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if sector[3] != VERSION {
            return Err(RecordError::UnknownVersion(sector[3]));
        }
        let stored = u32::from_le_bytes([sector[508], sector[509], sector[510], sector[511]]);
        if crc32(&sector[..CRC_OFFSET]) != stored {
            return Err(RecordError::BadChecksum);
        }
        let state = match sector[8] {
            0 => State::Committed,
            1 => State::Try,
            2 => State::Tried,
            other => return Err(RecordError::BadState(other)),
        };
        let record = Record {
            state,
            committed: valid_slot(sector[9])?,
            trial: valid_slot(sector[10])?,
            attempts: sector[11],
            fell_back: sector[12] & FLAG_FELL_BACK != 0,
            repaired: [0, 1].map(|copy| sector[12] & (1 << (FLAG_DAMAGED_SHIFT + copy)) != 0),
            fallback_ok: sector[12] & FLAG_FALLBACK_OK != 0,
        };
        let sequence = u32::from_le_bytes([sector[4], sector[5], sector[6], sector[7]]);
        Ok((record, sequence))
    }

    /// Encodes the record as one copy with sequence number `sequence`.
    pub fn encode(&self, sequence: u32) -> [u8; 512] {
        let mut sector = [0u8; 512];
        sector[..3].copy_from_slice(&MAGIC);
        sector[3] = VERSION;
        sector[4..8].copy_from_slice(&sequence.to_le_bytes());
        sector[8] = self.state as u8;
        sector[9] = self.committed.number();
        sector[10] = self.trial.number();
        sector[11] = self.attempts;
        sector[12] = if self.fell_back { FLAG_FELL_BACK } else { 0 };
        if self.fallback_ok {
            sector[12] |= FLAG_FALLBACK_OK;
        }
        for (copy, &repaired) in self.repaired.iter().enumerate() {
            sector[12] |= u8::from(repaired) << (FLAG_DAMAGED_SHIFT + copy as u8);
        }
        let crc = crc32(&sector[..CRC_OFFSET]);
        sector[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        sector
    }

    /// The slot the loader boots next, before counting attempts (see [`choose`]).
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
            trial: self.committed.other(),
            ..self.rewriting_trial_slot()
        }
    }

    /// Before the trial slot is written: nothing may fall back to it any more.
    pub fn rewriting_trial_slot(&self) -> Record {
        Record {
            fallback_ok: false,
            ..self.reached_init()
        }
    }

    /// Makes the slot that was booted for trial the committed one.
    pub fn commit(&self) -> Record {
        match self.state {
            State::Tried | State::Try => Record {
                state: State::Committed,
                committed: self.trial,
                trial: self.committed,
                ..Record::INITIAL
            },
            State::Committed => *self,
        }
    }

    /// What init writes once it runs: the committed slot's boots are no longer failures,
    /// and a fall-back and repaired copies have been reported.
    pub fn reached_init(&self) -> Record {
        Record {
            attempts: 0,
            fell_back: false,
            repaired: [false; 2],
            ..*self
        }
    }

    /// Whether the running system, booted from `slot`, is an uncommitted trial.
    pub fn is_trial_boot(&self, slot: Slot) -> bool {
        self.state == State::Tried && slot == self.trial
    }
}

/// Which copies of the record are not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    None,
    /// Copy 1 or 2 (at `COPY_LBAS[0]` or `[1]`).
    Copy(u8),
    Both,
}

/// The two copies as read from a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copies {
    /// The newest valid copy: which (0 or 1), its record and its sequence number.
    pub newest: Option<(usize, Record, u32)>,
    /// Why each copy is not valid, where it is not.
    pub damaged: [Option<RecordError>; 2],
}

impl Copies {
    /// Reads the sectors at [`COPY_LBAS`], in that order.
    pub fn read(sectors: [&[u8; 512]; 2]) -> Copies {
        let decoded = sectors.map(Record::decode);
        let newest = match (decoded[0], decoded[1]) {
            (Ok((r0, s0)), Ok((r1, s1))) => Some(if (s1.wrapping_sub(s0) as i32) > 0 {
                (1, r1, s1)
            } else {
                (0, r0, s0)
            }),
            (Ok((r, s)), Err(_)) => Some((0, r, s)),
            (Err(_), Ok((r, s))) => Some((1, r, s)),
            (Err(_), Err(_)) => None,
        };
        Copies {
            newest,
            damaged: decoded.map(|d| d.err()),
        }
    }

    /// The copies damaged now, and those the loader found damaged and repaired.
    pub fn damage(&self) -> Damage {
        let repaired = self.record().map_or([false; 2], |r| r.repaired);
        let damaged = [0, 1].map(|copy| self.damaged[copy].is_some() || repaired[copy]);
        match damaged {
            [false, false] => Damage::None,
            [true, false] => Damage::Copy(1),
            [false, true] => Damage::Copy(2),
            [true, true] => Damage::Both,
        }
    }

    /// The newest valid record, if a copy is valid.
    pub fn record(&self) -> Option<Record> {
        self.newest.map(|(_, r, _)| r)
    }

    /// Where `record` goes next, and the sector to write there: over the copy that is not
    /// the newest valid one (copy 0 when neither is valid), one step further in sequence.
    pub fn next_write(&self, record: &Record) -> (usize, [u8; 512]) {
        match self.newest {
            Some((copy, _, sequence)) => (1 - copy, record.encode(sequence.wrapping_add(1))),
            None => (0, record.encode(1)),
        }
    }
}

/// What a boot loader does with the two copies it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootChoice {
    /// The slot whose kernel, command line and root to boot.
    pub slot: Slot,
    /// The copy (0 or 1) to write, and the sector, before loading anything.
    pub write: Option<(usize, [u8; 512])>,
    /// Whether this boot is a trial's one boot.
    pub trial: bool,
    /// The slot given up on after [`MAX_ATTEMPTS`] failed boots, when this boot falls back.
    pub fell_back_from: Option<Slot>,
    /// Why each copy is not valid, where it is not: with no valid copy the loader says so
    /// and boots root A (init then writes a record committing it).
    pub damaged: [Option<RecordError>; 2],
}

/// The loader's decision, written once for the loaders in Rust (the UEFI program) and
/// mirrored by the MBR code. `complete` says whether a slot's trailer says it is complete.
pub fn choose(copies: &Copies, complete: impl FnOnce(Slot) -> bool) -> BootChoice {
    let mut choice = BootChoice {
        slot: Record::INITIAL.committed,
        write: None,
        trial: false,
        fell_back_from: None,
        damaged: copies.damaged,
    };
    let Some(record) = copies.record() else {
        return choice;
    };
    let (slot, next) = match record.state {
        State::Try => {
            choice.trial = true;
            let tried = Record {
                state: State::Tried,
                ..record
            };
            (record.trial, Some(tried))
        }
        _ if record.attempts < MAX_ATTEMPTS => {
            let counted = Record {
                attempts: record.attempts + 1,
                ..record
            };
            (record.committed, Some(counted))
        }
        // Out of attempts: fall back, where the record allows it, to a complete slot.
        State::Committed if record.fallback_ok && complete(record.trial) => {
            choice.fell_back_from = Some(record.committed);
            let fallen = Record {
                committed: record.trial,
                trial: record.committed,
                attempts: 1,
                fell_back: true,
                fallback_ok: false,
                ..record
            };
            (record.trial, Some(fallen))
        }
        // Nothing better to boot: no write, so a boot loop does not wear the disk.
        _ => (record.committed, None),
    };
    choice.slot = slot;
    choice.write = next.map(|next| {
        let mut repaired = next.repaired;
        for (copy, damaged) in copies.damaged.iter().enumerate() {
            repaired[copy] |= damaged.is_some();
        }
        copies.next_write(&Record { repaired, ..next })
    });
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies(first: [u8; 512], second: [u8; 512]) -> Copies {
        Copies::read([&first, &second])
    }

    #[test]
    fn round_trips_with_the_zlib_crc() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926, "the standard check value");
        for record in [
            Record::INITIAL,
            Record::INITIAL.arm(),
            Record::INITIAL.arm().commit(),
            Record {
                attempts: 3,
                fell_back: true,
                repaired: [false, true],
                ..Record::INITIAL
            },
        ] {
            let sector = record.encode(7);
            assert_eq!(Record::decode(&sector), Ok((record, 7)));
            // As the MBR code checks it: the CRC over all 512 bytes is the residue.
            assert_eq!(!crc32(&sector), 0xdebb_20e3);
        }
    }

    #[test]
    fn the_newest_valid_copy_wins_and_the_other_is_written() {
        let older = Record::INITIAL.encode(u32::MAX);
        let newer = Record::INITIAL.arm().encode(0); // wrapped around: still newer
        let read = copies(older, newer);
        assert_eq!(read.newest, Some((1, Record::INITIAL.arm(), 0)));
        let (copy, sector) = read.next_write(&Record::INITIAL);
        assert_eq!(
            (copy, Record::decode(&sector)),
            (0, Ok((Record::INITIAL, 1)))
        );

        let mut torn = newer;
        torn[256..].fill(0);
        let read = copies(older, torn);
        assert_eq!(read.newest, Some((0, Record::INITIAL, u32::MAX)));
        assert_eq!(read.damaged, [None, Some(RecordError::BadChecksum)]);
        assert_eq!(read.next_write(&Record::INITIAL).0, 1);

        let none = copies([0; 512], [0xa5; 512]);
        assert_eq!(none.newest, None);
        assert_eq!(none.next_write(&Record::INITIAL).0, 0);
    }

    #[test]
    fn update_life_cycle() {
        let armed = Record::INITIAL.arm();
        let tried = choose(&copies(armed.encode(1), armed.encode(1)), |_| true);
        assert_eq!((tried.slot, tried.trial), (Slot::B, true));
        let (copy, sector) = tried.write.unwrap();
        assert_eq!(copy, 1, "ties go to copy 0; the other is written");
        let (record, _) = Record::decode(&sector).unwrap();
        assert!(record.is_trial_boot(Slot::B));
        assert_eq!(
            record.next_boot(),
            Slot::A,
            "an uncommitted trial falls back"
        );
        let committed = record.commit();
        assert_eq!(
            (committed.state, committed.next_boot()),
            (State::Committed, Slot::B)
        );
        assert_eq!(committed.arm().trial, Slot::A);
    }

    /// Boots the loader `n` times on a disk whose copies start as `first`, returning the
    /// choices and the copies at the end.
    fn boot(mut disk: [[u8; 512]; 2], n: usize, complete: bool) -> (Vec<BootChoice>, Copies) {
        let mut choices = Vec::new();
        for _ in 0..n {
            let choice = choose(&copies(disk[0], disk[1]), |_| complete);
            if let Some((copy, sector)) = choice.write {
                disk[copy] = sector;
            }
            choices.push(choice);
        }
        (choices, copies(disk[0], disk[1]))
    }

    #[test]
    fn a_committed_slot_that_never_reaches_init_falls_back_once() {
        let b = Record::INITIAL.arm().commit(); // B committed, A the complete previous one
        let (choices, end) = boot([b.encode(5), b.encode(4)], 6, true);
        let slots: Vec<_> = choices.iter().map(|c| c.slot).collect();
        assert_eq!(
            slots,
            [Slot::B, Slot::B, Slot::B, Slot::A, Slot::A, Slot::A]
        );
        assert_eq!(choices[3].fell_back_from, Some(Slot::B));
        let now = end.record().unwrap();
        assert_eq!(
            (now.committed, now.fell_back, now.attempts),
            (Slot::A, true, 3)
        );
        // A broken as well: no turn back to B, and no more writes.
        let (choices, _) = boot([now.encode(100), now.encode(99)], 2, true);
        assert!(choices
            .iter()
            .all(|c| c.slot == Slot::A && c.write.is_none()));

        // init ran: counting starts again.
        let (choices, _) = boot([b.reached_init().encode(1), [0; 512]], 1, true);
        assert_eq!(
            Record::decode(&choices[0].write.unwrap().1)
                .unwrap()
                .0
                .attempts,
            1
        );

        // Nothing complete to fall back to, the other slot a failed trial, or rewritten
        // since (an upload nobody armed has a trailer too): stay.
        let (choices, _) = boot([b.rewriting_trial_slot().encode(1), [0; 512]], 5, true);
        assert!(choices.iter().all(|c| c.slot == Slot::B));
        let (choices, _) = boot([b.encode(1), [0; 512]], 5, false);
        assert!(choices.iter().all(|c| c.slot == Slot::B));
        let failed_trial = Record::INITIAL.arm();
        let (choices, _) = boot([failed_trial.encode(1), [0; 512]], 6, true);
        let slots: Vec<_> = choices.iter().map(|c| c.slot).collect();
        assert_eq!(
            slots,
            [Slot::B, Slot::A, Slot::A, Slot::A, Slot::A, Slot::A]
        );
    }

    #[test]
    fn a_loader_writes_over_a_damaged_copy_and_says_so_until_init_runs() {
        let b = Record::INITIAL.arm().commit();
        let (choices, end) = boot([[0; 512], b.encode(9)], 1, true);
        assert_eq!((choices[0].slot, choices[0].write.unwrap().0), (Slot::B, 0));
        assert_eq!(end.damaged, [None, None]);
        assert_eq!(
            end.damage(),
            Damage::Copy(1),
            "reported until init clears it"
        );
        let (_, later) = boot([end.record().unwrap().encode(11), b.encode(10)], 1, true);
        assert_eq!(
            later.damage(),
            Damage::Copy(1),
            "a later boot keeps the mark"
        );
        let cleared = later.record().unwrap().reached_init();
        assert_eq!(
            copies(cleared.encode(12), b.encode(11)).damage(),
            Damage::None
        );
    }

    #[test]
    fn a_loader_boots_root_a_from_garbage_without_writing() {
        let choice = choose(&copies([0xa5; 512], [0; 512]), |_| true);
        assert_eq!((choice.slot, choice.write), (Slot::A, None));
        assert_eq!(
            choice.damaged,
            [Some(RecordError::BadMagic), Some(RecordError::BadMagic)]
        );
    }

    #[test]
    fn rejects_damaged_sectors() {
        let good = Record::INITIAL.encode(1);
        let mut s = good;
        s[0] = b'X';
        assert_eq!(Record::decode(&s), Err(RecordError::BadMagic));
        let mut s = good;
        s[3] = 1;
        assert_eq!(Record::decode(&s), Err(RecordError::UnknownVersion(1)));
        let mut s = good;
        s[9] = 3;
        assert_eq!(Record::decode(&s), Err(RecordError::BadChecksum));
        let mut s = good;
        s[300] = 1;
        assert_eq!(Record::decode(&s), Err(RecordError::BadChecksum));
        assert_eq!(Record::decode(&[0; 512]), Err(RecordError::BadMagic));
    }
}
