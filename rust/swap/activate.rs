// SPDX-License-Identifier: GPL-2.0

//! `swap_activate`: flush, walk the extents once, check them with the
//! shared core (`common::swapmap`), register the device runs with mm and pin
//! them for the IO path. Every refusal is logged with its reason and the
//! offending file range.

use kernel::prelude::*;
use kernel::sync::Arc;

use super::{Stats, SwapFile};
use crate::common::extent::{self, Item};
use crate::common::format::Extent;
use crate::common::swapmap::{
    BuildError, FileExtent, Policy, Run, SwapMapBuilder, SwapParams, SwapTable,
};
use crate::fs::alloc::{self, RefcountCursor};
use crate::fs::meta::Reader;
use crate::fs::{reflink, FsError, FsInfo, FsResult, Mount};
use crate::sys::swapio::{self, File, SwapInfo};
use crate::sys::vfs::{Inode, SuperBlock};
use crate::sys::NoFs;

/// What activation returns to mm.
pub(crate) struct Activated {
    /// Extents added to mm's tree.
    pub(crate) nr_extents: u32,
    /// `*span`.
    pub(crate) span: u64,
    /// The pinned table, for the inode to hold until deactivation.
    pub(crate) file: Arc<SwapFile>,
}

/// Splits extent `e` into pieces whose blocks are all shared (reference
/// count above 1) or all private, and feeds them to `f` in order.
fn split_by_sharing(
    m: Mount<'_>,
    cursor: &mut RefcountCursor,
    e: &Extent,
    mut f: impl FnMut(FileExtent) -> FsResult,
) -> FsResult {
    let len = u64::from(e.len);
    alloc::sharing_runs(m, cursor, e.pblk, len, |start, n, shared| {
        let piece = Extent {
            lblk: e.lblk + (start - e.pblk),
            pblk: start,
            len: n as u32,
            flags: e.flags,
        };
        f(FileExtent::from_disk(&piece, shared))
    })
}

/// Feeds every extent of the file (split by sharing) to `builder`, with
/// `sink` receiving the runs.
fn feed<E>(
    m: Mount<'_>,
    inode: &Inode,
    root: &[u8; crate::common::format::INODE_ROOT_SIZE],
    params: &SwapParams,
    sink: &mut impl FnMut(Run) -> Result<(), E>,
) -> FsResult<core::result::Result<crate::common::swapmap::Summary, BuildError<E>>> {
    let mut builder = match SwapMapBuilder::new(params) {
        Ok(b) => b,
        Err(r) => return Ok(Err(BuildError::Refused(r))),
    };
    let mut refused: Option<BuildError<E>> = None;
    let mut r = Reader { m };
    let mut cursor = RefcountCursor::new();
    extent::walk(&mut r, root, inode.ino(), |item| {
        let Item::Extent(e) = item else {
            return Ok(());
        };
        if refused.is_some() {
            return Ok(());
        }
        split_by_sharing(m, &mut cursor, &e, |piece| {
            if refused.is_none() {
                if let Err(err) = builder.push(piece, sink) {
                    refused = Some(err);
                }
            }
            Ok(())
        })
    })?;
    if let Some(e) = refused {
        return Ok(Err(e));
    }
    Ok(builder.finish(sink))
}

