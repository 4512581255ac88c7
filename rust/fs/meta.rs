// SPDX-License-Identifier: GPL-2.0

//! Extent-tree node storage on buffer heads: the kernel's implementation of
//! the shared tree code's [`NodeStore`] (reads) and [`NodeStoreMut`]
//! (changes, inside a transaction).

use kernel::prelude::*;

use super::{alloc, FsError, FsInfo, FsResult, Mount};
use crate::common::extent::{self, NodeStore, NodeStoreMut};
use crate::common::format::{Extent, Geometry};
use crate::sys::buffer::Buffer;
use crate::sys::journal::Transaction;
use crate::sys::vfs::MapWrite;

/// Read-only access to tree nodes.
pub(crate) struct Reader<'a> {
    pub(crate) m: Mount<'a>,
}

impl NodeStore for Reader<'_> {
    type Error = FsError;

    fn geometry(&self) -> &Geometry {
        &self.m.fs.geo
    }

    fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, FsError> {
        Ok(Buffer::read(self.m.sb, blk)?.with(f))
    }

    fn read_checked<R, E>(
        &mut self,
        blk: u64,
        f: impl FnOnce(&[u8], bool) -> Result<R, E>,
    ) -> Result<Result<R, E>, FsError> {
        Ok(Buffer::read(self.m.sb, blk)?.checked(f))
    }
}

/// Tree nodes changed inside a transaction. Counts the node blocks it
/// allocates and frees, for the inode's `blocks`.
pub(crate) struct Writer<'f, 't, 's> {
    pub(crate) fs: &'f FsInfo,
    pub(crate) tx: &'t mut Transaction<'s>,
    /// Node blocks allocated minus node blocks freed.
    pub(crate) node_delta: i64,
}

impl<'f, 't, 's> Writer<'f, 't, 's> {
    /// A writer for one tree operation.
    pub(crate) fn new(fs: &'f FsInfo, tx: &'t mut Transaction<'s>) -> Self {
        Writer {
            fs,
            tx,
            node_delta: 0,
        }
    }
}

impl NodeStore for Writer<'_, '_, '_> {
    type Error = FsError;

    fn geometry(&self) -> &Geometry {
        &self.fs.geo
    }

    fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, FsError> {
        Ok(Buffer::read(self.tx.sb(), blk)?.with(f))
    }

    fn read_checked<R, E>(
        &mut self,
        blk: u64,
        f: impl FnOnce(&[u8], bool) -> Result<R, E>,
    ) -> Result<Result<R, E>, FsError> {
        Ok(Buffer::read(self.tx.sb(), blk)?.checked(f))
    }
}

impl NodeStoreMut for Writer<'_, '_, '_> {
    fn modify<R>(&mut self, blk: u64, f: impl FnOnce(&mut [u8]) -> R) -> Result<R, FsError> {
        let buf = Buffer::read(self.tx.sb(), blk)?;
        Ok(self.tx.modify(&buf, f)?)
    }

    fn alloc(&mut self, goal: u64) -> Result<u64, FsError> {
        let (blk, _) = alloc::alloc_blocks(self.tx, self.fs, goal, 1)?;
        // A fresh, zeroed buffer that the journal knows is new.
        drop(self.tx.create(blk)?);
        self.node_delta += 1;
        Ok(blk)
    }

    fn free(&mut self, blk: u64) -> Result<(), FsError> {
        // Revoke (and forget the buffer) before the block can be found
        // free, as ext4_free_blocks() does.
        self.tx.revoke(blk)?;
        alloc::put_blocks(self.tx, self.fs, blk, 1)?;
        self.node_delta -= 1;
        Ok(())
    }
}

/// Credits for one tree operation: every node it may modify, allocate or
/// free (revoke), at the deepest possible tree, and the bitmap and
/// reference-count blocks of the nodes it allocates (at most one per level
/// and one more to grow) or frees.
pub(crate) fn tree_credits(_fs: &FsInfo) -> u32 {
    use crate::common::format::MAX_DEPTH;
    let touched = extent::max_touched_blocks(MAX_DEPTH);
    let freed = extent::max_freed_blocks(MAX_DEPTH);
    let allocated = u32::from(MAX_DEPTH) + 1;
    touched + freed + 2 * (allocated + freed)
}

/// Credits to drop the references of the pieces one [`set_range`] call
/// replaces, on top of `alloc::run_credits` of their total length: each
/// piece may start and end in its own bitmap and reference-count blocks.
pub(crate) const REPLACED_CREDITS: u32 = 4 * extent::MAX_REPLACED as u32;

/// One bounded step of a shift (collapse or insert range) of inode
/// `owner`'s extents. Returns whether the shift is complete and the change
/// in node blocks.
pub(crate) fn shift_step(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    map: &mut MapWrite<'_>,
    owner: u64,
    sh: &mut extent::Shift,
) -> FsResult<(bool, i64)> {
    let mut w = Writer::new(fs, tx);
    let root = &mut map.data_mut().root;
    let done = extent::shift(&mut w, root, owner, sh)?;
    Ok((done, w.node_delta))
}

/// The pieces of the old mapping a [`set_range`] call replaced (at most
/// [`extent::MAX_REPLACED`]).
pub(crate) struct Replaced {
    pieces: [Option<Extent>; extent::MAX_REPLACED],
    n: usize,
}

impl Replaced {
    /// The pieces, in logical order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Extent> {
        self.pieces.iter().take(self.n).flatten()
    }

    /// Whether nothing was replaced.
    pub(crate) fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// Maps `[lblk, lblk + len)` of inode `owner` to `new` (or a hole) in one
/// bounded step of the shared tree code. Returns how many blocks it handled
/// (a prefix of the range; callers go on in a new transaction), the change
/// in node blocks, and the replaced pieces of the old mapping, whose
/// references the caller drops (see `extent::set_range`).
pub(crate) fn set_range(
    tx: &mut Transaction<'_>,
    fs: &FsInfo,
    map: &mut MapWrite<'_>,
    owner: u64,
    lblk: u64,
    len: u64,
    new: Option<(u64, u32)>,
) -> FsResult<(u64, i64, Replaced)> {
    let mut replaced = Replaced {
        pieces: [None; extent::MAX_REPLACED],
        n: 0,
    };
    let mut w = Writer::new(fs, tx);
    let root = &mut map.data_mut().root;
    let done = extent::set_range(&mut w, root, owner, lblk, len, new, |e| {
        let slot = replaced
            .pieces
            .get_mut(replaced.n)
            .ok_or(FsError::Sys(EIO))?;
        *slot = Some(e);
        replaced.n += 1;
        Ok(())
    })?;
    Ok((done, w.node_delta, replaced))
}
