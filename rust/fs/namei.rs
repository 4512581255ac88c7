// SPDX-License-Identifier: GPL-2.0

//! The namespace: lookup, create, link, unlink, rmdir, rename. Each change
//! is one transaction; the VFS holds the directories' `i_rwsem`.

use kernel::prelude::*;

use super::meta;
use super::swapguard::{self, Use};
use super::{alloc, dir, inode, orphan, FsInfo, FsResult, Mount};
use crate::common::format::{self, magic, mode, FormatError};
use crate::sys::errno;
use crate::sys::journal::Transaction;
use crate::sys::vfs::{self, Dentry, Idmap, Inode};

/// `lookup`: the inode number `name` names in `dir`, or 0.
pub(crate) fn lookup(m: Mount<'_>, dir: &Inode, name: &[u8]) -> FsResult<u64> {
    if name.len() > format::NAME_MAX {
        return Err(errno::name_too_long().into());
    }
    if !format::is_valid_name(name) {
        return Ok(0);
    }
    Ok(dir::find(m, dir, name)?.map_or(0, |s| s.ino))
}

/// Credits of a create: the inode (bitmap, slot), the directory entry, the
/// parent's inode, and a symlink's block.
fn create_credits(fs: &FsInfo) -> u32 {
    2 + dir::add_credits(fs)
        + inode::WRITE_CREDITS
        + alloc::run_credits(&fs.geo, 1)
        + 1
        + meta::tree_credits(fs)
}

/// What to create.
pub(crate) struct NewNode<'a> {
    /// Type and permissions.
    pub(crate) mode: u16,
    /// Device number of a device node.
    pub(crate) rdev: u32,
    /// Target of a symlink.
    pub(crate) target: Option<&'a [u8]>,
}

/// Creates a file, directory, symlink or device node named by `dentry`.
pub(crate) fn create(
    m: Mount<'_>,
    idmap: &Idmap,
    dir_inode: &Inode,
    dentry: &Dentry,
    node: NewNode<'_>,
) -> FsResult {
    let NewNode {
        mode: mode_bits,
        rdev,
        target,
    } = node;
    let name = dentry.name();
    if !format::is_valid_name(name) {
        return Err(if name.len() > format::NAME_MAX {
            errno::name_too_long().into()
        } else {
            EINVAL.into()
        });
    }
    if let Some(t) = target {
        if t.is_empty() || t.len() > m.fs.geo.symlink_max() {
            return Err(errno::name_too_long().into());
        }
    }
    let is_dir = mode_bits & mode::S_IFMT == mode::S_IFDIR;
    if is_dir && dir_inode.nlink() >= u32::from(u16::MAX) {
        return Err(EMLINK.into());
    }
    let mut tx = m.start(create_credits(m.fs))?;
    let ino = alloc::alloc_inode(&mut tx, m.fs)?;
    let new = idmap.new_inode(dir_inode, mode_bits, ino)?;
    let inode = new.inode();
    {
        let mut a = inode.attrs();
        a.nlink = if is_dir { 2 } else { 1 };
        a.rdev = rdev;
        a.blocks = 0;
        inode.set_attrs(&a);
        let now = crate::sys::now();
        let mut map = inode.map_write();
        let d = map.data_mut();
        d.root = [0; format::INODE_ROOT_SIZE];
        format::RootHeader::empty().encode(&mut d.root);
        d.parent = if is_dir { dir_inode.ino() } else { 0 };
        d.disk_flags = 0;
        d.btime_sec = now.sec;
        d.btime_nsec = now.nsec;
        if let Some(t) = target {
            write_symlink(&mut tx, m.fs, inode, &mut map, t)?;
        }
        inode::write(&mut tx, m.fs, inode, &mut map)?;
    }
    dir::add(&mut tx, m.fs, dir_inode, name, ino, mode::dtype(mode_bits))?;
    {
        if is_dir {
            dir_inode.set_nlink(dir_inode.nlink() + 1);
        }
        dir_inode.touch_mtime_ctime();
        let mut map = dir_inode.map_write();
        inode::write(&mut tx, m.fs, dir_inode, &mut map)?;
    }
    if let Some(t) = target {
        inode.set_link(t)?;
    }
    tx.stop()?;
    new.instantiate(dentry);
    Ok(())
}

