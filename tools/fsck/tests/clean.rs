// SPDX-License-Identifier: GPL-2.0

//! Valid images check clean.

mod util;

use swapfs_common::format::{mode, MAX_DEPTH, ROOT_ENTRIES, ROOT_INO};
use swapfs_fsck::check;
use swapfs_image::builder::{Builder, FileExtent};
use swapfs_image::mkfs::{format, MkfsParams};
use swapfs_image::Image;
use util::*;

#[test]
fn mkfs_images_are_clean_for_every_block_size_and_size() {
    for log2 in 10..=12 {
        for blocks in [1100, 4096, 20000, 70001] {
            let ed = empty(log2, blocks);
            let r = fsck(&ed);
            assert_clean(&r);
            let s = r.summary.unwrap();
            assert_eq!((s.inodes_used, s.block_count), (1, blocks));
            assert_eq!(s.blocks_used, ed.geometry().data_start);
            assert_eq!(s.block_size, 1 << log2);
        }
    }
}

#[test]
fn mkfs_with_explicit_inodes_and_journal() {
    for (inodes, journal) in [(1, 1024), (7, 1500), (5000, 2048), (65536, 1024)] {
        let mut p = params(10, 20000);
        p.inode_count = inodes;
        p.journal_blocks = journal;
        let mut img = Image::zeroed(20000 * 1024);
        format(&mut img, &p).unwrap();
        assert_clean(&check(&img).unwrap());
    }
}

#[test]
fn a_filesystem_smaller_than_its_device_is_clean() {
    let p = params(12, 3000);
    let mut img = Image::zeroed(4000 * 4096 + 100);
    format(&mut img, &p).unwrap();
    let r = check(&img).unwrap();
    assert_clean(&r);
    assert_eq!(r.summary.unwrap().block_count, 3000);
}

#[test]
fn sample_images_are_clean() {
    for log2 in 10..=12 {
        let ed = sample(log2);
        let r = fsck(&ed);
        assert_clean(&r);
        let s = r.summary.unwrap();
        // root, 8 files and symlinks at the top, dir, sub, inner, link,
        // many and its 300 entries, 4 special files.
        assert_eq!(s.inodes_used, 1 + 8 + 5 + 300 + 4);
        assert_eq!(
            ed.superblock().free_blocks,
            s.block_count - s.blocks_used,
            "free count matches"
        );
    }
}

#[test]
fn sample_trees_have_index_levels() {
    let ed = sample(10);
    let big = ed.tree(ed.lookup("big").unwrap()).unwrap();
    assert_eq!(big.extents.len(), 500);
    assert!(big.depth >= 2, "depth {}", big.depth);
    let deep = ed.tree(ed.lookup("deep").unwrap()).unwrap();
    assert!(deep.depth >= 3, "depth {}", deep.depth);
    let many = ed.lookup("many").unwrap();
    assert!(ed.inode(many).unwrap().unwrap().size > 4 * 1024);
    let file = ed.tree(ed.lookup("file").unwrap()).unwrap();
    let part = ed.tree(ed.lookup("part").unwrap()).unwrap();
    assert_eq!(ed.refcount(part.extents[0].pblk).unwrap(), 3);
    assert_eq!(ed.refcount(file.extents[0].pblk + 1).unwrap(), 2);
    assert!(file.extents[1].is_unwritten());
}

#[test]
fn deepest_trees_and_fragmented_directories() {
    let mut p = params(10, 8192);
    p.inode_count = 4096;
    let mut b = Builder::in_memory(&p).unwrap();
    b.set_node_fill(2).unwrap();
    // ROOT_ENTRIES * 2^MAX_DEPTH extents need every level up to MAX_DEPTH.
    let n = ROOT_ENTRIES as u64 * (1 << MAX_DEPTH);
    let ext: Vec<_> = (0..n).map(|i| FileExtent::new(2 * i, 1)).collect();
    let f = b.create(ROOT_INO, "deepest", &ext, 0).unwrap();
    let ext: Vec<_> = (0..=n).map(|i| FileExtent::new(2 * i, 1)).collect();
    assert!(b.create(ROOT_INO, "too-deep", &ext, 0).is_err());
    b.set_node_fill(41).unwrap();
    // One extent per directory block: a directory with its own index nodes.
    b.set_dir_spacing(1);
    let d = b.mkdir(ROOT_INO, "wide").unwrap();
    for i in 0..2000 {
        b.create(d, format!("a-rather-long-file-name-number-{i:05}"), &[], 0)
            .unwrap();
    }
    b.mknod(d, "pipe", mode::S_IFIFO | 0o600, 0).unwrap();
    let ed = b.finish().unwrap();
    assert_eq!(ed.tree(f).unwrap().depth, MAX_DEPTH);
    let wide = ed.tree(d).unwrap();
    assert!(wide.extents.len() > 40 && wide.depth >= 1, "{wide:?}");
    assert_eq!(ed.dir_entries(d).unwrap().len(), 2001);
    assert_clean(&fsck(&ed));
}

#[test]
fn mkfs_leaves_data_and_size_alone() {
    let p = MkfsParams::new(12, 2000);
    let mut img = Image::from_vec(vec![0xab; 2100 * 4096]);
    let sb = format(&mut img, &p).unwrap();
    let bytes = img.as_bytes().unwrap();
    assert_eq!(bytes.len(), 2100 * 4096);
    let data = sb.data_start as usize * 4096;
    assert!(bytes[data..].iter().all(|&b| b == 0xab));
    assert_clean(&check(&img).unwrap());
}

#[test]
fn orphans_are_not_errors() {
    let mut b = Builder::in_memory(&params(12, 4096)).unwrap();
    let open = b.create_orphan(&[FileExtent::new(0, 4)], 4 * 4096).unwrap();
    b.create_orphan(&[], 0).unwrap();
    let trunc = b
        .create(ROOT_INO, "truncating", &[FileExtent::new(0, 8)], 4096)
        .unwrap();
    b.add_orphan(trunc).unwrap();
    let ed = b.finish().unwrap();
    assert_eq!(ed.superblock().orphan_head, open);
    let r = fsck(&ed);
    assert_clean(&r);
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("3 inodes on the orphan list")));
}
