/* SPDX-License-Identifier: GPL-2.0 */
/*
 * swapfs C helper: the part of swapfs that Rust cannot reach through the
 * kernel crate's bindings (swap.h, swap_ops.h, iomap.h and jbd2.h are not
 * covered, and static inline functions are not callable from Rust), and the
 * VFS operation tables, whose layout differs between the supported kernels.
 *
 * The Rust side imports this header through bindgen, run standalone: it may
 * only use C scalar types, structures made of them, and forward-declared
 * kernel structures. That keeps the seam between the two languages narrow
 * and explicit: C passes pointers and scalars, Rust makes every decision.
 *
 * swapfs_c_*: implemented in C (the files in c/), called by Rust.
 * swapfs_rs_*: implemented in Rust (rust/entry.rs), called by C.
 * Errors are negative errnos.
 */
#ifndef SWAPFS_HELPER_H
#define SWAPFS_HELPER_H

struct super_block;
struct inode;
struct dentry;
struct file;
struct block_device;
struct buffer_head;
struct dir_context;
struct mnt_idmap;
struct journal_s;
struct jbd2_journal_handle;
struct swap_info_struct;
struct kiocb;
struct iov_iter;
struct seq_file;
struct swapfs_swap_req;

/* Which swap IO hook this build targets (probed from the kernel tree). */
enum swapfs_swap_hook {
	SWAPFS_HOOK_SWAP_RW = 1,	/* a_ops->swap_rw, Linux 7.2 */
	SWAPFS_HOOK_SWAP_OPS = 2,	/* struct swap_ops, Linux 7.3 */
};

/* ---- Shared data structures ------------------------------------------- */

/*
 * Per-inode state owned by Rust, stored next to the VFS inode. Guarded by
 * the inode's map lock (swapfs_c_map_lock), except `sync_tid`, which is
 * only touched with the journal handle open.
 */
struct swapfs_inode_data {
	unsigned char root[128];	/* extent-tree root, on-disk layout */
	unsigned long long parent;	/* directories: parent directory */
	long long btime_sec;		/* creation time */
	unsigned int btime_nsec;
	unsigned int disk_flags;	/* on-disk inode flags */
	unsigned int sync_tid;		/* last transaction that changed it */
	/* Regular files: the size the inode has on disk. Set by size changes
	 * (truncate, fallocate, a direct write's end); a buffered write past
	 * it raises it only when its data is on disk (end of IO), as xfs'
	 * di_size and ext4's i_disksize. */
	unsigned long long disk_size;
};

/* Mount options, parsed by C (fs_parser), interpreted by Rust. */
enum swapfs_errors_mode {
	SWAPFS_ERRORS_CONTINUE = 0,
	SWAPFS_ERRORS_REMOUNT_RO = 1,
};

struct swapfs_mount_opts {
	unsigned int commit_secs;	/* 0: jbd2's default */
	unsigned int errors;		/* enum swapfs_errors_mode */
	_Bool swap_unshare;		/* copy shared extents at swapon */
	_Bool swap_refuse_unwritten;	/* refuse preallocated swapfiles */
};

/* VFS inode attributes, copied in and out in one go. */
struct swapfs_attrs {
	unsigned int mode;
	unsigned int nlink;
	unsigned int uid;		/* in the initial user namespace */
	unsigned int gid;
	unsigned int rdev;		/* new_encode_dev() */
	unsigned int generation;
	unsigned long long size;
	unsigned long long blocks;	/* filesystem blocks held */
	long long atime_sec, mtime_sec, ctime_sec;
	unsigned int atime_nsec, mtime_nsec, ctime_nsec;
};

/* A mapping of a file range, as Rust reports it to iomap. */
enum swapfs_map_type {
	SWAPFS_MAP_HOLE = 0,
	SWAPFS_MAP_MAPPED = 1,
	SWAPFS_MAP_UNWRITTEN = 2,
};

#define SWAPFS_MAP_F_NEW	(1U << 0)	/* blocks just allocated */
#define SWAPFS_MAP_F_SHARED	(1U << 1)	/* blocks shared (reflinked) */
/* Copy-on-write blocks staged by this very iomap_begin: what iomap_end
 * finds unwritten is given back (IOMAP_F_PRIVATE). */
#define SWAPFS_MAP_F_STAGED	(1U << 2)
/* The inode's last change (its blocks, its size) is not committed yet: a
 * direct O_DSYNC write must sync, not end on FUA (IOMAP_F_DIRTY). */
