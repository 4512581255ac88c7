// SPDX-License-Identifier: GPL-2.0

//! KUnit: the portable CRC-32C of [`crate::common::crc32c`] against the
//! kernel's accelerated `crc32c()`, which the module uses at run time.

use kernel::prelude::*;

#[kunit_tests(swapfs_crc32c)]
mod tests {
    use crate::common::crc32c::{checksum, update};
    use crate::sys;

    #[test]
    fn check_value() {
        assert_eq!(checksum(b"123456789"), 0xe306_9283);
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
