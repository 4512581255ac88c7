// SPDX-License-Identifier: GPL-2.0

//! Swap activation: from a file's extents to the page-aligned device runs
//! that `swapon` registers with mm, and the pinned table the swap IO path
//! reads (issue 5).
//!
//! # What `swapon` needs
//!
//! mm reads the swap header through the page cache and takes its page count,
//! `sis->max`, which includes the header page (page 0). The filesystem's
//! activation hook must then register, in ascending page order, page-aligned
//! physical runs `(start_page, nr_pages, start_block)` with
//! `add_swap_extent()` (`start_block` in `PAGE_SIZE` units), set
//! `sis->pages`, `sis->max` and `*span`, and return the number of extents;
//! `swapon` fails unless `sis->pages == sis->max - 1` afterwards.
//!
//! [`build`] (or [`SwapMapBuilder`], for callers that are themselves driven
//! by a callback such as [`super::extent::walk`]) turns the file's extents
//! into exactly that: the [`Run`]s, passed one at a time to a sink (this
//! module never allocates; the kernel runs it once to count and once to
//! fill), and a [`Summary`] with the values for `sis`. Or it refuses with a
//! [`Refusal`] that names the reason and the offending file byte range, for
//! the log line `swapfs: swapon <path>: <refusal>`.
//!
//! # Semantics
//!
//! The *swap area* is the file's bytes `[0, max * page_size)`, pages
//! `0..max`. Only the pages the header declares are looked at: extents
//! beyond are ignored (a file longer than its header is fine), but the file
//! must not be shorter ([`Refusal::Truncated`]) and must have a page besides
//! the header ([`Refusal::TooSmall`]).
//!
//! Swap slot `p` **is** file page `p`, for every `p` in `0..max`:
//!
//! - **The header page is mapped.** Page 0 is part of the runs and obeys the
//!   same rules as every other page, as in `generic_swapfile_activate()` and
//!   `iomap_swapfile_activate()`, which both feed it to `add_swap_extent()`
//!   ("the mm still wants that first page"). mm never allocates slot 0, so
//!   the only effect is that the runs, and the pinned table, partition
//!   `0..max` with no special case. It is left out of the lowest/highest
//!   physical page and the span, as mm does.
//! - **No page is skipped or renumbered.** A page is usable when all its
//!   blocks are mapped by acceptable extents, are physically contiguous, and
//!   the first one is page-aligned on the device. A page whose blocks are
//!   all mapped but fail the last two conditions is refused as
//!   [`Refusal::Misaligned`] (with the maximal run of such pages), never
//!   skipped. `generic_swapfile_activate()` skips such pages and
//!   `iomap_swapfile_activate()` trims each physical extent to page
//!   alignment; both then number the usable pages consecutively and lower
//!   `sis->max` to their count, so their swap slot `n` is the `n`-th usable
//!   page, *not* file page `n`. That is sound for them because mm then does
//!   swap IO straight to the block device through its own extent tree and
//!   never looks at the file again. It is wrong for swapfs: our IO hook
//!   (`a_ops->swap_rw` on 7.2, `struct swap_ops` on 7.3) receives the slot
//!   as a file position (`ki_pos = slot << PAGE_SHIFT`, `swap_dev_pos()`) and
//!   maps it through the pinned [`SwapTable`] by file offset, so the table,
//!   mm's extents and the file must agree page for page. Renumbering would
//!   silently break that identity, and shrinking `max` would also make the
//!   header lie about the area's size and throw away swap space the
//!   administrator asked for. A refusal with the offending range is the
//!   honest answer: the file must be recreated (preallocated) on aligned
//!   blocks. With 4 KiB blocks every page is trivially contiguous, so this
//!   only concerns 1 KiB and 2 KiB blocks.
//! - **Holes are refused**, anywhere in the swap area ([`Refusal::Hole`]):
//!   swap writes must never allocate.
//! - **Extent kinds**: written extents are used; unwritten (preallocated)
//!   extents are used as if written unless [`Policy::allow_unwritten`] is
//!   off (swap never reads a slot it has not written, and swap IO goes to
//!   the device directly, so the unwritten flag never needs converting, as
//!   in iomap); shared (reference count above 1), delayed-allocation, inline
//!   and encoded (compressed) extents are refused, each with its own reason,
//!   so that a future feature can never slip through.
//! - **Device bounds**: an extent whose (clipped) physical range leaves
//!   `[dev_first_block, dev_end_block)` is refused.
//!
//! When several problems exist, the refusal names the first *page* that is
//! not usable, in file order. If that page contains a block that is a hole
//! or mapped by a refused extent, the first such block decides: a hole is
//! reported with its whole extent in the swap area (up to the next extent or
//! the end of the area), a refused extent with its range clipped to the swap
//! area. Otherwise the page is misaligned and the refusal spans it and the
//! misaligned pages that directly follow it. Extents out of logical order or
//! overlapping ([`Refusal::BadExtent`]) are refused as soon as they are
//! seen, anywhere in the file. Zero-length extents are ignored.
//!
//! Runs are merged whenever consecutive pages are physically consecutive,
//! across extent boundaries and kinds, so the runs are the minimal
//! description of the mapping and the pinned table is as small as possible.

// Everything here runs on values from the disk and from the swap header:
// no arithmetic may wrap or panic.
#![warn(clippy::arithmetic_side_effects)]

use core::cmp::{max, min};
use core::fmt;
use core::mem::size_of;

use super::format::{Extent, MAX_BLOCK_SIZE_LOG2, MIN_BLOCK_SIZE_LOG2};

/// log2 of the size of a sector, the unit of bio addresses.
pub const SECTOR_SHIFT: u32 = 9;

/// What kind of mapping an extent is, as the filesystem reports it after
/// flushing the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentKind {
    /// Allocated and written.
    Written,
    /// Allocated, never written (preallocated); reads return zeroes.
    Unwritten,
    /// Blocks whose reference count is above 1 (reflinked): writing them in
    /// place would change another file.
    Shared,
    /// Delayed allocation: no blocks yet.
    Delalloc,
    /// Data stored inline in metadata.
    Inline,
    /// Compressed or otherwise encoded data.
    Encoded,
}

/// One extent of the file: logical blocks `lblk..lblk + len` map to
/// physical blocks `pblk..pblk + len`. `pblk` is ignored for kinds that have
/// no blocks of their own ([`ExtentKind::Delalloc`], [`ExtentKind::Inline`],
/// [`ExtentKind::Encoded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileExtent {
    /// First logical block (file offset / block size).
    pub lblk: u64,
    /// First physical block on the device.
    pub pblk: u64,
    /// Length in blocks.
    pub len: u64,
    /// What the extent is.
    pub kind: ExtentKind,
}

impl FileExtent {
    /// The extent as the filesystem stores it; `shared` says whether any of
    /// its blocks has a reference count above 1 (callers split extents at
    /// reference-count changes if they want a precise range).
    pub fn from_disk(e: &Extent, shared: bool) -> FileExtent {
        let kind = if shared {
            ExtentKind::Shared
        } else if e.is_unwritten() {
            ExtentKind::Unwritten
        } else {
            ExtentKind::Written
        };
        FileExtent {
            lblk: e.lblk,
            pblk: e.pblk,
            len: u64::from(e.len),
            kind,
        }
    }

