// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper, linked into swapfs.ko next to the Rust crate.
 *
 * Holds only what Rust cannot reach: kernel structures and functions that the
 * kernel crate's bindings do not cover (swap, iomap, jbd2), static inline
 * functions, and the operation tables whose layout differs between the
 * kernels swapfs supports. Every decision is made in Rust.
 */
#include <linux/bio.h>
#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/module.h>
#include <linux/seq_file.h>

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

/* Bios of the swap IO path come from here, never from the general pool. */
static struct bio_set swapfs_bioset;
static unsigned int swapfs_bio_reserve;
static struct dentry *swapfs_debugfs_root;

static int swapfs_features_show(struct seq_file *m, void *v)
{
	seq_printf(m, "swap_hook: %s\n", SWAPFS_HOOK_NAME);
	seq_printf(m, "bio_reserve: %u\n", swapfs_bio_reserve);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(swapfs_features);

/* ---- File system type and mount ---------------------------------------- */

static int swapfs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	return swapfs_rs_fill_super(sb, fc->sb_flags & SB_SILENT);
}

static int swapfs_get_tree(struct fs_context *fc)
{
	return get_tree_bdev(fc, swapfs_fill_super);
}

static const struct fs_context_operations swapfs_context_ops = {
	.get_tree	= swapfs_get_tree,
};

static int swapfs_init_fs_context(struct fs_context *fc)
{
	fc->ops = &swapfs_context_ops;
	return 0;
}

static struct file_system_type swapfs_fs_type = {
	.owner			= THIS_MODULE,
	.name			= "swapfs",
	.init_fs_context	= swapfs_init_fs_context,
	.kill_sb		= kill_block_super,
	.fs_flags		= FS_REQUIRES_DEV,
};
MODULE_ALIAS_FS("swapfs");

enum swapfs_swap_hook swapfs_c_swap_hook(void)
{
	return SWAPFS_HOOK;
}

unsigned int swapfs_c_crc32c(unsigned int crc, const void *data,
			     unsigned long len)
{
	return crc32c(crc, data, len);
}

int swapfs_c_init(unsigned int bio_reserve)
{
	int err;

	if (!bio_reserve)
		return -EINVAL;
	err = bioset_init(&swapfs_bioset, bio_reserve, 0, BIOSET_NEED_BVECS);
	if (err)
		return err;
	swapfs_bio_reserve = bio_reserve;

	err = register_filesystem(&swapfs_fs_type);
	if (err) {
		bioset_exit(&swapfs_bioset);
		return err;
	}

	/* debugfs is optional: failures there never fail the module. */
	swapfs_debugfs_root = debugfs_create_dir("swapfs", NULL);
	debugfs_create_file("features", 0444, swapfs_debugfs_root, NULL,
			    &swapfs_features_fops);
	return 0;
}

void swapfs_c_exit(void)
{
	unregister_filesystem(&swapfs_fs_type);
	debugfs_remove(swapfs_debugfs_root);
	bioset_exit(&swapfs_bioset);
}
