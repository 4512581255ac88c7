// SPDX-License-Identifier: GPL-2.0

//! The recovery passes against logs built by [`LogWriter`], in memory.

use super::write::LogWriter;
use super::*;
use crate::device::Image;

const BS: usize = 1024;
/// Filesystem block of journal block 0.
const JSTART: u64 = 1;
const JLEN: u64 = 1024;
const DEV_BLOCKS: u64 = 2048;
const UUID: [u8; 16] = *b"jlog-test-uuid!!";

/// The features the swapfs module sets.
const SWAPFS: u32 =
    features::INCOMPAT_REVOKE | features::INCOMPAT_64BIT | features::INCOMPAT_CSUM_V3;

fn sb(incompat: u32, compat: u32) -> JournalSuperblock {
    let mut sb = JournalSuperblock::new(BS as u32, JLEN as u32, UUID);
    sb.feature_incompat = incompat;
    sb.feature_compat = compat;
    if incompat & (features::INCOMPAT_CSUM_V2 | features::INCOMPAT_CSUM_V3) != 0 {
        sb.checksum_type = jbd2::CRC32C_CHKSUM;
    }
    sb.sequence = 100;
    sb
}

/// A block of `fill` bytes.
fn block(fill: u8) -> Vec<u8> {
    vec![fill; BS]
}

/// Writes the log to a zeroed device and recovers it.
fn recover(w: &LogWriter, sb: &JournalSuperblock) -> Recovery {
    let mut img = Image::zeroed(DEV_BLOCKS as usize * BS);
    w.apply(&mut img, JSTART, sb).unwrap();
    recover_img(&img)
}

fn recover_img(img: &Image) -> Recovery {
    let mut b = vec![0u8; BS];
    img.read_block(JSTART, &mut b).unwrap();
    let j = Journal::load(&b, BS, JSTART, JLEN).unwrap();
    j.recover(img).unwrap()
}

fn targets(r: &Recovery) -> Vec<u64> {
    r.blocks.keys().copied().collect()
}

#[test]
fn crc32_be_is_the_kernels() {
    // CRC-32/MPEG-2: init !0, most significant bit first, no final xor.
    assert_eq!(crc32_be(!0, b"123456789"), 0x0376_e6e7);
}

#[test]
fn tids_compare_modulo_2_32() {
    assert!(tid_gt(1, 0) && tid_gt(0, u32::MAX) && !tid_gt(5, 5));
    assert!(tid_geq(5, 5) && tid_geq(2, u32::MAX - 3) && !tid_geq(u32::MAX, 0));
}

#[test]
fn every_tag_format_replays() {
    for incompat in [
        0,
        features::INCOMPAT_64BIT,
        features::INCOMPAT_CSUM_V2,
        features::INCOMPAT_CSUM_V2 | features::INCOMPAT_64BIT,
        features::INCOMPAT_CSUM_V3,
        SWAPFS,
    ] {
        let sb = sb(incompat, 0);
        let mut w = LogWriter::new(&sb, 1);
        let copies: Vec<(u64, Vec<u8>)> = (0..200).map(|i| (1100 + i, block(i as u8))).collect();
        let refs: Vec<(u64, &[u8])> = copies.iter().map(|(b, d)| (*b, d.as_slice())).collect();
        let used = w.blocks(&refs);
        assert!(used.len() > 201, "{incompat:#x}: more than one descriptor");
        w.commit();
        let r = recover(&w, &sb);
        assert_eq!(r.failure, None, "{incompat:#x}");
        assert_eq!((r.start_tid, r.end_tid, r.transactions()), (100, 101, 1));
        assert_eq!(r.next_tid(), 102);
        assert_eq!(r.replays, 200);
        for (b, d) in &copies {
            assert_eq!(r.blocks.get(b), Some(d), "{incompat:#x}: block {b}");
        }
    }
}

