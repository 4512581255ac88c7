// SPDX-License-Identifier: GPL-2.0

//! Block and inode allocation: the bitmaps and the reference counts, always
//! changed inside a transaction and under [`FsInfo::alloc`].

use kernel::prelude::*;

use super::{FsInfo, FsResult};
use crate::common::format::{
    bitmap_bits_per_block, bitmap_find_clear, bitmap_get, bitmap_set, get_u16, magic, put_u16,
    refcounts_per_block, FormatError, Geometry,
};
use crate::sys::buffer::Buffer;
use crate::sys::journal::Transaction;
use crate::sys::vfs::SuperBlock;

/// Reads a bitmap or reference-count block and verifies its header.
fn read_checked(
    sb: &SuperBlock,
    geo: &Geometry,
    blk: u64,
    what: &'static str,
    magic: u32,
) -> FsResult<Buffer> {
    let buf = Buffer::read(sb, blk)?;
    buf.with(|b| geo.check_block(b, what, magic, blk))?;
    Ok(buf)
}

/// Counts the free inodes and blocks from the bitmaps.
pub(crate) fn recount(sb: &SuperBlock, fs: &FsInfo) -> FsResult {
    let geo = &fs.geo;
    let per = bitmap_bits_per_block(geo.block_size());
    let count_free = |start: u64, entries: u64, what, m| -> FsResult<u64> {
        let mut free = 0;
        let mut i = 0;
        while i < entries {
            let blk = start + i / per;
            let n = per.min(entries - i);
            let buf = read_checked(sb, geo, blk, what, m)?;
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
    let mut a = fs.alloc.lock();
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

/// Allocates up to `max` contiguous data blocks, preferably at `goal`.
/// Returns the first block and the length (at least 1).
pub(crate) fn alloc_blocks(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    goal: u64,
    max: u64,
) -> FsResult<(u64, u64)> {
    alloc_blocks_aligned(tx, fs, goal, max, 1, 0)
}

/// Like [`alloc_blocks`], but the first block `b` satisfies
/// `b % modulus == residue` if any free block does (otherwise any block
/// will do). File data uses it so that with blocks smaller than a page,
/// each file page lies on one physically page-aligned run: what swap needs
/// (`Documentation/swap.md`), and what makes `dd` + `mkswap` + `swapon`
/// work at every block size.
pub(crate) fn alloc_blocks_aligned(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    goal: u64,
    max: u64,
    modulus: u64,
    residue: u64,
) -> FsResult<(u64, u64)> {
    let geo = &fs.geo;
    let mut a = fs.alloc.lock();
    if a.free_blocks == 0 {
        return Err(ENOSPC.into());
    }
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
    let modulus = modulus.max(1);
    // First an aligned start, then, if the filesystem has none, any start.
    for (m, r) in [(modulus, residue % modulus), (1, 0)] {
        for step in 0..=nblocks {
            let bi = (first + step) % nblocks;
            let from = if step == 0 { start_idx % per } else { 0 };
            let limit = per.min(total - bi * per);
            let base = geo.data_start + bi * per;
            let blk = geo.bbitmap_start + bi;
            let buf = read_checked(tx.sb(), geo, blk, "block bitmap", magic::BLOCK_BITMAP)?;
            let found = buf.with(|b| {
                let mut at = from;
                loop {
                    let bit = bitmap_find_clear(b, at, limit)?;
                    let skew = (r + m - (base + bit) % m) % m;
                    if skew != 0 {
                        at = bit + skew;
                        continue;
                    }
                    let mut len = 1;
                    while len < max && bit + len < limit && !bitmap_get(b, bit + len) {
                        len += 1;
                    }
                    return Some((bit, len));
                }
            });
            let Some((bit, len)) = found else {
                continue;
            };
            tx.modify(&buf, |b| {
                for i in 0..len {
                    bitmap_set(b, bit + i, true);
                }
                geo.seal_block(b, magic::BLOCK_BITMAP, blk);
            })?;
            let start = base + bit;
            set_refs_new(tx, geo, start, len)?;
            a.free_blocks = a.free_blocks.saturating_sub(len);
            a.block_hint = start + len;
            return Ok((start, len));
        }
    }
    // The counter said there was space, the bitmaps disagree.
    Err(FormatError::BadField {
        what: "free block count (bitmaps are full)",
        value: a.free_blocks,
    }
    .into())
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
            tx.modify(&bbuf, |b| -> FsResult {
                for j in 0..run {
                    if !bitmap_get(b, loc.bit + j) {
                        return Err(FormatError::BadField {
                            what: "block bitmap bit of a referenced block",
                            value: b0 + j,
                        }
                        .into());
                    }
                    bitmap_set(b, loc.bit + j, false);
                }
                geo.seal_block(b, magic::BLOCK_BITMAP, loc.block);
                Ok(())
            })??;
            freed_total += run;
            i += run;
        }
        blk += n;
    }
    a.free_blocks += freed_total;
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
pub(crate) fn inode_in_use(sb: &SuperBlock, fs: &FsInfo, ino: u64) -> FsResult<bool> {
    let geo = &fs.geo;
    let loc = geo.inode_bit(ino).ok_or(FormatError::BadField {
        what: "inode number",
        value: ino,
    })?;
    let buf = read_checked(sb, geo, loc.block, "inode bitmap", magic::INODE_BITMAP)?;
    Ok(buf.with(|b| bitmap_get(b, loc.bit)))
}

/// Calls `f(start, len, shared)` for the maximal runs of `[pblk, pblk +
/// len)` whose blocks are all shared (reference count above 1) or all
/// private, in order. Each reference-count block is read once and locked
/// once per run boundary in it; `f` runs without any buffer lock.
pub(crate) fn sharing_runs(
    sb: &SuperBlock,
    fs: &FsInfo,
    pblk: u64,
    len: u64,
    mut f: impl FnMut(u64, u64, bool) -> FsResult,
) -> FsResult {
    let geo = &fs.geo;
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
        let buf = read_checked(sb, geo, rblk, "reference counts", magic::REFCOUNT)?;
        let shared_at = |b: &[u8], j: u64| get_u16(b, off + 2 * j as usize) > 1;
        let mut j = 0u64;
        while j < n {
            // How far the sharedness of entry j extends in this block.
            let (shared, stop) = buf.with(|b| {
                let s = shared_at(b, j);
                let mut k = j + 1;
                while k < n && shared_at(b, k) == s {
                    k += 1;
                }
                (s, k)
            });
            match cur {
                Some((_, s)) if s == shared => {}
                Some((start, s)) => {
                    f(start, blk + j - start, s)?;
                    cur = Some((blk + j, shared));
                }
                None => cur = Some((blk + j, shared)),
            }
            j = stop;
        }
        blk += n;
    }
    if let Some((start, s)) = cur {
        f(start, end - start, s)?;
    }
    Ok(())
}
