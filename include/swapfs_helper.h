/* SPDX-License-Identifier: GPL-2.0 */
/*
 * swapfs C helper: the part of swapfs that Rust cannot reach through the
 * kernel crate's bindings (swap.h, swap_ops.h, iomap.h and jbd2.h are not
 * covered, and static inline functions are not callable from Rust).
 *
 * The Rust side imports this header through bindgen, run standalone: it may
 * only use C scalar types and forward-declared kernel structures, which
 * keeps the seam between the two languages narrow and explicit.
 */
#ifndef SWAPFS_HELPER_H
#define SWAPFS_HELPER_H

struct super_block;
struct inode;
struct file;
struct block_device;

/* Which swap IO hook this build targets (probed from the kernel tree). */
enum swapfs_swap_hook {
	SWAPFS_HOOK_SWAP_RW = 1,	/* a_ops->swap_rw, Linux 7.2 */
	SWAPFS_HOOK_SWAP_OPS = 2,	/* struct swap_ops, Linux 7.3 */
};

/* Module-wide C state: file system type, debugfs root, swap bioset. */
int swapfs_c_init(unsigned int bio_reserve);
void swapfs_c_exit(void);
enum swapfs_swap_hook swapfs_c_swap_hook(void);

/* The kernel's (accelerated) CRC-32C: no inversion on entry or exit. */
unsigned int swapfs_c_crc32c(unsigned int crc, const void *data,
			     unsigned long len);

/*
 * Implemented in Rust (rust/sys), called from the C operation tables.
 * Errors are negative errnos.
 */
int swapfs_rs_fill_super(struct super_block *sb, int silent);

#endif /* SWAPFS_HELPER_H */
