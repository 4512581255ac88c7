// SPDX-License-Identifier: GPL-2.0

//! VFS objects: superblocks, inodes, dentries, directory contexts.
//!
//! Each is a transparent wrapper around the C object, handed out as a
//! reference whose lifetime is the C callback's: the VFS keeps the object
//! alive for the duration of the call. Rust never reads a kernel
//! structure's fields; the C helper does.

use core::any::TypeId;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::{ForeignOwnable, Opaque};

use super::ffi;
use super::{Attrs, InodeData};

/// `rename`'s flag: fail if the target exists (uapi `linux/fs.h`).
pub(crate) const RENAME_NOREPLACE: u32 = kernel::bindings::RENAME_NOREPLACE;

/// A value in a C slot, with its type: `repr(C)` and the tag first, so
/// that a reader who expects another type sees the tag and stops.
#[pin_data]
#[repr(C)]
struct Tagged<T> {
    tag: TypeId,
    #[pin]
    value: T,
}

/// A state taken back from its slot ([`SuperBlock::take_info`]); dropping
/// it drops the state.
pub(crate) struct Owned<T>(Pin<KBox<Tagged<T>>>);

impl<T> core::ops::Deref for Owned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0.value
    }
}

/// A mounted swapfs superblock.
#[repr(transparent)]
pub(crate) struct SuperBlock(Opaque<ffi::super_block>);

// SAFETY: superblocks are shared between threads by the VFS; every method
// calls thread-safe C.
unsafe impl Sync for SuperBlock {}
// SAFETY: as above.
unsafe impl Send for SuperBlock {}

impl SuperBlock {
    /// # Safety
    ///
    /// `ptr` is a live superblock for the returned lifetime.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::super_block) -> &'a SuperBlock {
        // SAFETY: `SuperBlock` is transparent over the C type; liveness is
        // the caller's promise.
        unsafe { &*ptr.cast() }
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::super_block {
        self.0.get()
    }

    /// The device name, for messages.
    pub(crate) fn id(&self) -> &CStr {
        // SAFETY: s_id is a NUL-terminated array inside the live sb.
        unsafe { CStr::from_char_ptr(ffi::swapfs_c_sb_id(self.as_ptr())) }
    }

    /// Whether the filesystem is mounted read-only.
    pub(crate) fn read_only(&self) -> bool {
        // SAFETY: the sb is live.
        unsafe { ffi::swapfs_c_sb_rdonly(self.as_ptr()) }
    }

    /// Marks the filesystem read-only (after an error).
    pub(crate) fn force_read_only(&self) {
        // SAFETY: the sb is live.
        unsafe { ffi::swapfs_c_sb_force_ro(self.as_ptr()) }
    }

    /// Drops the device's clean cached blocks (`invalidate_bdev`).
    pub(crate) fn drop_device_cache(&self) {
        // SAFETY: the sb is live and has a block device.
        unsafe { ffi::swapfs_c_sb_invalidate_bdev(self.as_ptr()) }
    }

    /// Size of the device in bytes.
    pub(crate) fn device_bytes(&self) -> u64 {
        // SAFETY: the sb is live and has a block device.
        unsafe { ffi::swapfs_c_sb_dev_bytes(self.as_ptr()) }
    }

    /// Sets the block size used by buffer heads. Fails if the device's
    /// logical block is larger.
    pub(crate) fn set_block_size(&self, size: usize) -> Result {
        let size = i32::try_from(size).map_err(|_| EINVAL)?;
        // SAFETY: the sb is live; called during fill_super.
        match unsafe { ffi::swapfs_c_sb_set_blocksize(self.as_ptr(), size) } {
            0 => Err(EINVAL),
            _ => Ok(()),
        }
    }

    /// The block size set with [`SuperBlock::set_block_size`].
    pub(crate) fn block_size(&self) -> usize {
        // SAFETY: the sb is live.
        let bytes = unsafe { ffi::swapfs_c_sb_block_size(self.as_ptr()) };
        bytes as usize
    }

