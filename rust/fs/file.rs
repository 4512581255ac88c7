// SPDX-License-Identifier: GPL-2.0

//! Regular files (mapping for iomap, allocation, unwritten conversion,
//! truncation, fsync) and symlink targets.

use kernel::prelude::*;

use super::meta::{self, Reader};
use super::{alloc, inode, FsInfo, FsResult};
use crate::common::extent::{self, Mapping};
use crate::common::format::{self, extent_flags, magic, Extent, FormatError};
use crate::sys::buffer::Buffer;
use crate::sys::ffi;
use crate::sys::vfs::{Inode, SuperBlock};
use crate::sys::Map;

/// Longest run allocated by one `iomap_begin` (iomap calls again for the
/// rest of a write).
const MAX_ALLOC_BLOCKS: u64 = 2048;

/// The mapping at logical block `lblk`, read-only.
fn lookup(sb: &SuperBlock, fs: &FsInfo, inode: &Inode, lblk: u64) -> FsResult<Mapping> {
    let map = inode.map_read();
    let mut r = Reader { fs, sb };
    extent::lookup(&mut r, &map.data().root, inode.ino(), lblk)
}

/// Fills an iomap description for blocks `[lblk, end)` from a lookup.
fn describe(fs: &FsInfo, m: Mapping, lblk: u64, end: u64, out: &mut Map) {
    let bits = fs.geo.block_size_log2;
    out.offset = (lblk << bits) as i64;
    out.flags = 0;
    match m {
        Mapping::Mapped(e) => {
            let stop = e.lend().min(end.max(lblk + 1));
            out.length = (stop - lblk) << bits;
            out.addr = (e.pblk + (lblk - e.lblk)) << bits;
            out.type_ = if e.is_unwritten() {
                ffi::swapfs_map_type_SWAPFS_MAP_UNWRITTEN
            } else {
                ffi::swapfs_map_type_SWAPFS_MAP_MAPPED
            };
        }
        Mapping::Hole { end: hole_end } => {
            let stop = hole_end
                .min(end.max(lblk + 1))
                .min(format::max_lblk(&fs.geo));
            out.length = (stop.max(lblk + 1) - lblk) << bits;
            out.addr = u64::MAX;
            out.type_ = ffi::swapfs_map_type_SWAPFS_MAP_HOLE;
        }
    }
}

/// `iomap_begin`: the mapping at `pos`; for writes into a hole, allocates
/// blocks as unwritten extents (converted when their data is on disk, so a
/// crash never exposes stale blocks).
pub(crate) fn iomap_begin(
    sb: &SuperBlock,
    fs: &FsInfo,
    inode: &Inode,
    pos: u64,
    len: u64,
    flags: u32,
    out: &mut Map,
) -> FsResult {
    let bits = fs.geo.block_size_log2;
    let lblk = pos >> bits;
    let end = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    if lblk >= format::max_lblk(&fs.geo) {
        return Err(EFBIG.into());
    }
    let m = lookup(sb, fs, inode, lblk)?;
    let write = flags & ffi::SWAPFS_IOMAP_WRITE != 0;
    let hole = matches!(m, Mapping::Hole { .. });
    if !write || !hole {
        describe(fs, m, lblk, end, out);
        return Ok(());
    }
    if inode.is_swapfile() {
        return Err(ETXTBSY.into());
    }
    if flags & ffi::SWAPFS_IOMAP_NOWAIT != 0 {
        return Err(EAGAIN.into());
    }
    let hole_end = match m {
        Mapping::Hole { end } => end,
        Mapping::Mapped(_) => lblk + 1,
    };
    let want = end
        .min(hole_end)
        .saturating_sub(lblk)
        .clamp(1, MAX_ALLOC_BLOCKS);
    allocate(sb, fs, inode, lblk, want)?;
    let m = lookup(sb, fs, inode, lblk)?;
    describe(fs, m, lblk, end, out);
    out.flags |= ffi::SWAPFS_MAP_F_NEW;
    Ok(())
}

