// SPDX-License-Identifier: GPL-2.0

//! Extent trees: the B+tree that maps a file's logical blocks to data blocks
//! (`Documentation/format.md`, "Extent trees").
//!
//! The root lives in the inode ([`INODE_ROOT_SIZE`] bytes); the other nodes
//! are blocks reached through a [`NodeStore`], which the kernel implements on
//! buffer heads inside a jbd2 transaction and the host tools on an image
//! file. Every node read is verified (block header, node header, owner,
//! depth, key order) before it is used, so a corrupt tree yields a
//! [`FormatError`], never a panic or a wrong mapping.

use super::format::{
    decode_node_header, entry, magic, Extent, FormatError, Geometry, IndexEntry, RootHeader,
    INODE_ROOT_SIZE, NODE_ENTRIES_OFFSET, ROOT_HEADER_SIZE,
};

/// Read access to extent-tree node blocks.
pub trait NodeStore {
    /// The store's error; corruption found by the tree code converts into it.
    type Error: From<FormatError>;

    /// The filesystem's geometry.
    fn geometry(&self) -> &Geometry;

    /// Calls `f` with the contents of block `blk` (exactly one block). The
    /// tree code verifies the contents itself.
    fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> Result<R, Self::Error>;
}

/// What a lookup found at a logical block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// The block is mapped by this extent.
    Mapped(Extent),
    /// The block is in a hole that ends before `end` (the next extent's
    /// first block, or `u64::MAX` if no extent follows).
    Hole {
        /// One past the last block of the hole.
        end: u64,
    },
}

/// One node of a tree, as seen by [`walk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's block; `None` for the root (in the inode).
    pub blk: Option<u64>,
    /// The node's depth (0 for leaves).
    pub depth: u16,
    /// Entries in the node.
    pub entries: u16,
}

/// What [`walk`] reports, in logical order: every node before its entries,
/// and every extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A node of the tree.
    Node(NodeInfo),
    /// An extent (leaf entry).
    Extent(Extent),
}

/// A verified node: header and where its entries start in the buffer.
struct NodeView {
    header: RootHeader,
}

/// The logical range `[lo, hi)` a subtree may cover, from its parents'
/// index entries.
#[derive(Clone, Copy)]
struct Bounds {
    lo: u64,
    hi: u64,
}

const BAD_ORDER: FormatError = FormatError::BadField {
    what: "extent tree key order",
    value: 0,
};

/// Verifies node block `blk` (at `depth`, owned by `owner`) and returns its
/// header.
fn read_node_header<S: NodeStore>(
    store: &mut S,
    blk: u64,
    depth: u16,
    owner: u64,
) -> Result<NodeView, S::Error> {
    let geo = *store.geometry();
    let header = store.read(blk, |buf| -> Result<RootHeader, FormatError> {
        geo.check_block(buf, "extent node", magic::EXTENT, blk)?;
        decode_node_header(&geo, buf, owner)
    })??;
    if header.depth != depth {
        return Err(FormatError::BadField {
            what: "extent node depth",
            value: u64::from(header.depth),
        }
        .into());
    }
    if header.entries == 0 {
        return Err(FormatError::BadField {
            what: "empty extent node",
            value: blk,
        }
        .into());
    }
    Ok(NodeView { header })
}

/// Entry `i` of node `blk` (already verified), decoded as an index entry.
fn read_index<S: NodeStore>(store: &mut S, blk: u64, i: usize) -> Result<IndexEntry, S::Error> {
    let geo = *store.geometry();
    Ok(store.read(blk, |buf| {
        IndexEntry::decode(&geo, entry(buf, NODE_ENTRIES_OFFSET, i))
    })??)
}

/// Entry `i` of node `blk` (already verified), decoded as an extent.
fn read_extent<S: NodeStore>(store: &mut S, blk: u64, i: usize) -> Result<Extent, S::Error> {
    let geo = *store.geometry();
    Ok(store.read(blk, |buf| {
        Extent::decode(&geo, entry(buf, NODE_ENTRIES_OFFSET, i))
    })??)
}

/// Where the entries of a node live: the inode root or a block.
#[derive(Clone, Copy)]
enum Place<'r> {
    Root(&'r [u8; INODE_ROOT_SIZE]),
    Block(u64),
}

impl Place<'_> {
    fn index<S: NodeStore>(&self, store: &mut S, i: usize) -> Result<IndexEntry, S::Error> {
        match *self {
            Place::Root(r) => {
                let geo = *store.geometry();
                Ok(IndexEntry::decode(&geo, entry(r, ROOT_HEADER_SIZE, i))?)
            }
            Place::Block(b) => read_index(store, b, i),
        }
    }

    fn extent<S: NodeStore>(&self, store: &mut S, i: usize) -> Result<Extent, S::Error> {
        match *self {
            Place::Root(r) => {
                let geo = *store.geometry();
                Ok(Extent::decode(&geo, entry(r, ROOT_HEADER_SIZE, i))?)
            }
            Place::Block(b) => read_extent(store, b, i),
        }
    }
}