#define SWAPFS_MAP_F_DIRTY	(1U << 3)

struct swapfs_map {
	long long offset;		/* file offset, bytes */
	unsigned long long length;	/* bytes */
	unsigned long long addr;	/* device offset, bytes (not for holes) */
	unsigned int type;		/* enum swapfs_map_type */
	unsigned int flags;		/* SWAPFS_MAP_F_* */
};

/* iomap_begin flags, as Rust sees them. */
#define SWAPFS_IOMAP_WRITE	(1U << 0)
#define SWAPFS_IOMAP_ZERO	(1U << 1)
#define SWAPFS_IOMAP_REPORT	(1U << 2)
#define SWAPFS_IOMAP_FAULT	(1U << 3)
#define SWAPFS_IOMAP_DIRECT	(1U << 4)
#define SWAPFS_IOMAP_NOWAIT	(1U << 5)
#define SWAPFS_IOMAP_UNSHARE	(1U << 6)

/* Filesystem statistics for statfs (bavail: bfree less the tree reserve). */
struct swapfs_statfs {
	unsigned long long blocks, bfree, bavail, files, ffree;
	unsigned int block_size;
	unsigned int namelen;		/* longest name */
	unsigned char uuid[16];
};

/* ---- Module-wide ------------------------------------------------------- */

int swapfs_c_init(unsigned int bio_reserve);
void swapfs_c_exit(void);
enum swapfs_swap_hook swapfs_c_swap_hook(void);

/* The kernel's (accelerated) CRC-32C: no inversion on entry or exit. */
unsigned int swapfs_c_crc32c(unsigned int crc, const void *data,
			     unsigned long len);

/* Current time (CLOCK_REALTIME). */
void swapfs_c_now(long long *sec, unsigned int *nsec);

/* ---- Superblock -------------------------------------------------------- */

void *swapfs_c_sb_info(struct super_block *sb);
void swapfs_c_sb_set_info(struct super_block *sb, void *info);
const char *swapfs_c_sb_id(struct super_block *sb);
_Bool swapfs_c_sb_rdonly(struct super_block *sb);
unsigned long long swapfs_c_sb_dev_bytes(struct super_block *sb);
/* invalidate_bdev(): drops the device's clean cached blocks. */
void swapfs_c_sb_invalidate_bdev(struct super_block *sb);
unsigned int swapfs_c_sb_block_size(struct super_block *sb);
/* sb_set_blocksize(); 0 on failure (the device's sector is larger). */
int swapfs_c_sb_set_blocksize(struct super_block *sb, int size);
/* Final superblock setup: ops, magic, limits, uuid. */
void swapfs_c_sb_setup(struct super_block *sb, const unsigned char *uuid,
		       unsigned long long max_bytes);
int swapfs_c_sb_make_root(struct super_block *sb, struct inode *root);
/* Mark the filesystem read-only after an error (errors=remount-ro). */
void swapfs_c_sb_force_ro(struct super_block *sb);
/* Wait for pending end-of-IO work (unwritten conversion) of this sb. */
void swapfs_c_flush_endio(void);
/* blkdev_issue_flush() on the filesystem's device. */
int swapfs_c_sb_flush_device(struct super_block *sb);
/* bdev_freeze()/bdev_thaw() of the filesystem's device (FS_IOC_SHUTDOWN). */
int swapfs_c_sb_freeze_bdev(struct super_block *sb);
void swapfs_c_sb_thaw_bdev(struct super_block *sb);
/* sb_start_intwrite()/sb_end_intwrite(): freeze protection for changes the
 * filesystem makes on its own (freeing an unlinked inode). */
void swapfs_c_sb_start_intwrite(struct super_block *sb);
void swapfs_c_sb_end_intwrite(struct super_block *sb);
/* capable(CAP_SYS_ADMIN) for the calling task. */
_Bool swapfs_c_capable_sys_admin(void);
/* memalloc_nofs_save()/restore() around allocations under fs locks. */
unsigned int swapfs_c_nofs_save(void);
void swapfs_c_nofs_restore(unsigned int saved);

/* ---- Buffer heads (metadata blocks) ------------------------------------ */

/*
 * Read block `blk` (of the filesystem's block size); NULL on IO error. A read
 * from disk clears the buffer's verified flag.
 */
