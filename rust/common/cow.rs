// SPDX-License-Identifier: GPL-2.0

//! Copy-on-write staging: the in-memory "CoW fork".
//!
//! A write into shared (reflinked) blocks must not change them in place. The
//! kernel picks new blocks for the data when the write reaches the
//! filesystem (`iomap_begin`, `page_mkwrite`), but it does not map them in
//! the file yet: the extent tree keeps pointing at the old, shared blocks
//! until the new data is on disk. Only then does one transaction mark the
//! new blocks allocated, map them in the file and drop the file's reference
//! to the old ones (`file::cow_end`). A crash before that commit leaves the
//! old data in the file and the new blocks free on disk: nothing leaks and
//! nothing half-written shows.
//!
//! Between the two, the new blocks are *staged*: reserved in memory only
//! (free on disk, subtracted from the free count, skipped by the
//! allocator). A [`Staged`] range maps logical blocks of one inode to the
//! physical blocks that will replace the current mapping. The kernel keeps
//! them in a vector under the allocator's mutex; this module holds the
//! allocation-free logic on slices of them, so the host tests it.

/// Logical blocks `[lblk, lblk + len)` of inode `ino` are being written to
/// physical blocks `[pblk, pblk + len)`, which replace their current
/// mapping once the data is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staged {
    /// The inode.
    pub ino: u64,
    /// First logical block.
    pub lblk: u64,
    /// First physical block (free on disk, reserved in memory).
    pub pblk: u64,
    /// Blocks (at least 1).
    pub len: u64,
}

impl Staged {
    /// One past the last logical block.
    pub fn lend(&self) -> u64 {
        self.lblk.saturating_add(self.len)
    }

    /// One past the last physical block.
    pub fn pend(&self) -> u64 {
        self.pblk.saturating_add(self.len)
    }

    /// The part of this range inside logical blocks `[lo, hi)`, if any.
    pub fn clip(&self, lo: u64, hi: u64) -> Option<Staged> {
        let s = self.lblk.max(lo);
        let e = self.lend().min(hi);
        if s >= e {
            return None;
        }
        Some(Staged {
            ino: self.ino,
            lblk: s,
            pblk: self.pblk + (s - self.lblk),
            len: e - s,
        })
    }

    /// What remains of this range once logical blocks `[lo, hi)` are taken
    /// out: the part before and the part after (either may be empty).
    pub fn remove(&self, lo: u64, hi: u64) -> (Option<Staged>, Option<Staged>) {
        let before = self.clip(0, lo.min(self.lend()));
        let after = self.clip(hi.max(self.lblk), u64::MAX);
        if hi <= lo {
            return (Some(*self), None);
        }
        (before, after)
    }

    /// Whether `next` continues this range logically and physically, so
    /// the two can be one.
    pub fn continued_by(&self, next: &Staged) -> bool {
        self.ino == next.ino && self.lend() == next.lblk && self.pend() == next.pblk
    }
}

/// The staged range of inode `ino` that covers logical block `lblk`, from
/// `lblk` on (its `lblk` is the one asked for).
pub fn covering(staged: &[Staged], ino: u64, lblk: u64) -> Option<Staged> {
    staged
        .iter()
        .filter(|s| s.ino == ino)
        .find_map(|s| s.clip(lblk, lblk.saturating_add(1)).map(|_| *s))
        .and_then(|s| s.clip(lblk, u64::MAX))
}

/// The first logical block after `lblk` where a staged range of `ino`
/// starts (so that a mapping from `lblk` can stop before it).
pub fn next_start(staged: &[Staged], ino: u64, lblk: u64) -> Option<u64> {
    staged
        .iter()
        .filter(|s| s.ino == ino && s.lblk > lblk)
        .map(|s| s.lblk)
        .min()
}

/// Whether any staged range of `ino` meets logical blocks `[lo, hi)`.
pub fn any_in(staged: &[Staged], ino: u64, lo: u64, hi: u64) -> bool {
    staged
        .iter()
        .any(|s| s.ino == ino && s.clip(lo, hi).is_some())
}

/// What the allocator may do with a run of free blocks it found on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clip {
    /// The first `n` blocks (at least 1) are not staged: use them.
    Use(u64),
    /// The first block is staged: look again from this physical block.
    SkipTo(u64),
}

/// Clips a run `[pblk, pblk + len)` that the block bitmap says is free
/// against the staged (reserved) physical blocks.
pub fn clip_free(staged: &[Staged], pblk: u64, len: u64) -> Clip {
    clip_ranges(|| staged.iter().map(|s| (s.pblk, s.pend())), pblk, len)
}

