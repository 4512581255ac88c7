// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper, linked into swapfs.ko next to the Rust crate.
 *
 * Holds only what Rust cannot reach: kernel structures and functions that the
 * kernel crate's bindings do not cover (swap, iomap, jbd2), static inline
 * functions, and the operation tables whose layout differs between the
 * kernels swapfs supports. Every decision is made in Rust (swapfs_rs_*).
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/iomap.h>
#include <linux/jbd2.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/swap.h>
#include <linux/uio.h>
#include <linux/version.h>
#include <linux/writeback.h>

#include "swapfs_helper.h"

#if defined(SWAPFS_USE_SWAP_OPS)
#include <linux/swap_ops.h>
#define SWAPFS_HOOK		SWAPFS_HOOK_SWAP_OPS
#define SWAPFS_HOOK_NAME	"swap_ops"
#elif defined(SWAPFS_USE_SWAP_RW)
#define SWAPFS_HOOK		SWAPFS_HOOK_SWAP_RW
#define SWAPFS_HOOK_NAME	"swap_rw"
#else
#error "Kbuild must define SWAPFS_USE_SWAP_OPS or SWAPFS_USE_SWAP_RW"
#endif

MODULE_INFO(swap_hook, SWAPFS_HOOK_NAME);

#define SWAPFS_MAGIC	0x53465753	/* "SWFS", the on-disk magic */

/* Bios of the swap IO path come from here, never from the general pool. */
static struct bio_set swapfs_bioset;
static unsigned int swapfs_bio_reserve;
static struct dentry *swapfs_debugfs_root;
static struct kmem_cache *swapfs_inode_cachep;
/* Completion of writes to unwritten extents needs a transaction. */
static struct workqueue_struct *swapfs_endio_wq;

/* ---- Inodes ------------------------------------------------------------ */

struct swapfs_inode {
	struct swapfs_inode_data d;	/* Rust-owned plain data */
	void *swap;			/* Rust-owned pinned swap state */
	struct rw_semaphore map_lock;	/* protects d.root, the extent tree */
	spinlock_t ioend_lock;
	struct list_head ioend_list;	/* completed ioends to convert */
	struct work_struct ioend_work;
	struct inode vfs_inode;
};

static inline struct swapfs_inode *SWAPFS_I(struct inode *inode)
{
	return container_of(inode, struct swapfs_inode, vfs_inode);
}

static void swapfs_ioend_work(struct work_struct *work);

static struct inode *swapfs_alloc_inode(struct super_block *sb)
{
	struct swapfs_inode *si;

	si = alloc_inode_sb(sb, swapfs_inode_cachep, GFP_KERNEL);
	if (!si)
		return NULL;
	memset(&si->d, 0, sizeof(si->d));
	si->swap = NULL;
	return &si->vfs_inode;
}

static void swapfs_free_inode(struct inode *inode)
{
	if (S_ISLNK(inode->i_mode))
		kfree(inode->i_link);
	kmem_cache_free(swapfs_inode_cachep, SWAPFS_I(inode));
}

static void swapfs_inode_init_once(void *obj)
{
	struct swapfs_inode *si = obj;

	init_rwsem(&si->map_lock);
	spin_lock_init(&si->ioend_lock);
	INIT_LIST_HEAD(&si->ioend_list);
	INIT_WORK(&si->ioend_work, swapfs_ioend_work);
	inode_init_once(&si->vfs_inode);
}

struct swapfs_inode_data *swapfs_c_inode_data(struct inode *inode)
{
	return &SWAPFS_I(inode)->d;
}

unsigned long long swapfs_c_inode_ino(struct inode *inode)
{
	return inode->i_ino;
}

struct super_block *swapfs_c_inode_sb(struct inode *inode)
{
	return inode->i_sb;
}

void swapfs_c_inode_get_attrs(struct inode *inode, struct swapfs_attrs *a)
{
	struct timespec64 ts;

	a->mode = inode->i_mode;
	a->nlink = inode->i_nlink;
	a->uid = i_uid_read(inode);
	a->gid = i_gid_read(inode);
	a->rdev = new_encode_dev(inode->i_rdev);
	a->generation = inode->i_generation;
	a->size = i_size_read(inode);
	a->blocks = inode->i_blocks >> (inode->i_blkbits - 9);
	ts = inode_get_atime(inode);
	a->atime_sec = ts.tv_sec;
	a->atime_nsec = ts.tv_nsec;
	ts = inode_get_mtime(inode);
	a->mtime_sec = ts.tv_sec;
	a->mtime_nsec = ts.tv_nsec;
	ts = inode_get_ctime(inode);
	a->ctime_sec = ts.tv_sec;
	a->ctime_nsec = ts.tv_nsec;
}

void swapfs_c_inode_set_attrs(struct inode *inode, const struct swapfs_attrs *a)
{
	inode->i_mode = a->mode;
	set_nlink(inode, a->nlink);
	i_uid_write(inode, a->uid);
	i_gid_write(inode, a->gid);
	inode->i_rdev = new_decode_dev(a->rdev);
	inode->i_generation = a->generation;
	inode->i_blocks = a->blocks << (inode->i_blkbits - 9);
	inode_set_atime(inode, a->atime_sec, a->atime_nsec);
	inode_set_mtime(inode, a->mtime_sec, a->mtime_nsec);
	inode_set_ctime(inode, a->ctime_sec, a->ctime_nsec);
}

long long swapfs_c_inode_size(struct inode *inode)
{
	return i_size_read(inode);
}

void swapfs_c_inode_set_size(struct inode *inode, long long size)
{
	i_size_write(inode, size);
}

void swapfs_c_inode_set_blocks(struct inode *inode, unsigned long long blocks)
{
	spin_lock(&inode->i_lock);
	inode->i_blocks = blocks << (inode->i_blkbits - 9);
	spin_unlock(&inode->i_lock);
}

void swapfs_c_inode_set_nlink(struct inode *inode, unsigned int nlink)
{
	set_nlink(inode, nlink);
}

unsigned int swapfs_c_inode_nlink(struct inode *inode)
{
	return inode->i_nlink;
}

void swapfs_c_inode_touch_ctime(struct inode *inode)
{
	inode_set_ctime_current(inode);
}

void swapfs_c_inode_touch_mtime_ctime(struct inode *inode)
{
	inode_set_mtime_to_ts(inode, inode_set_ctime_current(inode));
}

_Bool swapfs_c_inode_is_swapfile(struct inode *inode)
{
	return IS_SWAPFILE(inode);
}

void swapfs_c_map_lock(struct inode *inode, _Bool write)
{
	if (write)
		down_write(&SWAPFS_I(inode)->map_lock);
	else
		down_read(&SWAPFS_I(inode)->map_lock);
}

void swapfs_c_map_unlock(struct inode *inode, _Bool write)
{
	if (write)
		up_write(&SWAPFS_I(inode)->map_lock);
	else
		up_read(&SWAPFS_I(inode)->map_lock);
}

int swapfs_c_inode_set_link(struct inode *inode, const unsigned char *target,
			    unsigned int len)
{
	char *link = kmemdup_nul(target, len, GFP_KERNEL);

	if (!link)
		return -ENOMEM;
	kfree(inode->i_link);
	inode->i_link = link;
	return 0;
}

/* ---- Operation tables (filled in below) -------------------------------- */

static const struct super_operations swapfs_super_ops;
static const struct inode_operations swapfs_dir_iops;
static const struct inode_operations swapfs_file_iops;
static const struct inode_operations swapfs_symlink_iops;
static const struct inode_operations swapfs_special_iops;
static const struct file_operations swapfs_dir_fops;
static const struct file_operations swapfs_file_fops;
static const struct address_space_operations swapfs_aops;

static void swapfs_set_ops(struct inode *inode)
{
	switch (inode->i_mode & S_IFMT) {
	case S_IFREG:
		inode->i_op = &swapfs_file_iops;
		inode->i_fop = &swapfs_file_fops;
		inode->i_mapping->a_ops = &swapfs_aops;
		mapping_set_large_folios(inode->i_mapping);
		break;
	case S_IFDIR:
		inode->i_op = &swapfs_dir_iops;
		inode->i_fop = &swapfs_dir_fops;
		break;
	case S_IFLNK:
		inode->i_op = &swapfs_symlink_iops;
		break;
	default:
		inode->i_op = &swapfs_special_iops;
		init_special_inode(inode, inode->i_mode, inode->i_rdev);
		break;
	}
}

struct inode *swapfs_c_iget(struct super_block *sb, unsigned long long ino,
			    int *err)
{
	struct inode *inode = iget_locked(sb, ino);
	int ret;

	if (!inode) {
		*err = -ENOMEM;
		return NULL;
	}
	if (!(inode_state_read_once(inode) & I_NEW))
		return inode;
	ret = swapfs_rs_read_inode(inode);
	if (ret) {
		iget_failed(inode);
		*err = ret;
		return NULL;
	}
	swapfs_set_ops(inode);
	unlock_new_inode(inode);
	return inode;
}