#[test]
fn escaped_blocks_get_their_magic_back() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    let mut d = block(3);
    d[..4].copy_from_slice(&jbd2::MAGIC.to_be_bytes());
    let used = w.blocks(&[(1500, &d)]);
    // The log copy is escaped.
    assert_eq!(&w.written()[1].1[..4], &[0; 4]);
    assert_eq!(used.len(), 2);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(r.blocks.get(&1500), Some(&d));
}

#[test]
fn later_transactions_win_and_64bit_targets_stay_whole() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1)), (1201, &block(1))]);
    w.commit();
    w.blocks(&[(1200, &block(2)), (1 << 33 | 5, &block(9))]);
    w.commit();
    w.blocks(&[(1201, &block(3))]);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!((r.start_tid, r.end_tid), (100, 103));
    assert_eq!(r.blocks[&1200], block(2));
    assert_eq!(r.blocks[&1201], block(3));
    assert_eq!(r.blocks[&(1 << 33 | 5)], block(9));
    assert_eq!(r.replays, 5);
}

#[test]
fn revoked_blocks_are_not_replayed() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    // 100: journals 1300 and 1301; 101: revokes 1300 and 1302; 102:
    // journals 1302 again (after the revoke: replayed), and 1303 which
    // its own revoke record covers.
    w.blocks(&[(1300, &block(1)), (1301, &block(1))]);
    w.commit();
    w.revoke(&[1300, 1302]);
    w.commit();
    w.revoke(&[1303]);
    w.blocks(&[(1302, &block(2)), (1303, &block(2))]);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(targets(&r), [1301, 1302]);
    assert_eq!((r.revoke_records, r.revoke_hits), (3, 2));
}

#[test]
fn many_revoke_records_fill_several_blocks() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    let all: Vec<u64> = (1000..1400).collect();
    w.blocks(&[(1000, &block(1)), (1399, &block(1)), (1400, &block(1))]);
    w.commit();
    assert_eq!(w.revoke(&all).len(), 4);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(targets(&r), [1400]);
    assert_eq!(r.revoke_records, 400);
}

#[test]
fn the_log_wraps_at_the_end_of_the_journal() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, JLEN - 3);
    let copies: Vec<(u64, Vec<u8>)> = (0..6).map(|i| (1600 + i, block(10 + i as u8))).collect();
    let refs: Vec<(u64, &[u8])> = copies.iter().map(|(b, d)| (*b, d.as_slice())).collect();
    let used = w.blocks(&refs);
    assert_eq!(used, [1021, 1022, 1023, 1, 2, 3, 4]);
    w.commit();
    w.blocks(&[(1600, &block(99))]);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(r.transactions(), 2);
    assert_eq!(r.blocks[&1600], block(99));
    assert_eq!(r.blocks[&1605], block(15));
    assert_eq!(r.head_block, 9);
}

#[test]
fn a_transaction_without_commit_is_not_replayed() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    w.commit();
    w.blocks(&[(1200, &block(2)), (1201, &block(2))]);
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!((r.end_tid, r.transactions()), (101, 1));
    assert_eq!(targets(&r), [1200]);
    assert_eq!(r.blocks[&1200], block(1));
    // Nothing committed at all: nothing to replay, and the next
    // transaction skips the uncommitted one.
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(2))]);
    let r = recover(&w, &sb);
    assert_eq!(
        (&r.failure, r.transactions(), r.next_tid()),
        (&None, 0, 101)
    );
    assert!(r.blocks.is_empty());
}

#[test]
fn stale_blocks_of_an_older_pass_end_the_log() {
    let sb = sb(SWAPFS, 0);
    // An older pass of the log left transaction 90's blocks after ours.
    let mut old = LogWriter::new(&JournalSuperblock { sequence: 90, ..sb }, 1);
    old.blocks(&[(1700, &block(7)), (1701, &block(7)), (1702, &block(7))]);
    old.commit();
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    w.commit();
    let mut img = Image::zeroed(DEV_BLOCKS as usize * BS);
    old.apply(&mut img, JSTART, &sb).unwrap();
    w.apply(&mut img, JSTART, &sb).unwrap();
    let r = recover_img(&img);
    assert_eq!(r.failure, None);
    assert_eq!(targets(&r), [1200]);
}