    /// One past the last logical block, if it does not overflow.
    pub fn lend(&self) -> Option<u64> {
        self.lblk.checked_add(self.len)
    }
}

/// What swapon accepts beyond the fixed rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Use unwritten (preallocated) extents as if they were written.
    pub allow_unwritten: bool,
}

/// The inputs of a swap map besides the extents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapParams {
    /// Pages of the swap area, including the header page: mm's `sis->max`
    /// as read from the swap header (`last_page + 1`).
    pub max_pages: u64,
    /// The file's size in bytes (`i_size`); need not be a page multiple.
    pub i_size: u64,
    /// The page size in bytes: a power of two, at least the block size.
    pub page_size: u32,
    /// The filesystem block size in bytes: 1024, 2048 or 4096.
    pub block_size: u32,
    /// First physical block extents may use.
    pub dev_first_block: u64,
    /// One past the last physical block extents may use.
    pub dev_end_block: u64,
    /// What is accepted.
    pub policy: Policy,
}

/// A page-aligned run of the swap area: swap pages (= file pages)
/// `start_page..start_page + nr_pages` are the device's sectors from
/// `start_sector` on, contiguously. `start_sector` is page-aligned.
///
/// This is both what [`build`] emits (for `add_swap_extent()`: use
/// [`Run::start_ppage`]) and the entry of the pinned [`SwapTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// First swap page (file page) of the run.
    pub start_page: u64,
    /// Pages in the run (at least 1).
    pub nr_pages: u64,
    /// Device sector (512 bytes) of the first page.
    pub start_sector: u64,
}

// The pinned table must stay small: one run is 24 bytes, at most 32.
const _: () = assert!(size_of::<Run>() == 24 && size_of::<Run>() <= 32);

impl Run {
    /// One past the last swap page, if it does not overflow.
    pub fn end_page(&self) -> Option<u64> {
        self.start_page.checked_add(self.nr_pages)
    }

    /// The first device page (in units of `page_size`, which must be the
    /// page size the run was built for): `add_swap_extent()`'s
    /// `start_block`.
    pub fn start_ppage(&self, page_size: u32) -> u64 {
        let shift = page_size.trailing_zeros().saturating_sub(SECTOR_SHIFT);
        self.start_sector.checked_shr(shift).unwrap_or(0)
    }
}

/// What a successful build found: the values for mm's `swap_info_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Pages of the swap area including the header page (`sis->max`,
    /// unchanged from [`SwapParams::max_pages`]).
    pub max: u64,
    /// Usable swap pages, `max - 1` (`sis->pages`).
    pub pages: u64,
    /// Lowest device page of swap pages `1..max` (the header page excluded).
    pub lowest_ppage: u64,
    /// Highest device page of swap pages `1..max` (the header page
    /// excluded).
    pub highest_ppage: u64,
    /// `1 + highest_ppage - lowest_ppage` (`*span`).
    pub span: u64,
    /// Runs emitted, the activation's return value (mm's extent count).
    pub nr_runs: u64,
}

/// Why a file cannot back swap. File ranges are byte offsets `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The parameters are inconsistent, or a computation overflowed.
    Invalid {
        /// What is wrong.
        what: &'static str,
    },
    /// The header declares no page besides itself.
    TooSmall {
        /// The page count of the header, header page included.
        max_pages: u64,
    },
    /// The file is shorter than the area its swap header declares.
    Truncated {
        /// The file's size.
        i_size: u64,
        /// The size the header declares (`max * page_size`).
        needed: u64,
    },
    /// A hole in the swap area.
    Hole {
        /// First byte of the hole.
        start: u64,
        /// One past its last byte (within the swap area).
        end: u64,
    },
    /// A shared (reflinked) extent.
    Shared {
        /// First byte.
        start: u64,
        /// One past the last byte (within the swap area).
        end: u64,
    },
    /// An unwritten extent while the policy refuses them.
    Unwritten {
        /// First byte.
        start: u64,
        /// One past the last byte (within the swap area).
        end: u64,
    },
    /// A delayed allocation.
    Delalloc {
        /// First byte.
        start: u64,
        /// One past the last byte (within the swap area).
        end: u64,
    },
    /// Inline data.
    Inline {
        /// First byte.
        start: u64,
        /// One past the last byte (within the swap area).
        end: u64,
    },
    /// A compressed or encoded extent.
    Encoded {
        /// First byte.
        start: u64,
        /// One past the last byte (within the swap area).
        end: u64,
    },
    /// An extent whose blocks leave the device's valid range.
    OutOfDevice {
        /// First byte.
        start: u64,
        /// One past the last byte (within the swap area).
        end: u64,
    },
    /// Pages whose blocks are all mapped but are not physically contiguous
    /// and page-aligned on the device (see the module documentation).
    Misaligned {
        /// First byte of the first such page.
        start: u64,
        /// One past the last byte of the last such page of the run.
        end: u64,
    },
    /// An extent out of logical order, overlapping its predecessor, or
    /// overflowing (a bug or corruption in the extent source).
    BadExtent {
        /// First byte of the offending extent (saturated).
        start: u64,
        /// One past its last byte (saturated).
        end: u64,
    },
    /// The builder was used again after an error.
    Aborted,
}

impl Refusal {
    /// The offending file byte range `[start, end)`, if the refusal has one.
    pub fn range(&self) -> Option<(u64, u64)> {
        match *self {
            Refusal::Hole { start, end }
            | Refusal::Shared { start, end }
            | Refusal::Unwritten { start, end }
            | Refusal::Delalloc { start, end }
            | Refusal::Inline { start, end }
            | Refusal::Encoded { start, end }
            | Refusal::OutOfDevice { start, end }
            | Refusal::Misaligned { start, end }
            | Refusal::BadExtent { start, end } => Some((start, end)),
            Refusal::Invalid { .. }
            | Refusal::TooSmall { .. }
            | Refusal::Truncated { .. }
            | Refusal::Aborted => None,
        }
    }

    /// A short description of the reason, without the range.
    pub fn reason(&self) -> &'static str {
        match *self {
            Refusal::Invalid { what } => what,
            Refusal::TooSmall { .. } => "swap area has no page besides its header",
            Refusal::Truncated { .. } => "file is shorter than its swap header declares",
            Refusal::Hole { .. } => "hole",
            Refusal::Shared { .. } => "shared extent",
            Refusal::Unwritten { .. } => "unwritten extent",
            Refusal::Delalloc { .. } => "delayed allocation",
            Refusal::Inline { .. } => "inline data",
            Refusal::Encoded { .. } => "encoded extent",
            Refusal::OutOfDevice { .. } => "extent outside the device",
            Refusal::Misaligned { .. } => {
                "pages not physically contiguous and page-aligned on the device"
            }
            Refusal::BadExtent { .. } => "extent out of order or overlapping",
            Refusal::Aborted => "swap map builder used after an error",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::Invalid { what } => write!(f, "invalid swap map input: {what}"),
            Refusal::TooSmall { max_pages } => write!(
                f,
                "swap header declares {max_pages} page(s), need at least 2"
            ),
            Refusal::Truncated { i_size, needed } => write!(
                f,
                "file has {i_size} bytes, its swap header declares {needed}"
            ),
            _ => match self.range() {
                Some((start, end)) => {
                    write!(f, "{} at file offset [{start}, {end})", self.reason())
                }
                None => f.write_str(self.reason()),
            },
        }
    }
}

