// SPDX-License-Identifier: GPL-2.0

//! Swap: activation ([`activate`]) walks a swapfile's extents once, checks
//! them, registers the device runs with mm and pins them in a table; IO
//! ([`io`]) moves pages between memory and the device through that table.
//!
//! The split is the point: `io` imports neither the filesystem nor the
//! journal, so the swap path cannot map blocks through the filesystem,
//! allocate, or start a transaction (a static check in `make check` keeps it
//! so, and the journal refuses and counts any start from swap IO context).

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;

use crate::common::swapmap::{Run, TableShape};

pub(crate) mod activate;
pub(crate) mod io;

/// Counters of one active swapfile.
#[derive(Default)]
pub(crate) struct Stats {
    /// Pages written through the hook.
    pub(crate) pages_out: AtomicU64,
    /// Pages read through the hook.
    pub(crate) pages_in: AtomicU64,
    /// Requests that failed (the kiocb completed with an error).
    pub(crate) write_errors: AtomicU64,
    /// Read requests that failed.
    pub(crate) read_errors: AtomicU64,
    /// Bios submitted.
    pub(crate) bios: AtomicU64,
    /// Transaction starts attempted from this swapfile's IO path (refused;
    /// must stay 0).
    pub(crate) tx_from_swap_io: AtomicU64,
    /// IO requests whose task could not be marked (more tasks in swap IO
    /// at once than `sys::taskmark` has slots): for them a transaction
    /// start would go unseen. Expected 0.
    pub(crate) unmarked_io: AtomicU64,
}

/// An active swapfile: the pinned table and its counters.
///
/// Created by activation, referenced by the inode (for the IO path) and by
/// the mount's list (for debugfs), dropped at deactivation.
pub(crate) struct SwapFile {
    /// The runs, sorted by swap page, checked at activation.
    runs: KVVec<Run>,
    /// What the check established (rebuilds the table in O(1)).
    shape: TableShape,
    /// `PAGE_SIZE`.
    page_size: u32,
    /// Inode number, for debugfs.
    ino: u64,
    /// Path at swapon, for debugfs (NUL-padded).
    path: [u8; 64],
    /// Usable swap pages.
    pages: u64,
    /// Counters.
    pub(crate) stats: Stats,
}

impl SwapFile {
    /// Bytes pinned for the table.
    pub(crate) fn table_bytes(&self) -> usize {
        self.runs.capacity() * core::mem::size_of::<Run>()
    }

    /// Writes one line about this swapfile.
    fn line(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let len = self
            .path
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.path.len());
        let path = core::str::from_utf8(self.path.get(..len).unwrap_or(&[])).unwrap_or("?");
        let s = &self.stats;
        writeln!(
            out,
            "{} ino={} runs={} pages={} table_bytes={} pages_out={} pages_in={} bios={} write_errors={} read_errors={} tx_from_swap_io={} unmarked_io={}",
            path,
            self.ino,
            self.runs.len(),
            self.pages,
            self.table_bytes(),
            s.pages_out.load(Ordering::Relaxed),
            s.pages_in.load(Ordering::Relaxed),
            s.bios.load(Ordering::Relaxed),
            s.write_errors.load(Ordering::Relaxed),
            s.read_errors.load(Ordering::Relaxed),
            s.tx_from_swap_io.load(Ordering::Relaxed),
            s.unmarked_io.load(Ordering::Relaxed),
        )
    }
}

impl crate::fs::Listed for SwapFile {
    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        self.line(out)
    }
}