#[test]
fn a_bad_commit_checksum_ends_the_log_and_fails_the_mount() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    w.commit();
    w.blocks(&[(1201, &block(2))]);
    let c = w.commit();
    w.blocks(&[(1202, &block(3))]);
    w.commit();
    w.block_mut(c).unwrap()[COMMIT_CHKSUM + 1] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(r.failure, Some(Failure::CorruptCommit { tid: 101 }));
    // What the kernel writes before it fails: the transactions before.
    assert_eq!(r.end_tid, 101);
    assert_eq!(targets(&r), [1200]);
}

#[test]
fn a_bad_commit_checksum_with_async_commit_goes_on() {
    let sb = sb(SWAPFS | features::INCOMPAT_ASYNC_COMMIT, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    let c = w.commit();
    w.blocks(&[(1201, &block(2))]);
    w.commit();
    w.block_mut(c).unwrap()[COMMIT_CHKSUM + 1] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    // The log ends at the bad commit.
    assert_eq!(r.end_tid, 100);
    assert!(r.blocks.is_empty());
}

#[test]
fn a_stale_commit_block_ends_the_log_quietly() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    w.commit();
    w.set_commit_time(1_600_000_000);
    w.blocks(&[(1201, &block(2))]);
    let c = w.commit();
    w.block_mut(c).unwrap()[COMMIT_CHKSUM + 1] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(r.end_tid, 101);
    assert_eq!(targets(&r), [1200]);
    assert!(r.notes.iter().any(|n| n.contains("stale")), "{:?}", r.notes);
}

#[test]
fn a_torn_commit_block_is_accepted() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    let c = w.commit();
    // Only the header reached the disk: the checksum covers the header
    // and zeroes, the rest of the block is whatever was there.
    let b = w.block_mut(c).unwrap();
    let mut z = vec![0u8; BS];
    z[..COMMIT_HEADER_SIZE].copy_from_slice(&b[..COMMIT_HEADER_SIZE]);
    put_be32(&mut z, COMMIT_CHKSUM, 0);
    let seed = crc32c::update(!0, &UUID);
    let sum = crc32c::update(seed, &z);
    put_be32(&mut z, COMMIT_CHKSUM, sum);
    z[COMMIT_HEADER_SIZE..].fill(0x6b);
    *b = z;
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(targets(&r), [1200]);
    assert!(r.notes.iter().any(|n| n.contains("incomplete commit")));
}

#[test]
fn a_bad_data_checksum_skips_that_block_and_fails() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    let used = w.blocks(&[(1200, &block(1)), (1201, &block(1))]);
    w.commit();
    w.block_mut(used[1]).unwrap()[9] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(
        r.failure,
        Some(Failure::DataChecksum {
            tid: 100,
            target: 1200,
            block: used[1]
        })
    );
    assert_eq!(targets(&r), [1201]);
    assert_eq!(r.bad_data.len(), 1);
}

#[test]
fn a_bad_descriptor_in_a_committed_transaction_fails() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    w.commit();
    let used = w.blocks(&[(1201, &block(1))]);
    w.commit();
    w.block_mut(used[0]).unwrap()[BS - 100] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(
        r.failure,
        Some(Failure::BadChecksumInTransaction { tid: 101 })
    );
    // The same damage, but the commit block is older: stale, ends the log.
    let mut w = LogWriter::new(&sb, 1);
    w.blocks(&[(1200, &block(1))]);
    w.commit();
    w.set_commit_time(5);
    let used = w.blocks(&[(1201, &block(1))]);
    w.commit();
    w.block_mut(used[0]).unwrap()[BS - 100] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(targets(&r), [1200]);
}

