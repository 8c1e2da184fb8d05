//! The time client: once an address is up, asks a time server (SNTP over UDP), steps the
//! clock, and publishes the result in `boot::clock::STATUS_PATH` for admind. Servers: the
//! settings' `ntp` lines, else DHCP's option 42, else `boot::network::NTP_DEFAULT`; names
//! are looked up with one DNS query to the resolv.conf servers. Decisions (schedule,
//! kisses, when to step) are `link::timesync`'s; messages are `link::sntp` and `link::dns`.

use crate::sys::{self, now_ms, random, Text};
use boot::clock::{Status, Sync, Utc};
use boot::encoding::Decimal;
use boot::network::{Host, Settings, NTP_MAX};
use core::fmt::Write;
use link::dns;
use link::show::{Ip4, Shown};
use link::sntp::{self, Rejection};
use link::timesync::{Correction, Schedule, EXCHANGE_TIMEOUT_MS};
use runtime::say;
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::time::{ClockId, Timespec};

/// What the time client may do (`--time`): tests on a host observe, and never set the
/// host's clock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Keep,
    Observe,
    Off,
}

/// What the rest of link knows that the time client needs.
pub struct Network<'a> {
    /// Some interface has an address.
    pub online: bool,
    pub resolvers: &'a [[u8; 4]],
    /// Time servers from DHCP leases.
    pub dhcp_servers: &'a [[u8; 4]],
}

/// The exchange in flight.
#[derive(Clone, Copy)]
enum Exchange {
    Idle,
    Dns {
        id: u16,
        resolver: usize,
    },
    Ntp {
        nonce: u64,
        sent_ms: i64,
        server: [u8; 4],
    },
}

/// One server to try: a name to look up, or an address.
enum Target<'a> {
    Name(&'a [u8]),
    Address([u8; 4]),
}

pub struct TimeSync {
    enabled: bool,
    observe_only: bool,
    names: [Host; NTP_MAX],
    name_count: usize,
    status_path: Text<128>,
    schedule: Schedule,
    socket: Option<OwnedFd>,
    exchange: Exchange,
    /// When the exchange times out or the next round starts; `u64::MAX`: waiting for the
    /// network.
    deadline_ms: u64,
    /// The round: the next target, and the addresses of the current one still to ask.
    target: usize,
    addresses: [[u8; 4]; dns::ADDRESSES_MAX],
    address_count: usize,
    address_next: usize,
    /// A failed round was reported; quiet until the next success.
    failure_said: bool,
}

impl TimeSync {
    pub fn new(settings: &Settings, mode: Mode, status_path: Text<128>) -> TimeSync {
        let mut names = [Host::default(); NTP_MAX];
        names[..settings.ntp().len()].copy_from_slice(settings.ntp());
        let sync = TimeSync {
            enabled: mode != Mode::Off && !settings.ntp_off,
            observe_only: mode == Mode::Observe,
            names,
            name_count: settings.ntp().len(),
            status_path,
            schedule: Schedule::default(),
            socket: None,
            exchange: Exchange::Idle,
            deadline_ms: u64::MAX,
            target: 0,
            addresses: [[0; 4]; dns::ADDRESSES_MAX],
            address_count: 0,
            address_next: 0,
            failure_said: false,
        };
        if sync.enabled {
            sync.publish(Status::Unsynchronised);
        }
        sync
    }

    pub fn socket(&self) -> Option<&OwnedFd> {
        self.socket.as_ref()
    }

    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Addresses or servers changed: an idle client waiting for the network starts a round.
    pub fn network_changed(&mut self, net: &Network<'_>) {
        if self.enabled && net.online && self.deadline_ms == u64::MAX {
            self.start_round(net);
        }
    }

    /// The deadline passed: the exchange timed out, or the next round is due.
    pub fn on_timer(&mut self, net: &Network<'_>) {
        if now_ms() < self.deadline_ms {
            return;
        }
        match self.exchange {
            Exchange::Idle if net.online => self.start_round(net),
            Exchange::Idle => self.deadline_ms = u64::MAX,
            Exchange::Dns { resolver, .. } if resolver + 1 < net.resolvers.len() => {
                self.ask_resolver(net, resolver + 1)
            }
            Exchange::Dns { .. } | Exchange::Ntp { .. } => self.next(net),
        }
    }