    /// Final setup during fill_super: operations, magic, limits, UUID.
    pub(crate) fn setup(&self, uuid: &[u8; 16], max_bytes: u64) {
        // SAFETY: the sb is live and being set up; `uuid` is 16 bytes.
        unsafe { ffi::swapfs_c_sb_setup(self.as_ptr(), uuid.as_ptr(), max_bytes) }
    }

    /// Makes `root` the root dentry (consumes the inode reference).
    pub(crate) fn make_root(&self, root: InodeRef) -> Result {
        let inode = root.into_raw();
        // SAFETY: the sb is live; d_make_root takes the reference (and drops
        // it on failure).
        super::check(unsafe { ffi::swapfs_c_sb_make_root(self.as_ptr(), inode) })
    }

    /// Moves the filesystem's state into `s_fs_info`, built in place by
    /// `init` (pinned, never moved until [`SuperBlock::take_info`]). EBUSY
    /// if the slot already holds a state.
    pub(crate) fn init_info<T: Send + Sync + 'static>(
        &self,
        init: impl PinInit<T, Error>,
    ) -> Result {
        if !self.info_raw().is_null() {
            return Err(EBUSY);
        }
        let tagged = KBox::pin_init(
            try_pin_init!(Tagged::<T> {
                tag: TypeId::of::<T>(),
                value <- init,
            }? Error),
            GFP_KERNEL,
        )?;
        // SAFETY: the sb is live; only fill_super and put_super store here.
        unsafe { ffi::swapfs_c_sb_set_info(self.as_ptr(), tagged.into_foreign()) };
        Ok(())
    }

    /// The state [`SuperBlock::init_info`] stored, if it is a `T`: `None`
    /// before it is set, after it is taken, and for any other type.
    pub(crate) fn info<T: 'static>(&self) -> Option<&T> {
        let p = self.info_raw();
        if p.is_null() {
            return None;
        }
        // A non-null `s_fs_info` is a `Tagged` of some type stored by
        // `init_info`, alive until `take_info`, whose caller promises that
        // no reference handed out here outlives it.
        // SAFETY: `Tagged` is `repr(C)` with the tag first: readable here.
        let tag = unsafe { *p.cast::<TypeId>() };
        if tag != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: as above, and the tag says the value is a `T`.
        let tagged = unsafe { <Pin<KBox<Tagged<T>>> as ForeignOwnable>::borrow(p) };
        Some(&tagged.get_ref().value)
    }

    /// Takes the state back from `s_fs_info` (which becomes null), to drop
    /// it: `None` if it is empty or not a `T`.
    ///
    /// # Safety
    ///
    /// No reference returned by [`SuperBlock::info`] is alive, and none is
    /// taken while the result lives: fill_super's failure path and
    /// put_super, after the VFS evicted every inode, qualify.
    pub(crate) unsafe fn take_info<T: 'static>(&self) -> Option<Owned<T>> {
        self.info::<T>()?;
        let p = self.info_raw();
        // SAFETY: the sb is live; only fill_super and put_super store here.
        unsafe { ffi::swapfs_c_sb_set_info(self.as_ptr(), core::ptr::null_mut()) };
        // `p` came from `into_foreign` in `init_info` as a `Tagged<T>`
        // (checked by `info`) and leaves the slot here, once.
        // SAFETY: and the caller promises that no borrow of it is alive.
        Some(Owned(unsafe { ForeignOwnable::from_foreign(p) }))
    }

    fn info_raw(&self) -> *mut c_void {
        // SAFETY: the sb is live.
        unsafe { ffi::swapfs_c_sb_info(self.as_ptr()) }
    }

    /// Looks up inode `ino`, reading it from disk if it is not cached.
    pub(crate) fn iget(&self, ino: u64) -> Result<InodeRef> {
        let mut err = 0;
        // SAFETY: the sb is live.
        let p = unsafe { ffi::swapfs_c_iget(self.as_ptr(), ino, &mut err) };
        match NonNull::new(p) {
            // INVARIANT: iget returned a referenced inode.
            Some(p) => Ok(InodeRef(p)),
            None => Err(Error::from_errno(err)),
        }
    }

    /// Flushes the device's write cache.
    pub(crate) fn flush_device(&self) -> Result {
        // SAFETY: the sb is live.
        super::check(unsafe { ffi::swapfs_c_sb_flush_device(self.as_ptr()) })
    }

    /// Freezes the filesystem through its block device (`bdev_freeze`):
    /// writes everything and blocks new changes until
    /// [`SuperBlock::thaw_bdev`].
    pub(crate) fn freeze_bdev(&self) -> Result {
        // SAFETY: the sb is live and has a block device.
        super::check(unsafe { ffi::swapfs_c_sb_freeze_bdev(self.as_ptr()) })
    }

    /// Freeze protection for a change the filesystem makes on its own
    /// (`sb_start_intwrite`): waits while the filesystem is frozen; the
    /// guard ends it.
    pub(crate) fn start_intwrite(&self) -> IntWrite<'_> {
        // SAFETY: the sb is live; `IntWrite::drop` ends the protection.
        unsafe { ffi::swapfs_c_sb_start_intwrite(self.as_ptr()) };
        IntWrite(self)
    }

    /// Thaws what [`SuperBlock::freeze_bdev`] froze.
    pub(crate) fn thaw_bdev(&self) {
        // SAFETY: the sb is live; called after a successful freeze.
        unsafe { ffi::swapfs_c_sb_thaw_bdev(self.as_ptr()) }
    }
}

