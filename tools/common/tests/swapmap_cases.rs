// SPDX-License-Identifier: GPL-2.0

//! Example-based tests of the swap map builder and the pinned swap table
//! (`rust/common/swapmap.rs`); the property tests are in `swapmap.rs`.
//! Host-only, so that the module's source carries no test code.

#![allow(clippy::arithmetic_side_effects)]

use swapfs_common::format::{extent_flags, Extent};
use swapfs_common::swapmap::*;

mod support;
use support::run;

const KIB: u32 = 1024;

fn params(bs: u32, max_pages: u64) -> SwapParams {
    SwapParams {
        max_pages,
        i_size: max_pages * 4096,
        page_size: 4096,
        block_size: bs,
        dev_first_block: 8,
        dev_end_block: 1 << 20,
        policy: Policy {
            allow_unwritten: true,
        },
    }
}

fn w(lblk: u64, pblk: u64, len: u64) -> FileExtent {
    FileExtent {
        lblk,
        pblk,
        len,
        kind: ExtentKind::Written,
    }
}

fn k(lblk: u64, pblk: u64, len: u64, kind: ExtentKind) -> FileExtent {
    FileExtent {
        lblk,
        pblk,
        len,
        kind,
    }
}

fn r(start_page: u64, nr_pages: u64, ppage: u64) -> Run {
    Run {
        start_page,
        nr_pages,
        start_sector: ppage * 8,
    }
}

#[test]
fn single_extent_4k() -> Result<(), Refusal> {
    let p = params(4 * KIB, 10);
    let (s, runs) = run(&p, &[w(0, 100, 10)])?;
    assert_eq!(runs, [r(0, 10, 100)]);
    assert_eq!(
        s,
        Summary {
            max: 10,
            pages: 9,
            lowest_ppage: 101,
            highest_ppage: 109,
            span: 9,
            nr_runs: 1,
        }
    );
    assert_eq!(runs[0].start_ppage(4096), 100);
    Ok(())
}

#[test]
fn extents_beyond_the_header_are_ignored() -> Result<(), Refusal> {
    let mut p = params(4 * KIB, 4);
    p.i_size = 1 << 30;
    let xs = [
        w(0, 100, 6),
        k(6, 0, 2, ExtentKind::Shared),
        k(20, 0, 2, ExtentKind::Delalloc),
    ];
    let (s, runs) = run(&p, &xs)?;
    assert_eq!(runs, [r(0, 4, 100)]);
    assert_eq!(s.pages, 3);
    assert_eq!(s.span, 3);
    Ok(())
}

#[test]
fn merges_across_extents_and_kinds() -> Result<(), Refusal> {
    let p = params(4 * KIB, 8);
    let xs = [
        w(0, 100, 2),
        k(2, 102, 3, ExtentKind::Unwritten),
        w(5, 105, 1),
        w(6, 300, 2),
    ];
    let (s, runs) = run(&p, &xs)?;
    assert_eq!(runs, [r(0, 6, 100), r(6, 2, 300)]);
    assert_eq!(s.nr_runs, 2);
    assert_eq!((s.lowest_ppage, s.highest_ppage, s.span), (101, 301, 201));
    Ok(())
}

#[test]
fn header_page_excluded_from_bounds() -> Result<(), Refusal> {
    // Page 0 alone in its run, far above the others.
    let p = params(4 * KIB, 3);
    let (s, runs) = run(&p, &[w(0, 900, 1), w(1, 200, 2)])?;
    assert_eq!(runs, [r(0, 1, 900), r(1, 2, 200)]);
    assert_eq!((s.lowest_ppage, s.highest_ppage, s.span), (200, 201, 2));
    Ok(())
}

#[test]
fn holes_are_refused() {
    let p = params(4 * KIB, 10);
    assert_eq!(
        run(&p, &[w(0, 100, 3), w(5, 105, 5)]).unwrap_err(),
        Refusal::Hole {
            start: 3 * 4096,
            end: 5 * 4096
        }
    );
    // Hole at the start.
    assert_eq!(
        run(&p, &[w(1, 101, 9)]).unwrap_err(),
        Refusal::Hole {
            start: 0,
            end: 4096
        }
    );
    // Hole at the end of the swap area, and beyond it.
    assert_eq!(
        run(&p, &[w(0, 100, 8), w(12, 200, 1)]).unwrap_err(),
        Refusal::Hole {
            start: 8 * 4096,
            end: 10 * 4096
        }
    );
    // All holes.
    assert_eq!(
        run(&p, &[]).unwrap_err(),
        Refusal::Hole {
            start: 0,
            end: 10 * 4096
        }
    );
    let e = run(&p, &[]).unwrap_err();
    assert_eq!(std::format!("{e}"), "hole at file offset [0, 40960)");
}