void swapfs_c_iput(struct inode *inode)
{
	iput(inode);
}

struct inode *swapfs_c_new_inode(struct super_block *sb,
				 struct mnt_idmap *idmap, struct inode *dir,
				 unsigned int mode, unsigned long long ino,
				 int *err)
{
	struct inode *inode = new_inode(sb);

	if (!inode) {
		*err = -ENOMEM;
		return NULL;
	}
	inode_init_owner(idmap, inode, dir, mode);
	inode->i_ino = ino;
	inode->i_generation = get_random_u32();
	simple_inode_init_ts(inode);
	if (insert_inode_locked(inode) < 0) {
		/* The number is still in the inode cache: a corrupt bitmap. */
		make_bad_inode(inode);
		iput(inode);
		*err = -EFSCORRUPTED;
		return NULL;
	}
	return inode;
}

void swapfs_c_instantiate(struct dentry *dentry, struct inode *inode)
{
	swapfs_set_ops(inode);
	d_instantiate_new(dentry, inode);
}

void swapfs_c_discard_new_inode(struct inode *inode)
{
	clear_nlink(inode);
	discard_new_inode(inode);
}

/* ---- Dentries and directories ------------------------------------------ */

const unsigned char *swapfs_c_dentry_name(struct dentry *dentry,
					  unsigned int *len)
{
	*len = dentry->d_name.len;
	return dentry->d_name.name;
}

struct inode *swapfs_c_dentry_inode(struct dentry *dentry)
{
	return d_inode(dentry);
}

_Bool swapfs_c_dir_emit(struct dir_context *ctx, const unsigned char *name,
			unsigned int len, unsigned long long ino,
			unsigned int dtype)
{
	return dir_emit(ctx, name, len, ino, dtype);
}

long long swapfs_c_dir_pos(struct dir_context *ctx)
{
	return ctx->pos;
}

void swapfs_c_dir_set_pos(struct dir_context *ctx, long long pos)
{
	ctx->pos = pos;
}

static struct dentry *swapfs_lookup(struct inode *dir, struct dentry *dentry,
				    unsigned int flags)
{
	struct inode *inode = NULL;
	long long ino;
	int err = 0;

	err = swapfs_rs_live(dir->i_sb);
	if (err)
		return ERR_PTR(err);
	ino = swapfs_rs_lookup(dir, dentry->d_name.name, dentry->d_name.len);
	if (ino < 0)
		return ERR_PTR(ino);
	if (ino > 0) {
		inode = swapfs_c_iget(dir->i_sb, ino, &err);
		if (!inode)
			return ERR_PTR(err);
	}
	return d_splice_alias(inode, dentry);
}

static int swapfs_iterate(struct file *file, struct dir_context *ctx)
{
	struct inode *dir = file_inode(file);
	int err = swapfs_rs_live(dir->i_sb);

	if (err)
		return err;
	if (!dir_emit_dots(file, ctx))
		return 0;
	return swapfs_rs_iterate(dir, ctx);
}

/*
 * 7.2's ->create takes an `excl` argument, 7.3's does not; swapfs does not
 * need it (O_EXCL is enforced by the VFS before ->create).
 */
static int swapfs_create_common(struct mnt_idmap *idmap, struct inode *dir,
				struct dentry *dentry, umode_t mode)
{
	return swapfs_rs_create(idmap, dir, dentry, mode, 0, NULL, 0);
}

#if defined(SWAPFS_USE_SWAP_OPS)
static int swapfs_create(struct mnt_idmap *idmap, struct inode *dir,
			 struct dentry *dentry, umode_t mode)
{
	return swapfs_create_common(idmap, dir, dentry, mode);
}
#else
static int swapfs_create(struct mnt_idmap *idmap, struct inode *dir,
			 struct dentry *dentry, umode_t mode, bool excl)
{
	return swapfs_create_common(idmap, dir, dentry, mode);
}
#endif

static struct dentry *swapfs_mkdir(struct mnt_idmap *idmap, struct inode *dir,
				   struct dentry *dentry, umode_t mode)
{
	return ERR_PTR(swapfs_rs_create(idmap, dir, dentry, S_IFDIR | mode, 0,
					NULL, 0));
}

static int swapfs_mknod(struct mnt_idmap *idmap, struct inode *dir,
			struct dentry *dentry, umode_t mode, dev_t rdev)
{
	return swapfs_rs_create(idmap, dir, dentry, mode, new_encode_dev(rdev),
				NULL, 0);
}

static int swapfs_symlink(struct mnt_idmap *idmap, struct inode *dir,
			  struct dentry *dentry, const char *target)
{
	return swapfs_rs_create(idmap, dir, dentry, S_IFLNK | 0777, 0, target,
				strlen(target));
}

static int swapfs_link(struct dentry *old, struct inode *dir,
		       struct dentry *dentry)
{
	struct inode *inode = d_inode(old);
	int err = swapfs_rs_link(old, dir, dentry);

	if (err)
		return err;
	ihold(inode);
	d_instantiate(dentry, inode);
	return 0;
}

static int swapfs_unlink(struct inode *dir, struct dentry *dentry)
{
	return swapfs_rs_unlink(dir, dentry);
}

static int swapfs_rmdir(struct inode *dir, struct dentry *dentry)
{
	return swapfs_rs_rmdir(dir, dentry);
}

static int swapfs_rename(struct mnt_idmap *idmap, struct inode *old_dir,
			 struct dentry *old_dentry, struct inode *new_dir,
			 struct dentry *new_dentry, unsigned int flags)
{
	return swapfs_rs_rename(old_dir, old_dentry, new_dir, new_dentry,
				flags);
}

/* ---- Attributes and truncate ------------------------------------------- */

static const struct iomap_ops swapfs_iomap_ops;

int swapfs_c_truncate_page(struct inode *inode, long long size, bool *zeroed)
{
	*zeroed = false;
	return iomap_truncate_page(inode, size, zeroed, &swapfs_iomap_ops, NULL,
				   NULL);
}

void swapfs_c_truncate_setsize(struct inode *inode, long long size)
{
	truncate_setsize(inode, size);
}

int swapfs_c_flush_unmap(struct inode *inode, long long start, long long end)
{
	int err = filemap_write_and_wait_range(inode->i_mapping, start, end);

	if (err)
		return err;
	/* Conversions and copy-on-write commits of that IO are done too. */
	flush_work(&SWAPFS_I(inode)->ioend_work);
	truncate_pagecache_range(inode, start, end);
	return 0;
}

int swapfs_c_flush_range(struct inode *inode, long long start, long long end)
{
	int err = filemap_write_and_wait_range(inode->i_mapping, start, end);

	flush_work(&SWAPFS_I(inode)->ioend_work);
	return err;
}

int swapfs_c_newsize_ok(struct inode *inode, long long size)
{
	return inode_newsize_ok(inode, size);
}

int swapfs_c_zero_range(struct inode *inode, long long pos, long long len)
{
	return iomap_zero_range(inode, pos, len, NULL, &swapfs_iomap_ops, NULL,
				NULL);
}

int swapfs_c_unshare_range(struct inode *inode, long long pos, long long len)
{
	return iomap_file_unshare(inode, pos, len, &swapfs_iomap_ops, NULL);
}

static int swapfs_setattr(struct mnt_idmap *idmap, struct dentry *dentry,
			  struct iattr *iattr)
{
	struct inode *inode = d_inode(dentry);
	int err;

	err = swapfs_rs_live(inode->i_sb);
	if (err)
		return err;
	err = setattr_prepare(idmap, dentry, iattr);
	if (err)
		return err;

	if (iattr->ia_valid & ATTR_SIZE) {
		inode_dio_wait(inode);
		filemap_invalidate_lock(inode->i_mapping);
		err = swapfs_rs_setsize(inode, iattr->ia_size);
		filemap_invalidate_unlock(inode->i_mapping);
		if (err)
			return err;
	}
	setattr_copy(idmap, inode, iattr);
	mark_inode_dirty(inode);
	return 0;
}

static int swapfs_getattr(struct mnt_idmap *idmap, const struct path *path,
			  struct kstat *stat, u32 request_mask,
			  unsigned int query_flags)
{
	struct inode *inode = d_inode(path->dentry);
	int err = swapfs_rs_live(inode->i_sb);

	if (err)
		return err;
	generic_fillattr(idmap, request_mask, inode, stat);
	return 0;
}

static int swapfs_fiemap(struct inode *inode, struct fiemap_extent_info *fi,
			 u64 start, u64 len)
{
	int err;

	inode_lock_shared(inode);
	err = iomap_fiemap(inode, fi, start, len, &swapfs_iomap_ops);
	inode_unlock_shared(inode);
	return err;
}

/* ---- Regular file IO: iomap -------------------------------------------- */

