// SPDX-License-Identifier: GPL-2.0

//! Targeted corruptions: fsck reports each one precisely and exits 4.

mod util;

use swapfs_common::crc32c;
use swapfs_common::format::{
    entry_mut, extent_flags, magic, mode, put_u16, put_u64, state, Extent, ROOT_HEADER_SIZE,
    ROOT_INO,
};
use swapfs_fsck::{check, Error, Location, Report};
use swapfs_image::builder::{Builder, Editor, FileExtent};
use swapfs_image::jbd2::{self, JournalSuperblock};
use swapfs_image::Image;
use util::*;

const BS: u64 = 1024;

/// Checks that fsck exits 4 and reports `text` at `at`.
fn expect(ed: &Editor, at: Location, text: &str) -> Report {
    let r = fsck(ed);
    assert!(
        r.has(&at, text),
        "expected \"{at}: ...{text}...\" in:\n{}",
        listing(&r)
    );
    assert_eq!(r.exit_code(), 4);
    r
}

/// Like [`expect`], and that it is the only problem.
fn expect_only(ed: &Editor, at: Location, text: &str) {
    let r = expect(ed, at, text);
    assert_eq!(
        r.problems.len(),
        1,
        "more problems than expected:\n{}",
        listing(&r)
    );
}

fn blocks(b: u64) -> Location {
    Location::Blocks { first: b, last: b }
}

fn entry(dir: u64, name: &str) -> Location {
    Location::Entry {
        dir,
        name: name.into(),
    }
}

/// Rewrites extent `i` of inode `ino`'s root (a leaf root).
fn set_root_extent(ed: &mut Editor, ino: u64, i: usize, f: impl FnOnce(&mut Extent)) {
    let mut e = ed.tree(ino).unwrap().extents[i];
    f(&mut e);
    ed.modify_inode(ino, |inode| {
        e.encode(entry_mut(&mut inode.root, ROOT_HEADER_SIZE, i));
    })
    .unwrap();
}

fn modify_journal(ed: &mut Editor, f: impl FnOnce(&mut JournalSuperblock)) {
    let blk = ed.geometry().journal_start;
    ed.modify_block(blk, |b| {
        let mut j = JournalSuperblock::decode(b);
        f(&mut j);
        j.encode(b);
    })
    .unwrap();
}

/// Recomputes the superblock checksum after a raw change.
fn reseal_superblock(b: &mut [u8]) {
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&b[64..80]);
    let seed = crc32c::update(!0, &uuid);
    let crc = crc32c::update(
        crc32c::update(crc32c::update(seed, &b[..8]), &[0; 4]),
        &b[12..512],
    );
    b[8..12].copy_from_slice(&crc.to_le_bytes());
}

fn ino(ed: &Editor, path: &str) -> u64 {
    ed.lookup(path).unwrap()
}

// The superblock.

#[test]
fn superblock_bit_flip() {
    let mut ed = sample(10);
    ed.modify_block(0, |b| b[17] ^= 0x10).unwrap();
    let r = fsck(&ed);
    assert_eq!(r.problems.len(), 1, "{}", listing(&r));
    assert!(r.has(&Location::Superblock, "checksum mismatch"));
    assert_eq!(r.exit_code(), 4);
    assert!(r.summary.is_none());
}

#[test]
fn superblock_bad_magic_is_not_swapfs() {
    let mut ed = sample(10);
    ed.modify_block(0, |b| b[0] ^= 1).unwrap();
    assert!(matches!(check(ed.image()), Err(Error::NotSwapfs(_))));
    assert!(matches!(
        check(&Image::zeroed(100)),
        Err(Error::NotSwapfs(_))
    ));
}

#[test]
fn superblock_reserved_bytes_and_block_tail() {
    let mut ed = sample(10);
    ed.modify_block(0, |b| {
        b[300] = 1;
        reseal_superblock(b);
    })
    .unwrap();
    expect_only(&ed, Location::Superblock, "reserved byte 300");
    let mut ed = sample(10);
    ed.modify_block(0, |b| b[700] = 1).unwrap();
    expect_only(&ed, Location::Superblock, "byte 700 of block 0");
}

