// SPDX-License-Identifier: GPL-2.0

//! The entry points the C helper calls (`swapfs_rs_*` in
//! `include/swapfs_helper.h`): the top layer, above `fs` and `swap`.
//!
//! Each one turns the raw pointers it gets into the safe types of
//! [`crate::sys::vfs`], calls the filesystem or swap, and turns the result
//! into an errno.
//! A compile-time check proves that each signature is the one the header
//! declares.

use kernel::ffi::{c_int, c_long, c_longlong, c_uchar, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ForeignOwnable;

use crate::fs::options::{self, Opt};
use crate::fs::swapguard::{self, Use, Verdict};
use crate::fs::{self, errno, file, inode, namei, FsInfo, Mount};
use crate::swap;
use crate::sys::ffi;
use crate::sys::iomap::{IoMap, IomapOp};
use crate::sys::swapio::{self, File, IovIter, Kiocb, SwapInfo};
use crate::sys::vfs::{Dentry, DirContext, Idmap, Inode, SeqFile, SuperBlock};
use crate::sys::write::Write;

/// Proves at compile time that a Rust function called from C has exactly the
/// signature that `include/swapfs_helper.h` declares for it: bindgen's
/// declaration and the definition must coerce to one function pointer type.
macro_rules! matches_header {
    ($name:ident) => {
        const _: () = {
            let _ = if true { ffi::$name } else { $name };
        };
    };
}

/// Converts a `Result` into 0 or a negative errno.
fn ret(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Runs a filesystem operation on the mounted `sb`: `EINVAL` if it is not
/// (yet) one, corruption reported as `what`.
fn mounted<T>(
    sb: &SuperBlock,
    what: &str,
    f: impl FnOnce(Mount<'_>) -> fs::FsResult<T>,
) -> Result<T> {
    Mount::of(sb).and_then(|m| f(m).map_err(|e| errno(sb, what, e)))
}

/// Runs an operation on the byte range `[pos, pos + length)` of `inode`:
/// `EINVAL` for a negative position or length, corruption reported as
/// `what`.
fn range_op(
    inode: &Inode,
    pos: c_longlong,
    length: c_longlong,
    what: &str,
    f: impl FnOnce(Mount<'_>, u64, u64) -> fs::FsResult,
) -> c_int {
    let (Ok(pos), Ok(len)) = (u64::try_from(pos), u64::try_from(length)) else {
        return EINVAL.to_errno();
    };
    ret(mounted(inode.sb(), what, |m| f(m, pos, len)))
}

/// # Safety
///
/// C calls this as `fill_super`, with a new superblock and valid options.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_fill_super(
    sb: *mut ffi::super_block,
    opts: *const ffi::swapfs_mount_opts,
    silent: c_int,
) -> c_int {
    // SAFETY: the superblock is live during fill_super.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    // SAFETY: the options live in the fs_context for the call.
    let opts = unsafe { &*opts };
    let r = fs::mount(sb, opts, silent != 0);
    if r.is_err() {
        // SAFETY: the mount failed and has returned: no reference to its
        // state is left, and the VFS calls no operation on this sb.
        drop(unsafe { sb.take_info::<FsInfo>() });
    }
    ret(r)
}
matches_header!(swapfs_rs_fill_super);

/// # Safety
///
/// C calls this from `reconfigure` with a mounted superblock.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_reconfigure(
    sb: *mut ffi::super_block,
    opts: *const ffi::swapfs_mount_opts,
    read_only: bool,
) -> c_int {
    // SAFETY: the superblock is mounted.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    // SAFETY: the options live in the fs_context for the call.
    let opts = unsafe { &*opts };
    ret(fs::reconfigure(sb, opts, read_only))
}
matches_header!(swapfs_rs_reconfigure);

/// # Safety
///
/// C calls this as `put_super`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_put_super(sb: *mut ffi::super_block) {
    // SAFETY: the superblock is live until put_super returns.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    fs::unmount(sb);
    // put_super comes after the VFS evicted every inode and ended every
    // operation. The one user left, a debugfs reader, holds the state only
    // inside the directory's files: the directory is the first field
    // dropped, and removing it waits for the readers.
    // SAFETY: so no reference to the state outlives it (see above).
    drop(unsafe { sb.take_info::<FsInfo>() });
}
matches_header!(swapfs_rs_put_super);

/// # Safety
///
/// C calls this at the top of the VFS operations, with a live superblock.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_live(sb: *mut ffi::super_block) -> c_int {
    // SAFETY: the superblock is live for the call.
    ret(fs::live(unsafe { SuperBlock::from_raw(sb) }))
}
matches_header!(swapfs_rs_live);

