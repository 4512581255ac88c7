// SPDX-License-Identifier: GPL-2.0

//! Property tests of the swap map builder and the pinned swap table
//! (`rust/common/swapmap.rs`) against a naive per-page model.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use swapfs_common::swapmap::{
    build, BuildError, ExtentKind, FileExtent, Policy, Refusal, Run, Segment, Summary,
    SwapMapBuilder, SwapParams, SwapTable,
};

mod support;
use support::run;

/// A generated test case.
#[derive(Clone, Debug)]
struct Case {
    params: SwapParams,
    extents: Vec<FileExtent>,
}

/// What the model says about one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    /// Usable, at this device page.
    Good(u64),
    /// Every block mapped and acceptable, but not contiguous and aligned.
    Misaligned,
    /// The first block that is a hole (`None`) or refused (`Some`).
    Bad(u64, Option<Refusal>),
}

/// The naive model: classifies every block and every page of the swap area
/// independently, by searching the extent list. Returns the device page of
/// every swap page, or the refusal the builder must give.
fn model(p: &SwapParams, xs: &[FileExtent]) -> Result<Vec<u64>, Refusal> {
    let bs = u64::from(p.block_size);
    let ps = u64::from(p.page_size);
    let bpp = ps / bs;
    if p.max_pages <= 1 {
        return Err(Refusal::TooSmall {
            max_pages: p.max_pages,
        });
    }
    let needed = p.max_pages * ps;
    if p.i_size < needed {
        return Err(Refusal::Truncated {
            i_size: p.i_size,
            needed,
        });
    }
    let end_blk = p.max_pages * bpp;
    let xs: Vec<FileExtent> = xs.iter().copied().filter(|e| e.len > 0).collect();

    // Ok(device block), or Err(None) for a hole, Err(Some(r)) if refused.
    let block = |b: u64| -> Result<u64, Option<Refusal>> {
        let e = xs
            .iter()
            .find(|e| e.lblk <= b && b < e.lblk + e.len)
            .ok_or(None)?;
        let cend = (e.lblk + e.len).min(end_blk);
        let (start, end) = (e.lblk * bs, cend * bs);
        let refused = match e.kind {
            ExtentKind::Written => None,
            ExtentKind::Unwritten if p.policy.allow_unwritten => None,
            ExtentKind::Unwritten => Some(Refusal::Unwritten { start, end }),
            ExtentKind::Shared => Some(Refusal::Shared { start, end }),
            ExtentKind::Delalloc => Some(Refusal::Delalloc { start, end }),
            ExtentKind::Inline => Some(Refusal::Inline { start, end }),
            ExtentKind::Encoded => Some(Refusal::Encoded { start, end }),
        };
        if let Some(r) = refused {
            return Err(Some(r));
        }
        let pend = u128::from(e.pblk) + u128::from(cend - e.lblk);
        if e.pblk < p.dev_first_block || pend > u128::from(p.dev_end_block) {
            return Err(Some(Refusal::OutOfDevice { start, end }));
        }
        Ok(e.pblk + (b - e.lblk))
    };
    let page = |pg: u64| -> Page {
        let mut pblks = Vec::new();
        for b in pg * bpp..(pg + 1) * bpp {
            match block(b) {
                Ok(x) => pblks.push(x),
                Err(r) => return Page::Bad(b, r),
            }
        }
        let first = pblks[0];
        let contiguous = pblks
            .iter()
            .enumerate()
            .all(|(i, &x)| x == first + i as u64);
        if contiguous && first % bpp == 0 {
            Page::Good(first / bpp)
        } else {
            Page::Misaligned
        }
    };
    let mut out = Vec::new();
    for pg in 0..p.max_pages {
        match page(pg) {
            Page::Good(x) => out.push(x),
            Page::Bad(_, Some(r)) => return Err(r),
            Page::Bad(b, None) => {
                let end = xs
                    .iter()
                    .map(|e| e.lblk)
                    .filter(|&l| l > b)
                    .min()
                    .unwrap_or(end_blk)
                    .min(end_blk);
                return Err(Refusal::Hole {
                    start: b * bs,
                    end: end * bs,
                });
            }
            Page::Misaligned => {
                let mut q = pg + 1;
                while q < p.max_pages && page(q) == Page::Misaligned {
                    q += 1;
                }
                return Err(Refusal::Misaligned {
                    start: pg * ps,
                    end: q * ps,
                });
            }
        }
    }
    Ok(out)
}

