// SPDX-License-Identifier: GPL-2.0

//! Regular files (mapping for iomap, allocation, unwritten conversion,
//! truncation, fsync) and symlink targets.

use kernel::prelude::*;

use super::meta::{self, Reader};
use super::swapguard::{self, Use};
use super::{alloc, inode, orphan, FsInfo, FsResult, Mount};
use core::ops::ControlFlow;

use crate::common::cow::Staged;
use crate::common::extent::{self, Mapping};
use crate::common::format::{self, extent_flags, magic, Extent, FormatError};
use crate::sys::buffer::Buffer;
use crate::sys::errno;
use crate::sys::iomap::{IoMap, IomapOp, MapKind};
use crate::sys::journal::Transaction;
use crate::sys::vfs::{Inode, MapWrite};
use crate::sys::write::Write;
use crate::sys::InodeData;

/// Longest run allocated by one `iomap_begin` (iomap calls again for the
/// rest of a write).
const MAX_ALLOC_BLOCKS: u64 = 2048;

/// The mapping at logical block `lblk`, read-only.
pub(crate) fn lookup(m: Mount<'_>, inode: &Inode, lblk: u64) -> FsResult<Mapping> {
    let map = inode.map_read();
    let mut r = Reader { m };
    extent::lookup(&mut r, &map.data().root, inode.ino(), lblk)
}

/// Fills an iomap description for blocks `[lblk, end)` from a lookup.
fn describe(fs: &FsInfo, m: Mapping, lblk: u64, end: u64, out: &mut IoMap) {
    let bits = fs.geo.block_size_log2;
    *out = IoMap {
        offset: lblk << bits,
        ..IoMap::default()
    };
    match m {
        Mapping::Mapped(e) => {
            let stop = e.lend().min(end.max(lblk + 1));
            describe_run(fs, &e, lblk, stop - lblk, out);
        }
        Mapping::Hole { end: hole_end } => {
            let stop = hole_end
                .min(end.max(lblk + 1))
                .min(format::max_lblk(&fs.geo));
            out.length = (stop.max(lblk + 1) - lblk) << bits;
            out.kind = MapKind::Hole;
        }
    }
}

/// Describes blocks `[lblk, lblk + len)` mapped by `e` (and, for merged
/// reports, by the extents that continue it physically).
fn describe_run(fs: &FsInfo, e: &Extent, lblk: u64, len: u64, out: &mut IoMap) {
    let bits = fs.geo.block_size_log2;
    let addr = (e.pblk + (lblk - e.lblk)) << bits;
    *out = IoMap {
        offset: lblk << bits,
        length: len.max(1) << bits,
        kind: if e.is_unwritten() {
            MapKind::Unwritten { addr }
        } else {
            MapKind::Mapped { addr }
        },
        ..IoMap::default()
    };
}

/// Describes a copy-on-write mapping: blocks `[lblk, lblk + len)` go to
/// the staged blocks `st` (`out`), replacing those of `e` (`src`, whose
/// data iomap reads for what the write does not cover).
#[allow(clippy::too_many_arguments)]
fn describe_cow(
    fs: &FsInfo,
    st: &Staged,
    e: &Extent,
    lblk: u64,
    len: u64,
    new: bool,
    out: &mut IoMap,
    src: &mut IoMap,
) {
    let bits = fs.geo.block_size_log2;
    *out = IoMap {
        offset: lblk << bits,
        length: len << bits,
        kind: MapKind::Mapped {
            addr: (st.pblk + (lblk - st.lblk)) << bits,
        },
        shared: true,
        staged: new,
        ..IoMap::default()
    };
    describe_run(fs, e, lblk, len, src);
    src.shared = true;
}

/// `iomap_begin`: the mapping at `pos`.
///
/// - Reads see the extent tree. Reports (FIEMAP, `SEEK_DATA`/`SEEK_HOLE`)
///   merge the extents that continue each other physically and split the
///   result where sharing changes, flagging shared runs.
/// - Writes into a hole allocate blocks as unwritten extents (converted
///   when their data is on disk, so a crash never exposes stale blocks);
///   zeroing and unsharing leave holes alone.
/// - Writes into shared blocks (reference count above 1) go to staged
///   copy-on-write blocks (see `common::cow`), with the old blocks as the
///   source of what the write does not cover; the extent tree changes when
///   the data is on disk (`cow_end`). Direct IO that does not cover whole
///   blocks falls back to buffered IO (`ENOTBLK`).
/// - Other writes go in place, the mapping stopping where sharing starts.
/// - A direct write's mapping is dirty while the inode's last change (its
///   blocks, its size) is not committed: iomap then syncs after an
///   `O_DSYNC` write instead of ending it on FUA or on a disk without a
///   write cache (as `ext4_inode_datasync_dirty`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn iomap_begin(
    m: Mount<'_>,
    inode: &Inode,
    pos: u64,
    len: u64,
    op: IomapOp,
    out: &mut IoMap,
    src: &mut IoMap,
) -> FsResult {
    map(m, inode, pos, len, op, out, src)?;
    if op.direct() && !m.fs.journal.is_committed(inode.map_read().data().sync_tid) {
        out.dirty = true;
    }
    Ok(())
}