/// Why [`build`] failed: a refusal, or the sink's own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError<E> {
    /// The file cannot back swap.
    Refused(Refusal),
    /// The sink returned an error; the build stopped there.
    Sink(E),
}

impl<E> From<Refusal> for BuildError<E> {
    fn from(r: Refusal) -> Self {
        BuildError::Refused(r)
    }
}

impl<E: fmt::Display> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Refused(r) => r.fmt(f),
            BuildError::Sink(e) => e.fmt(f),
        }
    }
}

const OVERFLOW: Refusal = Refusal::Invalid {
    what: "arithmetic overflow",
};

/// `v << s` as a multiplication, `None` if it overflows.
fn shl(v: u64, s: u32) -> Option<u64> {
    1u64.checked_shl(s).and_then(|m| v.checked_mul(m))
}

/// `v` or [`OVERFLOW`].
fn ck(v: Option<u64>) -> Result<u64, Refusal> {
    v.ok_or(OVERFLOW)
}

/// `v` or [`OVERFLOW`], for shifts.
fn ck32(v: Option<u32>) -> Result<u32, Refusal> {
    v.ok_or(OVERFLOW)
}

/// What is known of the page containing the builder's position, when the
/// position is inside a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageState {
    /// Every block so far is fine and at `pstart + (block - page start)`;
    /// `pstart` is page-aligned.
    Good(u64),
    /// Every block so far is fine, but not contiguous or not aligned.
    Misaligned,
}

/// A run being accumulated, in page units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenRun {
    start_page: u64,
    nr_pages: u64,
    start_ppage: u64,
}

/// The streaming swap map builder: [`SwapMapBuilder::push`] every extent in
/// logical order, then [`SwapMapBuilder::finish`]. Runs are passed to the
/// sink as soon as they are complete (merged maximally), so on an error the
/// sink may already have received some runs: discard them. The work is
/// proportional to the number of extents, not of pages.
///
/// After an error, every further call fails: with the same refusal, or with
/// [`Refusal::Aborted`] after a sink error.
#[derive(Clone, Debug)]
pub struct SwapMapBuilder {
    block_shift: u32,
    page_shift: u32,
    /// log2 of blocks per page.
    bpp_shift: u32,
    /// Blocks per page minus one.
    bpp_mask: u64,
    /// Blocks per page.
    bpp: u64,
    /// log2 of sectors per page.
    spp_shift: u32,
    max_pages: u64,
    /// One past the last block of the swap area (`max_pages` pages).
    end_blk: u64,
    dev_first: u64,
    dev_end: u64,
    allow_unwritten: bool,
    /// Next logical block to classify; every block before is fine and every
    /// page wholly before is decided.
    pos: u64,
    /// End of the last extent pushed (for the order check).
    last_end: u64,
    /// The page containing `pos`, when `pos` is inside a page.
    page: PageState,
    /// First page of a pending run of misaligned pages.
    mis_start: Option<u64>,
    /// The run being merged, not yet emitted.
    open: Option<OpenRun>,
    nr_runs: u64,
    lowest: u64,
    highest: u64,
    failed: Option<Refusal>,
}

impl SwapMapBuilder {
    /// Checks the parameters and starts a build.
    ///
    /// Refuses [`Refusal::Invalid`] for bad sizes or device bounds,
    /// [`Refusal::TooSmall`] if `max_pages <= 1` and [`Refusal::Truncated`]
    /// if `i_size < max_pages * page_size`.
    pub fn new(p: &SwapParams) -> Result<SwapMapBuilder, Refusal> {
        let bs = p.block_size;
        if !bs.is_power_of_two() {
            return Err(Refusal::Invalid {
                what: "block size is not a power of two",
            });
        }
        let block_shift = bs.trailing_zeros();
        if !(MIN_BLOCK_SIZE_LOG2..=MAX_BLOCK_SIZE_LOG2).contains(&block_shift) {
            return Err(Refusal::Invalid {
                what: "block size out of range",
            });
        }
        if !p.page_size.is_power_of_two() || p.page_size < bs {
            return Err(Refusal::Invalid {
                what: "page size is not a power of two at least the block size",
            });
        }
        let page_shift = p.page_size.trailing_zeros();
        let bpp_shift = ck32(page_shift.checked_sub(block_shift))?;
        let spp_shift = ck32(page_shift.checked_sub(SECTOR_SHIFT))?;
        let bpp = ck(shl(1, bpp_shift))?;
        let bpp_mask = ck(bpp.checked_sub(1))?;
        if p.dev_first_block >= p.dev_end_block {
            return Err(Refusal::Invalid {
                what: "empty device range",
            });
        }
        // Every sector and byte address on the device must be representable.
        if shl(p.dev_end_block, block_shift).is_none() {
            return Err(Refusal::Invalid {
                what: "device too large",
            });
        }
        if p.max_pages <= 1 {
            return Err(Refusal::TooSmall {
                max_pages: p.max_pages,
            });
        }
        let needed = shl(p.max_pages, page_shift).ok_or(Refusal::Invalid {
            what: "swap area too large",
        })?;
        if p.i_size < needed {
            return Err(Refusal::Truncated {
                i_size: p.i_size,
                needed,
            });
        }
        Ok(SwapMapBuilder {
            block_shift,
            page_shift,
            bpp_shift,
            bpp_mask,
            bpp,
            spp_shift,
            max_pages: p.max_pages,
            end_blk: needed >> block_shift,
            dev_first: p.dev_first_block,
            dev_end: p.dev_end_block,
            allow_unwritten: p.policy.allow_unwritten,
            pos: 0,
            last_end: 0,
            page: PageState::Misaligned,
            mis_start: None,
            open: None,
            nr_runs: 0,
            lowest: u64::MAX,
            highest: 0,
            failed: None,
        })
    }