/// # Safety
///
/// C calls this before it acts on a file's page cache or mappings, with
/// its live inode.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_may(inode: *mut ffi::inode, op: c_uint) -> c_int {
    // SAFETY: the inode is live for the call.
    let inode = unsafe { Inode::from_raw(inode) };
    let what = match op {
        ffi::swapfs_op_SWAPFS_OP_WRITEBACK => Use::Writeback,
        ffi::swapfs_op_SWAPFS_OP_WRITE_FAULT => Use::WriteFault,
        ffi::swapfs_op_SWAPFS_OP_MAP => Use::Map,
        ffi::swapfs_op_SWAPFS_OP_MAP_SHARED_WRITE => Use::MapSharedWrite,
        _ => return EINVAL.to_errno(),
    };
    match fs::live(inode.sb()).and_then(|()| swapguard::check(inode, what)) {
        Ok(Verdict::Go) => 0,
        Ok(Verdict::Skip) => ffi::SWAPFS_MAY_SKIP as c_int,
        Err(e) => e.to_errno(),
    }
}
matches_header!(swapfs_rs_may);

/// # Safety
///
/// C calls this from `open` of a regular file, with its live inode.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_open(inode: *mut ffi::inode) -> c_int {
    // SAFETY: the inode is live for the call.
    ret(fs::may_open(unsafe { Inode::from_raw(inode) }))
}
matches_header!(swapfs_rs_open);

/// # Safety
///
/// C calls this as `freeze_fs`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_freeze(sb: *mut ffi::super_block) -> c_int {
    // SAFETY: the superblock is mounted.
    ret(fs::freeze(unsafe { SuperBlock::from_raw(sb) }))
}
matches_header!(swapfs_rs_freeze);

/// # Safety
///
/// C calls this as `unfreeze_fs`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_unfreeze(sb: *mut ffi::super_block) -> c_int {
    // SAFETY: the superblock is mounted.
    ret(fs::unfreeze(unsafe { SuperBlock::from_raw(sb) }))
}
matches_header!(swapfs_rs_unfreeze);

/// # Safety
///
/// C calls this as `shutdown` (the block device is going away).
#[no_mangle]
unsafe extern "C" fn swapfs_rs_shutdown(sb: *mut ffi::super_block) {
    // SAFETY: the superblock is live for the call.
    let sb = unsafe { SuperBlock::from_raw(sb) };
    if let Err(e) = fs::shutdown(sb, fs::Shutdown::NoLogFlush) {
        pr_err!("{}: shutdown failed: {:?}\n", sb.id(), e);
    }
}
matches_header!(swapfs_rs_shutdown);

/// `FS_IOC_SHUTDOWN` (uapi linux/fs.h; xfs' `XFS_IOC_GOINGDOWN`).
const FS_IOC_SHUTDOWN: u32 = kernel::ioctl::_IOR::<u32>(b'X' as u32, 125);