static unsigned int swapfs_iomap_flags(unsigned int flags)
{
	unsigned int out = 0;

	if (flags & IOMAP_WRITE)
		out |= SWAPFS_IOMAP_WRITE;
	if (flags & IOMAP_ZERO)
		out |= SWAPFS_IOMAP_ZERO;
	if (flags & IOMAP_REPORT)
		out |= SWAPFS_IOMAP_REPORT;
	if (flags & IOMAP_FAULT)
		out |= SWAPFS_IOMAP_FAULT;
	if (flags & IOMAP_DIRECT)
		out |= SWAPFS_IOMAP_DIRECT;
	if (flags & IOMAP_NOWAIT)
		out |= SWAPFS_IOMAP_NOWAIT;
	if (flags & IOMAP_UNSHARE)
		out |= SWAPFS_IOMAP_UNSHARE;
	return out;
}

static void swapfs_fill_iomap(struct inode *inode, const struct swapfs_map *m,
			      struct iomap *iomap)
{
	iomap->bdev = inode->i_sb->s_bdev;
	iomap->offset = m->offset;
	iomap->length = m->length;
	iomap->flags = 0;
	if (m->flags & SWAPFS_MAP_F_NEW)
		iomap->flags |= IOMAP_F_NEW;
	if (m->flags & SWAPFS_MAP_F_SHARED)
		iomap->flags |= IOMAP_F_SHARED;
	if (m->flags & SWAPFS_MAP_F_STAGED)
		iomap->flags |= IOMAP_F_PRIVATE;
	switch (m->type) {
	case SWAPFS_MAP_MAPPED:
		iomap->type = IOMAP_MAPPED;
		iomap->addr = m->addr;
		break;
	case SWAPFS_MAP_UNWRITTEN:
		iomap->type = IOMAP_UNWRITTEN;
		iomap->addr = m->addr;
		break;
	default:
		iomap->type = IOMAP_HOLE;
		iomap->addr = IOMAP_NULL_ADDR;
		break;
	}
	if (m->flags & SWAPFS_MAP_F_DIRTY)
		iomap->flags |= IOMAP_F_DIRTY;
}

static int swapfs_iomap_begin(struct inode *inode, loff_t pos, loff_t length,
			      unsigned int flags, struct iomap *iomap,
			      struct iomap *srcmap)
{
	struct swapfs_map m = {}, src = {};
	int err;

	err = swapfs_rs_iomap_begin(inode, pos, length,
				    swapfs_iomap_flags(flags), &m, &src);
	if (err)
		return err;
	swapfs_fill_iomap(inode, &m, iomap);
	/* Copy-on-write: iomap reads what the write does not cover from the
	 * old (shared) blocks. */
	if (src.length)
		swapfs_fill_iomap(inode, &src, srcmap);
	return 0;
}

static int swapfs_iomap_end(struct inode *inode, loff_t pos, loff_t length,
			    ssize_t written, unsigned int flags,
			    struct iomap *iomap)
{
	/* Only a mapping that staged copy-on-write blocks has work here. */
	if (!(iomap->flags & IOMAP_F_PRIVATE))
		return 0;
	return swapfs_rs_iomap_end(inode, pos, length, written,
				   iomap->offset + iomap->length);
}

static const struct iomap_ops swapfs_iomap_ops = {
	.iomap_begin	= swapfs_iomap_begin,
	.iomap_end	= swapfs_iomap_end,
};

static int swapfs_read_folio(struct file *file, struct folio *folio)
{
	iomap_bio_read_folio(folio, &swapfs_iomap_ops);
	return 0;
}

static void swapfs_readahead(struct readahead_control *rac)
{
	iomap_bio_readahead(rac, &swapfs_iomap_ops);
}

static ssize_t swapfs_writeback_range(struct iomap_writepage_ctx *wpc,
				      struct folio *folio, u64 pos,
				      unsigned int len, u64 end_pos)
{
	struct swapfs_map m = {};
	int err;

	if (pos < wpc->iomap.offset ||
	    pos >= wpc->iomap.offset + wpc->iomap.length) {
		err = swapfs_rs_map_blocks(wpc->inode, pos, len, &m);
		if (err)
			return err;
		swapfs_fill_iomap(wpc->inode, &m, &wpc->iomap);
	}
	return iomap_add_to_ioend(wpc, folio, pos, end_pos, len);
}

/*
 * Writes to unwritten extents complete in a workqueue, which converts the
 * range to written in a transaction and only then ends the folios'
 * writeback, so that a crash never shows the blocks as written before their
 * data is on disk. Copy-on-write writes (to staged blocks) complete there
 * too: the transaction maps the new blocks in place of the shared ones.
 */
static void swapfs_ioend_work(struct work_struct *work)
{
	struct swapfs_inode *si = container_of(work, struct swapfs_inode,
					       ioend_work);
	struct iomap_ioend *ioend;
	struct list_head list;
	unsigned long flags;
	unsigned int how;

	spin_lock_irqsave(&si->ioend_lock, flags);
	list_replace_init(&si->ioend_list, &list);
	spin_unlock_irqrestore(&si->ioend_lock, flags);

	while ((ioend = list_first_entry_or_null(&list, struct iomap_ioend,
						 io_list))) {
		int err = blk_status_to_errno(ioend->io_bio.bi_status);

		list_del_init(&ioend->io_list);
		iomap_ioend_try_merge(ioend, &list);
		how = (ioend->io_flags & IOMAP_IOEND_SHARED ?
			SWAPFS_WRITE_COW : 0) |
		      (ioend->io_flags & IOMAP_IOEND_UNWRITTEN ?
			SWAPFS_WRITE_UNWRITTEN : 0);
		err = swapfs_rs_write_end(ioend->io_inode, ioend->io_offset,
					  ioend->io_size, err, how);
		iomap_finish_ioends(ioend, err);
		cond_resched();
	}
}

static void swapfs_end_bio(struct bio *bio)
{
	struct iomap_ioend *ioend = iomap_ioend_from_bio(bio);
	struct swapfs_inode *si = SWAPFS_I(ioend->io_inode);
	unsigned long flags;

	spin_lock_irqsave(&si->ioend_lock, flags);
	if (list_empty(&si->ioend_list))
		WARN_ON_ONCE(!queue_work(swapfs_endio_wq, &si->ioend_work));
	list_add_tail(&ioend->io_list, &si->ioend_list);
	spin_unlock_irqrestore(&si->ioend_lock, flags);
}

/* Does the IO write data past the inode's size on disk? */
static bool swapfs_ioend_is_append(struct iomap_ioend *ioend)
{
	struct swapfs_inode *si = SWAPFS_I(ioend->io_inode);

	return ioend->io_offset + ioend->io_size > READ_ONCE(si->d.disk_size);
}

static int swapfs_writeback_submit(struct iomap_writepage_ctx *wpc, int error)
{
	struct iomap_ioend *ioend = wpc->wb_ctx;

	if ((ioend->io_flags & (IOMAP_IOEND_UNWRITTEN | IOMAP_IOEND_SHARED)) ||
	    swapfs_ioend_is_append(ioend)) {
		ioend->io_bio.bi_end_io = swapfs_end_bio;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 3, 0)
		/* Completion is deferred to our workqueue already. */
		bio_clear_flag(&ioend->io_bio, BIO_COMPLETE_IN_TASK);
#endif
	}
	return iomap_ioend_writeback_submit(wpc, error);
}

static const struct iomap_writeback_ops swapfs_writeback_ops = {
	.writeback_range	= swapfs_writeback_range,
	.writeback_submit	= swapfs_writeback_submit,
};

static int swapfs_writepages(struct address_space *mapping,
			     struct writeback_control *wbc)
{
	int err = swapfs_rs_may(mapping->host, SWAPFS_OP_WRITEBACK);

	if (err)
		return err == SWAPFS_MAY_SKIP ? 0 : err;

	struct iomap_writepage_ctx wpc = {
		.inode		= mapping->host,
		.wbc		= wbc,
		.ops		= &swapfs_writeback_ops,
	};

	return iomap_writepages(&wpc);
}

void swapfs_c_flush_endio(void)
{
	flush_workqueue(swapfs_endio_wq);
}

static int swapfs_dio_end_io(struct kiocb *iocb, ssize_t size, int error,
			     unsigned int flags)
{
	unsigned int how = SWAPFS_WRITE_DIRECT |
		(flags & IOMAP_DIO_COW ? SWAPFS_WRITE_COW : 0) |
		(flags & IOMAP_DIO_UNWRITTEN ? SWAPFS_WRITE_UNWRITTEN : 0);

	return swapfs_rs_write_end(file_inode(iocb->ki_filp), iocb->ki_pos,
				   size, error, how);
}

static const struct iomap_dio_ops swapfs_dio_ops = {
	.end_io		= swapfs_dio_end_io,
};

static ssize_t swapfs_file_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	ssize_t ret;

	ret = swapfs_rs_live(inode->i_sb);
	if (ret)
		return ret;
	if (!iov_iter_count(to))
		return 0;
	if (iocb->ki_flags & IOCB_DIRECT) {
		inode_lock_shared(inode);
		ret = iomap_dio_rw(iocb, to, &swapfs_iomap_ops, NULL, 0, NULL,
				   0);
		inode_unlock_shared(inode);
		return ret;
	}
	return generic_file_read_iter(iocb, to);
}