/// Decodes and checks the root header: an index root is never empty.
fn decode_root(root: &[u8; INODE_ROOT_SIZE]) -> Result<RootHeader, FormatError> {
    let rh = RootHeader::decode(root)?;
    if rh.depth > 0 && rh.entries == 0 {
        return Err(FormatError::BadField {
            what: "empty extent index root",
            value: u64::from(rh.depth),
        });
    }
    Ok(rh)
}

/// Looks up logical block `lblk`.
pub fn lookup<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    lblk: u64,
) -> Result<Mapping, S::Error> {
    let rh = decode_root(root)?;
    let mut place = Place::Root(root);
    let mut header = rh;
    // The first block of the next subtree to the right, seen on the way down.
    let mut next_start = u64::MAX;
    loop {
        let n = usize::from(header.entries);
        if header.depth == 0 {
            // Leaf: the last extent starting at or before lblk.
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if place.extent(store, mid)?.lblk <= lblk {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if lo > 0 {
                let e = place.extent(store, lo - 1)?;
                if lblk < e.lend() {
                    return Ok(Mapping::Mapped(e));
                }
            }
            let end = if lo < n {
                place.extent(store, lo)?.lblk
            } else {
                next_start
            };
            return Ok(Mapping::Hole { end });
        }
        // Index: the last child whose lower bound is at or before lblk (the
        // first child if lblk is before all of them).
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if place.index(store, mid)?.lblk <= lblk {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.saturating_sub(1);
        if i + 1 < n {
            next_start = place.index(store, i + 1)?.lblk;
        }
        let child = place.index(store, i)?.child;
        let depth = header.depth - 1;
        header = read_node_header(store, child, depth, owner)?.header;
        place = Place::Block(child);
    }
}

/// Visits every node and every extent of a tree in logical order, checking
/// the whole structure on the way: block headers and checksums, owners,
/// depths (every leaf at depth 0, each level one below its parent), no empty
/// node but an empty root, strictly increasing keys, extents inside their
/// parents' bounds and not overlapping. Stops at the first problem.
pub fn walk<S: NodeStore>(
    store: &mut S,
    root: &[u8; INODE_ROOT_SIZE],
    owner: u64,
    mut f: impl FnMut(Item) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    let rh = decode_root(root)?;
    f(Item::Node(NodeInfo {
        blk: None,
        depth: rh.depth,
        entries: rh.entries,
    }))?;
    let mut last_end = 0u64;
    walk_entries(
        store,
        Place::Root(root),
        rh,
        owner,
        Bounds {
            lo: 0,
            hi: u64::MAX,
        },
        &mut last_end,
        &mut f,
    )
}

fn walk_entries<S: NodeStore>(
    store: &mut S,
    place: Place<'_>,
    header: RootHeader,
    owner: u64,
    bounds: Bounds,
    last_end: &mut u64,
    f: &mut impl FnMut(Item) -> Result<(), S::Error>,
) -> Result<(), S::Error> {
    let n = usize::from(header.entries);
    if header.depth == 0 {
        for i in 0..n {
            let e = place.extent(store, i)?;
            if e.lblk < *last_end || e.lblk < bounds.lo || e.lend() > bounds.hi {
                return Err(FormatError::BadField {
                    what: "extent overlaps or leaves its parent's range",
                    value: e.lblk,
                }
                .into());
            }
            *last_end = e.lend();
            f(Item::Extent(e))?;
        }
        return Ok(());
    }
    let mut prev: Option<u64> = None;
    for i in 0..n {
        let ie = place.index(store, i)?;
        if prev.is_some_and(|p| ie.lblk <= p) || ie.lblk < bounds.lo || ie.lblk >= bounds.hi {
            return Err(BAD_ORDER.into());
        }
        prev = Some(ie.lblk);
        let hi = if i + 1 < n {
            place.index(store, i + 1)?.lblk
        } else {
            bounds.hi
        };
        let child = read_node_header(store, ie.child, header.depth - 1, owner)?;
        f(Item::Node(NodeInfo {
            blk: Some(ie.child),
            depth: child.header.depth,
            entries: child.header.entries,
        }))?;
        walk_entries(
            store,
            Place::Block(ie.child),
            child.header,
            owner,
            Bounds { lo: ie.lblk, hi },
            last_end,
            f,
        )?;
    }
    Ok(())
}
