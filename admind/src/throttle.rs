//! Failed logins counted per source, so that a stranger who guesses slows only itself:
//! after [`FREE_FAILURES`] wrong passwords a source waits [`WAIT_FIRST`] before its next
//! try is looked at, twice as long after each further failure, up to [`WAIT_MAX`].
//! Credentials from any other source are checked at once (and a password that already got
//! in passes before the throttle: `api`). A source is an IPv4 address or an IPv6 /64 (what
//! one customer of a provider gets, so rotating addresses within it does not reset the
//! count); a link-local IPv6 address counts alone (every neighbour shares fe80::/64). The table holds at most [`SOURCES_MAX`] sources; when it is full,
//! the one whose last failure is oldest is forgotten (forgetting only ever helps that
//! source, never locks anyone out).

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const SOURCES_MAX: usize = 256;
/// Wrong passwords a source may send before it has to wait.
pub const FREE_FAILURES: u32 = 5;
pub const WAIT_FIRST: Duration = Duration::from_secs(2);
pub const WAIT_MAX: Duration = Duration::from_secs(300);
/// A source whose last failure is this old starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Where a connection comes from, as the throttle counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source([u8; 16]);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source(v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(v4.to_ipv6_mapped().octets()),
                None if v6.is_unicast_link_local() => Source(v6.octets()),
                None => {
                    let mut prefix = v6.octets();
                    prefix[8..].fill(0);
                    Source(prefix)
                }
            },
        }
    }
}

struct Entry {
    source: Source,
    failures: u32,
    last: Instant,
}

impl Entry {
    /// When this source's next try is looked at.
    fn free_at(&self) -> Instant {
        match self.failures.checked_sub(FREE_FAILURES) {
            None => self.last,
            Some(over) => {
                let wait = WAIT_FIRST
                    .checked_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
                    .map_or(WAIT_MAX, |w| w.min(WAIT_MAX));
                self.last + wait
            }
        }
    }
}

#[derive(Default)]
pub struct Throttle {
    entries: Vec<Entry>,
}

impl Throttle {
    /// `Some(seconds to wait)` when `source` must not try now.
    pub fn wait(&mut self, source: Source, now: Instant) -> Option<u64> {
        self.entries
            .retain(|e| now.saturating_duration_since(e.last) < FORGET_AFTER);
        let free_at = self.entries.iter().find(|e| e.source == source)?.free_at();
        let wait = free_at.saturating_duration_since(now);
        (!wait.is_zero()).then(|| wait.as_secs().max(1))
    }

    pub fn failed(&mut self, source: Source, now: Instant) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.source == source) {
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            return;
        }
        if self.entries.len() == SOURCES_MAX {
            if let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last) {
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push(Entry {
            source,
            failures: 1,
            last: now,
        });
    }

    /// Right credentials: the source starts afresh.
    pub fn succeeded(&mut self, source: Source) {
        self.entries.retain(|e| e.source != source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Source {
        Source::of(text.parse().unwrap())
    }

    #[test]
    fn a_guessing_source_waits_longer_each_time_and_others_never_wait() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let stranger = ip("127.0.0.2");
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.wait(stranger, now), None);
            t.failed(stranger, now);
        }
        assert_eq!(t.wait(stranger, now), Some(2));
        assert_eq!(t.wait(ip("127.0.0.1"), now), None);
        let later = now + WAIT_FIRST;
        assert_eq!(t.wait(stranger, later), None);
        t.failed(stranger, later);
        assert_eq!(t.wait(stranger, later), Some(4));
        for _ in 0..40 {
            t.failed(stranger, later);
        }
        assert_eq!(t.wait(stranger, later), Some(WAIT_MAX.as_secs()));
        assert_eq!(t.wait(stranger, later + FORGET_AFTER), None);
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
        assert_ne!(ip("fe80::1"), ip("fe80::2"));
        assert_ne!(ip("10.0.0.1"), ip("10.0.0.2"));
    }

    #[test]
    fn success_clears_a_source_and_a_full_table_forgets_the_oldest() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..=FREE_FAILURES {
            t.failed(a, now);
        }
        assert!(t.wait(a, now).is_some());
        t.succeeded(a);
        assert_eq!(t.wait(a, now), None);
        for _ in 0..=FREE_FAILURES {
            t.failed(a, now);
        }
        for i in 0..SOURCES_MAX {
            let other = Source::of(IpAddr::from([10, 1, (i / 256) as u8, i as u8]));
            t.failed(other, now + Duration::from_millis(1));
        }
        assert_eq!(t.entries.len(), SOURCES_MAX);
        assert_eq!(t.wait(a, now), None, "the oldest was forgotten");
    }
}