static ssize_t swapfs_file_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	loff_t old_size;
	ssize_t ret;

	ret = swapfs_rs_live(inode->i_sb);
	if (ret)
		return ret;
	inode_lock(inode);
	old_size = i_size_read(inode);
	/* generic_write_checks() refuses writes to an active swapfile. */
	ret = generic_write_checks(iocb, from);
	if (ret <= 0)
		goto out;
	ret = file_remove_privs(iocb->ki_filp);
	if (ret)
		goto out;
	ret = file_update_time(iocb->ki_filp);
	if (ret)
		goto out;
	/*
	 * Past the old end the file reads as zeroes: blocks mapped between it
	 * and this write (left by a crash or a failed write) are zeroed
	 * first, as xfs_file_write_zero_eof() does. A direct write in flight
	 * past the end converts its blocks, then moves i_size, at completion:
	 * wait for it first (as xfs), or this zeroing would land on its data.
	 */
	if (iocb->ki_pos > old_size) {
		inode_dio_wait(inode);
		old_size = i_size_read(inode);
	}
	if (iocb->ki_pos > old_size) {
		ret = iomap_zero_range(inode, old_size, iocb->ki_pos - old_size,
				       NULL, &swapfs_iomap_ops, NULL, NULL);
		if (ret)
			goto out;
	}
	if (iocb->ki_flags & IOCB_DIRECT) {
		/*
		 * A direct write that is not block-aligned zeroes the rest of
		 * its blocks: two in flight at once would zero each other's
		 * data. Such writes wait for every other direct IO and for
		 * their own completion (as ext4 and xfs), under i_rwsem.
		 */
		bool unaligned = (iocb->ki_pos | iov_iter_count(from)) &
				 (i_blocksize(inode) - 1);

		if (unaligned)
			inode_dio_wait(inode);
		ret = iomap_dio_rw(iocb, from, &swapfs_iomap_ops,
				   &swapfs_dio_ops,
				   unaligned ? IOMAP_DIO_FORCE_WAIT : 0, NULL, 0);
		/* -ENOTBLK: iomap asks for buffered IO (copy-on-write of a
		 * partial block), never an error for the caller. */
		if (ret == -ENOTBLK)
			ret = 0;
		/* A short direct write falls back to buffered IO. */
		if (ret >= 0 && iov_iter_count(from)) {
			ssize_t done = ret;

			iocb->ki_flags &= ~IOCB_DIRECT;
			ret = iomap_file_buffered_write(iocb, from,
							&swapfs_iomap_ops,
							NULL, NULL);
			if (ret >= 0)
				ret += done;
			else if (done)
				ret = done;
		}
	} else {
		ret = iomap_file_buffered_write(iocb, from, &swapfs_iomap_ops,
						NULL, NULL);
	}
	/*
	 * iomap moves i_size in memory only and leaves writing it to the
	 * filesystem: journal it now (->dirty_inode), or an extending write
	 * that allocates nothing (into the last block) would lose its size,
	 * even to fsync and umount. Past the old size, the disk holds zeroes
	 * (unwritten extents, or the zeroed tail of the last block) until the
	 * data is written back.
	 */
	if (i_size_read(inode) > old_size)
		mark_inode_dirty(inode);
out:
	inode_unlock(inode);
	/* A direct write synced itself (iomap, O_DSYNC and O_SYNC); what went
	 * through the page cache, a direct write's buffered rest included
	 * (IOCB_DIRECT cleared), syncs here. */
	if (ret > 0 && !(iocb->ki_flags & IOCB_DIRECT))
		ret = generic_write_sync(iocb, ret);
	return ret;
}

static vm_fault_t swapfs_page_mkwrite(struct vm_fault *vmf)
{
	struct inode *inode = file_inode(vmf->vma->vm_file);
	vm_fault_t ret;
	int err;

	sb_start_pagefault(inode->i_sb);
	/* Under the invalidate lock, which swap activation holds. */
	filemap_invalidate_lock_shared(inode->i_mapping);
	err = swapfs_rs_may(inode, SWAPFS_OP_WRITE_FAULT);
	if (err) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	file_update_time(vmf->vma->vm_file);
	ret = iomap_page_mkwrite(vmf, &swapfs_iomap_ops, NULL);
out:
	filemap_invalidate_unlock_shared(inode->i_mapping);
	sb_end_pagefault(inode->i_sb);
	return ret;
}

static const struct vm_operations_struct swapfs_file_vm_ops = {
	.fault		= filemap_fault,
	.map_pages	= filemap_map_pages,
	.page_mkwrite	= swapfs_page_mkwrite,
};

static int swapfs_file_mmap_prepare(struct vm_area_desc *desc)
{
	struct inode *inode = file_inode(desc->file);
	bool shared_write = vma_desc_test_all(desc, VMA_SHARED_BIT,
					     VMA_MAYWRITE_BIT);
	int err = swapfs_rs_may(inode, shared_write ? SWAPFS_OP_MAP_SHARED_WRITE
						   : SWAPFS_OP_MAP);

	if (err)
		return err;
	file_accessed(desc->file);
	desc->vm_ops = &swapfs_file_vm_ops;
	return 0;
}

static loff_t swapfs_file_llseek(struct file *file, loff_t offset, int whence)
{
	struct inode *inode = file_inode(file);

	switch (whence) {
	case SEEK_HOLE:
		inode_lock_shared(inode);
		offset = iomap_seek_hole(inode, offset, &swapfs_iomap_ops);
		inode_unlock_shared(inode);
		break;
	case SEEK_DATA:
		inode_lock_shared(inode);
		offset = iomap_seek_data(inode, offset, &swapfs_iomap_ops);
		inode_unlock_shared(inode);
		break;
	default:
		return generic_file_llseek(file, offset, whence);
	}
	if (offset < 0)
		return offset;
	return vfs_setpos(file, offset, inode->i_sb->s_maxbytes);
}

static int swapfs_file_open(struct inode *inode, struct file *file)
{
	int err = swapfs_rs_open(inode);

	if (err)
		return err;
	file->f_mode |= FMODE_CAN_ODIRECT;
	return generic_file_open(inode, file);
}

static int swapfs_fsync(struct file *file, loff_t start, loff_t end,
			int datasync)
{
	struct inode *inode = file_inode(file);
	int err;

	err = swapfs_rs_live(inode->i_sb);
	if (err)
		return err;
	err = file_write_and_wait_range(file, start, end);
	if (err)
		return err;
	/* Conversions of unwritten extents must be in the transaction. */
	flush_work(&SWAPFS_I(inode)->ioend_work);
	return swapfs_rs_fsync(inode, datasync);
}

/* The modes, the checks and the sync for O_DSYNC are Rust's. */
static long swapfs_fallocate(struct file *file, int mode, loff_t offset,
			     loff_t len)
{
	struct inode *inode = file_inode(file);
	long ret;

	ret = swapfs_rs_live(inode->i_sb);
	if (ret)
		return ret;

	inode_lock(inode);
	/* Direct IO may change the size and the extents on completion. */
	inode_dio_wait(inode);
	filemap_invalidate_lock(inode->i_mapping);
	ret = swapfs_rs_fallocate(file, mode, offset, len);
	filemap_invalidate_unlock(inode->i_mapping);
	inode_unlock(inode);
	return ret;
}

/*
 * FICLONE, FICLONERANGE, FIDEDUPERANGE and copy_file_range on one
 * filesystem: the VFS checks and flushes (generic_remap_file_range_prep),
 * Rust shares the blocks.
 */
static loff_t swapfs_remap_file_range(struct file *file_in, loff_t pos_in,
				      struct file *file_out, loff_t pos_out,
				      loff_t len, unsigned int remap_flags)
{
	struct inode *src = file_inode(file_in);
	struct inode *dst = file_inode(file_out);
	long long remapped = 0;
	loff_t ret;

	if (remap_flags & ~(REMAP_FILE_DEDUP | REMAP_FILE_ADVISORY))
		return -EINVAL;
	ret = swapfs_rs_live(src->i_sb);
	if (ret)
		return ret;

	lock_two_nondirectories(src, dst);
	filemap_invalidate_lock_two(src->i_mapping, dst->i_mapping);
	ret = generic_remap_file_range_prep(file_in, pos_in, file_out, pos_out,
					    &len, remap_flags);
	if (ret || len == 0)
		goto out_unlock;
	ret = swapfs_rs_remap(src, pos_in, dst, pos_out, len,
			      remap_flags & REMAP_FILE_DEDUP, &remapped);
out_unlock:
	filemap_invalidate_unlock_two(src->i_mapping, dst->i_mapping);
	unlock_two_nondirectories(src, dst);
	/* As xfs: a caller that cannot take a short result gets the error. */
	if (ret && remapped < len && !(remap_flags & REMAP_FILE_CAN_SHORTEN))
		return ret;
	return remapped > 0 ? remapped : ret;
}