/// # Safety
///
/// C calls this as `unlocked_ioctl` of a file or directory of a mounted
/// swapfs; `arg` is the caller's argument.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_ioctl(inode: *mut ffi::inode, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: the open file keeps its inode alive.
    let sb = unsafe { Inode::from_raw(inode) }.sb();
    let r = match cmd {
        FS_IOC_SHUTDOWN => {
            if !crate::sys::capable_sys_admin() {
                Err(EPERM)
            } else {
                crate::sys::read_user_u32(arg)
                    .and_then(fs::Shutdown::from_flags)
                    .and_then(|how| fs::shutdown(sb, how))
            }
        }
        _ => Err(ENOTTY),
    };
    ret(r) as c_long
}
matches_header!(swapfs_rs_ioctl);

/// # Safety
///
/// C calls this as `sync_fs`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_sync_fs(sb: *mut ffi::super_block, wait: c_int) -> c_int {
    // SAFETY: the superblock is mounted.
    ret(fs::sync(unsafe { SuperBlock::from_raw(sb) }, wait != 0))
}
matches_header!(swapfs_rs_sync_fs);

/// # Safety
///
/// C calls this from `statfs` with a valid output struct.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_statfs(
    sb: *mut ffi::super_block,
    out: *mut ffi::swapfs_statfs,
) -> c_int {
    // SAFETY: the superblock is mounted; `out` is valid for writes.
    let (sb, out) = unsafe { (SuperBlock::from_raw(sb), &mut *out) };
    ret(fs::statfs(sb, out))
}
matches_header!(swapfs_rs_statfs);

/// # Safety
///
/// C calls this from `init_fs_context` with a new options struct; `sb`
/// (for a remount) is mounted, or NULL.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_init_options(
    sb: *mut ffi::super_block,
    out: *mut ffi::swapfs_mount_opts,
) {
    // SAFETY: `out` is valid for writes.
    let out = unsafe { &mut *out };
    *out = if sb.is_null() {
        options::defaults()
    } else {
        // SAFETY: a remount's superblock is live.
        options::current(unsafe { SuperBlock::from_raw(sb) })
    };
}
matches_header!(swapfs_rs_init_options);

/// # Safety
///
/// C calls this from `parse_param` with the fs_context's options and a
/// pointer for the reason of a refusal.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_set_option(
    o: *mut ffi::swapfs_mount_opts,
    opt: c_uint,
    value: c_uint,
    why: *mut *const kernel::ffi::c_char,
) -> c_int {
    // SAFETY: both are valid for the call.
    let (o, why) = unsafe { (&mut *o, &mut *why) };
    let opt = match opt {
        ffi::swapfs_opt_SWAPFS_OPT_COMMIT => Opt::Commit(value),
        ffi::swapfs_opt_SWAPFS_OPT_ERRORS => {
            Opt::ErrorsRemountRo(value == ffi::swapfs_errors_mode_SWAPFS_ERRORS_REMOUNT_RO)
        }
        ffi::swapfs_opt_SWAPFS_OPT_SWAP_UNSHARE => Opt::SwapUnshare(value != 0),
        ffi::swapfs_opt_SWAPFS_OPT_SWAP_UNWRITTEN => Opt::SwapRefuseUnwritten(value != 0),
        _ => {
            *why = c"unknown option".as_char_ptr();
            return EINVAL.to_errno();
        }
    };
    match options::set(o, opt) {
        Ok(()) => 0,
        Err(reason) => {
            *why = reason.as_char_ptr();
            EINVAL.to_errno()
        }
    }
}
matches_header!(swapfs_rs_set_option);

/// # Safety
///
/// C calls this as `show_options` of a mounted superblock.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_show_options(sb: *mut ffi::super_block, m: *mut ffi::seq_file) {
    // SAFETY: the superblock is mounted; the seq_file is the show call's.
    let (sb, m) = unsafe { (SuperBlock::from_raw(sb), SeqFile::from_raw(m)) };
    let mut line = Line {
        buf: [0; 384],
        len: 0,
    };
    if options::show(&options::current(sb), &mut line).is_ok() {
        m.puts(core::str::from_utf8(line.buf.get(..line.len).unwrap_or(&[])).unwrap_or(""));
    }
}
matches_header!(swapfs_rs_show_options);