#[test]
fn a_bad_revoke_block_in_a_committed_transaction_fails() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    let used = w.revoke(&[1300]);
    w.commit();
    w.block_mut(used[0]).unwrap()[40] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(
        r.failure,
        Some(Failure::BadChecksumInTransaction { tid: 100 })
    );
}

#[test]
fn an_oversized_revoke_count_fails() {
    let sb = sb(SWAPFS, 0);
    let mut w = LogWriter::new(&sb, 1);
    let used = w.revoke(&[1300]);
    w.commit();
    let mut b = w.block_mut(used[0]).unwrap().clone();
    put_be32(&mut b, 12, BS as u32 - 3);
    w.seal(&mut b);
    *w.block_mut(used[0]).unwrap() = b;
    let r = recover(&w, &sb);
    assert_eq!(
        r.failure,
        Some(Failure::RevokeCount {
            tid: 100,
            block: used[0],
            count: BS as u32 - 3
        })
    );
}

#[test]
fn checksum_v1_covers_the_transaction() {
    let sb = sb(0, features::COMPAT_CHECKSUM);
    let mut w = LogWriter::new(&sb, 1);
    let used = w.blocks(&[(1200, &block(1))]);
    w.commit();
    w.blocks(&[(1201, &block(2))]);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(targets(&r), [1200, 1201]);
    // Damage to a data block shows in its commit block's checksum.
    w.block_mut(used[1]).unwrap()[5] ^= 1;
    let r = recover(&w, &sb);
    assert_eq!(r.failure, Some(Failure::CorruptCommit { tid: 100 }));
    assert!(r.blocks.is_empty());
}

#[test]
fn the_replay_reads_the_journal_through_what_it_replayed() {
    // Transaction 100 replays over the journal block that holds
    // transaction 101's data block: the kernel's buffer cache then hands
    // the replayed contents to 101 (no checksums to notice).
    let sb = sb(0, 0);
    let mut w = LogWriter::new(&sb, 1);
    // 100: descriptor at 1, data at 2, commit at 3; 101: descriptor at 4,
    // data at 5.
    w.blocks(&[(JSTART + 5, &block(0x11))]);
    w.commit();
    w.blocks(&[(1800, &block(0x22))]);
    w.commit();
    let r = recover(&w, &sb);
    assert_eq!(r.failure, None);
    assert_eq!(r.blocks[&1800], block(0x11));
}

#[test]
fn a_log_that_never_ends_is_caught() {
    // Every journal block a revoke block of the expected transaction: the
    // kernel's scan would go round forever.
    let sb = sb(0, 0);
    let mut img = Image::zeroed(DEV_BLOCKS as usize * BS);
    let mut b = vec![0u8; BS];
    put_be32(&mut b, 0, jbd2::MAGIC);
    put_be32(&mut b, 4, blocktype::REVOKE);
    put_be32(&mut b, 8, 100);
    put_be32(&mut b, 12, REVOKE_HEADER_SIZE as u32);
    for j in 1..JLEN {
        img.write_block(JSTART + j, &b).unwrap();
    }
    JournalSuperblock { start: 5, ..sb }.encode(&mut b);
    img.write_block(JSTART, &b).unwrap();
    assert_eq!(recover_img(&img).failure, Some(Failure::Endless));
}

#[test]
fn a_log_running_out_of_the_journal_fails() {
    // s_start inside the journal region but past s_maxlen.
    let mut sb = sb(0, 0);
    sb.maxlen = (JLEN + 10) as u32;
    let mut img = Image::zeroed(DEV_BLOCKS as usize * BS);
    let mut b = vec![0u8; BS];
    JournalSuperblock {
        start: (JLEN + 20) as u32,
        ..sb
    }
    .encode(&mut b);
    img.write_block(JSTART, &b).unwrap();
    let j = Journal::load(&b, BS, JSTART, JLEN + 100).unwrap();
    let r = j.recover(&img).unwrap();
    assert_eq!(r.failure, Some(Failure::OutOfJournal { block: JLEN + 20 }));
}

