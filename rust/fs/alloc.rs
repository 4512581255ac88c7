// SPDX-License-Identifier: GPL-2.0

//! Block and inode allocation: the bitmaps and the reference counts, always
//! changed inside a transaction and under [`FsInfo::alloc`].

use core::ops::ControlFlow;
use kernel::prelude::*;

use super::{AllocState, FsError, FsInfo, FsResult, Mount};
use crate::common::cow::{self, Clip, Staged};
use crate::common::format::{
    align_run, bitmap_bits_per_block, bitmap_find_allocatable, bitmap_find_clear, bitmap_get,
    bitmap_set, get_u16, magic, put_u16, refcount_run, refcounts_per_block, FormatError, Geometry,
};
use crate::sys::buffer::Buffer;
use crate::sys::journal::Transaction;
use crate::sys::vfs::SuperBlock;
use crate::sys::{swapio, NoFs};

/// Reads a bitmap or reference-count block and verifies its header.
fn read_checked(
    sb: &SuperBlock,
    geo: &Geometry,
    blk: u64,
    what: &'static str,
    magic: u32,
) -> FsResult<Buffer> {
    let buf = Buffer::read(sb, blk)?;
    buf.checked(|b, crc| geo.check_block_crc(b, what, magic, blk, crc))?;
    Ok(buf)
}

/// Counts the free inodes and blocks from the bitmaps.
pub(crate) fn recount(m: Mount<'_>) -> FsResult {
    let geo = &m.fs.geo;
    let per = bitmap_bits_per_block(geo.block_size());
    let count_free = |start: u64, entries: u64, what, kind| -> FsResult<u64> {
        let mut free = 0;
        let mut i = 0;
        while i < entries {
            let blk = start + i / per;
            let n = per.min(entries - i);
            let buf = read_checked(m.sb, geo, blk, what, kind)?;
            free += buf.with(|b| (0..n).filter(|&bit| !bitmap_get(b, bit)).count() as u64);
            i += n;
        }
        Ok(free)
    };
    let free_inodes = count_free(
        geo.ibitmap_start,
        geo.inode_count,
        "inode bitmap",
        magic::INODE_BITMAP,
    )?;
    let free_blocks = count_free(
        geo.bbitmap_start,
        geo.data_blocks(),
        "block bitmap",
        magic::BLOCK_BITMAP,
    )?;
    let mut a = m.fs.alloc.lock();
    a.free_inodes = free_inodes;
    a.free_blocks = free_blocks;
    Ok(())
}

/// Credits to allocate or free a run of `len` blocks (bitmap and
/// reference-count blocks it can span).
pub(crate) fn run_credits(geo: &Geometry, len: u64) -> u32 {
    let bs = geo.block_size();
    let bitmap = len / bitmap_bits_per_block(bs) + 2;
    let refs = len / refcounts_per_block(bs) + 2;
    u32::try_from(bitmap + refs).unwrap_or(u32::MAX)
}

/// The longest run whose allocation or release fits `credits`.
pub(crate) fn max_run_for(geo: &Geometry, credits: u32) -> u64 {
    let rpb = refcounts_per_block(geo.block_size());
    // Each refcount block covers `rpb` blocks; bitmaps are much denser.
    u64::from(credits.saturating_sub(4)).max(1) * rpb / 2
}

/// Sets the reference count of `[start, start + len)` to 1, checking that
/// it was 0.
fn set_refs_new(tx: &mut Transaction<'_>, geo: &Geometry, start: u64, len: u64) -> FsResult {
    let mut blk = start;
    let end = start + len;
    while blk < end {
        let (rblk, off) = geo.refcount_location(blk).ok_or(FormatError::BadField {
            what: "block to reference",
            value: blk,
        })?;
        let per = refcounts_per_block(geo.block_size());
        let in_block = per - (blk - geo.data_start) % per;
        let n = in_block.min(end - blk);
        let buf = read_checked(tx.sb(), geo, rblk, "reference counts", magic::REFCOUNT)?;
        tx.modify(&buf, |b| -> FsResult {
            for i in 0..n as usize {
                if get_u16(b, off + 2 * i) != 0 {
                    return Err(FormatError::BadField {
                        what: "reference count of a free block",
                        value: blk + i as u64,
                    }
                    .into());
                }
                put_u16(b, off + 2 * i, 1);
            }
            geo.seal_block(b, magic::REFCOUNT, rblk);
            Ok(())
        })??;
        blk += n;
    }
    Ok(())
}