#[test]
fn sub_page_hole() {
    let p = params(KIB, 4);
    assert_eq!(
        run(&p, &[w(0, 100, 5), w(6, 106, 10)]).unwrap_err(),
        Refusal::Hole {
            start: 5 * 1024,
            end: 6 * 1024
        }
    );
}

#[test]
fn kinds() -> Result<(), Refusal> {
    let mut p = params(4 * KIB, 10);
    let cases = [
        (
            ExtentKind::Shared,
            Refusal::Shared {
                start: 4096,
                end: 10 * 4096,
            },
        ),
        (
            ExtentKind::Delalloc,
            Refusal::Delalloc {
                start: 4096,
                end: 10 * 4096,
            },
        ),
        (
            ExtentKind::Inline,
            Refusal::Inline {
                start: 4096,
                end: 10 * 4096,
            },
        ),
        (
            ExtentKind::Encoded,
            Refusal::Encoded {
                start: 4096,
                end: 10 * 4096,
            },
        ),
    ];
    for (kind, want) in cases {
        // Clipped to the swap area.
        let xs = [w(0, 100, 1), k(1, 101, 20, kind)];
        assert_eq!(run(&p, &xs).unwrap_err(), want);
    }
    let xs = [w(0, 100, 1), k(1, 101, 9, ExtentKind::Unwritten)];
    run(&p, &xs)?;
    p.policy.allow_unwritten = false;
    assert_eq!(
        run(&p, &xs).unwrap_err(),
        Refusal::Unwritten {
            start: 4096,
            end: 10 * 4096
        }
    );
    Ok(())
}

#[test]
fn from_disk_kinds() {
    let e = Extent {
        lblk: 1,
        pblk: 2,
        len: 3,
        flags: extent_flags::UNWRITTEN,
    };
    assert_eq!(FileExtent::from_disk(&e, false).kind, ExtentKind::Unwritten);
    assert_eq!(FileExtent::from_disk(&e, true).kind, ExtentKind::Shared);
    let e = Extent { flags: 0, ..e };
    assert_eq!(
        FileExtent::from_disk(&e, false),
        FileExtent {
            lblk: 1,
            pblk: 2,
            len: 3,
            kind: ExtentKind::Written
        }
    );
}

#[test]
fn device_bounds() -> Result<(), Refusal> {
    let p = params(4 * KIB, 4);
    assert_eq!(
        run(&p, &[w(0, 4, 4)]).unwrap_err(),
        Refusal::OutOfDevice {
            start: 0,
            end: 4 * 4096
        }
    );
    assert_eq!(
        run(&p, &[w(0, 100, 2), w(2, (1 << 20) - 1, 2)]).unwrap_err(),
        Refusal::OutOfDevice {
            start: 2 * 4096,
            end: 4 * 4096
        }
    );
    assert_eq!(
        run(&p, &[w(0, 100, 2), w(2, u64::MAX - 1, 2)]).unwrap_err(),
        Refusal::OutOfDevice {
            start: 2 * 4096,
            end: 4 * 4096
        }
    );
    // Only the part inside the swap area must be on the device.
    run(&p, &[w(0, (1 << 20) - 4, 8)])?;
    Ok(())
}

#[test]
fn misaligned_pages_1k() -> Result<(), Refusal> {
    let p = params(KIB, 6);
    // Physically misaligned from page 1 on: pages 1..6.
    assert_eq!(
        run(&p, &[w(0, 100, 4), w(4, 201, 20)]).unwrap_err(),
        Refusal::Misaligned {
            start: 4096,
            end: 6 * 4096
        }
    );
    // A discontiguity inside page 2 (blocks 8..12), then good pages.
    assert_eq!(
        run(&p, &[w(0, 100, 10), w(10, 402, 14)]).unwrap_err(),
        Refusal::Misaligned {
            start: 2 * 4096,
            end: 3 * 4096
        }
    );
    // Misaligned pages then a hole: the misaligned run is first.
    assert_eq!(
        run(&p, &[w(0, 100, 4), w(4, 201, 6)]).unwrap_err(),
        Refusal::Misaligned {
            start: 4096,
            end: 2 * 4096
        }
    );
    // A hole inside the first bad page wins over its misalignment.
    assert_eq!(
        run(&p, &[w(0, 100, 4), w(4, 201, 2), w(7, 300, 20)]).unwrap_err(),
        Refusal::Hole {
            start: 6 * 1024,
            end: 7 * 1024
        }
    );
    // Physically contiguous pieces that straddle pages are fine.
    let xs = [w(0, 100, 3), w(3, 103, 6), w(9, 109, 15)];
    let (s, runs) = run(&p, &xs)?;
    assert_eq!(runs, [r(0, 6, 25)]);
    assert_eq!(s.nr_runs, 1);
    // Two aligned extents meeting mid-page but not contiguous.
    assert_eq!(
        run(&p, &[w(0, 100, 6), w(6, 206, 18)]).unwrap_err(),
        Refusal::Misaligned {
            start: 4096,
            end: 2 * 4096
        }
    );
    Ok(())
}

