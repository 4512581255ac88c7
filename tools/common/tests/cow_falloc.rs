// SPDX-License-Identifier: GPL-2.0

//! Property tests of the copy-on-write staging logic (`rust/common/cow.rs`),
//! the fallocate request checks (`rust/common/falloc.rs`) and the data
//! alignment of the allocator (`format::align_run`), each against a naive
//! per-block model.

use proptest::prelude::*;
use swapfs_common::cow::{any_in, clip_free, covering, next_start, Clip, Staged};
use swapfs_common::falloc::{mode, plan, FallocError, Op};
use swapfs_common::format::align_run;

/// Staged ranges as the allocator keeps them: per inode, logically and
/// physically disjoint (physical blocks are reserved once).
fn staged_set() -> impl Strategy<Value = Vec<Staged>> {
    prop::collection::vec((1u64..4, 0u64..64, 1u64..8, 0u64..8), 0..10).prop_map(|v| {
        let mut out: Vec<Staged> = Vec::new();
        let mut pnext = 0u64;
        for (ino, lblk, len, gap) in v {
            let s = Staged {
                ino,
                lblk,
                pblk: pnext + gap,
                len,
            };
            // Keep logical ranges of one inode disjoint.
            if out
                .iter()
                .any(|o| o.ino == ino && o.lblk < s.lend() && s.lblk < o.lend())
            {
                continue;
            }
            pnext = s.pend();
            out.push(s);
        }
        out
    })
}

/// The physical block that staging maps logical block `l` of `ino` to.
fn model_at(st: &[Staged], ino: u64, l: u64) -> Option<u64> {
    st.iter()
        .find(|s| s.ino == ino && s.lblk <= l && l < s.lend())
        .map(|s| s.pblk + (l - s.lblk))
}