/// # Safety
///
/// C calls this from iget for a new (`I_NEW`) inode of a mounted swapfs.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_read_inode(inode: *mut ffi::inode) -> c_int {
    // SAFETY: the inode is live and locked new.
    let inode = unsafe { Inode::from_raw(inode) };
    ret(mounted(inode.sb(), "reading an inode", |m| {
        inode::read(m, inode)
    }))
}
matches_header!(swapfs_rs_read_inode);

/// # Safety
///
/// C calls this as `dirty_inode`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_dirty_inode(inode: *mut ffi::inode) {
    // SAFETY: the inode is live for the call.
    let inode = unsafe { Inode::from_raw(inode) };
    let sb = inode.sb();
    if let Ok(m) = Mount::of(sb) {
        if let Err(e) = inode::dirty(m, inode) {
            let e = errno(sb, "writing an inode", e);
            if e != EROFS && !m.fs.is_shut_down() {
                pr_err!("{}: inode {}: not written: {:?}\n", sb.id(), inode.ino(), e);
            }
        }
    }
}
matches_header!(swapfs_rs_dirty_inode);

/// # Safety
///
/// C calls this from `evict_inode`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_evict_inode(inode: *mut ffi::inode) {
    // SAFETY: the inode is live until clear_inode.
    let inode = unsafe { Inode::from_raw(inode) };
    let sb = inode.sb();
    if let Ok(m) = Mount::of(sb) {
        if let Err(e) = inode::evict(m, inode) {
            let e = errno(sb, "freeing an inode", e);
            if m.fs.is_shut_down() {
                return;
            }
            pr_err!(
                "{}: inode {}: not freed ({:?}); it stays on the orphan list\n",
                sb.id(),
                inode.ino(),
                e
            );
        }
    }
}
matches_header!(swapfs_rs_evict_inode);

/// # Safety
///
/// C calls this from `setattr` with the inode locked.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_setsize(inode: *mut ffi::inode, size: c_longlong) -> c_int {
    // SAFETY: the inode is live and locked.
    let inode = unsafe { Inode::from_raw(inode) };
    let Ok(size) = u64::try_from(size) else {
        return EINVAL.to_errno();
    };
    ret(mounted(inode.sb(), "truncate", |m| {
        file::setsize(m, inode, size)
    }))
}
matches_header!(swapfs_rs_setsize);

/// # Safety
///
/// C calls this from `fsync` and `write_inode`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_fsync(inode: *mut ffi::inode, _datasync: bool) -> c_int {
    // SAFETY: the inode is live for the call.
    let inode = unsafe { Inode::from_raw(inode) };
    ret(mounted(inode.sb(), "fsync", |m| file::fsync(m, inode)))
}
matches_header!(swapfs_rs_fsync);

/// # Safety
///
/// C calls this as `write_inode`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_write_inode(inode: *mut ffi::inode, sync: bool) -> c_int {
    // SAFETY: the inode is live for the call.
    let inode = unsafe { Inode::from_raw(inode) };
    ret(mounted(inode.sb(), "write_inode", |m| {
        file::write_inode(m, inode, sync)
    }))
}
matches_header!(swapfs_rs_write_inode);

/// # Safety
///
/// C calls this from `lookup` with the directory locked and `name` valid
/// for `len` bytes.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_lookup(
    dir: *mut ffi::inode,
    name: *const c_uchar,
    len: c_uint,
) -> c_longlong {
    // SAFETY: the directory is live; the name is valid for `len` bytes.
    let (dir, name) = unsafe {
        (
            Inode::from_raw(dir),
            core::slice::from_raw_parts(name, len as usize),
        )
    };
    match mounted(dir.sb(), "lookup", |m| namei::lookup(m, dir, name)) {
        Ok(ino) => ino as c_longlong,
        Err(e) => c_longlong::from(e.to_errno()),
    }
}
matches_header!(swapfs_rs_lookup);