/// Activates `inode` (opened as `file`) as swap on `sis`, whose header
/// declares `max` pages.
pub(crate) fn activate(
    m: Mount<'_>,
    inode: &Inode,
    file: &File,
    sis: &SwapInfo,
    max: u32,
) -> FsResult<Activated> {
    let path = file.path();
    let refuse = |why: &dyn kernel::fmt::Display| -> FsError {
        pr_err!("swapon {}: {}\n", path.as_str(), why);
        FsError::Sys(EINVAL)
    };
    // The walk must see allocated, on-disk state: flush dirty data and the
    // conversions of unwritten extents, then commit the journal.
    swapio::flush(inode)?;
    m.fs.journal.force_commit()?;

    let opts = *m.fs.opts.lock();
    if opts.swap_unshare {
        unshare(m, inode, path.as_str())?;
    }
    let page_size = swapio::page_size();
    let params = SwapParams {
        max_pages: u64::from(max),
        i_size: inode.size(),
        page_size,
        block_size: m.fs.geo.block_size() as u32,
        dev_first_block: m.fs.geo.data_start,
        dev_end_block: m.fs.geo.block_count,
        policy: Policy {
            allow_unwritten: !opts.swap_refuse_unwritten,
        },
    };
    // One walk checks the extents and collects the runs, under the map lock
    // (the extents stay still); the table grows as it goes, without
    // recursing into the filesystem for memory meanwhile.
    let map = inode.map_read();
    let root = map.data().root;
    let mut runs = KVVec::new();
    let summary = {
        let _nofs = NoFs::enter();
        feed(m, inode, &root, &params, &mut |run| {
            runs.push(run, GFP_KERNEL)
        })?
    };
    drop(map);
    let summary = match summary {
        Ok(s) => s,
        Err(BuildError::Refused(r)) => return Err(refuse(&Refused(r))),
        Err(BuildError::Sink(_)) => return Err(ENOMEM.into()),
    };
    // Pinned until swapoff: no spare capacity.
    runs.shrink_to(0, GFP_KERNEL)?;
    let count = runs.len();
    let shape = SwapTable::new(&runs, page_size).map_err(|_| EIO)?.shape();

    // Register the real device extents: swapon -d discard and hibernation
    // address these sectors.
    let mut nr_extents = 0u32;
    for run in runs.iter() {
        nr_extents += sis.add_extent(run.start_page, run.nr_pages, run.start_ppage(page_size))?;
    }
    let max = u32::try_from(summary.max).map_err(|_| EINVAL)?;
    let pages = u32::try_from(summary.pages).map_err(|_| EINVAL)?;
    sis.set_pages(max, pages);

    let mut name = [0u8; 64];
    let p = path.as_str().as_bytes();
    let n = p.len().min(63);
    name.get_mut(..n)
        .unwrap_or(&mut [])
        .copy_from_slice(p.get(..n).unwrap_or(&[]));
    let sf = Arc::new(
        SwapFile {
            runs,
            shape,
            page_size,
            ino: inode.ino(),
            path: name,
            pages: summary.pages,
            stats: Stats::default(),
        },
        GFP_KERNEL,
    )?;
    m.fs.swapfiles.lock().push(sf.clone(), GFP_KERNEL)?;
    pr_info!(
        "swapon {}: {} pages in {} runs, table {} bytes\n",
        path.as_str(),
        summary.pages,
        count,
        count * core::mem::size_of::<Run>()
    );
    Ok(Activated {
        nr_extents,
        span: summary.span,
        file: sf,
    })
}

/// `swap_unshare`: copies the shared blocks of the file to private ones
/// before the walk (in transactions, through the page cache, long before
/// any swap IO), so that the walk finds none. swapon holds `i_rwsem` and
/// the C side the invalidate lock; `S_SWAPFILE` is not set yet.
fn unshare(m: Mount<'_>, inode: &Inode, path: &str) -> FsResult {
    let size = inode.size();
    let bs = m.fs.geo.block_size() as u64;
    if size == 0 || !reflink::has_shared(m, inode, 0, size.div_ceil(bs))? {
        return Ok(());
    }
    pr_info!(
        "swapon {}: copying shared extents to private blocks (swap_unshare)\n",
        path
    );
    reflink::unshare(m, inode, 0, size)?;
    // The walk must see the result on disk.
    swapio::flush(inode)?;
    m.fs.journal.force_commit()?;
    Ok(())
}

/// A refusal, printed as the shared core says it.
struct Refused(crate::common::swapmap::Refusal);

impl kernel::fmt::Display for Refused {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

/// `swap_deactivate`: unlists the swapfile, whose table goes with the
/// last reference.
pub(crate) fn deactivate(sb: &SuperBlock, sf: Arc<SwapFile>) {
    if let Some(fs) = FsInfo::get(sb) {
        let me = Arc::as_ptr(&sf);
        fs.swapfiles
            .lock()
            .retain(|x| !core::ptr::addr_eq(Arc::as_ptr(x), me));
    }
}
