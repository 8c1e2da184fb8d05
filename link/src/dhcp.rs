//! DHCPv4 messages (RFC 2131) with the options a client needs (RFC 2132): requests are
//! encoded into a fixed buffer, replies are decoded with every length checked, so garbage
//! from the network is rejected, never trusted and never a panic.
//!
//! Not supported: option overload (52) into `sname`/`file`, relay agents, BOOTP-only
//! servers (replies without a message type option are rejected).

/// Where each field of the fixed BOOTP header lies (RFC 2131 figure 1).
mod field {
    use core::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    /// The broadcast flag is the top bit of `flags` (bytes 10..12).
    pub const FLAGS_HIGH: usize = 10;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    /// `chaddr` is 16 bytes; an Ethernet address fills the first 6.
    pub const CHADDR_MAC: Range<usize> = 28..34;
    pub const MAGIC_COOKIE: Range<usize> = 236..240;
    /// Options follow the header and cookie.
    pub const OPTIONS: usize = 240;
}

/// Fixed BOOTP header before the options, including the magic cookie.
const HEADER_BYTES: usize = field::OPTIONS;
/// An Ethernet address's length (`hlen`).
const HLEN_ETHERNET: u8 = 6;
const FLAG_BROADCAST: u8 = 0x80;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Largest request we build (the minimum every DHCP server must accept is 576 bytes of IP).
pub const REQUEST_BYTES_MAX: usize = 548;
/// Most DNS servers kept from one reply.
pub const DNS_SERVERS_MAX: usize = 3;
/// Time servers kept from a lease.
pub const NTP_SERVERS_MAX: usize = 3;
/// Longest hostname sent (option length is one byte; keep it DNS-label sized).
pub const HOSTNAME_BYTES_MAX: usize = 63;
/// What `encode` writes at most: the header, message type 3, requested address 6, server 6,
/// hostname 2 + its most, parameter list 2 + 7, end 1.
const REQUEST_WRITTEN_MAX: usize = HEADER_BYTES + 3 + 6 + 6 + 2 + HOSTNAME_BYTES_MAX + 2 + 7 + 1;
const _: () = assert!(REQUEST_WRITTEN_MAX <= REQUEST_BYTES_MAX);

const OP_REQUEST: u8 = 1;
const OP_REPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;

const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_HOSTNAME: u8 = 12;
const OPT_NTP: u8 = 42;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMETER_LIST: u8 = 55;
const OPT_RENEWAL_TIME: u8 = 58;
const OPT_REBINDING_TIME: u8 = 59;
const OPT_END: u8 = 255;

/// DHCP message types (option 53).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
}

impl MessageType {
    fn from_byte(b: u8) -> Option<MessageType> {
        use MessageType::*;
        [Discover, Offer, Request, Decline, Ack, Nak, Release]
            .into_iter()
            .find(|t| *t as u8 == b)
    }
}

pub type Ipv4 = [u8; 4];

/// What a client sends.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub kind: MessageType,
    pub xid: u32,
    pub mac: [u8; 6],
    /// Seconds since the client began (the `secs` field).
    pub secs: u16,
    /// Our address when renewing (unicast to the server); zero otherwise.
    pub ciaddr: Ipv4,
    /// Option 50: the address asked for (REQUEST after an OFFER).
    pub requested_ip: Option<Ipv4>,
    /// Option 54: the server chosen (REQUEST after an OFFER).
    pub server_id: Option<Ipv4>,
    /// Option 12; longer names are cut to [`HOSTNAME_BYTES_MAX`].
    pub hostname: &'a [u8],
}