    /// Adds the next extent (in logical order). Fails at the first problem,
    /// or with the sink's error.
    pub fn push<E>(
        &mut self,
        e: FileExtent,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<(), BuildError<E>> {
        if let Some(r) = self.failed {
            return Err(BuildError::Refused(r));
        }
        let res = self.push_inner(e, sink);
        self.record(res)
    }

    /// Ends the build: checks that the whole swap area was mapped, emits the
    /// last run and returns the summary.
    pub fn finish<E>(
        mut self,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<Summary, BuildError<E>> {
        if let Some(r) = self.failed {
            return Err(BuildError::Refused(r));
        }
        let res = self.finish_inner(sink);
        self.record(res)
    }

    /// Remembers the first error.
    fn record<T, E>(&mut self, res: Result<T, BuildError<E>>) -> Result<T, BuildError<E>> {
        match &res {
            Err(BuildError::Refused(r)) => self.failed = Some(*r),
            Err(BuildError::Sink(_)) => self.failed = Some(Refusal::Aborted),
            Ok(_) => {}
        }
        res
    }

    /// Bytes of `blk` blocks, saturated (for refusal ranges only).
    fn bytes(&self, blk: u64) -> u64 {
        shl(blk, self.block_shift).unwrap_or(u64::MAX)
    }

    /// Bytes of `page` pages, saturated (for refusal ranges only).
    fn page_bytes(&self, page: u64) -> u64 {
        shl(page, self.page_shift).unwrap_or(u64::MAX)
    }

    /// The refusal for a bad block at `blk` (the builder's position): a
    /// pending misaligned run comes first, it ends at the page of `blk`.
    fn bad(&self, blk: u64, r: Refusal) -> Refusal {
        match self.mis_start {
            Some(s) => Refusal::Misaligned {
                start: self.page_bytes(s),
                end: self.page_bytes(blk >> self.bpp_shift),
            },
            None => r,
        }
    }

    fn push_inner<E>(
        &mut self,
        e: FileExtent,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<(), BuildError<E>> {
        if e.len == 0 {
            return Ok(());
        }
        let bad_extent = Refusal::BadExtent {
            start: self.bytes(e.lblk),
            end: self.bytes(e.lblk.saturating_add(e.len)),
        };
        let lend = e.lend().ok_or(bad_extent)?;
        if e.lblk < self.last_end {
            return Err(bad_extent.into());
        }
        self.last_end = lend;
        if e.lblk >= self.end_blk {
            return Ok(());
        }
        // Extents arrive in order and `pos` never passes the previous
        // extent's end, so `pos <= e.lblk`.
        if e.lblk > self.pos {
            let hole = Refusal::Hole {
                start: self.bytes(self.pos),
                end: self.bytes(e.lblk),
            };
            return Err(self.bad(self.pos, hole).into());
        }
        let end = min(lend, self.end_blk);
        let n = ck(end.checked_sub(e.lblk))?;
        let (start, end) = (self.bytes(e.lblk), self.bytes(end));
        let refused = match e.kind {
            ExtentKind::Written => None,
            ExtentKind::Unwritten if self.allow_unwritten => None,
            ExtentKind::Unwritten => Some(Refusal::Unwritten { start, end }),
            ExtentKind::Shared => Some(Refusal::Shared { start, end }),
            ExtentKind::Delalloc => Some(Refusal::Delalloc { start, end }),
            ExtentKind::Inline => Some(Refusal::Inline { start, end }),
            ExtentKind::Encoded => Some(Refusal::Encoded { start, end }),
        };
        if let Some(r) = refused {
            return Err(self.bad(e.lblk, r).into());
        }
        let in_device =
            e.pblk >= self.dev_first && e.pblk.checked_add(n).is_some_and(|pe| pe <= self.dev_end);
        if !in_device {
            return Err(self.bad(e.lblk, Refusal::OutOfDevice { start, end }).into());
        }
        self.fine(e.lblk, e.pblk, n, sink)
    }

    /// Consumes `n` fine blocks at logical `l` (= `pos`), physical `p`.
    fn fine<E>(
        &mut self,
        mut l: u64,
        mut p: u64,
        mut n: u64,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<(), BuildError<E>> {
        let mask = self.bpp_mask;
        // The rest of a page begun by an earlier extent.
        if l & mask != 0 {
            let page_l = l & !mask;
            let page_end = ck(page_l.checked_add(self.bpp))?;
            let take = min(n, ck(page_end.checked_sub(l))?);
            let off = ck(l.checked_sub(page_l))?;
            self.page = match self.page {
                PageState::Good(ps) if ps.checked_add(off) == Some(p) => PageState::Good(ps),
                _ => PageState::Misaligned,
            };
            l = ck(l.checked_add(take))?;
            p = ck(p.checked_add(take))?;
            n = ck(n.checked_sub(take))?;
            self.pos = l;
            if l == page_end {
                let page = page_l >> self.bpp_shift;
                match self.page {
                    PageState::Good(ps) => self.good(page, 1, ps >> self.bpp_shift, sink)?,
                    PageState::Misaligned => self.misaligned(page),
                }
            }
            if n == 0 {
                return Ok(());
            }
        }
        // Whole pages: all aligned or all misaligned, as the extent is
        // physically contiguous.
        let k = n >> self.bpp_shift;
        if k > 0 {
            let page = l >> self.bpp_shift;
            if p & mask == 0 {
                self.good(page, k, p >> self.bpp_shift, sink)?;
            } else {
                self.misaligned(page);
            }
            let adv = k << self.bpp_shift;
            l = ck(l.checked_add(adv))?;
            p = ck(p.checked_add(adv))?;
            n = ck(n.checked_sub(adv))?;
            self.pos = l;
        }
        // The start of a page the next extent may complete.
        if n > 0 {
            self.page = if p & mask == 0 {
                PageState::Good(p)
            } else {
                PageState::Misaligned
            };
            self.pos = ck(l.checked_add(n))?;
        }
        Ok(())
    }

    /// Notes that `page` is misaligned (the run's end is not known yet).
    fn misaligned(&mut self, page: u64) {
        if self.mis_start.is_none() {
            self.mis_start = Some(page);
        }
    }

    /// Swap pages `page..page + k` are usable, at device pages from `ppage`.
    fn good<E>(
        &mut self,
        page: u64,
        k: u64,
        ppage: u64,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<(), BuildError<E>> {
        if let Some(s) = self.mis_start {
            return Err(Refusal::Misaligned {
                start: self.page_bytes(s),
                end: self.page_bytes(page),
            }
            .into());
        }
        let last = ck(k.checked_sub(1).and_then(|d| ppage.checked_add(d)))?;
        // The header page (swap page 0) does not count.
        let first = if page == 0 {
            ppage.checked_add(1)
        } else {
            Some(ppage)
        };
        if let Some(first) = first.filter(|&f| f <= last) {
            self.lowest = min(self.lowest, first);
            self.highest = max(self.highest, last);
        }
        if let Some(r) = self.open.as_mut() {
            if r.start_page.checked_add(r.nr_pages) == Some(page)
                && r.start_ppage.checked_add(r.nr_pages) == Some(ppage)
            {
                r.nr_pages = ck(r.nr_pages.checked_add(k))?;
                return Ok(());
            }
        }
        if let Some(r) = self.open.take() {
            self.emit(r, sink)?;
        }
        self.open = Some(OpenRun {
            start_page: page,
            nr_pages: k,
            start_ppage: ppage,
        });
        Ok(())
    }

    fn emit<E>(
        &mut self,
        r: OpenRun,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<(), BuildError<E>> {
        let run = Run {
            start_page: r.start_page,
            nr_pages: r.nr_pages,
            start_sector: ck(shl(r.start_ppage, self.spp_shift))?,
        };
        sink(run).map_err(BuildError::Sink)?;
        self.nr_runs = ck(self.nr_runs.checked_add(1))?;
        Ok(())
    }

    fn finish_inner<E>(
        &mut self,
        sink: &mut impl FnMut(Run) -> Result<(), E>,
    ) -> Result<Summary, BuildError<E>> {
        if self.pos < self.end_blk {
            let hole = Refusal::Hole {
                start: self.bytes(self.pos),
                end: self.bytes(self.end_blk),
            };
            return Err(self.bad(self.pos, hole).into());
        }
        if let Some(s) = self.mis_start {
            return Err(Refusal::Misaligned {
                start: self.page_bytes(s),
                end: self.page_bytes(self.max_pages),
            }
            .into());
        }
        if let Some(r) = self.open.take() {
            self.emit(r, sink)?;
        }
        // max_pages >= 2 and every page is good, so page 1 set both bounds.
        let span = ck(self
            .highest
            .checked_sub(self.lowest)
            .and_then(|d| d.checked_add(1)))?;
        Ok(Summary {
            max: self.max_pages,
            pages: ck(self.max_pages.checked_sub(1))?,
            lowest_ppage: self.lowest,
            highest_ppage: self.highest,
            span,
            nr_runs: self.nr_runs,
        })
    }
}

/// Builds the swap map of a file: checks `params`, walks `extents` (in
/// logical order) and passes every [`Run`] to `sink` in ascending page
/// order. See the module documentation for the rules.
///
/// The runs partition swap pages `0..max_pages` (the header page included),
/// are sorted, and no two consecutive runs are physically consecutive. On an
/// error the sink may have received some runs already: discard them. The
/// result depends only on the inputs, so a first pass can count the runs
/// (`Summary::nr_runs`) and a second fill a table of that size.
pub fn build<E>(
    params: &SwapParams,
    extents: impl IntoIterator<Item = FileExtent>,
    mut sink: impl FnMut(Run) -> Result<(), E>,
) -> Result<Summary, BuildError<E>> {
    let mut b = SwapMapBuilder::new(params)?;
    for e in extents {
        b.push(e, &mut sink)?;
    }
    b.finish(&mut sink)
}

/// Why a run table is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableError {
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "swap table: {}", self.what)
    }
}

/// A sink that stores runs in a caller-provided slice, for the fill pass.
#[derive(Debug)]
pub struct RunWriter<'a> {
    buf: &'a mut [Run],
    len: usize,
}

impl<'a> RunWriter<'a> {
    /// Writes into `buf` from its start.
    pub fn new(buf: &'a mut [Run]) -> RunWriter<'a> {
        RunWriter { buf, len: 0 }
    }

    /// Stores `run`; fails if the slice is full.
    pub fn push(&mut self, run: Run) -> Result<(), TableError> {
        let slot = self.buf.get_mut(self.len).ok_or(TableError {
            what: "more runs than slots",
        })?;
        *slot = run;
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// Runs stored so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no run was stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The runs stored.
    pub fn into_runs(self) -> &'a [Run] {
        let RunWriter { buf, len } = self;
        buf.get(..len).unwrap_or(&[])
    }
}

/// The pinned swap table: a read-only view over the runs of an activated
/// swap file, which the swap IO path consults for every request without
/// entering the filesystem.
///
/// Invariants, checked by [`SwapTable::new`] and relied on by every lookup:
///
/// - the runs partition swap pages `0..total_pages()`: the first starts at
///   page 0, each starts where the previous ends, none is empty, so they are
///   sorted by `start_page` and a page is in at most one run;
/// - every run's `start_sector` is page-aligned, and the sectors and bytes
///   of every page in the table are representable in a `u64`
///   (`start_sector + nr_pages * sectors_per_page` and
///   `total_pages * page_size` do not overflow).
///
/// The table does not require runs to be merged (the builder's are): a
/// lookup yields one segment per run touched.
#[derive(Clone, Copy, Debug)]
pub struct SwapTable<'a> {
    runs: &'a [Run],
    page_shift: u32,
    total_pages: u64,
}

/// The result of checking a table's runs ([`SwapTable::shape`]); only a
/// checked table hands one out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableShape {
    page_shift: u32,
    total_pages: u64,
    nr_runs: usize,
}

/// A device segment of a file range: `bytes` bytes from `sector` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First device sector.
    pub sector: u64,
    /// Length in bytes (a multiple of 512).
    pub bytes: u64,
}

