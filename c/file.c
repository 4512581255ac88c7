// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper: open files.
 *
 * The file_operations of regular files and directories: read and write
 * (buffered and direct, through iomap), the direct IO completion, mmap and
 * its write faults, llseek, open, fsync, fallocate, remap (reflink and
 * dedupe), ioctl and readdir; and the file accessors Rust calls
 * (swapfs_c_file_*).
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/fs.h>
#include <linux/iomap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/uio.h>

#include "swapfs.h"

/* ---- Directories --------------------------------------------------------- */

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

/* ---- Regular file IO ----------------------------------------------------- */

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

/* write(2) and friends: the steps are Rust's (fs::file::write_iter). */
static ssize_t swapfs_file_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	return swapfs_rs_write_iter(iocb, from);
}

struct inode *swapfs_c_write_inode_of(struct kiocb *iocb)
{
	return file_inode(iocb->ki_filp);
}

void swapfs_c_inode_lock(struct inode *inode)
{
	inode_lock(inode);
}

void swapfs_c_inode_unlock(struct inode *inode)
{
	inode_unlock(inode);
}

void swapfs_c_inode_dio_wait(struct inode *inode)
{
	inode_dio_wait(inode);
}

void swapfs_c_mark_inode_dirty(struct inode *inode)
{
	mark_inode_dirty(inode);
}

long long swapfs_c_write_checks(struct kiocb *iocb, struct iov_iter *from)
{
	/* Also refuses writes to an active swapfile (ETXTBSY). */
	return generic_write_checks(iocb, from);
}

int swapfs_c_write_remove_privs(struct kiocb *iocb)
{
	return file_remove_privs(iocb->ki_filp);
}

int swapfs_c_write_update_time(struct kiocb *iocb)
{
	return file_update_time(iocb->ki_filp);
}

_Bool swapfs_c_write_is_direct(struct kiocb *iocb)
{
	return iocb->ki_flags & IOCB_DIRECT;
}

void swapfs_c_write_set_buffered(struct kiocb *iocb)
{
	iocb->ki_flags &= ~IOCB_DIRECT;
}

long long swapfs_c_write_direct(struct kiocb *iocb, struct iov_iter *from,
				_Bool wait)
{
	return iomap_dio_rw(iocb, from, &swapfs_iomap_ops, &swapfs_dio_ops,
			    wait ? IOMAP_DIO_FORCE_WAIT : 0, NULL, 0);
}

long long swapfs_c_write_buffered(struct kiocb *iocb, struct iov_iter *from)
{
	return iomap_file_buffered_write(iocb, from, &swapfs_iomap_ops, NULL,
					 NULL);
}

long long swapfs_c_write_sync(struct kiocb *iocb, long long written)
{
	return generic_write_sync(iocb, written);
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

/* ioctls on files and directories: Rust knows which and what they do. */
static long swapfs_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return swapfs_rs_ioctl(file_inode(file), cmd, arg);
}

/* ---- Files --------------------------------------------------------------- */

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

/* ---- Operation tables ---------------------------------------------------- */

const struct file_operations swapfs_file_fops = {
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

const struct file_operations swapfs_dir_fops = {
	.owner		= THIS_MODULE,
	.llseek		= generic_file_llseek,
	.read		= generic_read_dir,
	.iterate_shared	= swapfs_iterate,
	.fsync		= swapfs_fsync,
	.unlocked_ioctl	= swapfs_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};
