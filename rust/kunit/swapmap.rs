// SPDX-License-Identifier: GPL-2.0

//! KUnit: the swap map builder, the pinned swap table of
//! [`crate::common::swapmap`] and the sharing scan activation runs, compiled
//! for the kernel, on deterministic cases (the host runs the property tests
//! against a model).

use kernel::prelude::*;

#[kunit_tests(swapfs_swapmap)]
mod tests {
    use crate::common::swapmap::{
        build, BuildError, ExtentKind, FileExtent, Policy, Refusal, Run, RunWriter, Segment,
        Summary, SwapMapBuilder, SwapParams, SwapTable, TableError,
    };

    /// Slots for the runs of one case.
    const SLOTS: usize = 8;

    fn params(block_size: u32, max_pages: u64) -> SwapParams {
        SwapParams {
            max_pages,
            i_size: max_pages * 4096,
            page_size: 4096,
            block_size,
            dev_first_block: 8,
            dev_end_block: 1 << 20,
            policy: Policy {
                allow_unwritten: true,
            },
        }
    }

    fn x(lblk: u64, pblk: u64, len: u64, kind: ExtentKind) -> FileExtent {
        FileExtent {
            lblk,
            pblk,
            len,
            kind,
        }
    }

    fn w(lblk: u64, pblk: u64, len: u64) -> FileExtent {
        x(lblk, pblk, len, ExtentKind::Written)
    }

    /// A run of 4 KiB pages at device page `ppage`.
    fn r(start_page: u64, nr_pages: u64, ppage: u64) -> Run {
        Run {
            start_page,
            nr_pages,
            start_sector: ppage * 8,
        }
    }

    /// Builds into `buf`; returns the summary and the number of runs, or
    /// the refusal.
    fn build_into(
        p: &SwapParams,
        xs: &[FileExtent],
        buf: &mut [Run; SLOTS],
    ) -> core::result::Result<(Summary, usize), Refusal> {
        let mut wr = RunWriter::new(buf);
        match build(p, xs.iter().copied(), |run| wr.push(run)) {
            Ok(s) => Ok((s, wr.len())),
            Err(BuildError::Refused(e)) => Err(e),
            Err(BuildError::Sink(_)) => Err(Refusal::Aborted),
        }
    }

    /// Only the refusal (or `None` if the build succeeds).
    fn refusal(p: &SwapParams, xs: &[FileExtent]) -> Option<Refusal> {
        let mut buf = [Run::default(); SLOTS];
        build_into(p, xs, &mut buf).err()
    }

    #[test]
    fn holes() {
        let p = params(4096, 10);
        assert_eq!(
            refusal(&p, &[w(0, 100, 3), w(5, 105, 5)]),
            Some(Refusal::Hole {
                start: 3 * 4096,
                end: 5 * 4096,
            })
        );
        assert_eq!(
            refusal(&p, &[w(0, 100, 8)]),
            Some(Refusal::Hole {
                start: 8 * 4096,
                end: 10 * 4096,
            })
        );
        // An all-holes file.
        assert_eq!(
            refusal(&p, &[]),
            Some(Refusal::Hole {
                start: 0,
                end: 10 * 4096,
            })
        );
        // A hole inside a page of 1 KiB blocks.
        let p = params(1024, 4);
        assert_eq!(
            refusal(&p, &[w(0, 100, 5), w(6, 106, 10)]),
            Some(Refusal::Hole {
                start: 5 * 1024,
                end: 6 * 1024,
            })
        );
    }