/// # Safety
///
/// C calls this from `iterate_shared` with the directory locked.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_iterate(dir: *mut ffi::inode, ctx: *mut ffi::dir_context) -> c_int {
    // SAFETY: the directory is live; the context is the call's own.
    let (dir, ctx) = unsafe { (Inode::from_raw(dir), DirContext::from_raw(ctx)) };
    ret(mounted(dir.sb(), "readdir", |m| {
        fs::dir::iterate(m, dir, ctx)
    }))
}
matches_header!(swapfs_rs_iterate);

/// # Safety
///
/// C calls this from create/mkdir/mknod/symlink with the directory locked;
/// `target` is valid for `target_len` bytes when not null.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_create(
    idmap: *mut ffi::mnt_idmap,
    dir: *mut ffi::inode,
    dentry: *mut ffi::dentry,
    mode: c_uint,
    rdev: c_uint,
    target: *const c_uchar,
    target_len: c_uint,
) -> c_int {
    // SAFETY: every object is live for the call (VFS guarantees).
    let (idmap, dir, dentry) = unsafe {
        (
            Idmap::from_raw(idmap),
            Inode::from_raw(dir),
            Dentry::from_raw(dentry),
        )
    };
    let target = if target.is_null() {
        None
    } else {
        // SAFETY: non-null targets are valid for `target_len` bytes.
        Some(unsafe { core::slice::from_raw_parts(target, target_len as usize) })
    };
    let Ok(mode) = u16::try_from(mode) else {
        return EINVAL.to_errno();
    };
    ret(mounted(dir.sb(), "create", |m| {
        let node = namei::NewNode { mode, rdev, target };
        namei::create(m, idmap, dir, dentry, node)
    }))
}
matches_header!(swapfs_rs_create);

/// # Safety
///
/// C calls this from `link` with the directory locked.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_link(
    old: *mut ffi::dentry,
    dir: *mut ffi::inode,
    dentry: *mut ffi::dentry,
) -> c_int {
    // SAFETY: every object is live for the call.
    let (old, dir, dentry) = unsafe {
        (
            Dentry::from_raw(old),
            Inode::from_raw(dir),
            Dentry::from_raw(dentry),
        )
    };
    let Some(old_inode) = old.inode() else {
        return ENOENT.to_errno();
    };
    ret(mounted(dir.sb(), "link", |m| {
        namei::link(m, old_inode, dir, dentry)
    }))
}
matches_header!(swapfs_rs_link);

/// # Safety
///
/// C calls this from `unlink` with the directory and the victim locked.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_unlink(dir: *mut ffi::inode, dentry: *mut ffi::dentry) -> c_int {
    // SAFETY: every object is live for the call.
    let (dir, dentry) = unsafe { (Inode::from_raw(dir), Dentry::from_raw(dentry)) };
    ret(mounted(dir.sb(), "unlink", |m| {
        namei::unlink(m, dir, dentry)
    }))
}
matches_header!(swapfs_rs_unlink);

/// # Safety
///
/// C calls this from `rmdir` with the directory and the victim locked.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_rmdir(dir: *mut ffi::inode, dentry: *mut ffi::dentry) -> c_int {
    // SAFETY: every object is live for the call.
    let (dir, dentry) = unsafe { (Inode::from_raw(dir), Dentry::from_raw(dentry)) };
    ret(mounted(dir.sb(), "rmdir", |m| namei::rmdir(m, dir, dentry)))
}
matches_header!(swapfs_rs_rmdir);

/// # Safety
///
/// C calls this from `rename` with the VFS's rename locks held.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_rename(
    old_dir: *mut ffi::inode,
    old_dentry: *mut ffi::dentry,
    new_dir: *mut ffi::inode,
    new_dentry: *mut ffi::dentry,
    flags: c_uint,
) -> c_int {
    // SAFETY: every object is live for the call.
    let (od, odn, nd, ndn) = unsafe {
        (
            Inode::from_raw(old_dir),
            Dentry::from_raw(old_dentry),
            Inode::from_raw(new_dir),
            Dentry::from_raw(new_dentry),
        )
    };
    ret(mounted(od.sb(), "rename", |m| {
        namei::rename(m, od, odn, nd, ndn, flags)
    }))
}
matches_header!(swapfs_rs_rename);

