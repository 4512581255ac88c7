// SPDX-License-Identifier: GPL-2.0

//! The kernel objects of swap activation and swap IO: the swap device being
//! activated, the kiocb and bvec iterator of a swap IO request, and the
//! request that submits bios for it.
//!
//! The IO half of this module allocates only from mempools (requests) and
//! the module's bioset (bios), with `GFP_NOIO`, and never calls into the
//! filesystem.

use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::Opaque;

use super::ffi;
use super::vfs::{Inode, SuperBlock};

/// The swap device being activated (`struct swap_info_struct`).
#[repr(transparent)]
pub(crate) struct SwapInfo(Opaque<ffi::swap_info_struct>);

impl SwapInfo {
    /// # Safety
    ///
    /// `ptr` is the swap device of the running `swap_activate` call.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::swap_info_struct) -> &'a SwapInfo {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// Registers pages `[start_page, start_page + nr_pages)` as living at
    /// device page `start_block` (`add_swap_extent`). Returns the number of
    /// new extents (0 if mm merged it with the previous one).
    pub(crate) fn add_extent(
        &self,
        start_page: u64,
        nr_pages: u64,
        start_block: u64,
    ) -> Result<u32> {
        // SAFETY: the swap device is being activated by this task; runs are
        // added in ascending page order.
        let r = unsafe {
            ffi::swapfs_c_add_swap_extent(self.0.get(), start_page, nr_pages, start_block)
        };
        super::check(r.min(0))?;
        Ok(r as u32)
    }

    /// Sets `sis->max` and `sis->pages`.
    pub(crate) fn set_pages(&self, max: u32, pages: u32) {
        // SAFETY: as above.
        unsafe { ffi::swapfs_c_sis_set_pages(self.0.get(), max, pages) }
    }
}

/// An open file (the swapfile).
#[repr(transparent)]
pub(crate) struct File(Opaque<ffi::file>);

impl File {
    /// # Safety
    ///
    /// `ptr` is a live file for the returned lifetime.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::file) -> &'a File {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// The file's inode.
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: an open file pins its inode.
        unsafe { Inode::from_raw(ffi::swapfs_c_file_inode(self.0.get())) }
    }

    /// The file's path, for messages (truncated to 255 bytes).
    pub(crate) fn path(&self) -> Path {
        let mut p = Path {
            buf: [0; 256],
            len: 0,
        };
        // SAFETY: the file is live; the buffer is 256 bytes.
        let n = unsafe { ffi::swapfs_c_file_path(self.0.get(), p.buf.as_mut_ptr().cast(), 256) };
        p.len = usize::try_from(n).unwrap_or(0).min(255);
        p
    }

    /// `file_modified`: drops set-id bits and privileges, updates the
    /// times, as a write through the file does.
    pub(crate) fn modified(&self) -> Result {
        // SAFETY: the file is live; the caller holds the inode's lock.
        super::check(unsafe { ffi::swapfs_c_file_modified(self.0.get()) })
    }

    /// Whether writes through the file are synchronous (`O_DSYNC`,
    /// `O_SYNC`, or a sync inode or mount).
    pub(crate) fn dsync(&self) -> bool {
        // SAFETY: the file is live.
        unsafe { ffi::swapfs_c_file_dsync(self.0.get()) }
    }
}

/// A path copied out for messages.
pub(crate) struct Path {
    buf: [u8; 256],
    len: usize,
}

impl Path {
    /// The path, or `?` if it is not valid UTF-8.
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("?")
    }
}

/// Writes back an inode's dirty pages and waits, including pending
/// conversions of unwritten extents.
pub(crate) fn flush(inode: &Inode) -> Result {
    // SAFETY: the inode is live.
    super::check(unsafe { ffi::swapfs_c_inode_flush(inode.as_ptr()) })
}

/// `PAGE_SIZE`.
pub(crate) fn page_size() -> u32 {
    // SAFETY: no preconditions.
    unsafe { ffi::swapfs_c_page_size() }
}

/// The pinned swap state stored in an inode, as a raw pointer: the owner
/// (`crate::swap`) decides what it points to.
pub(crate) fn inode_swap(inode: &Inode) -> *mut c_void {
    // SAFETY: the inode is live.
    unsafe { ffi::swapfs_c_inode_swap(inode.as_ptr()) }
}