/// Freeze protection held (see [`SuperBlock::start_intwrite`]).
pub(crate) struct IntWrite<'a>(&'a SuperBlock);

impl Drop for IntWrite<'_> {
    fn drop(&mut self) {
        // SAFETY: `start_intwrite` began the protection on this live sb.
        unsafe { ffi::swapfs_c_sb_end_intwrite(self.0.as_ptr()) }
    }
}

/// A swapfs inode.
#[repr(transparent)]
pub(crate) struct Inode(Opaque<ffi::inode>);

// SAFETY: inodes are shared between threads by the VFS; every method calls
// thread-safe C or takes the inode's locks.
unsafe impl Sync for Inode {}
// SAFETY: as above.
unsafe impl Send for Inode {}

impl Inode {
    /// # Safety
    ///
    /// `ptr` is a live swapfs inode for the returned lifetime.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::inode) -> &'a Inode {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::inode {
        self.0.get()
    }

    /// The inode number.
    pub(crate) fn ino(&self) -> u64 {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_ino(self.as_ptr()) }
    }

    /// The superblock.
    pub(crate) fn sb(&self) -> &SuperBlock {
        // SAFETY: an inode's superblock outlives it.
        unsafe { SuperBlock::from_raw(ffi::swapfs_c_inode_sb(self.as_ptr())) }
    }

    /// A snapshot of the VFS attributes.
    pub(crate) fn attrs(&self) -> Attrs {
        let mut a = Attrs::default();
        // SAFETY: the inode is live; `a` is valid for writes.
        unsafe { ffi::swapfs_c_inode_get_attrs(self.as_ptr(), &mut a) };
        a
    }

    /// Sets the VFS attributes (all but the size).
    pub(crate) fn set_attrs(&self, a: &Attrs) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_set_attrs(self.as_ptr(), a) }
    }

    /// `st_mode`.
    pub(crate) fn mode(&self) -> u16 {
        self.attrs().mode as u16
    }

    /// The size on disk (`InodeData::disk_size`) read without the lock
    /// that guards it: a snapshot for decisions that tolerate a stale one.
    pub(crate) fn disk_size_unlocked(&self) -> u64 {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_disk_size_unlocked(self.as_ptr()) }
    }

    /// `i_size`.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: the inode is live.
        let s = unsafe { ffi::swapfs_c_inode_size(self.as_ptr()) };
        u64::try_from(s).unwrap_or(0)
    }

    /// Sets `i_size`.
    pub(crate) fn set_size(&self, size: u64) {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_set_size(self.as_ptr(), size) }
    }

    /// Sets `i_blocks` (in filesystem blocks).
    pub(crate) fn set_blocks(&self, blocks: u64) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_set_blocks(self.as_ptr(), blocks) }
    }

    /// The link count.
    pub(crate) fn nlink(&self) -> u32 {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_nlink(self.as_ptr()) }
    }

    /// Sets the link count.
    pub(crate) fn set_nlink(&self, n: u32) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_set_nlink(self.as_ptr(), n) }
    }

    /// ctime = now.
    pub(crate) fn touch_ctime(&self) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_touch_ctime(self.as_ptr()) }
    }

    /// mtime = ctime = now.
    pub(crate) fn touch_mtime_ctime(&self) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_touch_mtime_ctime(self.as_ptr()) }
    }

    /// Whether the inode is an active swapfile (`S_SWAPFILE`).
    pub(crate) fn is_swapfile(&self) -> bool {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_is_swapfile(self.as_ptr()) }
    }

    /// Caches a symlink's target in the inode (`i_link`).
    pub(crate) fn set_link(&self, target: &[u8]) -> Result {
        let len = u32::try_from(target.len()).map_err(|_| EINVAL)?;
        // SAFETY: the inode is live; `target` is valid for `len` bytes.
        super::check(unsafe { ffi::swapfs_c_inode_set_link(self.as_ptr(), target.as_ptr(), len) })
    }

    /// Takes the map lock shared: the extent tree and the other Rust-owned
    /// fields can be read.
    pub(crate) fn map_read(&self) -> MapRead<'_> {
        // SAFETY: the inode is live; the guard unlocks.
        unsafe { ffi::swapfs_c_map_lock(self.as_ptr(), false) };
        MapRead { inode: self }
    }

    /// Takes the map lock exclusive: the Rust-owned fields can be changed.
    pub(crate) fn map_write(&self) -> MapWrite<'_> {
        // SAFETY: the inode is live; the guard unlocks.
        unsafe { ffi::swapfs_c_map_lock(self.as_ptr(), true) };
        MapWrite { inode: self }
    }

    /// Zeroes, in the page cache, the block holding byte `size` from there
    /// to its end (`iomap_truncate_page`); whether it zeroed anything.
    /// Must be called with no transaction open.
    pub(crate) fn zero_tail(&self, size: u64) -> Result<bool> {
        let size = i64::try_from(size).map_err(|_| EFBIG)?;
        let mut zeroed = false;
        // SAFETY: the inode is live; the caller holds i_rwsem and the
        // invalidate lock (setattr).
        super::check(unsafe { ffi::swapfs_c_truncate_page(self.as_ptr(), size, &mut zeroed) })?;
        Ok(zeroed)
    }

    /// Sets `i_size` and drops the page cache past it (`truncate_setsize`).
    pub(crate) fn truncate_setsize(&self, size: u64) -> Result {
        let size = i64::try_from(size).map_err(|_| EFBIG)?;
        // SAFETY: the inode is live; the caller holds i_rwsem and the
        // invalidate lock (setattr).
        unsafe { ffi::swapfs_c_truncate_setsize(self.as_ptr(), size) };
        Ok(())
    }

    /// Writes back `[start, end]` (bytes, inclusive), waits for it and its
    /// end-of-IO work, and drops it from the page cache. The caller holds
    /// `i_rwsem` and the invalidate lock, and no transaction.
    pub(crate) fn flush_unmap(&self, start: u64, end: u64) -> Result {
        let (s, e) = byte_range(start, end)?;
        // SAFETY: the inode is a live regular file; the caller holds its
        // locks (see above).
        super::check(unsafe { ffi::swapfs_c_flush_unmap(self.as_ptr(), s, e) })
    }

    /// Whether the file may grow to `size` bytes: the caller's
    /// `RLIMIT_FSIZE` (exceeding it also sends `SIGXFSZ`) and the largest
    /// file size. `EFBIG` when not.
    pub(crate) fn newsize_ok(&self, size: u64) -> Result {
        let size = i64::try_from(size).map_err(|_| EFBIG)?;
        // SAFETY: the inode is live.
        super::check(unsafe { ffi::swapfs_c_newsize_ok(self.as_ptr(), size) })
    }

    /// Writes back `[start, end]` (bytes, inclusive) and waits for it and
    /// its end-of-IO work. Same locking as [`Inode::flush_unmap`].
    pub(crate) fn flush_range(&self, start: u64, end: u64) -> Result {
        let (s, e) = byte_range(start, end)?;
        // SAFETY: as in `flush_unmap`.
        super::check(unsafe { ffi::swapfs_c_flush_range(self.as_ptr(), s, e) })
    }

    /// Takes `i_rwsem` exclusively, until the guard goes.
    pub(crate) fn lock(&self) -> InodeLock<'_> {
        // SAFETY: the inode is live; the guard unlocks it.
        unsafe { ffi::swapfs_c_inode_lock(self.as_ptr()) };
        InodeLock { inode: self }
    }

    /// Waits for the direct IO in flight on the inode (`inode_dio_wait`).
    pub(crate) fn dio_wait(&self) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_inode_dio_wait(self.as_ptr()) }
    }

    /// `mark_inode_dirty`: `->dirty_inode` journals the inode.
    pub(crate) fn mark_dirty(&self) {
        // SAFETY: the inode is live.
        unsafe { ffi::swapfs_c_mark_inode_dirty(self.as_ptr()) }
    }

    /// Zeroes bytes `[pos, pos + len)` through the page cache (holes and
    /// unwritten blocks are left alone). Same locking as
    /// [`Inode::flush_unmap`]; calls back into `iomap_begin`.
    pub(crate) fn zero_range(&self, pos: u64, len: u64) -> Result {
        let (p, l) = byte_range(pos, len)?;
        // SAFETY: as in `flush_unmap`.
        super::check(unsafe { ffi::swapfs_c_zero_range(self.as_ptr(), p, l) })
    }

    /// Copies the shared written blocks of bytes `[pos, pos + len)` (inside
    /// `i_size`) to private ones through the page cache (dirty, not yet
    /// written back). Same locking as [`Inode::flush_unmap`].
    pub(crate) fn unshare_range(&self, pos: u64, len: u64) -> Result {
        let (p, l) = byte_range(pos, len)?;
        // SAFETY: as in `flush_unmap`.
        super::check(unsafe { ffi::swapfs_c_unshare_range(self.as_ptr(), p, l) })
    }

    fn data_ptr(&self) -> *mut InodeData {
        // SAFETY: the inode is a live swapfs inode, so it has the data.
        unsafe { ffi::swapfs_c_inode_data(self.as_ptr()) }
    }
}

