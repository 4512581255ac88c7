/* SPDX-License-Identifier: GPL-2.0 */
/*
 * swapfs C helper, linked into swapfs.ko next to the Rust crate.
 *
 * Holds only what Rust cannot reach: kernel structures and functions that the
 * kernel crate's bindings do not cover (swap, iomap, jbd2), static inline
 * functions, and the operation tables whose layout differs between the
 * kernels swapfs supports. Every decision is made in Rust (swapfs_rs_*).
 *
 * The helper is split by what it binds: super.c (superblock, mount,
 * debugfs, module), inode.c (inodes, dentries, inode_operations), file.c
 * (file_operations), iomap.c (iomap, writeback, address_space_operations),
 * journal.c (buffer heads, jbd2) and swap.c (swap activation and IO). This
 * header holds what they share; it is private to c/. The boundary with Rust
 * is include/swapfs_helper.h, which bindgen reads.
 */
#ifndef SWAPFS_C_SWAPFS_H
#define SWAPFS_C_SWAPFS_H

#include <linux/bio.h>
#include <linux/fs.h>
#include <linux/iomap.h>
#include <linux/mempool.h>
#include <linux/swap.h>
#include <linux/workqueue.h>

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

/* ---- Module-wide objects (super.c creates them at module init) ----------- */

/* Bios of the swap IO path come from here, never from the general pool. */
extern struct bio_set swapfs_bioset;
/* Swap IO requests (struct swapfs_swap_req), for swap.c. */
extern mempool_t *swapfs_req_pool;
/* Completion of writes to unwritten extents needs a transaction. */
extern struct workqueue_struct *swapfs_endio_wq;

/* ---- Inodes -------------------------------------------------------------- */

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

/* ---- Swap IO requests ---------------------------------------------------- */

/* One swap IO request (one kiocb), from swapfs_req_pool. */
struct swapfs_swap_req {
	struct kiocb *iocb;
	void *swap;
	unsigned long long len;
	atomic_t remaining;	/* bios in flight + the submitter */
	blk_status_t status;
	bool write;
};

/* ---- Shared between the files -------------------------------------------- */

/* iomap.c */
extern const struct iomap_ops swapfs_iomap_ops;
extern const struct address_space_operations swapfs_aops;
void swapfs_ioend_work(struct work_struct *work);

/* file.c */
extern const struct file_operations swapfs_file_fops;
extern const struct file_operations swapfs_dir_fops;

/* swap.c: the swap entries of swapfs_aops. */
int swapfs_swap_activate(struct swap_info_struct *sis, struct file *file,
			 sector_t *span);
void swapfs_swap_deactivate(struct file *file);
#if defined(SWAPFS_USE_SWAP_RW)
int swapfs_swap_rw(struct kiocb *iocb, struct iov_iter *iter);
#endif

#endif /* SWAPFS_C_SWAPFS_H */