/// Free blocks that data allocations (file data, copy-on-write staging)
/// leave untouched, so that the extent-tree nodes a transaction may still
/// need after it allocated its data never find the disk full: a node
/// allocation failing midway would abort the journal. Each tree operation
/// allocates at most `MAX_DEPTH + 1` nodes; the reserve covers many
/// concurrent ones. A data allocation refuses with `ENOSPC` before it
/// changes anything.
pub(crate) const TREE_RESERVE: u64 = 64;

/// Where file data for logical block `lblk` should start: `(period,
/// residue)` for [`align_run`] (blocks smaller than pages: each page of the
/// file on one device page, so that the file can back swap, see
/// `Documentation/swap.md`; and `dd` + `mkswap` + `swapon` work at every
/// block size).
pub(crate) fn data_align(fs: &FsInfo, lblk: u64) -> (u64, u64) {
    (
        u64::from(swapio::page_size()) >> fs.geo.block_size_log2,
        lblk,
    )
}

/// Free blocks that can be allocated now: `free_blocks` less those freed
/// by transactions that have not committed yet. Until its transaction
/// commits, a freed block still belongs to its old owner on disk: data
/// written into it by a new owner would be that owner's after a crash, and
/// a freed extent-tree or directory block reused as new metadata would
/// clash with its journaled past. The scans skip such blocks: the runs in
/// `AllocState::busy_runs` (as xfs marks freed extents busy and ext4 keeps
/// them out of its buddy cache until the commit), and what the bitmaps'
/// last committed state (undo access, [`Buffer::with_committed`]) marks
/// used, which alone is not enough: jbd2 replaces that copy when the
/// previous transaction's commit ends, losing the bits of blocks freed in
/// the running one meanwhile (generic/127 reused a freed extent-tree block
/// in the transaction that freed it). This count keeps the free-space
/// checks honest.
fn allocatable(fs: &FsInfo, a: &mut AllocState) -> u64 {
    prune_busy(fs, a);
    let busy: u64 = a.busy.iter().flatten().map(|&(_, n)| n).sum();
    a.free_blocks.saturating_sub(busy)
}

/// Forgets the busy counts and runs of committed transactions.
fn prune_busy(fs: &FsInfo, a: &mut AllocState) {
    a.busy_runs.prune(|tid| fs.journal.is_committed(tid));
    for e in a.busy.iter_mut() {
        if e.is_some_and(|(tid, _)| fs.journal.is_committed(tid)) {
            *e = None;
        }
    }
}

/// Counts `n` blocks freed by transaction `tid` as busy until it commits.
/// At most two transactions are uncommitted at a time (jbd2's running and
/// committing ones); should every slot be taken, the blocks join the newest
/// entry, which then waits for `tid` (later: never too early).
fn add_busy(fs: &FsInfo, a: &mut AllocState, tid: u32, n: u64) {
    if n == 0 {
        return;
    }
    prune_busy(fs, a);
    let slots = &mut a.busy;
    if let Some((_, m)) = slots.iter_mut().flatten().find(|e| e.0 == tid) {
        *m += n;
    } else if let Some(free) = slots.iter_mut().find(|e| e.is_none()) {
        *free = Some((tid, n));
    } else if let Some(newest) = slots
        .iter_mut()
        .flatten()
        .max_by_key(|e| e.0.wrapping_sub(tid) as i32)
    {
        *newest = (tid, newest.1 + n);
    }
}

/// Runs `f`, and runs it again after a journal commit when it failed with
/// `ENOSPC` while freed blocks were waiting for their transaction to
/// commit (the commit makes them allocatable), as ext4 retries its
/// allocations. Only outside a transaction: a commit waits for every open
/// handle.
pub(crate) fn retry_enospc<T>(fs: &FsInfo, mut f: impl FnMut() -> FsResult<T>) -> FsResult<T> {
    for _ in 0..3 {
        match f() {
            Err(FsError::Sys(e))
                if e == ENOSPC && !crate::sys::in_transaction() && has_busy(fs) =>
            {
                fs.journal.force_commit()?;
            }
            r => return r,
        }
    }
    f()
}