struct buffer_head *swapfs_c_bread(struct super_block *sb,
				   unsigned long long blk);
/* The block passed its checks since it was last read from disk. */
_Bool swapfs_c_buffer_verified(struct buffer_head *bh);
void swapfs_c_set_buffer_verified(struct buffer_head *bh);
void swapfs_c_brelse(struct buffer_head *bh);
unsigned char *swapfs_c_bh_data(struct buffer_head *bh);
void swapfs_c_lock_buffer(struct buffer_head *bh);
void swapfs_c_unlock_buffer(struct buffer_head *bh);
/*
 * The contents the journal keeps of a block bitmap as last committed (jbd2's
 * undo copy, made by swapfs_c_handle_get_undo_access), or NULL if there is
 * none. Not NULL: returns with the journal head's state lock held, which
 * swapfs_c_committed_end() drops; nothing may sleep in between. The caller
 * holds the buffer lock; it may set bits in the copy (a block freed stays
 * set there until the transaction that freed it commits).
 */
unsigned char *swapfs_c_committed_begin(struct buffer_head *bh);
void swapfs_c_committed_end(struct buffer_head *bh);

/* ---- jbd2 -------------------------------------------------------------- */

/* Sets up the journal at blocks [start, start + len) of the device (not
 * loaded yet: swapfs_c_journal_load replays it), or NULL and *err. */
struct journal_s *swapfs_c_journal_init(struct super_block *sb,
					unsigned long long start,
					unsigned long long len,
					unsigned int commit_secs, int *err);
/* Whether the log holds transactions to replay. */
_Bool swapfs_c_journal_needs_recovery(struct journal_s *journal);
/* jbd2_journal_load(): reads the journal's superblock and replays it. */
int swapfs_c_journal_load(struct journal_s *journal);
/* The sequence number the next transaction will have. */
unsigned int swapfs_c_journal_next_tid(struct journal_s *journal);
/* Sets the jbd2 features of swapfs' format (revoke, 64-bit, checksums v3). */
int swapfs_c_journal_set_features(struct journal_s *journal);
/* Clears the error the journal was aborted with, in memory and, if
 * update_sb, in its superblock. */
void swapfs_c_journal_clear_err(struct journal_s *journal, _Bool update_sb);
/* jbd2_journal_destroy(); returns the journal's error state. */
int swapfs_c_journal_close(struct journal_s *journal);
int swapfs_c_journal_errno(struct journal_s *journal);
void swapfs_c_journal_abort(struct journal_s *journal, int err);
int swapfs_c_journal_force_commit(struct journal_s *journal);
/* Commit and checkpoint everything: the log is empty afterwards. */
int swapfs_c_journal_flush(struct journal_s *journal);
/* Wait until transaction `tid` is committed (start its commit if needed). */
int swapfs_c_journal_complete(struct journal_s *journal, unsigned int tid);
/* Whether transaction `tid` is committed already. */
_Bool swapfs_c_journal_tid_committed(struct journal_s *journal,
				     unsigned int tid);
/* Whether the commit of `tid` has still to flush the device's cache before
 * its commit block (jbd2_trans_will_send_data_barrier). */
_Bool swapfs_c_journal_will_flush(struct journal_s *journal, unsigned int tid);
/* The running transaction, else the committing one, else the last committed
 * one: where a change made just now could still be. */
unsigned int swapfs_c_journal_current_tid(struct journal_s *journal);
/* jbd2's transaction limits: the buffers a transaction may hold, those
 * its descriptor and commit blocks reserve, the revoke records one block
 * holds. */
struct swapfs_journal_limits {
	int max_buffers;
	int overhead;
	int revokes_per_block;
};
void swapfs_c_journal_limits(struct journal_s *journal,
			     struct swapfs_journal_limits *out);

/* A handle reserving `credits` blocks and `revokes` revoke records. */
struct jbd2_journal_handle *swapfs_c_handle_start(struct journal_s *journal,
						  int credits, int revokes,
						  int *err);
/* Abort the journal of the handle's transaction (a change failed midway). */
void swapfs_c_handle_abort_journal(struct jbd2_journal_handle *handle, int err);
int swapfs_c_handle_stop(struct jbd2_journal_handle *handle);
unsigned int swapfs_c_handle_tid(struct jbd2_journal_handle *handle);
int swapfs_c_handle_get_write_access(struct jbd2_journal_handle *handle,
				     struct buffer_head *bh);
