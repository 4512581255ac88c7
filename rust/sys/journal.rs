// SPDX-License-Identifier: GPL-2.0

//! jbd2: the journal and its transactions.
//!
//! [`Transaction`] is the only way to modify metadata in swapfs: every
//! function that changes a metadata block takes `&mut Transaction`. The swap
//! IO path (`crate::swap::io`) does not import this module, and
//! [`Transaction::start`] refuses (with a warning and a counter) to start
//! from swap IO context.

use core::ptr::NonNull;
use kernel::prelude::*;

use super::buffer::Buffer;
use super::ffi;
use super::vfs::SuperBlock;

/// An open jbd2 journal.
///
/// # Invariants
///
/// `j` is a journal returned by `swapfs_c_journal_init` that has not been
/// closed; `Drop` closes it.
pub(crate) struct Journal {
    j: NonNull<ffi::journal_s>,
    /// [`Journal::max_credits`], fixed once the features are set.
    max_credits: u32,
}

// SAFETY: jbd2 journals are designed to be used from any thread.
unsafe impl Send for Journal {}
// SAFETY: every jbd2 entry point takes its own locks.
unsafe impl Sync for Journal {}

impl Journal {
    /// Opens the journal at blocks `[start, start + len)` of the
    /// filesystem's device and replays it if needed (saying so, as ext4:
    /// jbd2 recovers silently). An error the journal was aborted with
    /// before stays set ([`Journal::errno`]) for the filesystem to handle.
    pub(crate) fn open(sb: &SuperBlock, start: u64, len: u64, commit_secs: u32) -> Result<Journal> {
        let mut err = 0;
        // SAFETY: `sb` is live and its block size is set.
        let j =
            unsafe { ffi::swapfs_c_journal_init(sb.as_ptr(), start, len, commit_secs, &mut err) };
        // INVARIANT: a journal `swapfs_c_journal_init` returned; dropping
        // it on the failures below destroys it.
        let mut journal = Journal {
            j: NonNull::new(j).ok_or_else(|| Error::from_errno(err))?,
            max_credits: 0,
        };
        // SAFETY: the journal is set up.
        let recover = unsafe { ffi::swapfs_c_journal_needs_recovery(journal.as_ptr()) };
        if recover {
            pr_info!("{}: recovering the journal\n", sb.id());
        }
        // SAFETY: the journal is set up and not loaded yet.
        super::check(unsafe { ffi::swapfs_c_journal_load(journal.as_ptr()) })?;
        if recover {
            // SAFETY: the journal is loaded.
            let tid = unsafe { ffi::swapfs_c_journal_next_tid(journal.as_ptr()) };
            pr_info!(
                "{}: journal recovery complete, next transaction {}\n",
                sb.id(),
                tid
            );
        }
        // SAFETY: the journal is loaded.
        super::check(unsafe { ffi::swapfs_c_journal_set_features(journal.as_ptr()) })?;
        // The limits depend on the size and the features, set now.
        let mut l = ffi::swapfs_journal_limits::default();
        // SAFETY: the journal is loaded; `l` is valid for writes.
        unsafe { ffi::swapfs_c_journal_limits(journal.as_ptr(), &mut l) };
        let n = |v: i32| u32::try_from(v).unwrap_or(0);
        journal.max_credits = crate::common::journal::max_handle_credits(
            n(l.max_buffers),
            n(l.overhead),
            n(l.revokes_per_block),
        );
        Ok(journal)
    }

    /// Clears the error the journal was aborted with, in memory and, if
    /// `update_sb`, in the journal's superblock.
    pub(crate) fn clear_error(&self, update_sb: bool) {
        // SAFETY: the journal is open.
        unsafe { ffi::swapfs_c_journal_clear_err(self.as_ptr(), update_sb) }
    }

    fn as_ptr(&self) -> *mut ffi::journal_s {
        self.j.as_ptr()
    }

    /// The journal's error (non-zero once it was aborted).
    pub(crate) fn errno(&self) -> i32 {
        // SAFETY: the journal is open.
        unsafe { ffi::swapfs_c_journal_errno(self.as_ptr()) }
    }

    /// Aborts the journal: no transaction commits any more.
    pub(crate) fn abort(&self, err: Error) {
        // SAFETY: the journal is open.
        unsafe { ffi::swapfs_c_journal_abort(self.as_ptr(), err.to_errno()) }
    }

    /// Commits the running transaction and waits for it.
    pub(crate) fn force_commit(&self) -> Result {
        // SAFETY: the journal is open.
        super::check(unsafe { ffi::swapfs_c_journal_force_commit(self.as_ptr()) })
    }

