// SPDX-License-Identifier: GPL-2.0

//! Journal recovery: `fsck.swapfs -n` checks the filesystem as the kernel
//! will see it once it replayed the log, `-p`/`-y` replay the log to disk
//! first, and a log the kernel would refuse is a problem. The logs are
//! written with `swapfs_image::jlog::write::LogWriter` into built images.

mod util;

use proptest::prelude::*;
use swapfs_common::format::ROOT_INO;
use swapfs_fsck::{check, replay, Location, Replay, Report};
use swapfs_image::builder::{Builder, Editor, FileExtent};
use swapfs_image::jbd2::{self, features, JournalSuperblock};
use swapfs_image::jlog::write::LogWriter;
use swapfs_image::Image;
use util::{assert_clean, listing, params};

/// The jbd2 features the swapfs module sets at mount.
const KERNEL_FEATURES: u32 =
    features::INCOMPAT_REVOKE | features::INCOMPAT_64BIT | features::INCOMPAT_CSUM_V3;
/// The first transaction of the logs written here.
const TID: u32 = 500;

/// A small filesystem; with `newer`, also what one more transaction
/// would make of it: a new directory with two files, one of them with
/// data that begins with the jbd2 magic number (its log copy is escaped).
fn build(newer: bool) -> Editor {
    let mut p = params(10, 3000);
    p.inode_count = 256;
    let mut b = Builder::in_memory(&p).unwrap();
    let d = b.mkdir(ROOT_INO, "d").unwrap();
    for i in 0..20 {
        b.create(d, format!("f{i}"), &[FileExtent::new(0, 2)], 2048)
            .unwrap();
    }
    if newer {
        let n = b.mkdir(ROOT_INO, "new").unwrap();
        let mut data = vec![0x5au8; 1500];
        data[..4].copy_from_slice(&jbd2::MAGIC.to_be_bytes());
        b.create_with_data(n, "magic", &data).unwrap();
        b.create(n, "empty", &[], 0).unwrap();
    }
    let mut ed = b.finish().unwrap();
    // As the kernel leaves the journal superblock once it mounted.
    let blk = ed.geometry().journal_start;
    ed.modify_block(blk, |b| {
        let mut j = JournalSuperblock::decode(b);
        j.feature_incompat = KERNEL_FEATURES;
        j.checksum_type = jbd2::CRC32C_CHKSUM;
        j.sequence = TID;
        j.encode(b);
    })
    .unwrap();
    ed
}

fn block(img: &Image, blk: u64) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    img.read_block(blk, &mut b).unwrap();
    b
}

fn jsb(img: &Image) -> JournalSuperblock {
    JournalSuperblock::decode(&block(img, 1))
}

/// Blocks outside the journal where two images differ.
fn differing(a: &Image, b: &Image) -> Vec<u64> {
    let jend = 1 + jsb(a).maxlen as u64;
    (0..a.blocks(1024))
        .filter(|&blk| !(1..jend).contains(&blk) && block(a, blk) != block(b, blk))
        .collect()
}

/// The crash this file is about: the newer filesystem's changes were
/// committed to the log, and only some of them reached their home
/// locations. Returns the image, the newer image, and a writer holding
/// one transaction with the newer copies of every changed block.
fn crashed(checkpointed: usize, start: u64) -> (Image, Image, LogWriter, Vec<u64>) {
    let old = build(false).into_image();
    let new = build(true).into_image();
    let changed = differing(&old, &new);
    assert!(
        (5..30).contains(&changed.len()),
        "unexpected changes: {changed:?}"
    );
    let mut img = Image::from_vec(old.as_bytes().unwrap().to_vec());
    for &blk in changed.iter().take(checkpointed) {
        img.write_block(blk, &block(&new, blk)).unwrap();
    }
    let mut w = LogWriter::new(&jsb(&img), start);
    let copies: Vec<(u64, Vec<u8>)> = changed.iter().map(|&b| (b, block(&new, b))).collect();
    let refs: Vec<(u64, &[u8])> = copies.iter().map(|(b, d)| (*b, d.as_slice())).collect();
    w.blocks(&refs);
    (img, new, w, changed)
}