/// [`iomap_begin`]'s mapping.
#[allow(clippy::too_many_arguments)]
fn map(
    m: Mount<'_>,
    inode: &Inode,
    pos: u64,
    len: u64,
    op: IomapOp,
    out: &mut IoMap,
    src: &mut IoMap,
) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let lblk = pos >> bits;
    let end = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    if lblk >= format::max_lblk(&m.fs.geo) {
        return Err(EFBIG.into());
    }
    // Zeroing (iomap sets IOMAP_ZERO alone) writes zeroes into the page
    // cache over written blocks: a write for copy-on-write.
    let write = op.write() || op.zero();
    let report = op.report();
    // Zeroing and unsharing never allocate holes.
    let fill_holes = write && !op.zero() && !op.unshare();
    if write {
        swapguard::refuse(inode, Use::Write)?;
    }
    let found = lookup(m, inode, lblk)?;
    let e = match found {
        Mapping::Hole { end: hole_end } => {
            if !fill_holes {
                describe(m.fs, found, lblk, end, out);
                return Ok(());
            }
            if op.nowait() {
                return Err(EAGAIN.into());
            }
            let want = end
                .min(hole_end)
                .saturating_sub(lblk)
                .clamp(1, MAX_ALLOC_BLOCKS);
            allocate(m, inode, lblk, want)?;
            let found = lookup(m, inode, lblk)?;
            describe(m.fs, found, lblk, end, out);
            out.new = true;
            return Ok(());
        }
        Mapping::Mapped(e) => e,
    };
    if report {
        return report_mapped(m, inode, &e, lblk, end, out);
    }
    if !write {
        describe(m.fs, found, lblk, end, out);
        return Ok(());
    }
    write_mapped(m, inode, &e, pos, len, op, out, src)
}

/// FIEMAP and seek: the run from `lblk` of `e` and of the extents that
/// continue it (logically, physically, same flags), cut where sharing
/// changes.
fn report_mapped(
    m: Mount<'_>,
    inode: &Inode,
    e: &Extent,
    lblk: u64,
    end: u64,
    out: &mut IoMap,
) -> FsResult {
    let mut run_end = e.lend();
    let mut pend = e.pblk + u64::from(e.len);
    {
        let map = inode.map_read();
        let mut r = Reader { m };
        extent::visit(&mut r, &map.data().root, inode.ino(), run_end, end, |x| {
            if x.lblk == run_end && x.pblk == pend && x.flags == e.flags {
                run_end = x.lend();
                pend = x.pblk + u64::from(x.len);
                Ok(ControlFlow::Continue(()))
            } else {
                Ok(ControlFlow::Break(()))
            }
        })?;
    }
    let pblk = e.pblk + (lblk - e.lblk);
    let (run, shared) = alloc::sharing_prefix(m, pblk, run_end - lblk)?;
    describe_run(m.fs, e, lblk, run, out);
    out.shared = shared;
    Ok(())
}

/// A write (buffered, page fault, direct, zeroing, unsharing) into blocks
/// mapped by `e` from byte `pos`.
#[allow(clippy::too_many_arguments)]
fn write_mapped(
    m: Mount<'_>,
    inode: &Inode,
    e: &Extent,
    pos: u64,
    len: u64,
    op: IomapOp,
    out: &mut IoMap,
    src: &mut IoMap,
) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let bs = m.fs.geo.block_size() as u64;
    let ino = inode.ino();
    let lblk = pos >> bits;
    let end = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    // Blocks already staged for copy-on-write take the data.
    if let Some(st) = alloc::staged_at(m.fs, ino, lblk) {
        let n = st.len.min(e.lend() - lblk);
        describe_cow(m.fs, &st, e, lblk, n, false, out, src);
        return Ok(());
    }
    let mut limit = e.lend();
    if let Some(next) = alloc::next_staged(m.fs, ino, lblk) {
        limit = limit.min(next);
    }
    let pblk = e.pblk + (lblk - e.lblk);
    let (run, shared) = alloc::sharing_prefix(m, pblk, limit - lblk)?;
    let keeps_unwritten = op.zero() || op.unshare();
    if !shared || (e.is_unwritten() && keeps_unwritten) {
        // Private blocks are written in place; zeroing or unsharing an
        // unwritten extent writes nothing.
        describe_run(m.fs, e, lblk, run, out);
        return Ok(());
    }
    if op.nowait() {
        return Err(EAGAIN.into());
    }
    if op.direct() && (pos % bs != 0 || pos.saturating_add(len) % bs != 0) {
        // Direct IO cannot copy the rest of a partially written block.
        return Err(errno::not_block().into());
    }
    let want = end
        .min(lblk + run)
        .saturating_sub(lblk)
        .clamp(1, MAX_ALLOC_BLOCKS);
    let (st, new) = alloc::retry_enospc(m.fs, || alloc::stage(m, ino, lblk, 0, want))?;
    let n = st.len.min(e.lend() - lblk);
    describe_cow(m.fs, &st, e, lblk, n, new, out, src);
    Ok(())
}