#[test]
fn misaligned_2k_and_large_pages() -> Result<(), Refusal> {
    let mut p = params(2 * KIB, 3);
    p.page_size = 16384;
    p.i_size = 3 * 16384;
    // 8 blocks per page; pblk 800 is 16K-aligned.
    let (s, runs) = run(&p, &[w(0, 800, 24)])?;
    assert_eq!(
        runs,
        [Run {
            start_page: 0,
            nr_pages: 3,
            start_sector: 800 * 4
        }]
    );
    assert_eq!(runs[0].start_ppage(16384), 100);
    assert_eq!((s.lowest_ppage, s.span), (101, 2));
    assert_eq!(
        run(&p, &[w(0, 804, 24)]).unwrap_err(),
        Refusal::Misaligned {
            start: 0,
            end: 3 * 16384
        }
    );
    Ok(())
}

#[test]
fn sizes() -> Result<(), Refusal> {
    let mut p = params(4 * KIB, 1);
    assert_eq!(
        run(&p, &[w(0, 100, 4)]).unwrap_err(),
        Refusal::TooSmall { max_pages: 1 }
    );
    p.max_pages = 0;
    assert!(matches!(
        run(&p, &[w(0, 100, 4)]),
        Err(Refusal::TooSmall { .. })
    ));
    p.max_pages = 4;
    p.i_size = 4 * 4096 - 1;
    assert_eq!(
        run(&p, &[w(0, 100, 4)]).unwrap_err(),
        Refusal::Truncated {
            i_size: 4 * 4096 - 1,
            needed: 4 * 4096
        }
    );
    // A size that is not a page multiple is fine.
    p.i_size = 4 * 4096 + 1;
    run(&p, &[w(0, 100, 5)])?;
    Ok(())
}

#[test]
fn invalid_params() {
    let good = params(4 * KIB, 4);
    let bad = [
        SwapParams {
            block_size: 3000,
            ..good
        },
        SwapParams {
            block_size: 512,
            ..good
        },
        SwapParams {
            block_size: 8192,
            page_size: 8192,
            ..good
        },
        SwapParams {
            page_size: 2048,
            ..good
        },
        SwapParams {
            page_size: 6144,
            ..good
        },
        SwapParams {
            dev_first_block: 10,
            dev_end_block: 10,
            ..good
        },
        SwapParams {
            dev_end_block: u64::MAX,
            ..good
        },
        SwapParams {
            max_pages: u64::MAX,
            i_size: u64::MAX,
            ..good
        },
    ];
    for p in bad {
        assert!(
            matches!(SwapMapBuilder::new(&p), Err(Refusal::Invalid { .. })),
            "{p:?}"
        );
    }
}

#[test]
fn bad_extent_lists() -> Result<(), Refusal> {
    let p = params(4 * KIB, 4);
    assert_eq!(
        run(&p, &[w(0, 100, 4), w(3, 200, 1)]).unwrap_err(),
        Refusal::BadExtent {
            start: 3 * 4096,
            end: 4 * 4096
        }
    );
    // Out of order beyond the swap area too.
    assert!(matches!(
        run(&p, &[w(0, 100, 4), w(10, 200, 1), w(9, 300, 1)]),
        Err(Refusal::BadExtent { .. })
    ));
    assert!(matches!(
        run(&p, &[w(0, 100, 4), w(u64::MAX, 200, 2)]),
        Err(Refusal::BadExtent { .. })
    ));
    // Zero-length extents are ignored.
    run(&p, &[w(0, 100, 2), w(2, 0, 0), w(2, 102, 2)])?;
    Ok(())
}