/// Raw material for one extent.
type Spec = (u8, u64, u8, u64, u8);

/// Turns raw specs into a sorted, non-overlapping extent list. In `clean`
/// mode there are no gaps and only written/unwritten extents, and the list
/// covers the swap area, so that many cases succeed or fail only on
/// alignment.
fn extents(specs: &[Spec], clean: bool, bpp: u64, end_blk: u64, dev_end: u64) -> Vec<FileExtent> {
    let mut out = Vec::new();
    let mut lblk = 0u64;
    let mut pnext = 64u64;
    let place = |sel: u8, rnd: u64, lblk: u64, pnext: u64| -> u64 {
        match sel % 10 {
            0..=3 => pnext,
            // Page-aligned relative to the logical offset.
            4..=6 => (rnd % 256) * bpp + 16 * bpp + lblk % bpp,
            7..=8 => rnd % 4096,
            _ => dev_end.saturating_sub(rnd % 64),
        }
    };
    for &(gap_sel, len_rnd, place_sel, p_rnd, kind_sel) in specs {
        if !clean && gap_sel % 8 == 0 {
            lblk += 1 + u64::from(gap_sel) % (2 * bpp + 1);
        }
        let len = 1 + len_rnd % (6 * bpp);
        let kind = if clean {
            if kind_sel % 5 == 0 {
                ExtentKind::Unwritten
            } else {
                ExtentKind::Written
            }
        } else {
            match kind_sel % 20 {
                0..=11 => ExtentKind::Written,
                12..=14 => ExtentKind::Unwritten,
                15 => ExtentKind::Shared,
                16 => ExtentKind::Delalloc,
                17 => ExtentKind::Inline,
                18 => ExtentKind::Encoded,
                _ => ExtentKind::Written,
            }
        };
        let pblk = place(place_sel, p_rnd, lblk, pnext);
        out.push(FileExtent {
            lblk,
            pblk,
            len,
            kind,
        });
        lblk += len;
        pnext = pblk + len;
    }
    if clean && lblk < end_blk {
        let len = end_blk - lblk + specs.len() as u64 % 3;
        let pblk = if specs.len().is_multiple_of(2) {
            pnext
        } else {
            bpp * 40 + lblk % bpp
        };
        out.push(FileExtent {
            lblk,
            pblk,
            len,
            kind: ExtentKind::Written,
        });
    }
    out
}

prop_compose! {
    fn case()(
        block_log2 in 10u32..=12,
        page_extra in prop_oneof![4 => Just(0u32), 1 => 1u32..=2],
        max_pages in prop_oneof![1 => 0u64..=1, 20 => 2u64..=24],
        clean in any::<bool>(),
        allow_unwritten in prop_oneof![3 => Just(true), 1 => Just(false)],
        truncated in prop_oneof![12 => Just(false), 1 => Just(true)],
        extra_size in 0u64..10_000,
        dev_first in 0u64..80,
        specs in prop::collection::vec(any::<Spec>(), 0..14),
    ) -> Case {
        let block_size = 1u32 << block_log2;
        let page_size = 1u32 << (12 + page_extra);
        let bpp = u64::from(page_size / block_size);
        let needed = max_pages * u64::from(page_size);
        let i_size = if truncated { needed.saturating_sub(1 + extra_size % 5000) } else { needed + extra_size };
        let dev_end = 4600 * bpp;
        let extents = extents(&specs, clean, bpp, max_pages * bpp, dev_end);
        Case {
            params: SwapParams {
                max_pages,
                i_size,
                page_size,
                block_size,
                dev_first_block: dev_first,
                dev_end_block: dev_end,
                policy: Policy { allow_unwritten },
            },
            extents,
        }
    }
}