fn apply(img: &mut Image, w: &LogWriter) {
    let sb = jsb(img);
    w.apply(img, 1, &sb).unwrap();
}

fn fsck(img: &Image) -> Report {
    check(img).expect("fsck failed to run")
}

fn expect_log_problem(r: &Report, text: &str) {
    assert!(
        r.has(&Location::Log, text),
        "expected \"journal log: ...{text}...\" in:\n{}",
        listing(r)
    );
    assert_eq!(r.exit_code(), 4);
}

#[test]
fn the_check_sees_the_filesystem_as_replayed_and_replay_writes_it() {
    let (mut img, new, mut w, changed) = crashed(3, 1);
    w.commit();
    // On disk alone, half of a transaction: inconsistent.
    assert!(!fsck(&img).is_clean());
    apply(&mut img, &w);
    let before = img.as_bytes().unwrap().to_vec();
    let r = fsck(&img);
    assert_clean(&r);
    let n = changed.len();
    assert_eq!(
        r.info,
        [format!(
            "journal: needs recovery, 1 transaction (tid {TID}), {n} blocks; checked as replayed"
        )]
    );
    assert_eq!(img.as_bytes().unwrap(), before, "-n wrote");

    assert_eq!(
        replay(&mut img).unwrap(),
        Replay::Done {
            transactions: 1,
            blocks: n
        }
    );
    // The replayed blocks are the newer ones, escaped block included.
    assert!(
        differing(&img, &new).is_empty(),
        "{:?}",
        differing(&img, &new)
    );
    let j = jsb(&img);
    assert_eq!((j.start, j.sequence), (0, TID + 2));
    assert_eq!(j.checksum, jbd2::checksum(&block(&img, 1)));
    let r = fsck(&img);
    assert_clean(&r);
    assert!(r.info.is_empty(), "{:?}", r.info);
    assert_eq!(replay(&mut img).unwrap(), Replay::NotNeeded);
}

#[test]
fn a_replay_that_breaks_the_filesystem_is_what_is_checked() {
    // Vice versa: the disk is consistent, the log holds an inode table
    // block whose copy gives a file a wrong link count.
    let mut ed = build(false);
    let ino = ed.lookup("d/f3").unwrap();
    let (blk, _) = ed.geometry().inode_location(ino).unwrap();
    let good = ed.read_block(blk).unwrap();
    ed.modify_inode(ino, |i| i.nlink = 9).unwrap();
    let bad = ed.read_block(blk).unwrap();
    ed.write_block(blk, &good).unwrap();
    let mut img = ed.into_image();
    assert_clean(&fsck(&img));
    let mut w = LogWriter::new(&jsb(&img), 1);
    w.blocks(&[(blk, &bad)]);
    w.commit();
    apply(&mut img, &w);
    let r = fsck(&img);
    assert!(
        r.has(&Location::Inode(ino), "link count is 9, expected 1"),
        "{}",
        listing(&r)
    );
    assert_eq!(r.problems.len(), 1, "{}", listing(&r));
    assert!(r.info[0].ends_with("checked as replayed"), "{:?}", r.info);
    // -y replays it (the kernel would), and the problem stays.
    assert!(matches!(replay(&mut img).unwrap(), Replay::Done { .. }));
    assert_eq!(block(&img, blk), bad);
    assert_eq!(fsck(&img).problems.len(), 1);
}