/// Allocates up to `want` blocks at logical block `lblk` (a hole) as
/// unwritten extents.
fn allocate(sb: &SuperBlock, fs: &FsInfo, inode: &Inode, lblk: u64, want: u64) -> FsResult {
    let max_run = alloc::max_run_for(&fs.geo, fs.max_credits() / 2).min(want);
    let credits =
        alloc::run_credits(&fs.geo, max_run) + meta::tree_credits(fs) + inode::WRITE_CREDITS;
    let mut tx = fs.start(sb, credits)?;
    let mut map = inode.map_write();
    // Someone may have filled the hole while we waited.
    let mut r = Reader { fs, sb };
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
    // Keep file pages physically page-aligned when blocks are smaller than
    // a page (swap needs it; see alloc_blocks_aligned).
    let bpp = u64::from(crate::sys::swapio::page_size()) >> fs.geo.block_size_log2;
    let (pblk, got) =
        alloc::alloc_blocks_aligned(&mut tx, fs, goal, max_run, bpp, lblk % bpp.max(1))?;
    let (done, nodes, replaced) = meta::set_range(
        &mut tx,
        fs,
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
        alloc::put_blocks(&mut tx, fs, pblk + done, got - done)?;
    }
    let blocks = inode.attrs().blocks;
    inode.set_blocks(blocks.saturating_add(done).saturating_add_signed(nodes));
    inode::write(&mut tx, fs, inode, &mut map)?;
    drop(map);
    tx.stop()?;
    Ok(())
}

/// Writeback: the mapping of `pos`, which must be allocated (blocks are
/// allocated when data is written into a hole, before writeback).
pub(crate) fn map_blocks(
    sb: &SuperBlock,
    fs: &FsInfo,
    inode: &Inode,
    pos: u64,
    out: &mut Map,
) -> FsResult {
    let lblk = pos >> fs.geo.block_size_log2;
    let m = lookup(sb, fs, inode, lblk)?;
    if let Mapping::Hole { .. } = m {
        pr_err!(
            "{}: inode {}: dirty data over a hole at offset {}\n",
            sb.id(),
            inode.ino(),
            pos
        );
        return Err(EIO.into());
    }
    describe(fs, m, lblk, u64::MAX, out);
    Ok(())
}