/// # Safety
///
/// C calls this from `iomap_begin` with two valid, zeroed output structs.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_iomap_begin(
    inode: *mut ffi::inode,
    pos: c_longlong,
    length: c_longlong,
    flags: c_uint,
    out: *mut ffi::swapfs_map,
    src: *mut ffi::swapfs_map,
) -> c_int {
    // SAFETY: the inode is live for the call; `out` and `src` are valid
    // for writes and distinct.
    let (inode, out, src) = unsafe { (Inode::from_raw(inode), &mut *out, &mut *src) };
    let op = IomapOp::from_c(flags);
    let (mut map, mut s) = (IoMap::default(), IoMap::default());
    let r = range_op(inode, pos, length, "mapping blocks", |m, pos, len| {
        file::iomap_begin(m, inode, pos, len, op, &mut map, &mut s)
    });
    (*out, *src) = (map.to_c(), s.to_c());
    r
}
matches_header!(swapfs_rs_iomap_begin);

/// # Safety
///
/// C calls this from `iomap_end` of a mapping that staged copy-on-write
/// blocks, with a live inode.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_iomap_end(
    inode: *mut ffi::inode,
    pos: c_longlong,
    length: c_longlong,
    written: c_longlong,
    map_end: c_longlong,
) -> c_int {
    // SAFETY: the inode is live for the call.
    let inode = unsafe { Inode::from_raw(inode) };
    let Ok(map_end) = u64::try_from(map_end) else {
        return EINVAL.to_errno();
    };
    range_op(inode, pos, length, "copy-on-write cancel", |m, pos, len| {
        file::staged_end(m.fs, inode, pos, len, written, map_end);
        Ok(())
    })
}
matches_header!(swapfs_rs_iomap_end);

/// # Safety
///
/// C calls this from writeback with a valid output struct.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_map_blocks(
    inode: *mut ffi::inode,
    pos: c_longlong,
    length: c_longlong,
    out: *mut ffi::swapfs_map,
) -> c_int {
    // SAFETY: the inode is live for the call; `out` is valid for writes.
    let (inode, out) = unsafe { (Inode::from_raw(inode), &mut *out) };
    let mut map = IoMap::default();
    let r = range_op(inode, pos, length, "writeback", |m, pos, len| {
        file::map_blocks(m, inode, pos, len, &mut map)
    });
    *out = map.to_c();
    r
}
matches_header!(swapfs_rs_map_blocks);

/// # Safety
///
/// C calls this from `fallocate` with the inode locked (i_rwsem and the
/// invalidate lock).
#[no_mangle]
unsafe extern "C" fn swapfs_rs_fallocate(
    file: *mut ffi::file,
    mode: c_int,
    offset: c_longlong,
    len: c_longlong,
) -> c_int {
    // SAFETY: the file is open; its inode is locked.
    let file = unsafe { File::from_raw(file) };
    let Ok(mode) = u32::try_from(mode) else {
        return crate::sys::errno::op_not_supported().to_errno();
    };
    ret(mounted(file.inode().sb(), "fallocate", |m| {
        fs::falloc::fallocate(m, file, mode, offset, len)
    }))
}
matches_header!(swapfs_rs_fallocate);