/// Whether some freed blocks wait for their transaction to commit.
fn has_busy(fs: &FsInfo) -> bool {
    let mut a = fs.alloc.lock();
    allocatable(fs, &mut a) < a.free_blocks
}

/// No alignment (metadata blocks).
const ANY: (u64, u64) = (1, 0);

/// Finds up to `max` contiguous free blocks, preferably at `goal`, that the
/// block bitmap marks free (and did at the last commit: see
/// [`allocatable`]) and that are not staged for copy-on-write,
/// starting at a block congruent to `align.1` modulo `align.0` if there is
/// one (see [`data_align`]), anywhere otherwise. Changes nothing.
fn find_free(
    sb: &SuperBlock,
    geo: &Geometry,
    a: &AllocState,
    goal: u64,
    max: u64,
    align: (u64, u64),
) -> FsResult<Option<(u64, u64)>> {
    let per = bitmap_bits_per_block(geo.block_size());
    let total = geo.data_blocks();
    let start_idx = if geo.is_data_block(goal) {
        goal - geo.data_start
    } else if geo.is_data_block(a.block_hint) {
        a.block_hint - geo.data_start
    } else {
        0
    };
    let nblocks = total.div_ceil(per);
    let first = start_idx / per;
    for pass in 0..2 {
        let (period, residue) = if pass == 0 { align } else { ANY };
        if pass == 1 && align.0 <= 1 {
            break;
        }
        // Room for the blocks skipped to align the start.
        let scan = max.saturating_add(period.max(1) - 1);
        for step in 0..=nblocks {
            let bi = (first + step) % nblocks;
            let base = geo.data_start + bi * per;
            let mut from = if step == 0 { start_idx % per } else { 0 };
            let limit = per.min(total - bi * per);
            let blk = geo.bbitmap_start + bi;
            let buf = read_checked(sb, geo, blk, "block bitmap", magic::BLOCK_BITMAP)?;
            while from < limit {
                let found =
                    buf.with_committed(|b, c| bitmap_find_allocatable(b, c, from, limit, scan));
                let Some((bit, len)) = found else {
                    break;
                };
                // Neither staged for copy-on-write nor freed by a
                // transaction that has not committed.
                let clip = match cow::clip_free(&a.staged, base + bit, len) {
                    Clip::Use(n) => a.busy_runs.clip(base + bit, n),
                    skip => skip,
                };
                match clip {
                    Clip::Use(n) => match align_run(base + bit, n, period, residue) {
                        Some((s, l)) => return Ok(Some((s, l.min(max)))),
                        None => from = bit + n,
                    },
                    Clip::SkipTo(p) => from = p.saturating_sub(base),
                }
            }
        }
    }
    Ok(None)
}

/// Marks `[start, start + len)` in use: bitmap bits set (they must be
/// clear) and reference counts 1 (they must be 0).
fn mark_used(tx: &mut Transaction<'_>, geo: &Geometry, start: u64, len: u64) -> FsResult {
    if !geo.is_data_range(start, len) {
        return Err(FormatError::BadField {
            what: "blocks to allocate",
            value: start,
        }
        .into());
    }
    let per = bitmap_bits_per_block(geo.block_size());
    let end = start + len;
    let mut b0 = start;
    while b0 < end {
        let loc = geo.block_bit(b0).ok_or(EIO)?;
        let n = (per - loc.bit).min(end - b0);
        let buf = read_checked(tx.sb(), geo, loc.block, "block bitmap", magic::BLOCK_BITMAP)?;
        tx.modify(&buf, |b| -> FsResult {
            if let Some(j) = (0..n).find(|&j| bitmap_get(b, loc.bit + j)) {
                return Err(FormatError::BadField {
                    what: "block bitmap bit of a free block",
                    value: b0 + j,
                }
                .into());
            }
            for j in 0..n {
                bitmap_set(b, loc.bit + j, true);
            }
            geo.seal_block(b, magic::BLOCK_BITMAP, loc.block);
            Ok(())
        })??;
        b0 += n;
    }
    set_refs_new(tx, geo, start, len)
}

