// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper: the page cache of regular files, through iomap.
 *
 * The iomap_ops (Rust maps the blocks), buffered reads, writeback and its
 * completion (unwritten conversion and copy-on-write, in a workqueue), the
 * address_space_operations, and the page cache helpers Rust calls
 * (truncate, zero, unshare, flush).
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/bio.h>
#include <linux/fs.h>
#include <linux/iomap.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/version.h>
#include <linux/writeback.h>

#include "swapfs.h"

/* ---- Regular file IO: iomap ---------------------------------------------- */

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

const struct iomap_ops swapfs_iomap_ops = {
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

/* The SWAPFS_WRITE_* flags of a writeback ioend. */
static unsigned int swapfs_ioend_how(const struct iomap_ioend *ioend)
{
	return (ioend->io_flags & IOMAP_IOEND_SHARED ? SWAPFS_WRITE_COW : 0) |
	       (ioend->io_flags & IOMAP_IOEND_UNWRITTEN ?
			SWAPFS_WRITE_UNWRITTEN : 0);
}

/*
 * Writes to unwritten extents complete in a workqueue, which converts the
 * range to written in a transaction and only then ends the folios'
 * writeback, so that a crash never shows the blocks as written before their
 * data is on disk. Copy-on-write writes (to staged blocks) complete there
 * too: the transaction maps the new blocks in place of the shared ones.
 */
void swapfs_ioend_work(struct work_struct *work)
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
		how = swapfs_ioend_how(ioend);
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

static int swapfs_writeback_submit(struct iomap_writepage_ctx *wpc, int error)
{
	struct iomap_ioend *ioend = wpc->wb_ctx;

	if (swapfs_rs_write_needs_end(ioend->io_inode, ioend->io_offset,
				      ioend->io_size, swapfs_ioend_how(ioend))) {
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

/* ---- Truncate, zero, flush ----------------------------------------------- */

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

int swapfs_c_zero_range(struct inode *inode, long long pos, long long len)
{
	return iomap_zero_range(inode, pos, len, NULL, &swapfs_iomap_ops, NULL,
				NULL);
}

int swapfs_c_unshare_range(struct inode *inode, long long pos, long long len)
{
	return iomap_file_unshare(inode, pos, len, &swapfs_iomap_ops, NULL);
}

/* ---- Operation tables ---------------------------------------------------- */

const struct address_space_operations swapfs_aops = {
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
