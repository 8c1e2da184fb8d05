//! The interfaces link handles: a fixed table, filled and emptied as the kernel reports
//! Ethernet links appearing, changing carrier and going away; static settings applied to
//! each; SLAAC addresses logged.

use crate::kernel::Ipv4Config;
use crate::sys::{self, now_ms, random};
use crate::{Link, CHANGES_PER_DATAGRAM_MAX, INTERFACES_MAX};
use boot::network::{self, Name};
use link::client::{Client, Lease};
use link::netlink as nl;
use link::show::{Extras, Ip4, Ip6, Mac, Shown};
use runtime::say;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

pub(crate) struct Interface {
    pub index: u32,
    pub name: Name,
    pub mac: [u8; 6],
    pub carrier: bool,
    pub packet: Option<OwnedFd>,
    /// Bound to the leased address, for unicast renewals.
    pub udp: Option<OwnedFd>,
    pub client: Client,
    /// The lease whose address and route are on the interface.
    pub applied: Option<Lease>,
    /// Last IPv6 global address reported, so refreshes are not logged again.
    pub last_ipv6: [u8; 16],
}

impl Link {
    pub(crate) fn slot(&self, index: u32) -> Option<usize> {
        self.interfaces.find(|i| i.index == index)
    }

    /// A link appeared or changed (RTM_NEWLINK).
    pub(crate) fn link_changed(&mut self, l: &nl::Link) {
        if l.hardware != nl::ARPHRD_ETHER || l.flags & nl::IFF_LOOPBACK != 0 {
            return;
        }
        let (Some(mac), true) = (l.mac, self.settings.wants(l.name.as_bytes())) else {
            return;
        };
        let Some(slot) = self
            .slot(l.index)
            .or_else(|| self.add_interface(l.index, l.name, mac))
        else {
            return;
        };
        let carrier = l.flags & nl::IFF_UP != 0 && l.flags & nl::IFF_LOWER_UP != 0;
        let Some(iface) = self.interfaces.get_mut(slot) else {
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

    /// Takes a slot for a new interface, sets it up, applies static settings; `None` when
    /// the table is full.
    fn add_interface(&mut self, index: u32, name: Name, mac: [u8; 6]) -> Option<usize> {
        let new = Interface {
            index,
            name,
            mac,
            carrier: false,
            packet: None,
            udp: None,
            client: Client::new(),
            applied: None,
            last_ipv6: [0; 16],
        };
        let Ok(slot) = self.interfaces.insert(new) else {
            say!(
                "link: {}: ignored, already handling {} interfaces",
                Shown(name.as_bytes()),
                INTERFACES_MAX
            );
            return None;
        };
        let seq = self.next_seq();
        match self.request(nl::set_up(seq, index)) {
            Ok(()) => say!(
                "link: {}: up (MAC {}), IPv4 by {}, IPv6 by the kernel (SLAAC)",
                Shown(name.as_bytes()),
                Mac(mac),
                self.settings
                    .ipv4_static
                    .map_or("DHCP", |_| "static settings")
            ),
            Err(e) => say!("link: {}: cannot set it up ({})", Shown(name.as_bytes()), e),
        }
        if let Some(st) = self.settings.ipv4_static {
            self.apply_static(index, name, &st);
        }
        Some(slot)
    }

    fn apply_static(&mut self, index: u32, name: Name, st: &network::Static) {
        let config = Ipv4Config {
            address: st.address,
            prefix: st.prefix,
            lifetime_s: None,
            gateway: st.gateway,
            protocol: nl::RTPROT_STATIC,
        };
        if self.add_ipv4(index, name, &config) {
            let extras = Extras {
                gateway: st.gateway,
                dns: &st.dns[..st.dns_count],
            };
            say!(
                "link: {}: static {}/{}{}",
                Shown(name.as_bytes()),
                Ip4(st.address),
                st.prefix,
                extras
            );
        }
    }

    /// Link and IPv6 address changes from the kernel.
    pub(crate) fn read_events(&mut self, events: &OwnedFd, buf: &mut [u8]) {
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
            let wanted = nl::messages(data).filter_map(|m| change_of(&m));
            for (slot, change) in changes.iter_mut().zip(wanted) {
                *slot = Some(change);
            }
            for change in changes.into_iter().flatten() {
                match change {
                    Change::Link(l) => self.link_changed(&l),
                    Change::Gone(index) => self.link_removed(index),
                    Change::Ipv6 { index, ip, prefix } => self.ipv6_seen(index, ip, prefix),
                }
            }
        }
    }

    /// An IPv6 address the kernel configured (SLAAC): said once per new address.
    fn ipv6_seen(&mut self, index: u32, ip: [u8; 16], prefix: u8) {
        let Some(iface) = self.slot(index).and_then(|s| self.interfaces.get_mut(s)) else {
            return;
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

    fn link_removed(&mut self, index: u32) {
        let Some(slot) = self.slot(index) else { return };
        if let Some(iface) = self.interfaces.remove(slot) {
            say!("link: {}: removed", Shown(iface.name.as_bytes()));
        }
        self.write_resolv_conf();
    }
}

#[derive(Clone, Copy)]
enum Change {
    Link(nl::Link),
    /// The link with this index went away.
    Gone(u32),
    Ipv6 {
        index: u32,
        ip: [u8; 16],
        prefix: u8,
    },
}

/// What one netlink message changes for us: a link added, changed or gone, or a global
/// IPv6 address settled; `None` for anything else.
fn change_of(m: &nl::Message<'_>) -> Option<Change> {
    match m.kind {
        nl::RTM_NEWLINK => nl::parse_link(m.payload).map(Change::Link),
        nl::RTM_DELLINK => nl::parse_link(m.payload).map(|l| Change::Gone(l.index)),
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
    }
}
