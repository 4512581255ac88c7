// SPDX-License-Identifier: GPL-2.0

//! `fallocate`: preallocation (unwritten extents), punching holes, zeroing,
//! collapsing and inserting ranges, unsharing.
//!
//! The C side holds `i_rwsem` and the invalidate lock and has waited for
//! direct IO; `common::falloc` decides whether the request is valid. Every
//! step that changes metadata is its own bounded transaction (`file`'s
//! `allocate_range` and `punch_range`, one `extent::shift` step per
//! transaction here), so a range of any size fits the journal; between two
//! transactions the file is consistent, though an operation interrupted by
//! a crash is not undone (as on ext4 and xfs).

use kernel::prelude::*;

use super::swapguard::{self, Use};
use super::{alloc, file, inode, meta, reflink, FsError, FsResult, Mount};
use crate::common::extent::Shift;
use crate::common::falloc::{self, FallocError, Op};
use crate::common::format;
use crate::sys::errno;
use crate::sys::swapio::{self, File};
use crate::sys::vfs::Inode;

/// Bytes of a page (the page cache's unit).
fn page() -> u64 {
    u64::from(swapio::page_size())
}

/// `fallocate(file, mode, offset, len)`: checks the request, marks the
/// file modified (only a valid request does), applies it, and commits it
/// for a synchronous file (as a write through it).
pub(crate) fn fallocate(m: Mount<'_>, file: &File, mode: u32, offset: i64, len: i64) -> FsResult {
    let inode = file.inode();
    swapguard::refuse(inode, Use::Space)?;
    let bits = m.fs.geo.block_size_log2;
    let bs = m.fs.geo.block_size() as u64;
    let max_bytes = format::max_lblk(&m.fs.geo) << bits;
    let plan =
        falloc::plan(mode, offset, len, inode.size(), max_bytes, bs).map_err(|e| match e {
            FallocError::NotSupported => errno::op_not_supported(),
            FallocError::Invalid => EINVAL,
            FallocError::TooBig => EFBIG,
        })?;
    // Growing the file is subject to the caller's file size limit, as a
    // write is (ext4 and xfs check it the same way), before any block moves.
    if let Some(size) = plan.new_size.filter(|&s| s > inode.size()) {
        inode.newsize_ok(size)?;
    }
    file.modified()?;
    apply(m, inode, &plan)?;
    if file.dsync() {
        file::fsync(m, inode)?;
    }
    Ok(())
}

/// Carries out a checked request.
fn apply(m: Mount<'_>, inode: &Inode, plan: &falloc::Plan) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let bs = m.fs.geo.block_size() as u64;
    let (off, end) = (plan.offset, plan.offset + plan.len);
    // The blocks the range touches, and the ones it covers whole.
    let (first, last) = (off >> bits, end.div_ceil(bs));
    match plan.op {
        Op::Allocate => file::allocate_range(m, inode, first, last)?,
        Op::Punch => punch(m, inode, off, end)?,
        Op::Zero => {
            // As xfs: punch (which zeroes the partial blocks), then
            // preallocate. After ENOSPC the range still reads as zeroes.
            punch(m, inode, off, end)?;
            file::allocate_range(m, inode, first, last)?;
        }
        Op::Unshare => {
            reflink::unshare(m, inode, off, end)?;
            file::allocate_range(m, inode, first, last)?;
        }
        Op::Collapse => return collapse(m, inode, off, plan.len),
        Op::Insert => return insert(m, inode, off, plan.len),
    }
    if let Some(size) = plan.new_size {
        file::setsize(m, inode, size)?;
    }
    Ok(())
}

/// Punches bytes `[off, end)`: the whole blocks become a hole, the partial
/// blocks at either edge are zeroed (within `i_size`).
fn punch(m: Mount<'_>, inode: &Inode, off: u64, end: u64) -> FsResult {
    let bs = m.fs.geo.block_size() as u64;
    let pg = page();
    // Dirty data over the range reaches its blocks (and copy-on-write its
    // staged ones) before they go; then the cached pages go.
    inode.flush_unmap(off / pg * pg, end.div_ceil(pg) * pg - 1)?;
    let (from, to) = (off.div_ceil(bs), end / bs);
    if from < to {
        alloc::cancel_staged(m.fs, inode.ino(), from, to);
        file::punch_range(m, inode, from, to)?;
    }
    let size = inode.size();
    if off < size {
        inode.zero_range(off, end.min(size) - off)?;
    }
    Ok(())
}

/// Runs a shift of the extents to completion, one bounded transaction per
/// step.
fn shift(m: Mount<'_>, inode: &Inode, mut sh: Shift) -> FsResult {
    loop {
        let credits = meta::tree_credits(m.fs) + inode::WRITE_CREDITS;
        let mut tx = m.start(credits)?;
        let mut map = inode.map_write();
        let (done, nodes) = meta::shift_step(&mut tx, m.fs, &mut map, inode.ino(), &mut sh)?;
        if nodes != 0 {
            let blocks = inode.attrs().blocks;
            inode.set_blocks(blocks.saturating_add_signed(nodes));
        }
        inode::write(&mut tx, m.fs, inode, &mut map)?;
        drop(map);
        tx.stop()?;
        if done {
            return Ok(());
        }
    }
}

/// `FALLOC_FL_COLLAPSE_RANGE` of the (block-aligned) bytes `[off, off +
/// len)`: they go, the rest of the file moves down, the file shrinks.
fn collapse(m: Mount<'_>, inode: &Inode, off: u64, len: u64) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let pg = page();
    let size = inode.size();
    // Everything from the range to EOF moves: write it back, drop it.
    inode.flush_unmap(off / pg * pg, u64::MAX)?;
    let (from, n) = (off >> bits, len >> bits);
    alloc::cancel_staged(m.fs, inode.ino(), from, u64::MAX);
    file::punch_range(m, inode, from, from + n)?;
    shift(m, inode, Shift::left(from + n, n))?;
    file::setsize(m, inode, size - len)
}

/// `FALLOC_FL_INSERT_RANGE` of `len` (block-aligned) bytes at `off`: the
/// file from `off` on moves up, leaving a hole; the file grows. As xfs, the
/// size grows first, so that a crash in the middle never leaves data past
/// EOF.
fn insert(m: Mount<'_>, inode: &Inode, off: u64, len: u64) -> FsResult {
    let bits = m.fs.geo.block_size_log2;
    let pg = page();
    let size = inode.size();
    inode.flush_unmap(off / pg * pg, u64::MAX)?;
    file::setsize(m, inode, size + len)?;
    // Growing zeroed the old last block's tail through the page cache,
    // which holds that block again: drop it before it moves (as
    // xfs_prepare_shift), or its old contents would stay at its old offset.
    inode.flush_unmap(off / pg * pg, u64::MAX)?;
    let (from, n) = (off >> bits, len >> bits);
    alloc::cancel_staged(m.fs, inode.ino(), from, u64::MAX);
    if let Err(e) = shift(m, inode, Shift::right(from, n)) {
        // The first step refuses with EFBIG, changing nothing, when an
        // extent past EOF would move beyond the largest file: the size
        // goes back.
        if matches!(e, FsError::Sys(x) if x == EFBIG) {
            let _ = file::setsize(m, inode, size);
        }
        return Err(e);
    }
    Ok(())
}