/* ---- Swap ----------------------------------------------------------------- */

void *swapfs_c_inode_swap(struct inode *inode)
{
	return READ_ONCE(SWAPFS_I(inode)->swap);
}

void swapfs_c_inode_set_swap(struct inode *inode, void *swap)
{
	WRITE_ONCE(SWAPFS_I(inode)->swap, swap);
}

int swapfs_c_inode_flush(struct inode *inode)
{
	int err = filemap_write_and_wait(inode->i_mapping);

	flush_work(&SWAPFS_I(inode)->ioend_work);
	/*
	 * Writable mappings made before swapon must fault again, so that
	 * page_mkwrite sees S_SWAPFILE and refuses (SIGBUS) instead of
	 * letting file data reach the swap area.
	 */
	unmap_mapping_range(inode->i_mapping, 0, 0, 0);
	return err;
}

unsigned int swapfs_c_page_size(void)
{
	return PAGE_SIZE;
}

struct inode *swapfs_c_file_inode(struct file *file)
{
	return file_inode(file);
}

int swapfs_c_file_path(struct file *file, char *buf, int len)
{
	char *p = file_path(file, buf, len);

	if (IS_ERR(p))
		return PTR_ERR(p);
	memmove(buf, p, strlen(p) + 1);
	return strlen(buf);
}

int swapfs_c_file_modified(struct file *file)
{
	return file_modified(file);
}

bool swapfs_c_file_dsync(struct file *file)
{
	return IS_SYNC(file_inode(file)) || (file->f_flags & O_DSYNC);
}

int swapfs_c_add_swap_extent(struct swap_info_struct *sis,
			     unsigned long long start_page,
			     unsigned long long nr_pages,
			     unsigned long long start_block)
{
	return add_swap_extent(sis, start_page, nr_pages, start_block);
}

void swapfs_c_sis_set_pages(struct swap_info_struct *sis, unsigned int max,
			    unsigned int pages)
{
	sis->max = max;
	sis->pages = pages;
}

#if defined(SWAPFS_USE_SWAP_OPS)
static const struct swap_ops swapfs_swap_ops;
#endif

/* One swap IO request (one kiocb), from swapfs_req_pool. */
struct swapfs_swap_req {
	struct kiocb *iocb;
	void *swap;
	unsigned long long len;
	atomic_t remaining;	/* bios in flight + the submitter */
	blk_status_t status;
	bool write;
};

static mempool_t *swapfs_req_pool;

struct swapfs_swap_req *swapfs_c_swap_req_start(struct kiocb *iocb,
						void *swap,
						unsigned long long len,
						_Bool write)
{
	/* GFP_NOIO from a mempool: may wait, never fails, never recurses
	 * into IO or the filesystem. */
	struct swapfs_swap_req *req = mempool_alloc(swapfs_req_pool, GFP_NOIO);

	req->iocb = iocb;
	req->swap = swap;
	req->len = len;
	req->write = write;
	req->status = BLK_STS_OK;
	atomic_set(&req->remaining, 1);
	return req;
}

static void swapfs_swap_req_put(struct swapfs_swap_req *req)
{
	struct kiocb *iocb = req->iocb;
	long ret;

	if (!atomic_dec_and_test(&req->remaining))
		return;
	ret = req->status ? blk_status_to_errno(req->status) : req->len;
	swapfs_rs_swap_done(req->swap, req->len, req->status ? ret : 0,
			    req->write);
	mempool_free(req, swapfs_req_pool);
	iocb->ki_complete(iocb, ret);
}

static void swapfs_swap_end_io(struct bio *bio)
{
	struct swapfs_swap_req *req = bio->bi_private;

	if (bio->bi_status)
		cmpxchg(&req->status, BLK_STS_OK, bio->bi_status);
	bio_put(bio);
	swapfs_swap_req_put(req);
}

#if defined(CONFIG_MEMCG) && defined(CONFIG_BLK_CGROUP)
/* As mm does for swap writes: charge the IO to the pages' cgroup. */
static void swapfs_bio_associate(struct bio *bio, struct folio *folio)
{
	struct cgroup_subsys_state *css;

	if (!folio_memcg_charged(folio))
		return;
	rcu_read_lock();
	css = cgroup_get_e_css(folio_memcg(folio)->css.cgroup,
			       &io_cgrp_subsys);
	rcu_read_unlock();
	bio_associate_blkg_from_css(bio, css);
	css_put(css);
}
#else
static void swapfs_bio_associate(struct bio *bio, struct folio *folio)
{
}
#endif

int swapfs_c_swap_req_add_bio(struct swapfs_swap_req *req,
			      struct super_block *sb,
			      unsigned long long sector, struct iov_iter *iter,
			      unsigned long long bytes)
{
	blk_opf_t opf = req->write ? REQ_OP_WRITE | REQ_SWAP : REQ_OP_READ;
	const struct bio_vec *bv;
	unsigned long long left;
	unsigned int nr_vecs = 0;
	size_t skip;
	struct bio *bio;

	if (!bytes || bytes > iov_iter_count(iter) || !iov_iter_is_bvec(iter))
		return -EINVAL;
	/* How many of the request's bvecs the segment touches. */
	for (bv = iter->bvec, skip = iter->iov_offset, left = bytes; left;
	     bv++, skip = 0) {
		left -= min_t(unsigned long long, left, bv->bv_len - skip);
		nr_vecs++;
	}
	/* GFP_NOIO from the module's bioset: may wait for a bio to come back,
	 * never fails, never recurses into IO or the filesystem. */
	bio = bio_alloc_bioset(sb->s_bdev, nr_vecs, opf, GFP_NOIO,
			       &swapfs_bioset);
	for (bv = iter->bvec, skip = iter->iov_offset, left = bytes; left;
	     bv++, skip = 0) {
		unsigned int len = min_t(unsigned long long, left,
					 bv->bv_len - skip);

		__bio_add_page(bio, bv->bv_page, len, bv->bv_offset + skip);
		left -= len;
	}
	if (req->write)
		swapfs_bio_associate(bio, page_folio(iter->bvec->bv_page));
	iov_iter_advance(iter, bytes);
	bio->bi_iter.bi_sector = sector;
	bio->bi_private = req;
	bio->bi_end_io = swapfs_swap_end_io;
	atomic_inc(&req->remaining);
	submit_bio(bio);
	return 0;
}

void swapfs_c_swap_req_finish(struct swapfs_swap_req *req, int err)
{
	if (err)
		cmpxchg(&req->status, BLK_STS_OK, errno_to_blk_status(err));
	swapfs_swap_req_put(req);
}

long long swapfs_c_kiocb_pos(struct kiocb *iocb)
{
	return iocb->ki_pos;
}

struct inode *swapfs_c_kiocb_inode(struct kiocb *iocb)
{
	return file_inode(iocb->ki_filp);
}

unsigned long long swapfs_c_iter_count(struct iov_iter *iter)
{
	return iov_iter_count(iter);
}

static int swapfs_swap_activate(struct swap_info_struct *sis,
				struct file *file, sector_t *span)
{
	struct address_space *mapping = file->f_mapping;
	unsigned long long sp = 0;
	int ret;

	/* swapon holds i_rwsem; no page fault may dirty the file while it is
	 * flushed, unshared (swap_unshare) and walked, and no direct IO
	 * submitted before may still be writing it. */
	inode_dio_wait(file_inode(file));
	filemap_invalidate_lock(mapping);
	ret = swapfs_rs_swap_activate(sis, file, sis->max, &sp);
	filemap_invalidate_unlock(mapping);
	if (ret < 0)
		return ret;
	*span = sp;
#if defined(SWAPFS_USE_SWAP_OPS)
	sis->ops = &swapfs_swap_ops;
#else
	sis->flags |= SWP_FS_OPS;
#endif
	return ret;
}

static void swapfs_swap_deactivate(struct file *file)
{
	swapfs_rs_swap_deactivate(file_inode(file));
}

#if defined(SWAPFS_USE_SWAP_OPS)
static void swapfs_swap_submit(struct swap_io_ctx *ctx, int rw)
{
	struct swap_iocb *sio = ctx->sio;
	struct iov_iter iter;
	int ret;

	swap_fs_prepare_rw(ctx, rw, &iter);
	ret = swapfs_rs_swap_io(&sio->iocb, &iter, rw == WRITE);
	if (ret != -EIOCBQUEUED)
		sio->iocb.ki_complete(&sio->iocb, ret);
}

static void swapfs_swap_submit_write(struct swap_io_ctx *ctx)
{
	swapfs_swap_submit(ctx, WRITE);
}

static void swapfs_swap_submit_read(struct swap_io_ctx *ctx)
{
	swapfs_swap_submit(ctx, READ);
}

/*
 * No SWAP_OPS_F_REQUIRE_NOFS: swap IO never enters the filesystem (no
 * block mapping, no transaction, no fs lock), so reclaim may use GFP_NOIO
 * semantics as for a swap partition.
 */