#[test]
fn a_clean_journal_needs_nothing() {
    let sb = sb(SWAPFS, 0);
    let mut b = vec![0u8; BS];
    sb.encode(&mut b);
    let j = Journal::load(&b, BS, JSTART, JLEN).unwrap();
    assert!(!j.needs_recovery());
    let r = j.recover(&Image::zeroed(DEV_BLOCKS as usize * BS)).unwrap();
    assert_eq!(
        (&r.failure, r.transactions(), r.blocks.len()),
        (&None, 0, 0)
    );
}

#[test]
fn load_refuses_what_jbd2_refuses() {
    type Case = (fn(&mut JournalSuperblock), &'static str);
    let cases: [Case; 10] = [
        (|j| j.magic = 0, "no valid journal superblock"),
        (|j| j.blocksize = 2048, "no valid journal superblock"),
        (
            |j| j.blocktype = 5,
            "unrecognised journal superblock format",
        ),
        (|j| j.maxlen = JLEN as u32 + 1, "journal too short"),
        (|j| j.first = 0, "invalid start block"),
        (|j| j.first = JLEN as u32, "invalid start block"),
        (|j| j.feature_incompat |= 0x40, "unrecognised features"),
        (
            |j| j.feature_incompat |= features::INCOMPAT_CSUM_V2,
            "v2 and v3",
        ),
        (|j| j.feature_compat = 1, "v1 and v2/v3"),
        (|j| j.checksum_type = 1, "unknown checksum type"),
    ];
    for (f, text) in cases {
        let mut sb = sb(SWAPFS, 0);
        f(&mut sb);
        let mut b = vec![0u8; BS];
        sb.encode(&mut b);
        let e = Journal::load(&b, BS, JSTART, JLEN).unwrap_err();
        assert!(e.contains(text), "{e:?} lacks {text:?}");
    }
    let mut b = vec![0u8; BS];
    sb(SWAPFS, 0).encode(&mut b);
    b[0x300] ^= 1;
    let e = Journal::load(&b, BS, JSTART, JLEN).unwrap_err();
    assert!(e.contains("checksum error"), "{e}");
    // A version 1 superblock has no features: an unknown one is ignored,
    // but journal_reset() wants 1024 blocks.
    let mut sb1 = sb(0x40, 0);
    sb1.blocktype = jbd2::SUPERBLOCK_V1;
    sb1.encode(&mut b);
    assert!(Journal::load(&b, BS, JSTART, JLEN).is_ok());
    sb1.first = 2;
    sb1.encode(&mut b);
    let e = Journal::load(&b, BS, JSTART, JLEN).unwrap_err();
    assert!(e.contains("too short"), "{e}");
}

proptest::proptest! {
    /// A range read through a replay view (fsck reads the inode table so)
    /// equals the blocks read one by one: replayed blocks over the device,
    /// and a replayed block of another size ignored as by `read_block`.
    #[test]
    fn replayed_range_read_is_blockwise(
        over in proptest::collection::btree_map(0u64..64, (0u8..255, proptest::bool::weighted(0.9)), 0..24),
        start in 0u64..64,
        len in 0u64..64,
    ) {
        let n = 64u64;
        let mut img = Image::zeroed(n as usize * BS);
        for b in 0..n {
            img.write_block(b, &block(b as u8 ^ 0xa5)).unwrap();
        }
        let blocks: BTreeMap<u64, Vec<u8>> = over
            .iter()
            .map(|(&b, &(fill, whole))| (b, vec![fill; if whole { BS } else { BS / 2 }]))
            .collect();
        let view = Replayed { base: &img, blocks: &blocks };
        let len = len.min(n - start);
        let mut range = vec![0u8; len as usize * BS];
        view.read_blocks(start, BS, &mut range).unwrap();
        for i in 0..len {
            let mut one = vec![0u8; BS];
            view.read_block(start + i, &mut one).unwrap();
            let at = i as usize * BS;
            proptest::prop_assert_eq!(&range[at..at + BS], &one[..], "block {}", start + i);
        }
    }
}
