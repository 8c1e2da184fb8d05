//! rtnetlink by hand: the handful of requests `link` sends (link up, add/remove an address,
//! add/remove a default route, list links) built into a fixed buffer, and a bounds-checked
//! reader for what the kernel sends back (acks, link and address messages).
//!
//! Layouts are from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h> and
//! <linux/if_addr.h>; integers are in the host's byte order, as the kernel expects.

use boot::network::Name;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;

/// Multicast groups: link changes, and IPv6 addresses (to report what SLAAC configured).
pub const RTMGRP_LINK: u32 = 0x1;
pub const RTMGRP_IPV6_IFADDR: u32 = 0x100;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
/// The driver reports carrier.
pub const IFF_LOWER_UP: u32 = 0x1_0000;
pub const ARPHRD_ETHER: u16 = 1;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
pub const IFA_F_TENTATIVE: u32 = 0x40;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;

const RT_TABLE_MAIN: u8 = 254;
pub const RTPROT_STATIC: u8 = 4;
pub const RTPROT_DHCP: u8 = 16;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_HOST: u8 = 254;
/// Link-local and narrower scopes are not reported; global and site-local are.
pub const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
/// The gateway is reachable on the link even though no local prefix covers it.
const RTNH_F_ONLINK: u32 = 0x4;
/// Metric of the default routes `link` adds (the kernel's own default for IPv4 is 0; DHCP
/// clients commonly use a higher one so a static route can win).
const DEFAULT_ROUTE_METRIC: u32 = 1024;

const HEADER_BYTES: usize = 16;
const MESSAGE_BYTES_MAX: usize = 128;

/// One request, built in place.
pub struct Request {
    buf: [u8; MESSAGE_BYTES_MAX],
    len: usize,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Request {
    fn new(kind: u16, flags: u16, seq: u32) -> Request {
        let mut r = Request {
            buf: [0; MESSAGE_BYTES_MAX],
            len: HEADER_BYTES,
        };
        r.buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        r.buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        r.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        r
    }

    /// Appends raw bytes, padded to 4. Requests are built from fixed parts that fit the
    /// buffer; anything past it is dropped, and the kernel refuses the short message.
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(MESSAGE_BYTES_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len = align4(self.len + n).min(MESSAGE_BYTES_MAX);
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        let mut head = [0u8; 4];
        head[..2].copy_from_slice(&len.to_ne_bytes());
        head[2..].copy_from_slice(&kind.to_ne_bytes());
        self.push(&head);
        self.push(data);
    }

    pub fn seq(&self) -> u32 {
        u32::from_ne_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }

    /// The finished message.
    pub fn bytes(&mut self) -> &[u8] {
        let len = self.len as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        &self.buf[..self.len]
    }
}

/// struct ifinfomsg.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

/// Asks for every link (answered by a multi-part dump ending in NLMSG_DONE).
pub fn list_links(seq: u32) -> Request {
    let mut r = Request::new(RTM_GETLINK, NLM_F_DUMP, seq);
    r.push(&ifinfomsg(0, 0, 0));
    r
}

/// Sets the link administratively up.
pub fn set_up(seq: u32, index: u32) -> Request {
    let mut r = Request::new(RTM_NEWLINK, NLM_F_ACK, seq);
    r.push(&ifinfomsg(index, IFF_UP, IFF_UP));
    r
}

/// An address on an interface, IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address<'a> {
    pub index: u32,
    pub ip: &'a [u8],
    pub prefix: u8,
}

/// An acknowledged address request: struct ifaddrmsg, then the address as local and peer.
fn address_request(kind: u16, flags: u16, seq: u32, a: &Address<'_>, scope: u8) -> Request {
    let family = if a.ip.len() == 16 { AF_INET6 } else { AF_INET };
    let mut r = Request::new(kind, flags | NLM_F_ACK, seq);
    r.push(&[family, a.prefix, 0, scope]);
    r.push(&a.index.to_ne_bytes());
    r.attr(IFA_LOCAL, a.ip);
    r.attr(IFA_ADDRESS, a.ip);
    r
}

/// ::1
pub const LOOPBACK6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn is_loopback(ip: &[u8]) -> bool {
    (ip.len() == 4 && ip[0] == 127) || ip == LOOPBACK6
}

/// Adds the address, or updates it in place (so a renewal refreshes its lifetime).
/// `lifetime_s` (IPv4 leases): the kernel removes the address by itself when it runs out,
/// even if `link` is no longer there to do it. IPv4 addresses get the subnet broadcast.
pub fn add_address(seq: u32, a: &Address<'_>, lifetime_s: Option<u32>) -> Request {
    let scope = if is_loopback(a.ip) {
        RT_SCOPE_HOST
    } else {
        RT_SCOPE_UNIVERSE
    };
    let flags = NLM_F_CREATE | NLM_F_REPLACE;
    let mut r = address_request(RTM_NEWADDR, flags, seq, a, scope);
    if let Ok(ip) = <[u8; 4]>::try_from(a.ip) {
        r.attr(IFA_BROADCAST, &broadcast(ip, a.prefix));
    }
    if let Some(s) = lifetime_s {
        let mut info = [0u8; 16];
        info[0..4].copy_from_slice(&s.to_ne_bytes()); // preferred
        info[4..8].copy_from_slice(&s.to_ne_bytes()); // valid
        r.attr(IFA_CACHEINFO, &info);
    }
    r
}