/// Allocates up to `want` blocks at logical block `lblk` (a hole) as
/// unwritten extents, in one transaction (after a commit if the blocks
/// free are waiting for one, see [`alloc::retry_enospc`]).
fn allocate(m: Mount<'_>, inode: &Inode, lblk: u64, want: u64) -> FsResult {
    alloc::retry_enospc(m.fs, || allocate_once(m, inode, lblk, want))
}

fn allocate_once(m: Mount<'_>, inode: &Inode, lblk: u64, want: u64) -> FsResult {
    let max_run = alloc::max_run_for(&m.fs.geo, m.fs.max_credits() / 2).min(want);
    let credits =
        alloc::run_credits(&m.fs.geo, max_run) + meta::tree_credits(m.fs) + inode::WRITE_CREDITS;
    let mut tx = m.start(credits)?;
    let mut map = inode.map_write();
    // Someone may have filled the hole while we waited.
    let mut r = Reader { m };
    let goal = match extent::lookup(&mut r, &map.data().root, inode.ino(), lblk)? {
        Mapping::Mapped(_) => return Ok(()),
        Mapping::Hole { .. } if lblk > 0 => {
            match extent::lookup(&mut r, &map.data().root, inode.ino(), lblk - 1)? {
                Mapping::Mapped(e) => e.pblk + (lblk - e.lblk),
                Mapping::Hole { .. } => 0,
            }
        }
        Mapping::Hole { .. } => 0,
    };
    // ENOSPC here changes nothing: the transaction is still clean.
    let (pblk, got) = alloc::alloc_data(&mut tx, m.fs, lblk, goal, max_run)?;
    let (done, nodes, replaced) = meta::set_range(
        &mut tx,
        m.fs,
        &mut map,
        inode.ino(),
        lblk,
        got,
        Some((pblk, extent_flags::UNWRITTEN)),
    )?;
    if !replaced.is_empty() {
        return Err(FormatError::BadField {
            what: "allocation over mapped blocks",
            value: lblk,
        }
        .into());
    }
    if done < got {
        // The tree took a prefix in this step: give the rest back.
        alloc::put_blocks(&mut tx, m.fs, pblk + done, got - done)?;
    }
    let blocks = inode.attrs().blocks;
    inode.set_blocks(blocks.saturating_add(done).saturating_add_signed(nodes));
    inode::write(&mut tx, m.fs, inode, &mut map)?;
    drop(map);
    tx.stop()?;
    Ok(())
}

/// Preallocates unwritten extents over the holes of logical blocks
/// `[from, to)`, one bounded transaction at a time. On `ENOSPC` what was
/// allocated stays (as on ext4 and xfs), the rest is still holes.
pub(crate) fn allocate_range(m: Mount<'_>, inode: &Inode, from: u64, to: u64) -> FsResult {
    let mut lblk = from;
    while lblk < to {
        match lookup(m, inode, lblk)? {
            Mapping::Mapped(e) => lblk = e.lend(),
            Mapping::Hole { end } => {
                let want = end.min(to).saturating_sub(lblk).max(1);
                allocate(m, inode, lblk, want)?;
            }
        }
    }
    Ok(())
}

/// Ends one bounded mapping step of `inode` begun with
/// [`meta::set_range`] in `tx`: drops one reference to each block of the
/// pieces it replaced (freeing the blocks whose last owner it was, in this
/// very transaction), counts `added` newly mapped blocks and the `nodes`
/// change in the inode's `blocks`, writes the inode and commits the step.
pub(crate) fn finish_step(
    mut tx: Transaction<'_>,
    fs: &FsInfo,
    inode: &Inode,
    mut map: MapWrite<'_>,
    added: u64,
    nodes: i64,
    replaced: &meta::Replaced,
) -> FsResult {
    let mut dropped = 0;
    for r in replaced.iter() {
        alloc::put_blocks(&mut tx, fs, r.pblk, u64::from(r.len))?;
        dropped += u64::from(r.len);
    }
    let blocks = inode.attrs().blocks;
    inode.set_blocks(
        blocks
            .saturating_add(added)
            .saturating_sub(dropped)
            .saturating_add_signed(nodes),
    );
    inode::write(&mut tx, fs, inode, &mut map)?;
    drop(map);
    tx.stop()?;
    Ok(())
}