/// # Safety
///
/// C calls this from `remap_file_range` with both inodes and their
/// invalidate locks held, after `generic_remap_file_range_prep`, and a
/// valid `remapped`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_remap(
    src: *mut ffi::inode,
    pos_in: c_longlong,
    dst: *mut ffi::inode,
    pos_out: c_longlong,
    len: c_longlong,
    dedupe: bool,
    remapped: *mut c_longlong,
) -> c_int {
    let (src, dst, remapped) =
        // SAFETY: both inodes are live and locked; `remapped` is valid for
        // writes.
        unsafe { (Inode::from_raw(src), Inode::from_raw(dst), &mut *remapped) };
    let (Ok(pos_in), Ok(pos_out), Ok(len)) = (
        u64::try_from(pos_in),
        u64::try_from(pos_out),
        u64::try_from(len),
    ) else {
        return EINVAL.to_errno();
    };
    let mut done = 0u64;
    let r = mounted(dst.sb(), "remap", |m| {
        fs::reflink::remap(m, src, pos_in, dst, pos_out, len, dedupe, &mut done)
    });
    *remapped = c_longlong::try_from(done).unwrap_or(c_longlong::MAX);
    ret(r)
}
matches_header!(swapfs_rs_remap);

/// The `SWAPFS_WRITE_*` flags.
fn write_end_flags(flags: c_uint) -> file::WriteEnd {
    file::WriteEnd {
        cow: flags & ffi::SWAPFS_WRITE_COW != 0,
        unwritten: flags & ffi::SWAPFS_WRITE_UNWRITTEN != 0,
        direct: flags & ffi::SWAPFS_WRITE_DIRECT != 0,
    }
}

/// # Safety
///
/// C calls this when a write to file data ended, in process context (the
/// end-of-IO work of writeback, the completion of a direct write), with
/// the inode's IO in flight.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_write_end(
    inode: *mut ffi::inode,
    pos: c_longlong,
    length: c_longlong,
    err: c_int,
    flags: c_uint,
) -> c_int {
    // SAFETY: the inode is live (its IO is in flight).
    let inode = unsafe { Inode::from_raw(inode) };
    let how = write_end_flags(flags);
    range_op(inode, pos, length, "write completion", |m, pos, len| {
        file::write_end(m, inode, pos, len, err, how)
    })
}
matches_header!(swapfs_rs_write_end);

/// # Safety
///
/// C calls this as `write_iter`.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_write_iter(
    iocb: *mut ffi::kiocb,
    from: *mut ffi::iov_iter,
) -> c_longlong {
    // SAFETY: the kiocb and iterator are the call's, ours until it returns.
    let w = unsafe { Write::from_raw(iocb, from) };
    let sb = w.inode().sb();
    match fs::live(sb)
        .and_then(|()| Mount::of(sb))
        .and_then(|m| file::write_iter(m.fs, &w))
    {
        Ok(n) => c_longlong::try_from(n).unwrap_or(c_longlong::MAX),
        Err(e) => e.to_errno().into(),
    }
}
matches_header!(swapfs_rs_write_iter);

/// # Safety
///
/// C calls this from writeback, before submitting a bio of the inode.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_write_needs_end(
    inode: *mut ffi::inode,
    pos: c_longlong,
    length: c_longlong,
    flags: c_uint,
) -> bool {
    // SAFETY: the inode is live (writeback holds its folios).
    let inode = unsafe { Inode::from_raw(inode) };
    let how = write_end_flags(flags);
    match (u64::try_from(pos), u64::try_from(length)) {
        (Ok(pos), Ok(len)) => file::write_needs_end(inode, pos, len, how),
        // Not a range iomap makes: let the end-of-IO work see it.
        _ => true,
    }
}
matches_header!(swapfs_rs_write_needs_end);

/// # Safety
///
/// C calls this as `swap_activate` (from swapon, the inode locked).
#[no_mangle]
unsafe extern "C" fn swapfs_rs_swap_activate(
    sis: *mut ffi::swap_info_struct,
    file: *mut ffi::file,
    max: c_uint,
    span: *mut u64,
) -> c_int {
    // SAFETY: swapon keeps all three alive for the call.
    let (sis, file, span) = unsafe { (SwapInfo::from_raw(sis), File::from_raw(file), &mut *span) };
    let inode = file.inode();
    let sb = inode.sb();
    let r = fs::live(sb).and_then(|()| {
        mounted(sb, "swapon", |m| {
            swap::activate::activate(m, inode, file, sis, max)
        })
    });
    match r {
        Ok(a) => {
            *span = a.span;
            // The inode owns a reference until `swapfs_rs_swap_deactivate`.
            swapio::set_inode_swap(inode, a.file.into_foreign());
            c_int::try_from(a.nr_extents).unwrap_or(c_int::MAX)
        }
        Err(e) => e.to_errno(),
    }
}
matches_header!(swapfs_rs_swap_activate);