    #[test]
    fn kinds_and_policy() {
        let mut p = params(4096, 10);
        // Clipped to the swap area.
        assert_eq!(
            refusal(&p, &[w(0, 100, 1), x(1, 101, 20, ExtentKind::Shared)]),
            Some(Refusal::Shared {
                start: 4096,
                end: 10 * 4096,
            })
        );
        assert!(matches!(
            refusal(&p, &[x(0, 100, 10, ExtentKind::Delalloc)]),
            Some(Refusal::Delalloc { .. })
        ));
        assert!(matches!(
            refusal(&p, &[x(0, 100, 10, ExtentKind::Inline)]),
            Some(Refusal::Inline { .. })
        ));
        assert!(matches!(
            refusal(&p, &[x(0, 100, 10, ExtentKind::Encoded)]),
            Some(Refusal::Encoded { .. })
        ));
        let xs = [w(0, 100, 2), x(2, 102, 8, ExtentKind::Unwritten)];
        let mut buf = [Run::default(); SLOTS];
        let (s, n) = build_into(&p, &xs, &mut buf).unwrap_or((SUMMARY0, 0));
        // Unwritten extents are used as written, and merged with them.
        assert_eq!(n, 1);
        assert_eq!(buf[0], r(0, 10, 100));
        assert_eq!(s.pages, 9);
        p.policy.allow_unwritten = false;
        assert_eq!(
            refusal(&p, &xs),
            Some(Refusal::Unwritten {
                start: 2 * 4096,
                end: 10 * 4096,
            })
        );
        // Device bounds.
        let p = params(4096, 4);
        assert_eq!(
            refusal(&p, &[w(0, 4, 4)]),
            Some(Refusal::OutOfDevice {
                start: 0,
                end: 4 * 4096,
            })
        );
    }

    /// A placeholder for failed builds (the assertions then fail).
    const SUMMARY0: Summary = Summary {
        max: 0,
        pages: 0,
        lowest_ppage: 0,
        highest_ppage: 0,
        span: 0,
        nr_runs: 0,
    };

