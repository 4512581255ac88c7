//! `format::bitmap_find_allocatable` (the block allocator's scan, which
//! skips blocks freed by a transaction that has not committed) against a
//! bit-at-a-time model.

use proptest::prelude::*;
use swapfs_common::format::{
    bitmap_allocatable, bitmap_find_allocatable, bitmap_set, BLOCK_HEADER_SIZE,
};

fn block(bits: &[bool]) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK_HEADER_SIZE + bits.len().div_ceil(8)];
    for (i, &v) in bits.iter().enumerate() {
        bitmap_set(&mut b, i as u64, v);
    }
    b
}

fn model(
    cur: &[bool],
    committed: Option<&[bool]>,
    from: u64,
    to: u64,
    max: u64,
) -> Option<(u64, u64)> {
    let free = |i: u64| !cur[i as usize] && committed.is_none_or(|c| !c[i as usize]);
    let start = (from..to).find(|&i| free(i))?;
    let len = (start..to).take_while(|&i| free(i)).count() as u64;
    Some((start, len.min(max.max(1))))
}

#[test]
fn a_block_freed_but_not_committed_is_skipped() {
    // Bits 0-3 used, 4-7 freed by the running transaction (clear in the
    // bitmap, set in the committed copy), 8-11 free since before.
    let cur: Vec<bool> = (0..16).map(|i| !(4..12).contains(&i)).collect();
    let committed: Vec<bool> = (0..16).map(|i| !(8..12).contains(&i)).collect();
    let (c, k) = (block(&cur), block(&committed));
    assert_eq!(
        bitmap_find_allocatable(&c, Some(&k), 0, 16, 100),
        Some((8, 4))
    );
    assert_eq!(bitmap_find_allocatable(&c, None, 0, 16, 100), Some((4, 8)));
    assert!(!bitmap_allocatable(&c, Some(&k), 5));
    assert!(bitmap_allocatable(&c, None, 5));
    // Only not-yet-committed frees left: nothing to allocate.
    assert_eq!(bitmap_find_allocatable(&c, Some(&k), 0, 8, 100), None);
    assert_eq!(
        bitmap_find_allocatable(&c, Some(&k), 9, 10, 5),
        Some((9, 1))
    );
}

proptest! {
    #[test]
    fn matches_the_model(
        cur in prop::collection::vec(any::<bool>(), 1..80),
        freed in prop::collection::vec(any::<bool>(), 80),
        with_committed: bool,
        a in 0u64..80, b in 0u64..80, max in 0u64..20,
    ) {
        let n = cur.len() as u64;
        let (from, to) = (a.min(b) % n, (a.max(b) % n) + 1);
        // The committed copy: a superset of the bitmap's set bits (what
        // was freed since the last commit is still set there).
        let committed: Vec<bool> = cur.iter().zip(&freed).map(|(&c, &f)| c || f).collect();
        let c = block(&cur);
        let k = block(&committed);
        let kref = with_committed.then_some(k.as_slice());
        let mref = with_committed.then_some(committed.as_slice());
        let got = bitmap_find_allocatable(&c, kref, from, to, max);
        prop_assert_eq!(got, model(&cur, mref, from, to, max));
    }
}