static const struct swap_ops swapfs_swap_ops = {
	.flags		= 0,
	.can_merge	= swap_fs_can_merge,
	.submit_write	= swapfs_swap_submit_write,
	.submit_read	= swapfs_swap_submit_read,
};
#else
static int swapfs_swap_rw(struct kiocb *iocb, struct iov_iter *iter)
{
	return swapfs_rs_swap_io(iocb, iter, iov_iter_rw(iter) == WRITE);
}
#endif

/* ---- Operation tables --------------------------------------------------- */

static const struct address_space_operations swapfs_aops = {
	.read_folio		= swapfs_read_folio,
	.readahead		= swapfs_readahead,
	.writepages		= swapfs_writepages,
	.dirty_folio		= iomap_dirty_folio,
	.release_folio		= iomap_release_folio,
	.invalidate_folio	= iomap_invalidate_folio,
	.migrate_folio		= filemap_migrate_folio,
	.is_partially_uptodate	= iomap_is_partially_uptodate,
	.error_remove_folio	= generic_error_remove_folio,
	.swap_activate		= swapfs_swap_activate,
	.swap_deactivate	= swapfs_swap_deactivate,
#if defined(SWAPFS_USE_SWAP_RW)
	.swap_rw		= swapfs_swap_rw,
#endif
};

/* ioctls on files and directories: Rust knows which and what they do. */
static long swapfs_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return swapfs_rs_ioctl(file_inode(file), cmd, arg);
}

bool swapfs_c_capable_sys_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

int swapfs_c_sb_freeze_bdev(struct super_block *sb)
{
	return bdev_freeze(sb->s_bdev);
}

void swapfs_c_sb_thaw_bdev(struct super_block *sb)
{
	bdev_thaw(sb->s_bdev);
}

static const struct file_operations swapfs_file_fops = {
	.owner		= THIS_MODULE,
	.llseek		= swapfs_file_llseek,
	.read_iter	= swapfs_file_read_iter,
	.write_iter	= swapfs_file_write_iter,
	.mmap_prepare	= swapfs_file_mmap_prepare,
	.open		= swapfs_file_open,
	.fsync		= swapfs_fsync,
	.splice_read	= filemap_splice_read,
	.splice_write	= iter_file_splice_write,
	.fallocate	= swapfs_fallocate,
	.remap_file_range = swapfs_remap_file_range,
	.unlocked_ioctl	= swapfs_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.fop_flags	= FOP_BUFFER_RASYNC | FOP_BUFFER_WASYNC,
};

