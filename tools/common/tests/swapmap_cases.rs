// SPDX-License-Identifier: GPL-2.0

//! Example-based tests of the swap map builder and the pinned swap table
//! (`rust/common/swapmap.rs`); the property tests are in `swapmap.rs`.
//! The examples are `swapfs_common::swapmap::cases`, which the module's
//! KUnit suite runs too; the tests of the API's behaviour are here.

#![allow(clippy::arithmetic_side_effects)]

use swapfs_common::format::{extent_flags, Extent};
use swapfs_common::swapmap::cases::{
    params, r, w, BAD_TABLES, BUILDS, INVALID_PARAMS, MAPS, SEGMENTS, TABLE,
};
use swapfs_common::swapmap::*;

mod support;
use support::run;

#[test]
fn shared_builds() {
    for c in BUILDS {
        let want = c.want.map(|(runs, s)| (s, runs.to_vec()));
        assert_eq!(run(&c.params, c.extents), want, "{}", c.what);
    }
}

#[test]
fn shared_invalid_params() {
    for p in INVALID_PARAMS {
        assert!(
            matches!(SwapMapBuilder::new(p), Err(Refusal::Invalid { .. })),
            "{p:?}"
        );
    }
}

#[test]
fn shared_table_lookups() {
    let t = SwapTable::new(&TABLE, 4096).unwrap();
    assert_eq!(t.total_pages(), 16);
    for &(page, want) in MAPS {
        assert_eq!(t.map(page), want, "page {page}");
    }
    for &(pos, len, want) in SEGMENTS {
        let got: Option<Vec<Segment>> = t.segments(pos, len).map(Iterator::collect);
        assert_eq!(got.as_deref(), want, "[{pos}, +{len})");
    }
    for &(runs, page_size) in BAD_TABLES {
        assert!(
            SwapTable::new(runs, page_size).is_err(),
            "{runs:?} {page_size}"
        );
    }
}

#[test]
fn empty_table() {
    let t = SwapTable::new(&[], 4096).unwrap();
    assert_eq!(t.map(0), None);
    assert_eq!(t.segments(0, 0).unwrap().count(), 0);
}

#[test]
fn start_ppage() {
    assert_eq!(r(1, 5, 200).start_ppage(4096), 200);
    let run = Run {
        start_page: 0,
        nr_pages: 3,
        start_sector: 800 * 4,
    };
    assert_eq!(run.start_ppage(16384), 100);
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
fn builder_is_poisoned_after_an_error() {
    let p = params(4096, 4);
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
    // Every build that succeeds: counting first gives the same summary,
    // filling a table of exactly the runs gives the runs, one slot fewer
    // fails.
    for c in BUILDS {
        let Ok((runs, s)) = c.want else { continue };
        let xs = c.extents.iter().copied();
        let count = build(&c.params, xs.clone(), |_| Ok::<(), TableError>(()));
        assert_eq!(count, Ok(s), "{}", c.what);
        let mut buf = vec![Run::default(); runs.len()];
        let mut wr = RunWriter::new(&mut buf);
        assert_eq!(build(&c.params, xs.clone(), |r| wr.push(r)), Ok(s));
        assert_eq!(wr.into_runs(), runs, "{}", c.what);
        let mut small = vec![Run::default(); runs.len() - 1];
        let mut wr = RunWriter::new(&mut small);
        assert_eq!(
            build(&c.params, xs, |r| wr.push(r)),
            Err(BuildError::Sink(TableError {
                what: "more runs than slots"
            })),
            "{}",
            c.what
        );
    }
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
    assert_eq!(
        std::format!(
            "{}",
            Refusal::Hole {
                start: 0,
                end: 40960
            }
        ),
        "hole at file offset [0, 40960)"
    );
}