/// Allocates up to `max` contiguous data blocks, preferably at `goal`.
/// Returns the first block and the length (at least 1). For extent-tree
/// nodes and metadata blocks: it may use the [`TREE_RESERVE`].
pub(crate) fn alloc_blocks(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    goal: u64,
    max: u64,
) -> FsResult<(u64, u64)> {
    alloc_aligned(tx, fs, goal, max, ANY)
}

fn alloc_aligned(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    goal: u64,
    max: u64,
    align: (u64, u64),
) -> FsResult<(u64, u64)> {
    let geo = &fs.geo;
    let mut a = fs.alloc.lock();
    let room = allocatable(fs, &mut a);
    if room == 0 {
        return Err(ENOSPC.into());
    }
    let Some((start, len)) = find_free(tx.sb(), geo, &a, goal, max.max(1), align)? else {
        return Err(full_bitmaps(&a, room));
    };
    mark_used(tx, geo, start, len)?;
    a.free_blocks = a.free_blocks.saturating_sub(len);
    a.block_hint = start + len;
    Ok((start, len))
}

/// The error when the counters say there are allocatable blocks and the
/// bitmaps have none.
fn full_bitmaps(a: &AllocState, room: u64) -> FsError {
    if room < a.free_blocks {
        // Freed blocks waiting for their commit may fill in the count: the
        // caller may retry after a commit (the blocks are not lost).
        return ENOSPC.into();
    }
    FormatError::BadField {
        what: "free block count (bitmaps are full)",
        value: a.free_blocks,
    }
    .into()
}

/// Allocates up to `max` contiguous blocks for file data at logical block
/// `lblk` (placed as [`data_align`] says when it can), leaving the
/// [`TREE_RESERVE`]: `ENOSPC` (with nothing changed) when only the reserve
/// is left.
pub(crate) fn alloc_data(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    lblk: u64,
    goal: u64,
    max: u64,
) -> FsResult<(u64, u64)> {
    let room = {
        let mut a = fs.alloc.lock();
        allocatable(fs, &mut a).saturating_sub(TREE_RESERVE)
    };
    if room == 0 {
        return Err(ENOSPC.into());
    }
    alloc_aligned(tx, fs, goal, max.min(room), data_align(fs, lblk))
}

/// Whether a tree operation may start: `ENOSPC` unless the free blocks
/// cover the [`TREE_RESERVE`] (operations that only add references, such as
/// cloning, must not eat into what allocating writers keep for their
/// trees).
pub(crate) fn check_tree_room(fs: &FsInfo) -> FsResult {
    let mut a = fs.alloc.lock();
    if allocatable(fs, &mut a) <= TREE_RESERVE {
        return Err(ENOSPC.into());
    }
    Ok(())
}

/// Stages up to `want` new blocks for copy-on-write of logical blocks
/// `[lblk, ...)` of inode `ino` (see [`cow`]): reserved in memory, free on
/// disk. If a staged range already covers `lblk`, returns it instead.
/// Returns the staged range from `lblk` on and whether it is new (made by
/// this call). `ENOSPC` leaves the [`TREE_RESERVE`].
pub(crate) fn stage(
    m: Mount<'_>,
    ino: u64,
    lblk: u64,
    goal: u64,
    want: u64,
) -> FsResult<(Staged, bool)> {
    let geo = &m.fs.geo;
    // The vector may grow under the mutex: no reclaim into the filesystem
    // (which could evict an inode and need the mutex) meanwhile.
    let _nofs = NoFs::enter();
    let mut a = m.fs.alloc.lock();
    if let Some(s) = cow::covering(&a.staged, ino, lblk) {
        return Ok((s, false));
    }
    let mut want = want.max(1);
    if let Some(next) = cow::next_start(&a.staged, ino, lblk) {
        want = want.min(next - lblk);
    }
    let avail = allocatable(m.fs, &mut a);
    let room = avail.saturating_sub(TREE_RESERVE);
    if room == 0 {
        return Err(ENOSPC.into());
    }
    let align = data_align(m.fs, lblk);
    let Some((pblk, len)) = find_free(m.sb, geo, &a, goal, want.min(room), align)? else {
        return Err(full_bitmaps(&a, avail));
    };
    let new = Staged {
        ino,
        lblk,
        pblk,
        len,
    };
    if let Some(prev) = a.staged.iter_mut().find(|s| s.continued_by(&new)) {
        prev.len += len;
    } else {
        a.staged.push(new, GFP_KERNEL)?;
    }
    a.free_blocks -= len;
    a.block_hint = pblk + len;
    Ok((new, true))
}