static const struct file_operations swapfs_dir_fops = {
	.owner		= THIS_MODULE,
	.llseek		= generic_file_llseek,
	.read		= generic_read_dir,
	.iterate_shared	= swapfs_iterate,
	.fsync		= swapfs_fsync,
	.unlocked_ioctl	= swapfs_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static const struct inode_operations swapfs_dir_iops = {
	.lookup		= swapfs_lookup,
	.create		= swapfs_create,
	.link		= swapfs_link,
	.unlink		= swapfs_unlink,
	.symlink	= swapfs_symlink,
	.mkdir		= swapfs_mkdir,
	.rmdir		= swapfs_rmdir,
	.mknod		= swapfs_mknod,
	.rename		= swapfs_rename,
	.setattr	= swapfs_setattr,
	.getattr	= swapfs_getattr,
};

static const struct inode_operations swapfs_file_iops = {
	.setattr	= swapfs_setattr,
	.getattr	= swapfs_getattr,
	.fiemap		= swapfs_fiemap,
};

static const struct inode_operations swapfs_symlink_iops = {
	.get_link	= simple_get_link,
	.setattr	= swapfs_setattr,
	.getattr	= swapfs_getattr,
};

static const struct inode_operations swapfs_special_iops = {
	.setattr	= swapfs_setattr,
	.getattr	= swapfs_getattr,
};

/* ---- Superblock --------------------------------------------------------- */

static void swapfs_dirty_inode(struct inode *inode, int flags)
{
	/* Size and timestamp updates are journaled when they happen. */
	swapfs_rs_dirty_inode(inode);
}

static int swapfs_write_inode(struct inode *inode, struct writeback_control *wbc)
{
	return swapfs_rs_write_inode(inode, wbc->sync_mode == WB_SYNC_ALL);
}

static void swapfs_evict_inode(struct inode *inode)
{
	truncate_inode_pages_final(&inode->i_data);
	if (S_ISREG(inode->i_mode))
		flush_work(&SWAPFS_I(inode)->ioend_work);
	swapfs_rs_evict_inode(inode);
	clear_inode(inode);
}

static void swapfs_put_super(struct super_block *sb)
{
	swapfs_rs_put_super(sb);
}

/* The device went away: as FS_IOC_SHUTDOWN without a log flush. */
static void swapfs_shutdown(struct super_block *sb)
{
	swapfs_rs_shutdown(sb);
}

static int swapfs_freeze_fs(struct super_block *sb)
{
	return swapfs_rs_freeze(sb);
}

static int swapfs_unfreeze_fs(struct super_block *sb)
{
	return swapfs_rs_unfreeze(sb);
}

static int swapfs_sync_fs(struct super_block *sb, int wait)
{
	return swapfs_rs_sync_fs(sb, wait);
}

static int swapfs_statfs(struct dentry *dentry, struct kstatfs *buf)
{
	struct super_block *sb = dentry->d_sb;
	struct swapfs_statfs st = {};
	int err;

	err = swapfs_rs_statfs(sb, &st);
	if (err)
		return err;
	buf->f_type = SWAPFS_MAGIC;
	buf->f_bsize = st.block_size;
	buf->f_blocks = st.blocks;
	buf->f_bfree = st.bfree;
	buf->f_bavail = st.bavail;
	buf->f_files = st.files;
	buf->f_ffree = st.ffree;
	buf->f_namelen = st.namelen;
	buf->f_fsid = uuid_to_fsid(st.uuid);
	return 0;
}

static int swapfs_show_options(struct seq_file *m, struct dentry *root)
{
	swapfs_rs_show_options(root->d_sb, m);
	return 0;
}

static const struct super_operations swapfs_super_ops = {
	.alloc_inode	= swapfs_alloc_inode,
	.free_inode	= swapfs_free_inode,
	.dirty_inode	= swapfs_dirty_inode,
	.write_inode	= swapfs_write_inode,
	.evict_inode	= swapfs_evict_inode,
	.put_super	= swapfs_put_super,
	.shutdown	= swapfs_shutdown,
	.freeze_fs	= swapfs_freeze_fs,
	.unfreeze_fs	= swapfs_unfreeze_fs,
	.sync_fs	= swapfs_sync_fs,
	.statfs		= swapfs_statfs,
	.show_options	= swapfs_show_options,
};

void *swapfs_c_sb_info(struct super_block *sb)
{
	return sb->s_fs_info;
}

void swapfs_c_sb_set_info(struct super_block *sb, void *info)
{
	sb->s_fs_info = info;
}

const char *swapfs_c_sb_id(struct super_block *sb)
{
	return sb->s_id;
}

_Bool swapfs_c_sb_rdonly(struct super_block *sb)
{
	return sb_rdonly(sb);
}

unsigned long long swapfs_c_sb_dev_bytes(struct super_block *sb)
{
	return bdev_nr_bytes(sb->s_bdev);
}

unsigned int swapfs_c_sb_block_size(struct super_block *sb)
{
	return sb->s_blocksize;
}

int swapfs_c_sb_set_blocksize(struct super_block *sb, int size)
{
	return sb_set_blocksize(sb, size);
}

void swapfs_c_sb_setup(struct super_block *sb, const unsigned char *uuid,
		       unsigned long long max_bytes)
{
	sb->s_magic = SWAPFS_MAGIC;
	sb->s_op = &swapfs_super_ops;
	sb->s_maxbytes = min_t(u64, max_bytes, MAX_LFS_FILESIZE);
	sb->s_time_gran = 1;
	sb->s_time_min = S64_MIN;
	sb->s_time_max = S64_MAX;
	/* Writeback goes through iomap, which tags each bio with the cgroup
	 * that owns the pages (wbc_init_bio): cgroup writeback works. */
	sb->s_iflags |= SB_I_CGROUPWB;
	super_set_uuid(sb, uuid, 16);
	super_set_sysfs_name_bdev(sb);
}

int swapfs_c_sb_make_root(struct super_block *sb, struct inode *root)
{
	sb->s_root = d_make_root(root);
	return sb->s_root ? 0 : -ENOMEM;
}

void swapfs_c_sb_force_ro(struct super_block *sb)
{
	sb->s_flags |= SB_RDONLY;
}

int swapfs_c_sb_flush_device(struct super_block *sb)
{
	return blkdev_issue_flush(sb->s_bdev);
}

unsigned int swapfs_c_nofs_save(void)
{
	return memalloc_nofs_save();
}

void swapfs_c_nofs_restore(unsigned int saved)
{
	memalloc_nofs_restore(saved);
}

/* ---- Buffer heads ------------------------------------------------------- */

/*
 * Set once a metadata block passed its checks (magic, checksum, block
 * number); cleared whenever the block is read from disk again, as ext4's
 * BH_Verified. The bits from BH_JBDPrivateStart on are the filesystem's.
 */
#define BH_SwapfsVerified BH_JBDPrivateStart
BUFFER_FNS(SwapfsVerified, swapfs_verified)

struct buffer_head *swapfs_c_bread(struct super_block *sb,
				   unsigned long long blk)
{
	struct buffer_head *bh = sb_getblk(sb, blk);

	if (!bh)
		return NULL;
	if (!bh_uptodate_or_lock(bh)) {
		/* Locked: new contents from disk, checked afresh. */
		clear_buffer_swapfs_verified(bh);
		/* Metadata, at priority (as ext4): a task holding a journal
		 * handle must not wait behind throttled data or swap writes. */
		if (__bh_read(bh, REQ_META | REQ_PRIO, true) < 0) {
			brelse(bh);
			return NULL;
		}
	}
	return bh;
}

bool swapfs_c_buffer_verified(struct buffer_head *bh)
{
	return buffer_swapfs_verified(bh);
}

void swapfs_c_set_buffer_verified(struct buffer_head *bh)
{
	set_buffer_swapfs_verified(bh);
}

void swapfs_c_brelse(struct buffer_head *bh)
{
	brelse(bh);
}

unsigned char *swapfs_c_bh_data(struct buffer_head *bh)
{
	return bh->b_data;
}

void swapfs_c_lock_buffer(struct buffer_head *bh)
{
	lock_buffer(bh);
}

void swapfs_c_unlock_buffer(struct buffer_head *bh)
{
	unlock_buffer(bh);
}

/* ---- jbd2 --------------------------------------------------------------- */

/*
 * The journal lives inside the filesystem's device: its blocks are numbered
 * from its own start (the jbd2 superblock is journal block 0, the log
 * starts at s_first = 1), and jbd2 maps them here.
 */
static int swapfs_journal_bmap(journal_t *journal, sector_t *block)
{
	*block += journal->j_blk_offset;
	return 0;
}

struct journal_s *swapfs_c_journal_open(struct super_block *sb,
					unsigned long long start,
					unsigned long long len,
					unsigned int commit_secs, int *err)
{
	journal_t *journal;
	bool recover;
	int ret;

	journal = jbd2_journal_init_dev(sb->s_bdev, sb->s_bdev, start, len,
					sb->s_blocksize);
	if (IS_ERR(journal)) {
		*err = PTR_ERR(journal);
		return NULL;
	}
	journal->j_private = sb;
	journal->j_bmap = swapfs_journal_bmap;
	if (commit_secs)
		journal->j_commit_interval = commit_secs * HZ;
	write_lock(&journal->j_state_lock);
	journal->j_flags |= JBD2_BARRIER;
	write_unlock(&journal->j_state_lock);

	/*
	 * jbd2 recovers silently; say when it does (s_start != 0: the log
	 * holds transactions not yet checkpointed), as ext4 does.
	 */
	recover = journal->j_superblock->s_start != 0;
	if (recover)
		pr_info("%s: recovering the journal\n", sb->s_id);
	ret = jbd2_journal_load(journal);
	if (ret) {
		jbd2_journal_destroy(journal);
		*err = ret;
		return NULL;
	}
	if (recover)
		pr_info("%s: journal recovery complete, next transaction %u\n",
			sb->s_id, journal->j_transaction_sequence);
	/*
	 * An aborted journal (a metadata write failed before) loads and
	 * replays normally; report it once through *err > 0 and clear it, as
	 * ext4 does, so the filesystem can be used and marked as having had
	 * errors.
	 */
	*err = 0;
	if (jbd2_journal_errno(journal)) {
		int e = jbd2_journal_errno(journal);

		/*
		 * The error comes from the journal superblock (s_errno) and can
		 * be any value on a hostile image: report it only if it is an
		 * errno, -EIO otherwise (negating INT_MIN would overflow).
		 */
		*err = e < 0 && e >= -MAX_ERRNO ? -e : EIO;
		jbd2_journal_clear_err(journal);
		if (!sb_rdonly(sb))
			jbd2_journal_update_sb_errno(journal);
	}
	if (!jbd2_journal_set_features(journal, 0, 0,
				       JBD2_FEATURE_INCOMPAT_REVOKE |
				       JBD2_FEATURE_INCOMPAT_64BIT |
				       JBD2_FEATURE_INCOMPAT_CSUM_V3)) {
		jbd2_journal_destroy(journal);
		*err = -EINVAL;
		return NULL;
	}
	return journal;
}

int swapfs_c_journal_close(struct journal_s *journal)
{
	return jbd2_journal_destroy(journal);
}

int swapfs_c_journal_errno(struct journal_s *journal)
{
	return jbd2_journal_errno(journal);
}

void swapfs_c_journal_abort(struct journal_s *journal, int err)
{
	jbd2_journal_abort(journal, err);
}

int swapfs_c_journal_force_commit(struct journal_s *journal)
{
	return jbd2_journal_force_commit(journal);
}

int swapfs_c_journal_flush(struct journal_s *journal)
{
	int err;

	/* As ext4_freeze(): no handle runs while the log is emptied. */
	jbd2_journal_lock_updates(journal);
	err = jbd2_journal_flush(journal, 0);
	jbd2_journal_unlock_updates(journal);
	return err;
}

void swapfs_c_sb_start_intwrite(struct super_block *sb)
{
	sb_start_intwrite(sb);
}

void swapfs_c_sb_end_intwrite(struct super_block *sb)
{
	sb_end_intwrite(sb);
}

int swapfs_c_journal_complete(struct journal_s *journal, unsigned int tid)
{
	return jbd2_complete_transaction(journal, tid);
}

_Bool swapfs_c_journal_tid_committed(struct journal_s *journal,
				     unsigned int tid)
{
	return tid_geq(READ_ONCE(journal->j_commit_sequence), tid);
}

_Bool swapfs_c_journal_will_flush(struct journal_s *journal, unsigned int tid)
{
	return jbd2_trans_will_send_data_barrier(journal, tid);
}

/* As ext4_iget(): the transaction a change made now could still be in. */
unsigned int swapfs_c_journal_current_tid(struct journal_s *journal)
{
	transaction_t *t;
	tid_t tid;

	read_lock(&journal->j_state_lock);
	t = journal->j_running_transaction ?: journal->j_committing_transaction;
	tid = t ? t->t_tid : journal->j_commit_sequence;
	read_unlock(&journal->j_state_lock);
	return tid;
}

void swapfs_c_journal_limits(struct journal_s *journal,
			     struct swapfs_journal_limits *out)
{
	out->max_buffers = journal->j_max_transaction_buffers;
	out->overhead = journal->j_transaction_overhead_buffers;
	out->revokes_per_block = journal->j_revoke_records_per_block;
}

struct jbd2_journal_handle *swapfs_c_handle_start(struct journal_s *journal,
						  int credits, int revokes,
						  int *err)
{
	handle_t *handle = jbd2__journal_start(journal, credits, 0, revokes,
					       GFP_NOFS, 0, 0);

	if (IS_ERR(handle)) {
		*err = PTR_ERR(handle);
		return NULL;
	}
	return handle;
}

void swapfs_c_handle_abort_journal(struct jbd2_journal_handle *handle, int err)
{
	if (handle->h_transaction)
		jbd2_journal_abort(handle->h_transaction->t_journal, err);
}

int swapfs_c_handle_stop(struct jbd2_journal_handle *handle)
{
	return jbd2_journal_stop(handle);
}

unsigned int swapfs_c_handle_tid(struct jbd2_journal_handle *handle)
{
	return handle->h_transaction->t_tid;
}

int swapfs_c_handle_get_write_access(struct jbd2_journal_handle *handle,
				     struct buffer_head *bh)
{
	return jbd2_journal_get_write_access(handle, bh);
}

int swapfs_c_handle_get_undo_access(struct jbd2_journal_handle *handle,
				    struct buffer_head *bh)
{
	return jbd2_journal_get_undo_access(handle, bh);
}

/* As ocfs2_test_bg_bit_allocatable() and ext3_free_blocks_sb(). */
unsigned char *swapfs_c_committed_begin(struct buffer_head *bh)
{
	struct journal_head *jh = jbd2_journal_grab_journal_head(bh);

	if (!jh)
		return NULL;
	spin_lock(&jh->b_state_lock);
	if (jh->b_committed_data)
		return jh->b_committed_data;
	spin_unlock(&jh->b_state_lock);
	jbd2_journal_put_journal_head(jh);
	return NULL;
}

void swapfs_c_committed_end(struct buffer_head *bh)
{
	struct journal_head *jh = bh2jh(bh);

	spin_unlock(&jh->b_state_lock);
	jbd2_journal_put_journal_head(jh);
}

struct buffer_head *swapfs_c_handle_new_block(struct jbd2_journal_handle *handle,
					      struct super_block *sb,
					      unsigned long long blk, int *err)
{
	struct buffer_head *bh = sb_getblk(sb, blk);
	int ret;

	if (!bh) {
		*err = -ENOMEM;
		return NULL;
	}
	/* As ext4_getblk(): create access and zeroing under the lock. */
	lock_buffer(bh);
	ret = jbd2_journal_get_create_access(handle, bh);
	if (ret) {
		unlock_buffer(bh);
		brelse(bh);
		*err = ret;
		return NULL;
	}
	memset(bh->b_data, 0, bh->b_size);
	set_buffer_uptodate(bh);
	unlock_buffer(bh);
	return bh;
}

int swapfs_c_handle_dirty_metadata(struct jbd2_journal_handle *handle,
				   struct buffer_head *bh)
{
	return jbd2_journal_dirty_metadata(handle, bh);
}

int swapfs_c_handle_revoke(struct jbd2_journal_handle *handle,
			   struct super_block *sb, unsigned long long blk)
{
	struct buffer_head *bh = sb_find_get_block(sb, blk);

	/* jbd2_journal_revoke() drops the reference it is given. */
	return jbd2_journal_revoke(handle, blk, bh);
}

_Bool swapfs_c_in_transaction(void)
{
	return journal_current_handle() != NULL;
}

/* ---- Mount ---------------------------------------------------------------- */

static const struct constant_table swapfs_param_errors[] = {
	{ "continue",	SWAPFS_ERRORS_CONTINUE },
	{ "remount-ro",	SWAPFS_ERRORS_REMOUNT_RO },
	{}
};

static const struct constant_table swapfs_param_unwritten[] = {
	{ "allow",	0 },
	{ "refuse",	1 },
	{}
};

static const struct fs_parameter_spec swapfs_param_spec[] = {
	fsparam_u32("commit", SWAPFS_OPT_COMMIT),
	fsparam_enum("errors", SWAPFS_OPT_ERRORS, swapfs_param_errors),
	fsparam_flag_no("swap_unshare", SWAPFS_OPT_SWAP_UNSHARE),
	fsparam_enum("swap_unwritten", SWAPFS_OPT_SWAP_UNWRITTEN,
		     swapfs_param_unwritten),
	{}
};

static int swapfs_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	struct fs_parse_result result;
	const char *why = NULL;
	unsigned int value;
	int opt;

	opt = fs_parse(fc, swapfs_param_spec, param, &result);
	if (opt < 0)
		return opt;
	/* A flag's value is whether it was not negated. */
	value = opt == SWAPFS_OPT_SWAP_UNSHARE ? !result.negated : result.uint_32;
	if (swapfs_rs_set_option(fc->fs_private, opt, value, &why))
		return invalfc(fc, "%s=%u: %s", param->key, value, why);
	return 0;
}

