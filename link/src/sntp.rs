//! SNTP client messages (RFC 4330; NTPv4 packet of RFC 5905, client mode): one 48-byte
//! request, and the checks a reply must pass before its time is believed.
//!
//! The request's transmit timestamp is a random nonce rather than our (possibly 1970) clock:
//! the server copies it into the reply's origin timestamp, so a reply that does not carry
//! it back answers someone else, or is forged. Our own send and receive times are kept by
//! the caller. Extension fields and authentication (RFC 5905 MACs, NTS) are not supported.

/// A request and the smallest reply: the NTP header without extensions.
pub const PACKET_BYTES: usize = 48;
/// UDP port of NTP servers.
pub const SERVER_PORT: u16 = 123;

const VERSION: u8 = 4;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;
const LEAP_UNSYNCHRONISED: u8 = 3;
const STRATUM_MAX: u8 = 15;
/// Seconds from 1900 (NTP's era 0) to 1970.
const NTP_TO_UNIX_S: u64 = 2_208_988_800;

/// The request: version 4, client mode, `nonce` as the transmit timestamp.
pub fn request(nonce: u64) -> [u8; PACKET_BYTES] {
    let mut out = [0u8; PACKET_BYTES];
    out[0] = VERSION << 3 | MODE_CLIENT;
    out[40..48].copy_from_slice(&nonce.to_be_bytes());
    out
}

/// A validated reply: the time offset and round-trip delay it implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub stratum: u8,
    /// How far the server's clock is ahead of ours (add it to ours), in milliseconds.
    pub offset_ms: i64,
    /// Round trip minus the server's processing time.
    pub delay_ms: i64,
}

/// Why a reply was not believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Shorter than an NTP header.
    Truncated,
    /// Not a version 3 or 4 server-mode packet.
    NotAServerReply,
    /// The origin timestamp is not our nonce: not an answer to our request.
    NotOurs,
    /// The server says it is not synchronised itself (leap indicator 3, stratum over 15,
    /// or zero timestamps).
    Unsynchronised,
    /// Stratum 0: a kiss-o'-death with its four-letter code (`RATE`: ask less often;
    /// `DENY`, `RSTR`: stop asking this server).
    Kiss([u8; 4]),
    /// The times make no sense (negative delay beyond rounding).
    Inconsistent,
}

/// Checks `packet` against our request's `nonce`; `sent_ms` and `received_ms` are our wall
/// clock (milliseconds since 1970) when the request left and the reply arrived.
pub fn decode(
    packet: &[u8],
    nonce: u64,
    sent_ms: i64,
    received_ms: i64,
) -> Result<Reply, Rejection> {
    if packet.len() < PACKET_BYTES {
        return Err(Rejection::Truncated);
    }
    let (leap, version, mode) = (packet[0] >> 6, packet[0] >> 3 & 7, packet[0] & 7);
    if !(3..=4).contains(&version) || mode != MODE_SERVER {
        return Err(Rejection::NotAServerReply);
    }
    if timestamp(packet, 24) != nonce {
        return Err(Rejection::NotOurs);
    }
    let stratum = packet[1];
    if stratum == 0 {
        return Err(Rejection::Kiss([
            packet[12], packet[13], packet[14], packet[15],
        ]));
    }
    let (received, transmitted) = (timestamp(packet, 32), timestamp(packet, 40));
    if leap == LEAP_UNSYNCHRONISED || stratum > STRATUM_MAX || received == 0 || transmitted == 0 {
        return Err(Rejection::Unsynchronised);
    }
    let (t2, t3) = (unix_ms(received), unix_ms(transmitted));
    // RFC 4330 section 5: offset ((T2 - T1) + (T3 - T4)) / 2, delay (T4 - T1) - (T3 - T2).
    let offset_ms = ((t2 - sent_ms) + (t3 - received_ms)) / 2;
    let delay_ms = (received_ms - sent_ms) - (t3 - t2);
    if delay_ms < -1 {
        return Err(Rejection::Inconsistent);
    }
    Ok(Reply {
        stratum,
        offset_ms,
        delay_ms: delay_ms.max(0),
    })
}

fn timestamp(packet: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&packet[at..at + 8]);
    u64::from_be_bytes(bytes)
}

