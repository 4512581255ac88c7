// SPDX-License-Identifier: GPL-2.0

//! The corpus: one valid, populated image per block size, built with the
//! mkfs code and the test image builder (deterministic: fixed UUID, times
//! and layout), and a catalogue of where its metadata is.

use std::sync::OnceLock;

use swapfs_common::format::{mode, Geometry, Inode, Timestamp, ROOT_INO};
use swapfs_image::builder::{Builder, Editor, FileExtent};
use swapfs_image::mkfs::MkfsParams;
use swapfs_image::store::read_tree;
use swapfs_image::Image;

/// The block sizes of the corpus (log2).
pub const BLOCK_SIZES_LOG2: [u32; 3] = [10, 11, 12];

/// Size of the swapfile in bytes (64 pages).
pub const SWAPFILE_BYTES: u64 = 256 * 1024;

/// What a metadata block in the data region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKind {
    /// An extent-tree node of `owner`.
    Node,
    /// A directory block of `owner`.
    Dir,
    /// The symlink block of `owner`.
    Symlink,
}

/// A metadata block in the data region.
#[derive(Clone, Copy, Debug)]
pub struct MetaBlock {
    /// Block number.
    pub blk: u64,
    /// What it is.
    pub kind: MetaKind,
    /// The inode it belongs to.
    pub owner: u64,
}

/// An inode in use in the base image.
#[derive(Clone, Debug)]
pub struct UsedInode {
    /// Inode number.
    pub ino: u64,
    /// Its mode.
    pub mode: u16,
    /// Its extents (empty for device nodes and empty files).
    pub extents: Vec<swapfs_common::format::Extent>,
}

/// A base image and its catalogue.
pub struct Base {
    /// log2 of the block size.
    pub log2: u32,
    /// The image bytes.
    pub bytes: Vec<u8>,
    /// Its geometry.
    pub geo: Geometry,
    /// Every inode in use.
    pub inodes: Vec<UsedInode>,
    /// Metadata blocks in the data region.
    pub meta: Vec<MetaBlock>,
    /// The swapfile's inode.
    pub swapfile: u64,
}

impl Base {
    /// The block size in bytes.
    pub fn bs(&self) -> usize {
        self.geo.block_size()
    }

    /// Directories in use.
    pub fn dirs(&self) -> impl Iterator<Item = &UsedInode> {
        self.inodes
            .iter()
            .filter(|i| i.mode & mode::S_IFMT == mode::S_IFDIR)
    }
}

/// Fixed parameters, so that images are reproducible: 3 to 6 MiB (the
/// smallest journal alone is 1024 blocks).
pub fn params(log2: u32) -> MkfsParams {
    let blocks = match log2 {
        10 => 3072,
        11 => 1792,
        _ => 1536,
    };
    let mut p = MkfsParams::new(log2, blocks);
    p.uuid = *b"swapfs-fuzz-uuid";
    p.label[..4].copy_from_slice(b"fuzz");
    p.inode_count = 128;
    p.journal_blocks = 1024;
    p.time = Timestamp {
        sec: 1_700_000_000,
        nsec: 5,
    };
    p
}