/// Encodes `req`; returns the number of bytes of `out` to send.
pub fn encode(req: &Request<'_>, out: &mut [u8; REQUEST_BYTES_MAX]) -> usize {
    out.fill(0);
    out[field::OP] = OP_REQUEST;
    out[field::HTYPE] = HTYPE_ETHERNET;
    out[field::HLEN] = HLEN_ETHERNET;
    out[field::XID].copy_from_slice(&req.xid.to_be_bytes());
    out[field::SECS].copy_from_slice(&req.secs.to_be_bytes());
    if req.ciaddr == [0; 4] {
        // We cannot receive unicast before we have an address.
        out[field::FLAGS_HIGH] = FLAG_BROADCAST;
    }
    out[field::CIADDR].copy_from_slice(&req.ciaddr);
    out[field::CHADDR_MAC].copy_from_slice(&req.mac);
    out[field::MAGIC_COOKIE].copy_from_slice(&MAGIC_COOKIE);
    let mut at = HEADER_BYTES;
    let mut put = |code: u8, data: &[u8]| {
        out[at] = code;
        out[at + 1] = data.len() as u8;
        out[at + 2..at + 2 + data.len()].copy_from_slice(data);
        at += 2 + data.len();
    };
    put(OPT_MESSAGE_TYPE, &[req.kind as u8]);
    if let Some(ip) = req.requested_ip {
        put(OPT_REQUESTED_IP, &ip);
    }
    if let Some(ip) = req.server_id {
        put(OPT_SERVER_ID, &ip);
    }
    let name = &req.hostname[..req.hostname.len().min(HOSTNAME_BYTES_MAX)];
    if !name.is_empty() {
        put(OPT_HOSTNAME, name);
    }
    put(
        OPT_PARAMETER_LIST,
        &[
            OPT_SUBNET_MASK,
            OPT_ROUTER,
            OPT_DNS,
            OPT_NTP,
            OPT_LEASE_TIME,
            OPT_RENEWAL_TIME,
            OPT_REBINDING_TIME,
        ],
    );
    out[at] = OPT_END;
    // Pad to the classic BOOTP minimum of 300 bytes; some servers drop shorter packets.
    (at + 1).max(300)
}

/// What a server's reply says, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub yiaddr: Ipv4,
    pub server_id: Option<Ipv4>,
    pub subnet_mask: Option<Ipv4>,
    pub router: Option<Ipv4>,
    pub dns: [Ipv4; DNS_SERVERS_MAX],
    pub dns_count: usize,
    /// Option 42: time servers.
    pub ntp: [Ipv4; NTP_SERVERS_MAX],
    pub ntp_count: usize,
    pub lease_s: Option<u32>,
    pub renewal_s: Option<u32>,
    pub rebinding_s: Option<u32>,
}

/// Why a received packet was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the fixed header and cookie.
    Truncated,
    /// Not a BOOTREPLY for Ethernet.
    NotAReply,
    /// For another transaction or another client.
    NotForUs,
    BadMagicCookie,
    /// An option runs past the end of the packet, or has the wrong length for its kind.
    BadOption {
        code: u8,
    },
    /// No option 53, or an unknown type.
    NoMessageType,
}

/// Decodes a reply to transaction `xid` from client `mac`.
pub fn decode(packet: &[u8], xid: u32, mac: &[u8; 6]) -> Result<Reply, DecodeError> {
    let header = packet.get(..HEADER_BYTES).ok_or(DecodeError::Truncated)?;
    if header[field::OP] != OP_REPLY
        || header[field::HTYPE] != HTYPE_ETHERNET
        || header[field::HLEN] != HLEN_ETHERNET
    {
        return Err(DecodeError::NotAReply);
    }
    if header[field::XID] != xid.to_be_bytes() || header[field::CHADDR_MAC] != mac[..] {
        return Err(DecodeError::NotForUs);
    }
    if header[field::MAGIC_COOKIE] != MAGIC_COOKIE {
        return Err(DecodeError::BadMagicCookie);
    }
    let y = &header[field::YIADDR];
    let mut reply = Reply {
        kind: MessageType::Nak,
        yiaddr: [y[0], y[1], y[2], y[3]],
        server_id: None,
        subnet_mask: None,
        router: None,
        dns: [[0; 4]; DNS_SERVERS_MAX],
        dns_count: 0,
        ntp: [[0; 4]; NTP_SERVERS_MAX],
        ntp_count: 0,
        lease_s: None,
        renewal_s: None,
        rebinding_s: None,
    };
    let mut kind = None;
    let mut at = HEADER_BYTES;
    while let Some(&code) = packet.get(at) {
        if code == OPT_END {
            break;
        }
        if code == OPT_PAD {
            at += 1;
            continue;
        }
        let len = *packet.get(at + 1).ok_or(DecodeError::BadOption { code })? as usize;
        let data = packet
            .get(at + 2..at + 2 + len)
            .ok_or(DecodeError::BadOption { code })?;
        if code == OPT_MESSAGE_TYPE {
            let byte = *data
                .first()
                .filter(|_| len == 1)
                .ok_or(DecodeError::BadOption { code })?;
            kind = Some(MessageType::from_byte(byte).ok_or(DecodeError::NoMessageType)?);
        } else {
            apply_option(&mut reply, code, data)?;
        }
        at += 2 + len;
    }
    reply.kind = kind.ok_or(DecodeError::NoMessageType)?;
    Ok(reply)
}