/// Stores a new symlink's target in a block of its own.
fn write_symlink(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    inode: &Inode,
    map: &mut crate::sys::vfs::MapWrite<'_>,
    target: &[u8],
) -> FsResult {
    let geo = &fs.geo;
    let (blk, _) = alloc::alloc_blocks(tx, fs, 0, 1)?;
    let buf = tx.create(blk)?;
    tx.modify(&buf, |b| {
        if let Some(s) =
            b.get_mut(format::BLOCK_HEADER_SIZE..format::BLOCK_HEADER_SIZE + target.len())
        {
            s.copy_from_slice(target);
        }
        geo.seal_block(b, magic::SYMLINK, blk);
    })?;
    let (done, nodes, _) = meta::set_range(tx, fs, map, inode.ino(), 0, 1, Some((blk, 0)))?;
    if done != 1 {
        return Err(EIO.into());
    }
    let mut a = inode.attrs();
    a.blocks = 1u64.saturating_add_signed(nodes);
    inode.set_attrs(&a);
    inode.set_size(target.len() as u64);
    Ok(())
}

/// `link`: a new name for an existing inode.
pub(crate) fn link(m: Mount<'_>, old: &Inode, dir_inode: &Inode, dentry: &Dentry) -> FsResult {
    let name = dentry.name();
    if !format::is_valid_name(name) {
        return Err(errno::name_too_long().into());
    }
    if old.nlink() >= u32::from(u16::MAX) {
        return Err(EMLINK.into());
    }
    let mut tx = m.start(dir::add_credits(m.fs) + 2 * inode::WRITE_CREDITS + orphan::CREDITS)?;
    dir::add(
        &mut tx,
        m.fs,
        dir_inode,
        name,
        old.ino(),
        mode::dtype(old.mode()),
    )?;
    let was_orphan = old.nlink() == 0;
    old.set_nlink(old.nlink() + 1);
    old.touch_ctime();
    {
        let mut map = old.map_write();
        inode::write(&mut tx, m.fs, old, &mut map)?;
    }
    if was_orphan {
        // An O_TMPFILE-style inode getting its first name.
        orphan::remove(&mut tx, m.fs, old)?;
    }
    dir_inode.touch_mtime_ctime();
    {
        let mut map = dir_inode.map_write();
        inode::write(&mut tx, m.fs, dir_inode, &mut map)?;
    }
    tx.stop()?;
    Ok(())
}

/// Drops one link of `victim`; at zero it goes on the orphan list (freed at
/// eviction).
fn drop_link(tx: &mut Transaction<'_>, fs: &FsInfo, victim: &Inode, all: bool) -> FsResult {
    let n = if all {
        0
    } else {
        victim.nlink().saturating_sub(1)
    };
    victim.set_nlink(n);
    victim.touch_ctime();
    {
        let mut map = victim.map_write();
        inode::write(tx, fs, victim, &mut map)?;
    }
    if n == 0 {
        orphan::add(tx, fs, victim)?;
    }
    Ok(())
}

fn unlink_credits() -> u32 {
    1 + 2 * inode::WRITE_CREDITS + orphan::CREDITS
}

/// `unlink`.
pub(crate) fn unlink(m: Mount<'_>, dir_inode: &Inode, dentry: &Dentry) -> FsResult {
    let victim = dentry.inode().ok_or(ENOENT)?;
    swapguard::refuse(victim, Use::Name)?;
    let slot = dir::find(m, dir_inode, dentry.name())?.ok_or(ENOENT)?;
    if slot.ino != victim.ino() {
        return Err(FormatError::BadField {
            what: "directory entry changed under unlink",
            value: slot.ino,
        }
        .into());
    }
    let mut tx = m.start(unlink_credits())?;
    dir::remove(&mut tx, m.fs, &slot)?;
    drop_link(&mut tx, m.fs, victim, false)?;
    dir_inode.touch_mtime_ctime();
    {
        let mut map = dir_inode.map_write();
        inode::write(&mut tx, m.fs, dir_inode, &mut map)?;
    }
    tx.stop()?;
    Ok(())
}