    /// A datagram arrived on the exchange's socket.
    pub fn on_readable(&mut self, net: &Network<'_>, buf: &mut [u8]) {
        let Some(socket) = &self.socket else { return };
        let received_ms = wall_ms();
        let message = match sys::recv(socket, buf) {
            Ok(Some(m)) => m,
            Ok(None) => return,
            // ICMP port unreachable and the like: this server is not answering.
            Err(_) => return self.next(net),
        };
        match self.exchange {
            Exchange::Idle => self.socket = None,
            Exchange::Dns { id, .. } => match dns::addresses(message, id) {
                Ok((found, n)) => {
                    self.addresses = found;
                    (self.address_count, self.address_next) = (n, 0);
                    self.next(net);
                }
                Err(dns::Failure::Refused(_) | dns::Failure::NoAddress) => self.next(net),
                // Not an answer to our query: keep waiting for one.
                Err(dns::Failure::NotOurs | dns::Failure::Malformed) => {}
            },
            Exchange::Ntp {
                nonce,
                sent_ms,
                server,
            } => match sntp::decode(message, nonce, sent_ms, received_ms) {
                Ok(reply) => self.answered(server, reply),
                Err(Rejection::Kiss(code)) => {
                    self.schedule.kissed(server, code);
                    if self.schedule.is_denied(server) {
                        say!(
                            "link: time server {} says {}; not asking it again",
                            Ip4(server),
                            Shown(&code)
                        );
                    }
                    self.next(net);
                }
                // Garbage, or someone else's answer: ignored; the timeout moves us on.
                Err(_) => {}
            },
        }
    }

    fn start_round(&mut self, net: &Network<'_>) {
        (self.target, self.address_count, self.address_next) = (0, 0, 0);
        self.next(net);
    }

    /// Asks the next address of the current target, or starts on the next target; at the
    /// end of the list the round has failed.
    fn next(&mut self, net: &Network<'_>) {
        self.socket = None;
        self.exchange = Exchange::Idle;
        while self.address_next < self.address_count {
            let server = self.addresses[self.address_next];
            self.address_next += 1;
            if !self.schedule.is_denied(server) && self.ask_server(server) {
                return;
            }
        }
        loop {
            let address = match self.target(net, self.target) {
                None => break,
                Some(Target::Address(a)) => Some(a),
                Some(Target::Name(_)) => None,
            };
            self.target += 1;
            match address {
                Some(a) => {
                    (self.addresses[0], self.address_count, self.address_next) = (a, 1, 0);
                    return self.next(net);
                }
                None if net.resolvers.is_empty() => continue,
                None => return self.ask_resolver(net, 0),
            }
        }
        let delay_ms = self.schedule.failed();
        if !self.failure_said {
            self.failure_said = true;
            let servers = self.describe_servers(net);
            say!(
                "link: no time server answered (server list: {}); trying again in {} s, then less often",
                Shown(servers.as_bytes()),
                Decimal(delay_ms / 1000)
            );
        }
        self.deadline_ms = now_ms() + delay_ms;
    }

    /// Target `i` of the round.
    fn target<'a>(&'a self, net: &Network<'_>, i: usize) -> Option<Target<'a>> {
        if self.name_count > 0 {
            let name = self.names[..self.name_count].get(i)?.as_bytes();
            return Some(match boot::network::parse_ipv4(name) {
                Some(a) => Target::Address(a),
                None => Target::Name(name),
            });
        }
        if !net.dhcp_servers.is_empty() {
            return net.dhcp_servers.get(i).map(|&a| Target::Address(a));
        }
        (i == 0).then_some(Target::Name(boot::network::NTP_DEFAULT.as_bytes()))
    }

    fn describe_servers(&self, net: &Network<'_>) -> Text<200> {
        let mut text = Text::new();
        let targets = (0..).map_while(|i| self.target(net, i));
        for (i, target) in targets.enumerate() {
            if i > 0 {
                text.push(b", ");
            }
            let _ = match target {
                Target::Name(n) => write!(text, "{}", Shown(n)),
                Target::Address(a) => write!(text, "{}", Ip4(a)),
            };
        }
        text
    }

