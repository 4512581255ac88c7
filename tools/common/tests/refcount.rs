//! `format::refcount_run` (the sharing scan swap activation runs over every
//! block of a swapfile): the examples the module's KUnit suite runs too
//! (`format::refcount_run_cases`), and against a count-at-a-time model.

use proptest::prelude::*;
use swapfs_common::format::{refcount_run, refcount_run_cases};

fn model(counts: &[u16], shared: bool) -> usize {
    counts.iter().take_while(|&&c| (c > 1) == shared).count()
}

fn bytes(counts: &[u16]) -> Vec<u8> {
    counts.iter().flat_map(|c| c.to_le_bytes()).collect()
}

#[test]
fn shared_cases() {
    refcount_run_cases(|entries, shared, want| {
        assert_eq!(refcount_run(entries, shared), want, "{entries:?} {shared}");
    });
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