pub fn remove_address(seq: u32, a: &Address<'_>) -> Request {
    address_request(RTM_DELADDR, 0, seq, a, RT_SCOPE_UNIVERSE)
}

/// The subnet's broadcast address.
pub fn broadcast(ip: [u8; 4], prefix: u8) -> [u8; 4] {
    let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    (u32::from_be_bytes(ip) | host_bits).to_be_bytes()
}

/// Whether `other` is inside `ip`/`prefix`: the two differ only in host bits.
pub fn same_subnet(ip: [u8; 4], prefix: u8, other: [u8; 4]) -> bool {
    broadcast(ip, prefix) == broadcast(other, prefix)
}

/// The IPv4 default route through `gateway` on interface `index`: added or replaced
/// (`add`), or removed. `onlink`: the gateway is outside the interface's subnet.
pub fn default_route(
    seq: u32,
    add: bool,
    index: u32,
    gateway: [u8; 4],
    protocol: u8,
    onlink: bool,
) -> Request {
    let (kind, flags) = if add {
        (RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
    } else {
        (RTM_DELROUTE, NLM_F_ACK)
    };
    let mut r = Request::new(kind, flags, seq);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    r.push(&[
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        protocol,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    let rtm_flags = if onlink { RTNH_F_ONLINK } else { 0 };
    r.push(&rtm_flags.to_ne_bytes());
    r.attr(RTA_GATEWAY, &gateway);
    r.attr(RTA_OIF, &index.to_ne_bytes());
    r.attr(RTA_PRIORITY, &DEFAULT_ROUTE_METRIC.to_ne_bytes());
    r
}

/// One message from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a datagram from a netlink socket into messages. Stops (yielding nothing more) at
/// the first header whose length does not fit: the rest of that datagram cannot be trusted.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut rest = buf;
    core::iter::from_fn(move || {
        let len = u32::from_ne_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let m = split_off(&mut rest, len, HEADER_BYTES)?;
        Some(Message {
            kind: u16::from_ne_bytes([m[4], m[5]]),
            seq: u32::from_ne_bytes([m[8], m[9], m[10], m[11]]),
            payload: &m[HEADER_BYTES..],
        })
    })
}

/// Takes the first `len` bytes (a message or an attribute, header included) off `rest`,
/// which moves past them and their padding. A length under `min` or past the end empties
/// `rest`: nothing after it can be trusted.
fn split_off<'a>(rest: &mut &'a [u8], len: usize, min: usize) -> Option<&'a [u8]> {
    let all = core::mem::take(rest);
    if len < min || len > all.len() {
        return None;
    }
    *rest = all.get(align4(len)..).unwrap_or(&[]);
    Some(&all[..len])
}

/// The errno carried by an NLMSG_ERROR payload: 0 for an acknowledgement, else positive.
pub fn error_code(payload: &[u8]) -> Option<i32> {
    let raw = i32::from_ne_bytes(payload.get(..4)?.try_into().ok()?);
    Some(raw.checked_neg().unwrap_or(i32::MAX))
}

/// Attributes (struct rtattr) after a fixed header; stops at the first malformed one.
pub fn attributes(data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = data;
    core::iter::from_fn(move || {
        let len = u16::from_ne_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let a = split_off(&mut rest, len, 4)?;
        let kind = u16::from_ne_bytes([a[2], a[3]]) & 0x3fff; // drop NESTED/BYTEORDER
        Some((kind, &a[4..]))
    })
}

/// What RTM_NEWLINK says about a link; links without a valid interface name are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub hardware: u16,
    pub flags: u32,
    pub name: Name,
    pub mac: Option<[u8; 6]>,
}

pub fn parse_link(payload: &[u8]) -> Option<Link> {
    let head = payload.get(..16)?;
    let (mut name, mut mac) = (None, None);
    for (kind, value) in attributes(&payload[16..]) {
        match kind {
            // NUL-terminated in the attribute.
            IFLA_IFNAME => name = value.split(|&b| b == 0).next().and_then(Name::new),
            IFLA_ADDRESS => mac = value.try_into().ok(),
            _ => {}
        }
    }
    Some(Link {
        hardware: u16::from_ne_bytes([head[2], head[3]]),
        index: u32::from_ne_bytes(head[4..8].try_into().ok()?),
        flags: u32::from_ne_bytes(head[8..12].try_into().ok()?),
        name: name?,
        mac,
    })
}