    #[test]
    fn sizes() {
        let mut p = params(4096, 1);
        assert_eq!(
            refusal(&p, &[w(0, 100, 4)]),
            Some(Refusal::TooSmall { max_pages: 1 })
        );
        p.max_pages = 4;
        p.i_size = 4 * 4096 - 1;
        assert!(matches!(
            refusal(&p, &[w(0, 100, 4)]),
            Some(Refusal::Truncated { .. })
        ));
        // Longer than the header declares, not a page multiple: fine, and
        // the shared extent beyond the swap area is ignored.
        p.i_size = 8 * 4096 + 100;
        assert_eq!(
            refusal(&p, &[w(0, 100, 4), x(4, 0, 5, ExtentKind::Shared)]),
            None
        );
        p.block_size = 3000;
        assert!(matches!(
            SwapMapBuilder::new(&p),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn misaligned_1k_blocks() {
        let p = params(1024, 6);
        // Device block 201 is not 4 KiB-aligned: pages 1..6 are unusable.
        assert_eq!(
            refusal(&p, &[w(0, 100, 4), w(4, 201, 20)]),
            Some(Refusal::Misaligned {
                start: 4096,
                end: 6 * 4096,
            })
        );
        // A discontiguity inside page 2 only.
        assert_eq!(
            refusal(&p, &[w(0, 100, 10), w(10, 402, 14)]),
            Some(Refusal::Misaligned {
                start: 2 * 4096,
                end: 3 * 4096,
            })
        );
        // Contiguous pieces that straddle pages are one run.
        let mut buf = [Run::default(); SLOTS];
        let xs = [w(0, 100, 3), w(3, 103, 6), w(9, 109, 15)];
        let (s, n) = build_into(&p, &xs, &mut buf).unwrap_or((SUMMARY0, 0));
        assert_eq!(n, 1);
        assert_eq!(buf[0], r(0, 6, 25));
        assert_eq!(s.nr_runs, 1);
    }

    #[test]
    fn merge_and_summary() {
        let p = params(4096, 8);
        let xs = [w(0, 900, 1), w(1, 200, 2), w(3, 202, 3), w(6, 300, 2)];
        let mut buf = [Run::default(); SLOTS];
        let (s, n) = build_into(&p, &xs, &mut buf).unwrap_or((SUMMARY0, 0));
        assert_eq!(n, 3);
        assert_eq!(buf[0], r(0, 1, 900));
        assert_eq!(buf[1], r(1, 5, 200));
        assert_eq!(buf[2], r(6, 2, 300));
        assert_eq!(buf[1].start_ppage(4096), 200);
        // The header page (at 900) is not part of the bounds.
        assert_eq!(
            s,
            Summary {
                max: 8,
                pages: 7,
                lowest_ppage: 200,
                highest_ppage: 301,
                span: 102,
                nr_runs: 3,
            }
        );
        // Counting first gives the same summary; too few slots fail.
        let count = build(&p, xs, |_| Ok::<(), TableError>(()));
        assert_eq!(count, Ok(s));
        let mut small = [Run::default(); 2];
        let mut wr = RunWriter::new(&mut small);
        assert!(matches!(
            build(&p, xs, |run| wr.push(run)),
            Err(BuildError::Sink(_))
        ));
    }

    #[test]
    fn table_lookups_at_run_boundaries() -> core::result::Result<(), TableError> {
        let runs = [r(0, 4, 100), r(4, 5, 200), r(9, 7, 250)];
        let t = SwapTable::new(&runs, 4096)?;
        assert_eq!(t.total_pages(), 16);
        assert_eq!(t.map(0), Some((800, 4)));
        assert_eq!(t.map(3), Some((824, 1)));
        assert_eq!(t.map(4), Some((1600, 5)));
        assert_eq!(t.map(8), Some((1632, 1)));
        assert_eq!(t.map(9), Some((2000, 7)));
        assert_eq!(t.map(15), Some((2048, 1)));
        assert_eq!(t.map(16), None);

        let mut segs = [Segment {
            sector: 0,
            bytes: 0,
        }; 4];
        let mut n = 0;
        if let Some(it) = t.segments(3 * 4096 + 512, 6 * 4096) {
            for (slot, s) in segs.iter_mut().zip(it) {
                *slot = s;
                n += 1;
            }
        }
        assert_eq!(n, 3);
        assert_eq!(
            segs[0],
            Segment {
                sector: 825,
                bytes: 3584,
            }
        );
        assert_eq!(
            segs[1],
            Segment {
                sector: 1600,
                bytes: 5 * 4096,
            }
        );
        assert_eq!(
            segs[2],
            Segment {
                sector: 2000,
                bytes: 512,
            }
        );
        assert!(t.segments(15 * 4096, 8192).is_none());
        assert!(t.segments(100, 512).is_none());
        // Broken tables are refused.
        assert!(SwapTable::new(&[r(1, 1, 0)], 4096).is_err());
        assert!(SwapTable::new(&[r(0, 2, 0), r(1, 1, 0)], 4096).is_err());
        Ok(())
    }

    #[test]
    fn build_then_table() -> core::result::Result<(), TableError> {
        // 1 KiB blocks: the IO path's view of a freshly built table.
        let p = params(1024, 16);
        let xs = [w(0, 400, 16), w(16, 800, 20), w(36, 1000, 28)];
        let mut buf = [Run::default(); SLOTS];
        let (_, n) = build_into(&p, &xs, &mut buf).unwrap_or((SUMMARY0, 0));
        assert_eq!(n, 3);
        let t = SwapTable::new(buf.get(..n).unwrap_or(&[]), 4096)?;
        assert_eq!(t.total_pages(), 16);
        assert_eq!(t.map(0), Some((800, 4)));
        assert_eq!(t.map(4), Some((1600, 5)));
        assert_eq!(t.map(9), Some((2000, 7)));
        assert_eq!(t.map(16), None);
        Ok(())
    }

    #[test]
    fn refcount_run_scans_words_and_counts() {
        use crate::common::format::refcount_run;
        // 20 counts of 1 with one shared count (2) at each position in turn:
        // the word-at-a-time private scan stops exactly there.
        for at in 0..20usize {
            let mut b = [0u8; 40];
            for (i, c) in b.chunks_exact_mut(2).enumerate() {
                c.copy_from_slice(&(if i == at { 2u16 } else { 1 }).to_le_bytes());
            }
            assert_eq!(refcount_run(&b, false), at);
            assert_eq!(refcount_run(b.get(2 * at..).unwrap_or(&[]), true), 1);
        }
        // A count whose high byte alone makes it shared.
        assert_eq!(refcount_run(&[1, 0, 0, 0, 0, 1, 1, 0], false), 2);
        assert_eq!(refcount_run(&[0, 1, 0xff, 0xff, 2, 0, 1, 0], true), 3);
    }
}
