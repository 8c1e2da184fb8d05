//! When to ask a time server and what to do with its answer: the SNTP client's decisions,
//! without sockets or clocks (the program feeds it times and results).
//!
//! - Until the first good answer, a failed round is retried after 2, 4, 8 ... 64 s.
//! - After a good answer the next poll is 64 s away; while the clock stays within
//!   [`STEP_THRESHOLD_MS`] the interval doubles up to 1024 s (RFC 4330 asks clients not to
//!   poll more often than once a minute). A failed poll retries sooner, never faster than
//!   the start-up schedule.
//! - The clock is stepped (never slewed) whenever it is off by more than
//!   [`STEP_THRESHOLD_MS`]: at most that far off between polls, plus a crystal's drift
//!   (under 0.1 s per 1024 s).
//! - A `RATE` kiss doubles the interval; `DENY` and `RSTR` put that server aside for good.

/// Offsets beyond this are corrected by stepping the clock.
pub const STEP_THRESHOLD_MS: i64 = 128;
/// How long one exchange (DNS or NTP) may take before the next server is tried.
pub const EXCHANGE_TIMEOUT_MS: u64 = 2_000;
const RETRY_MS_MIN: u64 = 2_000;
const RETRY_MS_MAX: u64 = 64_000;
const POLL_MS_MIN: u64 = 64_000;
const POLL_MS_MAX: u64 = 1_024_000;
/// Servers put aside after `DENY`/`RSTR`.
pub const DENIED_MAX: usize = 8;

/// What to do after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    /// Step the clock by this many milliseconds.
    Step(i64),
    /// Close enough: leave the clock alone.
    Keep,
}

/// The poll schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    synchronised: bool,
    poll_ms: u64,
    retry_ms: u64,
    denied: [[u8; 4]; DENIED_MAX],
    denied_count: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            synchronised: false,
            poll_ms: POLL_MS_MIN,
            retry_ms: RETRY_MS_MIN,
            denied: [[0; 4]; DENIED_MAX],
            denied_count: 0,
        }
    }
}

impl Schedule {
    pub fn synchronised(&self) -> bool {
        self.synchronised
    }

    /// A good answer with `offset_ms`: what to do with the clock and the delay to the next
    /// poll.
    pub fn answered(&mut self, offset_ms: i64) -> (Correction, u64) {
        let correction = if offset_ms.unsigned_abs() > STEP_THRESHOLD_MS as u64 {
            Correction::Step(offset_ms)
        } else {
            Correction::Keep
        };
        if self.synchronised && correction == Correction::Keep {
            self.poll_ms = (self.poll_ms * 2).min(POLL_MS_MAX);
        } else {
            self.poll_ms = POLL_MS_MIN;
        }
        self.synchronised = true;
        self.retry_ms = RETRY_MS_MIN;
        (correction, self.poll_ms)
    }

    /// No server of the round answered: the delay to the next round.
    pub fn failed(&mut self) -> u64 {
        let delay = self.retry_ms;
        self.retry_ms = (self.retry_ms * 2).min(RETRY_MS_MAX);
        delay
    }

    /// A kiss-o'-death from `server`.
    pub fn kissed(&mut self, server: [u8; 4], code: [u8; 4]) {
        match &code {
            b"RATE" => self.poll_ms = (self.poll_ms * 2).min(POLL_MS_MAX),
            b"DENY" | b"RSTR" if !self.is_denied(server) && self.denied_count < DENIED_MAX => {
                self.denied[self.denied_count] = server;
                self.denied_count += 1;
            }
            _ => {}
        }
        // A rate kiss also slows the retries of this round.
        if code == *b"RATE" {
            self.retry_ms = self.retry_ms.max(self.poll_ms.min(RETRY_MS_MAX));
        }
    }

    /// Whether `server` said never to ask it again.
    pub fn is_denied(&self, server: [u8; 4]) -> bool {
        self.denied[..self.denied_count].contains(&server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_until_the_first_answer() {
        let mut s = Schedule::default();
        let delays: std::vec::Vec<u64> = (0..8).map(|_| s.failed()).collect();
        assert_eq!(
            delays,
            [2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 64_000, 64_000]
        );
        assert!(!s.synchronised());
    }

    #[test]
    fn first_answer_steps_then_polls_grow_while_the_clock_holds() {
        let mut s = Schedule::default();
        assert_eq!(
            s.answered(1_795_700_000_000),
            (Correction::Step(1_795_700_000_000), 64_000)
        );
        assert!(s.synchronised());
        let polls: std::vec::Vec<u64> = (0..6).map(|_| s.answered(3).1).collect();
        assert_eq!(
            polls,
            [128_000, 256_000, 512_000, 1_024_000, 1_024_000, 1_024_000]
        );
        // A jump (someone set the clock) steps and polls from the start again.
        assert_eq!(s.answered(-500), (Correction::Step(-500), 64_000));
        assert_eq!(s.answered(STEP_THRESHOLD_MS), (Correction::Keep, 128_000));
        // Failures after synchronisation retry from 2 s again.
        assert_eq!(s.failed(), 2_000);
    }

    #[test]
    fn kisses() {
        let mut s = Schedule::default();
        s.answered(0);
        s.kissed([1, 1, 1, 1], *b"RATE");
        assert_eq!(s.answered(0).1, 256_000);
        s.kissed([1, 1, 1, 1], *b"DENY");
        s.kissed([1, 1, 1, 1], *b"DENY");
        s.kissed([2, 2, 2, 2], *b"RSTR");
        s.kissed([3, 3, 3, 3], *b"XXXX");
        assert!(s.is_denied([1, 1, 1, 1]) && s.is_denied([2, 2, 2, 2]));
        assert!(!s.is_denied([3, 3, 3, 3]));
        for i in 0..20 {
            s.kissed([9, 9, 9, i], *b"DENY");
        }
        assert!(s.is_denied([9, 9, 9, 5]));
    }
}