fn build(log2: u32) -> std::io::Result<Base> {
    let p = params(log2);
    let mut b = Builder::in_memory(&p)?;
    let geo = *b.geometry();
    let bs = geo.block_size() as u64;
    let per_page = (4096 / bs).max(1);

    // The swapfile first, page-aligned on disk (swapon wants whole pages
    // of physically contiguous blocks): a filler file takes the blocks
    // up to the next page boundary.
    let pad = (per_page - geo.data_start % per_page) % per_page;
    if pad > 0 {
        b.create(ROOT_INO, "pad", &[FileExtent::new(0, pad as u32)], pad * bs)?;
    }
    let swap_blocks = (SWAPFILE_BYTES / bs) as u32;
    let swapfile = b.create(
        ROOT_INO,
        "swapfile",
        &[FileExtent::new(0, swap_blocks)],
        SWAPFILE_BYTES,
    )?;

    // Directories, several levels, one with many entries in spaced blocks
    // (free holes between them, several extents, an index node).
    let d1 = b.mkdir(ROOT_INO, "dir")?;
    let d2 = b.mkdir(d1, "sub")?;
    let d3 = b.mkdir(d2, "deeper")?;
    b.create_with_data(d3, "leaf", b"a leaf file\n")?;
    b.set_dir_spacing(1);
    let many = b.mkdir(ROOT_INO, "many")?;
    for i in 0..48 {
        b.create_with_data(
            many,
            format!("entry-with-a-longish-name-{i:03}"),
            format!("file {i}\n").as_bytes(),
        )?;
    }
    b.set_dir_spacing(0);

    // Files: multi-extent with holes (an index level), a deep tree,
    // written and unwritten extents, a reflinked copy, a partly shared
    // file, a sparse file, an empty one, hard links.
    let ext: Vec<_> = (0..24).map(|i| FileExtent::new(3 * i, 2)).collect();
    let multi = b.create(ROOT_INO, "multi", &ext, 72 * bs)?;
    b.set_node_fill(3)?;
    let ext: Vec<_> = (0..20).map(|i| FileExtent::new(2 * i, 1)).collect();
    b.create(d1, "deep", &ext, 40 * bs)?;
    b.set_node_fill(geo.node_capacity())?;
    let mixed = b.create(
        ROOT_INO,
        "mixed",
        &[
            FileExtent::new(0, 3),
            FileExtent::unwritten(3, 2),
            FileExtent::new(8, 1),
        ],
        9 * bs - 100,
    )?;
    b.reflink(multi, d1, "clone")?;
    let first = b.extents(mixed)[0].pblk;
    b.create(
        ROOT_INO,
        "part",
        &[FileExtent::shared(0, first, 1), FileExtent::new(1, 2)],
        3 * bs,
    )?;
    b.create(
        ROOT_INO,
        "sparse",
        &[FileExtent::new(100_000, 1)],
        100_001 * bs,
    )?;
    b.create(ROOT_INO, "empty", &[], 0)?;
    let small = b.create_with_data(ROOT_INO, "small", b"hello, swapfs\n")?;
    b.link(d2, "small-link", small)?;

    // Symlinks, device nodes, a FIFO.
    b.symlink(ROOT_INO, "sym", "dir/sub/deeper/leaf")?;
    let long = "x/".repeat((geo.symlink_max() - 2) / 2);
    b.symlink(d1, "longsym", &long)?;
    b.mknod(ROOT_INO, "chr", mode::S_IFCHR | 0o600, 0x0105)?;
    b.mknod(ROOT_INO, "blk", mode::S_IFBLK | 0o600, 0x0801)?;
    b.mknod(d1, "fifo", mode::S_IFIFO | 0o644, 0)?;

    // An orphan (unlinked while open), processed at every mount, and a
    // file on the orphan list for truncation.
    b.create_orphan(&[FileExtent::new(0, 2), FileExtent::new(5, 1)], 6 * bs)?;
    let trunc = b.create(ROOT_INO, "truncated", &[FileExtent::new(0, 4)], bs)?;
    b.add_orphan(trunc)?;

    let ed = b.finish()?;
    catalogue(log2, ed, swapfile)
}

fn catalogue(log2: u32, ed: Editor, swapfile: u64) -> std::io::Result<Base> {
    let geo = *ed.geometry();
    let mut inodes = Vec::new();
    let mut meta = Vec::new();
    for ino in 1..=geo.inode_count {
        let Some(inode): Option<Inode> = ed.inode(ino)? else {
            continue;
        };
        let (tree, res) = read_tree(ed.image(), &geo, &inode.root, ino);
        res?;
        for &blk in &tree.nodes {
            meta.push(MetaBlock {
                blk,
                kind: MetaKind::Node,
                owner: ino,
            });
        }
        let kind = match inode.mode & mode::S_IFMT {
            mode::S_IFDIR => Some(MetaKind::Dir),
            mode::S_IFLNK => Some(MetaKind::Symlink),
            _ => None,
        };
        if let Some(kind) = kind {
            for e in &tree.extents {
                for blk in e.pblk..e.pblk + u64::from(e.len) {
                    meta.push(MetaBlock {
                        blk,
                        kind,
                        owner: ino,
                    });
                }
            }
        }
        inodes.push(UsedInode {
            ino,
            mode: inode.mode,
            extents: tree.extents,
        });
    }
    let bytes = ed
        .into_vec()
        .ok_or_else(|| std::io::Error::other("not an in-memory image"))?;
    Ok(Base {
        log2,
        bytes,
        geo,
        inodes,
        meta,
        swapfile,
    })
}

/// The base image of block size `1 << log2` (built once per process).
pub fn base(log2: u32) -> &'static Base {
    static BASES: [OnceLock<Base>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = (log2.clamp(10, 12) - 10) as usize;
    BASES[i].get_or_init(|| match build(log2.clamp(10, 12)) {
        Ok(b) => b,
        Err(e) => panic!("building the {}-byte base image: {e}", 1u32 << log2),
    })
}

/// Opens base image bytes with the editor (for tests).
pub fn editor(bytes: Vec<u8>) -> std::io::Result<Editor> {
    Editor::open(Image::from_vec(bytes))
}