/* Write access keeping the last committed contents (jbd2 undo access). */
int swapfs_c_handle_get_undo_access(struct jbd2_journal_handle *handle,
				    struct buffer_head *bh);
/* Block `blk` becomes new metadata: zeroed, uptodate, known to the journal
 * as created in this handle. NULL with *err set on failure. */
struct buffer_head *swapfs_c_handle_new_block(struct jbd2_journal_handle *handle,
					      struct super_block *sb,
					      unsigned long long blk, int *err);
int swapfs_c_handle_dirty_metadata(struct jbd2_journal_handle *handle,
				   struct buffer_head *bh);
/* A metadata block is freed: keep replay from overwriting its next use. */
int swapfs_c_handle_revoke(struct jbd2_journal_handle *handle,
			   struct super_block *sb, unsigned long long blk);
/* Whether the current task has a handle open (swap IO must never). */
_Bool swapfs_c_in_transaction(void);

/* ---- Inodes ------------------------------------------------------------ */

struct swapfs_inode_data *swapfs_c_inode_data(struct inode *inode);
unsigned long long swapfs_c_inode_ino(struct inode *inode);
struct super_block *swapfs_c_inode_sb(struct inode *inode);
void swapfs_c_inode_get_attrs(struct inode *inode, struct swapfs_attrs *a);
/* Copies every field of `a` into the VFS inode (not the size). */
void swapfs_c_inode_set_attrs(struct inode *inode,
			      const struct swapfs_attrs *a);
long long swapfs_c_inode_size(struct inode *inode);
/* The size on disk, read without the lock (a snapshot that may be stale). */
unsigned long long swapfs_c_inode_disk_size_unlocked(struct inode *inode);
void swapfs_c_inode_set_size(struct inode *inode, long long size);
void swapfs_c_inode_set_blocks(struct inode *inode, unsigned long long blocks);
void swapfs_c_inode_set_nlink(struct inode *inode, unsigned int nlink);
unsigned int swapfs_c_inode_nlink(struct inode *inode);
void swapfs_c_inode_touch_ctime(struct inode *inode);
void swapfs_c_inode_touch_mtime_ctime(struct inode *inode);
_Bool swapfs_c_inode_is_swapfile(struct inode *inode);
void swapfs_c_map_lock(struct inode *inode, _Bool write);
void swapfs_c_map_unlock(struct inode *inode, _Bool write);
/* The symlink target cached in the VFS inode (kmalloc'd copy). */
int swapfs_c_inode_set_link(struct inode *inode, const unsigned char *target,
			    unsigned int len);
/* Look up (or read in) inode `ino`; NULL with *err set on failure. */
struct inode *swapfs_c_iget(struct super_block *sb, unsigned long long ino,
			    int *err);
void swapfs_c_iput(struct inode *inode);
/* A new, locked inode `ino` owned as inode_init_owner() decides. */
struct inode *swapfs_c_new_inode(struct super_block *sb,
				 struct mnt_idmap *idmap, struct inode *dir,
				 unsigned int mode, unsigned long long ino,
				 int *err);
/* Make a new inode live (d_instantiate_new) or throw it away. */
void swapfs_c_instantiate(struct dentry *dentry, struct inode *inode);
void swapfs_c_discard_new_inode(struct inode *inode);
/* Zero the page cache of the block holding `size` past it
 * (iomap_truncate_page); *zeroed says whether it did. No transaction open. */
int swapfs_c_truncate_page(struct inode *inode, long long size, _Bool *zeroed);
/* Set i_size and drop the page cache beyond it (truncate_setsize). */
void swapfs_c_truncate_setsize(struct inode *inode, long long size);
/*
 * Page cache operations of fallocate and remap, for a regular file whose
 * i_rwsem and invalidate lock the caller holds, with no transaction open.
 * Byte ranges are inclusive of `end`.
 */
/* Write back and wait for [start, end], then drop it from the page cache. */
int swapfs_c_flush_unmap(struct inode *inode, long long start, long long end);
/* Write back and wait for [start, end] (and its end-of-IO work). */
int swapfs_c_flush_range(struct inode *inode, long long start, long long end);
/* inode_newsize_ok(): may the file grow to `size` (RLIMIT_FSIZE, which
 * also sends SIGXFSZ, and s_maxbytes)? 0 or -EFBIG. */
int swapfs_c_newsize_ok(struct inode *inode, long long size);
/* Writes (write_iter): a write's inode, i_rwsem, waiting for direct IO,
 * ->dirty_inode. */