fn model_reserved(st: &[Staged], p: u64) -> bool {
    st.iter().any(|s| s.pblk <= p && p < s.pend())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn covering_matches_the_block_model(st in staged_set(), ino in 1u64..4, l in 0u64..80) {
        match covering(&st, ino, l) {
            None => prop_assert_eq!(model_at(&st, ino, l), None),
            Some(c) => {
                prop_assert_eq!(c.lblk, l);
                prop_assert_eq!(c.ino, ino);
                prop_assert!(c.len >= 1);
                // Every block of the answer maps as the model says, and it
                // ends where its range ends.
                for k in 0..c.len {
                    prop_assert_eq!(model_at(&st, ino, l + k), Some(c.pblk + k));
                }
                let whole = st.iter().find(|s| s.ino == ino && s.lblk <= l && l < s.lend()).unwrap();
                prop_assert_eq!(c.lend(), whole.lend());
            }
        }
    }

    #[test]
    fn next_start_and_any_in_match_the_model(
        st in staged_set(), ino in 1u64..4, l in 0u64..80, n in 0u64..20,
    ) {
        let want = st.iter().filter(|s| s.ino == ino && s.lblk > l).map(|s| s.lblk).min();
        prop_assert_eq!(next_start(&st, ino, l), want);
        let any = (l..l + n).any(|b| model_at(&st, ino, b).is_some());
        prop_assert_eq!(any_in(&st, ino, l, l + n), any);
    }

    #[test]
    fn clip_free_never_hands_out_reserved_blocks(st in staged_set(), p in 0u64..120, len in 1u64..30) {
        match clip_free(&st, p, len) {
            Clip::Use(n) => {
                prop_assert!(n >= 1 && n <= len);
                for b in p..p + n {
                    prop_assert!(!model_reserved(&st, b), "block {} is staged", b);
                }
                // It stops only at a staged block or at the end of the run.
                prop_assert!(n == len || model_reserved(&st, p + n));
            }
            Clip::SkipTo(to) => {
                prop_assert!(to > p);
                for b in p..to {
                    prop_assert!(model_reserved(&st, b), "skipped free block {}", b);
                }
                prop_assert!(!model_reserved(&st, to));
            }
        }
    }

    #[test]
    fn clip_and_remove_partition_a_range(
        lblk in 0u64..50, len in 1u64..20, lo in 0u64..80, hi in 0u64..80,
    ) {
        let s = Staged { ino: 1, lblk, pblk: 1000 + lblk, len };
        let mid = s.clip(lo, hi);
        let (before, after) = s.remove(lo, hi);
        for b in s.lblk..s.lend() {
            let inside = lo <= b && b < hi;
            let in_mid = mid.is_some_and(|m| m.lblk <= b && b < m.lend());
            let kept = [before, after].iter().flatten().any(|r| r.lblk <= b && b < r.lend());
            prop_assert_eq!(in_mid, inside);
            prop_assert_eq!(kept, !inside || hi <= lo);
        }
        for r in [mid, before, after].iter().flatten() {
            // Pieces keep the physical offset of the original.
            prop_assert_eq!(r.pblk - 1000, r.lblk);
        }
    }

    #[test]
    fn align_run_puts_pages_on_device_pages(
        start in 0u64..1000, len in 1u64..64, shift in 0u32..3, residue in 0u64..16,
    ) {
        let period = 1u64 << shift;
        match align_run(start, len, period, residue) {
            Some((s, l)) => {
                prop_assert!(s >= start && s + l == start + len && l >= 1);
                prop_assert_eq!(s % period, residue % period);
                // The first such block of the run.
                prop_assert!((start..s).all(|b| b % period != residue % period));
            }
            None => prop_assert!((start..start + len).all(|b| b % period != residue % period)),
        }
    }

    #[test]
    fn fallocate_plans_are_consistent(
        flags in prop::sample::select(vec![
            0, mode::KEEP_SIZE, mode::PUNCH_HOLE | mode::KEEP_SIZE, mode::PUNCH_HOLE,
            mode::ZERO_RANGE, mode::ZERO_RANGE | mode::KEEP_SIZE, mode::COLLAPSE_RANGE,
            mode::INSERT_RANGE, mode::UNSHARE_RANGE, mode::WRITE_ZEROES,
            mode::COLLAPSE_RANGE | mode::KEEP_SIZE, mode::PUNCH_HOLE | mode::ZERO_RANGE,
        ]),
        off in -2i64..1 << 22, len in -2i64..1 << 22, size in 0u64..1 << 22,
        bs_log in 10u32..13,
    ) {
        let bs = 1u64 << bs_log;
        let max = 1u64 << 23;
        let r = plan(flags, off, len, size, max, bs);
        if off < 0 || len <= 0 {
            prop_assert_eq!(r, Err(FallocError::Invalid));
            return Ok(());
        }
        let (o, l) = (off as u64, len as u64);
        match r {
            Ok(p) => {
                prop_assert_eq!((p.offset, p.len), (o, l));
                prop_assert!(o + l <= max);
                let keep = flags & mode::KEEP_SIZE != 0;
                match p.op {
                    Op::Allocate | Op::Zero | Op::Unshare => {
                        let grows = !keep && o + l > size;
                        prop_assert_eq!(p.new_size, grows.then_some(o + l));
                    }
                    Op::Punch => {
                        prop_assert!(keep);
                        prop_assert_eq!(p.new_size, None);
                    }
                    Op::Collapse => {
                        prop_assert!(o % bs == 0 && l % bs == 0 && o + l < size);
                        prop_assert_eq!(p.new_size, Some(size - l));
                    }
                    Op::Insert => {
                        prop_assert!(o % bs == 0 && l % bs == 0 && o < size);
                        prop_assert_eq!(p.new_size, Some(size + l));
                        prop_assert!(size + l <= max);
                    }
                }
            }
            Err(FallocError::NotSupported) => prop_assert!(matches!(
                flags,
                mode::PUNCH_HOLE | mode::WRITE_ZEROES
                    | 0x09 /* COLLAPSE | KEEP_SIZE */
                    | 0x12 /* PUNCH | ZERO */
            )),
            Err(FallocError::TooBig) => prop_assert!(
                o + l > max || (flags == mode::INSERT_RANGE && size + l > max)
            ),
            Err(FallocError::Invalid) => prop_assert!(
                matches!(flags, mode::COLLAPSE_RANGE | mode::INSERT_RANGE)
            ),
        }
    }
}