#[test]
fn builder_is_poisoned_after_an_error() {
    let p = params(4 * KIB, 4);
    let mut sink = |_: Run| Ok::<(), ()>(());
    let mut b = SwapMapBuilder::new(&p).unwrap();
    let e = b.push(w(1, 100, 4), &mut sink).unwrap_err();
    assert_eq!(
        e,
        BuildError::Refused(Refusal::Hole {
            start: 0,
            end: 4096
        })
    );
    assert_eq!(b.push(w(0, 100, 4), &mut sink).unwrap_err(), e);
    assert_eq!(b.finish(&mut sink).unwrap_err(), e);

    // A sink error stops the build and poisons the builder.
    let mut b = SwapMapBuilder::new(&p).unwrap();
    let mut failing = |_: Run| Err::<(), u32>(7);
    b.push(w(0, 100, 2), &mut failing).unwrap();
    assert_eq!(b.push(w(2, 300, 2), &mut failing), Err(BuildError::Sink(7)));
    assert_eq!(
        b.finish(&mut failing),
        Err(BuildError::Refused(Refusal::Aborted))
    );
}

#[test]
fn count_then_fill() {
    let p = params(KIB, 16);
    let xs = [w(0, 400, 16), w(16, 800, 20), w(36, 1000, 28)];
    let count = build(&p, xs, |_| Ok::<(), TableError>(())).unwrap();
    assert_eq!(count.nr_runs, 3);
    let mut buf = [Run::default(); 3];
    let mut wr = RunWriter::new(&mut buf);
    let s = build(&p, xs, |r| wr.push(r)).unwrap();
    assert_eq!(s, count);
    let runs = wr.into_runs();
    assert_eq!(runs, [r(0, 4, 100), r(4, 5, 200), r(9, 7, 250)]);
    // Too small a table.
    let mut small = [Run::default(); 2];
    let mut wr = RunWriter::new(&mut small);
    assert_eq!(
        build(&p, xs, |r| wr.push(r)).unwrap_err(),
        BuildError::Sink(TableError {
            what: "more runs than slots"
        })
    );
}

#[test]
fn table_lookups() {
    let runs = [r(0, 4, 100), r(4, 5, 200), r(9, 7, 250)];
    let t = SwapTable::new(&runs, 4096).unwrap();
    // map() at every page and one past the end is checked against the model
    // in swapmap.rs, and on this table at its run boundaries by the KUnit
    // suite (rust/kunit/swapmap.rs); here the page number that overflows.
    assert_eq!(t.map(u64::MAX), None);

    let segs: Vec<Segment> = t.segments(3 * 4096, 7 * 4096).unwrap().collect();
    assert_eq!(
        segs,
        [
            Segment {
                sector: 824,
                bytes: 4096
            },
            Segment {
                sector: 1600,
                bytes: 5 * 4096
            },
            Segment {
                sector: 2000,
                bytes: 4096
            },
        ]
    );
    // Sub-page, sector-aligned pieces.
    let segs: Vec<Segment> = t.segments(4 * 4096 - 512, 1024).unwrap().collect();
    assert_eq!(
        segs,
        [
            Segment {
                sector: 831,
                bytes: 512
            },
            Segment {
                sector: 1600,
                bytes: 512
            },
        ]
    );
    assert_eq!(t.segments(0, 0).unwrap().count(), 0);
    assert_eq!(t.segments(16 * 4096, 0).unwrap().count(), 0);
    assert!(t.segments(15 * 4096, 4097).is_none());
    assert!(t.segments(15 * 4096, 8192).is_none());
    assert!(t.segments(100, 512).is_none());
    assert!(t.segments(u64::MAX - 511, 512).is_none());
}

#[test]
fn table_invariants() {
    let bad: [&[Run]; 6] = [
        &[r(1, 1, 0)],
        &[r(0, 0, 0)],
        &[r(0, 2, 0), r(3, 1, 0)],
        &[r(0, 2, 0), r(1, 1, 0)],
        &[Run {
            start_page: 0,
            nr_pages: 1,
            start_sector: 4,
        }],
        &[Run {
            start_page: 0,
            nr_pages: 2,
            start_sector: !7,
        }],
    ];
    for runs in bad {
        assert!(SwapTable::new(runs, 4096).is_err(), "{runs:?}");
    }
    assert!(SwapTable::new(&[r(0, 1, 0)], 4000).is_err());
    assert!(SwapTable::new(&[r(0, 1, 0)], 256).is_err());
    assert!(SwapTable::new(&[r(0, u64::MAX >> 11, 0)], 4096).is_err());
    let t = SwapTable::new(&[], 4096).unwrap();
    assert_eq!(t.map(0), None);
    assert_eq!(t.segments(0, 0).unwrap().count(), 0);
}

#[test]
fn display() {
    let r = Refusal::Misaligned {
        start: 4096,
        end: 8192,
    };
    assert_eq!(
        std::format!("{r}"),
        "pages not physically contiguous and page-aligned on the device at file offset [4096, 8192)"
    );
    assert_eq!(
        std::format!("{}", Refusal::TooSmall { max_pages: 1 }),
        "swap header declares 1 page(s), need at least 2"
    );
}