struct inode *swapfs_c_write_inode_of(struct kiocb *iocb);
void swapfs_c_inode_lock(struct inode *inode);
void swapfs_c_inode_unlock(struct inode *inode);
void swapfs_c_inode_dio_wait(struct inode *inode);
void swapfs_c_mark_inode_dirty(struct inode *inode);
/* generic_write_checks(): the bytes to write (the iterator truncated to the
 * limits, ki_pos moved for O_APPEND), 0, or an error. */
long long swapfs_c_write_checks(struct kiocb *iocb, struct iov_iter *from);
/* file_remove_privs() and file_update_time() of the write's file. */
int swapfs_c_write_remove_privs(struct kiocb *iocb);
int swapfs_c_write_update_time(struct kiocb *iocb);
/* Whether the write is direct (IOCB_DIRECT); turning it into a buffered
 * one. */
_Bool swapfs_c_write_is_direct(struct kiocb *iocb);
void swapfs_c_write_set_buffered(struct kiocb *iocb);
/* iomap_dio_rw() with swapfs' ops, IOMAP_DIO_FORCE_WAIT if `wait`: bytes
 * written, -EIOCBQUEUED (queued), -ENOTBLK (do it buffered) or an error. */
long long swapfs_c_write_direct(struct kiocb *iocb, struct iov_iter *from,
				_Bool wait);
/* iomap_file_buffered_write(): bytes written or an error. */
long long swapfs_c_write_buffered(struct kiocb *iocb, struct iov_iter *from);
/* generic_write_sync(): syncs `written` bytes for O_DSYNC/O_SYNC. */
long long swapfs_c_write_sync(struct kiocb *iocb, long long written);
/* iomap_zero_range(): zero [pos, pos + len) in the page cache. */
int swapfs_c_zero_range(struct inode *inode, long long pos, long long len);
/* iomap_file_unshare() over [pos, pos + len), then write it back and wait:
 * the shared written blocks there are copied to private ones. */
int swapfs_c_unshare_range(struct inode *inode, long long pos, long long len);

/* ---- Dentries and directory iteration --------------------------------- */

const unsigned char *swapfs_c_dentry_name(struct dentry *dentry,
					  unsigned int *len);
struct inode *swapfs_c_dentry_inode(struct dentry *dentry);
_Bool swapfs_c_dir_emit(struct dir_context *ctx, const unsigned char *name,
			unsigned int len, unsigned long long ino,
			unsigned int dtype);
long long swapfs_c_dir_pos(struct dir_context *ctx);
void swapfs_c_dir_set_pos(struct dir_context *ctx, long long pos);

/* ---- Swap ----------------------------------------------------------------- */

/* The pinned swap state of an inode (Rust-owned), or NULL. */
void *swapfs_c_inode_swap(struct inode *inode);
void swapfs_c_inode_set_swap(struct inode *inode, void *swap);
/* Writes back the inode's dirty pages, waits, waits for pending
 * unwritten-extent conversions, and unmaps the file from every process
 * (so a write through an old mapping faults again). */
int swapfs_c_inode_flush(struct inode *inode);
unsigned int swapfs_c_page_size(void);
struct inode *swapfs_c_file_inode(struct file *file);
/* The file's path for messages, NUL-terminated in `buf`; its length. */
int swapfs_c_file_path(struct file *file, char *buf, int len);
/* file_modified(): drops privileges, updates the times. */
int swapfs_c_file_modified(struct file *file);
/* Whether writes through the file are synchronous (O_DSYNC, O_SYNC, or a
 * sync inode or mount). */
_Bool swapfs_c_file_dsync(struct file *file);

/* Activation: register one run with mm (add_swap_extent()); returns the
 * number of new extents (0 if merged) or a negative errno. */
int swapfs_c_add_swap_extent(struct swap_info_struct *sis,
			     unsigned long long start_page,
			     unsigned long long nr_pages,
			     unsigned long long start_block);
void swapfs_c_sis_set_pages(struct swap_info_struct *sis, unsigned int max,
			    unsigned int pages);

/* Swap IO. A request covers one kiocb; bios are added one per device
 * segment and submitted at once; finish drops the submitter's reference
 * (with an error if submission failed); the kiocb completes once, when
 * the last reference goes. */