/// Checks the builder against the model on one case; returns whether it
/// succeeded.
fn check(c: &Case) -> Result<bool, TestCaseError> {
    let p = &c.params;
    let want = model(p, &c.extents);
    let got = run(p, &c.extents);
    let (s, runs, pages) = match (got, want) {
        (Err(g), Err(w)) => {
            prop_assert_eq!(g, w);
            return Ok(false);
        }
        (Ok(_), Err(w)) => {
            return Err(TestCaseError::fail(format!("builder accepted, model: {w}")))
        }
        (Err(g), Ok(_)) => return Err(TestCaseError::fail(format!("builder refused: {g}"))),
        (Ok((s, runs)), Ok(pages)) => (s, runs, pages),
    };
    let ps = u64::from(p.page_size);
    let spp = ps / 512;

    // The runs partition 0..max in order, map every page as the model does,
    // and are merged maximally.
    let mut next = 0;
    for r in &runs {
        prop_assert_eq!(r.start_page, next);
        prop_assert!(r.nr_pages > 0);
        prop_assert_eq!(r.start_sector % spp, 0);
        for i in 0..r.nr_pages {
            prop_assert_eq!(
                r.start_ppage(p.page_size) + i,
                pages[(r.start_page + i) as usize]
            );
        }
        next += r.nr_pages;
    }
    prop_assert_eq!(next, p.max_pages);
    for w in runs.windows(2) {
        prop_assert!(
            w[0].start_sector + w[0].nr_pages * spp != w[1].start_sector,
            "runs not merged: {:?}",
            w
        );
    }
    // Summary.
    let lo = *pages[1..].iter().min().unwrap();
    let hi = *pages[1..].iter().max().unwrap();
    prop_assert_eq!(
        s,
        Summary {
            max: p.max_pages,
            pages: p.max_pages - 1,
            lowest_ppage: lo,
            highest_ppage: hi,
            span: 1 + hi - lo,
            nr_runs: runs.len() as u64,
        }
    );
    // A counting pass gives the same summary.
    let count = build(p, c.extents.iter().copied(), |_| Ok::<(), ()>(())).unwrap();
    prop_assert_eq!(count, s);

    // The table: every page, and every page-aligned range.
    let t = SwapTable::new(&runs, p.page_size).unwrap();
    prop_assert_eq!(t.total_pages(), p.max_pages);
    for (pg, &x) in pages.iter().enumerate() {
        let pg = pg as u64;
        let (sector, left) = t.map(pg).unwrap();
        prop_assert_eq!(sector, x * spp);
        let r = runs
            .iter()
            .find(|r| r.start_page <= pg && pg < r.start_page + r.nr_pages)
            .unwrap();
        prop_assert_eq!(left, r.start_page + r.nr_pages - pg);
    }
    prop_assert_eq!(t.map(p.max_pages), None);
    let sector_of = |byte: u64| pages[(byte / ps) as usize] * spp + (byte % ps) / 512;
    let max = p.max_pages;
    for a in 0..max {
        for b in a..=max {
            check_segments(&t, a * ps, (b - a) * ps, &sector_of)?;
        }
    }
    // Sub-page ranges across run boundaries.
    for r in &runs[1..] {
        let edge = r.start_page * ps;
        check_segments(&t, edge - 512, 1024, &sector_of)?;
        check_segments(&t, edge - 512, 512, &sector_of)?;
    }
    prop_assert!(t.segments(max * ps, 512).is_none());
    Ok(true)
}