/// Takes one option (other than the message type) into `reply`; options we did not ask
/// for are skipped. Addresses of repeated options add up to the most kept.
fn apply_option(reply: &mut Reply, code: u8, data: &[u8]) -> Result<(), DecodeError> {
    let bad = DecodeError::BadOption { code };
    let ip = |data: &[u8]| -> Result<Ipv4, DecodeError> {
        data.get(..4)
            .filter(|_| data.len().is_multiple_of(4))
            .map(|d| [d[0], d[1], d[2], d[3]])
            .ok_or(bad)
    };
    let secs = |data: &[u8]| -> Result<u32, DecodeError> {
        <[u8; 4]>::try_from(data)
            .map(u32::from_be_bytes)
            .map_err(|_| bad)
    };
    let servers = |data: &[u8], list: &mut [Ipv4], count: &mut usize| {
        for (slot, server) in list.iter_mut().skip(*count).zip(data.chunks_exact(4)) {
            slot.copy_from_slice(server);
            *count += 1;
        }
    };
    match code {
        OPT_SERVER_ID => reply.server_id = Some(ip(data)?),
        OPT_SUBNET_MASK => reply.subnet_mask = Some(ip(data)?),
        OPT_ROUTER => reply.router = Some(ip(data)?), // the first router is the one used
        OPT_DNS => {
            ip(data)?;
            servers(data, &mut reply.dns, &mut reply.dns_count);
        }
        OPT_NTP => {
            ip(data)?;
            servers(data, &mut reply.ntp, &mut reply.ntp_count);
        }
        OPT_LEASE_TIME => reply.lease_s = Some(secs(data)?),
        OPT_RENEWAL_TIME => reply.renewal_s = Some(secs(data)?),
        OPT_REBINDING_TIME => reply.rebinding_s = Some(secs(data)?),
        _ => {}
    }
    Ok(())
}

/// When to renew (T1), rebind (T2) and give up (lease end), in seconds from the ACK.
/// Server values are used when consistent (T1 < T2 < lease), else RFC 2131's defaults
/// (T1 = 0.5 and T2 = 0.875 of the lease). An infinite lease (0xffffffff) is never renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    pub renew_s: u32,
    pub rebind_s: u32,
    pub expire_s: u32,
}

/// Shortest lease honoured: shorter ones would make the client busy-loop.
pub const LEASE_S_MIN: u32 = 60;