/// `rmdir`.
pub(crate) fn rmdir(m: Mount<'_>, dir_inode: &Inode, dentry: &Dentry) -> FsResult {
    let victim = dentry.inode().ok_or(ENOENT)?;
    if !dir::is_empty(m, victim)? {
        return Err(errno::not_empty().into());
    }
    let slot = dir::find(m, dir_inode, dentry.name())?.ok_or(ENOENT)?;
    let mut tx = m.start(unlink_credits())?;
    dir::remove(&mut tx, m.fs, &slot)?;
    drop_link(&mut tx, m.fs, victim, true)?;
    dir_inode.set_nlink(dir_inode.nlink().saturating_sub(1));
    dir_inode.touch_mtime_ctime();
    {
        let mut map = dir_inode.map_write();
        inode::write(&mut tx, m.fs, dir_inode, &mut map)?;
    }
    tx.stop()?;
    Ok(())
}

/// `rename`. Of its `flags` only `RENAME_NOREPLACE` is supported, and the
/// VFS handles it (it fails before calling us if the target exists);
/// `RENAME_EXCHANGE` and `RENAME_WHITEOUT` are `EINVAL`.
pub(crate) fn rename(
    m: Mount<'_>,
    old_dir: &Inode,
    old_dentry: &Dentry,
    new_dir: &Inode,
    new_dentry: &Dentry,
    flags: u32,
) -> FsResult {
    if flags & !vfs::RENAME_NOREPLACE != 0 {
        return Err(EINVAL.into());
    }
    let moved = old_dentry.inode().ok_or(ENOENT)?;
    let target = new_dentry.inode();
    swapguard::refuse(moved, Use::Name)?;
    if let Some(t) = target {
        swapguard::refuse(t, Use::Name)?;
    }
    let new_name = new_dentry.name();
    if !format::is_valid_name(new_name) {
        return Err(errno::name_too_long().into());
    }
    let moved_is_dir = moved.mode() & mode::S_IFMT == mode::S_IFDIR;
    if let Some(t) = target {
        if t.mode() & mode::S_IFMT == mode::S_IFDIR && !dir::is_empty(m, t)? {
            return Err(errno::not_empty().into());
        }
    }
    let old_slot = dir::find(m, old_dir, old_dentry.name())?.ok_or(ENOENT)?;
    let new_slot = dir::find(m, new_dir, new_name)?;
    let credits = dir::add_credits(m.fs) + 1 + 4 * inode::WRITE_CREDITS + orphan::CREDITS;
    let mut tx = m.start(credits)?;
    let ftype = mode::dtype(moved.mode());
    match (new_slot, target) {
        (Some(slot), Some(t)) => {
            dir::retarget(&mut tx, m.fs, &slot, moved.ino(), ftype)?;
            let t_is_dir = t.mode() & mode::S_IFMT == mode::S_IFDIR;
            drop_link(&mut tx, m.fs, t, t_is_dir)?;
            if t_is_dir {
                // The replaced directory's ".." link to new_dir goes away.
                new_dir.set_nlink(new_dir.nlink().saturating_sub(1));
            }
        }
        (None, None) => dir::add(&mut tx, m.fs, new_dir, new_name, moved.ino(), ftype)?,
        _ => {
            return Err(FormatError::BadField {
                what: "rename target out of sync with the directory",
                value: new_dir.ino(),
            }
            .into())
        }
    }
    // The old entry: found again, since adding may have split its block.
    let old_slot = dir::find(m, old_dir, old_dentry.name())?.unwrap_or(old_slot);
    dir::remove(&mut tx, m.fs, &old_slot)?;
    moved.touch_ctime();
    {
        let mut map = moved.map_write();
        if moved_is_dir && old_dir.ino() != new_dir.ino() {
            map.data_mut().parent = new_dir.ino();
        }
        inode::write(&mut tx, m.fs, moved, &mut map)?;
    }
    if moved_is_dir && old_dir.ino() != new_dir.ino() {
        old_dir.set_nlink(old_dir.nlink().saturating_sub(1));
        new_dir.set_nlink(new_dir.nlink() + 1);
    }
    old_dir.touch_mtime_ctime();
    {
        let mut map = old_dir.map_write();
        inode::write(&mut tx, m.fs, old_dir, &mut map)?;
    }
    if old_dir.ino() != new_dir.ino() {
        new_dir.touch_mtime_ctime();
        let mut map = new_dir.map_write();
        inode::write(&mut tx, m.fs, new_dir, &mut map)?;
    }
    tx.stop()?;
    Ok(())
}