/// Whether an inode holds pinned swap state.
pub(crate) fn is_pinned(inode: &Inode) -> bool {
    !inode_swap(inode).is_null()
}

/// Stores the pinned swap state pointer in an inode.
pub(crate) fn set_inode_swap(inode: &Inode, p: *mut c_void) {
    // SAFETY: the inode is live.
    unsafe { ffi::swapfs_c_inode_set_swap(inode.as_ptr(), p) }
}

/// The kiocb of a swap IO request.
#[repr(transparent)]
pub(crate) struct Kiocb(Opaque<ffi::kiocb>);

impl Kiocb {
    /// # Safety
    ///
    /// `ptr` is the kiocb of the running swap IO call; it stays valid until
    /// it is completed.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::kiocb) -> &'a Kiocb {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// The position in the swapfile (`swap slot << PAGE_SHIFT`).
    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: the kiocb is live.
        unsafe { ffi::swapfs_c_kiocb_pos(self.0.get()) }
    }

    /// The swapfile's inode.
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: an active swapfile's file and inode outlive its IO.
        unsafe { Inode::from_raw(ffi::swapfs_c_kiocb_inode(self.0.get())) }
    }
}

/// The bvec iterator of a swap IO request.
#[repr(transparent)]
pub(crate) struct IovIter(Opaque<ffi::iov_iter>);

impl IovIter {
    /// # Safety
    ///
    /// `ptr` is the iterator of the running swap IO call, used by no one
    /// else during it.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::iov_iter) -> &'a mut IovIter {
        // SAFETY: transparent wrapper; exclusivity is the caller's promise.
        unsafe { &mut *ptr.cast() }
    }

    /// Bytes left.
    pub(crate) fn count(&self) -> u64 {
        // SAFETY: the iterator is live.
        unsafe { ffi::swapfs_c_iter_count(self.0.get()) }
    }
}

/// A swap IO request being submitted: the kiocb completes exactly once,
/// when the request's last bio has ended and the request is finished.
///
/// # Invariants
///
/// `req` came from `swapfs_c_swap_req_start` and is finished exactly once
/// (by [`SwapRequest::finish`] or `Drop`).
pub(crate) struct SwapRequest<'a> {
    req: NonNull<ffi::swapfs_swap_req>,
    sb: &'a SuperBlock,
    err: Option<Error>,
}

impl<'a> SwapRequest<'a> {
    /// Starts a request for `len` bytes of `iocb`, accounted to `swap` on
    /// completion. Waits for a request from the mempool if it is empty.
    pub(crate) fn start(
        iocb: &Kiocb,
        sb: &'a SuperBlock,
        swap: *const c_void,
        len: u64,
        write: bool,
    ) -> Self {
        let (iocb, swap) = (iocb.0.get(), swap.cast_mut());
        // SAFETY: the kiocb is live; `swap` outlives the request (swapoff
        // waits for swap IO before deactivating).
        let req = unsafe { ffi::swapfs_c_swap_req_start(iocb, swap, len, write) };
        // SAFETY: mempool_alloc with GFP_NOIO never returns NULL.
        let req = unsafe { NonNull::new_unchecked(req) };
        SwapRequest { req, sb, err: None }
    }

    /// Submits a bio for the next `bytes` of `iter` at device `sector`.
    pub(crate) fn add_bio(&mut self, iter: &mut IovIter, sector: u64, bytes: u64) -> Result {
        // SAFETY: the request is open; the iterator is the request's own.
        let r = unsafe {
            ffi::swapfs_c_swap_req_add_bio(
                self.req.as_ptr(),
                self.sb.as_ptr(),
                sector,
                iter.0.get(),
                bytes,
            )
        };
        let r = super::check(r);
        if let Err(e) = r {
            self.err = Some(e);
        }
        r
    }

    /// Fails the request (the kiocb completes with `e`).
    pub(crate) fn fail(&mut self, e: Error) {
        self.err = Some(e);
    }

    /// Drops the submitter's reference: the kiocb completes when the last
    /// bio ends (or now, if none was submitted).
    pub(crate) fn finish(self) {
        drop(self)
    }
}

impl Drop for SwapRequest<'_> {
    fn drop(&mut self) {
        let err = self.err.map_or(0, |e| e.to_errno());
        // SAFETY: finished exactly once (type invariant).
        unsafe { ffi::swapfs_c_swap_req_finish(self.req.as_ptr(), err) }
    }
}
