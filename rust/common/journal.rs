// SPDX-License-Identifier: GPL-2.0

//! The limits of the jbd2 journal, as swapfs uses it.

/// The most credits one handle may ask for when it also reserves one
/// revoke record per credit (swapfs' handles do: every metadata block a
/// handle frees may need revoking).
///
/// jbd2 refuses, with a warning, a handle whose total exceeds the
/// transaction's payload (`jbd2_max_user_trans_buffers`: its
/// `max_buffers` less the `overhead` of descriptor and commit blocks that
/// every transaction reserves); the total is the credits plus one revoke
/// descriptor block per `revokes_per_block` records (`jbd2__journal_start`).
/// The answer is the largest `c` with `c + ceil(c / revokes_per_block)` within
/// that payload; 0 if nothing fits.
pub fn max_handle_credits(max_buffers: u32, overhead: u32, revokes_per_block: u32) -> u32 {
    let payload = u64::from(max_buffers.saturating_sub(overhead));
    let r = u64::from(revokes_per_block.max(1));
    let total = |c: u64| c + c.div_ceil(r);
    // c + c / r <= payload, less the rounding: within one of the answer.
    let mut c = payload * r / (r + 1);
    while c > 0 && total(c) > payload {
        c -= 1;
    }
    while total(c + 1) <= payload {
        c += 1;
    }
    u32::try_from(c).unwrap_or(u32::MAX)
}

/// Blocks of a handle of `c` credits and as many revoke records.
#[cfg(any(test, CONFIG_KUNIT))]
fn total(c: u32, revokes_per_block: u32) -> u64 {
    u64::from(c) + u64::from(c).div_ceil(u64::from(revokes_per_block.max(1)))
}

/// The first input of a grid (journal sizes, overheads, revoke records per
/// block of every block size and tag format) where [`max_handle_credits`] is
/// not the largest handle that fits: run by the host tests and by KUnit.
#[cfg(any(test, CONFIG_KUNIT))]
fn first_wrong() -> Option<(u32, u32, u32)> {
    for max in (0..3000).step_by(7) {
        for overhead in [0, 1, 2, 34, 136, 3001] {
            for r in [1, 2, 3, 61, 127, 253, 509, 1021] {
                let c = max_handle_credits(max, overhead, r);
                let payload = u64::from(max.saturating_sub(overhead));
                if total(c, r) > payload || total(c + 1, r) <= payload {
                    return Some((max, overhead, r));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{first_wrong, max_handle_credits, total};

    #[test]
    fn the_largest_handle_that_fits() {
        assert_eq!(first_wrong(), None);
    }

    #[test]
    fn swapfs_journals() {
        // A 32768-block journal of 4 KiB blocks with 64-bit tags and
        // checksums v3 (what swapfs sets): jbd2 allows 10922 buffers, 45 of
        // them overhead, 509 revoke records per block. The old limit,
        // 10922 - 32 = 10890 credits, is 10912 blocks with its revokes:
        // over the 10877 jbd2 accepts.
        assert_eq!(max_handle_credits(10922, 45, 509), 10855);
        assert!(total(10890, 509) > 10877);
        // 1 KiB blocks: 61 tags per descriptor (181 blocks of overhead)
        // and 125 revoke records per block.
        assert_eq!(max_handle_credits(10922, 181, 125), 10655);
        // Nothing fits.
        assert_eq!(max_handle_credits(40, 45, 509), 0);
    }
}

#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(swapfs_journal)]
mod kunit {
    #[test]
    fn the_largest_handle_that_fits() {
        assert_eq!(super::first_wrong(), None);
    }
}
