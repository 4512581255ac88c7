// SPDX-License-Identifier: GPL-2.0

//! The filesystem: safe Rust on top of `crate::sys`.
//!
//! Lock order, outermost first: the VFS's `i_rwsem` (and the mapping's
//! invalidate lock), then a jbd2 handle ([`Transaction::start`]), then an
//! inode's map lock, then [`FsInfo::alloc`], then [`FsInfo::orphans`]. A
//! handle is never started with a map lock or an `FsInfo` mutex held:
//! jbd2 may wait for the running transaction to commit, which waits for
//! every open handle to stop.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

use crate::common::extent::TreeError;
use crate::common::format::{self, FormatError, Geometry, Superblock};
use crate::sys::buffer::Buffer;
use crate::sys::journal::{Journal, Transaction};
use crate::sys::vfs::SuperBlock;
use crate::sys::{errno, MountOpts};

pub(crate) mod alloc;
pub(crate) mod dir;
pub(crate) mod falloc;
pub(crate) mod file;
pub(crate) mod inode;
pub(crate) mod meta;
pub(crate) mod namei;
pub(crate) mod options;
pub(crate) mod orphan;
pub(crate) mod reflink;
pub(crate) mod swapguard;

/// Something a mount lists in its debugfs directory (an active swapfile:
/// `crate::swap` implements it, so that the filesystem knows no more of
/// swap than this).
pub(crate) trait Listed: Send + Sync {
    /// Writes its line.
    fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result;
}

/// An error inside the filesystem: a kernel error, or corruption found in
/// on-disk data (reported with its details, then returned as `EUCLEAN`).
#[derive(Debug)]
pub(crate) enum FsError {
    /// An errno from the kernel or a refusal.
    Sys(Error),
    /// Corrupt metadata.
    Corrupt(FormatError),
}

impl From<Error> for FsError {
    fn from(e: Error) -> Self {
        FsError::Sys(e)
    }
}

impl From<FormatError> for FsError {
    fn from(e: FormatError) -> Self {
        FsError::Corrupt(e)
    }
}

impl From<kernel::alloc::AllocError> for FsError {
    fn from(_: kernel::alloc::AllocError) -> Self {
        FsError::Sys(ENOMEM)
    }
}

impl From<TreeError> for FsError {
    fn from(e: TreeError) -> Self {
        FsError::Sys(match e {
            TreeError::OutOfRange { .. } => EFBIG,
            TreeError::TooDeep => ENOSPC,
            TreeError::NotAHole { .. } => EINVAL,
            TreeError::BadMapping { .. } | TreeError::BadAlloc { .. } => EIO,
        })
    }
}

/// Result of filesystem operations.
pub(crate) type FsResult<T = ()> = core::result::Result<T, FsError>;

// The kernel's printing macros use their own `Display`; the shared core only
// knows `core::fmt::Display`.
impl kernel::fmt::Display for FormatError {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// Free-space state, under [`FsInfo::alloc`].
pub(crate) struct AllocState {
    /// Free data blocks.
    pub(crate) free_blocks: u64,
    /// Free inodes.
    pub(crate) free_inodes: u64,
    /// Where the next block search starts.
    pub(crate) block_hint: u64,
    /// Where the next inode search starts.
    pub(crate) inode_hint: u64,
    /// Blocks staged for copy-on-write (see `common::cow`): free on disk,
    /// reserved here, counted out of `free_blocks`.
    pub(crate) staged: KVec<crate::common::cow::Staged>,
    /// Blocks freed by transactions that have not committed yet, per
    /// transaction id: counted in `free_blocks` (statfs shows them free)
    /// but not allocatable before their transaction commits (see
    /// `alloc::allocatable`).
    pub(crate) busy: [Option<(u32, u64)>; 4],
    /// Where those blocks are: the allocator does not hand them out
    /// before their transaction commits.
    pub(crate) busy_runs: crate::common::busy::Busy,
}

/// Per-mount state (`s_fs_info`).
#[pin_data]
pub(crate) struct FsInfo {
    /// This mount's debugfs directory. First, so that it is dropped first:
    /// removing it waits for its readers, which use the rest.
    pub(crate) debugfs: crate::sys::vfs::DebugfsDir,
    /// Where everything is.
    pub(crate) geo: Geometry,
    /// The journal.
    pub(crate) journal: Journal,
    /// Block 0: the superblock, modified through transactions.
    pub(crate) sb_buf: Buffer,
    /// The filesystem's UUID.
    pub(crate) uuid: [u8; 16],
    /// Mount options (changed by remount).
    #[pin]
    pub(crate) opts: Mutex<MountOpts>,
    /// Allocation state.
    #[pin]
    pub(crate) alloc: Mutex<AllocState>,
    /// Serialises changes to the orphan list and to the superblock buffer.
    #[pin]
    pub(crate) orphans: Mutex<()>,
    /// Active swapfiles (for debugfs), as the swap side describes them.
    #[pin]
    pub(crate) swapfiles: Mutex<KVec<Arc<dyn Listed>>>,
    /// Shut down (FS_IOC_SHUTDOWN, or the device went away): every
    /// operation fails with `EIO`, nothing more reaches the journal.
    pub(crate) shut_down: AtomicBool,
}

/// A mounted swapfs: the VFS superblock and the filesystem's state, which
/// the operations on it take together.
#[derive(Clone, Copy)]
pub(crate) struct Mount<'a> {
    /// The VFS superblock.
    pub(crate) sb: &'a SuperBlock,
    /// Its state (`s_fs_info`).
    pub(crate) fs: &'a FsInfo,
}