/// Makes logical blocks `[from, to)` a hole, one bounded transaction per
/// extent piece, dropping one reference to each block unmapped (shared
/// blocks stay with their other owners). Regular files only.
pub(crate) fn punch_range(m: Mount<'_>, inode: &Inode, from: u64, to: u64) -> FsResult {
    let max_run = alloc::max_run_for(&m.fs.geo, m.fs.max_credits() / 2);
    let mut lblk = from;
    while lblk < to {
        let e = match lookup(m, inode, lblk)? {
            Mapping::Hole { end } => {
                lblk = end.max(lblk + 1);
                continue;
            }
            Mapping::Mapped(e) => e,
        };
        let stop = e.lend().min(to).min(lblk + max_run);
        let len = stop - lblk;
        let credits = alloc::run_credits(&m.fs.geo, len)
            + meta::REPLACED_CREDITS
            + meta::tree_credits(m.fs)
            + inode::WRITE_CREDITS;
        let mut tx = m.start(credits)?;
        let mut map = inode.map_write();
        let (done, nodes, replaced) =
            meta::set_range(&mut tx, m.fs, &mut map, inode.ino(), lblk, len, None)?;
        finish_step(tx, m.fs, inode, map, 0, nodes, &replaced)?;
        lblk += done.max(1);
    }
    Ok(())
}

/// Writeback of the dirty bytes `[pos, pos + len)`: where they go. Blocks
/// are allocated when data is written into a hole, before writeback; shared
/// blocks have staged copy-on-write blocks (staged here if a write somehow
/// did not). A private mapping stops where sharing or staging starts.
pub(crate) fn map_blocks(
    m: Mount<'_>,
    inode: &Inode,
    pos: u64,
    len: u64,
    out: &mut IoMap,
) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let ino = inode.ino();
    let lblk = pos >> bits;
    let end = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    let mut src = IoMap::default();
    let found = lookup(m, inode, lblk)?;
    if let Some(st) = alloc::staged_at(m.fs, ino, lblk) {
        let e = match found {
            Mapping::Mapped(e) => e,
            Mapping::Hole { .. } => Extent {
                lblk,
                pblk: st.pblk,
                len: 1,
                flags: 0,
            },
        };
        describe_cow(m.fs, &st, &e, lblk, st.len, false, out, &mut src);
        return Ok(());
    }
    let e = match found {
        Mapping::Mapped(e) => e,
        Mapping::Hole { .. } => {
            pr_err!(
                "{}: inode {}: dirty data over a hole at offset {}\n",
                m.sb.id(),
                ino,
                pos
            );
            return Err(EIO.into());
        }
    };
    let mut limit = e.lend();
    if let Some(next) = alloc::next_staged(m.fs, ino, lblk) {
        limit = limit.min(next);
    }
    let pblk = e.pblk + (lblk - e.lblk);
    let (run, shared) = alloc::sharing_prefix(m, pblk, limit - lblk)?;
    if !shared {
        describe_run(m.fs, &e, lblk, run, out);
        return Ok(());
    }
    let want = end
        .min(lblk + run)
        .saturating_sub(lblk)
        .clamp(1, MAX_ALLOC_BLOCKS);
    let (st, new) = alloc::stage(m, ino, lblk, 0, want)?;
    describe_cow(m.fs, &st, &e, lblk, st.len, false, out, &mut src);
    if new {
        pr_warn!(
            "{}: inode {}: shared blocks reached writeback without staged blocks\n",
            m.sb.id(),
            ino
        );
    }
    Ok(())
}

/// What kind of write to file data ended.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WriteEnd {
    /// Some of it went to staged blocks (copy-on-write).
    pub(crate) cow: bool,
    /// Some of it went to unwritten extents.
    pub(crate) unwritten: bool,
    /// A direct write (else writeback).
    pub(crate) direct: bool,
}

/// `write_iter`: a write through a file, under `i_rwsem`; then, for what
/// went through the page cache, the sync `O_DSYNC` and `O_SYNC` ask for (a
/// direct write syncs itself, in iomap). Returns the bytes written.
pub(crate) fn write_iter(fs: &FsInfo, w: &Write<'_>) -> Result<u64> {
    let inode = w.inode();
    let ret = {
        let _locked = inode.lock();
        write_locked(fs, inode, w)
    };
    match ret {
        // A direct write's buffered rest turned the kiocb buffered: it
        // syncs here too.
        Ok(n) if n > 0 && !w.is_direct() => w.sync(n),
        r => r,
    }
}

