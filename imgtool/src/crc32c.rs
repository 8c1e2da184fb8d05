//! CRC-32C (Castagnoli), in the raw form ext4 and jbd2 use: the caller passes the running
//! register and nothing is inverted on the way in or out. The standard CRC-32C of `data` is
//! `!crc32c(!0, data)`.

const POLY_REFLECTED: u32 = 0x82f6_3b78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Continues a raw CRC-32C register over `data`.
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    for &byte in data {
        crc = TABLE[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn matches_the_standard_check_value() {
        // The catalogued check value of CRC-32C over "123456789".
        assert_eq!(!crc32c(!0, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn chains_like_one_pass() {
        let whole = crc32c(!0, b"hello world");
        let parts = crc32c(crc32c(!0, b"hello "), b"world");
        assert_eq!(whole, parts);
    }
}
