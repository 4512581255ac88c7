// SPDX-License-Identifier: GPL-2.0

//! Shared extents: cloning and deduplicating ranges (`remap_file_range`),
//! and unsharing them (`FALLOC_FL_UNSHARE_RANGE`, `swap_unshare`).
//!
//! Sharing is per block: the reference count of a data block is the number
//! of extent-tree references to it (`alloc`). Cloning adds a reference to
//! each source block and maps it in the destination, one bounded
//! transaction per step; every unmapping (punch, truncate, delete,
//! copy-on-write) drops one reference synchronously, in the transaction
//! that unmaps, so the last owner of a block is private the moment the
//! others are gone. Writes into shared blocks are copied on write
//! (`file::iomap_begin`, `common::cow`).

use kernel::prelude::*;

use super::swapguard::{self, Use};
use super::{alloc, file, inode, meta, FsResult, Mount};
use crate::common::extent::Mapping;
use crate::common::format::extent_flags;
use crate::sys::swapio;
use crate::sys::vfs::Inode;

/// Shares blocks `[pblk, pblk + len)` (with extent flags `flags`) at
/// logical block `lblk` of `dst`, in one transaction; returns how many
/// blocks it mapped (a prefix, at least 1).
fn share(m: Mount<'_>, dst: &Inode, lblk: u64, pblk: u64, len: u64, flags: u32) -> FsResult<u64> {
    // Cloning allocates no data, only tree nodes: it stops before it eats
    // the reserve that allocating writers keep for their trees.
    alloc::check_tree_room(m.fs)?;
    let credits = 2 * alloc::run_credits(&m.fs.geo, len)
        + meta::REPLACED_CREDITS
        + meta::tree_credits(m.fs)
        + inode::WRITE_CREDITS;
    let mut tx = m.start(credits)?;
    let mut map = dst.map_write();
    // The references first (EMLINK changes nothing), then the mapping.
    alloc::get_blocks(&mut tx, m.fs, pblk, len)?;
    let (done, nodes, replaced) = meta::set_range(
        &mut tx,
        m.fs,
        &mut map,
        dst.ino(),
        lblk,
        len,
        Some((pblk, flags)),
    )?;
    if done < len {
        // The tree took a prefix: drop the references not used (the
        // source still holds them, so none reaches 0).
        alloc::put_blocks(&mut tx, m.fs, pblk + done, len - done)?;
    }
    file::finish_step(tx, m.fs, dst, map, done, nodes, &replaced)?;
    Ok(done.max(1))
}

/// `remap_file_range` after `generic_remap_file_range_prep` (which checked
/// the ranges, flushed both and, for dedupe, compared them): makes bytes
/// `[pos_out, pos_out + len)` of `dst` share the blocks of `[pos_in, pos_in
/// + len)` of `src` (holes stay holes). `len` is block-aligned, or reaches
/// the source's EOF. `*remapped` says how far it got, also on error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn remap(
    m: Mount<'_>,
    src: &Inode,
    pos_in: u64,
    dst: &Inode,
    pos_out: u64,
    len: u64,
    dedupe: bool,
    remapped: &mut u64,
) -> FsResult {
    swapguard::refuse(src, Use::Share)?;
    swapguard::refuse(dst, Use::Share)?;
    let bits = m.fs.geo.block_size_log2;
    let bs = m.fs.geo.block_size() as u64;
    if len == 0 {
        return Ok(());
    }
    if pos_in % bs != 0 || pos_out % bs != 0 {
        return Err(EINVAL.into());
    }
    let pg = u64::from(swapio::page_size());
    let dsize = dst.size();
    if !dedupe && pos_out > dsize {
        // As xfs: what lies between the old EOF and the clone reads as
        // zeroes.
        dst.zero_range(dsize, pos_out - dsize)?;
    }
    // The destination's blocks change under its page cache: write back
    // what is dirty around the range, then drop it.
    let from_byte = pos_out.min(dsize);
    dst.flush_unmap(from_byte / pg * pg, (pos_out + len).div_ceil(pg) * pg - 1)?;
    let (s0, d0, n) = (pos_in >> bits, pos_out >> bits, len.div_ceil(bs));
    alloc::cancel_staged(m.fs, dst.ino(), d0, d0 + n);
    let max_run = alloc::max_run_for(&m.fs.geo, m.fs.max_credits() / 4);
    let mut done = 0u64;
    while done < n {
        let (s, d, left) = (s0 + done, d0 + done, n - done);
        let step = match file::lookup(m, src, s)? {
            Mapping::Hole { end } => {
                let k = end.saturating_sub(s).clamp(1, left);
                file::punch_range(m, dst, d, d + k)?;
                k
            }
            Mapping::Mapped(e) => {
                let k = (e.lend() - s).min(left).min(max_run);
                share(m, dst, d, e.pblk + (s - e.lblk), k, e.flags)?
            }
        };
        done += step;
        *remapped = (done << bits).min(len);
    }
    if !dedupe && pos_out + len > dst.size() {
        file::setsize_after_remap(m, dst, pos_out + len)?;
    }
    Ok(())
}