impl<'a> Mount<'a> {
    /// The mounted swapfs `sb` is; `EINVAL` if it has no state (yet: during
    /// fill_super, before it is set up).
    pub(crate) fn of(sb: &'a SuperBlock) -> Result<Mount<'a>> {
        let fs = FsInfo::get(sb).ok_or(EINVAL)?;
        Ok(Mount { sb, fs })
    }

    /// Starts a transaction on this filesystem. If the journal was aborted
    /// (a metadata write failed), the filesystem turns read-only.
    pub(crate) fn start(self, credits: u32) -> Result<Transaction<'a>> {
        let Mount { sb, fs } = self;
        if fs.is_shut_down() {
            return Err(EIO);
        }
        let r = Transaction::start(&fs.journal, sb, credits);
        if r.is_err() && fs.journal.errno() != 0 && !sb.read_only() {
            pr_crit!(
                "{}: the journal was aborted (error {}): read-only\n",
                sb.id(),
                fs.journal.errno()
            );
            sb.force_read_only();
        }
        r
    }

    /// Handles a detected error as the `errors=` option says: by default
    /// the journal is aborted and the filesystem turns read-only, so that
    /// nothing is built on top of corrupt metadata.
    pub(crate) fn error(self) {
        let Mount { sb, fs } = self;
        let mode = fs.opts.lock().errors;
        if mode == crate::sys::ffi::swapfs_errors_mode_SWAPFS_ERRORS_CONTINUE {
            return;
        }
        if !sb.read_only() {
            pr_crit!("{}: remounting read-only\n", sb.id());
            fs.journal.abort(errno::corrupted());
            sb.force_read_only();
        }
    }
}

/// Converts an internal error to the errno returned to the VFS, reporting
/// corruption (once per call) with its context.
pub(crate) fn errno(sb: &SuperBlock, what: &str, e: FsError) -> Error {
    match e {
        FsError::Sys(e) => e,
        FsError::Corrupt(c) => {
            pr_err!("{}: {}: {}\n", sb.id(), what, c);
            if let Ok(m) = Mount::of(sb) {
                m.error();
            }
            errno::corrupted()
        }
    }
}

impl FsInfo {
    /// The state of a mounted swapfs superblock (None during fill_super,
    /// before it is set up).
    pub(crate) fn get(sb: &SuperBlock) -> Option<&FsInfo> {
        sb.info::<FsInfo>()
    }

    /// Whether the filesystem was shut down.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The largest transaction this journal accepts.
    pub(crate) fn max_credits(&self) -> u32 {
        self.journal.max_credits()
    }

    /// Updates the superblock through `tx` with `f`.
    pub(crate) fn update_sb(
        &self,
        tx: &mut Transaction<'_>,
        f: impl FnOnce(&mut Superblock),
    ) -> FsResult {
        let crc = self.geo.crc;
        let r = tx.modify(&self.sb_buf, |b| -> core::result::Result<(), FormatError> {
            let mut s = Superblock::decode(b, crc)?;
            f(&mut s);
            s.encode(b, crc);
            Ok(())
        })?;
        Ok(r?)
    }
}

/// Reads and checks the superblock of `sb`'s device at the 1024-byte block
/// size.
fn probe_superblock(sb: &SuperBlock, silent: bool) -> Result<Superblock> {
    sb.set_block_size(1024).inspect_err(|_| {
        if !silent {
            pr_err!("{}: device block size above 1024\n", sb.id());
        }
    })?;
    let buf = Buffer::read(sb, 0)?;
    buf.with(|b| Superblock::decode(b, crate::sys::crc32c))
        .map_err(|e| {
            if !silent {
                pr_err!("{}: not a valid swapfs filesystem: {}\n", sb.id(), e);
            }
            match e {
                FormatError::BadChecksum { .. } | FormatError::BadGeometry { .. } => {
                    errno::corrupted()
                }
                _ => EINVAL,
            }
        })
}