/// The staged range of `ino` covering `lblk`, from `lblk` on.
pub(crate) fn staged_at(fs: &FsInfo, ino: u64, lblk: u64) -> Option<Staged> {
    cow::covering(&fs.alloc.lock().staged, ino, lblk)
}

/// The first logical block after `lblk` where a staged range of `ino`
/// starts.
pub(crate) fn next_staged(fs: &FsInfo, ino: u64, lblk: u64) -> Option<u64> {
    cow::next_start(&fs.alloc.lock().staged, ino, lblk)
}

/// Splits the staged ranges of `ino` so that none straddles `lo` or `hi`:
/// afterwards every range meeting `[lo, hi)` lies inside it.
fn isolate(
    a: &mut AllocState,
    ino: u64,
    lo: u64,
    hi: u64,
) -> core::result::Result<(), kernel::alloc::AllocError> {
    for x in [lo, hi] {
        let pos = a
            .staged
            .iter()
            .position(|s| s.ino == ino && s.lblk < x && x < s.lend());
        if let Some(i) = pos {
            let Some(s) = a.staged.get(i).copied() else {
                continue;
            };
            if let (Some(before), Some(after)) = (s.clip(0, x), s.clip(x, u64::MAX)) {
                a.staged.push(after, GFP_KERNEL)?;
                if let Some(slot) = a.staged.get_mut(i) {
                    *slot = before;
                }
            }
        }
    }
    Ok(())
}

/// Prepares committing the staged blocks of `ino` in `[lo, hi)`: after
/// this, each staged range there starts where [`commit_staged`] will take
/// it from (so a commit never needs memory inside its transaction).
pub(crate) fn prepare_commit(fs: &FsInfo, ino: u64, lo: u64, hi: u64) -> FsResult {
    let _nofs = NoFs::enter();
    let mut a = fs.alloc.lock();
    isolate(&mut a, ino, lo, hi)?;
    Ok(())
}

/// Commits staged blocks inside `tx`: the staged range of `ino` that
/// starts at `lblk` at physical `pblk` gives up its first `len` blocks,
/// which become allocated on disk (reference count 1). The caller maps
/// them in the file in the same transaction.
pub(crate) fn commit_staged(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    ino: u64,
    lblk: u64,
    pblk: u64,
    len: u64,
) -> FsResult {
    let geo = &fs.geo;
    let mut a = fs.alloc.lock();
    let i = a
        .staged
        .iter()
        .position(|s| s.ino == ino && s.lblk == lblk && s.pblk == pblk && s.len >= len)
        .ok_or(FormatError::BadField {
            what: "copy-on-write blocks to commit are not staged",
            value: lblk,
        })?;
    mark_used(tx, geo, pblk, len)?;
    let rest = a.staged.get(i).and_then(|s| s.clip(lblk + len, u64::MAX));
    match rest {
        Some(r) => {
            if let Some(slot) = a.staged.get_mut(i) {
                *slot = r;
            }
        }
        None => {
            // `i` was found above, under the same lock.
            let _ = a.staged.remove(i);
        }
    }
    Ok(())
}

/// Gives the staged blocks of `ino` in logical blocks `[lo, hi)` back to
/// the free space (their data will never be written, or its write
/// failed). Returns how many blocks were released.
pub(crate) fn cancel_staged(fs: &FsInfo, ino: u64, lo: u64, hi: u64) -> u64 {
    let _nofs = NoFs::enter();
    let mut a = fs.alloc.lock();
    if !cow::any_in(&a.staged, ino, lo, hi) {
        return 0;
    }
    // Without memory to split a range, keep it whole: its blocks stay
    // reserved until the inode is evicted (which cancels everything).
    if isolate(&mut a, ino, lo, hi).is_err() {
        return 0;
    }
    let mut freed = 0;
    a.staged.retain(|s| {
        let inside = s.ino == ino && s.lblk >= lo && s.lend() <= hi;
        if inside {
            freed += s.len;
        }
        !inside
    });
    a.free_blocks += freed;
    freed
}