/// Unshares bytes `[off, end)` of `inode`: its shared written blocks
/// (inside `i_size`) are copied to private ones through the page cache
/// (copy-on-write, written back before this returns); its shared unwritten
/// blocks, which hold no data, are replaced by new unwritten blocks.
pub(crate) fn unshare(m: Mount<'_>, inode: &Inode, off: u64, end: u64) -> FsResult {
    swapguard::refuse(inode, Use::Share)?;
    let bits = m.fs.geo.block_size_log2;
    let bs = m.fs.geo.block_size() as u64;
    let size = inode.size();
    if off < size && end > off {
        let len = end.min(size) - off;
        inode.unshare_range(off, len)?;
        // The copies reach the disk (and their staged blocks the tree)
        // before the extents below are looked at.
        inode.flush_range(off, off + len - 1)?;
    }
    let (from, to) = (off >> bits, end.div_ceil(bs));
    let max_run = alloc::max_run_for(&m.fs.geo, m.fs.max_credits() / 4);
    let mut lblk = from;
    while lblk < to {
        let e = match file::lookup(m, inode, lblk)? {
            Mapping::Hole { end } => {
                lblk = end.max(lblk + 1);
                continue;
            }
            Mapping::Mapped(e) => e,
        };
        let stop = e.lend().min(to);
        if !e.is_unwritten() {
            lblk = stop;
            continue;
        }
        let pblk = e.pblk + (lblk - e.lblk);
        let (run, shared) = alloc::sharing_prefix(m, pblk, stop - lblk)?;
        if !shared {
            lblk += run.max(1);
            continue;
        }
        let want = run.min(max_run).max(1);
        let credits = 2 * alloc::run_credits(&m.fs.geo, want)
            + meta::REPLACED_CREDITS
            + meta::tree_credits(m.fs)
            + inode::WRITE_CREDITS;
        let mut tx = m.start(credits)?;
        let mut map = inode.map_write();
        let (p, got) = alloc::alloc_data(&mut tx, m.fs, lblk, 0, want)?;
        let (done, nodes, replaced) = meta::set_range(
            &mut tx,
            m.fs,
            &mut map,
            inode.ino(),
            lblk,
            got,
            Some((p, extent_flags::UNWRITTEN)),
        )?;
        if done < got {
            alloc::put_blocks(&mut tx, m.fs, p + done, got - done)?;
        }
        file::finish_step(tx, m.fs, inode, map, done, nodes, &replaced)?;
        lblk += done.max(1);
    }
    Ok(())
}

/// Whether any block mapped in logical blocks `[from, to)` of `inode` is
/// shared.
pub(crate) fn has_shared(m: Mount<'_>, inode: &Inode, from: u64, to: u64) -> FsResult<bool> {
    let mut lblk = from;
    while lblk < to {
        match file::lookup(m, inode, lblk)? {
            Mapping::Hole { end } => lblk = end.max(lblk + 1),
            Mapping::Mapped(e) => {
                let stop = e.lend().min(to);
                let (run, shared) =
                    alloc::sharing_prefix(m, e.pblk + (lblk - e.lblk), stop - lblk)?;
                if shared {
                    return Ok(true);
                }
                lblk += run.max(1);
            }
        }
    }
    Ok(false)
}