impl<'a> SwapTable<'a> {
    /// Checks the invariants (see the type) of `runs` for pages of
    /// `page_size` bytes (a power of two, at least 512).
    pub fn new(runs: &'a [Run], page_size: u32) -> Result<SwapTable<'a>, TableError> {
        if !page_size.is_power_of_two() || page_size < (1 << SECTOR_SHIFT) {
            return Err(TableError {
                what: "page size is not a power of two of at least 512",
            });
        }
        let page_shift = page_size.trailing_zeros();
        let spp_shift = page_shift.saturating_sub(SECTOR_SHIFT);
        let spp_mask = shl(1, spp_shift)
            .and_then(|m| m.checked_sub(1))
            .ok_or(TableError {
                what: "page size too large",
            })?;
        let mut next = 0u64;
        for r in runs {
            if r.start_page != next {
                return Err(TableError {
                    what: "runs do not partition the pages from 0",
                });
            }
            if r.nr_pages == 0 {
                return Err(TableError { what: "empty run" });
            }
            if r.start_sector & spp_mask != 0 {
                return Err(TableError {
                    what: "run not page-aligned on the device",
                });
            }
            shl(r.nr_pages, spp_shift)
                .and_then(|s| r.start_sector.checked_add(s))
                .ok_or(TableError {
                    what: "run beyond the addressable sectors",
                })?;
            next = r.end_page().ok_or(TableError {
                what: "run beyond the addressable pages",
            })?;
        }
        if shl(next, page_shift).is_none() {
            return Err(TableError {
                what: "table larger than the addressable bytes",
            });
        }
        Ok(SwapTable {
            runs,
            page_shift,
            total_pages: next,
        })
    }

    /// The runs.
    pub fn runs(&self) -> &'a [Run] {
        self.runs
    }

    /// What [`SwapTable::new`] established about the runs, to rebuild the
    /// table later in O(1) with [`SwapTable::from_shape`] (the IO path does
    /// this for every request; the runs are pinned and never change).
    pub fn shape(&self) -> TableShape {
        TableShape {
            page_shift: self.page_shift,
            total_pages: self.total_pages,
            nr_runs: self.runs.len(),
        }
    }

    /// Rebuilds a table from runs already checked by [`SwapTable::new`] and
    /// the [`TableShape`] it gave. `None` if `runs` cannot be those runs
    /// (not the same number).
    pub fn from_shape(runs: &'a [Run], shape: TableShape) -> Option<SwapTable<'a>> {
        if runs.len() != shape.nr_runs {
            return None;
        }
        Some(SwapTable {
            runs,
            page_shift: shape.page_shift,
            total_pages: shape.total_pages,
        })
    }

    /// Pages the table maps (`0..total_pages()`).
    pub fn total_pages(&self) -> u64 {
        self.total_pages
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1u64 << self.page_shift
    }

    /// The index of the run holding `page`.
    fn run_index(&self, page: u64) -> Option<usize> {
        if page >= self.total_pages {
            return None;
        }
        self.runs
            .partition_point(|r| r.start_page <= page)
            .checked_sub(1)
    }

    /// The device sector of swap page `page`, and the pages from `page` to
    /// the end of its run (at least 1); `None` beyond the table.
    pub fn map(&self, page: u64) -> Option<(u64, u64)> {
        let r = self.runs.get(self.run_index(page)?)?;
        let off = page.checked_sub(r.start_page)?;
        let left = r.nr_pages.checked_sub(off).filter(|&l| l > 0)?;
        let sector = r
            .start_sector
            .checked_add(shl(off, self.page_shift.checked_sub(SECTOR_SHIFT)?)?)?;
        Some((sector, left))
    }

    /// The device segments of the file bytes `[pos, pos + len)`, in file
    /// order, one per run touched; their lengths add up to `len`. `None` if
    /// `pos` or `len` is not a multiple of 512 or the range leaves the table.
    pub fn segments(&self, pos: u64, len: u64) -> Option<Segments<'a>> {
        let sector_mask = (1u64 << SECTOR_SHIFT) - 1;
        if pos & sector_mask != 0 || len & sector_mask != 0 {
            return None;
        }
        let end = pos.checked_add(len)?;
        if end > shl(self.total_pages, self.page_shift)? {
            return None;
        }
        let idx = if len == 0 {
            0
        } else {
            self.run_index(pos >> self.page_shift)?
        };
        Some(Segments {
            runs: self.runs,
            page_shift: self.page_shift,
            idx,
            pos,
            left: len,
        })
    }
}

