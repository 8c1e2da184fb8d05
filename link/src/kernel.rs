//! What link asks of the kernel over rtnetlink: one request at a time, each waited for;
//! loopback, the link dump, and an interface's IPv4 address and default route.

use crate::sys;
use crate::{Link, Name, ACK_BUFFER_BYTES, DUMPED_LINKS_MAX, NETLINK_BUFFER_BYTES};
use link::netlink::{self as nl, Address};
use link::show::{Ip4, Shown};
use runtime::say;
use rustix::io::Errno;

/// An IPv4 address to put on an interface, with what comes with it.
pub struct Ipv4Config {
    pub address: [u8; 4],
    pub prefix: u8,
    /// `None`: for ever.
    pub lifetime_s: Option<u32>,
    pub gateway: Option<[u8; 4]>,
    /// Who set the route: `nl::RTPROT_STATIC` or `nl::RTPROT_DHCP`.
    pub protocol: u8,
}

impl Link {
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and waits for its acknowledgement.
    pub(crate) fn request(&mut self, mut req: nl::Request) -> Result<(), Errno> {
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

    pub(crate) fn loopback(&mut self) {
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
    pub(crate) fn list_links(&mut self) -> Result<(), Errno> {
        // Collect the whole dump before acting on it: acting sends requests on the same
        // socket, whose acknowledgements would be read in between.
        let mut links: [Option<nl::Link>; DUMPED_LINKS_MAX] = [None; DUMPED_LINKS_MAX];
        if let Err(e) = self.dump_links(&mut links) {
            say!("link: cannot list network interfaces ({})", e);
            return Err(e);
        }
        for l in links.into_iter().flatten() {
            self.link_changed(&l);
        }
        Ok(())
    }

    /// Reads the link dump into `links`; links beyond its length are dropped.
    fn dump_links(&mut self, links: &mut [Option<nl::Link>]) -> Result<(), Errno> {
        let seq = self.next_seq();
        sys::send(&self.requests, nl::list_links(seq).bytes())?;
        let mut buf = [0u8; NETLINK_BUFFER_BYTES];
        loop {
            let reply = sys::recv(&self.requests, &mut buf)?.ok_or(Errno::TIMEDOUT)?;
            for m in nl::messages(reply).filter(|m| m.seq == seq) {
                match m.kind {
                    nl::NLMSG_DONE | nl::NLMSG_ERROR => return Ok(()),
                    nl::RTM_NEWLINK => {
                        let free = links.iter_mut().find(|slot| slot.is_none());
                        if let (Some(l), Some(slot)) = (nl::parse_link(m.payload), free) {
                            *slot = Some(l);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Puts the address and its default route on interface `index` (named `name` in what
    /// is said); false if the address could not be added.
    pub(crate) fn add_ipv4(&mut self, index: u32, name: Name, c: &Ipv4Config) -> bool {
        let seq = self.next_seq();
        let a = Address {
            index,
            ip: &c.address,
            prefix: c.prefix,
        };
        if let Err(e) = self.request(nl::add_address(seq, &a, c.lifetime_s)) {
            say!(
                "link: {}: cannot add {}/{} ({})",
                Shown(name.as_bytes()),
                Ip4(c.address),
                c.prefix,
                e
            );
            return false;
        }
        if let Some(gw) = c.gateway {
            let seq = self.next_seq();
            let onlink = !nl::same_subnet(c.address, c.prefix, gw);
            let route = nl::default_route(seq, true, index, gw, c.protocol, onlink);
            if let Err(e) = self.request(route) {
                say!(
                    "link: {}: cannot add the default route via {} ({})",
                    Shown(name.as_bytes()),
                    Ip4(gw),
                    e
                );
            }
        }
        true
    }

    /// Takes the address and its default route off interface `index` (either may be gone
    /// already: the kernel expired it or the device went away).
    pub(crate) fn remove_ipv4(&mut self, index: u32, c: &Ipv4Config) {
        if let Some(gw) = c.gateway {
            let seq = self.next_seq();
            let _ = self.request(nl::default_route(seq, false, index, gw, c.protocol, false));
        }
        let seq = self.next_seq();
        let a = Address {
            index,
            ip: &c.address,
            prefix: c.prefix,
        };
        let _ = self.request(nl::remove_address(seq, &a));
    }
}
