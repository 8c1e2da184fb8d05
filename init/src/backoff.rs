//! When to restart a service that exited: exponential backoff from [`DELAY_MS_START`] to
//! [`DELAY_MS_MAX`], reset once a run lasted [`STABLE_RUN_MS`]. A crash loop therefore costs
//! one start a minute, never a busy loop.

pub const DELAY_MS_START: u64 = 1_000;
pub const DELAY_MS_MAX: u64 = 60_000;
/// A run at least this long counts as healthy: the next failure starts the schedule over.
pub const STABLE_RUN_MS: u64 = 60_000;

/// Per-service restart schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    next_delay_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next_delay_ms: DELAY_MS_START,
        }
    }
}

impl Backoff {
    /// The service exited after running `ran_ms`: how long to wait before starting it again.
    pub fn delay_after_exit(&mut self, ran_ms: u64) -> u64 {
        if ran_ms >= STABLE_RUN_MS {
            self.next_delay_ms = DELAY_MS_START;
        }
        let delay = self.next_delay_ms;
        self.next_delay_ms = (self.next_delay_ms * 2).min(DELAY_MS_MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let delays: [u64; 9] = core::array::from_fn(|_| b.delay_after_exit(10));
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
    }

    #[test]
    fn a_stable_run_resets_the_schedule() {
        let mut b = Backoff::default();
        for _ in 0..5 {
            b.delay_after_exit(0);
        }
        assert_eq!(b.delay_after_exit(STABLE_RUN_MS), DELAY_MS_START);
        assert_eq!(b.delay_after_exit(STABLE_RUN_MS - 1), 2 * DELAY_MS_START);
    }
}