/// An NTP timestamp (32.32 fixed point seconds since 1900) as milliseconds since 1970.
/// Era rule of RFC 4330 section 3: with the top bit clear, the time is past 2036 (era 1).
fn unix_ms(ntp: u64) -> i64 {
    let mut seconds = ntp >> 32;
    if seconds & 0x8000_0000 == 0 {
        seconds += 1 << 32;
    }
    let fraction_ms = ((ntp & 0xffff_ffff) * 1000 + (1 << 31)) >> 32; // rounded
    (seconds - NTP_TO_UNIX_S) as i64 * 1000 + fraction_ms as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: u64 = 0x0123_4567_89ab_cdef;
    /// 2026-11-26T13:33:20Z as NTP seconds.
    const NOW_NTP_S: u64 = 1_795_700_000 + NTP_TO_UNIX_S;
    const NOW_MS: i64 = 1_795_700_000_000;

    /// A server reply: received at `t2_ms`, sent at `t3_ms` (Unix milliseconds).
    fn reply(t2_ms: i64, t3_ms: i64) -> [u8; PACKET_BYTES] {
        let ntp = |ms: i64| -> u64 {
            let s = (ms.div_euclid(1000) as u64 + NTP_TO_UNIX_S) & 0xffff_ffff;
            let frac = ((ms.rem_euclid(1000) as u64) << 32) / 1000;
            s << 32 | frac
        };
        let mut p = [0u8; PACKET_BYTES];
        p[0] = 4 << 3 | MODE_SERVER;
        p[1] = 2;
        p[12..16].copy_from_slice(&[10, 77, 0, 1]);
        p[24..32].copy_from_slice(&NONCE.to_be_bytes());
        p[32..40].copy_from_slice(&ntp(t2_ms).to_be_bytes());
        p[40..48].copy_from_slice(&ntp(t3_ms).to_be_bytes());
        p
    }

    #[test]
    fn request_is_a_v4_client_packet_carrying_the_nonce() {
        let r = request(NONCE);
        assert_eq!(r[0], 0x23);
        assert_eq!(&r[40..48], &NONCE.to_be_bytes());
        assert!(r[1..40].iter().all(|&b| b == 0));
    }

    #[test]
    fn offset_and_delay_from_a_1970_clock() {
        // Our clock reads 1970 + 5 s; the server answers 20 ms after our send on its clock.
        let (t1, t4) = (5_000, 5_050);
        let got = decode(&reply(NOW_MS + 10, NOW_MS + 30), NONCE, t1, t4).unwrap();
        assert_eq!(got.stratum, 2);
        assert_eq!(got.delay_ms, 30);
        assert_eq!(got.offset_ms, NOW_MS - 5_000 - 5);
        const {
            assert!(
                (NOW_NTP_S >> 31) & 1 == 1,
                "test time is in era 0 with the top bit set"
            )
        };
    }

    #[test]
    fn small_offsets_both_ways() {
        let ahead = decode(&reply(NOW_MS + 100, NOW_MS + 100), NONCE, NOW_MS, NOW_MS).unwrap();
        assert_eq!(ahead.offset_ms, 100);
        let behind = decode(&reply(NOW_MS - 250, NOW_MS - 250), NONCE, NOW_MS, NOW_MS).unwrap();
        assert_eq!(behind.offset_ms, -250);
    }

    #[test]
    fn era_one_after_2036() {
        // 2040-01-01T00:00:00Z: NTP seconds wrap past 2^32 in February 2036.
        let t = 2_208_988_800_000i64;
        let got = decode(&reply(t, t), NONCE, t, t).unwrap();
        assert_eq!(got.offset_ms, 0);
    }

    #[test]
    fn refuses_what_is_not_a_good_answer_to_our_request() {
        let good = reply(NOW_MS, NOW_MS);
        let check = |p: &[u8]| decode(p, NONCE, NOW_MS, NOW_MS);
        assert_eq!(check(&good[..47]), Err(Rejection::Truncated));
        assert_eq!(check(&[]), Err(Rejection::Truncated));
        let mut p = good;
        p[0] = 4 << 3 | MODE_CLIENT;
        assert_eq!(check(&p), Err(Rejection::NotAServerReply));
        p[0] = 2 << 3 | MODE_SERVER;
        assert_eq!(check(&p), Err(Rejection::NotAServerReply));
        p[0] = 4 << 3 | 5; // broadcast
        assert_eq!(check(&p), Err(Rejection::NotAServerReply));
        let mut p = good;
        p[31] ^= 1;
        assert_eq!(check(&p), Err(Rejection::NotOurs));
        let mut p = good;
        p[0] |= LEAP_UNSYNCHRONISED << 6;
        assert_eq!(check(&p), Err(Rejection::Unsynchronised));
        let mut p = good;
        p[1] = 16;
        assert_eq!(check(&p), Err(Rejection::Unsynchronised));
        let mut p = good;
        p[40..48].fill(0);
        assert_eq!(check(&p), Err(Rejection::Unsynchronised));
        // The server claims to have spent longer than our whole round trip.
        assert_eq!(
            decode(&reply(NOW_MS, NOW_MS + 5_000), NONCE, NOW_MS, NOW_MS + 10),
            Err(Rejection::Inconsistent)
        );
        // Garbage of every length is refused without a panic.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200 {
            let junk: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            assert!(check(&junk).is_err());
        }
    }

    #[test]
    fn kiss_o_death_codes() {
        for code in [*b"RATE", *b"DENY", *b"RSTR"] {
            let mut p = reply(NOW_MS, NOW_MS);
            p[1] = 0;
            p[12..16].copy_from_slice(&code);
            assert_eq!(
                decode(&p, NONCE, NOW_MS, NOW_MS),
                Err(Rejection::Kiss(code))
            );
        }
    }
}
