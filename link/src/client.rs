//! The DHCPv4 client state machine (RFC 2131 section 4.4), one per interface, without I/O:
//! the program feeds it the time, carrier changes and decoded replies, and it answers with
//! what to send and what happened. Times are milliseconds on a monotonic clock.

use crate::dhcp::{self, MessageType, Reply, Timers};

pub type Ipv4 = [u8; 4];

/// First retransmission delay, doubled per attempt up to [`RETRANSMIT_MS_MAX`] (RFC 2131
/// 4.1: 4 s, 8 s, ... 64 s, each randomised by +-1 s).
const RETRANSMIT_MS_FIRST: u64 = 4_000;
const RETRANSMIT_MS_MAX: u64 = 64_000;
const JITTER_MS: u64 = 1_000;
/// REQUESTs sent for one OFFER before starting over with DISCOVER.
const REQUEST_ATTEMPTS: u32 = 4;
/// Shortest wait between renew/rebind retransmissions. RFC 2131 says 60 s; with short
/// leases (dnsmasq's minimum is 2 minutes) that would leave one try, so 10 s.
const RENEW_RETRY_MS_MIN: u64 = 10_000;
/// Pause before DISCOVER after a NAK, so a confused server cannot make us spin.
const AFTER_NAK_MS: u64 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No carrier: nothing to do until the link comes up.
    Idle,
    Selecting,
    Requesting,
    Bound,
    Renewing,
    Rebinding,
}

/// An address lease as applied to the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4,
    pub prefix: u8,
    pub router: Option<Ipv4>,
    pub dns: [Ipv4; dhcp::DNS_SERVERS_MAX],
    pub dns_count: usize,
    pub ntp: [Ipv4; dhcp::NTP_SERVERS_MAX],
    pub ntp_count: usize,
    pub server: Ipv4,
    /// As granted; `u32::MAX` is infinite.
    pub lease_s: u32,
    pub timers: Timers,
}

impl Lease {
    pub fn dns(&self) -> &[Ipv4] {
        &self.dns[..self.dns_count]
    }

    pub fn ntp(&self) -> &[Ipv4] {
        &self.ntp[..self.ntp_count]
    }
}

/// A message to send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub kind: MessageType,
    pub xid: u32,
    pub secs: u16,
    pub ciaddr: Ipv4,
    pub requested_ip: Option<Ipv4>,
    pub server_id: Option<Ipv4>,
    /// `Some(server)`: unicast through the interface's address (renewing); `None`:
    /// broadcast on the link.
    pub unicast_to: Option<Ipv4>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    Expired,
    Nak,
    LinkDown,
}

/// Something that changes the interface's configuration (or is worth a log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new lease: apply it. `after_ms`: time since the search began.
    Bound { lease: Lease, after_ms: u64 },
    /// The lease was extended, possibly with changed parameters (even the address, which
    /// servers should not change; then `previous`'s address must go).
    Renewed { lease: Lease, previous: Lease },
    /// The lease is gone: remove its address and route.
    Lost { lease: Lease, why: Loss },
    /// A server refused our REQUEST before we had a lease.
    Refused,
}

/// What one call asks the program to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub event: Option<Event>,
    pub transmit: Option<Transmit>,
}