/// # Safety
///
/// C calls this as `swap_deactivate`, after all swap IO of the file ended.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_swap_deactivate(inode: *mut ffi::inode) {
    // SAFETY: the swapfile's inode is live.
    let inode = unsafe { Inode::from_raw(inode) };
    let p = swapio::inode_swap(inode);
    swapio::set_inode_swap(inode, core::ptr::null_mut());
    // A non-null pointer is the reference `swapfs_rs_swap_activate` stored,
    // taken back once, here; swapoff has ended all swap IO.
    // SAFETY: it came from `into_foreign` and no borrow of it is alive.
    if let Some(sf) = unsafe { Arc::<swap::SwapFile>::try_from_foreign(p) } {
        swap::activate::deactivate(inode.sb(), sf)
    }
}
matches_header!(swapfs_rs_swap_deactivate);

/// # Safety
///
/// C calls this from the swap IO hook (`swap_rw` on 7.2, `swap_ops` on
/// 7.3) with the request's kiocb and bvec iterator.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_swap_io(
    iocb: *mut ffi::kiocb,
    iter: *mut ffi::iov_iter,
    write: bool,
) -> c_int {
    // SAFETY: the kiocb and iterator belong to the running request.
    let (iocb, iter) = unsafe { (Kiocb::from_raw(iocb), IovIter::from_raw(iter)) };
    let inode = iocb.inode();
    let p = swapio::inode_swap(inode);
    if p.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: the pointer is the reference `swapfs_rs_swap_activate`
    // stored; deactivation takes it back only after all swap IO.
    let sf = unsafe { Arc::<swap::SwapFile>::borrow(p) };
    match swap::io::submit(&sf, inode.sb(), iocb, iter, write) {
        Ok(()) => EIOCBQUEUED.to_errno(),
        Err(e) => e.to_errno(),
    }
}
matches_header!(swapfs_rs_swap_io);

/// # Safety
///
/// C calls this once per completed swap request, with the request's
/// swapfile pointer; any context.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_swap_done(swap: *mut c_void, bytes: u64, err: c_int, write: bool) {
    // `swap` is the `SwapFile` that submitted the request
    // (`swap::io::submit`); swapoff waits for its requests before
    // deactivation drops the inode's reference.
    // SAFETY: so it points to a live `SwapFile` for this call.
    let sf = unsafe { &*swap.cast::<swap::SwapFile>() };
    swap::io::done(sf, bytes, err, write)
}
matches_header!(swapfs_rs_swap_done);

/// A line buffer for debugfs output.
struct Line {
    buf: [u8; 384],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// # Safety
///
/// C calls this from the debugfs show of a mounted superblock.
#[no_mangle]
unsafe extern "C" fn swapfs_rs_show_swapfiles(sb: *mut ffi::super_block, m: *mut ffi::seq_file) {
    // SAFETY: the debugfs file exists only while the sb is mounted.
    let (sb, m) = unsafe { (SuperBlock::from_raw(sb), SeqFile::from_raw(m)) };
    let Some(fs) = FsInfo::get(sb) else {
        return;
    };
    for sf in fs.swapfiles.lock().iter() {
        let mut line = Line {
            buf: [0; 384],
            len: 0,
        };
        if sf.describe(&mut line).is_ok() {
            m.puts(core::str::from_utf8(line.buf.get(..line.len).unwrap_or(&[])).unwrap_or(""));
        }
    }
}
matches_header!(swapfs_rs_show_swapfiles);
