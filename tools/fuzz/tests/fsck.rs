// SPDX-License-Identifier: GPL-2.0

//! fsck never panics on fuzzed images, the corpus is valid, and cases are
//! reproducible from their seed.

use swapfs_fuzz::corpus::{base, BLOCK_SIZES_LOG2};
use swapfs_fuzz::{fsck, generate};

/// Seeds checked by `cargo test` (`make fuzz` checks 10,000 with the
/// fsck.swapfs binary).
const SEEDS: u64 = 3000;

#[test]
fn base_images_are_clean() {
    for log2 in BLOCK_SIZES_LOG2 {
        assert_eq!(fsck::in_process(&base(log2).bytes), Ok(0), "{log2}");
    }
}

#[test]
fn cases_are_reproducible() {
    for seed in [0, 1, 2, 12345] {
        let (a, b) = (generate(seed), generate(seed));
        assert!(a.bytes == b.bytes && a.what == b.what, "seed {seed}");
        assert!(!a.what.is_empty());
    }
}

#[test]
fn fsck_never_panics() {
    let mut codes = [0u64; 3];
    for seed in 0..SEEDS {
        let case = generate(seed);
        match fsck::in_process(&case.bytes) {
            Ok(c) if fsck::is_fsck_code(i32::from(c)) => codes[usize::from(c / 4)] += 1,
            other => panic!("seed {seed}: {other:?}\nmutations: {:#?}", case.what),
        }
    }
    // Most mutations are damage fsck sees.
    assert!(codes[1] + codes[2] > SEEDS / 2, "{codes:?}");
}