#[test]
fn superblock_geometry_and_device_size() {
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.itable_start += 1).unwrap();
    expect_only(&ed, Location::Superblock, "regions are not contiguous");
    let ed = sample(10);
    let mut bytes = ed.into_vec().unwrap();
    bytes.truncate(bytes.len() - 1024);
    let ed = Editor::open(Image::from_vec(bytes.clone()));
    assert!(ed.is_err());
    let r = check(&Image::from_vec(bytes)).unwrap();
    assert!(
        r.has(&Location::Superblock, "device has 4095 blocks"),
        "{}",
        listing(&r)
    );
    assert_eq!(r.exit_code(), 4);
}

#[test]
fn superblock_state_and_features() {
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.state |= state::ERROR).unwrap();
    expect_only(&ed, Location::Superblock, "ERROR state bit");
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.state |= 0x80).unwrap();
    expect_only(&ed, Location::Superblock, "unknown state bits 0x80");
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.feature_ro_compat = 4).unwrap();
    expect_only(
        &ed,
        Location::Superblock,
        "read-only compatible features 0x4",
    );
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.feature_incompat = 2).unwrap();
    expect_only(&ed, Location::Superblock, "unknown incompatible features");
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.label = [0xff; 32]).unwrap();
    expect_only(&ed, Location::Superblock, "label");
}

#[test]
fn free_counts_are_checked_only_when_clean() {
    let mut ed = sample(10);
    let free = ed.superblock().free_blocks;
    ed.modify_superblock(|sb| sb.free_blocks -= 1).unwrap();
    expect_only(
        &ed,
        Location::Superblock,
        &format!("free block count is {}, expected {free}", free - 1),
    );
    let mut ed = sample(10);
    ed.modify_superblock(|sb| sb.free_inodes += 1).unwrap();
    expect_only(&ed, Location::Superblock, "free inode count");
    ed.modify_superblock(|sb| sb.state = 0).unwrap();
    let r = fsck(&ed);
    assert_clean(&r);
    assert!(r.notes.iter().any(|n| n.contains("not marked clean")));
}

// The journal.

#[test]
fn journal_needing_recovery_is_not_a_problem() {
    // The log starts at block 7, which holds no jbd2 block: there is
    // nothing to replay, as the kernel finds (tests/journal.rs replays real
    // logs). Needing recovery is not a problem by itself: the check reads
    // the filesystem as the replay leaves it, and says so.
    let mut ed = sample(10);
    modify_journal(&mut ed, |j| {
        j.start = 7;
        j.sequence = 42;
    });
    let r = fsck(&ed);
    assert_clean(&r);
    assert_eq!(
        r.info,
        ["journal: needs recovery, 0 transactions, 0 blocks; checked as replayed"]
    );
}

#[test]
fn an_aborted_journal_is_a_warning() {
    // The kernel replays an aborted journal at mount and clears the error.
    let mut ed = sample(10);
    modify_journal(&mut ed, |j| j.errno = -5);
    let r = fsck(&ed);
    assert_clean(&r);
    assert!(
        r.info.len() == 1 && r.info[0].starts_with("warning: the journal was aborted (s_errno -5)"),
        "{:?}",
        r.info
    );
}

