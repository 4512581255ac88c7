// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper: inodes, dentries and directories.
 *
 * The inode accessors Rust calls (swapfs_c_inode_*, the extent map lock),
 * iget and new inodes (which get their operation tables here), the dentry
 * and dir_context accessors, and the inode_operations: the namei wrappers,
 * setattr, getattr and fiemap.
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/fs.h>
#include <linux/iomap.h>
#include <linux/pagemap.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "swapfs.h"

/* ---- Inodes -------------------------------------------------------------- */

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

unsigned long long swapfs_c_inode_disk_size_unlocked(struct inode *inode)
{
	return READ_ONCE(SWAPFS_I(inode)->d.disk_size);
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

/* ---- Operation tables (filled in below) ---------------------------------- */

static const struct inode_operations swapfs_dir_iops;
static const struct inode_operations swapfs_file_iops;
static const struct inode_operations swapfs_symlink_iops;
static const struct inode_operations swapfs_special_iops;

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

/* ---- Dentries and directories -------------------------------------------- */

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

/* ---- Attributes ---------------------------------------------------------- */

int swapfs_c_newsize_ok(struct inode *inode, long long size)
{
	return inode_newsize_ok(inode, size);
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

/* ---- Operation tables ---------------------------------------------------- */

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
