//! The one DNS exchange link makes (RFC 1035): an `A` query for a time server's name, sent
//! over UDP to a server from resolv.conf, and the IPv4 addresses of its answer. No
//! caching, no TCP fallback, no IPv6, no search domains: names are taken as absolute.

/// Header, the longest name, type and class.
pub const QUERY_BYTES_MAX: usize = 12 + 255 + 4;
/// UDP port of DNS servers.
pub const SERVER_PORT: u16 = 53;
/// Addresses taken from one answer.
pub const ADDRESSES_MAX: usize = 4;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const FLAG_RESPONSE: u8 = 0x80;
const FLAG_RECURSION_DESIRED: u8 = 0x01;
/// Labels in one name (a 255-byte name holds at most 127).
const LABELS_MAX: usize = 128;

/// Encodes an `A` query for `name` with transaction `id`; `None` for an invalid name.
pub fn query(id: u16, name: &[u8], out: &mut [u8; QUERY_BYTES_MAX]) -> Option<usize> {
    if !boot::network::valid_host_name(name) {
        return None;
    }
    let name = name.strip_suffix(b".").unwrap_or(name);
    out[..12].fill(0);
    out[0..2].copy_from_slice(&id.to_be_bytes());
    out[2] = FLAG_RECURSION_DESIRED;
    out[5] = 1; // one question
    let mut at = 12;
    for label in name.split(|&b| b == b'.') {
        out[at] = label.len() as u8;
        out[at + 1..at + 1 + label.len()].copy_from_slice(label);
        at += 1 + label.len();
    }
    out[at] = 0;
    out[at + 1..at + 3].copy_from_slice(&TYPE_A.to_be_bytes());
    out[at + 3..at + 5].copy_from_slice(&CLASS_IN.to_be_bytes());
    Some(at + 5)
}

/// Why an answer gave no address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Not a response to our query id.
    NotOurs,
    /// The server reported an error (RCODE; 3 = no such name).
    Refused(u8),
    /// The message ends early or points outside itself.
    Malformed,
    /// A well-formed answer without any `A` record.
    NoAddress,
}

/// The IPv4 addresses (at most [`ADDRESSES_MAX`]) in the answer to query `id`.
pub fn addresses(message: &[u8], id: u16) -> Result<([[u8; 4]; ADDRESSES_MAX], usize), Failure> {
    if message.len() < 12 {
        return Err(Failure::Malformed);
    }
    if message[0..2] != id.to_be_bytes() || message[2] & FLAG_RESPONSE == 0 {
        return Err(Failure::NotOurs);
    }
    let rcode = message[3] & 0x0f;
    if rcode != 0 {
        return Err(Failure::Refused(rcode));
    }
    let count = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]) as usize;
    let (questions, answers) = (count(4), count(6));
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    let mut found = [[0u8; 4]; ADDRESSES_MAX];
    let mut n = 0;
    for _ in 0..answers {
        at = skip_name(message, at)?;
        let fixed = message.get(at..at + 10).ok_or(Failure::Malformed)?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let data = message
            .get(at + 10..at + 10 + len)
            .ok_or(Failure::Malformed)?;
        // Other records (the CNAMEs that lead to the A records) are skipped.
        if kind == TYPE_A && class == CLASS_IN && len == 4 && n < ADDRESSES_MAX {
            found[n] = [data[0], data[1], data[2], data[3]];
            n += 1;
        }
        at += 10 + len;
    }
    // A truncated answer (TC) is used as far as it goes.
    if n == 0 {
        return Err(Failure::NoAddress);
    }
    Ok((found, n))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Result<usize, Failure> {
    // Each step moves forward past a label, and a message has at most 255 of them.
    for _ in 0..LABELS_MAX {
        let len = *message.get(at).ok_or(Failure::Malformed)?;
        match len {
            0 => return Ok(at + 1),
            // A pointer ends the name where it stands; where it points is not our concern.
            0xc0..=0xff => {
                message.get(at + 1).ok_or(Failure::Malformed)?;
                return Ok(at + 2);
            }
            1..=63 => at += 1 + len as usize,
            _ => return Err(Failure::Malformed),
        }
    }
    Err(Failure::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const TYPE_CNAME: u16 = 5;

    fn answer(id: u16, records: &[(u16, &[u8])]) -> Vec<u8> {
        let mut q = [0u8; QUERY_BYTES_MAX];
        let n = query(id, b"pool.ntp.org", &mut q).unwrap();
        let mut m = q[..n].to_vec();
        m[2] = FLAG_RESPONSE | FLAG_RECURSION_DESIRED;
        m[3] = 0x80;
        m[7] = records.len() as u8;
        for (kind, data) in records {
            m.extend_from_slice(&[0xc0, 12]); // pointer to the question's name
            m.extend_from_slice(&kind.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&300u32.to_be_bytes());
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        }
        m
    }

    #[test]
    fn query_layout() {
        let mut q = [0u8; QUERY_BYTES_MAX];
        let n = query(0xbeef, b"ntp.org.", &mut q).unwrap();
        assert_eq!(
            &q[..n],
            b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03ntp\x03org\x00\x00\x01\x00\x01"
        );
        assert_eq!(query(1, b"bad name", &mut q), None);
    }

    #[test]
    fn takes_a_records_after_a_cname() {
        let m = answer(
            7,
            &[
                (TYPE_CNAME, b"\x03foo\xc0\x0c"),
                (TYPE_A, &[10, 77, 0, 1]),
                (TYPE_A, &[10, 77, 0, 2]),
            ],
        );
        let (found, n) = addresses(&m, 7).unwrap();
        assert_eq!(&found[..n], &[[10, 77, 0, 1], [10, 77, 0, 2]]);
    }

    #[test]
    fn refuses_others_errors_and_garbage() {
        let m = answer(7, &[(TYPE_A, &[1, 2, 3, 4])]);
        assert_eq!(addresses(&m, 8), Err(Failure::NotOurs));
        let mut q = m.clone();
        q[2] &= !FLAG_RESPONSE;
        assert_eq!(addresses(&q, 7), Err(Failure::NotOurs));
        let mut nx = m.clone();
        nx[3] |= 3;
        assert_eq!(addresses(&nx, 7), Err(Failure::Refused(3)));
        assert_eq!(addresses(&answer(7, &[]), 7), Err(Failure::NoAddress));
        assert_eq!(
            addresses(&answer(7, &[(TYPE_A, &[1, 2, 3])]), 7),
            Err(Failure::NoAddress)
        );
        for cut in 0..m.len() {
            assert!(addresses(&m[..cut], 7).is_err(), "cut at {cut}");
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..300 {
            let mut junk: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            if junk.len() >= 4 {
                junk[0..2].copy_from_slice(&7u16.to_be_bytes());
                junk[2] |= FLAG_RESPONSE;
                junk[3] &= 0xf0;
            }
            let _ = addresses(&junk, 7); // must not panic
        }
    }
}