#[test]
fn journal_superblock_fields() {
    type Case = (fn(&mut JournalSuperblock), &'static str);
    let cases: [Case; 6] = [
        (|j| j.magic = 0, "bad magic"),
        (|j| j.blocktype = jbd2::SUPERBLOCK_V1, "block type 3"),
        (|j| j.blocksize = 4096, "block size 4096, expected 1024"),
        (|j| j.maxlen = 1000, "s_maxlen 1000, expected 1024"),
        (|j| j.first = 0, "s_first 0, expected 1"),
        (|j| j.uuid[3] ^= 1, "UUID differs"),
    ];
    for (f, text) in cases {
        let mut ed = sample(10);
        modify_journal(&mut ed, f);
        expect_only(&ed, Location::Journal, text);
    }
}

#[test]
fn journal_checksums() {
    // As the kernel leaves it after a clean unmount with v3 checksums on.
    let mut ed = sample(10);
    modify_journal(&mut ed, |j| {
        j.feature_incompat = 0x1 | 0x2 | jbd2::features::INCOMPAT_CSUM_V3;
        j.checksum_type = jbd2::CRC32C_CHKSUM;
        j.sequence = 1234;
    });
    assert_clean(&fsck(&ed));
    let blk = ed.geometry().journal_start;
    ed.modify_block(blk, |b| b[0x300] ^= 1).unwrap();
    expect_only(&ed, Location::Journal, "checksum mismatch");
    let mut ed = sample(10);
    modify_journal(&mut ed, |j| j.feature_incompat = 0x100);
    expect_only(&ed, Location::Journal, "unknown features");
}

// Bitmaps and reference counts.

#[test]
fn inode_bitmap_bits() {
    let mut ed = sample(10);
    let f = ino(&ed, "file");
    ed.set_inode_bit(f, false).unwrap();
    expect_only(&ed, Location::Inode(f), "marked free in the inode bitmap");
    let mut ed = sample(10);
    let free = ed.geometry().inode_count - 3;
    ed.set_inode_bit(free, true).unwrap();
    expect_only(
        &ed,
        Location::Inode(free),
        "free (mode 0) but marked in use in the inode bitmap",
    );
}

#[test]
fn block_bitmap_bits() {
    let mut ed = sample(10);
    let b = ed.tree(ino(&ed, "big")).unwrap().extents[7].pblk;
    ed.set_block_bit(b, false).unwrap();
    expect_only(
        &ed,
        blocks(b),
        "in use (1 reference), but marked free in the block bitmap",
    );
    let mut ed = sample(10);
    let free = ed.geometry().block_count - 10;
    ed.set_block_bit(free, true).unwrap();
    ed.set_block_bit(free + 1, true).unwrap();
    expect_only(
        &ed,
        Location::Blocks {
            first: free,
            last: free + 1,
        },
        "marked in use in the block bitmap, but nothing references it",
    );
}

#[test]
fn reference_counts() {
    let mut ed = sample(10);
    let shared = ed.tree(ino(&ed, "part")).unwrap().extents[0].pblk;
    assert_eq!(ed.refcount(shared).unwrap(), 3);
    ed.set_refcount(shared, 2).unwrap();
    expect_only(&ed, blocks(shared), "reference count is 2, expected 3");
    let mut ed = sample(10);
    let node = ed.tree(ino(&ed, "big")).unwrap().nodes[0];
    ed.set_refcount(node, 0).unwrap();
    expect_only(&ed, blocks(node), "reference count is 0, expected 1");
}

#[test]
fn bitmap_and_refcount_tails() {
    let mut ed = sample(10);
    let g = *ed.geometry();
    let last_bb = g.refcount_start - 1;
    ed.modify_sealed(last_bb, |b| b[1023] = 0).unwrap();
    expect_only(
        &ed,
        Location::BlockBitmap(last_bb),
        "past the last data block are clear",
    );
    let mut ed = sample(10);
    let last_ib = g.bbitmap_start - 1;
    ed.modify_sealed(last_ib, |b| b[1023] = 0x7f).unwrap();
    expect_only(
        &ed,
        Location::InodeBitmap(last_ib),
        "1 bits past the last inode are clear",
    );
    let mut ed = sample(10);
    let last_rc = g.itable_start - 1;
    ed.modify_sealed(last_rc, |b| put_u16(b, 1022, 1)).unwrap();
    expect_only(
        &ed,
        Location::Refcounts(last_rc),
        "past the last data block are not zero",
    );
}

#[test]
fn metadata_block_headers() {
    let mut ed = sample(10);
    let g = *ed.geometry();
    ed.modify_block(g.bbitmap_start, |b| b[100] ^= 4).unwrap();
    expect_only(
        &ed,
        Location::BlockBitmap(g.bbitmap_start),
        "checksum mismatch",
    );
    let mut ed = sample(10);
    ed.seal_as(g.refcount_start, magic::REFCOUNT, g.refcount_start + 1)
        .unwrap();
    expect_only(
        &ed,
        Location::Refcounts(g.refcount_start),
        "claims to be block",
    );
    let mut ed = sample(10);
    ed.seal_as(g.ibitmap_start, magic::BLOCK_BITMAP, g.ibitmap_start)
        .unwrap();
    expect(&ed, Location::InodeBitmap(g.ibitmap_start), "bad magic");
}

// Inodes.

#[test]
fn inode_checksum() {
    let mut ed = sample(10);
    let f = ino(&ed, "sparse");
    ed.modify_inode_raw(f, |r| r[16] ^= 1).unwrap();
    let r = expect(&ed, Location::Inode(f), "checksum mismatch");
    // Its block is not counted any more: the reference count and bitmap
    // say it is in use.
    assert!(r.problems.len() <= 4, "{}", listing(&r));
}

#[test]
fn inode_fields() {
    let mut ed = sample(10);
    let f = ino(&ed, "file");
    ed.modify_inode(f, |i| i.nlink = 5).unwrap();
    expect_only(&ed, Location::Inode(f), "link count is 5, expected 2");
    let mut ed = sample(10);
    ed.modify_inode(f, |i| i.blocks += 1).unwrap();
    expect_only(&ed, Location::Inode(f), "blocks is 6, expected 5");
    let mut ed = sample(10);
    ed.modify_inode(f, |i| i.flags = 1).unwrap();
    expect_only(&ed, Location::Inode(f), "unknown flags");
    let mut ed = sample(10);
    ed.modify_inode(f, |i| i.rdev = 3).unwrap();
    expect_only(&ed, Location::Inode(f), "rdev 0x3 on a regular file");
    let mut ed = sample(10);
    ed.modify_inode_resealed(f, |r| r[120] = 9).unwrap();
    expect_only(&ed, Location::Inode(f), "reserved byte 120");
    let mut ed = sample(10);
    ed.modify_inode_resealed(f, |r| r[2] = 9).unwrap();
    expect_only(&ed, Location::Inode(f), "reserved field (offset 2)");
    let mut ed = sample(10);
    let free = ed.geometry().inode_count;
    ed.modify_inode_raw(free, |r| r[40] = 1).unwrap();
    expect_only(&ed, Location::Inode(free), "free (mode 0) but not zeroed");
}

#[test]
fn inode_table_tail() {
    let mut p = params(10, 2048);
    p.inode_count = 7;
    let mut ed = Builder::in_memory(&p).unwrap().finish().unwrap();
    let blk = ed.geometry().itable_start + 1;
    ed.modify_block(blk, |b| b[3 * 256 + 5] = 1).unwrap();
    expect_only(
        &ed,
        Location::InodeTable(blk),
        "1 slots past the last inode",
    );
}

#[test]
fn special_files_and_symlinks() {
    let mut ed = sample(10);
    let chr = ino(&ed, "chr");
    let root = ed.inode(ino(&ed, "file")).unwrap().unwrap().root;
    ed.modify_inode(chr, |i| i.root = root).unwrap();
    expect(
        &ed,
        Location::Inode(chr),
        "a character device has an extent tree",
    );
    let mut ed = sample(10);
    let l = ino(&ed, "dir/link");
    ed.modify_inode(l, |i| i.size = 0).unwrap();
    expect_only(
        &ed,
        Location::Inode(l),
        "symlink size is 0, expected 1 to 1008",
    );
    let mut ed = sample(10);
    let pblk = ed.tree(l).unwrap().extents[0].pblk;
    ed.modify_sealed(pblk, |b| b[17] = 0).unwrap();
    expect_only(&ed, Location::Inode(l), "NUL byte at 1");
    let mut ed = sample(10);
    set_root_extent(&mut ed, l, 0, |e| e.lblk = 1);
    expect_only(
        &ed,
        Location::Inode(l),
        "symlink must map exactly logical block 0",
    );
}

// Extent trees.

#[test]
fn extent_overlapping_another_in_the_same_file() {
    let mut ed = sample(10);
    let f = ino(&ed, "file");
    set_root_extent(&mut ed, f, 1, |e| e.lblk = 2);
    expect(&ed, Location::Inode(f), "extent tree: extent overlaps");
}

#[test]
fn extent_overlapping_another_file() {
    let mut ed = sample(10);
    let sparse = ino(&ed, "sparse");
    let own = ed.tree(sparse).unwrap().extents[0].pblk;
    let other = ed.tree(ino(&ed, "dir/sub/inner")).unwrap().extents[0].pblk;
    set_root_extent(&mut ed, sparse, 0, |e| e.pblk = other);
    let r = expect(&ed, blocks(other), "reference count is 1, expected 2");
    assert!(r.has(
        &blocks(own),
        "reference count is 1, expected 0, and the block bitmap marks it in use"
    ));
    assert!(r.has(&Location::Superblock, "free block count"));
    assert_eq!(r.problems.len(), 3, "{}", listing(&r));
}

#[test]
fn extent_outside_the_data_region() {
    let mut ed = sample(10);
    let f = ino(&ed, "sparse");
    let total = ed.geometry().block_count;
    set_root_extent(&mut ed, f, 0, |e| e.pblk = 5);
    expect(
        &ed,
        Location::Inode(f),
        "extent physical block: bad value 5",
    );
    let mut ed = sample(10);
    set_root_extent(&mut ed, f, 0, |e| {
        e.pblk = total - 1;
        e.len = 2;
    });
    expect(&ed, Location::Inode(f), "extent physical block");
    let mut ed = sample(10);
    set_root_extent(&mut ed, f, 0, |e| e.flags = 0x10);
    expect(&ed, Location::Inode(f), "extent flags");
}

#[test]
fn misdirected_node_block() {
    let mut ed = sample(10);
    let big = ino(&ed, "big");
    let t = ed.tree(big).unwrap();
    let (a, b) = (t.nodes[1], t.nodes[2]);
    // A write meant for node a landed on node b.
    let content = ed.read_block(a).unwrap();
    ed.write_block(b, &content).unwrap();
    let r = expect(
        &ed,
        Location::Inode(big),
        &format!("in block {b} claims to be block {a} (misdirected write?)"),
    );
    // The leaves past the bad node are not counted: their blocks show up
    // as referenced by nobody, in ranges.
    assert!(r.problems.len() < 40, "{}", listing(&r));
}

#[test]
fn node_owner_and_depth() {
    let mut ed = sample(10);
    let deep = ino(&ed, "deep");
    let node = ed.tree(deep).unwrap().nodes[0];
    ed.modify_sealed(node, |b| put_u64(b, 24, 3)).unwrap();
    expect(&ed, Location::Inode(deep), "extent node owner: bad value 3");
    let mut ed = sample(10);
    ed.modify_sealed(node, |b| put_u16(b, 20, 0)).unwrap();
    expect(&ed, Location::Inode(deep), "extent node depth");
}

// Directories.

fn root_entry(ed: &Editor, name: &str) -> (u64, usize, u64) {
    let e = ed
        .dir_entries(ROOT_INO)
        .unwrap()
        .into_iter()
        .find(|e| e.name == name.as_bytes())
        .unwrap();
    (e.blk, e.offset, e.ino)
}

#[test]
fn entry_to_a_free_inode() {
    let mut ed = sample(10);
    let (blk, off, target) = root_entry(&ed, "empty");
    let free = ed.geometry().inode_count - 1;
    ed.modify_sealed(blk, |b| put_u64(b, off, free)).unwrap();
    let r = expect(
        &ed,
        entry(ROOT_INO, "empty"),
        &format!("refers to inode {free}, which is free"),
    );
    // The inode it named is now nameless.
    assert!(r.has(&Location::Inode(target), "not reachable from the root"));
}

#[test]
fn entry_types_names_and_duplicates() {
    let mut ed = sample(10);
    let (blk, off, _) = root_entry(&ed, "file");
    ed.modify_sealed(blk, |b| b[off + 11] = 4).unwrap();
    expect_only(
        &ed,
        entry(ROOT_INO, "file"),
        "type is DT_DIR (4), but inode",
    );
    let mut ed = sample(10);
    let (blk, off, _) = root_entry(&ed, "part");
    ed.modify_sealed(blk, |b| b[off + 12..off + 16].copy_from_slice(b"file"))
        .unwrap();
    expect(&ed, entry(ROOT_INO, "file"), "duplicate name");
    let mut ed = sample(10);
    let (blk, off, _) = root_entry(&ed, "big");
    ed.modify_sealed(blk, |b| b[off + 12] = b'/').unwrap();
    expect(&ed, Location::Inode(ROOT_INO), "directory entry name");
    let mut ed = sample(10);
    let (blk, off, _) = root_entry(&ed, "big");
    ed.modify_sealed(blk, |b| put_u16(b, off + 8, 6)).unwrap();
    expect(&ed, Location::Inode(ROOT_INO), "directory record length");
    let mut ed = sample(10);
    let (blk, off, _) = root_entry(&ed, "big");
    ed.modify_sealed(blk, |b| put_u64(b, off, ROOT_INO))
        .unwrap();
    expect(&ed, entry(ROOT_INO, "big"), "names the root directory");
}

#[test]
fn directory_sizes_blocks_and_owners() {
    let mut ed = sample(10);
    let many = ino(&ed, "many");
    let size = ed.inode(many).unwrap().unwrap().size;
    ed.modify_inode(many, |i| i.size += BS).unwrap();
    expect_only(
        &ed,
        Location::Inode(many),
        &format!("size is {}, expected {size}", size + BS),
    );
    let mut ed = sample(10);
    set_root_extent(&mut ed, many, 0, |e| e.flags = extent_flags::UNWRITTEN);
    expect(&ed, Location::Inode(many), "are unwritten");
    let mut ed = sample(10);
    let blk = ed.tree(many).unwrap().extents[0].pblk + 1;
    ed.modify_sealed(blk, |b| put_u64(b, 16, 77)).unwrap();
    expect_only(&ed, Location::Inode(many), "owner is 77");
    let mut ed = sample(10);
    ed.modify_sealed(blk, |b| put_u64(b, 24, 1)).unwrap();
    expect_only(&ed, Location::Inode(many), "reserved header field");
    let mut ed = sample(10);
    ed.modify_block(blk, |b| b[500] ^= 1).unwrap();
    expect(&ed, Location::Inode(many), "directory block 1");
}

#[test]
fn directory_hole() {
    let mut ed = sample(10);
    let many = ino(&ed, "many");
    set_root_extent(&mut ed, many, 0, |e| e.lblk = 1);
    let r = expect(&ed, Location::Inode(many), "hole at logical blocks 0-0");
    assert!(r.has(&Location::Inode(many), "size is"));
}

#[test]
fn parents_link_counts_and_reachability() {
    let mut ed = sample(10);
    let dir = ino(&ed, "dir");
    let sub = ino(&ed, "dir/sub");
    ed.modify_inode(sub, |i| i.parent = ROOT_INO).unwrap();
    expect_only(
        &ed,
        Location::Inode(sub),
        &format!("parent is 1, but the directory is in directory {dir}"),
    );
    let mut ed = sample(10);
    ed.modify_inode(dir, |i| i.nlink = 2).unwrap();
    expect_only(&ed, Location::Inode(dir), "link count is 2, expected 3");
    // Remove /dir's entry: it and the 3 inodes below it are lost.
    let mut ed = sample(10);
    let (blk, off, _) = root_entry(&ed, "dir");
    let geo = *ed.geometry();
    ed.modify_sealed(blk, |b| {
        swapfs_common::format::dir_remove(&geo, b, off).unwrap()
    })
    .unwrap();
    let r = expect(
        &ed,
        Location::Inode(dir),
        "directory (link count 3) is not reachable from the root directory, nor are the 3 inodes below it",
    );
    assert!(r.has(&Location::Inode(ROOT_INO), "link count is 4, expected 3"));
    // /dir/hard still names /file.
    let f = ino(&ed, "file");
    assert!(!r.has(&Location::Inode(f), ""), "{}", listing(&r));
    assert_eq!(r.problems.len(), 2, "{}", listing(&r));
}

#[test]
fn root_directory() {
    let mut ed = sample(10);
    ed.modify_inode(ROOT_INO, |i| i.parent = 2).unwrap();
    expect_only(&ed, Location::Inode(ROOT_INO), "parent is 2, expected 1");
    let mut ed = empty(10, 2048);
    ed.modify_inode(ROOT_INO, |i| {
        i.mode = mode::S_IFREG | 0o644;
        i.parent = 0;
    })
    .unwrap();
    expect(&ed, Location::Inode(ROOT_INO), "not a directory");
}

#[test]
fn shared_directory_block() {
    let mut ed = sample(10);
    let many = ino(&ed, "many");
    let dblk = ed.tree(many).unwrap().extents[0].pblk;
    let sparse = ino(&ed, "sparse");
    let own = ed.tree(sparse).unwrap().extents[0].pblk;
    set_root_extent(&mut ed, sparse, 0, |e| e.pblk = dblk);
    ed.set_refcount(dblk, 2).unwrap();
    ed.set_refcount(own, 0).unwrap();
    ed.set_block_bit(own, false).unwrap();
    ed.modify_superblock(|sb| sb.free_blocks += 1).unwrap();
    expect_only(
        &ed,
        blocks(dblk),
        &format!(
            "directory block of inode {many} must not be shared, but has 2 references: data of inode {sparse} (logical block 1000000), directory block of inode {many} (logical block 0)"
        ),
    );
}

// The orphan list.

#[test]
fn orphan_list() {
    let build = || {
        let mut b = Builder::in_memory(&params(10, 2048)).unwrap();
        let a = b.create_orphan(&[FileExtent::new(0, 1)], 10).unwrap();
        let c = b.create_orphan(&[], 0).unwrap();
        (b.finish().unwrap(), a, c)
    };
    let (mut ed, a, c) = build();
    ed.modify_inode(c, |i| i.orphan_next = a).unwrap();
    expect_only(
        &ed,
        Location::Inode(c),
        &format!("orphan_next is {a}: the orphan list loops"),
    );
    let (mut ed, _, c) = build();
    ed.modify_inode(c, |i| i.orphan_next = 100).unwrap();
    expect_only(&ed, Location::Inode(c), "orphan_next is 100, a free inode");
    let (mut ed, a, c) = build();
    ed.modify_superblock(|sb| sb.orphan_head = c).unwrap();
    let r = expect(&ed, Location::Inode(a), "not on the orphan list");
    assert!(r.has(&Location::Inode(a), "not reachable"));
    let (mut ed, a, _) = build();
    ed.modify_superblock(|sb| sb.orphan_head = 0).unwrap();
    ed.modify_inode(a, |i| i.orphan_next = 0).unwrap();
    let r = expect(
        &ed,
        Location::Inode(a),
        "regular file (link count 0) is not reachable",
    );
    assert_eq!(r.problems.len(), 2, "{}", listing(&r));
}

#[test]
fn every_block_of_a_problem_is_named() {
    // A corrupt node hides the blocks below it: those are reported as
    // ranges, not one line per block.
    let mut ed = sample(10);
    let big = ino(&ed, "big");
    let t = ed.tree(big).unwrap();
    let leaf = t.nodes[1];
    ed.modify_block(leaf, |b| b[40] ^= 1).unwrap();
    let r = expect(&ed, Location::Inode(big), "checksum mismatch");
    assert!(r.problems.len() < 20, "{}", listing(&r));
}