struct swapfs_swap_req *swapfs_c_swap_req_start(struct kiocb *iocb,
						void *swap,
						unsigned long long len,
						_Bool write);
int swapfs_c_swap_req_add_bio(struct swapfs_swap_req *req,
			      struct super_block *sb,
			      unsigned long long sector, struct iov_iter *iter,
			      unsigned long long bytes);
void swapfs_c_swap_req_finish(struct swapfs_swap_req *req, int err);
long long swapfs_c_kiocb_pos(struct kiocb *iocb);
struct inode *swapfs_c_kiocb_inode(struct kiocb *iocb);
unsigned long long swapfs_c_iter_count(struct iov_iter *iter);

/* Per-mount debugfs directory (NULL when debugfs is unavailable). */
struct dentry *swapfs_c_debugfs_sb_create(struct super_block *sb);
void swapfs_c_debugfs_remove(struct dentry *dir);
void swapfs_c_seq_puts(struct seq_file *m, const char *s, unsigned int len);

/* ---- Implemented in Rust ------------------------------------------------ */

int swapfs_rs_fill_super(struct super_block *sb,
			 const struct swapfs_mount_opts *opts, int silent);
int swapfs_rs_reconfigure(struct super_block *sb,
			  const struct swapfs_mount_opts *opts,
			  _Bool read_only);
void swapfs_rs_put_super(struct super_block *sb);
/* 0, or -EIO once the filesystem was shut down (FS_IOC_SHUTDOWN). */
int swapfs_rs_live(struct super_block *sb);
/* What C is about to do to a file's page cache or mappings. */
enum swapfs_op {
	SWAPFS_OP_WRITEBACK = 1,	/* write back its dirty pages */
	SWAPFS_OP_WRITE_FAULT,		/* make a mapped page writable */
	SWAPFS_OP_MAP,			/* map it, not shared and writable */
	SWAPFS_OP_MAP_SHARED_WRITE,	/* map it shared and writable */
};
/* swapfs_rs_may: nothing to do; succeed without acting. */
#define SWAPFS_MAY_SKIP 1
/* Whether C may do `op` (enum swapfs_op) to the file: 0, SWAPFS_MAY_SKIP,
 * or a negative errno (a shutdown; the rules of an active swapfile). */
int swapfs_rs_may(struct inode *inode, unsigned int op);
/* ->open of a regular file: 0, or -EIO after a shutdown (but swapoff can
 * still open an active swapfile). */
int swapfs_rs_open(struct inode *inode);
/* s_op->freeze_fs / unfreeze_fs. */
int swapfs_rs_freeze(struct super_block *sb);
int swapfs_rs_unfreeze(struct super_block *sb);
/* s_op->shutdown: the device is gone. */
void swapfs_rs_shutdown(struct super_block *sb);
/* unlocked_ioctl of files and directories. */
long swapfs_rs_ioctl(struct inode *inode, unsigned int cmd, unsigned long arg);
int swapfs_rs_sync_fs(struct super_block *sb, int wait);
int swapfs_rs_statfs(struct super_block *sb, struct swapfs_statfs *out);
/* The mount options fs_parser knows (swapfs_rs_set_option). */
enum swapfs_opt {
	SWAPFS_OPT_COMMIT = 1,		/* value: seconds */
	SWAPFS_OPT_ERRORS,		/* value: enum swapfs_errors_mode */
	SWAPFS_OPT_SWAP_UNSHARE,	/* value: 0 or 1 */
	SWAPFS_OPT_SWAP_UNWRITTEN,	/* value: 1 refuse, 0 allow */
};
/* A new fs_context's options: the defaults, or for a remount (`sb` not
 * NULL) the mount's own. */
void swapfs_rs_init_options(struct super_block *sb,
			    struct swapfs_mount_opts *out);
/* Sets one parsed option; 0, or -EINVAL with *why the limit it breaks. */
int swapfs_rs_set_option(struct swapfs_mount_opts *o, unsigned int opt,
			 unsigned int value, const char **why);
/* ->show_options: the options that differ from the defaults. */
void swapfs_rs_show_options(struct super_block *sb, struct seq_file *m);

int swapfs_rs_read_inode(struct inode *inode);
void swapfs_rs_dirty_inode(struct inode *inode);
void swapfs_rs_evict_inode(struct inode *inode);
int swapfs_rs_setsize(struct inode *inode, long long size);
int swapfs_rs_fsync(struct inode *inode, _Bool datasync);
/* s_op->write_inode; `sync`: a data-integrity writeback (WB_SYNC_ALL). */
int swapfs_rs_write_inode(struct inode *inode, _Bool sync);