/// Mounts: checks the superblock, replays and opens the journal, reads the
/// root, processes the orphan list. Returns the pinned state that
/// `s_fs_info` will own.
pub(crate) fn mount(sb: &SuperBlock, opts: &MountOpts, silent: bool) -> Result {
    // Blocks cached from before this mount (the device written while
    // something else held it open) are dropped, so that every metadata
    // block is checked against what is on disk now (`Buffer`'s verified
    // bit).
    sb.drop_device_cache();
    let disk = probe_superblock(sb, silent)?;
    if disk.feature_ro_compat & !format::features::RO_COMPAT != 0 && !sb.read_only() {
        pr_err!(
            "{}: unknown read-only features {:#x}: mount read-only\n",
            sb.id(),
            disk.feature_ro_compat & !format::features::RO_COMPAT
        );
        return Err(EROFS);
    }
    let bs = disk.block_size();
    sb.set_block_size(bs).inspect_err(|_| {
        pr_err!("{}: cannot use a block size of {}\n", sb.id(), bs);
    })?;
    let dev_blocks = sb.device_bytes() >> disk.block_size_log2;
    disk.geometry(dev_blocks, crate::sys::crc32c).map_err(|e| {
        pr_err!("{}: {}\n", sb.id(), e);
        errno::corrupted()
    })?;

    // Replay before anything else reads metadata.
    let journal = Journal::open(
        sb,
        disk.journal_start,
        disk.journal_blocks,
        opts.commit_secs,
    )
    .inspect_err(|e| {
        pr_err!("{}: cannot load the journal: {:?}\n", sb.id(), e);
    })?;
    // A journal aborted before (a metadata write failed) loads and replays
    // normally: report it once and clear it, as ext4 does, so that the
    // filesystem can be used and is marked as having had errors. The error
    // comes from the journal's superblock, any value on a hostile image:
    // an errno is reported as such, anything else as EIO.
    let aborted = match journal.errno() {
        0 => None,
        e => Some(errno::checked(e).unwrap_or(EIO)),
    };
    if let Some(e) = aborted {
        journal.clear_error(!sb.read_only());
        pr_warn!(
            "{}: the journal had been aborted (error {}): replayed; the filesystem is marked as having had errors\n",
            sb.id(),
            -e.to_errno()
        );
    }

    // The superblock again, as replay left it.
    let (first, journal_at) = (
        disk.block_size_log2,
        (disk.journal_start, disk.journal_blocks),
    );
    let sb_buf = Buffer::read(sb, 0)?;
    let disk = sb_buf
        .with(|b| Superblock::decode(b, crate::sys::crc32c))
        .and_then(|d| d.geometry(dev_blocks, crate::sys::crc32c).map(|g| (d, g)));
    let (disk, geo) = disk.map_err(|e| {
        pr_err!("{}: after journal replay: {}\n", sb.id(), e);
        errno::corrupted()
    })?;
    // Replay may have written any superblock: the device's block size and
    // the open journal were set up from the first one and must still be
    // what the filesystem describes.
    if disk.block_size_log2 != first || (disk.journal_start, disk.journal_blocks) != journal_at {
        pr_err!(
            "{}: after journal replay: the block size or the journal's location changed\n",
            sb.id()
        );
        return Err(errno::corrupted());
    }
    if disk.state & format::state::ERROR != 0 {
        pr_warn!(
            "{}: errors were detected before; run fsck.swapfs\n",
            sb.id()
        );
    }

    // The largest file is a whole number of blocks: iomap (FIEMAP, seek)
    // walks up to s_maxbytes and must never ask past the last block.
    let max_bytes = format::max_lblk(&geo) << geo.block_size_log2;
    let uuid = disk.uuid;
    sb.init_info(try_pin_init!(FsInfo {
            geo,
            journal,
            sb_buf,
            uuid: disk.uuid,
            opts <- kernel::new_mutex!(*opts),
            alloc <- kernel::new_mutex!(AllocState {
                free_blocks: disk.free_blocks,
                free_inodes: disk.free_inodes,
                block_hint: geo.data_start,
                inode_hint: 1,
                staged: KVec::new(),
                busy: [None; 4],
                busy_runs: crate::common::busy::Busy::default(),
            }),
            orphans <- kernel::new_mutex!(()),
            swapfiles <- kernel::new_mutex!(KVec::new()),
            debugfs: crate::sys::vfs::DebugfsDir::create(sb),
            shut_down: AtomicBool::new(false),
    }))?;
    sb.setup(&uuid, max_bytes);
    // On failure the caller takes the state back from the superblock.
    mount_rest(sb, aborted.is_some())
}

