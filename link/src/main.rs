//! `link`: rustkrazy's network bring-up, started by init like any program.
//!
//! 1. Reads the network settings ([`boot::network`]); without them, DHCP everywhere.
//! 2. Brings up loopback (127.0.0.1/8, ::1/128) and every Ethernet interface (or the named
//!    ones), also ones that appear later.
//! 3. Per interface: a static address, gateway and DNS servers, or a DHCPv4 client that
//!    applies its lease (address with the lease as its lifetime, default route) and renews,
//!    rebinds, and starts over on NAK, expiry or carrier loss.
//! 4. Writes the DNS servers to resolv.conf (default /run/resolv.conf, which the root's
//!    /etc/resolv.conf points to).
//! 5. Leaves IPv6 to the kernel's SLAAC and logs the global addresses it configures.
//!
//! Options (for tests and unusual images): `--config PATH`, `--resolv-conf PATH`.
//! One log line per event on stdout. Nothing from the network can make it panic.
#![no_std]
#![no_main]

mod sys;
mod time;

use boot::encoding::Decimal;
use boot::network::{self, Name, Settings};
use core::ffi::{c_char, c_int, CStr};
use core::fmt::Write;
use link::client::{Client, Event, Lease, Loss, Step, Transmit};
use link::netlink::{self as nl, Address};
use link::show::{Ip4, Ip6, Mac, Shown};
use link::{dhcp, udp};
use runtime::say;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use sys::{now_ms, random, LinkAddr, Text};

// musl's start-up code calls `main` below.
runtime::device_program!();

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    say!("link: internal error (panic); exiting so init restarts it");
    let _ =
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::ABORT);
    loop {
        core::hint::spin_loop();
    }
}

/// Interfaces handled at once (slots are reused when interfaces go away).
const INTERFACES_MAX: usize = 8;
const RESOLV_CONF_DEFAULT: &[u8] = b"/run/resolv.conf";
/// Longest wait in poll, so a clock oddity cannot stall timers for long.
const POLL_MS_MAX: u64 = 60_000;
/// Largest packet read from a DHCP socket (an Ethernet frame's payload, with room).
const MTU_BYTES: usize = 1600;
/// Largest settings file read; a larger one is refused.
const SETTINGS_BYTES_MAX: usize = 4096;
/// Buffer for acknowledgements of our own requests (one small message each).
const ACK_BUFFER_BYTES: usize = 4096;
/// Buffer for dumps and events: the kernel sends netlink datagrams of up to 32 KiB.
const NETLINK_BUFFER_BYTES: usize = 32 * 1024;
/// Links collected from one dump (the rest are picked up by later events).
const DUMPED_LINKS_MAX: usize = 32;
/// Changes taken from one event datagram.
const CHANGES_PER_DATAGRAM_MAX: usize = 16;
/// DHCP packets handled per wake-up, so a flood on one socket cannot starve the others.
const PACKETS_PER_WAKE_MAX: usize = 64;
/// Poll slots: netlink events, a packet and a UDP socket per interface, the time client's.
const POLL_SLOTS: usize = 2 + 2 * INTERFACES_MAX;
const TIME_SLOT: usize = POLL_SLOTS - 1;

struct Interface {
    index: u32,
    name: Name,
    mac: [u8; 6],
    carrier: bool,
    packet: Option<OwnedFd>,
    /// Bound to the leased address, for unicast renewals.
    udp: Option<OwnedFd>,
    client: Client,
    /// The lease whose address and route are on the interface.
    applied: Option<Lease>,
    /// Last IPv6 global address reported, so refreshes are not logged again.
    last_ipv6: [u8; 16],
}

