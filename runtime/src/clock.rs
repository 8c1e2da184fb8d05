//! Milliseconds on the kernel's clocks that never jump (timers, deadlines, log stamps).

use rustix::time::ClockId;

fn ms(id: ClockId) -> u64 {
    let t = rustix::time::clock_gettime(id);
    t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000
}

/// Milliseconds since boot, not counting suspend (CLOCK_MONOTONIC).
pub fn monotonic_ms() -> u64 {
    ms(ClockId::Monotonic)
}

/// Milliseconds since boot, counting suspend (CLOCK_BOOTTIME), as lease times do.
pub fn boottime_ms() -> u64 {
    ms(ClockId::Boottime)
}
