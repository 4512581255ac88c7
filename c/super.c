// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper: the superblock and the module.
 *
 * super_operations (the inode cache's alloc_inode and free_inode among
 * them), mount (fs_context, mount parameters, file_system_type), the
 * superblock accessors Rust calls (swapfs_c_sb_*), debugfs, and module init
 * and exit, which create and destroy the module-wide objects.
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/blkdev.h>
#include <linux/crc32.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/writeback.h>

#include "swapfs.h"

MODULE_INFO(swap_hook, SWAPFS_HOOK_NAME);

#define SWAPFS_MAGIC	0x53465753	/* "SWFS", the on-disk magic */

/* The module-wide objects (swapfs.h), created by swapfs_c_init(). */
struct bio_set swapfs_bioset;
static unsigned int swapfs_bio_reserve;
static struct dentry *swapfs_debugfs_root;
static struct kmem_cache *swapfs_inode_cachep;
struct workqueue_struct *swapfs_endio_wq;
mempool_t *swapfs_req_pool;

/* ---- Inode cache --------------------------------------------------------- */

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

/* ---- Superblock ---------------------------------------------------------- */

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

void swapfs_c_sb_invalidate_bdev(struct super_block *sb)
{
	invalidate_bdev(sb->s_bdev);
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

void swapfs_c_sb_start_intwrite(struct super_block *sb)
{
	sb_start_intwrite(sb);
}

void swapfs_c_sb_end_intwrite(struct super_block *sb)
{
	sb_end_intwrite(sb);
}

/* ---- Mount --------------------------------------------------------------- */

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

/* ---- debugfs ------------------------------------------------------------- */

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

/* ---- Module -------------------------------------------------------------- */

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