/// Iterator over the device segments of a file range
/// ([`SwapTable::segments`]).
#[derive(Clone, Debug)]
pub struct Segments<'a> {
    runs: &'a [Run],
    page_shift: u32,
    idx: usize,
    pos: u64,
    left: u64,
}

impl Segments<'_> {
    /// Bytes not yet yielded.
    pub fn remaining(&self) -> u64 {
        self.left
    }
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        if self.left == 0 {
            return None;
        }
        // The table's invariants make every step below succeed; a failure
        // ends the iteration (with `remaining() > 0`) instead of panicking.
        let r = self.runs.get(self.idx)?;
        let run_start = shl(r.start_page, self.page_shift)?;
        let run_end = shl(r.end_page()?, self.page_shift)?;
        let off = self.pos.checked_sub(run_start)?;
        let avail = run_end.checked_sub(self.pos).filter(|&a| a > 0)?;
        let bytes = min(avail, self.left);
        let sector = r.start_sector.checked_add(off >> SECTOR_SHIFT)?;
        self.pos = self.pos.checked_add(bytes)?;
        self.left = self.left.checked_sub(bytes)?;
        if bytes == avail {
            self.idx = self.idx.checked_add(1)?;
        }
        Some(Segment { sector, bytes })
    }
}

/// Worked examples of [`build`] and [`SwapTable`], each written once: the
/// host runs them (`tools/common/tests/swapmap_cases.rs`), and so does the
/// module's KUnit suite below, compiled for the kernel. The module compiles
/// them only with KUnit (Kbuild sets `MODULE` for module builds, the host
/// never does).
#[cfg(any(CONFIG_KUNIT, not(MODULE)))]
#[allow(clippy::arithmetic_side_effects)]
pub mod cases {
    use super::{ExtentKind, FileExtent, Policy, Refusal, Run, Segment, Summary, SwapParams};

    /// One build: a file's parameters and extents, and what [`super::build`]
    /// gives for them.
    pub struct Build {
        /// What the case shows.
        pub what: &'static str,
        /// The parameters.
        pub params: SwapParams,
        /// The file's extents.
        pub extents: &'static [FileExtent],
        /// The runs and the summary, or the refusal.
        pub want: Result<(&'static [Run], Summary), Refusal>,
    }