fn write_locked(fs: &FsInfo, inode: &Inode, w: &Write<'_>) -> Result<u64> {
    let mut old_size = inode.size();
    // Also refuses writes to an active swapfile.
    if w.checks()? == 0 {
        return Ok(0);
    }
    w.modify_file()?;
    let pos = w.pos();
    // Past the old end the file reads as zeroes: blocks mapped between it
    // and this write (left by a crash or a failed write) are zeroed first,
    // as xfs_file_write_zero_eof() does. A direct write in flight past the
    // end converts its blocks, then moves i_size, at completion: wait for
    // it first (as xfs), or this zeroing would land on its data.
    if pos > old_size {
        inode.dio_wait();
        old_size = inode.size();
    }
    if pos > old_size {
        inode.zero_range(old_size, pos - old_size)?;
    }
    let ret = if w.is_direct() {
        write_direct(fs, inode, w, pos)
    } else {
        w.buffered()
    };
    // iomap moves i_size in memory only and leaves writing it to the
    // filesystem: journal it now (`dirty_inode`), or an extending write
    // that allocates nothing (into the last block) would lose its size,
    // even to fsync and umount. Past the old size the disk holds zeroes
    // (unwritten extents, or the zeroed tail of the last block) until the
    // data is written back.
    if inode.size() > old_size {
        inode.mark_dirty();
    }
    ret
}

/// A direct write at `pos`, with its buffered fallbacks.
fn write_direct(fs: &FsInfo, inode: &Inode, w: &Write<'_>, pos: u64) -> Result<u64> {
    // A direct write that is not block-aligned zeroes the rest of its
    // blocks: two in flight at once would zero each other's data. Such
    // writes wait for every other direct IO and for their own completion
    // (as ext4 and xfs), under i_rwsem.
    let unaligned = (pos | w.count()) & (fs.geo.block_size() as u64 - 1) != 0;
    if unaligned {
        inode.dio_wait();
    }
    let done = match w.direct(unaligned) {
        Ok(n) => n,
        // iomap asks for buffered IO (copy-on-write of a partial block):
        // never an error for the caller.
        Err(e) if e == errno::not_block() => 0,
        Err(e) => return Err(e),
    };
    if w.count() == 0 {
        return Ok(done);
    }
    // A short direct write goes on through the page cache.
    w.set_buffered();
    match w.buffered() {
        Ok(n) => Ok(done + n),
        Err(_) if done > 0 => Ok(done),
        Err(e) => Err(e),
    }
}

/// Whether a writeback bio of bytes `[pos, pos + len)` must end with
/// [`write_end`] (run from the workqueue before the folios' writeback ends):
/// copy-on-write and unwritten blocks need their transaction, and a write
/// past the size on disk raises it (as `xfs_ioend_needs_wq_completion`).
/// The size on disk is read without its lock, as xfs reads `i_disk_size`:
/// writeback must not take it (truncate holds it while it waits for
/// writeback).
pub(crate) fn write_needs_end(inode: &Inode, pos: u64, len: u64, how: WriteEnd) -> bool {
    how.cow || how.unwritten || pos.saturating_add(len) > inode.disk_size_unlocked()
}

/// A write of bytes `[pos, pos + len)` ended with `err` (0, or a negative
/// errno), in process context: end-of-IO work for writeback, the
/// completion of a direct write. In order, each its own transactions:
/// copy-on-write maps the staged blocks in place of the shared ones (or
/// gives them back after an error, the file keeping its old data); then,
/// without an error, what stayed unwritten becomes written; then the size
/// grows to cover the data: `i_size` for a direct write past it, the size
/// on disk for writeback. Returns what the writer sees: the IO's error,
/// else the first failure here.
pub(crate) fn write_end(
    m: Mount<'_>,
    inode: &Inode,
    pos: u64,
    len: u64,
    err: i32,
    how: WriteEnd,
) -> FsResult {
    if len > 0 && how.cow {
        cow_end(m, inode, pos, len, err)?;
    }
    if err != 0 {
        return Err(Error::from_errno(err).into());
    }
    if len == 0 {
        return Ok(());
    }
    if how.unwritten {
        convert_unwritten(m, inode, pos, len)?;
    }
    let end = pos.saturating_add(len);
    if how.direct {
        extend(m, inode, end)
    } else {
        data_written(m, inode, end)
    }
}

