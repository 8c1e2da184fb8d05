//! IPv4 + UDP framing for DHCP over a packet socket: before an interface has an address the
//! kernel's UDP stack cannot send from 0.0.0.0 or be relied on to deliver broadcasts, so
//! `link` builds and reads the IP and UDP headers itself.

pub const CLIENT_PORT: u16 = 68;
pub const SERVER_PORT: u16 = 67;
const IP_HEADER_BYTES: usize = 20;
const UDP_HEADER_BYTES: usize = 8;
pub const HEADERS_BYTES: usize = IP_HEADER_BYTES + UDP_HEADER_BYTES;
const PROTO_UDP: u8 = 17;

/// The Internet checksum (RFC 1071) of `data`, continuing from `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut pairs = data.chunks_exact(2);
    for p in &mut pairs {
        sum += u32::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes IP and UDP headers and `payload` into `out`; returns the datagram's length, or
/// `None` if `out` is too small.
pub fn encode(
    src: [u8; 4],
    dst: [u8; 4],
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let total = HEADERS_BYTES + payload.len();
    let out = out.get_mut(..total)?;
    let total16 = u16::try_from(total).ok()?;
    let ip = &mut out[..IP_HEADER_BYTES];
    ip.fill(0);
    ip[0] = 0x45; // version 4, 5 words of header
    ip[2..4].copy_from_slice(&total16.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = PROTO_UDP;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let check = fold(sum16(0, ip));
    ip[10..12].copy_from_slice(&check.to_be_bytes());

    let udp_len = (UDP_HEADER_BYTES + payload.len()) as u16;
    out[20..22].copy_from_slice(&src_port.to_be_bytes());
    out[22..24].copy_from_slice(&dst_port.to_be_bytes());
    out[24..26].copy_from_slice(&udp_len.to_be_bytes());
    out[26..28].fill(0);
    out[HEADERS_BYTES..].copy_from_slice(payload);
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&src);
    pseudo[4..8].copy_from_slice(&dst);
    pseudo[9] = PROTO_UDP;
    pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
    let check = match fold(sum16(sum16(0, &pseudo), &out[20..])) {
        0 => 0xffff, // 0 means "no checksum" in UDP
        c => c,
    };
    out[26..28].copy_from_slice(&check.to_be_bytes());
    Some(total)
}

/// A UDP datagram received inside an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// Reads an IPv4 packet carrying UDP. `None` for anything else or anything malformed:
/// fragments, bad IP header checksum, lengths that disagree with the packet.
///
/// The UDP checksum is not checked: packets a packet socket sees on virtual links (veth,
/// virtio with offload) often carry a partial checksum the hardware never completed.
pub fn decode(packet: &[u8]) -> Option<Datagram<'_>> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < IP_HEADER_BYTES {
        return None;
    }
    let header = packet.get(..ihl)?;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let fragment = u16::from_be_bytes([header[6], header[7]]) & 0x3fff; // MF + offset
    if header[9] != PROTO_UDP || fragment != 0 || total < ihl + UDP_HEADER_BYTES {
        return None;
    }
    if fold(sum16(0, header)) != 0 {
        return None;
    }
    let udp = packet.get(ihl..total)?;
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < UDP_HEADER_BYTES || udp_len > udp.len() {
        return None;
    }
    Some(Datagram {
        src: header[12..16].try_into().ok()?,
        dst: header[16..20].try_into().ok()?,
        src_port: u16::from_be_bytes([udp[0], udp[1]]),
        dst_port: u16::from_be_bytes([udp[2], udp[3]]),
        payload: &udp[UDP_HEADER_BYTES..udp_len],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_valid_checksums() {
        let mut out = [0u8; 600];
        let n = encode(
            [0; 4],
            [255; 4],
            CLIENT_PORT,
            SERVER_PORT,
            b"hello dhcp",
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 38);
        let d = decode(&out[..n]).unwrap();
        assert_eq!((d.src, d.dst), ([0; 4], [255; 4]));
        assert_eq!((d.src_port, d.dst_port), (68, 67));
        assert_eq!(d.payload, b"hello dhcp");
        // The UDP checksum verifies over the pseudo-header: summing everything gives 0.
        let mut pseudo = vec![0, 0, 0, 0, 255, 255, 255, 255, 0, 17];
        pseudo.extend_from_slice(&((n - 20) as u16).to_be_bytes());
        pseudo.extend_from_slice(&out[20..n]);
        assert_eq!(fold(sum16(0, &pseudo)), 0);
        assert!(encode([0; 4], [255; 4], 68, 67, &[0; 600], &mut out).is_none());
    }

    #[test]
    fn rejects_malformed_packets() {
        let mut out = [0u8; 100];
        let n = encode([10, 0, 2, 2], [255; 4], 67, 68, b"offer", &mut out).unwrap();
        let good = out[..n].to_vec();
        for cut in 0..n {
            assert!(decode(&good[..cut]).is_none(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[12] ^= 1; // source address changed: IP checksum fails
        assert!(decode(&bad).is_none());
        let mut frag = good.clone();
        frag[6] = 0x20; // more fragments
        assert!(decode(&frag).is_none());
        let mut long_udp = good.clone();
        long_udp[25] += 1; // UDP length past the packet
        assert!(decode(&long_udp).is_none());
        for at in 0..n {
            let mut b = good.clone();
            b[at] = 0xff;
            let _ = decode(&b);
        }
        // Trailing Ethernet padding after the IP packet is ignored.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(decode(&padded).unwrap().payload, b"offer");
    }
}