    /// `max_pages` pages of 4 KiB on a device of 1 Mi blocks from block 8,
    /// unwritten extents allowed.
    pub const fn params(block_size: u32, max_pages: u64) -> SwapParams {
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

    /// An extent of `kind`.
    pub const fn k(lblk: u64, pblk: u64, len: u64, kind: ExtentKind) -> FileExtent {
        FileExtent {
            lblk,
            pblk,
            len,
            kind,
        }
    }

    /// A written extent.
    pub const fn w(lblk: u64, pblk: u64, len: u64) -> FileExtent {
        k(lblk, pblk, len, ExtentKind::Written)
    }

    /// A run of 4 KiB pages at device page `ppage`.
    pub const fn r(start_page: u64, nr_pages: u64, ppage: u64) -> Run {
        Run {
            start_page,
            nr_pages,
            start_sector: ppage * 8,
        }
    }

    /// The summary of a build with one run of 4 KiB pages from device page
    /// `ppage`, the header page included.
    const fn one_run(max: u64, ppage: u64) -> Summary {
        Summary {
            max,
            pages: max - 1,
            lowest_ppage: ppage + 1,
            highest_ppage: ppage + max - 1,
            span: max - 1,
            nr_runs: 1,
        }
    }

    /// Parameters with unwritten extents refused.
    const NO_UNWRITTEN: SwapParams = SwapParams {
        policy: Policy {
            allow_unwritten: false,
        },
        ..params(4096, 10)
    };

    /// 2 KiB blocks in 16 KiB pages.
    const LARGE_PAGES: SwapParams = SwapParams {
        page_size: 16384,
        i_size: 3 * 16384,
        ..params(2048, 3)
    };

    /// The builds.
    pub const BUILDS: &[Build] = &[
        Build {
            what: "one extent, 4 KiB blocks",
            params: params(4096, 10),
            extents: &[w(0, 100, 10)],
            want: Ok((&[r(0, 10, 100)], one_run(10, 100))),
        },
        Build {
            what: "extents beyond the header are ignored",
            params: SwapParams {
                i_size: 1 << 30,
                ..params(4096, 4)
            },
            extents: &[
                w(0, 100, 6),
                k(6, 0, 2, ExtentKind::Shared),
                k(20, 0, 2, ExtentKind::Delalloc),
            ],
            want: Ok((&[r(0, 4, 100)], one_run(4, 100))),
        },
        Build {
            what: "a size that is not a page multiple",
            params: SwapParams {
                i_size: 4 * 4096 + 1,
                ..params(4096, 4)
            },
            extents: &[w(0, 100, 5)],
            want: Ok((&[r(0, 4, 100)], one_run(4, 100))),
        },
        Build {
            what: "runs merge across extents and kinds",
            params: params(4096, 8),
            extents: &[
                w(0, 100, 2),
                k(2, 102, 3, ExtentKind::Unwritten),
                w(5, 105, 1),
                w(6, 300, 2),
            ],
            want: Ok((
                &[r(0, 6, 100), r(6, 2, 300)],
                Summary {
                    max: 8,
                    pages: 7,
                    lowest_ppage: 101,
                    highest_ppage: 301,
                    span: 201,
                    nr_runs: 2,
                },
            )),
        },
        Build {
            what: "the header page is not part of the bounds",
            params: params(4096, 8),
            extents: &[w(0, 900, 1), w(1, 200, 2), w(3, 202, 3), w(6, 300, 2)],
            want: Ok((
                &[r(0, 1, 900), r(1, 5, 200), r(6, 2, 300)],
                Summary {
                    max: 8,
                    pages: 7,
                    lowest_ppage: 200,
                    highest_ppage: 301,
                    span: 102,
                    nr_runs: 3,
                },
            )),
        },
        Build {
            what: "1 KiB blocks: the runs of TABLE",
            params: params(1024, 16),
            extents: &[w(0, 400, 16), w(16, 800, 20), w(36, 1000, 28)],
            want: Ok((
                &TABLE,
                Summary {
                    max: 16,
                    pages: 15,
                    lowest_ppage: 101,
                    highest_ppage: 256,
                    span: 156,
                    nr_runs: 3,
                },
            )),
        },
        Build {
            what: "a hole",
            params: params(4096, 10),
            extents: &[w(0, 100, 3), w(5, 105, 5)],
            want: Err(Refusal::Hole {
                start: 3 * 4096,
                end: 5 * 4096,
            }),
        },
        Build {
            what: "a hole at the start",
            params: params(4096, 10),
            extents: &[w(1, 101, 9)],
            want: Err(Refusal::Hole {
                start: 0,
                end: 4096,
            }),
        },
        Build {
            what: "a hole at the end of the swap area, and beyond it",
            params: params(4096, 10),
            extents: &[w(0, 100, 8), w(12, 200, 1)],
            want: Err(Refusal::Hole {
                start: 8 * 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "all holes",
            params: params(4096, 10),
            extents: &[],
            want: Err(Refusal::Hole {
                start: 0,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "a hole inside a page of 1 KiB blocks",
            params: params(1024, 4),
            extents: &[w(0, 100, 5), w(6, 106, 10)],
            want: Err(Refusal::Hole {
                start: 5 * 1024,
                end: 6 * 1024,
            }),
        },
        Build {
            what: "a shared extent, clipped to the swap area",
            params: params(4096, 10),
            extents: &[w(0, 100, 1), k(1, 101, 20, ExtentKind::Shared)],
            want: Err(Refusal::Shared {
                start: 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "a delayed allocation",
            params: params(4096, 10),
            extents: &[w(0, 100, 1), k(1, 101, 20, ExtentKind::Delalloc)],
            want: Err(Refusal::Delalloc {
                start: 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "inline data",
            params: params(4096, 10),
            extents: &[w(0, 100, 1), k(1, 101, 20, ExtentKind::Inline)],
            want: Err(Refusal::Inline {
                start: 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "an encoded extent",
            params: params(4096, 10),
            extents: &[w(0, 100, 1), k(1, 101, 20, ExtentKind::Encoded)],
            want: Err(Refusal::Encoded {
                start: 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "unwritten extents are used as written",
            params: params(4096, 10),
            extents: &[w(0, 100, 1), k(1, 101, 9, ExtentKind::Unwritten)],
            want: Ok((&[r(0, 10, 100)], one_run(10, 100))),
        },
        Build {
            what: "unwritten extents, refused by the policy",
            params: NO_UNWRITTEN,
            extents: &[w(0, 100, 1), k(1, 101, 9, ExtentKind::Unwritten)],
            want: Err(Refusal::Unwritten {
                start: 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "below the device's first block",
            params: params(4096, 4),
            extents: &[w(0, 4, 4)],
            want: Err(Refusal::OutOfDevice {
                start: 0,
                end: 4 * 4096,
            }),
        },
        Build {
            what: "past the device's end",
            params: params(4096, 4),
            extents: &[w(0, 100, 2), w(2, (1 << 20) - 1, 2)],
            want: Err(Refusal::OutOfDevice {
                start: 2 * 4096,
                end: 4 * 4096,
            }),
        },
        Build {
            what: "a physical range that overflows",
            params: params(4096, 4),
            extents: &[w(0, 100, 2), w(2, u64::MAX - 1, 2)],
            want: Err(Refusal::OutOfDevice {
                start: 2 * 4096,
                end: 4 * 4096,
            }),
        },
        Build {
            what: "only the part inside the swap area must be on the device",
            params: params(4096, 4),
            extents: &[w(0, (1 << 20) - 4, 8)],
            want: Ok((&[r(0, 4, (1 << 20) - 4)], one_run(4, (1 << 20) - 4))),
        },
        Build {
            what: "1 KiB blocks, physically misaligned from page 1 on",
            params: params(1024, 6),
            extents: &[w(0, 100, 4), w(4, 201, 20)],
            want: Err(Refusal::Misaligned {
                start: 4096,
                end: 6 * 4096,
            }),
        },
        Build {
            what: "1 KiB blocks, a discontiguity inside page 2 only",
            params: params(1024, 6),
            extents: &[w(0, 100, 10), w(10, 402, 14)],
            want: Err(Refusal::Misaligned {
                start: 2 * 4096,
                end: 3 * 4096,
            }),
        },
        Build {
            what: "misaligned pages, then a hole: the misaligned run is first",
            params: params(1024, 6),
            extents: &[w(0, 100, 4), w(4, 201, 6)],
            want: Err(Refusal::Misaligned {
                start: 4096,
                end: 2 * 4096,
            }),
        },
        Build {
            what: "a hole inside the first bad page wins over its misalignment",
            params: params(1024, 6),
            extents: &[w(0, 100, 4), w(4, 201, 2), w(7, 300, 20)],
            want: Err(Refusal::Hole {
                start: 6 * 1024,
                end: 7 * 1024,
            }),
        },
        Build {
            what: "physically contiguous pieces that straddle pages are one run",
            params: params(1024, 6),
            extents: &[w(0, 100, 3), w(3, 103, 6), w(9, 109, 15)],
            want: Ok((&[r(0, 6, 25)], one_run(6, 25))),
        },
        Build {
            what: "aligned extents meeting mid-page but not contiguous",
            params: params(1024, 6),
            extents: &[w(0, 100, 6), w(6, 206, 18)],
            want: Err(Refusal::Misaligned {
                start: 4096,
                end: 2 * 4096,
            }),
        },
        Build {
            what: "2 KiB blocks in 16 KiB pages",
            params: LARGE_PAGES,
            extents: &[w(0, 800, 24)],
            want: Ok((
                &[Run {
                    start_page: 0,
                    nr_pages: 3,
                    start_sector: 800 * 4,
                }],
                Summary {
                    max: 3,
                    pages: 2,
                    lowest_ppage: 101,
                    highest_ppage: 102,
                    span: 2,
                    nr_runs: 1,
                },
            )),
        },
        Build {
            what: "2 KiB blocks not aligned to 16 KiB pages",
            params: LARGE_PAGES,
            extents: &[w(0, 804, 24)],
            want: Err(Refusal::Misaligned {
                start: 0,
                end: 3 * 16384,
            }),
        },
        Build {
            what: "no page besides the header",
            params: params(4096, 1),
            extents: &[w(0, 100, 4)],
            want: Err(Refusal::TooSmall { max_pages: 1 }),
        },
        Build {
            what: "no page at all",
            params: SwapParams {
                max_pages: 0,
                ..params(4096, 1)
            },
            extents: &[w(0, 100, 4)],
            want: Err(Refusal::TooSmall { max_pages: 0 }),
        },
        Build {
            what: "a file shorter than its header says",
            params: SwapParams {
                i_size: 4 * 4096 - 1,
                ..params(4096, 4)
            },
            extents: &[w(0, 100, 4)],
            want: Err(Refusal::Truncated {
                i_size: 4 * 4096 - 1,
                needed: 4 * 4096,
            }),
        },
        Build {
            what: "overlapping extents",
            params: params(4096, 4),
            extents: &[w(0, 100, 4), w(3, 200, 1)],
            want: Err(Refusal::BadExtent {
                start: 3 * 4096,
                end: 4 * 4096,
            }),
        },
        Build {
            what: "extents out of order beyond the swap area",
            params: params(4096, 4),
            extents: &[w(0, 100, 4), w(10, 200, 1), w(9, 300, 1)],
            want: Err(Refusal::BadExtent {
                start: 9 * 4096,
                end: 10 * 4096,
            }),
        },
        Build {
            what: "an extent whose end overflows",
            params: params(4096, 4),
            extents: &[w(0, 100, 4), w(u64::MAX, 200, 2)],
            want: Err(Refusal::BadExtent {
                start: u64::MAX,
                end: u64::MAX,
            }),
        },
        Build {
            what: "zero-length extents are ignored",
            params: params(4096, 4),
            extents: &[w(0, 100, 2), w(2, 0, 0), w(2, 102, 2)],
            want: Ok((&[r(0, 4, 100)], one_run(4, 100))),
        },
    ];

    /// Parameters [`super::SwapMapBuilder::new`] refuses as
    /// [`Refusal::Invalid`].
    pub const INVALID_PARAMS: &[SwapParams] = &[
        SwapParams {
            block_size: 3000,
            ..params(4096, 4)
        },
        SwapParams {
            block_size: 512,
            ..params(4096, 4)
        },
        SwapParams {
            block_size: 8192,
            page_size: 8192,
            ..params(4096, 4)
        },
        SwapParams {
            page_size: 2048,
            ..params(4096, 4)
        },
        SwapParams {
            page_size: 6144,
            ..params(4096, 4)
        },
        SwapParams {
            dev_first_block: 10,
            dev_end_block: 10,
            ..params(4096, 4)
        },
        SwapParams {
            dev_end_block: u64::MAX,
            ..params(4096, 4)
        },
        SwapParams {
            max_pages: u64::MAX,
            i_size: u64::MAX,
            ..params(4096, 4)
        },
    ];

    /// A table of 16 pages of 4 KiB in three runs.
    pub const TABLE: [Run; 3] = [r(0, 4, 100), r(4, 5, 200), r(9, 7, 250)];

    /// [`super::SwapTable::map`] on [`TABLE`] at run boundaries and past
    /// the end: the page, and its first sector and the pages left in its
    /// run.
    pub const MAPS: &[(u64, Option<(u64, u64)>)] = &[
        (0, Some((800, 4))),
        (3, Some((824, 1))),
        (4, Some((1600, 5))),
        (8, Some((1632, 1))),
        (9, Some((2000, 7))),
        (15, Some((2048, 1))),
        (16, None),
        (u64::MAX, None),
    ];

    /// [`super::SwapTable::segments`] on [`TABLE`]: the file offset and
    /// length, and the segments, or `None` if the range is refused.
    pub const SEGMENTS: &[(u64, u64, Option<&[Segment]>)] = &[
        (
            3 * 4096,
            7 * 4096,
            Some(&[
                Segment {
                    sector: 824,
                    bytes: 4096,
                },
                Segment {
                    sector: 1600,
                    bytes: 5 * 4096,
                },
                Segment {
                    sector: 2000,
                    bytes: 4096,
                },
            ]),
        ),
        // Sector-aligned pieces of pages.
        (
            3 * 4096 + 512,
            6 * 4096,
            Some(&[
                Segment {
                    sector: 825,
                    bytes: 3584,
                },
                Segment {
                    sector: 1600,
                    bytes: 5 * 4096,
                },
                Segment {
                    sector: 2000,
                    bytes: 512,
                },
            ]),
        ),
        (
            4 * 4096 - 512,
            1024,
            Some(&[
                Segment {
                    sector: 831,
                    bytes: 512,
                },
                Segment {
                    sector: 1600,
                    bytes: 512,
                },
            ]),
        ),
        (0, 0, Some(&[])),
        (16 * 4096, 0, Some(&[])),
        // Past the end, not sector-aligned, overflowing.
        (15 * 4096, 4097, None),
        (15 * 4096, 8192, None),
        (100, 512, None),
        (u64::MAX - 511, 512, None),
    ];

    /// Runs and page sizes [`super::SwapTable::new`] refuses.
    pub const BAD_TABLES: &[(&[Run], u32)] = &[
        (&[r(1, 1, 0)], 4096),
        (&[r(0, 0, 0)], 4096),
        (&[r(0, 2, 0), r(3, 1, 0)], 4096),
        (&[r(0, 2, 0), r(1, 1, 0)], 4096),
        (
            &[Run {
                start_page: 0,
                nr_pages: 1,
                start_sector: 4,
            }],
            4096,
        ),
        (
            &[Run {
                start_page: 0,
                nr_pages: 2,
                start_sector: !7,
            }],
            4096,
        ),
        (&[r(0, u64::MAX >> 11, 0)], 4096),
        (&[r(0, 1, 0)], 4000),
        (&[r(0, 1, 0)], 256),
    ];
}

/// KUnit: the swap map builder and the pinned swap table compiled for the
/// kernel, on the [`cases`] the host runs too (the host also runs the
/// property tests against a model).
#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(swapfs_swapmap)]
mod kunit {
    use super::cases::{BAD_TABLES, BUILDS, INVALID_PARAMS, MAPS, SEGMENTS, TABLE};
    use super::{
        build, BuildError, Refusal, Run, RunWriter, SwapMapBuilder, SwapTable, TableError,
    };
    use kernel::prelude::*;

    /// Slots for the runs of one case.
    const SLOTS: usize = 8;

    #[test]
    fn builds() {
        for c in BUILDS {
            // As activation does: count, then fill.
            let count = build(&c.params, c.extents.iter().copied(), |_| {
                Ok::<(), TableError>(())
            });
            let mut buf = [Run::default(); SLOTS];
            let mut wr = RunWriter::new(&mut buf);
            let got = match build(&c.params, c.extents.iter().copied(), |run| wr.push(run)) {
                Ok(s) => Ok((wr.into_runs(), s)),
                Err(BuildError::Refused(e)) => Err(e),
                Err(BuildError::Sink(_)) => Err(Refusal::Aborted),
            };
            if got != c.want {
                pr_err!("swapfs_swapmap: {}: {:?}\n", c.what, got);
            }
            assert_eq!(got, c.want);
            assert_eq!(count.ok(), got.ok().map(|(_, s)| s));
        }
    }

    #[test]
    fn invalid_params() {
        for p in INVALID_PARAMS {
            assert!(matches!(
                SwapMapBuilder::new(p),
                Err(Refusal::Invalid { .. })
            ));
        }
    }

    #[test]
    fn table() -> core::result::Result<(), TableError> {
        let t = SwapTable::new(&TABLE, 4096)?;
        for &(page, want) in MAPS {
            assert_eq!(t.map(page), want);
        }
        for &(pos, len, want) in SEGMENTS {
            let same = match (t.segments(pos, len), want) {
                (Some(got), Some(want)) => got.eq(want.iter().copied()),
                (got, want) => got.is_none() && want.is_none(),
            };
            assert!(same);
        }
        for &(runs, page_size) in BAD_TABLES {
            assert!(SwapTable::new(runs, page_size).is_err());
        }
        Ok(())
    }
}