/// Copy-on-write IO to bytes `[pos, pos + len)` ended: on success each
/// staged range there is mapped in the file in place of the old blocks,
/// whose reference it drops (freeing them when it was the last), one
/// bounded transaction at a time; after an error (`err` non-zero) the
/// staged blocks go back to the free space and the file keeps its old data.
fn cow_end(m: Mount<'_>, inode: &Inode, pos: u64, len: u64, err: i32) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let ino = inode.ino();
    let lo = pos >> bits;
    let hi = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    if err != 0 {
        alloc::cancel_staged(m.fs, ino, lo, hi);
        return Ok(());
    }
    alloc::prepare_commit(m.fs, ino, lo, hi)?;
    let max_run = alloc::max_run_for(&m.fs.geo, m.fs.max_credits() / 4);
    let mut lblk = lo;
    while lblk < hi {
        let Some(st) = alloc::staged_at(m.fs, ino, lblk) else {
            lblk = alloc::next_staged(m.fs, ino, lblk).map_or(hi, |n| n.min(hi));
            continue;
        };
        let n = st.len.min(hi - lblk).min(max_run).max(1);
        let credits = 2 * alloc::run_credits(&m.fs.geo, n)
            + meta::REPLACED_CREDITS
            + meta::tree_credits(m.fs)
            + inode::WRITE_CREDITS;
        let mut tx = m.start(credits)?;
        let mut map = inode.map_write();
        let (done, nodes, replaced) =
            meta::set_range(&mut tx, m.fs, &mut map, ino, lblk, n, Some((st.pblk, 0)))?;
        alloc::commit_staged(&mut tx, m.fs, ino, lblk, st.pblk, done)?;
        finish_step(tx, m.fs, inode, map, done, nodes, &replaced)?;
        lblk += done.max(1);
    }
    Ok(())
}

/// The end of a write through a mapping of `[pos, pos + len)` that staged
/// copy-on-write blocks up to byte `map_end`: the staged blocks past what
/// it wrote (`written` bytes; a short write, or an error) received no data
/// and go back to the free space.
pub(crate) fn staged_end(
    fs: &FsInfo,
    inode: &Inode,
    pos: u64,
    len: u64,
    written: i64,
    map_end: u64,
) {
    let written = u64::try_from(written).unwrap_or(0);
    if written >= len {
        return;
    }
    let bs = fs.geo.block_size() as u64;
    let Some(start) = pos.saturating_add(written).checked_next_multiple_of(bs) else {
        return;
    };
    if start < map_end {
        cow_cancel(fs, inode, start, map_end - start);
    }
}

/// Gives back the staged blocks of bytes `[pos, pos + len)` (whole blocks).
fn cow_cancel(fs: &FsInfo, inode: &Inode, pos: u64, len: u64) {
    let bits = fs.geo.block_size_log2;
    let lo = pos >> bits;
    let hi = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    alloc::cancel_staged(fs, inode.ino(), lo, hi);
}

/// The data of `[pos, pos + len)` is on disk: unwritten extents there
/// become written.
fn convert_unwritten(m: Mount<'_>, inode: &Inode, pos: u64, len: u64) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let mut lblk = pos >> bits;
    let end = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    while lblk < end {
        let found = lookup(m, inode, lblk)?;
        let (e, stop) = match found {
            Mapping::Mapped(e) => (e, e.lend().min(end)),
            // Truncated or punched meanwhile: nothing to convert there.
            Mapping::Hole { end: h } => {
                lblk = h.min(end);
                continue;
            }
        };
        if e.is_unwritten() {
            let credits = meta::tree_credits(m.fs) + inode::WRITE_CREDITS;
            let mut tx = m.start(credits)?;
            let mut map = inode.map_write();
            let pblk = e.pblk + (lblk - e.lblk);
            // The same blocks, now written: nothing is freed.
            let (done, nodes, _) = meta::set_range(
                &mut tx,
                m.fs,
                &mut map,
                inode.ino(),
                lblk,
                stop - lblk,
                Some((pblk, 0)),
            )?;
            let blocks = inode.attrs().blocks;
            inode.set_blocks(blocks.saturating_add_signed(nodes));
            inode::write(&mut tx, m.fs, inode, &mut map)?;
            drop(map);
            tx.stop()?;
            lblk += done.max(1);
            continue;
        }
        lblk = stop;
    }
    Ok(())
}

/// The last extent that maps a block before `end`, if any: a binary search
/// with `lookup`, since "some block of `[x, end)` is mapped" is monotone in
/// `x`.
fn last_extent_before(m: Mount<'_>, inode: &Inode, end: u64) -> FsResult<Option<Extent>> {
    let mapped_from = |x: u64| -> FsResult<Option<Extent>> {
        Ok(match lookup(m, inode, x)? {
            Mapping::Mapped(e) => Some(e),
            Mapping::Hole { end: h } if h < end => match lookup(m, inode, h)? {
                Mapping::Mapped(e) => Some(e),
                Mapping::Hole { .. } => None,
            },
            Mapping::Hole { .. } => None,
        })
    };
    if end == 0 || mapped_from(0)?.is_none() {
        return Ok(None);
    }
    // Invariant: some block of [lo, end) is mapped; none of [hi, end) is.
    let (mut lo, mut hi) = (0u64, end);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if mapped_from(mid)?.is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    match lookup(m, inode, lo)? {
        Mapping::Mapped(e) => Ok(Some(e)),
        Mapping::Hole { .. } => Err(FormatError::BadField {
            what: "extent tree changed under truncate",
            value: lo,
        }
        .into()),
    }
}

