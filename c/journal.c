// SPDX-License-Identifier: GPL-2.0
/*
 * swapfs C helper: metadata blocks and the journal.
 *
 * Buffer heads (read at priority, with a verified bit), the jbd2 journal and
 * handle wrappers Rust calls, and the nofs allocation scope taken under
 * filesystem locks.
 */
#define pr_fmt(fmt) "swapfs: " fmt

#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/fs.h>
#include <linux/jbd2.h>
#include <linux/sched/mm.h>

#include "swapfs.h"

/* ---- Allocation scope ---------------------------------------------------- */

unsigned int swapfs_c_nofs_save(void)
{
	return memalloc_nofs_save();
}

void swapfs_c_nofs_restore(unsigned int saved)
{
	memalloc_nofs_restore(saved);
}

/* ---- Buffer heads -------------------------------------------------------- */

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

/* ---- jbd2 ---------------------------------------------------------------- */

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

struct journal_s *swapfs_c_journal_init(struct super_block *sb,
					unsigned long long start,
					unsigned long long len,
					unsigned int commit_secs, int *err)
{
	journal_t *journal;

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
	return journal;
}

_Bool swapfs_c_journal_needs_recovery(struct journal_s *journal)
{
	return journal->j_superblock->s_start != 0;
}

int swapfs_c_journal_load(struct journal_s *journal)
{
	return jbd2_journal_load(journal);
}

unsigned int swapfs_c_journal_next_tid(struct journal_s *journal)
{
	return journal->j_transaction_sequence;
}

int swapfs_c_journal_set_features(struct journal_s *journal)
{
	return jbd2_journal_set_features(journal, 0, 0,
					 JBD2_FEATURE_INCOMPAT_REVOKE |
					 JBD2_FEATURE_INCOMPAT_64BIT |
					 JBD2_FEATURE_INCOMPAT_CSUM_V3) ? 0 : -EINVAL;
}

void swapfs_c_journal_clear_err(struct journal_s *journal, _Bool update_sb)
{
	jbd2_journal_clear_err(journal);
	if (update_sb)
		jbd2_journal_update_sb_errno(journal);
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