static int swapfs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	/*
	 * Blocks cached from before this mount (the device written while
	 * something else held it open) are dropped, so that every metadata
	 * block is checked against what is on disk now (BH_SwapfsVerified).
	 */
	invalidate_bdev(sb->s_bdev);
	return swapfs_rs_fill_super(sb, fc->fs_private,
				    fc->sb_flags & SB_SILENT);
}

static int swapfs_get_tree(struct fs_context *fc)
{
	return get_tree_bdev(fc, swapfs_fill_super);
}

static int swapfs_reconfigure(struct fs_context *fc)
{
	sync_filesystem(fc->root->d_sb);
	return swapfs_rs_reconfigure(fc->root->d_sb, fc->fs_private,
				     fc->sb_flags & SB_RDONLY);
}

static void swapfs_free_fc(struct fs_context *fc)
{
	kfree(fc->fs_private);
}

static const struct fs_context_operations swapfs_context_ops = {
	.parse_param	= swapfs_parse_param,
	.get_tree	= swapfs_get_tree,
	.reconfigure	= swapfs_reconfigure,
	.free		= swapfs_free_fc,
};

static int swapfs_init_fs_context(struct fs_context *fc)
{
	struct swapfs_mount_opts *o = kzalloc_obj(*o);

	if (!o)
		return -ENOMEM;
	swapfs_rs_init_options(fc->purpose == FS_CONTEXT_FOR_RECONFIGURE ?
			       fc->root->d_sb : NULL, o);
	fc->fs_private = o;
	fc->ops = &swapfs_context_ops;
	return 0;
}

static struct file_system_type swapfs_fs_type = {
	.owner			= THIS_MODULE,
	.name			= "swapfs",
	.init_fs_context	= swapfs_init_fs_context,
	.parameters		= swapfs_param_spec,
	.kill_sb		= kill_block_super,
	.fs_flags		= FS_REQUIRES_DEV,
};
MODULE_ALIAS_FS("swapfs");

/* ---- debugfs --------------------------------------------------------------- */

static int swapfs_swapfiles_show(struct seq_file *m, void *v)
{
	swapfs_rs_show_swapfiles(m->private, m);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(swapfs_swapfiles);

struct dentry *swapfs_c_debugfs_sb_create(struct super_block *sb)
{
	struct dentry *dir;

	if (IS_ERR_OR_NULL(swapfs_debugfs_root))
		return NULL;
	dir = debugfs_create_dir(sb->s_id, swapfs_debugfs_root);
	if (IS_ERR(dir))
		return NULL;
	debugfs_create_file("swapfiles", 0444, dir, sb, &swapfs_swapfiles_fops);
	return dir;
}

void swapfs_c_debugfs_remove(struct dentry *dir)
{
	debugfs_remove(dir);
}

void swapfs_c_seq_puts(struct seq_file *m, const char *s, unsigned int len)
{
	seq_write(m, s, len);
}

/* ---- Module --------------------------------------------------------------- */

static int swapfs_features_show(struct seq_file *m, void *v)
{
	seq_printf(m, "swap_hook: %s\n", SWAPFS_HOOK_NAME);
	seq_printf(m, "bio_reserve: %u\n", swapfs_bio_reserve);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(swapfs_features);

enum swapfs_swap_hook swapfs_c_swap_hook(void)
{
	return SWAPFS_HOOK;
}

unsigned int swapfs_c_crc32c(unsigned int crc, const void *data,
			     unsigned long len)
{
	return crc32c(crc, data, len);
}

void swapfs_c_now(long long *sec, unsigned int *nsec)
{
	struct timespec64 ts;

	ktime_get_real_ts64(&ts);
	*sec = ts.tv_sec;
	*nsec = ts.tv_nsec;
}

int swapfs_c_init(unsigned int bio_reserve)
{
	int err;

	if (!bio_reserve)
		return -EINVAL;
	/* The per-CPU cache hands small bios (up to BIO_INLINE_VECS pages:
	 * every swap-in of 1 to 4 pages) back and forth without the slab. */
	err = bioset_init(&swapfs_bioset, bio_reserve, 0,
			  BIOSET_NEED_BVECS | BIOSET_PERCPU_CACHE);
	if (err)
		return err;
	swapfs_bio_reserve = bio_reserve;

	err = -ENOMEM;
	swapfs_req_pool = mempool_create_kmalloc_pool(bio_reserve,
						      sizeof(struct swapfs_swap_req));
	if (!swapfs_req_pool)
		goto out_bioset;
	swapfs_inode_cachep = kmem_cache_create("swapfs_inode",
						sizeof(struct swapfs_inode), 0,
						SLAB_RECLAIM_ACCOUNT |
						SLAB_ACCOUNT,
						swapfs_inode_init_once);
	if (!swapfs_inode_cachep)
		goto out_pool;
	swapfs_endio_wq = alloc_workqueue("swapfs-endio",
					  WQ_MEM_RECLAIM | WQ_FREEZABLE | WQ_UNBOUND,
					  0);
	if (!swapfs_endio_wq)
		goto out_cache;

	err = register_filesystem(&swapfs_fs_type);
	if (err)
		goto out_wq;

	/* debugfs is optional: failures there never fail the module. */
	swapfs_debugfs_root = debugfs_create_dir("swapfs", NULL);
	debugfs_create_file("features", 0444, swapfs_debugfs_root, NULL,
			    &swapfs_features_fops);
	return 0;

out_wq:
	destroy_workqueue(swapfs_endio_wq);
out_cache:
	kmem_cache_destroy(swapfs_inode_cachep);
out_pool:
	mempool_destroy(swapfs_req_pool);
out_bioset:
	bioset_exit(&swapfs_bioset);
	return err;
}

void swapfs_c_exit(void)
{
	unregister_filesystem(&swapfs_fs_type);
	debugfs_remove(swapfs_debugfs_root);
	destroy_workqueue(swapfs_endio_wq);
	/* Inodes are freed after an RCU grace period. */
	rcu_barrier();
	kmem_cache_destroy(swapfs_inode_cachep);
	mempool_destroy(swapfs_req_pool);
	bioset_exit(&swapfs_bioset);
}