/// Frees every block mapped at or after logical block `from`, from the end,
/// one bounded transaction at a time. Extents past `i_size` are legal, so
/// every intermediate state (after a crash too) is consistent.
///
/// The blocks of directories and symlinks are journaled metadata: each one
/// freed is also revoked, or journal replay (or checkpointing an older
/// transaction) could write stale metadata over the block's next user.
pub(crate) fn free_from(m: Mount<'_>, inode: &Inode, from: u64) -> FsResult {
    let kind = inode.mode() & format::mode::S_IFMT;
    let metadata = kind == format::mode::S_IFDIR || kind == format::mode::S_IFLNK;
    let max_run = if metadata {
        u64::from(m.fs.max_credits() / 4).max(1)
    } else {
        alloc::max_run_for(&m.fs.geo, m.fs.max_credits() / 2)
    };
    let mut end = format::max_lblk(&m.fs.geo);
    while let Some(e) = last_extent_before(m, inode, end)? {
        if e.lend() <= from {
            break;
        }
        let start = e.lblk.max(from).max(e.lend().saturating_sub(max_run));
        let len = e.lend() - start;
        let revokes = if metadata { len as u32 } else { 0 };
        let credits = alloc::run_credits(&m.fs.geo, len)
            + meta::tree_credits(m.fs)
            + inode::WRITE_CREDITS
            + revokes;
        let mut tx = m.start(credits)?;
        let mut map = inode.map_write();
        let (done, nodes, replaced) =
            meta::set_range(&mut tx, m.fs, &mut map, inode.ino(), start, len, None)?;
        let mut freed = 0;
        for r in replaced.iter() {
            if metadata {
                // Revoked before the blocks can be found free.
                for b in r.pblk..r.pblk + u64::from(r.len) {
                    tx.revoke(b)?;
                }
            }
            alloc::put_blocks(&mut tx, m.fs, r.pblk, u64::from(r.len))?;
            freed += u64::from(r.len);
        }
        let blocks = inode.attrs().blocks;
        inode.set_blocks(blocks.saturating_sub(freed).saturating_add_signed(nodes));
        inode::write(&mut tx, m.fs, inode, &mut map)?;
        drop(map);
        tx.stop()?;
        end = if done >= len { start } else { e.lend() };
    }
    Ok(())
}

/// Every block of an inode being freed.
pub(crate) fn free_all_blocks(m: Mount<'_>, inode: &Inode) -> FsResult {
    free_from(m, inode, 0)
}

/// `setattr` with a new size (the caller holds `i_rwsem` and the
/// invalidate lock, and has waited for direct IO).
pub(crate) fn setsize(m: Mount<'_>, inode: &Inode, size: u64) -> FsResult {
    resize(m, inode, size, true)
}

/// The new size of a remap destination that grew: its new data (the
/// remapped blocks) lies past the old end, and what lies between was zeroed
/// before the remap.
pub(crate) fn setsize_after_remap(m: Mount<'_>, inode: &Inode, size: u64) -> FsResult {
    resize(m, inode, size, false)
}

/// [`setsize`]; `zero_gap`: growing zeroes what lies past the old end.
fn resize(m: Mount<'_>, inode: &Inode, size: u64, zero_gap: bool) -> FsResult {
    let old = inode.size();
    let regular = inode.mode() & format::mode::S_IFMT == format::mode::S_IFREG;
    if size != old {
        if !regular {
            return Err(EINVAL.into());
        }
        swapguard::refuse(inode, Use::Resize)?;
    } else if !regular || swapguard::is_swap(inode) {
        return Ok(());
    }
    if size > format::MAX_FILE_SIZE {
        return Err(EFBIG.into());
    }
    let from = size.div_ceil(m.fs.geo.block_size() as u64);
    if size == old {
        // Truncating to the size trims what was preallocated past it
        // (fallocate -k), as on ext4 and xfs.
        return free_from(m, inode, from);
    }
    // The page cache first, with no transaction open. Shrinking zeroes the
    // tail of the new last block, which reaches the disk before the new
    // size does (xfs_setattr_size): a crash must not leave the old bytes
    // there for a later extension to show.
    let zeroed = size < old && inode.zero_tail(size)?;
    inode.truncate_setsize(size)?;
    if zeroed && size > 0 {
        inode.flush_range(size - 1, size - 1)?;
    }
    if size > old && zero_gap {
        // Past the old end the file reads as zeroes: blocks mapped there
        // (by a crash, a failed write) are zeroed, inside the new size (so
        // that writeback writes the zeroes), and on disk before the new
        // size is (xfs_setattr_size).
        inode.zero_range(old, size - old)?;
        inode.flush_range(old, size - 1)?;
    }
    if size < old {
        // Dirty data past the new end is gone: so are its staged blocks.
        alloc::cancel_staged(m.fs, inode.ino(), from, u64::MAX);
    }
    // Shrinking frees the blocks in more than one transaction: from the
    // one that commits the new size to the one that frees the last block,
    // the inode is on the orphan list, and mount finishes the job after a
    // crash (an unlinked inode is on the list already).
    let protect = size < old && inode.nlink() > 0;
    let mut tx = m.start(inode::WRITE_CREDITS + orphan::CREDITS)?;
    {
        let mut map = inode.map_write();
        inode.touch_mtime_ctime();
        map.data_mut().disk_size = size;
        inode::write(&mut tx, m.fs, inode, &mut map)?;
    }
    if protect {
        orphan::add(&mut tx, m.fs, inode)?;
    }
    tx.stop()?;
    if size < old {
        free_from(m, inode, from)?;
    }
    if protect {
        let mut tx = m.start(orphan::CREDITS)?;
        orphan::remove(&mut tx, m.fs, inode)?;
        tx.stop()?;
    }
    Ok(())
}