fn mount_rest(sb: &SuperBlock, aborted: bool) -> Result {
    let m = Mount::of(sb)?;
    // The superblock's free counts are only exact after a clean unmount;
    // counting the bitmaps is cheap and never wrong.
    alloc::recount(m).map_err(|e| errno(sb, "mount", e))?;
    let root = sb.iget(format::ROOT_INO)?;
    if root.mode() & format::mode::S_IFMT != format::mode::S_IFDIR {
        pr_err!("{}: the root inode is not a directory\n", sb.id());
        return Err(errno::corrupted());
    }
    sb.make_root(root)?;
    if !sb.read_only() {
        go_read_write(m, Transaction::start(&m.fs.journal, sb, 1)?, aborted)?;
    }
    Ok(())
}

/// The filesystem becomes writable: mark it not clean, count the mount,
/// finish the work the orphan list records.
fn go_read_write(m: Mount<'_>, mut tx: Transaction<'_>, aborted: bool) -> Result {
    let now = crate::sys::now();
    m.fs.update_sb(&mut tx, |s| {
        s.state &= !format::state::CLEAN;
        if aborted {
            s.state |= format::state::ERROR;
        }
        s.mount_count = s.mount_count.wrapping_add(1);
        s.mount_time = now.sec;
    })
    .map_err(|e| errno(m.sb, "mount", e))?;
    tx.stop()?;
    orphan::process(m).map_err(|e| errno(m.sb, "orphan list", e))
}

/// Writes the free counts and the clean state, through the journal.
fn mark_clean(m: Mount<'_>) -> FsResult {
    let (free_blocks, free_inodes) = {
        let a = m.fs.alloc.lock();
        (a.free_blocks, a.free_inodes)
    };
    let now = crate::sys::now();
    let mut tx = m.start(1)?;
    m.fs.update_sb(&mut tx, |s| {
        s.state |= format::state::CLEAN;
        s.free_blocks = free_blocks;
        s.free_inodes = free_inodes;
        s.write_time = now.sec;
    })?;
    tx.stop()?;
    Ok(())
}

/// Unmounts: writes the clean state. The caller then takes the state back
/// from the superblock and drops it, which closes the journal (a
/// checkpoint of everything).
pub(crate) fn unmount(sb: &SuperBlock) {
    crate::sys::flush_endio();
    let Ok(m) = Mount::of(sb) else {
        return;
    };
    if !sb.read_only() && m.fs.journal.errno() == 0 && !m.fs.is_shut_down() {
        if let Err(e) = mark_clean(m) {
            let _ = errno(sb, "unmount", e);
        }
    }
    let err = m.fs.journal.errno();
    if err != 0 && !m.fs.is_shut_down() {
        pr_err!("{}: the journal was aborted (error {})\n", sb.id(), err);
    }
}

/// `sync_fs`: commits the running transaction.
pub(crate) fn sync(sb: &SuperBlock, wait: bool) -> Result {
    let Some(fs) = FsInfo::get(sb) else {
        return Ok(());
    };
    crate::sys::flush_endio();
    if fs.is_shut_down() {
        Err(EIO)
    } else if wait {
        fs.journal.force_commit()
    } else {
        Ok(())
    }
}

/// `freeze_fs`: the VFS has stopped every writer and synced; commit the
/// free counts and the clean state and empty the log, so that the frozen
/// device (a snapshot of it, a copy) is a clean filesystem that needs no
/// journal replay. Nothing more is written until [`unfreeze`].
pub(crate) fn freeze(sb: &SuperBlock) -> Result {
    let m = Mount::of(sb)?;
    if sb.read_only() || m.fs.is_shut_down() {
        return Ok(());
    }
    crate::sys::flush_endio();
    mark_clean(m).map_err(|e| errno(sb, "freeze", e))?;
    m.fs.journal.flush()
}

/// `unfreeze_fs`: the filesystem is in use again, not clean.
pub(crate) fn unfreeze(sb: &SuperBlock) -> Result {
    let m = Mount::of(sb)?;
    if sb.read_only() || m.fs.is_shut_down() {
        return Ok(());
    }
    let mut tx = m.start(1)?;
    m.fs.update_sb(&mut tx, |s| s.state &= !format::state::CLEAN)
        .map_err(|e| errno(sb, "thaw", e))?;
    tx.stop()
}

