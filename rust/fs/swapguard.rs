// SPDX-License-Identifier: GPL-2.0

//! What a file may not do while it is swap: every rule, in one place.
//!
//! From the end of its activation (its extent table pinned, before mm sets
//! `S_SWAPFILE`) until swapoff, the file's blocks belong to swap: mm writes
//! them with its own IO, straight from the pinned table. Nothing may change
//! the file's data through the filesystem, move or share its blocks, change
//! its size or its name; its page cache must not reach the disk either.
//! The VFS refuses some of these itself (`generic_write_checks`,
//! `may_delete`); swapfs refuses all of them here, also for the window
//! before `S_SWAPFILE`, where only a page fault (which takes neither
//! `i_rwsem` nor, here, anything but the invalidate lock) can reach the
//! file.

use kernel::pr_warn_once;
use kernel::prelude::*;

use crate::sys::swapio;
use crate::sys::vfs::Inode;

/// What is about to be done to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    /// Writing its data (a write mapping, zeroing).
    Write,
    /// Changing its size.
    Resize,
    /// Allocating or freeing its blocks (`fallocate`).
    Space,
    /// Sharing or unsharing its blocks (reflink, dedupe, unshare).
    Share,
    /// Unlinking or renaming it, or replacing it by a rename.
    Name,
    /// Writing back its dirty page cache.
    Writeback,
    /// Making a page of a mapping writable (`page_mkwrite`).
    WriteFault,
    /// Mapping it shared and writable.
    MapSharedWrite,
    /// Mapping it any other way.
    Map,
}

/// What the caller does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Goes on.
    Go,
    /// Has nothing to do: succeeds without acting (writeback of a swapfile,
    /// whose blocks are swap's).
    Skip,
}

/// Whether `inode` is swap: active (`S_SWAPFILE`), or activated with its
/// table pinned and `S_SWAPFILE` not yet set.
pub(crate) fn is_swap(inode: &Inode) -> bool {
    inode.is_swapfile() || swapio::is_pinned(inode)
}

/// The rule for `what` on `inode`: the errno of a refusal, as the VFS and
/// the other filesystems give it (`ETXTBSY` for the data, blocks and
/// mappings of an active swapfile, `EPERM` for its name).
pub(crate) fn check(inode: &Inode, what: Use) -> Result<Verdict> {
    if !is_swap(inode) {
        return Ok(Verdict::Go);
    }
    match what {
        Use::Map => Ok(Verdict::Go),
        Use::Writeback => {
            pr_warn_once!(
                "{}: not writing back file data of an active swapfile\n",
                inode.sb().id()
            );
            Ok(Verdict::Skip)
        }
        Use::Name => Err(EPERM),
        Use::Write
        | Use::Resize
        | Use::Space
        | Use::Share
        | Use::WriteFault
        | Use::MapSharedWrite => Err(ETXTBSY),
    }
}

/// [`check`] where the caller has no [`Verdict::Skip`] to honour.
pub(crate) fn refuse(inode: &Inode, what: Use) -> Result {
    check(inode, what).map(|_| ())
}