/// Adds one reference to each block of `[start, start + len)`, which must
/// be in use (cloning shares them). Checks every count before changing
/// any: `EMLINK` if one would overflow.
pub(crate) fn get_blocks(tx: &mut Transaction<'_>, fs: &FsInfo, start: u64, len: u64) -> FsResult {
    let geo = &fs.geo;
    if !geo.is_data_range(start, len) {
        return Err(FormatError::BadField {
            what: "blocks to share",
            value: start,
        }
        .into());
    }
    let _a = fs.alloc.lock();
    let per = refcounts_per_block(geo.block_size());
    let end = start + len;
    for pass in 0..2 {
        let mut blk = start;
        while blk < end {
            let (rblk, off) = geo.refcount_location(blk).ok_or(EIO)?;
            let n = (per - (blk - geo.data_start) % per).min(end - blk);
            let buf = read_checked(tx.sb(), geo, rblk, "reference counts", magic::REFCOUNT)?;
            let first = blk;
            if pass == 0 {
                buf.with(|b| -> FsResult {
                    for i in 0..n as usize {
                        match get_u16(b, off + 2 * i) {
                            0 => {
                                return Err(FormatError::BadField {
                                    what: "reference count of a block being shared",
                                    value: first + i as u64,
                                }
                                .into())
                            }
                            u16::MAX => return Err(EMLINK.into()),
                            _ => {}
                        }
                    }
                    Ok(())
                })?;
            } else {
                tx.modify(&buf, |b| {
                    for i in 0..n as usize {
                        let c = get_u16(b, off + 2 * i);
                        put_u16(b, off + 2 * i, c.saturating_add(1));
                    }
                    geo.seal_block(b, magic::REFCOUNT, rblk);
                })?;
            }
            blk += n;
        }
    }
    Ok(())
}

/// Drops one reference to each block of `[start, start + len)`; blocks whose
/// count reaches 0 become free. Returns how many were freed.
pub(crate) fn put_blocks(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    start: u64,
    len: u64,
) -> FsResult<u64> {
    let geo = &fs.geo;
    if !geo.is_data_range(start, len) {
        return Err(FormatError::BadField {
            what: "blocks to free",
            value: start,
        }
        .into());
    }
    let mut a = fs.alloc.lock();
    let per_ref = refcounts_per_block(geo.block_size());
    let mut freed_total = 0;
    let mut blk = start;
    let end = start + len;
    while blk < end {
        let (rblk, off) = geo.refcount_location(blk).ok_or(ENOSPC)?;
        let n = (per_ref - (blk - geo.data_start) % per_ref).min(end - blk);
        let rbuf = read_checked(tx.sb(), geo, rblk, "reference counts", magic::REFCOUNT)?;
        // Which of these blocks drop to zero (a bitmask would need an
        // allocation; runs are rebuilt from the counts instead).
        let first = blk;
        tx.modify(&rbuf, |b| -> FsResult {
            for i in 0..n as usize {
                let c = get_u16(b, off + 2 * i);
                if c == 0 {
                    return Err(FormatError::BadField {
                        what: "reference count of a block being freed",
                        value: first + i as u64,
                    }
                    .into());
                }
                put_u16(b, off + 2 * i, c - 1);
            }
            geo.seal_block(b, magic::REFCOUNT, rblk);
            Ok(())
        })??;
        // Clear the bitmap bits of the blocks now unreferenced.
        let mut i = 0;
        while i < n {
            let zero = rbuf.with(|b| get_u16(b, off + 2 * i as usize) == 0);
            if !zero {
                i += 1;
                continue;
            }
            let b0 = first + i;
            let loc = geo.block_bit(b0).ok_or(ENOSPC)?;
            let per_bits = bitmap_bits_per_block(geo.block_size());
            let mut run = 1;
            while i + run < n
                && loc.bit + run < per_bits
                && rbuf.with(|b| get_u16(b, off + 2 * (i + run) as usize) == 0)
            {
                run += 1;
            }
            let bbuf = read_checked(tx.sb(), geo, loc.block, "block bitmap", magic::BLOCK_BITMAP)?;
            // Undo access: the scans see these blocks as used until this
            // transaction commits (see `allocatable`).
            tx.modify_undo(&bbuf, |b, committed| -> FsResult {
                for j in 0..run {
                    if !bitmap_get(b, loc.bit + j) {
                        return Err(FormatError::BadField {
                            what: "block bitmap bit of a referenced block",
                            value: b0 + j,
                        }
                        .into());
                    }
                    bitmap_set(committed, loc.bit + j, true);
                    bitmap_set(b, loc.bit + j, false);
                }
                geo.seal_block(b, magic::BLOCK_BITMAP, loc.block);
                Ok(())
            })??;
            a.busy_runs.add(tx.tid(), b0, run);
            freed_total += run;
            i += run;
        }
        blk += n;
    }
    a.free_blocks += freed_total;
    add_busy(fs, &mut a, tx.tid(), freed_total);
    Ok(freed_total)
}

