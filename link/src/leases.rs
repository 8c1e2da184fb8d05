//! The DHCPv4 clients' side effects: what a client's step asks for (a lease applied or
//! removed, a message sent) and the replies it is fed, on the packet socket while it has no
//! address and on a UDP socket bound to the lease after.

use crate::kernel::Ipv4Config;
use crate::sys::{self, now_ms, random, LinkAddr};
use crate::{Link, MTU_BYTES, PACKETS_PER_WAKE_MAX};
use link::client::{Event, Lease, Loss, Step, Transmit};
use link::netlink as nl;
use link::show::{Extras, Ip4, LeaseTime, Shown};
use link::{dhcp, udp};
use runtime::say;
use rustix::io::Errno;

/// A lease as an address on the interface: it lives as long as the lease.
fn lease_config(lease: &Lease) -> Ipv4Config {
    Ipv4Config {
        address: lease.address,
        prefix: lease.prefix,
        lifetime_s: (lease.lease_s != u32::MAX).then_some(lease.lease_s),
        gateway: lease.router,
        protocol: nl::RTPROT_DHCP,
    }
}

impl Link {
    /// Carries out what the DHCP client asked for.
    pub(crate) fn handle(&mut self, slot: usize, step: Step) {
        if let Some(event) = step.event {
            self.apply_event(slot, event);
        }
        if let Some(t) = step.transmit {
            self.transmit(slot, &t);
        }
    }

    fn apply_event(&mut self, slot: usize, event: Event) {
        let Some(iface) = self.interfaces.get(slot) else {
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
                let extras = Extras {
                    gateway: lease.router,
                    dns: lease.dns(),
                };
                say!(
                    "link: {}: lease {}/{}{} from {} for {}, bound after {}.{:03} s",
                    shown,
                    Ip4(lease.address),
                    lease.prefix,
                    extras,
                    Ip4(lease.server),
                    LeaseTime(lease.lease_s),
                    after_ms / 1000,
                    after_ms % 1000
                );
            }
            Event::Renewed { lease, .. } => {
                say!(
                    "link: {}: lease {}/{} renewed for {}",
                    shown,
                    Ip4(lease.address),
                    lease.prefix,
                    LeaseTime(lease.lease_s)
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
        let Some(iface) = self.interfaces.get(slot) else {
            return;
        };
        let (index, name) = (iface.index, iface.name);
        self.add_ipv4(index, name, &lease_config(lease));
        let Some(iface) = self.interfaces.get_mut(slot) else {
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
        let Some(iface) = self.interfaces.get_mut(slot) else {
            return;
        };
        let index = iface.index;
        iface.udp = None;
        iface.applied = None;
        self.remove_ipv4(index, &lease_config(lease));
    }

    fn transmit(&mut self, slot: usize, t: &Transmit) {
        let Some(iface) = self.interfaces.get_mut(slot) else {
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
            // Retransmission tries again, backing off to 64 s apart, so a lasting failure
            // writes about one line a minute.
            say!(
                "link: {}: cannot send a DHCP message ({})",
                Shown(iface.name.as_bytes()),
                e
            );
        }
    }

    /// DHCP replies on the packet socket (`raw`) or the renewal UDP socket.
    pub(crate) fn read_dhcp(&mut self, slot: usize, raw: bool, buf: &mut [u8]) {
        for _ in 0..PACKETS_PER_WAKE_MAX {
            let Some(iface) = self.interfaces.get_mut(slot) else {
                return;
            };
            let Some(fd) = (if raw { &iface.packet } else { &iface.udp }) else {
                return;
            };
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