/// Clips a run `[pblk, pblk + len)` against ranges `[start, end)` of
/// blocks that may not be used (`ranges` lists them, any number of times).
pub fn clip_ranges<I: Iterator<Item = (u64, u64)>>(
    ranges: impl Fn() -> I,
    pblk: u64,
    len: u64,
) -> Clip {
    if let Some((_, e)) = ranges().find(|&(s, e)| s <= pblk && pblk < e) {
        // Ranges may be adjacent: skip the whole chain.
        let mut to = e;
        while let Some((_, e)) = ranges().find(|&(s, e)| s <= to && to < e) {
            to = e;
        }
        return Clip::SkipTo(to);
    }
    let end = pblk.saturating_add(len);
    let stop = ranges()
        .map(|(s, _)| s)
        .filter(|&s| s > pblk && s < end)
        .min()
        .unwrap_or(end);
    Clip::Use(stop - pblk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn st(ino: u64, lblk: u64, pblk: u64, len: u64) -> Staged {
        Staged {
            ino,
            lblk,
            pblk,
            len,
        }
    }

    #[test]
    fn clip_and_remove() {
        let s = st(7, 10, 100, 10);
        assert_eq!(s.clip(0, 5), None);
        assert_eq!(s.clip(12, 15), Some(st(7, 12, 102, 3)));
        assert_eq!(s.clip(0, 100), Some(s));
        assert_eq!(s.clip(19, 30), Some(st(7, 19, 109, 1)));
        assert_eq!(s.clip(20, 30), None);
        assert_eq!(
            s.remove(12, 15),
            (Some(st(7, 10, 100, 2)), Some(st(7, 15, 105, 5)))
        );
        assert_eq!(s.remove(0, 12), (None, Some(st(7, 12, 102, 8))));
        assert_eq!(s.remove(15, 100), (Some(st(7, 10, 100, 5)), None));
        assert_eq!(s.remove(0, 100), (None, None));
        assert_eq!(s.remove(30, 40), (Some(s), None));
        assert_eq!(s.remove(0, 5), (None, Some(s)));
        assert_eq!(s.remove(14, 14), (Some(s), None));
        assert!(s.continued_by(&st(7, 20, 110, 1)));
        assert!(!s.continued_by(&st(8, 20, 110, 1)));
        assert!(!s.continued_by(&st(7, 20, 111, 1)));
    }

    #[test]
    fn lookups() {
        let v = [st(1, 0, 50, 4), st(2, 2, 60, 2), st(1, 10, 70, 5)];
        assert_eq!(covering(&v, 1, 2), Some(st(1, 2, 52, 2)));
        assert_eq!(covering(&v, 1, 4), None);
        assert_eq!(covering(&v, 2, 3), Some(st(2, 3, 61, 1)));
        assert_eq!(covering(&v, 1, 14), Some(st(1, 14, 74, 1)));
        assert_eq!(next_start(&v, 1, 0), Some(10));
        assert_eq!(next_start(&v, 1, 10), None);
        assert_eq!(next_start(&v, 2, 0), Some(2));
        assert!(any_in(&v, 1, 3, 11));
        assert!(!any_in(&v, 1, 4, 10));
        assert!(!any_in(&v, 3, 0, u64::MAX));
    }

    #[test]
    fn allocator_skips_staged_blocks() {
        let v = [st(1, 0, 100, 4), st(2, 0, 104, 2), st(1, 9, 120, 5)];
        assert_eq!(clip_free(&v, 90, 20), Clip::Use(10));
        assert_eq!(clip_free(&v, 100, 20), Clip::SkipTo(106));
        assert_eq!(clip_free(&v, 105, 20), Clip::SkipTo(106));
        assert_eq!(clip_free(&v, 106, 100), Clip::Use(14));
        assert_eq!(clip_free(&v, 125, 3), Clip::Use(3));
        assert_eq!(clip_free(&[], 5, 7), Clip::Use(7));
    }

    /// A naive model: every block of every range in a set.
    #[test]
    fn clip_free_never_returns_staged_blocks() {
        let v: Vec<Staged> = (0..20u64)
            .map(|i| st(i % 3, i * 7, 1000 + i * i * 3 % 97, 1 + i % 4))
            .collect();
        let staged = |b: u64| v.iter().any(|s| s.pblk <= b && b < s.pend());
        for start in 990..1120u64 {
            for len in 1..12u64 {
                match clip_free(&v, start, len) {
                    Clip::Use(n) => {
                        assert!(n >= 1 && n <= len);
                        assert!((start..start + n).all(|b| !staged(b)));
                        if n < len {
                            assert!(staged(start + n));
                        }
                    }
                    Clip::SkipTo(to) => {
                        assert!(to > start);
                        assert!((start..to).all(staged));
                        assert!(!staged(to));
                    }
                }
            }
        }
    }
}