pub fn timers(reply: &Reply) -> Timers {
    let lease = reply.lease_s.unwrap_or(u32::MAX).max(LEASE_S_MIN);
    let (renew_s, rebind_s) = match (reply.renewal_s, reply.rebinding_s) {
        _ if lease == u32::MAX => (u32::MAX, u32::MAX),
        (Some(t1), Some(t2)) if 0 < t1 && t1 < t2 && t2 < lease => (t1, t2),
        _ => (lease / 2, (lease as u64 * 7 / 8) as u32),
    };
    Timers {
        renew_s,
        rebind_s,
        expire_s: lease,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// A reply as a server would send it, with `options` after the cookie.
    fn reply(xid: u32, options: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_BYTES];
        p[0] = OP_REPLY;
        p[1] = HTYPE_ETHERNET;
        p[2] = 6;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p[28..34].copy_from_slice(&MAC);
        p[236..240].copy_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(options);
        p
    }

    fn ack_options() -> Vec<u8> {
        vec![
            53, 1, 5, 54, 4, 10, 0, 2, 2, 1, 4, 255, 255, 255, 0, 3, 8, 10, 0, 2, 2, 10, 0, 2, 1,
            6, 8, 10, 0, 2, 3, 1, 1, 1, 1, 51, 4, 0, 0, 0x0e, 0x10, 42, 4, 10, 0, 2, 4, 0, 255,
        ]
    }

    #[test]
    fn encodes_a_discover_servers_understand() {
        let mut out = [0u8; REQUEST_BYTES_MAX];
        let req = Request {
            kind: MessageType::Discover,
            xid: 0xdead_beef,
            mac: MAC,
            secs: 3,
            ciaddr: [0; 4],
            requested_ip: None,
            server_id: None,
            hostname: b"thermostat",
        };
        let n = encode(&req, &mut out);
        assert_eq!(n, 300);
        assert_eq!(&out[..4], &[1, 1, 6, 0]);
        assert_eq!(&out[4..8], &0xdead_beefu32.to_be_bytes());
        assert_eq!(out[10], 0x80, "broadcast flag");
        assert_eq!(&out[28..34], &MAC);
        assert_eq!(&out[236..243], &[99, 130, 83, 99, 53, 1, 1]);
        assert_eq!(&out[243..255], b"\x0c\x0athermostat");
    }

    #[test]
    fn a_request_carries_the_chosen_server_and_address() {
        let mut out = [0u8; REQUEST_BYTES_MAX];
        let req = Request {
            kind: MessageType::Request,
            xid: 1,
            mac: MAC,
            secs: 0,
            ciaddr: [0; 4],
            requested_ip: Some([10, 0, 2, 15]),
            server_id: Some([10, 0, 2, 2]),
            hostname: &[b'x'; 200],
        };
        let n = encode(&req, &mut out);
        assert_eq!(&out[240..249], &[53, 1, 3, 50, 4, 10, 0, 2, 15]);
        assert_eq!(&out[249..255], &[54, 4, 10, 0, 2, 2]);
        assert_eq!(out[256] as usize, HOSTNAME_BYTES_MAX, "hostname cut");
        assert_eq!(
            (n, out[n - 1]),
            (330, OPT_END),
            "longer than 300 bytes: no padding, END last"
        );
    }

    /// A server repeating options 6 and 42 (RFC 3396 splits long ones so) fills the lists
    /// up to their size and no further: the rest is dropped, never written past the end.
    #[test]
    fn repeated_server_lists_keep_the_first_and_never_overflow() {
        let mut options = vec![53, 1, 5];
        for _ in 0..3 {
            options.extend([6, 12, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
            options.extend([42, 8, 4, 4, 4, 4, 5, 5, 5, 5]);
        }
        options.push(255);
        let r = decode(&reply(7, &options), 7, &MAC).unwrap();
        assert_eq!(&r.dns[..r.dns_count], &[[1; 4], [2; 4], [3; 4]]);
        assert_eq!(&r.ntp[..r.ntp_count], &[[4; 4], [5; 4], [4; 4]]);
    }

    #[test]
    fn decodes_an_ack() {
        let r = decode(&reply(7, &ack_options()), 7, &MAC).unwrap();
        assert_eq!(r.kind, MessageType::Ack);
        assert_eq!(r.yiaddr, [10, 0, 2, 15]);
        assert_eq!(r.server_id, Some([10, 0, 2, 2]));
        assert_eq!(r.subnet_mask, Some([255, 255, 255, 0]));
        assert_eq!(r.router, Some([10, 0, 2, 2]));
        assert_eq!(&r.dns[..r.dns_count], &[[10, 0, 2, 3], [1, 1, 1, 1]]);
        assert_eq!(&r.ntp[..r.ntp_count], &[[10, 0, 2, 4]]);
        assert_eq!(r.lease_s, Some(3600));
        assert_eq!(
            timers(&r),
            Timers {
                renew_s: 1800,
                rebind_s: 3150,
                expire_s: 3600
            }
        );
    }

    #[test]
    fn rejects_what_is_not_ours_or_not_valid() {
        let good = reply(7, &ack_options());
        assert_eq!(decode(&good, 8, &MAC), Err(DecodeError::NotForUs));
        assert_eq!(decode(&good, 7, &[0; 6]), Err(DecodeError::NotForUs));
        assert_eq!(decode(&good[..239], 7, &MAC), Err(DecodeError::Truncated));
        let mut p = good.clone();
        p[0] = OP_REQUEST;
        assert_eq!(decode(&p, 7, &MAC), Err(DecodeError::NotAReply));
        let mut p = good.clone();
        p[239] = 0;
        assert_eq!(decode(&p, 7, &MAC), Err(DecodeError::BadMagicCookie));
        assert_eq!(
            decode(&reply(7, &[53, 1, 5, 3, 200, 1, 2]), 7, &MAC),
            Err(DecodeError::BadOption { code: 3 })
        );
        assert_eq!(
            decode(&reply(7, &[53, 1, 5, 1, 3, 255, 255, 0]), 7, &MAC),
            Err(DecodeError::BadOption { code: 1 })
        );
        assert_eq!(
            decode(&reply(7, &[53, 2, 5, 5]), 7, &MAC),
            Err(DecodeError::BadOption { code: 53 })
        );
        assert_eq!(
            decode(&reply(7, &[53, 1, 99]), 7, &MAC),
            Err(DecodeError::NoMessageType)
        );
        assert_eq!(
            decode(&reply(7, &[1, 4, 255, 255, 255, 0]), 7, &MAC),
            Err(DecodeError::NoMessageType)
        );
        assert_eq!(
            decode(&reply(7, &[53]), 7, &MAC),
            Err(DecodeError::BadOption { code: 53 })
        );
    }

    /// Every truncation and every single-byte corruption of a valid reply decodes to
    /// something or an error; none panics.
    #[test]
    fn no_input_panics() {
        let good = reply(7, &ack_options());
        for len in 0..=good.len() {
            let _ = decode(&good[..len], 7, &MAC);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 4, 53, 255] {
                let mut p = good.clone();
                p[i] = v;
                let _ = decode(&p, 7, &MAC);
            }
        }
        let mut huge = reply(7, &[53, 1, 2]);
        huge.extend(std::iter::repeat_n(0u8, 65536));
        assert_eq!(decode(&huge, 7, &MAC).unwrap().kind, MessageType::Offer);
    }

    #[test]
    fn timers_fall_back_to_the_rfc_defaults() {
        let base = decode(&reply(7, &ack_options()), 7, &MAC).unwrap();
        let with = |lease: Option<u32>, t1: Option<u32>, t2: Option<u32>| {
            let mut r = base;
            r.lease_s = lease;
            r.renewal_s = t1;
            r.rebinding_s = t2;
            timers(&r)
        };
        assert_eq!(
            with(Some(1000), Some(100), Some(900)),
            Timers {
                renew_s: 100,
                rebind_s: 900,
                expire_s: 1000
            }
        );
        assert_eq!(
            with(Some(1000), Some(900), Some(100)),
            Timers {
                renew_s: 500,
                rebind_s: 875,
                expire_s: 1000
            }
        );
        assert_eq!(with(Some(10), None, None).expire_s, LEASE_S_MIN);
        assert_eq!(with(None, None, None).renew_s, u32::MAX);
        assert_eq!(with(Some(u32::MAX), None, None).rebind_s, u32::MAX);
    }
}