/// Checks that `segments(pos, len)` covers exactly the model's sectors, one
/// segment per run touched.
fn check_segments(
    t: &SwapTable<'_>,
    pos: u64,
    len: u64,
    sector_of: &dyn Fn(u64) -> u64,
) -> Result<(), TestCaseError> {
    let segs: Vec<Segment> = t.segments(pos, len).unwrap().collect();
    let mut at = pos;
    for s in &segs {
        prop_assert!(s.bytes > 0 && s.bytes % 512 == 0);
        for i in 0..s.bytes / 512 {
            prop_assert_eq!(s.sector + i, sector_of(at + i * 512));
        }
        at += s.bytes;
    }
    prop_assert_eq!(at, pos + len);
    let ps = t.page_size();
    let touched = if len == 0 {
        0
    } else {
        let (first, last) = (pos / ps, (pos + len - 1) / ps);
        t.runs()
            .iter()
            .filter(|r| r.start_page <= last && first < r.start_page + r.nr_pages)
            .count()
    };
    prop_assert_eq!(segs.len(), touched);
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 3000, ..Config::default() })]

    #[test]
    fn builder_matches_model(c in case()) {
        check(&c)?;
    }

    /// Splitting an acceptable extent anywhere changes nothing: pages are
    /// assembled across extent boundaries and runs merged across them. (The
    /// device is made large enough for every extent: device bounds are
    /// checked per extent, so splitting one that leaves the device changes
    /// which blocks are refused.)
    #[test]
    fn splitting_extents_changes_nothing(c in case(), at in any::<prop::sample::Index>(), cut in any::<u64>()) {
        if c.extents.is_empty() {
            return Ok(());
        }
        let i = at.index(c.extents.len());
        let e = c.extents[i];
        if e.len < 2 {
            return Ok(());
        }
        if !matches!(e.kind, ExtentKind::Written | ExtentKind::Unwritten) {
            return Ok(());
        }
        let k = 1 + cut % (e.len - 1);
        let mut c = c;
        c.params.dev_first_block = 0;
        c.params.dev_end_block = 1 << 40;
        let mut split = c.extents.clone();
        split[i].len = k;
        split.insert(i + 1, FileExtent { lblk: e.lblk + k, pblk: e.pblk + k, len: e.len - k, kind: e.kind });
        let a = run(&c.params, &c.extents);
        let b = run(&c.params, &split);
        match (&a, &b) {
            // A refused extent reports its own range.
            (Err(Refusal::Unwritten { start, .. }), Err(Refusal::Unwritten { start: s2, .. })) => {
                prop_assert_eq!(start, s2);
            }
            _ => prop_assert_eq!(a, b),
        }
    }

    /// A list out of order is never accepted.
    #[test]
    fn disorder_is_refused(c in case(), at in any::<prop::sample::Index>()) {
        if c.extents.len() < 2 {
            return Ok(());
        }
        let i = at.index(c.extents.len() - 1);
        let mut xs = c.extents.clone();
        xs.swap(i, i + 1);
        prop_assert!(run(&c.params, &xs).is_err());
    }

    /// Feeding extents one by one to the streaming builder, which is how the
    /// kernel drives it from the extent walk, gives the same as `build`.
    #[test]
    fn streaming_equals_build(c in case()) {
        let mut got = Vec::new();
        let mut sink = |r: Run| { got.push(r); Ok::<(), ()>(()) };
        let res = match SwapMapBuilder::new(&c.params) {
            Err(r) => Err(r),
            Ok(mut b) => {
                let mut res = Ok(());
                for e in &c.extents {
                    if let Err(err) = b.push(*e, &mut sink) {
                        res = Err(err);
                        break;
                    }
                }
                match res {
                    Ok(()) => b.finish(&mut sink).map_err(|e| match e {
                        BuildError::Refused(r) => r,
                        BuildError::Sink(()) => Refusal::Aborted,
                    }),
                    Err(BuildError::Refused(r)) => Err(r),
                    Err(BuildError::Sink(())) => Err(Refusal::Aborted),
                }
            }
        };
        let want = run(&c.params, &c.extents);
        match (res, want) {
            (Ok(s), Ok((ws, wruns))) => {
                prop_assert_eq!(s, ws);
                prop_assert_eq!(got, wruns);
            }
            (a, b) => prop_assert_eq!(a.err(), b.err()),
        }
    }
}

/// The generator must produce plenty of accepted cases (and of each kind of
/// refusal), or the model comparison proves little.
#[test]
fn generator_covers_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let (mut ok, mut hole, mut mis, mut kind, mut ood, mut multi_run) = (0, 0, 0, 0, 0, 0);
    let n = 4000;
    for _ in 0..n {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        match run(&c.params, &c.extents) {
            Ok((s, _)) => {
                ok += 1;
                if s.nr_runs > 1 {
                    multi_run += 1;
                }
            }
            Err(Refusal::Hole { .. }) => hole += 1,
            Err(Refusal::Misaligned { .. }) => mis += 1,
            Err(Refusal::OutOfDevice { .. }) => ood += 1,
            Err(
                Refusal::Shared { .. }
                | Refusal::Unwritten { .. }
                | Refusal::Delalloc { .. }
                | Refusal::Inline { .. }
                | Refusal::Encoded { .. },
            ) => kind += 1,
            Err(_) => {}
        }
    }
    eprintln!(
        "ok {ok} (multi-run {multi_run}), hole {hole}, misaligned {mis}, kind {kind}, out of device {ood}"
    );
    assert!(ok * 10 > n, "accepted {ok} of {n}");
    assert!(multi_run * 20 > n);
    assert!(hole * 20 > n && mis * 20 > n && kind * 20 > n && ood * 50 > n);
}
