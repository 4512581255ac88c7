// SPDX-License-Identifier: GPL-2.0

//! Directories: blocks of records (`Documentation/format.md`), mapped by the
//! directory's extent tree, read and changed as journaled metadata.
//!
//! Callers hold the directory's `i_rwsem` (shared to read, exclusive to
//! change), which serialises every access to its blocks.

use kernel::prelude::*;

use super::meta::{self, Reader};
use super::{alloc, inode, FsInfo, FsResult, Mount};
use crate::common::extent::{self, Mapping};
use crate::common::format::{self, magic, FormatError};
use crate::sys::buffer::Buffer;
use crate::sys::journal::Transaction;
use crate::sys::vfs::{DirContext, Inode};

/// Where a directory entry is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// The directory block holding it.
    pub(crate) blk: u64,
    /// Offset of the record in the block.
    pub(crate) offset: usize,
    /// The inode it names.
    pub(crate) ino: u64,
}

/// Number of blocks of a directory.
fn nblocks(fs: &FsInfo, dir: &Inode) -> u64 {
    dir.size() >> fs.geo.block_size_log2
}

/// The physical block of directory block `lblk`.
fn map_block(m: Mount<'_>, dir: &Inode, lblk: u64) -> FsResult<u64> {
    let map = dir.map_read();
    let mut r = Reader { m };
    match extent::lookup(&mut r, &map.data().root, dir.ino(), lblk)? {
        Mapping::Mapped(e) if !e.is_unwritten() => Ok(e.pblk + (lblk - e.lblk)),
        _ => Err(FormatError::BadField {
            what: "hole in a directory",
            value: lblk,
        }
        .into()),
    }
}

/// Reads directory block `lblk` and verifies it.
fn read_block(m: Mount<'_>, dir: &Inode, lblk: u64) -> FsResult<Buffer> {
    let blk = map_block(m, dir, lblk)?;
    let buf = Buffer::read(m.sb, blk)?;
    buf.checked(|b, crc| -> FsResult {
        m.fs.geo
            .check_block_crc(b, "directory block", magic::DIR, blk, crc)?;
        if format::dir_block_owner(b) != dir.ino() {
            return Err(FormatError::BadField {
                what: "directory block owner",
                value: format::dir_block_owner(b),
            }
            .into());
        }
        Ok(())
    })?;
    Ok(buf)
}

