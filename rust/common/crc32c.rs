// SPDX-License-Identifier: GPL-2.0

//! CRC-32C (Castagnoli), the checksum of every swapfs metadata block.
//!
//! This is the reference implementation: the host tools use it directly, and
//! the module's KUnit suite checks that the kernel's accelerated `crc32c()`
//! (which the module uses on its hot paths) agrees with it bit for bit.
//!
//! Conventions match the kernel's `crc32c(seed, data, len)`: the caller
//! passes the running value (`!0` to start) and the function neither inverts
//! its input nor its output. [`checksum`] applies the usual start and final
//! inversion and gives the standard CRC-32C of a buffer.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82f6_3b78;

/// Byte-at-a-time lookup table, computed at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
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

/// Continues a CRC-32C computation over `data`, exactly like the kernel's
/// `crc32c(crc, data, len)`: no inversion on entry or exit.
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    for &byte in data {
        // Truncation intended: the low byte of the running CRC picks the entry.
        let index = (crc as u8) ^ byte;
        crc = TABLE[usize::from(index)] ^ (crc >> 8);
    }
    crc
}

/// The standard CRC-32C of `data` (initial value and final XOR `!0`).
pub fn checksum(data: &[u8]) -> u32 {
    !update(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The catalogued check value of CRC-32C ("123456789").
        assert_eq!(checksum(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn rfc3720_vectors() {
        // iSCSI (RFC 3720, B.4) test vectors.
        assert_eq!(checksum(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(checksum(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(checksum(&inc), 0x46dd_794e);
        let dec: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        assert_eq!(checksum(&dec), 0x113f_db5c);
    }

    #[test]
    fn empty_is_identity() {
        assert_eq!(update(0x1234_5678, &[]), 0x1234_5678);
        assert_eq!(checksum(&[]), 0);
    }
}
