// SPDX-License-Identifier: GPL-2.0

//! Swap IO: one request (a kiocb over a bvec iterator, at the swap slot's
//! file position) becomes one asynchronous `REQ_SWAP` bio per device
//! segment of the pinned table, and completes exactly once when the last
//! bio ends.
//!
//! This module imports only the pinned table (`common::swapmap`) and the
//! bio plumbing (`sys::swapio`): no filesystem code, no journal, no block
//! mapping. It allocates only from the request mempool and the module's
//! bioset, with `GFP_NOIO`.

use core::sync::atomic::Ordering;
use kernel::pr_warn_once;
use kernel::prelude::*;

use super::SwapFile;
use crate::common::swapmap::SwapTable;
use crate::sys::swapio::{IovIter, Kiocb, SwapRequest};
use crate::sys::taskmark::Mark;
use crate::sys::vfs::SuperBlock;

/// Submits a swap read or write. `Ok` means queued: the kiocb completes
/// later (from the last bio's end). An `Err` means nothing was queued and
/// the caller completes the kiocb with it.
pub(crate) fn submit(
    sf: &SwapFile,
    sb: &SuperBlock,
    iocb: &Kiocb,
    iter: &mut IovIter,
    write: bool,
) -> Result {
    // A transaction started from here on is refused and counted.
    let _mark = Mark::enter(&sf.stats.tx_from_swap_io).or_else(|| {
        sf.stats.unmarked_io.fetch_add(1, Ordering::Relaxed);
        pr_warn_once!("swap IO: more tasks at once than can be marked; counted in unmarked_io\n");
        None
    });
    let pos = u64::try_from(iocb.pos()).map_err(|_| EINVAL)?;
    let len = iter.count();
    let table = SwapTable::from_shape(&sf.runs, sf.shape).ok_or(EIO)?;
    let mut segments = table.segments(pos, len).ok_or(EIO)?;
    let mut req = SwapRequest::start(iocb, sb, core::ptr::from_ref(sf).cast(), len, write);
    for seg in segments.by_ref() {
        sf.stats.bios.fetch_add(1, Ordering::Relaxed);
        // A failure is recorded in the request: the bios already submitted
        // finish, then the kiocb completes once with the error.
        if req.add_bio(iter, seg.sector, seg.bytes).is_err() {
            req.finish();
            return Ok(());
        }
    }
    if segments.remaining() != 0 {
        // Only possible if the table were inconsistent, which activation
        // rules out; fail the request rather than lose data silently.
        pr_err!(
            "swap IO at {} for {} bytes left {} unmapped\n",
            pos,
            len,
            segments.remaining()
        );
        req.fail(EIO);
    }
    req.finish();
    Ok(())
}

/// A request completed: account it. Called from bio completion (any
/// context): only atomic counters.
pub(crate) fn done(sf: &SwapFile, bytes: u64, err: i32, write: bool) {
    let pages = bytes.checked_div(u64::from(sf.page_size)).unwrap_or(0);
    let s = &sf.stats;
    match (write, err != 0) {
        (true, false) => s.pages_out.fetch_add(pages, Ordering::Relaxed),
        (false, false) => s.pages_in.fetch_add(pages, Ordering::Relaxed),
        (true, true) => s.write_errors.fetch_add(1, Ordering::Relaxed),
        (false, true) => s.read_errors.fetch_add(1, Ordering::Relaxed),
    };
}
