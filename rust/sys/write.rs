// SPDX-License-Identifier: GPL-2.0

//! A write through a file (`write_iter`): its kiocb and source iterator,
//! and the VFS and iomap steps a filesystem's write is made of. Which steps
//! run, in what order, with which fallbacks, is the filesystem's
//! (`fs::file::write_iter`).

use kernel::prelude::*;
use kernel::types::Opaque;

use super::ffi;
use super::vfs::Inode;

/// A `write_iter` call in progress.
pub(crate) struct Write<'a> {
    iocb: &'a Opaque<ffi::kiocb>,
    from: &'a Opaque<ffi::iov_iter>,
}

/// A byte count or an errno, as the VFS and iomap return them.
fn bytes(ret: i64) -> Result<u64> {
    if ret < 0 {
        let e = i32::try_from(ret).unwrap_or(i32::MIN);
        return Err(super::errno::checked(e).unwrap_or(EIO));
    }
    Ok(ret.unsigned_abs())
}

impl<'a> Write<'a> {
    /// # Safety
    ///
    /// `iocb` and `from` are the arguments of a running `write_iter` call,
    /// valid for `'a` and used by no one else meanwhile.
    pub(crate) unsafe fn from_raw(iocb: *mut ffi::kiocb, from: *mut ffi::iov_iter) -> Self {
        // SAFETY: transparent wrappers; validity is the caller's promise.
        unsafe {
            Write {
                iocb: &*iocb.cast(),
                from: &*from.cast(),
            }
        }
    }

    /// The file's inode.
    pub(crate) fn inode(&self) -> &'a Inode {
        // SAFETY: an open file pins its inode.
        unsafe { Inode::from_raw(ffi::swapfs_c_write_inode_of(self.iocb.get())) }
    }

    /// The position to write at (after [`Write::checks`], where `O_APPEND`
    /// writes land).
    pub(crate) fn pos(&self) -> u64 {
        // SAFETY: the kiocb is live.
        let pos = unsafe { ffi::swapfs_c_kiocb_pos(self.iocb.get()) };
        u64::try_from(pos).unwrap_or(0)
    }

    /// Bytes left to write.
    pub(crate) fn count(&self) -> u64 {
        // SAFETY: the iterator is live.
        unsafe { ffi::swapfs_c_iter_count(self.from.get()) }
    }

    /// `generic_write_checks`: the bytes this write may write (0: none),
    /// the iterator cut to the limits. The caller holds the inode's lock.
    pub(crate) fn checks(&self) -> Result<u64> {
        // SAFETY: the kiocb and iterator are live; the inode is locked.
        bytes(unsafe { ffi::swapfs_c_write_checks(self.iocb.get(), self.from.get()) })
    }

    /// `file_remove_privs`, then `file_update_time`.
    pub(crate) fn modify_file(&self) -> Result {
        // SAFETY: the kiocb is live; the inode is locked.
        super::check(unsafe { ffi::swapfs_c_write_remove_privs(self.iocb.get()) })?;
        // SAFETY: as above.
        super::check(unsafe { ffi::swapfs_c_write_update_time(self.iocb.get()) })
    }

    /// Whether the write is direct (`O_DIRECT`).
    pub(crate) fn is_direct(&self) -> bool {
        // SAFETY: the kiocb is live.
        unsafe { ffi::swapfs_c_write_is_direct(self.iocb.get()) }
    }

    /// Makes the rest of the write a buffered one.
    pub(crate) fn set_buffered(&self) {
        // SAFETY: the kiocb is live and ours for the call.
        unsafe { ffi::swapfs_c_write_set_buffered(self.iocb.get()) }
    }

    /// Writes directly (`iomap_dio_rw`), waiting for completion if `wait`:
    /// the bytes written; `EIOCBQUEUED` when queued to complete later;
    /// `ENOTBLK` when iomap asks for buffered IO.
    pub(crate) fn direct(&self, wait: bool) -> Result<u64> {
        // SAFETY: the kiocb and iterator are live; the inode is locked.
        bytes(unsafe { ffi::swapfs_c_write_direct(self.iocb.get(), self.from.get(), wait) })
    }

    /// Writes through the page cache: the bytes written.
    pub(crate) fn buffered(&self) -> Result<u64> {
        // SAFETY: the kiocb and iterator are live; the inode is locked.
        bytes(unsafe { ffi::swapfs_c_write_buffered(self.iocb.get(), self.from.get()) })
    }

    /// `generic_write_sync` of `written` bytes (for `O_DSYNC`, `O_SYNC`):
    /// what the write returns. Without the inode's lock.
    pub(crate) fn sync(&self, written: u64) -> Result<u64> {
        let n = i64::try_from(written).unwrap_or(i64::MAX);
        // SAFETY: the kiocb is live.
        bytes(unsafe { ffi::swapfs_c_write_sync(self.iocb.get(), n) })
    }
}