struct Link {
    requests: OwnedFd,
    seq: u32,
    settings: Settings,
    hostname: Text<64>,
    resolv_conf: Text<128>,
    interfaces: [Option<Interface>; INTERFACES_MAX],
    /// What resolv.conf holds now, to skip rewriting it unchanged.
    dns_written: Text<160>,
    time: time::TimeSync,
}

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mut config: Text<128> = Text::new();
    config.push(network::PATH.as_bytes());
    let mut resolv_conf: Text<128> = Text::new();
    resolv_conf.push(RESOLV_CONF_DEFAULT);
    let mut clock_status: Text<128> = Text::new();
    clock_status.push(boot::clock::STATUS_PATH.as_bytes());
    let mut time_mode = time::Mode::Keep;
    let mut args = (1..argc.max(1) as usize).map(|i| {
        // SAFETY: the C start-up code passes `argc` valid pointers to NUL-terminated
        // strings in `argv`, alive for the whole process.
        unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes()
    });
    while let Some(arg) = args.next() {
        let target = match arg {
            b"--config" => &mut config,
            b"--resolv-conf" => &mut resolv_conf,
            b"--clock-status" => &mut clock_status,
            b"--time" => match args.next() {
                Some(b"off") => {
                    time_mode = time::Mode::Off;
                    continue;
                }
                Some(b"observe") => {
                    time_mode = time::Mode::Observe;
                    continue;
                }
                _ => {
                    say!("link: --time takes off or observe");
                    return 2;
                }
            },
            _ => {
                say!("link: unknown argument \"{}\"; usage: link [--config PATH] [--resolv-conf PATH] [--clock-status PATH] [--time off|observe]", Shown(arg));
                return 2;
            }
        };
        let Some(value) = args.next() else {
            say!("link: {} needs a path", Shown(arg));
            return 2;
        };
        *target = Text::new();
        target.push(value);
    }

    let settings = read_settings(&mut config);
    let requests = match sys::netlink(0) {
        Ok(fd) => fd,
        Err(e) => {
            say!(
                "link: cannot open rtnetlink ({}); is this Linux with CONFIG_NET?",
                e
            );
            return 1;
        }
    };
    let events = match sys::netlink(nl::RTMGRP_LINK | nl::RTMGRP_IPV6_IFADDR) {
        Ok(fd) => fd,
        Err(e) => {
            say!("link: cannot subscribe to link changes ({})", e);
            return 1;
        }
    };
    let mut hostname = Text::new();
    let uname = rustix::system::uname();
    let node = uname.nodename().to_bytes();
    if !node.is_empty() && node != b"(none)" {
        hostname.push(node);
    }
    let mut link = Link {
        requests,
        seq: now_ms() as u32,
        time: time::TimeSync::new(&settings, time_mode, clock_status),
        settings,
        hostname,
        resolv_conf,
        interfaces: [const { None }; INTERFACES_MAX],
        dns_written: Text::new(),
    };
    link.loopback();
    if link.list_links().is_err() {
        return 1;
    }
    if let Some(st) = link.settings.ipv4_static {
        if !link
            .interfaces
            .iter()
            .flatten()
            .any(|i| link.settings.wants(i.name.as_bytes()))
        {
            say!(
                "link: waiting for interface {} (static address {}/{})",
                Shown(link.settings.interfaces()[0].as_bytes()),
                Ip4(st.address),
                st.prefix
            );
        }
    }
    link.write_resolv_conf();
    link.run(&events)
}

fn read_settings(path: &mut Text<128>) -> Settings {
    let mut buf = [0u8; SETTINGS_BYTES_MAX];
    let shown = Shown(path.as_bytes());
    let mut shown_text: Text<128> = Text::new();
    let _ = write!(shown_text, "{}", shown);
    let Some(cpath) = path.as_cstr() else {
        say!("link: settings path too long; using DHCP on every Ethernet interface");
        return Settings::default();
    };
    let capacity = buf.len();
    match sys::read_file(cpath, &mut buf) {
        Ok(text) if text.len() == capacity => {
            say!(
                "link: {} is larger than 4 KiB; using DHCP on every Ethernet interface",
                Shown(shown_text.as_bytes())
            );
            Settings::default()
        }
        Ok(text) => match network::parse(text) {
            Ok(s) => s,
            Err(e) => {
                say!(
                    "link: {} line {}: {}; using DHCP on every Ethernet interface instead",
                    Shown(shown_text.as_bytes()),
                    e.line,
                    e.reason
                );
                Settings::default()
            }
        },
        Err(Errno::NOENT) => Settings::default(),
        Err(e) => {
            say!(
                "link: cannot read {} ({}); using DHCP on every Ethernet interface",
                Shown(shown_text.as_bytes()),
                e
            );
            Settings::default()
        }
    }
}

