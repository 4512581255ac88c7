// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper: swap.
 *
 * Activation (a_ops->swap_activate and swap_deactivate, add_swap_extent)
 * and swap IO: struct swap_ops on 7.3, a_ops->swap_rw on 7.2. A request
 * comes from a mempool and its bios from the module's bioset; nothing here
 * maps blocks or starts a transaction.
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/memcontrol.h>
#include <linux/pagemap.h>
#include <linux/swap.h>
#include <linux/uio.h>

#include "swapfs.h"

/* ---- Swap ---------------------------------------------------------------- */

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

int swapfs_swap_activate(struct swap_info_struct *sis,
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

void swapfs_swap_deactivate(struct file *file)
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
int swapfs_swap_rw(struct kiocb *iocb, struct iov_iter *iter)
{
	return swapfs_rs_swap_io(iocb, iter, iov_iter_rw(iter) == WRITE);
}
#endif