    /// Sends the current target's name to resolver `resolver`.
    fn ask_resolver(&mut self, net: &Network<'_>, resolver: usize) {
        let Some(Target::Name(name)) = self.target(net, self.target.wrapping_sub(1)) else {
            return self.next(net);
        };
        let Some(&address) = net.resolvers.get(resolver) else {
            return self.next(net);
        };
        let id = random() as u16;
        let mut query = [0u8; dns::QUERY_BYTES_MAX];
        let Some(len) = dns::query(id, name, &mut query) else {
            return self.next(net);
        };
        match sys::udp_connected(address, dns::SERVER_PORT)
            .and_then(|fd| sys::send(&fd, &query[..len]).map(|()| fd))
        {
            Ok(fd) => {
                self.socket = Some(fd);
                self.exchange = Exchange::Dns { id, resolver };
                self.deadline_ms = now_ms() + EXCHANGE_TIMEOUT_MS;
            }
            Err(_) if resolver + 1 < net.resolvers.len() => self.ask_resolver(net, resolver + 1),
            Err(_) => self.next(net),
        }
    }

    /// Sends a request to `server`; false if it cannot be sent.
    fn ask_server(&mut self, server: [u8; 4]) -> bool {
        let nonce = u64::from(random()) << 32 | u64::from(random());
        let request = sntp::request(nonce);
        let sent = sys::udp_connected(server, sntp::SERVER_PORT).and_then(|fd| {
            let sent_ms = wall_ms();
            sys::send(&fd, &request).map(|()| (fd, sent_ms))
        });
        let Ok((fd, sent_ms)) = sent else {
            return false;
        };
        self.socket = Some(fd);
        self.exchange = Exchange::Ntp {
            nonce,
            sent_ms,
            server,
        };
        self.deadline_ms = now_ms() + EXCHANGE_TIMEOUT_MS;
        true
    }

    fn answered(&mut self, server: [u8; 4], reply: sntp::Reply) {
        self.socket = None;
        self.exchange = Exchange::Idle;
        let (correction, next_ms) = self.schedule.answered(reply.offset_ms);
        if let (Correction::Step(offset_ms), true) = (correction, self.observe_only) {
            say!(
                "link: clock is off by {} s (time server {}; observing only)",
                SignedMs(offset_ms),
                Ip4(server)
            );
        } else if let Correction::Step(offset_ms) = correction {
            let before = wall_ms();
            match step_clock(offset_ms) {
                Ok(()) => say!(
                    "link: clock stepped by {} s to {} (time server {}, stratum {})",
                    SignedMs(offset_ms),
                    Utc((before + offset_ms).max(0) as u64 / 1000),
                    Ip4(server),
                    Decimal(u64::from(reply.stratum))
                ),
                Err(e) => say!("link: cannot set the clock ({})", e),
            }
        }
        self.failure_said = false;
        self.publish(Status::Synchronised(Sync {
            server,
            offset_ms: reply.offset_ms,
            stratum: reply.stratum,
            at_s: (wall_ms() / 1000).max(0) as u64,
        }));
        self.deadline_ms = now_ms() + next_ms;
    }

    fn publish(&self, status: Status) {
        let mut text: Text<{ boot::clock::STATUS_BYTES_MAX }> = Text::new();
        let _ = write!(text, "{status}");
        if let Err(e) = sys::replace_file(self.status_path.as_bytes(), text.as_bytes()) {
            say!(
                "link: cannot write {} ({})",
                Shown(self.status_path.as_bytes()),
                e
            );
        }
    }
}

/// The wall clock in milliseconds since 1970.
fn wall_ms() -> i64 {
    let t = rustix::time::clock_gettime(ClockId::Realtime);
    t.tv_sec * 1000 + t.tv_nsec / 1_000_000
}

fn step_clock(offset_ms: i64) -> Result<(), Errno> {
    let to_ms = wall_ms()
        .checked_add(offset_ms)
        .filter(|&ms| ms >= 0)
        .ok_or(Errno::INVAL)?;
    let to = Timespec {
        tv_sec: to_ms / 1000,
        tv_nsec: to_ms % 1000 * 1_000_000,
    };
    rustix::time::clock_settime(ClockId::Realtime, to)
}

/// Milliseconds as signed seconds with three decimals: `+1.250`, `-0.200`.
struct SignedMs(i64);

impl core::fmt::Display for SignedMs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ms = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "+" };
        // The same `{:03}` as the lease log line's, so no further formatting code.
        write!(f, "{}{}.{:03}", sign, Decimal(ms / 1000), ms % 1000)
    }
}
