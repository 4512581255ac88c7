// SPDX-License-Identifier: GPL-2.0

//! The orphan list: inodes whose last link is gone but whose blocks are not
//! freed yet (still open, or eviction interrupted by a crash), and inodes
//! being truncated (their blocks past the new size are freed in several
//! transactions).
//!
//! The list lives on disk only: the superblock's `orphan_head` and each
//! inode's `orphan_next`. Inode writes preserve `orphan_next`, so the list is
//! changed only here, under [`FsInfo::orphans`], inside a transaction.
//! Mount frees every unlinked inode still on it and finishes the truncates.

use kernel::prelude::*;

use super::inode::ORPHAN_NEXT_OFFSET;
use super::{FsInfo, FsResult, Mount};
use crate::common::format::{self, get_u64, FormatError, INODE_SIZE};
use crate::sys::buffer::Buffer;
use crate::sys::journal::Transaction;
use crate::sys::vfs::Inode;

/// Credits of [`add`] or [`remove`]: the superblock and at most one inode
/// slot, plus the inode itself.
pub(crate) const CREDITS: u32 = 3;

/// The list head.
fn head(fs: &FsInfo) -> FsResult<u64> {
    let crc = fs.geo.crc;
    Ok(fs
        .sb_buf
        .with(|b| format::Superblock::decode(b, crc).map(|s| s.orphan_head))?)
}

/// Sets `orphan_next` of inode `ino`'s disk slot to `next`.
fn set_next(tx: &mut Transaction<'_>, fs: &FsInfo, ino: u64, next: u64) -> FsResult {
    let geo = &fs.geo;
    let (blk, off) = geo.inode_location(ino).ok_or(FormatError::BadField {
        what: "orphan inode",
        value: ino,
    })?;
    let buf = Buffer::read(tx.sb(), blk)?;
    tx.modify(&buf, |b| -> FsResult {
        let slot = b.get_mut(off..off + INODE_SIZE).ok_or(EIO)?;
        let mut disk = format::Inode::decode(geo, ino, slot)?.ok_or(FormatError::BadField {
            what: "free inode on the orphan list",
            value: ino,
        })?;
        disk.orphan_next = next;
        disk.encode(geo, ino, slot);
        Ok(())
    })?
}

/// `orphan_next` of inode `ino` on disk.
fn next_of(m: Mount<'_>, ino: u64) -> FsResult<u64> {
    let (blk, off) = m.fs.geo.inode_location(ino).ok_or(FormatError::BadField {
        what: "orphan list link",
        value: ino,
    })?;
    let buf = Buffer::read(m.sb, blk)?;
    Ok(buf.with(|b| get_u64(b, off + ORPHAN_NEXT_OFFSET)))
}

/// Puts `inode` (whose last link is going away in `tx`) on the list.
pub(crate) fn add(tx: &mut Transaction<'_>, fs: &FsInfo, inode: &Inode) -> FsResult {
    let ino = inode.ino();
    let _guard = fs.orphans.lock();
    let old = head(fs)?;
    if old == ino {
        return Ok(());
    }
    set_next(tx, fs, ino, old)?;
    fs.update_sb(tx, |s| s.orphan_head = ino)
}

/// Takes `inode` off the list (a no-op if it is not on it).
pub(crate) fn remove(tx: &mut Transaction<'_>, fs: &FsInfo, inode: &Inode) -> FsResult {
    let ino = inode.ino();
    let m = Mount { sb: tx.sb(), fs };
    let _guard = fs.orphans.lock();
    let mut cur = head(fs)?;
    if cur == ino {
        let next = next_of(m, ino)?;
        set_next(tx, fs, ino, 0)?;
        return fs.update_sb(tx, |s| s.orphan_head = next);
    }
    // A corrupt list could loop: never walk more links than inodes.
    let mut steps = 0;
    while cur != 0 && steps <= fs.geo.inode_count {
        let next = next_of(m, cur)?;
        if next == ino {
            let after = next_of(m, ino)?;
            set_next(tx, fs, ino, 0)?;
            return set_next(tx, fs, cur, after);
        }
        cur = next;
        steps += 1;
    }
    Ok(())
}

/// At mount: frees every inode left on the list by a crash (reading each
/// one and dropping it evicts it, which frees it).
pub(crate) fn process(m: Mount<'_>) -> FsResult {
    let (mut done, mut truncated) = (0u64, 0u64);
    loop {
        let ino = head(m.fs)?;
        if ino == 0 {
            break;
        }
        if done + truncated > m.fs.geo.inode_count {
            return Err(FormatError::BadField {
                what: "orphan list (loops)",
                value: ino,
            }
            .into());
        }
        let inode = m.sb.iget(ino)?;
        if inode.nlink() > 0 {
            // A truncate the crash interrupted: free the blocks past the
            // size it committed, then take the inode off the list.
            let from = inode.size().div_ceil(m.fs.geo.block_size() as u64);
            super::file::free_from(m, &inode, from)?;
            let mut tx = m.start(CREDITS)?;
            remove(&mut tx, m.fs, &inode)?;
            tx.stop()?;
            truncated += 1;
            continue;
        }
        // Dropping the last reference evicts it; eviction frees it and
        // removes it from the list.
        drop(inode);
        if head(m.fs)? == ino {
            return Err(FormatError::BadField {
                what: "orphan inode could not be freed",
                value: ino,
            }
            .into());
        }
        done += 1;
    }
    if done > 0 {
        pr_info!("{}: freed {} orphan inode(s)\n", m.sb.id(), done);
    }
    if truncated > 0 {
        pr_info!(
            "{}: finished {} interrupted truncate(s)\n",
            m.sb.id(),
            truncated
        );
    }
    Ok(())
}
