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

/// Known values of [`checksum`]: the host's unit tests and the module's
/// KUnit suite both check them.
#[cfg(any(test, CONFIG_KUNIT))]
const VECTORS: [(&[u8], u32); 6] = [
    // The catalogued check value of CRC-32C.
    (b"123456789", 0xe306_9283),
    // iSCSI (RFC 3720, B.4) test vectors.
    (&[0; 32], 0x8a91_36aa),
    (&[0xff; 32], 0x62a8_ab43),
    (&counting(false), 0x46dd_794e),
    (&counting(true), 0x113f_db5c),
    (&[], 0),
];

/// The bytes 0, 1, ..., 31, or the reverse.
#[cfg(any(test, CONFIG_KUNIT))]
const fn counting(down: bool) -> [u8; 32] {
    let mut b = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        b[i] = if down { 31 - i as u8 } else { i as u8 };
        i += 1;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        for (data, want) in VECTORS {
            assert_eq!(checksum(data), want, "{data:?}");
        }
    }

    #[test]
    fn empty_is_identity() {
        assert_eq!(update(0x1234_5678, &[]), 0x1234_5678);
    }
}

/// KUnit: the portable CRC-32C compiled for the kernel, and against the
/// kernel's accelerated `crc32c()`, which the module uses at run time.
#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(swapfs_crc32c)]
mod kunit {
    use super::{checksum, update, VECTORS};
    use crate::sys;

    #[test]
    fn known_values() {
        for (data, want) in VECTORS {
            assert_eq!(checksum(data), want);
        }
    }

    #[test]
    fn matches_kernel_crc32c() {
        // Lengths and seeds around the kernel's vectorised block sizes.
        let mut buf = [0u8; 300];
        let mut x: u32 = 0x1234_5678;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x.to_le_bytes()[0];
        }
        for len in [0, 1, 7, 8, 15, 16, 63, 64, 65, 255, 256, 300] {
            for seed in [0u32, !0, 0xdead_beef] {
                let data = &buf[..len];
                assert_eq!(update(seed, data), sys::crc32c(seed, data));
            }
        }
    }
}
