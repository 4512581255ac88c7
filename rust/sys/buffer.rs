// SPDX-License-Identifier: GPL-2.0

//! Metadata blocks: buffer heads on the block device's page cache.

use core::ptr::NonNull;
use kernel::prelude::*;

use super::ffi;
use super::vfs::SuperBlock;

/// A held reference to one metadata block (a `struct buffer_head`).
///
/// # Invariants
///
/// `bh` holds a reference (from `sb_bread`/`sb_getblk`) that `Drop`
/// releases; its data is `size` bytes long and up to date.
pub(crate) struct Buffer {
    bh: NonNull<ffi::buffer_head>,
    size: usize,
    blk: u64,
}

impl Buffer {
    /// Reads block `blk` of the filesystem (of its block size).
    pub(crate) fn read(sb: &SuperBlock, blk: u64) -> Result<Buffer> {
        // SAFETY: `sb` is a live superblock with its block size set.
        let bh = unsafe { ffi::swapfs_c_bread(sb.as_ptr(), blk) };
        let bh = NonNull::new(bh).ok_or(EIO)?;
        // INVARIANT: sb_bread returned an uptodate buffer with a reference.
        Ok(Buffer {
            bh,
            size: sb.block_size(),
            blk,
        })
    }

    /// Whether the block passed its checks since it was last read from
    /// disk (see [`Buffer::set_verified`]).
    fn verified(&self) -> bool {
        // SAFETY: `bh` is a referenced buffer head (type invariant).
        unsafe { ffi::swapfs_c_buffer_verified(self.as_ptr()) }
    }

    /// Records that the block passed its checks: metadata in the cache is
    /// checksummed once, not on every use (ext4's `buffer_verified`). Every
    /// read from disk clears the flag; changes made by the filesystem keep
    /// blocks valid (they are sealed as they are made).
    fn set_verified(&self) {
        // SAFETY: `bh` is a referenced buffer head (type invariant).
        unsafe { ffi::swapfs_c_set_buffer_verified(self.as_ptr()) }
    }

    /// Calls `check` with the block's contents and whether its checksum
    /// must be verified (not if it passed since the block was read from
    /// disk); records the block as verified when `check` returns `Ok`.
    pub(crate) fn checked<R, E>(
        &self,
        check: impl FnOnce(&[u8], bool) -> Result<R, E>,
    ) -> Result<R, E> {
        let verified = self.verified();
        let r = self.with(|b| check(b, !verified));
        if r.is_ok() && !verified {
            self.set_verified();
        }
        r
    }

    /// Wraps a referenced, uptodate buffer of `sb` (from the C helper).
    ///
    /// # Safety
    ///
    /// `bh` is a buffer head of block `blk` of `sb`, uptodate, with a
    /// reference that the new `Buffer` owns.
    pub(super) unsafe fn from_raw(
        sb: &SuperBlock,
        bh: NonNull<ffi::buffer_head>,
        blk: u64,
    ) -> Buffer {
        // INVARIANT: the caller's promise.
        Buffer {
            bh,
            size: sb.block_size(),
            blk,
        }
    }

    /// The block number.
    pub(crate) fn blk(&self) -> u64 {
        self.blk
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::buffer_head {
        self.bh.as_ptr()
    }

    /// Calls `f` with the block's contents, under the buffer lock (which
    /// orders this access against every other access through `Buffer`).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        // SAFETY: the buffer is referenced (type invariant); the lock is
        // released below.
        unsafe { ffi::swapfs_c_lock_buffer(self.as_ptr()) };
        let ptr = bh_data(self);
        // SAFETY: `size` bytes (type invariant), only accessed through
        // `Buffer` under the buffer lock, which we hold.
        let data = unsafe { core::slice::from_raw_parts(ptr, self.size) };
        let r = f(data);
        // SAFETY: locked above.
        unsafe { ffi::swapfs_c_unlock_buffer(self.as_ptr()) };
        r
    }

    /// Calls `f` with the block's contents and, if the journal keeps one,
    /// its last committed contents (see
    /// [`super::journal::Transaction::modify_undo`]), under the buffer lock
    /// and the journal's lock on the copy: `f` must not sleep.
    pub(crate) fn with_committed<R>(&self, f: impl FnOnce(&[u8], Option<&[u8]>) -> R) -> R {
        self.with(|cur| {
            // SAFETY: the buffer is referenced (type invariant).
            let p = unsafe { ffi::swapfs_c_committed_begin(self.as_ptr()) };
            if p.is_null() {
                return f(cur, None);
            }
            // jbd2's copy is `size` bytes (a block).
            // SAFETY: the state lock, held until `committed_end`, keeps it.
            let committed = unsafe { core::slice::from_raw_parts(p, self.size) };
            let r = f(cur, Some(committed));
            // SAFETY: `committed_begin` returned non-NULL: the lock is held.
            unsafe { ffi::swapfs_c_committed_end(self.as_ptr()) };
            r
        })
    }

    /// Calls `f` with the block's contents, mutable, under the buffer lock.
    /// Only [`super::journal::Transaction`] calls this, between getting write
    /// access and dirtying the buffer.
    pub(super) fn with_mut<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // SAFETY: as in `with`.
        unsafe { ffi::swapfs_c_lock_buffer(self.as_ptr()) };
        let ptr = bh_data(self);
        // SAFETY: as in `with`; the buffer lock makes this the only access.
        let data = unsafe { core::slice::from_raw_parts_mut(ptr, self.size) };
        let r = f(data);
        // SAFETY: locked above.
        unsafe { ffi::swapfs_c_unlock_buffer(self.as_ptr()) };
        r
    }
}

/// The data pointer of a buffer.
fn bh_data(buf: &Buffer) -> *mut u8 {
    // SAFETY: the buffer is referenced (type invariant).
    unsafe { ffi::swapfs_c_bh_data(buf.as_ptr()) }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: we hold a reference (type invariant).
        unsafe { ffi::swapfs_c_brelse(self.as_ptr()) };
    }
}

// SAFETY: a buffer head may be released and accessed from any thread; all
// data access goes through the buffer lock.
unsafe impl Send for Buffer {}
// SAFETY: shared access only reads under the buffer lock.
unsafe impl Sync for Buffer {}