#[test]
fn several_transactions_revokes_and_a_wrapping_log() {
    // The log starts 3 blocks before the end of the journal. Transaction
    // 1 journals garbage over a directory block and the inode table; 2
    // revokes the directory block; 3 journals the newer copies; 4 is
    // torn (no commit block) and would break everything.
    let old = build(false).into_image();
    let new = build(true).into_image();
    let changed = differing(&old, &new);
    let mut img = Image::from_vec(old.as_bytes().unwrap().to_vec());
    let mut w = LogWriter::new(&jsb(&img), 1021);
    let garbage = vec![0xeeu8; 1024];
    let dir_blk = *changed.last().unwrap();
    w.blocks(&[(dir_blk, &garbage), (changed[0], &garbage)]);
    w.commit();
    w.revoke(&[dir_blk]);
    w.commit();
    let copies: Vec<(u64, Vec<u8>)> = changed.iter().map(|&b| (b, block(&new, b))).collect();
    let refs: Vec<(u64, &[u8])> = copies.iter().map(|(b, d)| (*b, d.as_slice())).collect();
    w.blocks(&refs);
    w.commit();
    w.blocks(&[(0, &garbage), (dir_blk, &garbage)]);
    assert!(w.written().iter().any(|(j, _)| *j < 1021), "the log wraps");
    apply(&mut img, &w);
    let r = fsck(&img);
    assert_clean(&r);
    assert!(
        r.info[0].starts_with(&format!(
            "journal: needs recovery, 3 transactions (tids {TID}-{})",
            TID + 2
        )),
        "{:?}",
        r.info
    );
    assert!(matches!(
        replay(&mut img).unwrap(),
        Replay::Done {
            transactions: 3,
            ..
        }
    ));
    assert!(differing(&img, &new).is_empty());
    assert_eq!(jsb(&img).sequence, TID + 4);
    assert_clean(&fsck(&img));
}