/// Two byte positions as the C helper takes them (`loff_t`), saturated at
/// the largest file offset.
fn byte_range(a: u64, b: u64) -> Result<(i64, i64)> {
    let a = i64::try_from(a).map_err(|_| EFBIG)?;
    Ok((a, i64::try_from(b).unwrap_or(i64::MAX)))
}

/// `i_rwsem` held exclusively ([`Inode::lock`]).
pub(crate) struct InodeLock<'a> {
    inode: &'a Inode,
}

impl Drop for InodeLock<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `Inode::lock`, unlocked once, here.
        unsafe { ffi::swapfs_c_inode_unlock(self.inode.as_ptr()) }
    }
}

/// The map lock held shared.
pub(crate) struct MapRead<'a> {
    inode: &'a Inode,
}

impl MapRead<'_> {
    /// The Rust-owned inode fields.
    pub(crate) fn data(&self) -> &InodeData {
        // SAFETY: the map lock is held shared: no one writes the fields.
        unsafe { &*self.inode.data_ptr() }
    }
}

impl Drop for MapRead<'_> {
    fn drop(&mut self) {
        // SAFETY: taken shared in `map_read`.
        unsafe { ffi::swapfs_c_map_unlock(self.inode.as_ptr(), false) }
    }
}

/// The map lock held exclusive.
pub(crate) struct MapWrite<'a> {
    inode: &'a Inode,
}