/// What RTM_NEWADDR says about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressInfo<'a> {
    pub family: u8,
    pub prefix: u8,
    pub scope: u8,
    pub index: u32,
    pub flags: u32,
    pub ip: &'a [u8],
}

pub fn parse_address(payload: &[u8]) -> Option<AddressInfo<'_>> {
    let head = payload.get(..8)?;
    let mut info = AddressInfo {
        family: head[0],
        prefix: head[1],
        flags: u32::from(head[2]),
        scope: head[3],
        index: u32::from_ne_bytes(head[4..8].try_into().ok()?),
        ip: &[],
    };
    let want = if info.family == AF_INET6 { 16 } else { 4 };
    for (kind, value) in attributes(&payload[8..]) {
        match kind {
            IFA_ADDRESS if value.len() == want => info.ip = value,
            IFA_FLAGS => {
                if let Ok(b) = value.try_into() {
                    info.flags = u32::from_ne_bytes(b);
                }
            }
            _ => {}
        }
    }
    (!info.ip.is_empty()).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_kernel_layout() {
        let mut r = set_up(7, 3);
        let b = r.bytes();
        assert_eq!(b.len(), 32);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 32);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_NEWLINK);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(b[20..24].try_into().unwrap()), 3);

        let a = Address {
            index: 2,
            ip: &[10, 0, 2, 15],
            prefix: 24,
        };
        let mut r = add_address(1, &a, Some(120));
        let b = r.bytes().to_vec();
        let attrs: Vec<(u16, Vec<u8>)> =
            attributes(&b[24..]).map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(attrs[0], (IFA_LOCAL, vec![10, 0, 2, 15]));
        assert_eq!(attrs[2], (IFA_BROADCAST, vec![10, 0, 2, 255]));
        assert_eq!(
            attrs[3].1[..8],
            [120u32.to_ne_bytes(), 120u32.to_ne_bytes()].concat()
        );
        let lo = Address {
            index: 1,
            ip: &LOOPBACK6,
            prefix: 128,
        };
        let mut r = add_address(2, &lo, None);
        assert_eq!(r.bytes()[16..20], [AF_INET6, 128, 0, RT_SCOPE_HOST]);
    }

    #[test]
    fn subnet_arithmetic() {
        assert_eq!(broadcast([192, 168, 7, 9], 24), [192, 168, 7, 255]);
        assert_eq!(broadcast([10, 1, 2, 3], 8), [10, 255, 255, 255]);
        assert_eq!(broadcast([10, 1, 2, 3], 32), [10, 1, 2, 3]);
        assert!(same_subnet([10, 0, 2, 15], 24, [10, 0, 2, 2]));
        assert!(!same_subnet([10, 0, 2, 15], 24, [10, 0, 3, 2]));
    }

    /// A link message as the kernel sends it.
    fn newlink(name: &[u8], flags: u32) -> Vec<u8> {
        let mut body = ifinfomsg(2, flags, 0).to_vec();
        body[2..4].copy_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        let mut name_z = name.to_vec();
        name_z.push(0);
        for (kind, value) in [
            (IFLA_IFNAME, name_z),
            (IFLA_ADDRESS, vec![2, 0, 0, 0, 0, 1]),
        ] {
            body.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(&value);
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
        }
        let mut msg = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
        msg.extend_from_slice(&[0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn reads_links_and_survives_garbage() {
        let mut two = newlink(b"eth0", IFF_UP | IFF_LOWER_UP);
        two.extend(newlink(b"enp1s0", IFF_UP));
        let names: Vec<Vec<u8>> = messages(&two)
            .filter_map(|m| parse_link(m.payload).map(|l| l.name.as_bytes().to_vec()))
            .collect();
        assert_eq!(names, vec![b"eth0".to_vec(), b"enp1s0".to_vec()]);
        let link = parse_link(messages(&two).next().unwrap().payload).unwrap();
        assert_eq!(link.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(link.flags & IFF_LOWER_UP, IFF_LOWER_UP);

        // Every truncation and every single-byte corruption parses or is rejected, never
        // panics, and never yields a slice outside the buffer.
        for cut in 0..two.len() {
            for m in messages(&two[..cut]) {
                let _ = parse_link(m.payload);
                let _ = parse_address(m.payload);
                let _ = error_code(m.payload);
            }
        }
        for at in 0..two.len() {
            for value in [0u8, 1, 3, 0x7f, 0xff] {
                let mut bad = two.clone();
                bad[at] = value;
                for m in messages(&bad) {
                    let _ = parse_link(m.payload);
                    let _ = parse_address(m.payload);
                }
            }
        }
    }

    #[test]
    fn error_codes() {
        assert_eq!(error_code(&0i32.to_ne_bytes()), Some(0));
        assert_eq!(error_code(&(-17i32).to_ne_bytes()), Some(17));
        assert_eq!(error_code(&i32::MIN.to_ne_bytes()), Some(i32::MAX));
        assert_eq!(error_code(&[1, 2]), None);
    }
}