/// Allocates an inode number.
pub(crate) fn alloc_inode(tx: &mut Transaction<'_>, fs: &FsInfo) -> FsResult<u64> {
    let geo = &fs.geo;
    let mut a = fs.alloc.lock();
    if a.free_inodes == 0 {
        return Err(ENOSPC.into());
    }
    let per = bitmap_bits_per_block(geo.block_size());
    let total = geo.inode_count;
    let start_idx = a.inode_hint.saturating_sub(1) % total;
    let nblocks = total.div_ceil(per);
    let first = start_idx / per;
    for step in 0..=nblocks {
        let bi = (first + step) % nblocks;
        let from = if step == 0 { start_idx % per } else { 0 };
        let limit = per.min(total - bi * per);
        let blk = geo.ibitmap_start + bi;
        let buf = read_checked(tx.sb(), geo, blk, "inode bitmap", magic::INODE_BITMAP)?;
        let Some(bit) = buf.with(|b| bitmap_find_clear(b, from, limit)) else {
            continue;
        };
        tx.modify(&buf, |b| {
            bitmap_set(b, bit, true);
            geo.seal_block(b, magic::INODE_BITMAP, blk);
        })?;
        let ino = bi * per + bit + 1;
        a.free_inodes -= 1;
        a.inode_hint = ino + 1;
        return Ok(ino);
    }
    Err(FormatError::BadField {
        what: "free inode count (bitmap is full)",
        value: a.free_inodes,
    }
    .into())
}

/// Frees inode number `ino` (the caller has zeroed its slot).
pub(crate) fn free_inode(tx: &mut Transaction<'_>, fs: &FsInfo, ino: u64) -> FsResult {
    let geo = &fs.geo;
    let loc = geo.inode_bit(ino).ok_or(FormatError::BadField {
        what: "inode to free",
        value: ino,
    })?;
    let mut a = fs.alloc.lock();
    let buf = read_checked(tx.sb(), geo, loc.block, "inode bitmap", magic::INODE_BITMAP)?;
    tx.modify(&buf, |b| -> FsResult {
        if !bitmap_get(b, loc.bit) {
            return Err(FormatError::BadField {
                what: "inode bitmap bit of an inode being freed",
                value: ino,
            }
            .into());
        }
        bitmap_set(b, loc.bit, false);
        geo.seal_block(b, magic::INODE_BITMAP, loc.block);
        Ok(())
    })??;
    a.free_inodes += 1;
    Ok(())
}

/// Whether inode `ino` is marked in use.
pub(crate) fn inode_in_use(m: Mount<'_>, ino: u64) -> FsResult<bool> {
    let geo = &m.fs.geo;
    let loc = geo.inode_bit(ino).ok_or(FormatError::BadField {
        what: "inode number",
        value: ino,
    })?;
    let buf = read_checked(m.sb, geo, loc.block, "inode bitmap", magic::INODE_BITMAP)?;
    Ok(buf.with(|b| bitmap_get(b, loc.bit)))
}