/// The end of a direct write at byte `end`: if it is past `i_size`, the
/// size grows to it (its data is on disk now) in a transaction, whose
/// failure the writer sees.
fn extend(m: Mount<'_>, inode: &Inode, end: u64) -> FsResult {
    if end <= inode.size() {
        return Ok(());
    }
    let mut tx = m.start(inode::WRITE_CREDITS)?;
    {
        // Under the map lock: completions of concurrent direct writes
        // (AIO) only ever grow the size.
        let mut map = inode.map_write();
        if end > inode.size() {
            inode.set_size(end);
            map.data_mut().disk_size = end;
            inode::write(&mut tx, m.fs, inode, &mut map)?;
        }
    }
    tx.stop()?;
    Ok(())
}

/// Written-back data up to byte `end` is on disk: the size on disk grows to
/// cover it, within `i_size` (xfs_setfilesize). Its own transaction, after
/// the one converting the blocks: a crash in between leaves written data
/// past the end, which a later extension zeroes.
fn data_written(m: Mount<'_>, inode: &Inode, end: u64) -> FsResult {
    let target = |d: &InodeData| end.min(inode.size()) > d.disk_size;
    if !target(inode.map_read().data()) {
        return Ok(());
    }
    let mut tx = m.start(inode::WRITE_CREDITS)?;
    {
        let mut map = inode.map_write();
        if target(map.data()) {
            map.data_mut().disk_size = end.min(inode.size());
            inode::write(&mut tx, m.fs, inode, &mut map)?;
        }
    }
    tx.stop()?;
    Ok(())
}

/// `write_inode`: inodes are journaled as they change, so a
/// data-integrity writeback (`sync`) only waits for that transaction, as
/// [`fsync`]; other writeback has nothing to write.
pub(crate) fn write_inode(m: Mount<'_>, inode: &Inode, sync: bool) -> FsResult {
    if !sync {
        return Ok(());
    }
    fsync(m, inode)
}

/// `fsync` (the caller wrote and waited for the data): waits for the last
/// transaction that changed the inode; flushes the device's write cache
/// unless that commit will flush it after the data was written (as
/// ext4_sync_file's `needs_barrier`): a transaction committed already, or
/// committing past its flush, leaves the data in the cache.
pub(crate) fn fsync(m: Mount<'_>, inode: &Inode) -> FsResult {
    let tid = inode.map_read().data().sync_tid;
    let needs_flush = !m.fs.journal.will_flush(tid);
    m.fs.journal.complete(tid)?;
    if needs_flush {
        m.sb.flush_device()?;
    }
    Ok(())
}

/// Reads a symlink's target (`size` bytes of its block).
pub(crate) fn read_symlink(m: Mount<'_>, inode: &Inode, size: u64) -> FsResult<KVec<u8>> {
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if len == 0 || len > m.fs.geo.symlink_max() {
        return Err(FormatError::BadField {
            what: "symlink length",
            value: size,
        }
        .into());
    }
    let blk = match lookup(m, inode, 0)? {
        Mapping::Mapped(e) if e.lblk == 0 && !e.is_unwritten() => e.pblk,
        _ => {
            return Err(FormatError::BadField {
                what: "symlink without its block",
                value: inode.ino(),
            }
            .into())
        }
    };
    let buf = Buffer::read(m.sb, blk)?;
    inode::check_owned_block(m.fs, &buf, "symlink block", magic::SYMLINK)?;
    let mut target = KVec::with_capacity(len, GFP_KERNEL)?;
    buf.with(|b| {
        target.extend_from_slice(
            b.get(format::BLOCK_HEADER_SIZE..format::BLOCK_HEADER_SIZE + len)
                .unwrap_or(&[]),
            GFP_KERNEL,
        )
    })?;
    if target.len() != len || target.contains(&0) {
        return Err(FormatError::BadField {
            what: "symlink target",
            value: inode.ino(),
        }
        .into());
    }
    Ok(target)
}