pub struct Client {
    phase: Phase,
    xid: u32,
    /// When the current exchange began (for the `secs` field).
    exchange_ms: u64,
    /// When the search for a lease began (for `after_ms`).
    search_ms: u64,
    attempt: u32,
    deadline_ms: u64,
    offer: Option<(Ipv4, Ipv4)>,
    lease: Option<Lease>,
    bound_ms: u64,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// Randomised exponential backoff for attempt `attempt` (0-based).
pub fn retransmit_ms(attempt: u32, rand: u32) -> u64 {
    let base = (RETRANSMIT_MS_FIRST << attempt.min(4)).min(RETRANSMIT_MS_MAX);
    base - JITTER_MS + u64::from(rand) % (2 * JITTER_MS + 1)
}

/// Prefix length of a subnet mask; a non-contiguous or missing mask falls back to the
/// address class, as old servers expect.
pub fn prefix_of(mask: Option<Ipv4>, address: Ipv4) -> u8 {
    if let Some(mask) = mask {
        let m = u32::from_be_bytes(mask);
        let ones = m.leading_ones();
        if (1..=32).contains(&ones) && m.checked_shl(ones).unwrap_or(0) == 0 {
            return ones as u8;
        }
    }
    match address[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

fn usable(address: Ipv4) -> bool {
    address != [0; 4] && address[0] < 224 && address[0] != 127
}

impl Client {
    pub const fn new() -> Client {
        Client {
            phase: Phase::Idle,
            xid: 0,
            exchange_ms: 0,
            search_ms: 0,
            attempt: 0,
            deadline_ms: u64::MAX,
            offer: None,
            lease: None,
            bound_ms: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The transaction id replies must carry.
    pub fn xid(&self) -> u32 {
        self.xid
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// When [`Client::on_timer`] next has work; `None` while idle.
    pub fn deadline_ms(&self) -> Option<u64> {
        (self.phase != Phase::Idle).then_some(self.deadline_ms)
    }

    /// Carrier appeared: start looking for a lease.
    pub fn link_up(&mut self, now: u64, rand: u32) -> Step {
        if self.phase != Phase::Idle {
            return Step::default();
        }
        self.search_ms = now;
        self.discover(now, rand)
    }

    /// Carrier lost: drop the lease (the next network may be another one).
    pub fn link_down(&mut self) -> Step {
        self.phase = Phase::Idle;
        self.offer = None;
        Step {
            event: self.lease.take().map(|lease| Event::Lost {
                lease,
                why: Loss::LinkDown,
            }),
            transmit: None,
        }
    }

    fn discover(&mut self, now: u64, rand: u32) -> Step {
        self.phase = Phase::Selecting;
        self.xid = rand;
        self.exchange_ms = now;
        self.attempt = 0;
        self.offer = None;
        self.deadline_ms = now + retransmit_ms(0, rand.rotate_left(16));
        self.send(now)
    }

    /// The phase's message: DISCOVER while selecting, else REQUEST.
    fn send(&self, now: u64) -> Step {
        let secs = u16::try_from(now.saturating_sub(self.exchange_ms) / 1000).unwrap_or(u16::MAX);
        let kind = match self.phase {
            Phase::Selecting => MessageType::Discover,
            _ => MessageType::Request,
        };
        let mut t = Transmit {
            kind,
            xid: self.xid,
            secs,
            ciaddr: [0; 4],
            requested_ip: None,
            server_id: None,
            unicast_to: None,
        };
        match (self.phase, self.offer, self.lease) {
            (Phase::Requesting, Some((ip, server)), _) => {
                t.requested_ip = Some(ip);
                t.server_id = Some(server);
            }
            (Phase::Renewing, _, Some(lease)) => {
                t.ciaddr = lease.address;
                t.unicast_to = Some(lease.server);
            }
            (Phase::Rebinding, _, Some(lease)) => t.ciaddr = lease.address,
            _ => {}
        }
        Step {
            event: None,
            transmit: Some(t),
        }
    }

    fn at(&self, seconds: u32) -> u64 {
        self.bound_ms.saturating_add(u64::from(seconds) * 1000)
    }

    /// Retransmits, renews, rebinds or expires, whichever is due.
    pub fn on_timer(&mut self, now: u64, rand: u32) -> Step {
        if self.phase == Phase::Idle || now < self.deadline_ms {
            return Step::default();
        }
        match self.phase {
            Phase::Idle => Step::default(),
            Phase::Selecting | Phase::Requesting => {
                self.attempt += 1;
                if self.phase == Phase::Requesting && self.attempt >= REQUEST_ATTEMPTS {
                    return self.discover(now, rand);
                }
                self.deadline_ms = now + retransmit_ms(self.attempt, rand);
                self.send(now)
            }
            Phase::Bound | Phase::Renewing | Phase::Rebinding => self.lease_timer(now, rand),
        }
    }

    fn lease_timer(&mut self, now: u64, rand: u32) -> Step {
        let Some(lease) = self.lease else {
            return self.discover(now, rand);
        };
        let rebind_at = self.at(lease.timers.rebind_s);
        let expire_at = self.at(lease.timers.expire_s);
        if now >= expire_at {
            self.lease = None;
            let mut step = self.discover(now, rand);
            step.event = Some(Event::Lost {
                lease,
                why: Loss::Expired,
            });
            return step;
        }
        let (phase, until) = if now >= rebind_at {
            (Phase::Rebinding, expire_at)
        } else {
            (Phase::Renewing, rebind_at)
        };
        if phase != self.phase {
            // A new exchange: new transaction id.
            self.phase = phase;
            self.xid = rand;
            self.exchange_ms = now;
        }
        let wait = ((until - now) / 2).max(RENEW_RETRY_MS_MIN);
        self.deadline_ms = (now + wait).min(until);
        self.send(now)
    }

    /// A reply that [`dhcp::decode`] accepted for [`Client::xid`].
    pub fn on_reply(&mut self, now: u64, rand: u32, reply: &Reply) -> Step {
        match (self.phase, reply.kind) {
            (Phase::Selecting, MessageType::Offer) => {
                let Some(server) = reply.server_id.filter(|_| usable(reply.yiaddr)) else {
                    return Step::default();
                };
                self.offer = Some((reply.yiaddr, server));
                self.phase = Phase::Requesting;
                self.attempt = 0;
                self.deadline_ms = now + retransmit_ms(0, rand);
                self.send(now)
            }
            (Phase::Requesting, MessageType::Ack) => {
                let Some(lease) = self.lease_from(reply) else {
                    return Step::default();
                };
                self.bind(now, lease);
                Step {
                    event: Some(Event::Bound {
                        lease,
                        after_ms: now.saturating_sub(self.search_ms),
                    }),
                    transmit: None,
                }
            }
            (Phase::Renewing | Phase::Rebinding, MessageType::Ack) => {
                let (Some(old), Some(lease)) = (self.lease, self.lease_from(reply)) else {
                    return Step::default();
                };
                self.bind(now, lease);
                Step {
                    event: Some(Event::Renewed {
                        lease,
                        previous: old,
                    }),
                    transmit: None,
                }
            }
            (Phase::Requesting, MessageType::Nak) => {
                self.after_nak(now, rand, Some(Event::Refused))
            }
            (Phase::Renewing | Phase::Rebinding, MessageType::Nak) => {
                let lost = self.lease.take().map(|lease| Event::Lost {
                    lease,
                    why: Loss::Nak,
                });
                self.search_ms = now;
                self.after_nak(now, rand, lost)
            }
            _ => Step::default(), // late or duplicate replies
        }
    }

    /// Starts over after a NAK, with DISCOVER after a pause.
    fn after_nak(&mut self, now: u64, rand: u32, event: Option<Event>) -> Step {
        self.discover(now, rand);
        self.deadline_ms = now + AFTER_NAK_MS;
        Step {
            event,
            transmit: None,
        }
    }

    fn lease_from(&self, reply: &Reply) -> Option<Lease> {
        if !usable(reply.yiaddr) {
            return None;
        }
        let server = reply
            .server_id
            .or(self.offer.map(|(_, s)| s))
            .or(self.lease.map(|l| l.server))?;
        let timers = dhcp::timers(reply);
        Some(Lease {
            address: reply.yiaddr,
            prefix: prefix_of(reply.subnet_mask, reply.yiaddr),
            router: reply.router.filter(|r| usable(*r)),
            dns: reply.dns,
            dns_count: reply.dns_count,
            ntp: reply.ntp,
            ntp_count: reply.ntp_count,
            server,
            lease_s: timers.expire_s,
            timers,
        })
    }

    fn bind(&mut self, now: u64, lease: Lease) {
        self.phase = Phase::Bound;
        self.lease = Some(lease);
        self.offer = None;
        self.bound_ms = now;
        self.deadline_ms = self.at(lease.timers.renew_s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(kind: MessageType, yiaddr: Ipv4, lease_s: u32) -> Reply {
        Reply {
            kind,
            yiaddr,
            server_id: Some([192, 168, 77, 1]),
            subnet_mask: Some([255, 255, 255, 0]),
            router: Some([192, 168, 77, 1]),
            dns: [[192, 168, 77, 53], [0; 4], [0; 4]],
            dns_count: 1,
            ntp: [[0; 4]; 3],
            ntp_count: 0,
            lease_s: Some(lease_s),
            renewal_s: None,
            rebinding_s: None,
        }
    }

    const IP: Ipv4 = [192, 168, 77, 50];

    /// Runs DISCOVER -> OFFER -> REQUEST -> ACK at `t0`; returns the client, bound.
    fn bound_client(t0: u64, lease_s: u32) -> Client {
        let mut c = Client::new();
        let s = c.link_up(t0, 0x1234_5678);
        assert_eq!(s.transmit.unwrap().kind, MessageType::Discover);
        assert_eq!(c.xid(), 0x1234_5678);
        let s = c.on_reply(t0 + 5, 1, &reply(MessageType::Offer, IP, lease_s));
        let t = s.transmit.unwrap();
        assert_eq!(t.kind, MessageType::Request);
        assert_eq!(t.xid, 0x1234_5678, "REQUEST keeps the DISCOVER's xid");
        assert_eq!(
            (t.requested_ip, t.server_id),
            (Some(IP), Some([192, 168, 77, 1]))
        );
        assert_eq!(t.unicast_to, None);
        let s = c.on_reply(t0 + 10, 2, &reply(MessageType::Ack, IP, lease_s));
        match s.event {
            Some(Event::Bound { lease, after_ms }) => {
                assert_eq!((lease.address, lease.prefix), (IP, 24));
                assert_eq!(lease.dns(), &[[192, 168, 77, 53]]);
                assert_eq!(after_ms, 10);
            }
            other => panic!("expected Bound, got {other:?}"),
        }
        assert_eq!(c.phase(), Phase::Bound);
        c
    }

    #[test]
    fn discover_retransmits_with_randomised_doubling_backoff() {
        let mut c = Client::new();
        assert_eq!(c.deadline_ms(), None);
        c.link_up(0, 0);
        let mut last = 0;
        let mut gaps = vec![];
        for i in 0..7 {
            let due = c.deadline_ms().unwrap();
            assert!(c.on_timer(due - 1, i).transmit.is_none(), "nothing early");
            let s = c.on_timer(due, i * 7919);
            assert_eq!(s.transmit.unwrap().kind, MessageType::Discover);
            assert_eq!(s.transmit.unwrap().secs as u64, due / 1000);
            gaps.push(due - last);
            last = due;
        }
        let expected = [4_000, 8_000, 16_000, 32_000, 64_000, 64_000, 64_000];
        for (gap, want) in gaps.iter().zip(expected) {
            assert!(
                gap.abs_diff(want) <= 1_000,
                "gap {gap} ms, expected {want} +- 1 s"
            );
        }
        assert!(gaps.iter().any(|g| g % 1000 != 0), "randomised: {gaps:?}");
    }

    #[test]
    fn renews_at_t1_unicast_and_rebinds_at_t2_broadcast() {
        let mut c = bound_client(0, 3600);
        let t1 = 1_800_010;
        assert_eq!(c.deadline_ms(), Some(t1));
        assert!(c.on_timer(t1 - 1, 0).transmit.is_none());
        let t = c.on_timer(t1, 99).transmit.unwrap();
        assert_eq!(c.phase(), Phase::Renewing);
        assert_eq!(
            (t.kind, t.ciaddr, t.unicast_to),
            (MessageType::Request, IP, Some([192, 168, 77, 1]))
        );
        assert_eq!(
            t.requested_ip, None,
            "RFC 2131 table 5: no requested address when renewing"
        );
        assert_eq!(c.xid(), 99, "a renewal is a new transaction");
        // Retries at half the time left to T2, until T2.
        let t2 = 3_150_010;
        let next = c.deadline_ms().unwrap();
        assert_eq!(next, t1 + (t2 - t1) / 2);
        c.on_timer(next, 5);
        let mut now = c.deadline_ms().unwrap();
        while now < t2 {
            let s = c.on_timer(now, 5);
            assert!(s.transmit.unwrap().unicast_to.is_some());
            now = c.deadline_ms().unwrap();
        }
        assert_eq!(now, t2);
        let t = c.on_timer(t2, 77).transmit.unwrap();
        assert_eq!(c.phase(), Phase::Rebinding);
        assert_eq!((t.ciaddr, t.unicast_to), (IP, None));
        // An ACK while rebinding renews the lease from that moment.
        let s = c.on_reply(t2 + 3, 0, &reply(MessageType::Ack, IP, 3600));
        assert!(matches!(s.event, Some(Event::Renewed { .. })));
        assert_eq!(c.deadline_ms(), Some(t2 + 3 + 1_800_000));
    }

    #[test]
    fn the_lease_expires_without_an_answer_and_the_search_restarts() {
        let mut c = bound_client(0, 120);
        let mut now = c.deadline_ms().unwrap();
        let mut sent = 0;
        loop {
            let s = c.on_timer(now, 3);
            if let Some(Event::Lost { lease, why }) = s.event {
                assert_eq!((lease.address, why), (IP, Loss::Expired));
                assert_eq!(now, 120_010);
                assert_eq!(s.transmit.unwrap().kind, MessageType::Discover);
                break;
            }
            sent += 1;
            now = c.deadline_ms().unwrap();
            assert!(sent < 20);
        }
        assert_eq!(c.phase(), Phase::Selecting);
        assert!(c.lease().is_none());
    }

    #[test]
    fn nak_and_link_loss_start_over() {
        let mut c = bound_client(0, 600);
        let t1 = c.deadline_ms().unwrap();
        c.on_timer(t1, 1);
        let s = c.on_reply(t1 + 1, 2, &reply(MessageType::Nak, [0; 4], 0));
        assert!(matches!(s.event, Some(Event::Lost { why: Loss::Nak, .. })));
        assert_eq!(c.phase(), Phase::Selecting);
        assert_eq!(c.deadline_ms(), Some(t1 + 1 + AFTER_NAK_MS));
        assert_eq!(
            c.on_timer(t1 + 1 + AFTER_NAK_MS, 3).transmit.unwrap().kind,
            MessageType::Discover
        );

        let mut c = bound_client(0, 600);
        let s = c.link_down();
        assert!(matches!(
            s.event,
            Some(Event::Lost {
                why: Loss::LinkDown,
                ..
            })
        ));
        assert_eq!(c.deadline_ms(), None);
        assert_eq!(
            c.link_up(5_000, 4).transmit.unwrap().kind,
            MessageType::Discover
        );
    }

    #[test]
    fn ignores_what_does_not_fit_the_state() {
        let mut c = bound_client(0, 600);
        let before = c.deadline_ms();
        for kind in [MessageType::Offer, MessageType::Ack, MessageType::Nak] {
            assert_eq!(c.on_reply(1, 1, &reply(kind, IP, 600)), Step::default());
        }
        assert_eq!(c.deadline_ms(), before);
        // Offers without a server id or with unusable addresses are skipped.
        let mut c = Client::new();
        c.link_up(0, 1);
        let mut r = reply(MessageType::Offer, IP, 600);
        r.server_id = None;
        assert_eq!(c.on_reply(1, 1, &r), Step::default());
        for bad in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [224, 0, 0, 1],
            [127, 0, 0, 1],
        ] {
            assert_eq!(
                c.on_reply(1, 1, &reply(MessageType::Offer, bad, 600)),
                Step::default()
            );
        }
        assert_eq!(c.phase(), Phase::Selecting);
    }

    #[test]
    fn request_gives_up_after_four_tries() {
        let mut c = Client::new();
        c.link_up(0, 1);
        c.on_reply(1, 1, &reply(MessageType::Offer, IP, 600));
        let mut kinds = vec![];
        for _ in 0..4 {
            let due = c.deadline_ms().unwrap();
            kinds.push(c.on_timer(due, 0).transmit.unwrap().kind);
        }
        use MessageType::*;
        assert_eq!(kinds, vec![Request, Request, Request, Discover]);
    }

    #[test]
    fn prefixes_from_masks() {
        assert_eq!(prefix_of(Some([255, 255, 255, 0]), IP), 24);
        assert_eq!(prefix_of(Some([255, 255, 240, 0]), IP), 20);
        assert_eq!(prefix_of(Some([255, 255, 255, 255]), IP), 32);
        assert_eq!(
            prefix_of(Some([255, 0, 255, 0]), [10, 0, 0, 1]),
            8,
            "non-contiguous"
        );
        assert_eq!(prefix_of(Some([0, 0, 0, 0]), [172, 16, 0, 1]), 16);
        assert_eq!(prefix_of(None, IP), 24);
    }
}