impl Link {
    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, mut req: nl::Request) -> Result<(), Errno> {
        let seq = req.seq();
        sys::send(&self.requests, req.bytes())?;
        let mut buf = [0u8; ACK_BUFFER_BYTES];
        loop {
            let Some(reply) = sys::recv(&self.requests, &mut buf)? else {
                return Err(Errno::TIMEDOUT);
            };
            for m in nl::messages(reply) {
                if m.seq == seq && m.kind == nl::NLMSG_ERROR {
                    return match nl::error_code(m.payload) {
                        Some(0) => Ok(()),
                        Some(e) => Err(Errno::from_raw_os_error(e)),
                        None => Err(Errno::IO),
                    };
                }
            }
        }
    }

    fn loopback(&mut self) {
        // Loopback is index 1 on Linux in every network namespace.
        const LO: u32 = 1;
        let mut ok = true;
        let seq = self.next_seq();
        if let Err(e) = self.request(nl::set_up(seq, LO)) {
            say!("link: cannot bring loopback up ({})", e);
            ok = false;
        }
        for (ip, prefix) in [(&[127, 0, 0, 1][..], 8), (&nl::LOOPBACK6[..], 128)] {
            let seq = self.next_seq();
            let a = Address {
                index: LO,
                ip,
                prefix,
            };
            // ::1 fails only where IPv6 is off, which is not worth a complaint.
            if let Err(e) = self.request(nl::add_address(seq, &a, None)) {
                if ip.len() == 4 {
                    say!("link: cannot add 127.0.0.1/8 to loopback ({})", e);
                    ok = false;
                }
            }
        }
        if ok {
            say!("link: lo: up, 127.0.0.1/8 ::1/128");
        }
    }

    /// Asks for every link and handles each as if it had just changed.
    fn list_links(&mut self) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut req = nl::list_links(seq);
        if let Err(e) = sys::send(&self.requests, req.bytes()) {
            say!("link: cannot list network interfaces ({})", e);
            return Err(e);
        }
        // Collect the whole dump before acting on it: acting sends requests on the same
        // socket, whose acknowledgements would be read in between.
        let mut links: [Option<(u32, u16, u32, Name, Option<[u8; 6]>)>; DUMPED_LINKS_MAX] =
            [None; DUMPED_LINKS_MAX];
        let mut count = 0;
        let mut buf = [0u8; NETLINK_BUFFER_BYTES];
        let mut done = false;
        while !done {
            let reply = match sys::recv(&self.requests, &mut buf) {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(Errno::TIMEDOUT),
                Err(e) => Err(e),
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    say!("link: cannot list network interfaces ({})", e);
                    return Err(e);
                }
            };
            for m in nl::messages(reply) {
                if m.seq != seq {
                    continue;
                }
                match m.kind {
                    nl::NLMSG_DONE | nl::NLMSG_ERROR => done = true,
                    nl::RTM_NEWLINK => {
                        if let Some(l) = nl::parse_link(m.payload) {
                            if let (Some(name), true) = (Name::new(l.name), count < links.len()) {
                                links[count] = Some((l.index, l.hardware, l.flags, name, l.mac));
                                count += 1;
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        for (index, hardware, flags, name, mac) in links.into_iter().flatten() {
            self.link_changed(index, hardware, flags, name, mac);
        }
        Ok(())
    }

    fn slot(&mut self, index: u32) -> Option<usize> {
        self.interfaces
            .iter()
            .position(|i| i.as_ref().is_some_and(|i| i.index == index))
    }

    /// A link appeared or changed (RTM_NEWLINK).
    fn link_changed(
        &mut self,
        index: u32,
        hardware: u16,
        flags: u32,
        name: Name,
        mac: Option<[u8; 6]>,
    ) {
        if hardware != nl::ARPHRD_ETHER || flags & nl::IFF_LOOPBACK != 0 {
            return;
        }
        let (Some(mac), true) = (mac, self.settings.wants(name.as_bytes())) else {
            return;
        };
        let slot = match self.slot(index) {
            Some(slot) => slot,
            None => self.add_interface(index, name, mac),
        };
        if slot == usize::MAX {
            return;
        }
        let carrier = flags & nl::IFF_UP != 0 && flags & nl::IFF_LOWER_UP != 0;
        let Some(iface) = self.interfaces[slot].as_mut() else {
            return;
        };
        if carrier == iface.carrier {
            return;
        }
        iface.carrier = carrier;
        let step = if carrier {
            say!("link: {}: carrier up", Shown(iface.name.as_bytes()));
            if self.settings.ipv4_static.is_some() {
                return;
            }
            iface.client.link_up(now_ms(), random())
        } else {
            say!("link: {}: carrier lost", Shown(iface.name.as_bytes()));
            iface.client.link_down()
        };
        self.handle(slot, step);
    }

    /// Takes a slot for a new interface, sets it up, applies static settings. Returns
    /// `usize::MAX` (no slot) when full.
    fn add_interface(&mut self, index: u32, name: Name, mac: [u8; 6]) -> usize {
        let Some(slot) = self.interfaces.iter().position(Option::is_none) else {
            say!(
                "link: {}: ignored, already handling {} interfaces",
                Shown(name.as_bytes()),
                INTERFACES_MAX
            );
            return usize::MAX;
        };
        self.interfaces[slot] = Some(Interface {
            index,
            name,
            mac,
            carrier: false,
            packet: None,
            udp: None,
            client: Client::new(),
            applied: None,
            last_ipv6: [0; 16],
        });
        let seq = self.next_seq();
        match self.request(nl::set_up(seq, index)) {
            Ok(()) => say!(
                "link: {}: up (MAC {}), IPv4 by {}, IPv6 by the kernel (SLAAC)",
                Shown(name.as_bytes()),
                Mac(mac),
                if self.settings.ipv4_static.is_some() {
                    "static settings"
                } else {
                    "DHCP"
                }
            ),
            Err(e) => say!("link: {}: cannot set it up ({})", Shown(name.as_bytes()), e),
        }
        if let Some(st) = self.settings.ipv4_static {
            self.apply_static(index, name, &st);
        }
        slot
    }

    fn apply_static(&mut self, index: u32, name: Name, st: &network::Static) {
        let seq = self.next_seq();
        let a = Address {
            index,
            ip: &st.address,
            prefix: st.prefix,
        };
        if let Err(e) = self.request(nl::add_address(seq, &a, None)) {
            say!(
                "link: {}: cannot add {}/{} ({})",
                Shown(name.as_bytes()),
                Ip4(st.address),
                st.prefix,
                e
            );
            return;
        }
        if let Some(gw) = st.gateway {
            let seq = self.next_seq();
            let onlink = !nl::same_subnet(st.address, st.prefix, gw);
            if let Err(e) = self.request(nl::default_route(
                seq,
                true,
                index,
                gw,
                nl::RTPROT_STATIC,
                onlink,
            )) {
                say!(
                    "link: {}: cannot add the default route via {} ({})",
                    Shown(name.as_bytes()),
                    Ip4(gw),
                    e
                );
            }
        }
        let mut line: Text<200> = Text::new();
        let _ = write!(
            line,
            "link: {}: static {}/{}",
            Shown(name.as_bytes()),
            Ip4(st.address),
            st.prefix
        );
        describe_extras(&mut line, st.gateway, &st.dns[..st.dns_count]);
        say!("{}", Shown(line.as_bytes()));
    }

    /// Carries out what the DHCP client asked for.
    fn handle(&mut self, slot: usize, step: Step) {
        if let Some(event) = step.event {
            self.apply_event(slot, event);
        }
        if let Some(t) = step.transmit {
            self.transmit(slot, &t);
        }
    }

    fn apply_event(&mut self, slot: usize, event: Event) {
        let Some(iface) = self.interfaces[slot].as_ref() else {
            return;
        };
        let name = iface.name;
        let shown = Shown(name.as_bytes());
        // Configure first, log after: a line on the console means the change is in place.
        match event {
            Event::Bound { lease, .. } => self.apply_lease(slot, &lease),
            Event::Renewed { lease, previous } => {
                if previous.address != lease.address {
                    self.remove_lease(slot, &previous);
                }
                self.apply_lease(slot, &lease);
            }
            Event::Lost { lease, .. } => self.remove_lease(slot, &lease),
            Event::Refused => {}
        }
        self.write_resolv_conf();
        match event {
            Event::Bound { lease, after_ms } => {
                let mut line: Text<200> = Text::new();
                let _ = write!(
                    line,
                    "link: {}: lease {}/{}",
                    shown,
                    Ip4(lease.address),
                    lease.prefix
                );
                describe_extras(&mut line, lease.router, lease.dns());
                let _ = write!(
                    line,
                    " from {} for {}, bound after {}.{:03} s",
                    Ip4(lease.server),
                    Seconds(lease.lease_s),
                    after_ms / 1000,
                    after_ms % 1000
                );
                say!("{}", Shown(line.as_bytes()));
            }
            Event::Renewed { lease, .. } => {
                say!(
                    "link: {}: lease {}/{} renewed for {}",
                    shown,
                    Ip4(lease.address),
                    lease.prefix,
                    Seconds(lease.lease_s)
                );
            }
            Event::Lost { lease, why } => {
                let why = match why {
                    Loss::Expired => "expired without renewal",
                    Loss::Nak => "refused by the server",
                    Loss::LinkDown => "carrier lost",
                };
                say!(
                    "link: {}: lease {}/{} lost ({}); searching again",
                    shown,
                    Ip4(lease.address),
                    lease.prefix,
                    why
                );
            }
            Event::Refused => say!(
                "link: {}: the server refused our request; searching again",
                shown
            ),
        }
    }

    fn apply_lease(&mut self, slot: usize, lease: &Lease) {
        let Some(iface) = self.interfaces[slot].as_ref() else {
            return;
        };
        let (index, name) = (iface.index, iface.name);
        let seq = self.next_seq();
        let a = Address {
            index,
            ip: &lease.address,
            prefix: lease.prefix,
        };
        let lifetime = (lease.lease_s != u32::MAX).then_some(lease.lease_s);
        if let Err(e) = self.request(nl::add_address(seq, &a, lifetime)) {
            say!(
                "link: {}: cannot add {}/{} ({})",
                Shown(name.as_bytes()),
                Ip4(lease.address),
                lease.prefix,
                e
            );
        }
        if let Some(gw) = lease.router {
            let seq = self.next_seq();
            let onlink = !nl::same_subnet(lease.address, lease.prefix, gw);
            if let Err(e) = self.request(nl::default_route(
                seq,
                true,
                index,
                gw,
                nl::RTPROT_DHCP,
                onlink,
            )) {
                say!(
                    "link: {}: cannot add the default route via {} ({})",
                    Shown(name.as_bytes()),
                    Ip4(gw),
                    e
                );
            }
        }
        let Some(iface) = self.interfaces[slot].as_mut() else {
            return;
        };
        if iface.applied.map(|l| l.address) != Some(lease.address) || iface.udp.is_none() {
            iface.udp = sys::udp_socket(lease.address).ok();
        }
        if iface.udp.is_some() {
            iface.packet = None; // renewals go through the UDP socket
        }
        iface.applied = Some(*lease);
    }

    fn remove_lease(&mut self, slot: usize, lease: &Lease) {
        let Some(iface) = self.interfaces[slot].as_mut() else {
            return;
        };
        let index = iface.index;
        iface.udp = None;
        iface.applied = None;
        if let Some(gw) = lease.router {
            let seq = self.next_seq();
            let _ = self.request(nl::default_route(
                seq,
                false,
                index,
                gw,
                nl::RTPROT_DHCP,
                false,
            ));
        }
        let seq = self.next_seq();
        let a = Address {
            index,
            ip: &lease.address,
            prefix: lease.prefix,
        };
        // Already gone if the kernel expired it or the device went away.
        let _ = self.request(nl::remove_address(seq, &a));
    }

    fn transmit(&mut self, slot: usize, t: &Transmit) {
        let Some(iface) = self.interfaces[slot].as_mut() else {
            return;
        };
        // The packet socket sees every IPv4 packet on the link, so it is open only while a
        // broadcast exchange needs it (no address yet, or rebinding).
        let broadcast = t.unicast_to.is_none() || iface.udp.is_none();
        if broadcast && iface.packet.is_none() {
            match sys::packet_socket(iface.index) {
                Ok(fd) => iface.packet = Some(fd),
                Err(e) => {
                    say!(
                        "link: {}: cannot open a packet socket for DHCP ({})",
                        Shown(iface.name.as_bytes()),
                        e
                    );
                    return;
                }
            }
        }
        let iface = &*iface;
        let request = dhcp::Request {
            kind: t.kind,
            xid: t.xid,
            mac: iface.mac,
            secs: t.secs,
            ciaddr: t.ciaddr,
            requested_ip: t.requested_ip,
            server_id: t.server_id,
            hostname: self.hostname.as_bytes(),
        };
        let mut message = [0u8; dhcp::REQUEST_BYTES_MAX];
        let len = dhcp::encode(&request, &mut message);
        let message = &message[..len];
        let result = match (t.unicast_to, &iface.udp, &iface.packet) {
            (Some(server), Some(udp), _) => sys::send_to_server(udp, server, message),
            (_, _, Some(packet)) => {
                let mut frame = [0u8; udp::HEADERS_BYTES + dhcp::REQUEST_BYTES_MAX];
                match udp::encode(
                    t.ciaddr,
                    [255; 4],
                    udp::CLIENT_PORT,
                    udp::SERVER_PORT,
                    message,
                    &mut frame,
                ) {
                    Some(n) => {
                        sys::send_link(packet, &LinkAddr::new(iface.index, [0xff; 6]), &frame[..n])
                    }
                    None => Err(Errno::MSGSIZE),
                }
            }
            _ => Err(Errno::NOTCONN),
        };
        if let Err(e) = result {
            // Retransmission will try again; say so once per kind of failure.
            say!(
                "link: {}: cannot send a DHCP message ({})",
                Shown(iface.name.as_bytes()),
                e
            );
        }
    }

    /// DNS servers (static settings first, then every lease's) or, with `ntp`, the time
    /// servers of every lease; at most three, no repeats.
    fn servers(&self, ntp: bool) -> ([[u8; 4]; network::DNS_MAX], usize) {
        let mut servers: [[u8; 4]; network::DNS_MAX] = [[0; 4]; network::DNS_MAX];
        let mut count = 0;
        let mut add = |s: &[u8; 4]| {
            if count < servers.len() && !servers[..count].contains(s) {
                servers[count] = *s;
                count += 1;
            }
        };
        if let (Some(st), false) = (&self.settings.ipv4_static, ntp) {
            st.dns[..st.dns_count].iter().for_each(&mut add);
        }
        for iface in self.interfaces.iter().flatten() {
            if let Some(lease) = &iface.applied {
                let list = if ntp { lease.ntp() } else { lease.dns() };
                list.iter().for_each(&mut add);
            }
        }
        (servers, count)
    }

    /// Runs `f` on the time client with what it needs to know about the network.
    fn with_time(&mut self, f: impl FnOnce(&mut time::TimeSync, &time::Network<'_>)) {
        let (resolvers, resolver_count) = self.servers(false);
        let (ntp, ntp_count) = self.servers(true);
        let online = self
            .interfaces
            .iter()
            .flatten()
            .any(|i| i.applied.is_some() || (self.settings.ipv4_static.is_some() && i.carrier));
        let net = time::Network {
            online,
            resolvers: &resolvers[..resolver_count],
            dhcp_servers: &ntp[..ntp_count],
        };
        f(&mut self.time, &net);
    }

    /// Gathers DNS servers from static settings and every lease into resolv.conf.
    fn write_resolv_conf(&mut self) {
        let (servers, count) = self.servers(false);
        let mut text: Text<160> = Text::new();
        text.push(b"# Written by rustkrazy's link from DHCP or static settings.\n");
        for s in &servers[..count] {
            let _ = writeln!(text, "nameserver {}", Ip4(*s));
        }
        if text.as_bytes() == self.dns_written.as_bytes() {
            return;
        }
        match sys::replace_file(self.resolv_conf.as_bytes(), text.as_bytes()) {
            Ok(()) => self.dns_written = text,
            Err(e) => say!(
                "link: cannot write {} ({})",
                Shown(self.resolv_conf.as_bytes()),
                e
            ),
        }
    }

    fn run(&mut self, events: &OwnedFd) -> c_int {
        let mut buf = [0u8; NETLINK_BUFFER_BYTES];
        loop {
            // Timers first: they may send.
            let now = now_ms();
            let mut next = now + POLL_MS_MAX;
            for slot in 0..INTERFACES_MAX {
                let Some(iface) = self.interfaces[slot].as_mut() else {
                    continue;
                };
                if iface.client.deadline_ms().is_some_and(|d| d <= now) {
                    let step = iface.client.on_timer(now, random());
                    self.handle(slot, step);
                }
                if let Some(d) = self.interfaces[slot]
                    .as_ref()
                    .and_then(|i| i.client.deadline_ms())
                {
                    next = next.min(d);
                }
            }

            self.with_time(|time, net| {
                time.network_changed(net);
                time.on_timer(net);
            });
            next = next.min(self.time.deadline_ms());

            // Wait for netlink events, DHCP replies, the time server or the next timer.
            let mut slots: [Option<BorrowedFd<'_>>; POLL_SLOTS] = [None; POLL_SLOTS];
            slots[0] = Some(events.as_fd());
            slots[TIME_SLOT] = self.time.socket().map(|fd| fd.as_fd());
            for (slot, iface) in self.interfaces.iter().enumerate() {
                let Some(iface) = iface else { continue };
                slots[1 + 2 * slot] = iface.packet.as_ref().map(|fd| fd.as_fd());
                slots[2 + 2 * slot] = iface.udp.as_ref().map(|fd| fd.as_fd());
            }
            let wait_ms = next.saturating_sub(now_ms());
            let ready = match runtime::poll::wait_readable(&slots, Some(wait_ms)) {
                Ok(ready) => ready,
                Err(e) => {
                    say!("link: poll failed ({}); exiting so init restarts it", e);
                    return 1;
                }
            };

            if ready[0] {
                self.read_events(events, &mut buf);
            }
            if ready[TIME_SLOT] {
                self.with_time(|time, net| time.on_readable(net, &mut buf));
            }
            for slot in 0..INTERFACES_MAX {
                for socket in [1 + 2 * slot, 2 + 2 * slot] {
                    if ready[socket] {
                        self.read_dhcp(slot, socket % 2 == 1, &mut buf);
                    }
                }
            }
        }
    }

    /// Link and IPv6 address changes from the kernel.
    fn read_events(&mut self, events: &OwnedFd, buf: &mut [u8]) {
        loop {
            let data = match sys::recv(events, buf) {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(Errno::NOBUFS) => {
                    // Events were lost while we were busy: look at every link again.
                    say!("link: missed link events; listing interfaces again");
                    let _ = self.list_links();
                    return;
                }
                Err(e) => {
                    say!("link: reading link events failed ({})", e);
                    return;
                }
            };
            // Copy what is needed out of `buf` first: handling may reuse it.
            let mut changes: [Option<Change>; CHANGES_PER_DATAGRAM_MAX] =
                [None; CHANGES_PER_DATAGRAM_MAX];
            let mut count = 0;
            for m in nl::messages(data) {
                let change = match m.kind {
                    nl::RTM_NEWLINK | nl::RTM_DELLINK => nl::parse_link(m.payload).and_then(|l| {
                        Some(Change::Link {
                            gone: m.kind == nl::RTM_DELLINK,
                            index: l.index,
                            hardware: l.hardware,
                            flags: l.flags,
                            name: Name::new(l.name)?,
                            mac: l.mac,
                        })
                    }),
                    nl::RTM_NEWADDR => nl::parse_address(m.payload)
                        .filter(|a| a.family == nl::AF_INET6 && a.scope < nl::RT_SCOPE_LINK)
                        .filter(|a| a.flags & nl::IFA_F_TENTATIVE == 0)
                        .and_then(|a| {
                            Some(Change::Ipv6 {
                                index: a.index,
                                ip: a.ip.try_into().ok()?,
                                prefix: a.prefix,
                            })
                        }),
                    _ => None,
                };
                if let (Some(c), true) = (change, count < changes.len()) {
                    changes[count] = Some(c);
                    count += 1;
                }
            }
            for change in changes.into_iter().flatten() {
                match change {
                    Change::Link {
                        gone: false,
                        index,
                        hardware,
                        flags,
                        name,
                        mac,
                    } => self.link_changed(index, hardware, flags, name, mac),
                    Change::Link {
                        gone: true, index, ..
                    } => self.link_removed(index),
                    Change::Ipv6 { index, ip, prefix } => {
                        let Some(slot) = self.slot(index) else {
                            continue;
                        };
                        let Some(iface) = self.interfaces[slot].as_mut() else {
                            continue;
                        };
                        if iface.last_ipv6 != ip {
                            iface.last_ipv6 = ip;
                            say!(
                                "link: {}: IPv6 {}/{} (SLAAC)",
                                Shown(iface.name.as_bytes()),
                                Ip6(ip),
                                prefix
                            );
                        }
                    }
                }
            }
        }
    }

    fn link_removed(&mut self, index: u32) {
        let Some(slot) = self.slot(index) else { return };
        if let Some(iface) = self.interfaces[slot].take() {
            say!("link: {}: removed", Shown(iface.name.as_bytes()));
        }
        self.write_resolv_conf();
    }

    /// DHCP replies on the packet socket (`raw`) or the renewal UDP socket.
    fn read_dhcp(&mut self, slot: usize, raw: bool, buf: &mut [u8]) {
        for _ in 0..PACKETS_PER_WAKE_MAX {
            let Some(iface) = self.interfaces[slot].as_mut() else {
                return;
            };
            let fd = if raw {
                iface.packet.as_ref()
            } else {
                iface.udp.as_ref()
            };
            let Some(fd) = fd else { return };
            let data = match sys::recv(fd, &mut buf[..MTU_BYTES]) {
                Ok(Some(d)) => d,
                Ok(None) | Err(_) => return,
            };
            let payload = if raw {
                match udp::decode(data) {
                    Some(d) if d.dst_port == udp::CLIENT_PORT && d.src_port == udp::SERVER_PORT => {
                        d.payload
                    }
                    _ => continue,
                }
            } else {
                data
            };
            // Anything that is not a valid reply to our transaction is dropped silently.
            let Ok(reply) = dhcp::decode(payload, iface.client.xid(), &iface.mac) else {
                continue;
            };
            let step = iface.client.on_reply(now_ms(), random(), &reply);
            self.handle(slot, step);
        }
    }
}

#[derive(Clone, Copy)]
enum Change {
    Link {
        gone: bool,
        index: u32,
        hardware: u16,
        flags: u32,
        name: Name,
        mac: Option<[u8; 6]>,
    },
    Ipv6 {
        index: u32,
        ip: [u8; 16],
        prefix: u8,
    },
}

/// " via GW dns A, B" as applicable.
fn describe_extras(line: &mut Text<200>, gateway: Option<[u8; 4]>, dns: &[[u8; 4]]) {
    if let Some(gw) = gateway {
        let _ = write!(line, " via {}", Ip4(gw));
    }
    for (i, s) in dns.iter().enumerate() {
        let _ = write!(line, "{}{}", if i == 0 { " dns " } else { "," }, Ip4(*s));
    }
}

/// A lease time: seconds, or "ever".
struct Seconds(u32);

impl core::fmt::Display for Seconds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            u32::MAX => f.write_str("ever"),
            s => write!(f, "{} s", Decimal(u64::from(s))),
        }
    }
}