impl MapWrite<'_> {
    /// The Rust-owned inode fields.
    pub(crate) fn data(&self) -> &InodeData {
        // SAFETY: the map lock is held exclusive.
        unsafe { &*self.inode.data_ptr() }
    }

    /// The Rust-owned inode fields, mutable.
    pub(crate) fn data_mut(&mut self) -> &mut InodeData {
        // SAFETY: the map lock is held exclusive and `&mut self` makes this
        // the only reference.
        unsafe { &mut *self.inode.data_ptr() }
    }
}

impl Drop for MapWrite<'_> {
    fn drop(&mut self) {
        // SAFETY: taken exclusive in `map_write`.
        unsafe { ffi::swapfs_c_map_unlock(self.inode.as_ptr(), true) }
    }
}

/// A counted reference to an inode (from iget); `Drop` puts it.
///
/// # Invariants
///
/// The pointer holds one inode reference.
pub(crate) struct InodeRef(NonNull<ffi::inode>);

impl InodeRef {
    /// Gives up the reference without putting it.
    pub(crate) fn into_raw(self) -> *mut ffi::inode {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl core::ops::Deref for InodeRef {
    type Target = Inode;

    fn deref(&self) -> &Inode {
        // SAFETY: the reference keeps the inode alive.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for InodeRef {
    fn drop(&mut self) {
        // SAFETY: we hold a reference (type invariant).
        unsafe { ffi::swapfs_c_iput(self.0.as_ptr()) }
    }
}

/// A new inode, locked and not yet visible (`I_NEW`), from
/// [`Idmap::new_inode`]. Either [`NewInode::instantiate`] makes it live or
/// `Drop` discards it.
///
/// # Invariants
///
/// The pointer is a new inode holding one reference, not yet instantiated.
pub(crate) struct NewInode(NonNull<ffi::inode>);

impl NewInode {
    /// The inode.
    pub(crate) fn inode(&self) -> &Inode {
        // SAFETY: a new inode is referenced until instantiated or discarded.
        unsafe { Inode::from_raw(self.0.as_ptr()) }
    }

    /// Attaches the inode to `dentry` and unlocks it.
    pub(crate) fn instantiate(self, dentry: &Dentry) {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: `p` is a new inode (type invariant), `dentry` the negative
        // dentry of the create call; d_instantiate_new takes our reference.
        unsafe { ffi::swapfs_c_instantiate(dentry.as_ptr(), p) }
    }
}

impl Drop for NewInode {
    fn drop(&mut self) {
        // SAFETY: a new inode that was never instantiated (type invariant).
        unsafe { ffi::swapfs_c_discard_new_inode(self.0.as_ptr()) }
    }
}

/// The idmapping of a create call (`struct mnt_idmap`), passed through.
#[repr(transparent)]
pub(crate) struct Idmap(Opaque<ffi::mnt_idmap>);

impl Idmap {
    /// # Safety
    ///
    /// `ptr` is the idmap of the running VFS call.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::mnt_idmap) -> &'a Idmap {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// A new inode number `ino` in `dir`, owned as `inode_init_owner`
    /// decides, locked until instantiated.
    pub(crate) fn new_inode(&self, dir: &Inode, mode: u16, ino: u64) -> Result<NewInode> {
        let mut err = 0;
        // SAFETY: all objects are live for the call.
        let p = unsafe {
            ffi::swapfs_c_new_inode(
                dir.sb().as_ptr(),
                self.0.get(),
                dir.as_ptr(),
                u32::from(mode),
                ino,
                &mut err,
            )
        };
        match NonNull::new(p) {
            // INVARIANT: a new, locked, referenced inode.
            Some(p) => Ok(NewInode(p)),
            None => Err(Error::from_errno(err)),
        }
    }
}

/// A mount's debugfs directory (`/sys/kernel/debug/swapfs/<device>`),
/// removed on drop; empty when debugfs is unavailable.
pub(crate) struct DebugfsDir(Option<NonNull<ffi::dentry>>);

// SAFETY: the dentry is only used to remove the directory, from any thread.
unsafe impl Send for DebugfsDir {}
// SAFETY: as above; no shared access.
unsafe impl Sync for DebugfsDir {}

impl DebugfsDir {
    /// Creates the directory and its files for `sb`.
    pub(crate) fn create(sb: &SuperBlock) -> DebugfsDir {
        // SAFETY: the superblock is live; the files refer to it, and the
        // directory is removed before the superblock goes (put_super).
        DebugfsDir(NonNull::new(unsafe {
            ffi::swapfs_c_debugfs_sb_create(sb.as_ptr())
        }))
    }
}

impl Drop for DebugfsDir {
    fn drop(&mut self) {
        if let Some(d) = self.0 {
            // SAFETY: created by `create`, removed once.
            unsafe { ffi::swapfs_c_debugfs_remove(d.as_ptr()) }
        }
    }
}

/// A `seq_file` being shown.
#[repr(transparent)]
pub(crate) struct SeqFile(Opaque<ffi::seq_file>);

impl SeqFile {
    /// # Safety
    ///
    /// `ptr` is the seq_file of the running show call.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::seq_file) -> &'a SeqFile {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    /// Appends `s`.
    pub(crate) fn puts(&self, s: &str) {
        let Ok(len) = u32::try_from(s.len()) else {
            return;
        };
        // SAFETY: the seq_file is live; `s` is valid for `len` bytes.
        unsafe { ffi::swapfs_c_seq_puts(self.0.get(), s.as_ptr().cast(), len) }
    }
}

/// A dentry.
#[repr(transparent)]
pub(crate) struct Dentry(Opaque<ffi::dentry>);

impl Dentry {
    /// # Safety
    ///
    /// `ptr` is a live dentry for the returned lifetime.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::dentry) -> &'a Dentry {
        // SAFETY: transparent wrapper; liveness is the caller's promise.
        unsafe { &*ptr.cast() }
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::dentry {
        self.0.get()
    }

    /// The name (stable while the parent's i_rwsem is held, as in every
    /// directory operation).
    pub(crate) fn name(&self) -> &[u8] {
        let mut len = 0u32;
        // SAFETY: the dentry is live.
        let p = unsafe { ffi::swapfs_c_dentry_name(self.as_ptr(), &mut len) };
        // SAFETY: d_name points to `len` bytes that stay put while the
        // directory is locked.
        unsafe { core::slice::from_raw_parts(p, len as usize) }
    }

    /// The inode of a positive dentry.
    pub(crate) fn inode(&self) -> Option<&Inode> {
        // SAFETY: the dentry is live.
        let p = unsafe { ffi::swapfs_c_dentry_inode(self.as_ptr()) };
        // SAFETY: a positive dentry pins its inode.
        NonNull::new(p).map(|p| unsafe { Inode::from_raw(p.as_ptr()) })
    }
}

/// A `readdir` context.
#[repr(transparent)]
pub(crate) struct DirContext(Opaque<ffi::dir_context>);

impl DirContext {
    /// # Safety
    ///
    /// `ptr` is the live context of the running iterate call, and no other
    /// reference to it exists.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut ffi::dir_context) -> &'a mut DirContext {
        // SAFETY: transparent wrapper; exclusivity is the caller's promise.
        unsafe { &mut *ptr.cast() }
    }

    /// The position (`ctx->pos`).
    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: the context is live.
        unsafe { ffi::swapfs_c_dir_pos(self.0.get()) }
    }

    /// Sets the position.
    pub(crate) fn set_pos(&mut self, pos: i64) {
        // SAFETY: the context is live and ours.
        unsafe { ffi::swapfs_c_dir_set_pos(self.0.get(), pos) }
    }

    /// Emits one entry; `false` means the caller's buffer is full.
    pub(crate) fn emit(&mut self, name: &[u8], ino: u64, dtype: u8) -> bool {
        let Ok(len) = u32::try_from(name.len()) else {
            return false;
        };
        // SAFETY: the context is live; `name` is valid for `len` bytes.
        unsafe { ffi::swapfs_c_dir_emit(self.0.get(), name.as_ptr(), len, ino, u32::from(dtype)) }
    }
}