/// The data of `[pos, pos + len)` is on disk: unwritten extents there
/// become written.
pub(crate) fn convert_unwritten(
    sb: &SuperBlock,
    fs: &FsInfo,
    inode: &Inode,
    pos: u64,
    len: u64,
) -> FsResult {
    let bits = fs.geo.block_size_log2;
    let mut lblk = pos >> bits;
    let end = ((pos.saturating_add(len.max(1)) - 1) >> bits) + 1;
    while lblk < end {
        let m = lookup(sb, fs, inode, lblk)?;
        let (e, stop) = match m {
            Mapping::Mapped(e) => (e, e.lend().min(end)),
            // Truncated or punched meanwhile: nothing to convert there.
            Mapping::Hole { end: h } => {
                lblk = h.min(end);
                continue;
            }
        };
        if e.is_unwritten() {
            let credits = meta::tree_credits(fs) + inode::WRITE_CREDITS;
            let mut tx = fs.start(sb, credits)?;
            let mut map = inode.map_write();
            let pblk = e.pblk + (lblk - e.lblk);
            // The same blocks, now written: nothing is freed.
            let (done, nodes, _) = meta::set_range(
                &mut tx,
                fs,
                &mut map,
                inode.ino(),
                lblk,
                stop - lblk,
                Some((pblk, 0)),
            )?;
            let blocks = inode.attrs().blocks;
            inode.set_blocks(blocks.saturating_add_signed(nodes));
            inode::write(&mut tx, fs, inode, &mut map)?;
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
fn last_extent_before(
    sb: &SuperBlock,
    fs: &FsInfo,
    inode: &Inode,
    end: u64,
) -> FsResult<Option<Extent>> {
    let mapped_from = |x: u64| -> FsResult<Option<Extent>> {
        Ok(match lookup(sb, fs, inode, x)? {
            Mapping::Mapped(e) => Some(e),
            Mapping::Hole { end: h } if h < end => match lookup(sb, fs, inode, h)? {
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
    match lookup(sb, fs, inode, lo)? {
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
fn free_from(sb: &SuperBlock, fs: &FsInfo, inode: &Inode, from: u64) -> FsResult {
    let m = inode.mode() & format::mode::S_IFMT;
    let metadata = m == format::mode::S_IFDIR || m == format::mode::S_IFLNK;
    let max_run = if metadata {
        u64::from(fs.max_credits() / 4).max(1)
    } else {
        alloc::max_run_for(&fs.geo, fs.max_credits() / 2)
    };
    let mut end = format::max_lblk(&fs.geo);
    while let Some(e) = last_extent_before(sb, fs, inode, end)? {
        if e.lend() <= from {
            break;
        }
        let start = e.lblk.max(from).max(e.lend().saturating_sub(max_run));
        let len = e.lend() - start;
        let revokes = if metadata { len as u32 } else { 0 };
        let credits = alloc::run_credits(&fs.geo, len)
            + meta::tree_credits(fs)
            + inode::WRITE_CREDITS
            + revokes;
        let mut tx = fs.start(sb, credits)?;
        let mut map = inode.map_write();
        let (done, nodes, replaced) =
            meta::set_range(&mut tx, fs, &mut map, inode.ino(), start, len, None)?;
        let mut freed = 0;
        for r in replaced.iter() {
            alloc::put_blocks(&mut tx, fs, r.pblk, u64::from(r.len))?;
            if metadata {
                for b in r.pblk..r.pblk + u64::from(r.len) {
                    tx.revoke(b)?;
                }
            }
            freed += u64::from(r.len);
        }
        let blocks = inode.attrs().blocks;
        inode.set_blocks(blocks.saturating_sub(freed).saturating_add_signed(nodes));
        inode::write(&mut tx, fs, inode, &mut map)?;
        drop(map);
        tx.stop()?;
        end = if done >= len { start } else { e.lend() };
    }
    Ok(())
}

/// Every block of an inode being freed.
pub(crate) fn free_all_blocks(sb: &SuperBlock, fs: &FsInfo, inode: &Inode) -> FsResult {
    free_from(sb, fs, inode, 0)
}

/// `setattr` with a new size (the caller holds `i_rwsem` and the
/// invalidate lock, and has waited for direct IO).
pub(crate) fn setsize(sb: &SuperBlock, fs: &FsInfo, inode: &Inode, size: u64) -> FsResult {
    if inode.is_swapfile() {
        return Err(ETXTBSY.into());
    }
    if size > format::MAX_FILE_SIZE {
        return Err(EFBIG.into());
    }
    let old = inode.size();
    // The page cache first, with no transaction open.
    inode.truncate_pagecache(size)?;
    let mut tx = fs.start(sb, inode::WRITE_CREDITS)?;
    {
        let mut map = inode.map_write();
        inode.touch_mtime_ctime();
        inode::write(&mut tx, fs, inode, &mut map)?;
    }
    tx.stop()?;
    if size < old {
        let from = size.div_ceil(fs.geo.block_size() as u64);
        free_from(sb, fs, inode, from)?;
    }
    Ok(())
}

/// `fsync`: waits for the last transaction that changed the inode, or
/// flushes the device cache if it is committed already.
pub(crate) fn fsync(sb: &SuperBlock, fs: &FsInfo, inode: &Inode) -> FsResult {
    let tid = inode.map_read().data().sync_tid;
    if tid != 0 && !fs.journal.is_committed(tid) {
        fs.journal.complete(tid)?;
    } else {
        sb.flush_device()?;
    }
    Ok(())
}

/// Reads a symlink's target (`size` bytes of its block).
pub(crate) fn read_symlink(
    sb: &SuperBlock,
    fs: &FsInfo,
    inode: &Inode,
    size: u64,
) -> FsResult<KVec<u8>> {
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if len == 0 || len > fs.geo.symlink_max() {
        return Err(FormatError::BadField {
            what: "symlink length",
            value: size,
        }
        .into());
    }
    let blk = match lookup(sb, fs, inode, 0)? {
        Mapping::Mapped(e) if e.lblk == 0 && !e.is_unwritten() => e.pblk,
        _ => {
            return Err(FormatError::BadField {
                what: "symlink without its block",
                value: inode.ino(),
            }
            .into())
        }
    };
    let buf = Buffer::read(sb, blk)?;
    inode::check_owned_block(fs, &buf, "symlink block", magic::SYMLINK)?;
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
