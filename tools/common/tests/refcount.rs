//! `format::refcount_run` (the sharing scan swap activation runs over every
//! block of a swapfile) against a count-at-a-time model.

use proptest::prelude::*;
use swapfs_common::format::refcount_run;

fn model(counts: &[u16], shared: bool) -> usize {
    counts.iter().take_while(|&&c| (c > 1) == shared).count()
}

fn bytes(counts: &[u16]) -> Vec<u8> {
    counts.iter().flat_map(|c| c.to_le_bytes()).collect()
}

#[test]
fn word_boundaries() {
    // A shared count at every position after a private prefix.
    for at in 0..20 {
        let mut counts = vec![1u16; 20];
        counts[at] = 2;
        assert_eq!(refcount_run(&bytes(&counts), false), at, "shared at {at}");
        assert_eq!(refcount_run(&bytes(&counts[at..]), true), 1);
    }
    // Counts whose high byte alone makes them shared.
    assert_eq!(refcount_run(&bytes(&[0, 1, 0, 0x100, 1]), false), 3);
    assert_eq!(refcount_run(&bytes(&[0x100, 0xffff, 2, 1]), true), 3);
    assert_eq!(refcount_run(&[], false), 0);
    // A trailing odd byte is not a count.
    assert_eq!(refcount_run(&[1, 0, 0], false), 1);
}

proptest! {
    #[test]
    fn matches_the_model(
        counts in prop::collection::vec(prop_oneof![4 => 0u16..=1, 1 => 2u16..=u16::MAX], 0..64),
        shared: bool,
    ) {
        prop_assert_eq!(refcount_run(&bytes(&counts), shared), model(&counts, shared));
    }
}
