// SPDX-License-Identifier: GPL-2.0

//! Extent-tree access ([`NodeStore`]) over an image.

use std::fmt;
use std::io;

use swapfs_common::extent::{walk, Item, NodeStore};
use swapfs_common::format::{Extent, FormatError, Geometry, INODE_ROOT_SIZE};

use crate::device::ReadBlocks;

/// An error while reading a tree: corruption or I/O.
#[derive(Debug)]
pub enum StoreError {
    /// The tree is corrupt.
    Format(FormatError),
    /// A block could not be read.
    Io(io::Error),
}

impl From<FormatError> for StoreError {
    fn from(e: FormatError) -> StoreError {
        StoreError::Format(e)
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> StoreError {
        StoreError::Io(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Format(e) => write!(f, "{e}"),
            StoreError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> io::Error {
        match e {
            StoreError::Io(e) => e,
            StoreError::Format(e) => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        }
    }
}

/// Blocks kept by [`ImageStore`]: enough for a root-to-leaf path and its
/// parents' siblings, which is what [`walk`] and `lookup` revisit.
const CACHE_BLOCKS: usize = 8;

/// A [`NodeStore`] reading node blocks from an image (or an image seen
/// through a journal replay), with a small cache (the tree code reads the
/// same block once per entry).
pub struct ImageStore<'a> {
    img: &'a dyn ReadBlocks,
    geo: Geometry,
    cache: Vec<(u64, Vec<u8>)>,
    next_victim: usize,
}

impl<'a> ImageStore<'a> {
    /// A store over `img` with geometry `geo`.
    pub fn new(img: &'a dyn ReadBlocks, geo: Geometry) -> ImageStore<'a> {
        ImageStore {
            img,
            geo,
            cache: Vec::new(),
            next_victim: 0,
        }
    }

    fn slot(&mut self, blk: u64) -> io::Result<usize> {
        if let Some(i) = self.cache.iter().position(|(b, _)| *b == blk) {
            return Ok(i);
        }
        let mut buf = vec![0u8; self.geo.block_size()];
        self.img.read_block(blk, &mut buf)?;
        if self.cache.len() < CACHE_BLOCKS {
            self.cache.push((blk, buf));
            return Ok(self.cache.len() - 1);
        }
        let i = self.next_victim % CACHE_BLOCKS;
        self.next_victim = i + 1;
        self.cache[i] = (blk, buf);
        Ok(i)
    }
}

impl NodeStore for ImageStore<'_> {
    type Error = StoreError;

    fn geometry(&self) -> &Geometry {
        &self.geo
    }

    fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, StoreError> {
        let i = self.slot(blk)?;
        let buf = self.cache.get(i).map(|(_, b)| b.as_slice()).unwrap_or(&[]);
        Ok(f(buf))
    }
}

/// The node blocks and extents of a tree, in logical order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Node blocks (not the root, which is in the inode).
    pub nodes: Vec<u64>,
    /// The depth of the root.
    pub depth: u16,
    /// Every extent.
    pub extents: Vec<Extent>,
}

/// Walks the tree rooted in `root` (owned by inode `owner`) and collects
/// its nodes and extents. On error, returns what was collected before the
/// problem along with it.
pub fn read_tree(
    img: &dyn ReadBlocks,
    geo: &Geometry,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
) -> (Tree, Result<(), StoreError>) {
    let mut store = ImageStore::new(img, *geo);
    let mut tree = Tree::default();
    let mut first = true;
    let res = walk(&mut store, root, owner, |item| {
        match item {
            Item::Node(n) => {
                if first {
                    tree.depth = n.depth;
                    first = false;
                }
                if let Some(b) = n.blk {
                    tree.nodes.push(b);
                }
            }
            Item::Extent(e) => tree.extents.push(e),
        }
        Ok(())
    });
    (tree, res)
}