long long swapfs_rs_lookup(struct inode *dir, const unsigned char *name,
			   unsigned int len);
int swapfs_rs_iterate(struct inode *dir, struct dir_context *ctx);
int swapfs_rs_create(struct mnt_idmap *idmap, struct inode *dir,
		     struct dentry *dentry, unsigned int mode,
		     unsigned int rdev, const unsigned char *target,
		     unsigned int target_len);
int swapfs_rs_link(struct dentry *old, struct inode *dir,
		   struct dentry *dentry);
int swapfs_rs_unlink(struct inode *dir, struct dentry *dentry);
int swapfs_rs_rmdir(struct inode *dir, struct dentry *dentry);
int swapfs_rs_rename(struct inode *old_dir, struct dentry *old_dentry,
		     struct inode *new_dir, struct dentry *new_dentry,
		     unsigned int flags);

/* `src` (zeroed by the caller) is filled for copy-on-write: the blocks
 * whose data the write replaces (iomap's srcmap). */
int swapfs_rs_iomap_begin(struct inode *inode, long long pos,
			  long long length, unsigned int flags,
			  struct swapfs_map *out, struct swapfs_map *src);
/* iomap_end of a mapping [pos, pos + length) that staged copy-on-write
 * blocks up to `map_end`, of which the write wrote `written` bytes. */
int swapfs_rs_iomap_end(struct inode *inode, long long pos, long long length,
			long long written, long long map_end);
/* Writeback of the dirty range [pos, pos + length): where it goes (stages
 * copy-on-write blocks for shared ones, never allocates otherwise). */
int swapfs_rs_map_blocks(struct inode *inode, long long pos, long long length,
			 struct swapfs_map *out);
/* A write of [pos, pos + length) to file data ended with `err`, in process
 * context: copy-on-write, unwritten conversion and the size, in Rust's
 * order; returns what the writer sees. */
#define SWAPFS_WRITE_COW	(1U << 0)	/* some went to staged blocks */
#define SWAPFS_WRITE_UNWRITTEN	(1U << 1)	/* some went to unwritten extents */
#define SWAPFS_WRITE_DIRECT	(1U << 2)	/* a direct write, else writeback */
/* write_iter: the whole write (locks, checks, zeroing past EOF, direct IO
 * and its buffered fallback, the size, the sync). */
long long swapfs_rs_write_iter(struct kiocb *iocb, struct iov_iter *from);
/* A writeback bio of [pos, pos + length) is about to be submitted (flags
 * as above): whether its end must run swapfs_rs_write_end, from the
 * workqueue, before the folios' writeback ends. */
_Bool swapfs_rs_write_needs_end(struct inode *inode, long long pos,
				long long length, unsigned int flags);
int swapfs_rs_write_end(struct inode *inode, long long pos, long long length,
			int err, unsigned int flags);

/* fallocate (the caller holds i_rwsem and the invalidate lock, and has
 * waited for direct IO). */
int swapfs_rs_fallocate(struct file *file, int mode, long long offset,
			long long len);
/* remap_file_range after generic_remap_file_range_prep (both inodes and
 * invalidate locks held): share [pos_in, pos_in + len) of `src` at
 * `pos_out` of `dst`. *remapped: bytes done, also on error. */
int swapfs_rs_remap(struct inode *src, long long pos_in, struct inode *dst,
		    long long pos_out, long long len, _Bool dedupe,
		    long long *remapped);

/* a_ops->swap_activate: returns the number of extents or an errno. */
int swapfs_rs_swap_activate(struct swap_info_struct *sis, struct file *file,
			    unsigned int max, unsigned long long *span);
void swapfs_rs_swap_deactivate(struct inode *inode);
/* Swap IO through the pinned table: -EIOCBQUEUED once submitted. */
int swapfs_rs_swap_io(struct kiocb *iocb, struct iov_iter *iter,
		      _Bool write);
/* A swap request completed: account it (any context, never sleeps). */
void swapfs_rs_swap_done(void *swap, unsigned long long bytes, int err,
			 _Bool write);
/* debugfs: the active swapfiles of a mount. */
void swapfs_rs_show_swapfiles(struct super_block *sb, struct seq_file *m);

#endif /* SWAPFS_HELPER_H */