/// The reference-count block that the last sharing walk read, kept
/// referenced for the next one: consecutive extents of a file usually have
/// their counts in the same block, and a walk over many short extents
/// (swapon) would otherwise look the same buffer up, check and lock it for
/// every one of them. Its contents are still read under the buffer lock at
/// each use.
pub(crate) struct RefcountCursor {
    last: Option<(u64, Buffer)>,
}

impl RefcountCursor {
    /// A cursor holding no block.
    pub(crate) fn new() -> Self {
        RefcountCursor { last: None }
    }

    /// Reference-count block `rblk`, read and checked unless it is the one
    /// held.
    fn get(&mut self, sb: &SuperBlock, geo: &Geometry, rblk: u64) -> FsResult<&Buffer> {
        if !matches!(&self.last, Some((b, _)) if *b == rblk) {
            let buf = read_checked(sb, geo, rblk, "reference counts", magic::REFCOUNT)?;
            self.last = Some((rblk, buf));
        }
        match &self.last {
            Some((_, buf)) => Ok(buf),
            None => Err(EIO.into()),
        }
    }
}

/// Calls `f(start, len, shared)` for the maximal runs of `[pblk, pblk +
/// len)` whose blocks are all shared (reference count above 1) or all
/// private, in order, until `f` breaks. Each reference-count block is read
/// once (through `cursor`) and locked once per run boundary in it; `f` runs
/// without any buffer lock.
fn walk_sharing(
    m: Mount<'_>,
    cursor: &mut RefcountCursor,
    pblk: u64,
    len: u64,
    mut f: impl FnMut(u64, u64, bool) -> FsResult<ControlFlow<()>>,
) -> FsResult {
    let geo = &m.fs.geo;
    if !geo.is_data_range(pblk, len) {
        return Err(FormatError::BadField {
            what: "extent outside the data region",
            value: pblk,
        }
        .into());
    }
    let per = refcounts_per_block(geo.block_size());
    let end = pblk + len;
    // The run being built: its start and whether it is shared.
    let mut cur: Option<(u64, bool)> = None;
    let mut blk = pblk;
    while blk < end {
        let (rblk, off) = geo.refcount_location(blk).ok_or(EIO)?;
        let n = (per - (blk - geo.data_start) % per).min(end - blk);
        let buf = cursor.get(m.sb, geo, rblk)?;
        let mut j = 0u64;
        while j < n {
            // How far the sharedness of entry j extends in this block.
            let (shared, stop) = buf.with(|b| {
                let entries = b.get(off + 2 * j as usize..off + 2 * n as usize);
                let entries = entries.unwrap_or(&[]);
                let s = get_u16(entries, 0) > 1;
                (s, j + (refcount_run(entries, s) as u64).max(1))
            });
            match cur {
                Some((_, s)) if s == shared => {}
                Some((start, s)) => {
                    if f(start, blk + j - start, s)?.is_break() {
                        return Ok(());
                    }
                    cur = Some((blk + j, shared));
                }
                None => cur = Some((blk + j, shared)),
            }
            j = stop;
        }
        blk += n;
    }
    if let Some((start, s)) = cur {
        // The last run: nothing follows, whatever `f` answers.
        let _ = f(start, end - start, s)?;
    }
    Ok(())
}

/// Calls `f(start, len, shared)` for the maximal runs of `[pblk, pblk +
/// len)` whose blocks are all shared (reference count above 1) or all
/// private, in order. `cursor` carries the last reference-count block over
/// to the next call.
pub(crate) fn sharing_runs(
    m: Mount<'_>,
    cursor: &mut RefcountCursor,
    pblk: u64,
    len: u64,
    mut f: impl FnMut(u64, u64, bool) -> FsResult,
) -> FsResult {
    walk_sharing(m, cursor, pblk, len, |start, n, shared| {
        f(start, n, shared).map(|()| ControlFlow::Continue(()))
    })
}

/// Whether the first block of `[pblk, pblk + len)` is shared (reference
/// count above 1), and how many blocks from `pblk` on are the same.
pub(crate) fn sharing_prefix(m: Mount<'_>, pblk: u64, len: u64) -> FsResult<(u64, bool)> {
    let mut first = (0, false);
    let mut cursor = RefcountCursor::new();
    walk_sharing(m, &mut cursor, pblk, len, |_, n, shared| {
        first = (n, shared);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(first)
}
