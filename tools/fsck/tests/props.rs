// SPDX-License-Identifier: GPL-2.0

//! Property tests: fsck never panics on damaged images, detects every bit
//! flip in checksummed metadata, and rejects garbage.

mod util;

use std::sync::OnceLock;

use proptest::prelude::*;
use swapfs_common::format::{get_u16, mode, Geometry, ROOT_INO};
use swapfs_fsck::check;
use swapfs_image::builder::{Builder, Editor, FileExtent};
use swapfs_image::Image;
use util::params;

/// A small image with every kind of structure, and where they are.
struct Sample {
    bytes: Vec<u8>,
    geo: Geometry,
    /// Metadata blocks in the data region (tree nodes, directory and
    /// symlink blocks).
    meta: Vec<u64>,
}

impl Sample {
    fn bs(&self) -> usize {
        self.geo.block_size()
    }

    /// Blocks fsck reads and verifies: block 0, the bitmaps, reference
    /// counts and inode table, and the metadata in the data region.
    fn checked_blocks(&self) -> Vec<u64> {
        let mut v = vec![0];
        v.extend(self.geo.ibitmap_start..self.geo.data_start);
        v.extend(&self.meta);
        v
    }

    /// Every block fsck reads, file data and the journal superblock
    /// included.
    fn read_blocks(&self) -> Vec<u64> {
        let mut v = self.checked_blocks();
        v.push(self.geo.journal_start);
        let ed = Editor::open(Image::from_vec(self.bytes.clone())).unwrap();
        for ino in 1..=self.geo.inode_count {
            if let Ok(Some(i)) = ed.inode(ino) {
                if i.is_reg() {
                    for e in ed.tree(ino).unwrap().extents {
                        v.extend(e.pblk..e.pblk + u64::from(e.len));
                    }
                }
            }
        }
        v
    }
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let mut p = params(10, 1800);
        p.inode_count = 128;
        let mut b = Builder::in_memory(&p).unwrap();
        let f = b
            .create(
                ROOT_INO,
                "f",
                &[FileExtent::new(0, 2), FileExtent::unwritten(4, 1)],
                5000,
            )
            .unwrap();
        b.reflink(f, ROOT_INO, "g").unwrap();
        b.set_node_fill(3).unwrap();
        let ext: Vec<_> = (0..40).map(|i| FileExtent::new(2 * i, 1)).collect();
        b.create(ROOT_INO, "deep", &ext, 80 * 1024).unwrap();
        b.set_dir_spacing(1);
        let d = b.mkdir(ROOT_INO, "d").unwrap();
        for i in 0..60 {
            b.create(d, format!("file-with-a-long-name-{i}"), &[], 0)
                .unwrap();
        }
        b.symlink(d, "s", "../f").unwrap();
        b.link(d, "h", f).unwrap();
        b.mknod(ROOT_INO, "c", mode::S_IFCHR | 0o600, 7).unwrap();
        b.create_orphan(&[FileExtent::new(0, 1)], 1).unwrap();
        let ed = b.finish().unwrap();
        let geo = *ed.geometry();
        let mut meta = Vec::new();
        for ino in 1..=geo.inode_count {
            let Some(inode) = ed.inode(ino).unwrap() else {
                continue;
            };
            let t = ed.tree(ino).unwrap();
            meta.extend(&t.nodes);
            if inode.is_dir() || inode.is_symlink() {
                for e in &t.extents {
                    meta.extend(e.pblk..e.pblk + u64::from(e.len));
                }
            }
        }
        let bytes = ed.into_vec().unwrap();
        let s = Sample { bytes, geo, meta };
        assert!(check(&Image::from_vec(s.bytes.clone())).unwrap().is_clean());
        s
    })
}

/// Runs fsck on `bytes`: true if it reported anything (or refused).
fn detects(bytes: Vec<u8>) -> bool {
    match check(&Image::from_vec(bytes)) {
        Ok(r) => !r.is_clean(),
        Err(_) => true,
    }
}

/// Re-seals every metadata block and inode after random changes, so that
/// the changes reach the parsers behind the checksums.
fn reseal_all(bytes: Vec<u8>, s: &Sample) -> Vec<u8> {
    let Ok(mut ed) = Editor::open(Image::from_vec(bytes.clone())) else {
        return bytes;
    };
    let mut blocks = s.meta.clone();
    blocks.extend(s.geo.ibitmap_start..s.geo.itable_start);
    for blk in blocks {
        ed.modify_sealed(blk, |_| ()).unwrap();
    }
    let geo = s.geo;
    for ino in 1..=geo.inode_count {
        ed.modify_inode_raw(ino, |raw| {
            if get_u16(raw, 0) != 0 {
                let sum = geo.inode_checksum(ino, raw);
                raw[96..100].copy_from_slice(&sum.to_le_bytes());
            }
        })
        .unwrap();
    }
    ed.into_vec().unwrap()
}

/// Flips: (index into a block list, byte in the block, bit).
fn flips(max: usize) -> impl Strategy<Value = Vec<(usize, usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<usize>(), 0u8..8), 1..=max)
}

fn apply_flips(s: &Sample, blocks: &[u64], flips: &[(usize, usize, u8)]) -> Vec<u8> {
    let mut bytes = s.bytes.clone();
    for &(b, off, bit) in flips {
        let blk = blocks[b % blocks.len()] as usize;
        bytes[blk * s.bs() + off % s.bs()] ^= 1 << bit;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_flips_never_panic(f in flips(16)) {
        let s = sample();
        let bytes = apply_flips(s, &s.read_blocks(), &f);
        let _ = check(&Image::from_vec(bytes));
    }

    #[test]
    fn every_single_flip_in_checked_metadata_is_detected(f in flips(1)) {
        let s = sample();
        let bytes = apply_flips(s, &s.checked_blocks(), &f);
        prop_assert!(detects(bytes));
    }

    #[test]
    fn resealed_garbage_never_panics(f in flips(24)) {
        let s = sample();
        let bytes = apply_flips(s, &s.checked_blocks(), &f);
        let _ = check(&Image::from_vec(reseal_all(bytes, s)));
    }

    #[test]
    fn random_block_overwrites_never_panic(
        writes in prop::collection::vec(
            (any::<usize>(), prop::collection::vec(any::<u8>(), 1024), any::<bool>()),
            1..4,
        )
    ) {
        let s = sample();
        let blocks = s.read_blocks();
        let mut bytes = s.bytes.clone();
        for (b, data, reseal) in &writes {
            let blk = blocks[b % blocks.len()] as usize;
            bytes[blk * 1024..(blk + 1) * 1024].copy_from_slice(data);
            if *reseal {
                bytes = reseal_all(bytes, s);
            }
        }
        let _ = check(&Image::from_vec(bytes));
    }

    #[test]
    fn garbage_is_an_error(
        data in prop::collection::vec(any::<u8>(), 0..70_000),
        magic in any::<bool>(),
    ) {
        let mut data = data;
        if magic && data.len() >= 4 {
            data[..4].copy_from_slice(&swapfs_common::format::MAGIC.to_le_bytes());
        }
        prop_assert!(detects(data));
    }

    #[test]
    fn a_valid_superblock_over_garbage_is_an_error(
        seed in prop::collection::vec(any::<u8>(), 4096),
    ) {
        let s = sample();
        let mut bytes = s.bytes.clone();
        let start = s.geo.journal_start as usize * 1024;
        for (i, b) in bytes[start..].iter_mut().enumerate() {
            *b = seed[i % seed.len()] ^ (i / seed.len()) as u8;
        }
        prop_assert!(detects(bytes));
    }
}