    /// Commits everything and checkpoints it: afterwards the log is empty
    /// and the filesystem needs no replay.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: the journal is open.
        super::check(unsafe { ffi::swapfs_c_journal_flush(self.as_ptr()) })
    }

    /// Waits until transaction `tid` is on disk.
    pub(crate) fn complete(&self, tid: u32) -> Result {
        // SAFETY: the journal is open.
        super::check(unsafe { ffi::swapfs_c_journal_complete(self.as_ptr(), tid) })
    }

    /// Whether transaction `tid` is on disk already.
    pub(crate) fn is_committed(&self, tid: u32) -> bool {
        // SAFETY: the journal is open.
        unsafe { ffi::swapfs_c_journal_tid_committed(self.as_ptr(), tid) }
    }

    /// Whether the commit of transaction `tid` has still to flush the
    /// device's write cache before writing its commit block: false once it
    /// is past that flush or committed.
    pub(crate) fn will_flush(&self, tid: u32) -> bool {
        // SAFETY: the journal is open.
        unsafe { ffi::swapfs_c_journal_will_flush(self.as_ptr(), tid) }
    }

    /// The transaction a change made now could still be in (the running
    /// one, else the committing one, else the last committed).
    pub(crate) fn current_tid(&self) -> u32 {
        // SAFETY: the journal is open.
        unsafe { ffi::swapfs_c_journal_current_tid(self.as_ptr()) }
    }

    /// The most credits one transaction may reserve (with as many revoke
    /// records as credits, as [`Transaction::start`] asks).
    pub(crate) fn max_credits(&self) -> u32 {
        self.max_credits
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: the journal is open (type invariant); `close` forgets self.
        unsafe { ffi::swapfs_c_journal_close(self.as_ptr()) };
    }
}

/// An open jbd2 handle: the only way to modify metadata.
///
/// # Invariants
///
/// `h` is a handle started on `journal` by this task and not yet stopped;
/// `Drop` (or [`Transaction::stop`]) stops it.
///
/// A transaction that changed metadata and is dropped instead of stopped
/// (its operation failed midway) aborts the journal: a half-done change
/// must never commit. The filesystem turns read-only.
pub(crate) struct Transaction<'a> {
    h: NonNull<ffi::jbd2_journal_handle>,
    sb: &'a SuperBlock,
    dirty: bool,
}

