// SPDX-License-Identifier: GPL-2.0

//! Inodes: reading them into the VFS, writing them through the journal,
//! and freeing them.

use super::{alloc, file, orphan, FsInfo, FsResult, Mount};
use crate::common::format::{self, FormatError, Timestamp, INODE_SIZE};
use crate::sys::buffer::Buffer;
use crate::sys::journal::Transaction;
use crate::sys::vfs::{Inode, MapWrite};
use crate::sys::{Attrs, InodeData};

/// Offset of `orphan_next` in an on-disk inode.
pub(crate) const ORPHAN_NEXT_OFFSET: usize = 104;

/// Credits to write one inode.
pub(crate) const WRITE_CREDITS: u32 = 1;

/// Reads inode `inode.ino()` from disk into the new VFS inode.
pub(crate) fn read(m: Mount<'_>, inode: &Inode) -> FsResult {
    let ino = inode.ino();
    let geo = &m.fs.geo;
    let (blk, off) = geo.inode_location(ino).ok_or(FormatError::BadField {
        what: "inode number",
        value: ino,
    })?;
    let buf = Buffer::read(m.sb, blk)?;
    let disk =
        buf.with(|b| format::Inode::decode(geo, ino, b.get(off..off + INODE_SIZE).unwrap_or(&[])))?;
    let Some(disk) = disk else {
        return Err(FormatError::BadField {
            what: "reference to a free inode",
            value: ino,
        }
        .into());
    };
    if !alloc::inode_in_use(m, ino)? {
        return Err(FormatError::BadField {
            what: "inode not marked in use in the bitmap",
            value: ino,
        }
        .into());
    }
    let a = Attrs {
        mode: u32::from(disk.mode),
        nlink: disk.nlink,
        uid: disk.uid,
        gid: disk.gid,
        rdev: disk.rdev,
        generation: disk.generation,
        size: disk.size,
        blocks: disk.blocks,
        atime_sec: disk.atime.sec,
        atime_nsec: disk.atime.nsec,
        mtime_sec: disk.mtime.sec,
        mtime_nsec: disk.mtime.nsec,
        ctime_sec: disk.ctime.sec,
        ctime_nsec: disk.ctime.nsec,
    };
    inode.set_attrs(&a);
    inode.set_size(disk.size);
    {
        let mut map = inode.map_write();
        let d = map.data_mut();
        d.root = disk.root;
        d.parent = disk.parent;
        d.disk_flags = disk.flags;
        d.btime_sec = disk.btime.sec;
        d.btime_nsec = disk.btime.nsec;
        // Its last change may still be in the running or committing
        // transaction (it was evicted meanwhile): fsync waits for that one
        // (as ext4_iget).
        d.sync_tid = m.fs.journal.current_tid();
        d.disk_size = disk.size;
    }
    if disk.is_symlink() {
        let target = file::read_symlink(m, inode, disk.size)?;
        inode.set_link(&target)?;
    } else if disk.is_dir() && disk.size % geo.block_size() as u64 != 0 {
        return Err(FormatError::BadField {
            what: "directory size",
            value: disk.size,
        }
        .into());
    }
    Ok(())
}

/// Encodes the VFS inode and its Rust-owned fields into the disk format.
fn to_disk(inode: &Inode, d: &InodeData) -> format::Inode {
    let a = inode.attrs();
    // A regular file's size on disk covers only data that is on disk (a
    // crash must not leave a file longer than its written data, reading
    // zeroes); other inodes change their size in the transaction.
    let size = if a.mode & u32::from(format::mode::S_IFMT) == u32::from(format::mode::S_IFREG) {
        a.size.min(d.disk_size)
    } else {
        a.size
    };
    format::Inode {
        mode: a.mode as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        size,
        blocks: a.blocks,
        atime: Timestamp {
            sec: a.atime_sec,
            nsec: a.atime_nsec,
        },
        mtime: Timestamp {
            sec: a.mtime_sec,
            nsec: a.mtime_nsec,
        },
        ctime: Timestamp {
            sec: a.ctime_sec,
            nsec: a.ctime_nsec,
        },
        btime: Timestamp {
            sec: d.btime_sec,
            nsec: d.btime_nsec,
        },
        flags: d.disk_flags,
        generation: a.generation,
        parent: d.parent,
        rdev: a.rdev,
        // The orphan link lives on disk only (see `orphan`); `write`
        // preserves it.
        orphan_next: 0,
        root: d.root,
    }
}