#[test]
fn a_corrupt_commit_block_is_a_problem_and_is_not_replayed() {
    let (mut img, _, mut w, _) = crashed(0, 1);
    let c = w.commit();
    w.block_mut(c).unwrap()[17] ^= 1;
    apply(&mut img, &w);
    let before = img.as_bytes().unwrap().to_vec();
    let r = fsck(&img);
    expect_log_problem(
        &r,
        &format!("transaction {TID}: the commit block fails its checksum"),
    );
    assert!(r.info[0].ends_with("checked as on disk"), "{:?}", r.info);
    // Checked as on disk: the old filesystem, consistent.
    assert_eq!(r.problems.len(), 1, "{}", listing(&r));
    match replay(&mut img).unwrap() {
        Replay::Refused(why) => assert!(why.contains("commit block"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(img.as_bytes().unwrap(), before);
}

#[test]
fn a_damaged_data_block_is_a_problem() {
    let (mut img, _, mut w, _) = crashed(0, 1);
    w.commit();
    w.block_mut(3).unwrap()[100] ^= 1;
    apply(&mut img, &w);
    let r = fsck(&img);
    expect_log_problem(&r, "fails its checksum; the kernel cannot recover the log");
    assert!(matches!(replay(&mut img).unwrap(), Replay::Refused(_)));
}

#[test]
fn a_damaged_descriptor_of_a_committed_transaction_is_a_problem() {
    let (mut img, _, mut w, _) = crashed(0, 1);
    w.commit();
    w.block_mut(1).unwrap()[1000] ^= 1;
    apply(&mut img, &w);
    expect_log_problem(
        &fsck(&img),
        "a descriptor or revoke block fails its checksum",
    );
}

#[test]
fn a_transaction_without_its_commit_block_is_not_replayed() {
    // The newer copies were logged but not committed: the kernel ignores
    // them, the disk (old, consistent) is what counts.
    let (mut img, _, w, _) = crashed(0, 1);
    apply(&mut img, &w);
    let r = fsck(&img);
    assert_clean(&r);
    assert_eq!(
        r.info,
        ["journal: needs recovery, 0 transactions, 0 blocks; checked as replayed"]
    );
    assert_eq!(
        replay(&mut img).unwrap(),
        Replay::Done {
            transactions: 0,
            blocks: 0
        }
    );
    assert_eq!((jsb(&img).start, jsb(&img).sequence), (0, TID + 1));
}

#[test]
fn a_log_replaying_outside_the_filesystem_or_into_the_journal_is_a_problem() {
    for (target, text) in [
        (
            3000,
            "outside the filesystem (3000 blocks), first block 3000",
        ),
        (7, "inside the journal (blocks 1-1024), first block 7"),
    ] {
        let mut img = build(false).into_image();
        let mut w = LogWriter::new(&jsb(&img), 1);
        w.blocks(&[(target, &[0x33; 1024])]);
        w.commit();
        apply(&mut img, &w);
        expect_log_problem(&fsck(&img), text);
        assert!(matches!(replay(&mut img).unwrap(), Replay::Refused(_)));
    }
}

#[test]
fn a_replayed_superblock_that_moves_the_journal_is_a_problem() {
    let mut ed = build(false);
    let good = ed.read_block(0).unwrap();
    ed.modify_superblock(|sb| sb.block_count -= 1).unwrap();
    let smaller = ed.read_block(0).unwrap();
    ed.modify_superblock(|sb| sb.block_size_log2 = 11).unwrap();
    let bigger = ed.read_block(0).unwrap();
    ed.write_block(0, &good).unwrap();
    let clean = ed.into_vec().unwrap();
    // A smaller filesystem is fine with the kernel (the blocks past its
    // end are then free space fsck does not look at).
    let mut img = Image::from_vec(clean.clone());
    let mut w = LogWriter::new(&jsb(&img), 1);
    w.blocks(&[(0, &smaller)]);
    w.commit();
    apply(&mut img, &w);
    let r = fsck(&img);
    assert!(r.info[0].ends_with("checked as replayed"));
    assert_eq!(r.summary.unwrap().block_count, 2999);
    // Another block size: the kernel refuses to mount.
    let mut img = Image::from_vec(clean);
    let mut w = LogWriter::new(&jsb(&img), 1);
    w.blocks(&[(0, &bigger)]);
    w.commit();
    apply(&mut img, &w);
    let r = fsck(&img);
    assert!(
        r.problems
            .iter()
            .any(|p| p.at == Location::Superblock && p.msg.contains("after journal replay")),
        "{}",
        listing(&r)
    );
    assert!(
        r.info[0].ends_with("the kernel refuses the superblock it replays (nothing else checked)"),
        "{:?}",
        r.info
    );
    assert!(matches!(replay(&mut img).unwrap(), Replay::Refused(_)));
}

// The binary.

const BIN: &str = env!("CARGO_BIN_EXE_fsck-swapfs");

/// Runs the binary on a copy of `img` in a scratch file: exit status,
/// stdout, and the file's bytes afterwards.
fn run(name: &str, img: &Image, args: &[&str]) -> (i32, String, Vec<u8>) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fsck-journal");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, img.as_bytes().unwrap()).unwrap();
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
    (
        out.status.code().unwrap(),
        stdout,
        std::fs::read(&path).unwrap(),
    )
}

#[test]
fn the_binary_checks_as_replayed_and_replays_with_y_or_p() {
    let (mut img, new, mut w, changed) = crashed(1, 1);
    w.commit();
    apply(&mut img, &w);
    let n = changed.len();
    for args in [&["-n"][..], &[], &["-nfv"]] {
        let (code, out, after) = run("crashed", &img, args);
        assert_eq!(code, 0, "{args:?}: {out}");
        assert!(
            out.starts_with(&format!(
                "journal: needs recovery, 1 transaction (tid {TID}), {n} blocks; checked as replayed\n"
            )),
            "{out}"
        );
        assert!(out.ends_with(": clean\n"), "{out}");
        assert_eq!(after, img.as_bytes().unwrap(), "{args:?} wrote");
    }
    for mode in ["-y", "-p", "-a"] {
        let (code, out, after) = run("crashed", &img, &[mode]);
        assert_eq!(code, 1, "{mode}: {out}");
        assert!(
            out.starts_with(&format!("journal: replayed 1 transaction, {n} blocks\n")),
            "{out}"
        );
        assert!(
            !out.contains("needs recovery") && !out.contains("not implemented"),
            "{out}"
        );
        let replayed = Image::from_vec(after);
        assert!(differing(&replayed, &new).is_empty());
        // Again: nothing to do.
        let journal_lines = |out: &str| out.lines().filter(|l| l.starts_with("journal")).count();
        let (code, out, _) = run("crashed", &replayed, &["-n"]);
        assert_eq!((code, journal_lines(&out)), (0, 0), "{out}");
        let (code, out, again) = run("crashed", &replayed, &["-y"]);
        assert_eq!((code, journal_lines(&out)), (0, 0), "{out}");
        assert_eq!(again, replayed.as_bytes().unwrap());
    }
}

#[test]
fn the_binary_exits_5_when_a_replay_leaves_problems_and_4_when_it_refuses() {
    let mut ed = build(false);
    let ino = ed.lookup("d/f3").unwrap();
    let (blk, _) = ed.geometry().inode_location(ino).unwrap();
    let good = ed.read_block(blk).unwrap();
    ed.modify_inode(ino, |i| i.nlink = 9).unwrap();
    let bad = ed.read_block(blk).unwrap();
    ed.write_block(blk, &good).unwrap();
    let mut img = ed.into_image();
    let mut w = LogWriter::new(&jsb(&img), 1);
    w.blocks(&[(blk, &bad)]);
    let c = w.commit();
    let mut broken = Image::from_vec(img.as_bytes().unwrap().to_vec());
    apply(&mut img, &w);
    let (code, out, _) = run("breaks", &img, &["-y"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("journal: replayed 1 transaction, 1 block\n"),
        "{out}"
    );
    assert!(out.contains("link count is 9"), "{out}");
    assert!(out.contains("repair is not implemented"), "{out}");
    // A corrupt commit block: nothing written, the problem stays.
    w.block_mut(c).unwrap()[17] ^= 1;
    apply(&mut broken, &w);
    for mode in ["-y", "-p"] {
        let (code, out, after) = run("refused", &broken, &[mode]);
        assert_eq!(code, 4, "{out}");
        assert!(
            out.contains("journal: not replayed: the kernel cannot recover the log"),
            "{out}"
        );
        assert!(out.contains("journal log: transaction"), "{out}");
        assert!(out.contains("repair is not implemented"), "{out}");
        assert_eq!(after, broken.as_bytes().unwrap());
    }
}

/// A crashed image with a valid log, once.
fn crashed_bytes() -> &'static (Vec<u8>, u64) {
    static IMG: std::sync::OnceLock<(Vec<u8>, u64)> = std::sync::OnceLock::new();
    IMG.get_or_init(|| {
        let (mut img, _, mut w, _) = crashed(2, 1015);
        w.revoke(&[5, 6, 7]);
        w.commit();
        w.blocks(&[(100, &[1; 1024])]);
        w.commit();
        let end = w.pos();
        apply(&mut img, &w);
        (img.into_vec().unwrap(), end)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random damage to the log and the journal superblock: the check and
    /// the replay never panic, and a replay leaves a journal that needs
    /// no recovery.
    #[test]
    fn damaged_logs_never_panic_fsck(
        writes in prop::collection::vec((0u64..48, 0usize..1024, any::<u8>()), 1..16),
        sb in prop::collection::vec((0usize..0x60, any::<u8>()), 0..2),
    ) {
        let (bytes, _) = crashed_bytes();
        let mut bytes = bytes.clone();
        for &(j, off, v) in &writes {
            // Around the log, which wraps at the end of the journal.
            let jblk = (1015 + j - 1) % 1023 + 1;
            bytes[((1 + jblk) * 1024) as usize + off] = v;
        }
        for &(off, v) in &sb {
            bytes[1024 + off] = v;
        }
        let mut img = Image::from_vec(bytes);
        let _ = check(&img);
        if let Ok(Replay::Done { .. }) = replay(&mut img) {
            prop_assert_eq!(jsb(&img).start, 0);
            let r = check(&img).unwrap();
            prop_assert!(r.info.iter().all(|i| !i.contains("needs recovery")));
        }
    }
}