impl<'a> Transaction<'a> {
    /// Starts a transaction reserving `credits` metadata blocks.
    pub(crate) fn start(
        journal: &Journal,
        sb: &'a SuperBlock,
        credits: u32,
    ) -> Result<Transaction<'a>> {
        if super::taskmark::bump() {
            // A transaction here can deadlock the filesystem against memory
            // reclaim: swap IO must never get here. Refuse loudly (the
            // mark's counter, the swapfile's, counted it).
            kernel::warn_on!(true);
            return Err(super::errno::deadlock());
        }
        if sb.read_only() {
            return Err(EROFS);
        }
        Self::start_remount(journal, sb, credits)
    }

    /// Starts a transaction even though the superblock is still read-only:
    /// for the remount that makes it writable, which must mark it so.
    pub(crate) fn start_remount(
        journal: &Journal,
        sb: &'a SuperBlock,
        credits: u32,
    ) -> Result<Transaction<'a>> {
        let credits = credits.max(1);
        if credits > journal.max_credits() {
            return Err(ENOSPC);
        }
        let mut err = 0;
        // Blocks freed from metadata are revoked: at most one per credit.
        // SAFETY: the journal is open; `credits` fits in an int (checked
        // against max_credits above).
        let h = unsafe {
            ffi::swapfs_c_handle_start(journal.as_ptr(), credits as i32, credits as i32, &mut err)
        };
        match NonNull::new(h) {
            // INVARIANT: a handle was started.
            Some(h) => Ok(Transaction {
                h,
                sb,
                dirty: false,
            }),
            None => Err(Error::from_errno(err)),
        }
    }

    fn as_ptr(&self) -> *mut ffi::jbd2_journal_handle {
        self.h.as_ptr()
    }

    /// The superblock the transaction belongs to.
    pub(crate) fn sb(&self) -> &'a SuperBlock {
        self.sb
    }

    /// The transaction id (for fsync).
    pub(crate) fn tid(&self) -> u32 {
        // SAFETY: the handle is open.
        unsafe { ffi::swapfs_c_handle_tid(self.as_ptr()) }
    }

    /// Modifies a metadata block inside the transaction: gets journal write
    /// access, runs `f` on the contents (under the buffer lock), and marks
    /// the buffer dirty in the journal.
    pub(crate) fn modify<R>(&mut self, buf: &Buffer, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        // SAFETY: the handle is open; the buffer is referenced.
        super::check(unsafe {
            ffi::swapfs_c_handle_get_write_access(self.as_ptr(), buf.as_ptr())
        })?;
        self.dirty = true;
        let r = buf.with_mut(f);
        // SAFETY: as above; write access was granted.
        super::check(unsafe { ffi::swapfs_c_handle_dirty_metadata(self.as_ptr(), buf.as_ptr()) })?;
        Ok(r)
    }

    /// As [`Transaction::modify`], keeping the block's last committed
    /// contents for [`Buffer::with_committed`] until this transaction
    /// commits (jbd2's undo access, as ext3 and ocfs2 use for their
    /// allocation bitmaps): for block bitmaps, whose bits freed here must
    /// not be allocated again before the free is on disk. `f` gets the
    /// contents and that copy, in which it sets the bits it frees (a block
    /// allocated by a transaction still committing is clear in the copy,
    /// which predates it; as ext3's `ext3_free_blocks_sb`). `f` must not
    /// sleep.
    pub(crate) fn modify_undo<R>(
        &mut self,
        buf: &Buffer,
        f: impl FnOnce(&mut [u8], &mut [u8]) -> R,
    ) -> Result<R> {
        // SAFETY: the handle is open; the buffer is referenced.
        super::check(unsafe { ffi::swapfs_c_handle_get_undo_access(self.as_ptr(), buf.as_ptr()) })?;
        self.dirty = true;
        let r = buf.with_mut(|cur| {
            // SAFETY: the buffer is referenced and locked (`with_mut`).
            let p = unsafe { ffi::swapfs_c_committed_begin(buf.as_ptr()) };
            if p.is_null() {
                // Undo access always leaves a copy; without one there is
                // nothing older to protect.
                let mut none = [0u8; 0];
                return f(cur, &mut none);
            }
            // jbd2's copy is one block, as long as `cur`; the buffer lock
            // orders our writes against every other user.
            // SAFETY: the state lock, held until `committed_end`, keeps it.
            let committed = unsafe { core::slice::from_raw_parts_mut(p, cur.len()) };
            let r = f(cur, committed);
            // SAFETY: `committed_begin` returned non-NULL: the lock is held.
            unsafe { ffi::swapfs_c_committed_end(buf.as_ptr()) };
            r
        });
        // SAFETY: as above; write access was granted.
        super::check(unsafe { ffi::swapfs_c_handle_dirty_metadata(self.as_ptr(), buf.as_ptr()) })?;
        Ok(r)
    }

    /// Starts using block `blk` as new metadata: a zeroed buffer that the
    /// journal knows is new. Initialise it with [`Transaction::modify`].
    pub(crate) fn create(&mut self, blk: u64) -> Result<Buffer> {
        let mut err = 0;
        self.dirty = true;
        // SAFETY: the handle is open; `sb` is live.
        let bh = unsafe {
            ffi::swapfs_c_handle_new_block(self.as_ptr(), self.sb.as_ptr(), blk, &mut err)
        };
        let bh = NonNull::new(bh).ok_or_else(|| Error::from_errno(err))?;
        // SAFETY: the helper returns a referenced, zeroed, uptodate buffer
        // of block `blk`.
        Ok(unsafe { Buffer::from_raw(self.sb, bh, blk) })
    }

    /// Block `blk` stops being metadata: revoke it so that journal replay
    /// never writes an old copy over its next use.
    pub(crate) fn revoke(&mut self, blk: u64) -> Result {
        self.dirty = true;
        // SAFETY: the handle is open; `sb` is live.
        super::check(unsafe { ffi::swapfs_c_handle_revoke(self.as_ptr(), self.sb.as_ptr(), blk) })
    }

    /// Stops the handle, returning the journal's verdict.
    pub(crate) fn stop(self) -> Result {
        let h = self.as_ptr();
        core::mem::forget(self);
        // SAFETY: the handle is open and stopped only here.
        super::check(unsafe { ffi::swapfs_c_handle_stop(h) })
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.dirty {
            pr_crit!(
                "{}: an operation failed after changing metadata: aborting the journal\n",
                self.sb.id()
            );
            // SAFETY: the handle is open.
            unsafe { ffi::swapfs_c_handle_abort_journal(self.as_ptr(), EIO.to_errno()) };
            self.sb.force_read_only();
        }
        // SAFETY: the handle is open (type invariant); `stop` forgets self.
        unsafe { ffi::swapfs_c_handle_stop(self.as_ptr()) };
    }
}