/// Looks `name` up in `dir`.
pub(crate) fn find(m: Mount<'_>, dir: &Inode, name: &[u8]) -> FsResult<Option<Slot>> {
    for lblk in 0..nblocks(m.fs, dir) {
        let buf = read_block(m, dir, lblk)?;
        let found = buf.with(|b| -> FsResult<Option<Slot>> {
            for rec in format::dir_records(&m.fs.geo, b) {
                let rec = rec?;
                if rec.ino != 0 && rec.name == name {
                    return Ok(Some(Slot {
                        blk: buf.blk(),
                        offset: rec.offset,
                        ino: rec.ino,
                    }));
                }
            }
            Ok(None)
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Whether `dir` has no entries.
pub(crate) fn is_empty(m: Mount<'_>, dir: &Inode) -> FsResult<bool> {
    for lblk in 0..nblocks(m.fs, dir) {
        let buf = read_block(m, dir, lblk)?;
        if !buf.with(|b| format::dir_block_is_empty(&m.fs.geo, b))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Credits of [`add`]: a record in an existing block, or a new block (its
/// allocation, its initialisation, the tree insertion) and the inode.
pub(crate) fn add_credits(fs: &FsInfo) -> u32 {
    1 + alloc::run_credits(&fs.geo, 1) + 1 + meta::tree_credits(fs) + inode::WRITE_CREDITS
}

/// Adds `name` → `ino` to `dir`, growing it by a block if needed.
pub(crate) fn add(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    dir: &Inode,
    name: &[u8],
    ino: u64,
    file_type: u8,
) -> FsResult {
    let m = Mount { sb: tx.sb(), fs };
    let geo = &fs.geo;
    let n = nblocks(fs, dir);
    for lblk in 0..n {
        let buf = read_block(m, dir, lblk)?;
        let fits = buf.with(|b| -> FsResult<bool> {
            let free = format::dir_records(geo, b).filter_map(|r| r.ok()).any(|r| {
                let used = if r.ino == 0 {
                    0
                } else {
                    format::dir_rec_len(r.name.len())
                };
                r.rec_len - used >= format::dir_rec_len(name.len())
            });
            Ok(free)
        })?;
        if fits {
            let blk = buf.blk();
            return tx.modify(&buf, |b| -> FsResult {
                if !format::dir_add(geo, b, name, ino, file_type)? {
                    return Err(ENOSPC.into());
                }
                geo.seal_block(b, magic::DIR, blk);
                Ok(())
            })?;
        }
    }
    // A new block at the end.
    let goal = if n > 0 {
        map_block(m, dir, n - 1)? + 1
    } else {
        0
    };
    let (blk, _) = alloc::alloc_blocks(tx, fs, goal, 1)?;
    let buf = tx.create(blk)?;
    tx.modify(&buf, |b| -> FsResult {
        format::dir_block_init(b, dir.ino());
        format::dir_add(geo, b, name, ino, file_type)?;
        geo.seal_block(b, magic::DIR, blk);
        Ok(())
    })??;
    let mut map = dir.map_write();
    let (done, nodes, _) = meta::set_range(tx, fs, &mut map, dir.ino(), n, 1, Some((blk, 0)))?;
    if done != 1 {
        return Err(EIO.into());
    }
    let a = dir.attrs();
    dir.set_blocks(a.blocks.saturating_add_signed(nodes + 1));
    dir.set_size((n + 1) << geo.block_size_log2);
    inode::write(tx, fs, dir, &mut map)
}

/// Removes the entry at `slot`.
pub(crate) fn remove(tx: &mut Transaction<'_>, fs: &FsInfo, slot: &Slot) -> FsResult {
    let geo = &fs.geo;
    let buf = Buffer::read(tx.sb(), slot.blk)?;
    tx.modify(&buf, |b| -> FsResult {
        format::dir_remove(geo, b, slot.offset)?;
        geo.seal_block(b, magic::DIR, slot.blk);
        Ok(())
    })?
}

/// Points the entry at `slot` to another inode (rename over a name).
pub(crate) fn retarget(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    slot: &Slot,
    ino: u64,
    file_type: u8,
) -> FsResult {
    let geo = &fs.geo;
    let buf = Buffer::read(tx.sb(), slot.blk)?;
    tx.modify(&buf, |b| {
        format::dir_set_ino(b, slot.offset, ino, file_type);
        geo.seal_block(b, magic::DIR, slot.blk);
    })?;
    Ok(())
}

/// `readdir` from `ctx.pos()`. Positions 0 and 1 are `.` and `..` (emitted
/// by the caller); position `2 + byte offset in the directory` is the
/// record there, which stays put while other entries come and go.
///
/// Each name is copied out before it is emitted: `dir_emit` may fault on
/// the user buffer, and no buffer lock may be held across that.
pub(crate) fn iterate(m: Mount<'_>, dir: &Inode, ctx: &mut DirContext) -> FsResult {
    let bs = m.fs.geo.block_size() as i64;
    let end = nblocks(m.fs, dir) as i64 * bs;
    let mut name = [0u8; format::NAME_MAX];
    while ctx.pos().max(2) - 2 < end {
        let pos = ctx.pos().max(2) - 2;
        let lblk = (pos / bs) as u64;
        let start = (pos % bs) as usize;
        let buf = read_block(m, dir, lblk)?;
        let next = buf.with(|b| -> FsResult<Option<(usize, u64, u8, usize)>> {
            for rec in format::dir_records(&m.fs.geo, b) {
                let rec = rec?;
                if rec.offset >= start && rec.ino != 0 {
                    let len = rec.name.len();
                    name.get_mut(..len).ok_or(EIO)?.copy_from_slice(rec.name);
                    return Ok(Some((rec.offset, rec.ino, rec.file_type, len)));
                }
            }
            Ok(None)
        })?;
        drop(buf);
        match next {
            Some((offset, ino, file_type, len)) => {
                ctx.set_pos(2 + lblk as i64 * bs + offset as i64);
                if !ctx.emit(name.get(..len).unwrap_or(&[]), ino, file_type) {
                    return Ok(());
                }
                // Past this record's header: the next record starts later.
                ctx.set_pos(2 + lblk as i64 * bs + offset as i64 + 1);
            }
            None => ctx.set_pos(2 + (lblk as i64 + 1) * bs),
        }
    }
    Ok(())
}