/// `statfs` numbers.
pub(crate) fn statfs(sb: &SuperBlock, out: &mut crate::sys::ffi::swapfs_statfs) -> Result {
    let fs = FsInfo::get(sb).ok_or(EINVAL)?;
    let a = fs.alloc.lock();
    out.blocks = fs.geo.data_blocks();
    out.bfree = a.free_blocks;
    // What data writes can use: they leave the tree reserve.
    out.bavail = a.free_blocks.saturating_sub(alloc::TREE_RESERVE);
    out.files = fs.geo.inode_count;
    out.ffree = a.free_inodes;
    out.block_size = fs.geo.block_size() as u32;
    out.namelen = format::NAME_MAX as u32;
    out.uuid = fs.uuid;
    Ok(())
}

/// Remount: new options, and the read-only transition.
pub(crate) fn reconfigure(sb: &SuperBlock, opts: &MountOpts, read_only: bool) -> Result {
    let m = Mount::of(sb)?;
    if m.fs.is_shut_down() {
        // Nothing reaches the disk any more; unmount and mount again.
        return if read_only { Ok(()) } else { Err(EIO) };
    }
    if m.fs.journal.errno() != 0 && !read_only {
        pr_err!(
            "{}: the journal was aborted: cannot remount read-write\n",
            sb.id()
        );
        return Err(EROFS);
    }
    *m.fs.opts.lock() = *opts;
    if read_only && !sb.read_only() {
        crate::sys::flush_endio();
        mark_clean(m).map_err(|e| errno(sb, "remount", e))?;
        m.fs.journal.force_commit()?;
    } else if !read_only && sb.read_only() {
        // The VFS clears SB_RDONLY after this returns.
        go_read_write(m, Transaction::start_remount(&m.fs.journal, sb, 1)?, false)?;
    }
    Ok(())
}

/// `Ok`, or `EIO` once the filesystem was shut down: every VFS entry point
/// asks first.
pub(crate) fn live(sb: &SuperBlock) -> Result {
    match FsInfo::get(sb) {
        Some(fs) if fs.is_shut_down() => Err(EIO),
        _ => Ok(()),
    }
}

/// Whether a regular file may be opened: not after a shutdown, except an
/// active swapfile, so that swapoff (which opens it) still works.
pub(crate) fn may_open(inode: &crate::sys::vfs::Inode) -> Result {
    if swapguard::is_swap(inode) {
        return Ok(());
    }
    live(inode.sb())
}

/// How [`shutdown`] treats what is not on disk yet (`FS_IOC_SHUTDOWN`'s
/// argument, `FS_SHUTDOWN_FLAGS_*` in uapi linux/fs.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Write everything first (freeze the device, then shut down).
    Default,
    /// Commit the journal, not file data.
    LogFlush,
    /// Write nothing more.
    NoLogFlush,
}

impl Shutdown {
    /// The mode an ioctl argument names; `EINVAL` for anything else.
    pub(crate) fn from_flags(flags: u32) -> Result<Shutdown> {
        match flags {
            0 => Ok(Shutdown::Default),
            1 => Ok(Shutdown::LogFlush),
            2 => Ok(Shutdown::NoLogFlush),
            _ => Err(EINVAL),
        }
    }
}

/// Shuts the filesystem down as xfs and ext4 do: from now on every
/// operation fails with `EIO` and nothing more is written through the
/// filesystem; a journal aborted here (`LogFlush`, `NoLogFlush`) is not
/// checkpointed, so the next mount replays it. Active swapfiles keep
/// working: swap IO never enters the filesystem. A second shutdown does
/// nothing.
pub(crate) fn shutdown(sb: &SuperBlock, how: Shutdown) -> Result {
    let fs = FsInfo::get(sb).ok_or(EINVAL)?;
    if fs.is_shut_down() {
        return Ok(());
    }
    pr_alert!("{}: shut down requested ({:?})\n", sb.id(), how);
    match how {
        Shutdown::Default => {
            sb.freeze_bdev()?;
            fs.shut_down.store(true, Ordering::Release);
            sb.thaw_bdev();
        }
        Shutdown::LogFlush => {
            // Commit before refusing new transactions: what is in the
            // running transaction must reach the log.
            let _ = fs.journal.force_commit();
            fs.shut_down.store(true, Ordering::Release);
            fs.journal.abort(errno::shut_down());
        }
        Shutdown::NoLogFlush => {
            fs.shut_down.store(true, Ordering::Release);
            fs.journal.abort(errno::shut_down());
        }
    }
    Ok(())
}
