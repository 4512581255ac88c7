// SPDX-License-Identifier: GPL-2.0

//! Blocks freed by transactions that have not committed yet ("busy", as xfs
//! calls them; ext4 keeps them out of its buddy cache until the commit).
//!
//! Until its transaction commits, a freed block still belongs to its old
//! owner on disk: reused by a new owner, it would hold the new owner's data
//! after a crash, and a freed metadata block reused as metadata in the same
//! transaction is one that jbd2 has been told to forget. The allocator
//! clips what the bitmaps find free against these runs.
//!
//! A fixed table, so that freeing never allocates: when it is full, a run
//! joins the nearest one (the gap between them is held back too, until the
//! later of the two transactions commits: too long, never too short).

use super::cow::{clip_ranges, Clip};

/// Runs the table holds before it merges them.
pub const BUSY_RUNS: usize = 64;

/// One run of busy blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyRun {
    /// The transaction that freed them (the later one, for merged runs).
    pub tid: u32,
    /// First block.
    pub start: u64,
    /// One past the last block.
    pub end: u64,
}

/// The busy runs of one filesystem.
#[derive(Clone, Copy, Debug)]
pub struct Busy {
    runs: [Option<BusyRun>; BUSY_RUNS],
}

impl Default for Busy {
    fn default() -> Self {
        Busy {
            runs: [None; BUSY_RUNS],
        }
    }
}

/// Whether transaction `a` is later than `b` (jbd2's wrapping order).
fn later(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Busy {
    /// Forgets the runs whose transaction has committed.
    pub fn prune(&mut self, committed: impl Fn(u32) -> bool) {
        for r in self.runs.iter_mut() {
            if r.is_some_and(|r| committed(r.tid)) {
                *r = None;
            }
        }
    }

    /// Blocks `[start, start + len)` were freed by transaction `tid`.
    pub fn add(&mut self, tid: u32, start: u64, len: u64) {
        let end = start.saturating_add(len);
        if len == 0 {
            return;
        }
        // Extend a run of the same transaction that touches this one.
        if let Some(r) = self
            .runs
            .iter_mut()
            .flatten()
            .find(|r| r.tid == tid && r.start <= end && start <= r.end)
        {
            r.start = r.start.min(start);
            r.end = r.end.max(end);
            return;
        }
        if let Some(slot) = self.runs.iter_mut().find(|r| r.is_none()) {
            *slot = Some(BusyRun { tid, start, end });
            return;
        }
        // Full: join the nearest run, which then waits for the later
        // transaction.
        let dist = |r: &BusyRun| {
            if end < r.start {
                r.start - end
            } else {
                start.saturating_sub(r.end)
            }
        };
        if let Some(r) = self.runs.iter_mut().flatten().min_by_key(|r| dist(r)) {
            r.start = r.start.min(start);
            r.end = r.end.max(end);
            if later(tid, r.tid) {
                r.tid = tid;
            }
        }
    }

    /// Clips a run `[pblk, pblk + len)` that the bitmaps say is free
    /// against the busy runs.
    pub fn clip(&self, pblk: u64, len: u64) -> Clip {
        let runs = || self.runs.iter().flatten().map(|r| (r.start, r.end));
        clip_ranges(runs, pblk, len)
    }

    /// Whether block `b` is busy.
    pub fn contains(&self, b: u64) -> bool {
        self.runs
            .iter()
            .flatten()
            .any(|r| r.start <= b && b < r.end)
    }
}

/// Adds `(tid, start, len)` runs to a table, then checks that every block of
/// every run is busy until its transaction is pruned, and that clipping never
/// hands out a busy block: the first failing case, for the host tests and
/// KUnit.
#[cfg(any(test, CONFIG_KUNIT))]
fn first_wrong(runs: &[(u32, u64, u64)]) -> Option<(u32, u64, u64)> {
    let mut busy = Busy::default();
    for &(tid, start, len) in runs {
        busy.add(tid, start, len);
    }
    for &(tid, start, len) in runs {
        for b in start..start + len {
            if !busy.contains(b) {
                return Some((tid, start, len));
            }
            if let Clip::Use(n) = busy.clip(b.saturating_sub(3), 8) {
                if b.saturating_sub(3) + n > b {
                    return Some((tid, start, len));
                }
            }
        }
    }
    None
}

/// Runs of a table that overflows (more than [`BUSY_RUNS`] separate runs,
/// two transactions).
#[cfg(any(test, CONFIG_KUNIT))]
fn overflowing(i: u64) -> (u32, u64, u64) {
    (7 + (i % 2) as u32, 1000 + i * 13 % 997 * 10, 1 + i % 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn busy_blocks_are_never_handed_out() {
        let small = [(5, 100, 10), (5, 110, 5), (6, 50, 1), (6, 120, 3)];
        assert_eq!(first_wrong(&small), None);
        let many: Vec<_> = (0..300).map(overflowing).collect();
        assert_eq!(first_wrong(&many), None);
    }

    #[test]
    fn clips_and_prunes() {
        let mut b = Busy::default();
        b.add(5, 100, 10);
        b.add(6, 110, 5);
        assert_eq!(b.clip(90, 20), Clip::Use(10));
        assert_eq!(b.clip(100, 20), Clip::SkipTo(115));
        assert_eq!(b.clip(120, 5), Clip::Use(5));
        b.prune(|t| t == 5);
        assert_eq!(b.clip(100, 20), Clip::Use(10));
        b.prune(|_| true);
        assert_eq!(b.clip(100, 20), Clip::Use(20));
    }

    #[test]
    fn a_merged_run_waits_for_the_later_transaction() {
        let mut b = Busy::default();
        for i in 0..BUSY_RUNS as u64 {
            b.add(1, i * 10, 1);
        }
        b.add(2, 5, 1);
        // Joined 0..1 or 10..11 (both 4 away); either way tid 2 holds it.
        b.prune(|t| t == 1);
        assert!(b.contains(5));
    }
}

#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(swapfs_busy)]
mod kunit {
    #[test]
    fn busy_blocks_are_never_handed_out() {
        let mut many = kernel::alloc::KVec::new();
        for i in 0..300 {
            assert!(many
                .push(super::overflowing(i), kernel::alloc::flags::GFP_KERNEL)
                .is_ok());
        }
        assert_eq!(super::first_wrong(&many), None);
    }
}
