// SPDX-License-Identifier: GPL-2.0

//! Images shared by the fsck tests.

#![allow(dead_code)]

use swapfs_common::format::{mode, Timestamp, ROOT_INO};
use swapfs_fsck::{check, Report};
use swapfs_image::builder::{Builder, Editor, FileExtent};
use swapfs_image::mkfs::MkfsParams;

/// Fixed parameters, so that images are reproducible.
pub fn params(log2: u32, blocks: u64) -> MkfsParams {
    let mut p = MkfsParams::new(log2, blocks);
    p.uuid = *b"swapfs-test-uuid";
    p.time = Timestamp {
        sec: 1_700_000_000,
        nsec: 5,
    };
    p
}

/// A freshly formatted, empty image.
pub fn empty(log2: u32, blocks: u64) -> Editor {
    Builder::in_memory(&params(log2, blocks))
        .unwrap()
        .finish()
        .unwrap()
}

/// An image with a bit of everything:
///
/// ```text
/// /file      extents 0-2 written, 10-11 unwritten
/// /clone     reflink of /file
/// /part      block 0 shared with /file, blocks 1-2 its own
/// /big       500 one-block extents (index levels)
/// /deep      100 extents in nodes of 4 entries (a deeper tree)
/// /empty     no blocks
/// /sparse    one block at logical block 1000000
/// /dir/sub/inner, /dir/link -> ../file, /dir/hard (hard link to /file)
/// /long      symlink with the longest target
/// /many/     300 entries (a multi-block directory)
/// /chr /blk /fifo /sock
/// ```
pub fn sample(log2: u32) -> Editor {
    let mut p = params(log2, 4096);
    p.inode_count = 1024;
    let mut b = Builder::in_memory(&p).unwrap();
    let bs = 1u64 << log2;
    let file = b
        .create(
            ROOT_INO,
            "file",
            &[FileExtent::new(0, 3), FileExtent::unwritten(10, 2)],
            12 * bs,
        )
        .unwrap();
    b.reflink(file, ROOT_INO, "clone").unwrap();
    let first = b.extents(file)[0].pblk;
    b.create(
        ROOT_INO,
        "part",
        &[FileExtent::shared(0, first, 1), FileExtent::new(1, 2)],
        3 * bs - 100,
    )
    .unwrap();
    let ext: Vec<_> = (0..500).map(|i| FileExtent::new(2 * i, 1)).collect();
    b.create(ROOT_INO, "big", &ext, 1000 * bs).unwrap();
    b.set_node_fill(4).unwrap();
    let ext: Vec<_> = (0..100).map(|i| FileExtent::new(3 * i, 1)).collect();
    b.create(ROOT_INO, "deep", &ext, 300 * bs).unwrap();
    b.set_node_fill(b.geometry().node_capacity()).unwrap();
    b.create(ROOT_INO, "empty", &[], 0).unwrap();
    b.create(
        ROOT_INO,
        "sparse",
        &[FileExtent::new(1_000_000, 1)],
        1_000_001 * bs,
    )
    .unwrap();
    let dir = b.mkdir(ROOT_INO, "dir").unwrap();
    let sub = b.mkdir(dir, "sub").unwrap();
    b.create(sub, "inner", &[FileExtent::new(0, 1)], 10)
        .unwrap();
    b.symlink(dir, "link", "../file").unwrap();
    b.link(dir, "hard", file).unwrap();
    let max = b.geometry().symlink_max();
    b.symlink(ROOT_INO, "long", "x".repeat(max)).unwrap();
    let many = b.mkdir(ROOT_INO, "many").unwrap();
    for i in 0..300 {
        b.create(many, format!("entry-{i:03}"), &[], 0).unwrap();
    }
    b.mknod(ROOT_INO, "chr", mode::S_IFCHR | 0o600, 0x0105)
        .unwrap();
    b.mknod(ROOT_INO, "blk", mode::S_IFBLK | 0o600, 0x0801)
        .unwrap();
    b.mknod(ROOT_INO, "fifo", mode::S_IFIFO | 0o644, 0).unwrap();
    b.mknod(ROOT_INO, "sock", mode::S_IFSOCK | 0o755, 0)
        .unwrap();
    b.finish().unwrap()
}

/// Checks an image.
pub fn fsck(ed: &Editor) -> Report {
    check(ed.image()).expect("fsck failed to run")
}

/// Panics, listing the problems, unless the report is clean.
pub fn assert_clean(r: &Report) {
    assert!(
        r.is_clean(),
        "unexpected problems:\n{}",
        r.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(r.exit_code(), 0);
}

/// Lists the problems, for assertion messages.
pub fn listing(r: &Report) -> String {
    r.problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