/// Writes the inode to its slot through the journal.
pub(crate) fn write(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    inode: &Inode,
    map: &mut MapWrite<'_>,
) -> FsResult {
    let ino = inode.ino();
    let geo = &fs.geo;
    let (blk, off) = geo.inode_location(ino).ok_or(FormatError::BadField {
        what: "inode number",
        value: ino,
    })?;
    let mut disk = to_disk(inode, map.data());
    let buf = Buffer::read(tx.sb(), blk)?;
    tx.modify(&buf, |b| {
        if let Some(slot) = b.get_mut(off..off + INODE_SIZE) {
            disk.orphan_next = format::get_u64(slot, ORPHAN_NEXT_OFFSET);
            disk.encode(geo, ino, slot);
        }
    })?;
    map.data_mut().sync_tid = tx.tid();
    Ok(())
}

/// Zeroes inode `ino`'s slot (it is being freed).
pub(crate) fn clear_slot(tx: &mut Transaction<'_>, fs: &FsInfo, ino: u64) -> FsResult {
    let (blk, off) = fs.geo.inode_location(ino).ok_or(FormatError::BadField {
        what: "inode number",
        value: ino,
    })?;
    let buf = Buffer::read(tx.sb(), blk)?;
    tx.modify(&buf, |b| {
        if let Some(slot) = b.get_mut(off..off + INODE_SIZE) {
            slot.fill(0);
        }
    })?;
    Ok(())
}

/// `dirty_inode`: the VFS changed the inode (times, size, attributes);
/// journal it.
pub(crate) fn dirty(m: Mount<'_>, inode: &Inode) -> FsResult {
    if m.sb.read_only() {
        return Ok(());
    }
    let mut tx = m.start(WRITE_CREDITS)?;
    {
        let mut map = inode.map_write();
        write(&mut tx, m.fs, inode, &mut map)?;
    }
    tx.stop()?;
    Ok(())
}

/// `evict_inode`: an inode without links is freed: its blocks, then its
/// slot, its bitmap bit and its orphan-list entry.
pub(crate) fn evict(m: Mount<'_>, inode: &Inode) -> FsResult {
    // Its page cache and IO are gone: no staged copy-on-write block of it
    // will ever be written.
    alloc::cancel_staged(m.fs, inode.ino(), 0, u64::MAX);
    if inode.nlink() > 0 || m.sb.read_only() {
        return Ok(());
    }
    // Freeing an unlinked inode changes the filesystem: not while it is
    // frozen (the last close waits for the thaw, as on ext4).
    let _frozen_out = m.sb.start_intwrite();
    file::free_all_blocks(m, inode)?;
    let ino = inode.ino();
    let mut tx = m.start(orphan::CREDITS + 3)?;
    orphan::remove(&mut tx, m.fs, inode)?;
    clear_slot(&mut tx, m.fs, ino)?;
    alloc::free_inode(&mut tx, m.fs, ino)?;
    tx.stop()?;
    Ok(())
}

/// Checks that a block read for inode `owner` is a valid metadata block of
/// kind `magic`.
pub(crate) fn check_owned_block(
    fs: &FsInfo,
    buf: &Buffer,
    what: &'static str,
    kind: u32,
) -> FsResult {
    buf.checked(|b, crc| fs.geo.check_block_crc(b, what, kind, buf.blk(), crc))?;
    Ok(())
}
